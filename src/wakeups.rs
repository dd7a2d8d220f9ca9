//! Which wake-ups this process sleeps on: the system's or the portable ones.
//!
//! A process that waits (for a lease, a writer turn, another process's commit) sleeps until
//! something says "look again". On Linux and Android the kernel says so: inotify on the WAL and
//! the board's bell, a pidfd for the holder's death, a futex on the board, an eventfd for a
//! suspension. Elsewhere (Apple platforms today) there are only the portable ones: short sleeps
//! that look at a word of the board, which every liblease writer bumps when its write ends, and
//! at the holder's pid; the database is read only when the word moves or a backoff runs out.
//!
//! The portable wake-ups are compiled on every platform, and `LIBLEASE_WAKEUPS=portable` in the
//! environment, read once at the first wait, makes a Linux process use them instead of the
//! system's, so that the code shipped to Apple platforms is code that ran here (`make test` runs
//! the Rust suite so). Only the wake-ups change: liveness still reads `/proc`, and exclusion is
//! decided in the database as always.

use std::sync::OnceLock;
use std::time::Duration;

/// How often a portable sleep first looks at the board's word (and the holder's pid).
pub(crate) const FIRST_TICK: Duration = Duration::from_millis(1);
/// The longest pause between two looks of a portable sleep.
pub(crate) const LONGEST_TICK: Duration = Duration::from_millis(20);

/// The pause between a portable waiter's looks once it has waited `waited`: a sixteenth of it,
/// from [`FIRST_TICK`] to [`LONGEST_TICK`]. A release so reaches a waiter within about 6% of
/// the time it had already waited (a waiter of 100 ms within 6 ms), while a waiter that waits
/// for long wakes 50 times a second: on a virtual machine each wake-up of a sleeping thread
/// costs some 30 to 60 µs, which at every millisecond would be 3% of a core.
pub(crate) fn tick(waited: Duration) -> Duration {
    (waited / 16).clamp(FIRST_TICK, LONGEST_TICK)
}

/// The environment variable that chooses the portable wake-ups on a platform that has others.
pub(crate) const SWITCH: &str = "LIBLEASE_WAKEUPS";

/// True when this process sleeps on the system's wake-ups (Linux and Android, unless
/// [`SWITCH`] says `portable`).
pub(crate) fn native() -> bool {
    static NATIVE: OnceLock<bool> = OnceLock::new();
    *NATIVE.get_or_init(|| {
        let portable = std::env::var_os(SWITCH).is_some_and(|value| value == "portable");
        cfg!(any(target_os = "linux", target_os = "android")) && !portable
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_portable_waiter_looks_less_often_the_longer_it_has_waited() {
        assert_eq!(tick(Duration::ZERO), FIRST_TICK);
        assert_eq!(tick(Duration::from_millis(160)), Duration::from_millis(10));
        assert_eq!(tick(Duration::from_secs(3600)), LONGEST_TICK);
    }

    #[test]
    fn the_switch_is_read_from_the_environment() {
        let portable = std::env::var(SWITCH).is_ok_and(|value| value == "portable");
        assert_eq!(native(), !portable, "{SWITCH}={:?}", std::env::var(SWITCH));
    }
}
