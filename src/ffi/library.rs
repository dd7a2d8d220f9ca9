//! The library as a whole: its version and its background thread.

use std::ffi::{c_char, CStr};

use super::panic::{catch_status, catch_value};
use super::status::LeaseStatus;

const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(version) => version,
    Err(_) => panic!("the crate version is a C string"),
};

/// Returns the version of the library actually loaded, such as "0.1.0": compare it with
/// LEASE_VERSION_STRING, the version of this header. Static text; any thread.
#[no_mangle]
pub extern "C" fn lease_version() -> *const c_char {
    catch_value("lease_version", VERSION.as_ptr(), || Ok(VERSION.as_ptr()))
}

/// Stops the library's background thread ("liblease") and waits for it to end, so that nothing
/// of liblease runs any more: call it before unloading the library, or at the end of a program
/// checked for leaks. Any later call that needs the thread starts it again. Does nothing when the
/// thread is not running.
///
/// Call it from any thread but the library's own (not from a callback). Stores and locks may stay
/// open; every guard must have been released and every asynchronous acquisition called back. A
/// heartbeat that was just stopped by the last release ends a moment later; this call waits up
/// to a second for such work to end.
///
/// Returns:
/// - LEASE_OK: the thread is stopped (or was not running).
/// - LEASE_MISUSE: a guard is still held, an asynchronous acquisition has not been called back
///   yet, or this was called on the library's thread; the thread keeps running.
#[no_mangle]
pub extern "C" fn lease_shutdown() -> LeaseStatus {
    catch_status("lease_shutdown", crate::runtime::shutdown)
}
