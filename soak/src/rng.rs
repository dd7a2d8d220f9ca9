//! A small seeded generator (SplitMix64). The seed fixes every random choice of the driver and of
//! each worker (which action, how long, which target), so that a failing run's schedule can be
//! run again with `--seed`; the timing of the processes differs from run to run all the same.

use std::time::Duration;

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The seed of a part of the run (a worker's incarnation, say), from the run's seed.
    pub fn derive(seed: u64, parts: &[u64]) -> u64 {
        let mut rng = Rng::new(seed);
        for &part in parts {
            rng.0 ^= rng.next().wrapping_add(part);
        }
        rng.next()
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A duration of `low..=high` milliseconds.
    pub fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.below(high - low + 1))
    }
}
