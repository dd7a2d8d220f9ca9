//! Timestamps that several processes can compare: `CLOCK_MONOTONIC`, which on Linux is one
//! clock for the whole system, so a time taken in one process can be subtracted from a time
//! taken in another.

/// Nanoseconds on the system's monotonic clock.
pub fn now_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Milliseconds from `earlier` to `later` (negative if `later` is earlier).
pub fn ms_between(earlier: u64, later: u64) -> f64 {
    (later as f64 - earlier as f64) / 1e6
}
