//! The library as a whole: its version, statuses and messages, and its background thread.

use std::ffi::{c_char, CStr};
use std::time::Duration;

use super::panic::{catch_status, catch_value};
use super::status::{self, LeaseStatus};

const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(version) => version,
    Err(_) => panic!("the crate version is a C string"),
};

/// Returns the version of the library actually loaded, such as "0.2.0": compare it with
/// LEASE_VERSION_STRING, the version of this header. Static text; any thread.
#[no_mangle]
pub extern "C" fn lease_version() -> *const c_char {
    catch_value("lease_version", VERSION.as_ptr(), || Ok(VERSION.as_ptr()))
}

/// Returns a static, NUL-terminated description of a status code, such as
/// "LEASE_BUSY (held by another process)". Never returns NULL: a code that is not a LeaseStatus
/// gets "unknown LeaseStatus". Any thread; the text is never freed.
#[no_mangle]
pub extern "C" fn lease_status_str(status: u32) -> *const c_char {
    catch_value("lease_status_str", c"".as_ptr(), || {
        Ok(LeaseStatus::from_code(status).map_or(c"unknown LeaseStatus", LeaseStatus::text).as_ptr())
    })
}

/// Returns the message of the last call on this thread that failed: English text naming the
/// function and saying what went wrong, for logs (do not parse it). Returns "" if no call on this
/// thread has failed. Never returns NULL.
///
/// The text belongs to the library and stays valid until the next lease_* call on this thread
/// that fails: only a failing call replaces it. Calls that succeed, lease_status_str,
/// lease_version and lease_last_error_message itself leave it alone, so a caller may read the
/// status's text and the message in either order.
/// Each thread has its own message, so read it on the thread that made the failing call; for an
/// asynchronous acquisition that failed, that is the callback's thread.
#[no_mangle]
pub extern "C" fn lease_last_error_message() -> *const c_char {
    catch_value("lease_last_error_message", c"".as_ptr(), || Ok(status::last_error()))
}

/// Suspends liblease in this process, for an app about to be suspended by its system (iOS
/// suspends an app soon after it goes to the background, and kills it if it then holds a write
/// lock on a database in a shared container; Android freezes cached processes). Call it when
/// the app goes to the background (and from a background task's expiration handler); call
/// lease_resume when it comes back. Process-wide; any thread.
///
/// At once: every lease this process holds is given back to its database, so that a process
/// waiting for it takes over within milliseconds; the guards of those leases are lost
/// (lease_guard_check returns LEASE_LOST, each lock's lost callback runs once, and the first
/// acquisition after lease_resume is dirty). Every write is refused with LEASE_SUSPENDED from
/// now on: acquisitions of every kind (a lease_lock_acquire that is waiting returns it within
/// milliseconds, an asynchronous one completes with it), renewals, lease_db_execute of a
/// statement that writes, lease_db_begin and its siblings, and every call on a transaction that
/// was open (a statement running now is interrupted; the transaction is rolled back; end it with
/// lease_tx_rollback as usual). Chunks that a chunked transaction committed stay committed:
/// nothing committed is lost. Reads go on: lease_db_query, and lease_db_execute of a read-only
/// statement. While suspended, the library's thread touches no database.
///
/// Returns once no connection of this process holds a write lock or a write transaction, or
/// after timeout_ms (0: look once, wait for nothing). Calling it again while suspended does the
/// same, and finds nothing to stop. Must not be called from a callback of liblease.
///
/// Returns:
/// - LEASE_OK: nothing of liblease's holds a write lock; the process may be suspended.
/// - LEASE_TIMEOUT: a statement or transaction did not end within timeout_ms; the message names
///   the database. The process is suspended all the same; call again to wait longer.
#[no_mangle]
pub extern "C" fn lease_suspend(timeout_ms: u32) -> LeaseStatus {
    catch_status("lease_suspend", || crate::lifecycle::suspend(Duration::from_millis(timeout_ms.into())))
}

/// Ends a suspension (lease_suspend): writes and acquisitions work again. Leases given back at
/// the suspension must be acquired again; the first acquisition of each is dirty. Does nothing
/// when the process is not suspended. Any thread.
#[no_mangle]
pub extern "C" fn lease_resume() {
    catch_value("lease_resume", (), || {
        crate::lifecycle::resume();
        Ok(())
    })
}

/// Returns true between lease_suspend and lease_resume. Any thread.
#[no_mangle]
pub extern "C" fn lease_is_suspended() -> bool {
    catch_value("lease_is_suspended", false, || Ok(crate::lifecycle::is_suspended()))
}

/// Stops the library's background thread ("liblease") and waits for it to end, so that nothing
/// of liblease runs any more: call it before unloading the library, or at the end of a program
/// checked for leaks. Any later call that needs the thread starts it again. Does nothing when the
/// thread is not running.
///
/// Call it from any thread but the library's own (not from a callback). Stores, locks and
/// databases may stay open; every guard must have been released, every observer freed and every
/// asynchronous acquisition called back. A
/// heartbeat that was just stopped by the last release ends a moment later; this call waits up
/// to 100 ms for such work to end.
///
/// Returns:
/// - LEASE_OK: the thread is stopped (or was not running).
/// - LEASE_MISUSE: a guard is still held, an observer is not freed, an asynchronous acquisition
///   has not been called back yet, or this was called on the library's thread; the thread keeps
///   running.
#[no_mangle]
pub extern "C" fn lease_shutdown() -> LeaseStatus {
    catch_status("lease_shutdown", crate::runtime::shutdown)
}
