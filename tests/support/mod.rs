//! What the tests of several OS processes share: the one way to run a child process
//! ([`child`]), the clock by which a parent and its children order their events, faults
//! injected under SQLite ([`faults`]), and waiting for a condition ([`eventually`]).
//!
//! Each file in `tests/` is a test binary of its own, and a child is its own test binary run
//! again, so each file that runs children includes this module with `mod support;` and lists
//! its own roles.

// Every test binary that includes this module compiles all of it, and none uses all of it.
#![allow(dead_code)]

pub mod child;
pub mod faults;

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine, so that times
/// read in different processes compare.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    assert_eq!(rc, 0, "CLOCK_MONOTONIC is always available");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Polls `condition` until it holds, for at most 10 s (a generous bound, not a timing claim).
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
