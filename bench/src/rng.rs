//! A small random source for spreading the phase of trials (how long a waiter waits before a
//! release or a signal), so that figures do not depend on one lucky or unlucky timing.

use std::ops::RangeInclusive;

/// xorshift64*: plenty for picking pauses.
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Rng {
        let seed = crate::clock::now_ns() ^ (u64::from(std::process::id()) << 32);
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `range` (the tiny modulo bias does not matter here).
    pub fn in_range(&mut self, range: RangeInclusive<u64>) -> u64 {
        let span = range.end() - range.start() + 1;
        range.start() + self.next_u64() % span
    }
}
