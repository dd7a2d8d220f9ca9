//! The library as a whole: its version, statuses and messages, and its background thread.

use std::ffi::{c_char, c_void, CStr, CString};
use std::time::Duration;

use super::context::{LeaseDestroyCallback, OwnedContext};
use super::panic::{catch_status, catch_value};
use super::status::{self, LeaseStatus};
use crate::log::{self, Level};
use crate::Error;

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

/// A log message's level: something failed.
pub const LEASE_LOG_ERROR: u32 = 1;
/// Something went wrong that the library copes with: a lease lost, a renewal that came late, a
/// second SQLite in the process, a board file that is not liblease's.
pub const LEASE_LOG_WARN: u32 = 2;
/// What the locks do: a lease acquired (after how long, dirty or clean, its generation),
/// released, taken over from a holder that died or whose lease ran out.
pub const LEASE_LOG_INFO: u32 = 3;
/// Wake-ups, renewals, checkpoints.
pub const LEASE_LOG_DEBUG: u32 = 4;

/// Called with each of the library's log messages (see lease_set_log_callback): level is one of
/// LEASE_LOG_ERROR ... LEASE_LOG_DEBUG, message is English text naming the lease's key or the
/// database file, NUL-terminated and valid only during the call. context is the pointer given to
/// lease_set_log_callback.
///
/// It runs on the thread where the event happened: the caller's (during one of its lease_*
/// calls) or the library's ("liblease"), and on several threads at once. It must return soon and
/// must not call back into liblease in a way that could wait (no lease_lock_acquire with a
/// timeout, no lease_db_execute); a message that liblease would log from inside the callback is
/// dropped.
pub type LeaseLogCallback =
    Option<unsafe extern "C" fn(context: *mut c_void, level: u32, message: *const c_char)>;

/// Sets the process's log callback: messages at max_level and more severe (LEASE_LOG_ERROR is the
/// most severe, LEASE_LOG_DEBUG the most verbose) are given to callback; a NULL callback turns
/// logging off (the default; max_level is checked all the same). Process-wide: it replaces the
/// callback set before. Calls of the old callback that began before this returns may still be
/// running (on other threads), and none begins after; its destroy (if not NULL) runs, with its
/// context, once the last of them has returned: here, at once, when none runs, or else on the
/// thread of that last call, whichever thread that is. With logging off no message is even
/// formatted.
///
/// On LEASE_OK, context belongs to the library until destroy (if not NULL) is called with it,
/// exactly once. On any other status nothing changes, and destroy is not called. Any thread.
///
/// Returns:
/// - LEASE_OK: the callback is set (or logging is off).
/// - LEASE_INVALID_ARGUMENT: max_level is not LEASE_LOG_ERROR, LEASE_LOG_WARN, LEASE_LOG_INFO or
///   LEASE_LOG_DEBUG.
#[no_mangle]
pub extern "C" fn lease_set_log_callback(
    max_level: u32,
    callback: LeaseLogCallback,
    context: *mut c_void,
    destroy: LeaseDestroyCallback,
) -> LeaseStatus {
    catch_status("lease_set_log_callback", || {
        let level = Level::from_number(max_level).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "max_level {max_level} is none of LEASE_LOG_ERROR to LEASE_LOG_DEBUG (1 to 4)"
            ))
        })?;
        let sink = callback.map(|callback| -> Box<log::Sink> {
            let context = OwnedContext::new(context, destroy);
            Box::new(move |level: Level, message: &str| {
                let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
                // SAFETY: the caller's callback, with its context, as its contract says.
                unsafe { callback(context.get(), level as u32, message.as_ptr()) }
            })
        });
        log::set_sink(level, sink);
        Ok(())
    })
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
