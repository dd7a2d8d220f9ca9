//! Statuses and the last error message: how a failure reaches C.
//!
//! The enum is the list of statuses (cbindgen reads it as it is written); the list of all of
//! them, the conversion from a code and their texts are derived from one table that the compiler
//! checks is complete, so a new status cannot be forgotten in one of them.

use std::cell::RefCell;
use std::ffi::{CStr, CString};

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
    /// was suspended, or the database could not be written), or the database file it is kept in
    /// was deleted, renamed or replaced, and another process may have taken it. Release the guard
    /// and acquire again (after opening the file again, if it was replaced); the new guard is
    /// dirty. A fenced transaction
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
    /// The process is suspended (lease_suspend): nothing that writes runs until lease_resume.
    /// Reads still work.
    LEASE_SUSPENDED = 9,
}

/// Derives everything else about the statuses from one table of `NAME => "meaning"`: the list
/// of all of them, the conversion from a code, and each one's text. The table must name every
/// status (the match in `text` is exhaustive, so the compiler refuses one that is missing).
macro_rules! derive_status_tables {
    ($($name:ident => $meaning:literal,)+) => {
        impl LeaseStatus {
            /// Every status, in the order of the table.
            pub const ALL: &'static [LeaseStatus] = &[$(LeaseStatus::$name),+];

            /// The status for a code from C, if it is one.
            pub fn from_code(code: u32) -> Option<LeaseStatus> {
                LeaseStatus::ALL.iter().copied().find(|status| *status as u32 == code)
            }

            /// A short description, for logs: the name, then what it means.
            pub fn text(self) -> &'static CStr {
                match self {
                    $(LeaseStatus::$name => {
                        const TEXT: &CStr = match CStr::from_bytes_with_nul(
                            concat!(stringify!($name), " (", $meaning, ")\0").as_bytes(),
                        ) {
                            Ok(text) => text,
                            Err(_) => panic!("a status's meaning holds no NUL"),
                        };
                        TEXT
                    })+
                }
            }
        }
    };
}

derive_status_tables! {
    LEASE_OK => "success",
    LEASE_BUSY => "held by another process",
    LEASE_TIMEOUT => "still held when the time limit ran out",
    LEASE_LOST => "the lease was lost",
    LEASE_INVALID_ARGUMENT => "invalid argument",
    LEASE_DATABASE => "database error",
    LEASE_MISUSE => "not allowed now",
    LEASE_PANIC => "internal error in liblease",
    LEASE_CANCELLED => "the acquisition was cancelled",
    LEASE_SUSPENDED => "the process is suspended",
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
            Error::Suspended(_) => LeaseStatus::LEASE_SUSPENDED,
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

/// This thread's last failure message, NUL-terminated, or "" before the first. The text stays in
/// place, unchanged, until this thread's next failure.
pub(crate) fn last_error() -> *const std::ffi::c_char {
    let message = LAST_ERROR.try_with(|slot| slot.borrow().as_ref().map(|message| message.as_ptr()));
    message.ok().flatten().unwrap_or(c"".as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_code_and_has_its_own_text() {
        for (index, status) in LeaseStatus::ALL.iter().enumerate() {
            assert_eq!(*status as u32, index as u32, "codes are dense, in order");
            assert_eq!(LeaseStatus::from_code(*status as u32), Some(*status));
            let text = status.text().to_str().unwrap();
            assert!(text.starts_with(&format!("{status:?} (")), "{text}");
        }
        assert_eq!(LeaseStatus::from_code(LeaseStatus::ALL.len() as u32), None);
    }

    #[test]
    fn every_error_has_a_status_other_than_ok_and_panic() {
        let errors = [
            Error::Busy(String::new()),
            Error::Timeout(String::new()),
            Error::Lost(String::new()),
            Error::InvalidArgument(String::new()),
            Error::Database(String::new()),
            Error::Cancelled(String::new()),
            Error::Misuse(String::new()),
            Error::Suspended(String::new()),
        ];
        let statuses: std::collections::BTreeSet<u32> =
            errors.iter().map(|error| LeaseStatus::from(error) as u32).collect();
        assert_eq!(statuses.len(), errors.len(), "each error its own status");
        assert!(!statuses.contains(&(LeaseStatus::LEASE_OK as u32)));
        assert!(!statuses.contains(&(LeaseStatus::LEASE_PANIC as u32)));
    }
}
