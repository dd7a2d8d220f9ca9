//! The library as a whole: its version, statuses and messages, and its background thread.

use std::ffi::{c_char, CStr};

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

/// Stops the library's background thread ("liblease") and waits for it to end, so that nothing
/// of liblease runs any more: call it before unloading the library, or at the end of a program
/// checked for leaks. Any later call that needs the thread starts it again. Does nothing when the
/// thread is not running.
///
/// Call it from any thread but the library's own (not from a callback). Stores and locks may stay
/// open; every guard must have been released and every asynchronous acquisition called back. A
/// heartbeat that was just stopped by the last release ends a moment later; this call waits up
/// to 100 ms for such work to end.
///
/// Returns:
/// - LEASE_OK: the thread is stopped (or was not running).
/// - LEASE_MISUSE: a guard is still held, an asynchronous acquisition has not been called back
///   yet, or this was called on the library's thread; the thread keeps running.
#[no_mangle]
pub extern "C" fn lease_shutdown() -> LeaseStatus {
    catch_status("lease_shutdown", crate::runtime::shutdown)
}
