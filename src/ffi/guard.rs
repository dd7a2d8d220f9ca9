//! The C face of a guard: `LeaseGuard`.

use super::handle::{self, Boxed, Castable};
use super::panic::{catch_status, catch_value};
use super::status::LeaseStatus;
use crate::Guard;

/// Proof that this process holds a lease. Opaque; made by lease_lock_try_acquire,
/// lease_lock_acquire or an asynchronous acquisition; released by lease_guard_release.
/// Thread-safe: a guard may be used and released on any thread.
pub struct LeaseGuard {
    _private: [u8; 0],
}

impl Castable for LeaseGuard {
    type Ownership = Boxed;
    type RustType = Guard;
}

/// Returns the lease's generation: a number that increases every time a different process takes
/// the lease, and stays the same while this process keeps or re-takes it. Fixed for the guard's
/// life, so it may be read once. Returns 0 for NULL. Any thread.
#[no_mangle]
pub extern "C" fn lease_guard_generation(guard: *const LeaseGuard) -> u64 {
    catch_value("lease_guard_generation", 0, || {
        // SAFETY: the C contract: guard is NULL or a live guard.
        Ok(unsafe { handle::borrow(guard, "guard") }?.generation())
    })
}

/// Returns true when another process may have held the lease since this process last held it,
/// so that what this process cached under the lease is stale and must be reloaded. The first
/// acquisition in a process is dirty, and so is the first after a lost lease; an acquisition
/// that joins a hold this process already has never is. Fixed for the guard's life. Returns false
/// for NULL. Any thread.
#[no_mangle]
pub extern "C" fn lease_guard_is_dirty(guard: *const LeaseGuard) -> bool {
    catch_value("lease_guard_is_dirty", false, || {
        // SAFETY: the C contract: guard is NULL or a live guard.
        Ok(unsafe { handle::borrow(guard, "guard") }?.is_dirty())
    })
}

/// Tells whether the lease is still known to be held. Call it before acting on the lease (before
/// committing the work it protects, say) when time may have passed. It reads no database: it
/// checks what the library's thread last confirmed, and reports the lease lost as soon as its
/// last confirmed expiry has passed (after the process was suspended, say), even before the
/// library's thread has noticed; and it checks (one stat) that the store's path still names the
/// file the store opened: a lease kept in a file that was deleted, renamed or replaced since
/// (an app's "log out", say) is lost, since another process may take it in the file the path
/// names now. Once lost, a guard stays lost. Any thread.
///
/// Returns:
/// - LEASE_OK: the lease is held.
/// - LEASE_LOST: the lease is lost: another process may hold it now. Stop the work, release the
///   guard, and acquire again (the new guard is dirty). A suspension (lease_suspend) gives every
///   lease up, so every guard taken before it is lost.
/// - LEASE_INVALID_ARGUMENT: guard is NULL.
/// - LEASE_MISUSE: the guard was taken before fork() and this is the child (which holds nothing).
#[no_mangle]
pub extern "C" fn lease_guard_check(guard: *const LeaseGuard) -> LeaseStatus {
    catch_status("lease_guard_check", || {
        // SAFETY: the C contract: guard is NULL or a live guard.
        unsafe { handle::borrow(guard, "guard") }?.check()
    })
}

/// Releases a guard and frees it. When it is this process's last guard of the lease, the lease is
/// given back at once (in the database, or on the board to a process that waits for it), so that
/// a waiting process takes over without waiting for it to run out (if giving it back fails, it
/// runs out by itself). Releasing a lost guard is
/// harmless. NULL is a no-op. Any thread, callbacks included, but no other thread may be using
/// this guard handle; in a forked child it frees the handle and gives back nothing.
#[no_mangle]
pub extern "C" fn lease_guard_release(guard: *mut LeaseGuard) {
    catch_value("lease_guard_release", (), || {
        // SAFETY: the C contract: guard is NULL or a live guard that the caller gives up.
        if let Some(guard) = unsafe { handle::take(guard) } {
            // A failure to give the lease back needs no action: the lease runs out by itself.
            let _ = guard.release();
        }
        Ok(())
    })
}
