//! CLOCK_MONOTONIC in nanoseconds: one clock for the driver and every worker, so that times read
//! in different processes compare. It is not the lease's clock (CLOCK_BOOTTIME); the checks only
//! compare these times with each other.

pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    assert_eq!(rc, 0, "CLOCK_MONOTONIC is always available");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
