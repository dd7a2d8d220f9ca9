//! The calls on the library as a whole: statuses' texts, the last error, the version.

use std::ffi::CStr;

use lease::ffi::{self, LeaseStatus};

use crate::contract::{self, violation};

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
