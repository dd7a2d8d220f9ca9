//! Whether this process is suspended (see `lifecycle.rs`), for every part that writes to ask.
//!
//! While the process is suspended nothing of liblease's may take SQLite's write lock: no lease
//! is taken or renewed, no write statement or transaction runs, no checkpoint. Each of those asks
//! [`check`] at the moment it would write, under the lock that orders it with the suspension
//! (the connection's mutex, the writer queue's), so that a write either came before the
//! suspension, which then waits for it or ends it, or is refused.
//!
//! Waiters (an acquisition asleep until the lease changes hands) must hear of a suspension at
//! once: on Linux an eventfd, readable while the process is suspended, is one of their wake-up
//! sources ([`wake_fd`]); elsewhere they find out at their next look.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

static SUSPENDED: AtomicBool = AtomicBool::new(false);

/// True while the process is suspended.
pub(crate) fn is_suspended() -> bool {
    SUSPENDED.load(Ordering::SeqCst)
}

/// `Err(Suspended)` while the process is suspended.
pub(crate) fn check() -> Result<()> {
    if is_suspended() {
        Err(Error::Suspended(
            "the process is suspended (lease_suspend): nothing that writes runs until lease_resume".into(),
        ))
    } else {
        Ok(())
    }
}

/// Marks the process suspended, or not, and wakes the waiters. Returns whether it was suspended.
pub(crate) fn set(suspended: bool) -> bool {
    let was = SUSPENDED.swap(suspended, Ordering::SeqCst);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    linux::signal(suspended);
    was
}

/// A descriptor that is readable while the process is suspended, for waiters to poll beside
/// their other wake-up sources; `None` where there is none.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn wake_fd() -> Option<std::os::fd::RawFd> {
    linux::fd()
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::sync::OnceLock;

    /// An eventfd whose counter is non-zero while the process is suspended. Nobody reads it but
    /// [`signal`], so that every waiter that polls it sees it readable.
    fn event() -> Option<&'static OwnedFd> {
        static EVENT: OnceLock<Option<OwnedFd>> = OnceLock::new();
        EVENT
            .get_or_init(|| {
                // SAFETY: a plain syscall; the descriptor is owned below.
                let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
                // SAFETY: the kernel just returned this descriptor to us alone.
                (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
            })
            .as_ref()
    }

    pub(super) fn fd() -> Option<RawFd> {
        event().map(AsRawFd::as_raw_fd)
    }

    pub(super) fn signal(suspended: bool) {
        let Some(event) = event() else { return };
        if suspended {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a u64 we own to an eventfd.
            unsafe { libc::write(event.as_raw_fd(), std::ptr::from_ref(&one).cast(), 8) };
        } else {
            let mut count: u64 = 0;
            // SAFETY: reads 8 bytes into a u64 we own; non-blocking, so an empty counter returns.
            unsafe { libc::read(event.as_raw_fd(), std::ptr::from_mut(&mut count).cast(), 8) };
        }
    }
}
