//! Statuses and the last error message: how a failure reaches C.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};

use crate::Error;

/// What a call did. Returned by every function that can fail; the numbers are stable.
///
/// On any status but LEASE_OK, lease_last_error_message() on the same thread says why.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    /// The call succeeded.
    LEASE_OK = 0,
    /// Another process holds the lease (lease_lock_try_acquire), or other writers held the
    /// database's write lock: at the instant of a lock's try, or for the whole busy timeout of a
    /// LeaseDb (lease_db_set_busy_timeout). Trying again later may succeed.
    LEASE_BUSY = 1,
    /// The lease stayed held by another process for the whole time limit.
    LEASE_TIMEOUT = 2,
    /// This process no longer holds the lease: it ran out before it could be renewed (the process
    /// was suspended, or the database could not be written), and another process may have taken
    /// it. Release the guard and acquire again; the new guard is dirty. A fenced transaction
    /// (lease_db_begin_fenced) returns it, having written nothing, when its guard's lease is gone.
    LEASE_LOST = 3,
    /// A NULL pointer, a string that is not UTF-8, an empty key, zero or contradictory lock
    /// options, an invalid LeaseValue, SQL that is not the one statement the function runs, or
    /// the wrong number of parameters. Nothing was done.
    LEASE_INVALID_ARGUMENT = 4,
    /// SQLite failed (the file cannot be opened, is not a database, the disk is full, the SQL has
    /// an error, a constraint failed...); the message is SQLite's own, with the file's path.
    LEASE_DATABASE = 5,
    /// The call is not allowed now: a handle made before fork() used in the child, lease_shutdown
    /// while the library's thread has work, the library's thread could not be started, a
    /// transaction used after it ended or by two calls at once, or a query of a LeaseDb from its
    /// own row callback.
    LEASE_MISUSE = 6,
    /// A bug in liblease: it panicked. The message says where; please report it.
    LEASE_PANIC = 7,
    /// An asynchronous acquisition was cancelled (lease_lock_cancel_acquire) before it took the
    /// lease.
    LEASE_CANCELLED = 8,
}

impl LeaseStatus {
    /// The status for a code from C, if it is one.
    pub fn from_code(code: u32) -> Option<LeaseStatus> {
        use LeaseStatus::*;
        [
            LEASE_OK,
            LEASE_BUSY,
            LEASE_TIMEOUT,
            LEASE_LOST,
            LEASE_INVALID_ARGUMENT,
            LEASE_DATABASE,
            LEASE_MISUSE,
            LEASE_PANIC,
            LEASE_CANCELLED,
        ]
        .into_iter()
        .find(|status| *status as u32 == code)
    }

    /// A short description, for logs.
    pub fn text(self) -> &'static CStr {
        match self {
            LeaseStatus::LEASE_OK => c"LEASE_OK (success)",
            LeaseStatus::LEASE_BUSY => c"LEASE_BUSY (held by another process)",
            LeaseStatus::LEASE_TIMEOUT => c"LEASE_TIMEOUT (still held when the time limit ran out)",
            LeaseStatus::LEASE_LOST => c"LEASE_LOST (the lease was lost)",
            LeaseStatus::LEASE_INVALID_ARGUMENT => c"LEASE_INVALID_ARGUMENT (invalid argument)",
            LeaseStatus::LEASE_DATABASE => c"LEASE_DATABASE (database error)",
            LeaseStatus::LEASE_MISUSE => c"LEASE_MISUSE (not allowed now)",
            LeaseStatus::LEASE_PANIC => c"LEASE_PANIC (internal error in liblease)",
            LeaseStatus::LEASE_CANCELLED => c"LEASE_CANCELLED (the acquisition was cancelled)",
        }
    }
}

impl From<&Error> for LeaseStatus {
    fn from(error: &Error) -> LeaseStatus {
        match error {
            Error::Busy(_) => LeaseStatus::LEASE_BUSY,
            Error::Timeout(_) => LeaseStatus::LEASE_TIMEOUT,
            Error::Lost(_) => LeaseStatus::LEASE_LOST,
            Error::InvalidArgument(_) => LeaseStatus::LEASE_INVALID_ARGUMENT,
            Error::Database(_) => LeaseStatus::LEASE_DATABASE,
            Error::Misuse(_) => LeaseStatus::LEASE_MISUSE,
            Error::Cancelled(_) => LeaseStatus::LEASE_CANCELLED,
        }
    }
}

thread_local! {
    /// This thread's last failure message; `None` before the first.
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records why `function` failed, for lease_last_error_message, and returns its status.
pub(crate) fn failed(function: &str, error: &Error) -> LeaseStatus {
    set_last_error(format!("{function}: {error}"));
    LeaseStatus::from(error)
}

/// Records that `function` panicked.
pub(crate) fn panicked(function: &str, message: &str) -> LeaseStatus {
    set_last_error(format!("{function}: panicked (a bug in liblease): {message}"));
    LeaseStatus::LEASE_PANIC
}

fn set_last_error(message: String) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // During this thread's exit the slot may be gone already; the message is then lost, harmlessly.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = Some(message));
}

/// Returns a static, NUL-terminated description of a status code, such as
/// "LEASE_BUSY (held by another process)". Never returns NULL: a code that is not a LeaseStatus
/// gets "unknown LeaseStatus". Any thread; the text is never freed.
#[no_mangle]
pub extern "C" fn lease_status_str(status: u32) -> *const c_char {
    crate::ffi::panic::catch_value("lease_status_str", c"".as_ptr(), || {
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
    crate::ffi::panic::catch_value("lease_last_error_message", c"".as_ptr(), || {
        let message = LAST_ERROR.try_with(|slot| slot.borrow().as_ref().map(|message| message.as_ptr()));
        // The CString stays in the slot, unchanged, until this thread's next failure.
        Ok(message.ok().flatten().unwrap_or(c"".as_ptr()))
    })
}
