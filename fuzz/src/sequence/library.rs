//! The calls on the library as a whole: statuses' texts, the last error, the version, and the
//! process's suspension.

use std::ffi::CStr;

use lease::ffi::{self, LeaseStatus};

use crate::callbacks;
use crate::contract::{self, violation};
use crate::suspension::{self, Call};

use LeaseStatus::{LEASE_OK as OK, LEASE_TIMEOUT as TIMEOUT};

pub(super) fn status_str(code: u32) {
    let text = contract::untouched("lease_status_str", || ffi::lease_status_str(code));
    if text.is_null() {
        return violation(format!("lease_status_str({code}) returned NULL"));
    }
    // SAFETY: static NUL-terminated text.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    let expected = LeaseStatus::from_code(code)
        .map_or("unknown LeaseStatus".to_owned(), |status| format!("{status:?} ("));
    if !text.starts_with(&expected) {
        violation(format!("lease_status_str({code}) is {text:?}, not {expected:?}..."));
    }
}

pub(super) fn last_error() {
    let first = contract::untouched("lease_last_error_message", || ffi::lease_last_error_message());
    let second = ffi::lease_last_error_message();
    if first != second {
        violation("lease_last_error_message moved between two calls with no failure between".into());
    }
}

/// The version this header describes, from the header itself.
fn header_version() -> &'static str {
    const HEADER: &str = include_str!("../../../include/lease.h");
    const MACRO: &str = "#define LEASE_VERSION_STRING \"";
    let start = HEADER.find(MACRO).expect("the header defines LEASE_VERSION_STRING") + MACRO.len();
    let length = HEADER[start..].find('"').expect("a quoted version");
    &HEADER[start..start + length]
}

pub(super) fn version() {
    let version = contract::untouched("lease_version", || ffi::lease_version());
    if version.is_null() {
        return violation("lease_version returned NULL".into());
    }
    // SAFETY: static NUL-terminated text.
    let version = unsafe { CStr::from_ptr(version) }.to_string_lossy();
    if version != header_version() {
        violation(format!(
            "lease_version is {version:?}, the header's LEASE_VERSION_STRING {:?}",
            header_version()
        ));
    }
}

/// lease_suspend: the process is suspended when it returns, whichever status.
pub(super) fn suspend(timeout_ms: u32) {
    let call = Call::start(true);
    contract::status("lease_suspend", &[OK, TIMEOUT], || ffi::lease_suspend(timeout_ms));
    // A lease_resume meanwhile may have let an acquisition take a hold after this call gave
    // them up.
    if call.end() {
        callbacks::holds_given_up();
    }
}

/// lease_resume, which cannot fail and so leaves the last error alone.
pub(super) fn resume() {
    let call = Call::start(false);
    contract::untouched("lease_resume", || ffi::lease_resume());
    let _ = call.end();
}

pub(super) fn is_suspended() {
    let mark = suspension::mark();
    let suspended = contract::untouched("lease_is_suspended", || ffi::lease_is_suspended());
    let expected = if mark.suspended_throughout() {
        Some(true)
    } else if !mark.may_have_suspended() {
        Some(false)
    } else {
        None
    };
    if expected.is_some_and(|expected| expected != suspended) {
        violation(format!("lease_is_suspended returned {suspended}: {mark:?}"));
    }
}
