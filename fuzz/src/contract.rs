//! The promises of the header's CONVENTIONS, checked around every call.
//!
//! A broken promise is a violation. Callbacks cannot panic (a panic cannot unwind out of an
//! `extern "C"` function), and some run on the library's thread, so a violation is recorded
//! here and turned into a panic, the finding, by [`assert_kept`] on the fuzzer's own thread
//! after each step.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::sync::{Mutex, OnceLock};

use lease::ffi::{self, LeaseStatus};

use crate::locked;

/// What a panic inside liblease leaves in the last error (see src/ffi/status.rs).
const PANIC_MARK: &str = "panicked (a bug in liblease)";

/// Violations seen since the last [`assert_kept`], on any thread.
static VIOLATIONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

thread_local! {
    /// The last error this thread should see: set by the last call that failed. `None` until
    /// the first checked call of an input adopts whatever an earlier input left.
    static KNOWN: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// True when LEASE_FUZZ_TRACE is set: every step and every call's status is then printed, to
/// follow an input that fails.
pub fn tracing() -> bool {
    static TRACING: OnceLock<bool> = OnceLock::new();
    *TRACING.get_or_init(|| std::env::var_os("LEASE_FUZZ_TRACE").is_some())
}

/// Records a broken promise.
pub fn violation(what: String) {
    locked(&VIOLATIONS).push(what);
}

/// Panics with every violation recorded so far, saying after which step they were seen.
pub fn assert_kept(after: &dyn std::fmt::Debug) {
    if tracing() {
        eprintln!("{:?}: done {after:?}", std::thread::current().id());
    }
    let violations = std::mem::take(&mut *locked(&VIOLATIONS));
    if !violations.is_empty() {
        panic!("liblease broke its header's promises (seen after {after:?}):\n  {}", violations.join("\n  "));
    }
}

/// Starts an input on this thread: whatever an earlier input left in the last error is the
/// message from now on.
pub fn adopt_last_error() {
    KNOWN.with(|known| *known.borrow_mut() = Some(last_error()));
}

/// Starts a thread that has never called liblease: its last error must be "".
pub fn fresh_thread() {
    let message = last_error();
    if !message.is_empty() {
        violation(format!("a new thread's lease_last_error_message() is {message:?}, not \"\""));
    }
    KNOWN.with(|known| *known.borrow_mut() = Some(message));
}

/// lease_last_error_message(), which is never NULL.
pub fn last_error() -> String {
    let message = ffi::lease_last_error_message();
    if message.is_null() {
        violation("lease_last_error_message() returned NULL".into());
        return String::new();
    }
    // SAFETY: a NUL-terminated string that stays valid until this thread's next failing call.
    unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
}

fn known() -> String {
    KNOWN.with(|known| known.borrow_mut().get_or_insert_with(last_error).clone())
}

fn set_known(message: String) {
    KNOWN.with(|known| *known.borrow_mut() = Some(message));
}

/// Calls `function`, which returns a status, and checks it: a known status, never LEASE_PANIC,
/// one of `allowed`; on LEASE_OK the last error is left alone, on any other status it is a
/// message that names the function.
pub fn status(function: &str, allowed: &[LeaseStatus], call: impl FnOnce() -> LeaseStatus) -> LeaseStatus {
    status_after(function, call, || allowed.to_vec())
}

/// Like [`status`], with the statuses allowed known only once the call returned (those that
/// depend on whether the process was suspended meanwhile: see [`crate::suspension::Mark`]).
pub fn status_after(
    function: &str,
    call: impl FnOnce() -> LeaseStatus,
    allowed: impl FnOnce() -> Vec<LeaseStatus>,
) -> LeaseStatus {
    // Read before the call, so that calls nested in its callbacks update it.
    known();
    let status = call();
    let allowed = allowed();
    let message = last_error();
    if tracing() {
        eprintln!("  {function} -> {status:?} {message:?}");
    }
    if LeaseStatus::from_code(status as u32) != Some(status) {
        violation(format!("{function} returned {}, which is not a LeaseStatus", status as u32));
    }
    if status == LeaseStatus::LEASE_PANIC {
        violation(format!("{function} returned LEASE_PANIC: {message}"));
    } else if !allowed.contains(&status) {
        violation(format!(
            "{function} returned {status:?}, but the header allows only {allowed:?}: {message}"
        ));
    }
    if status == LeaseStatus::LEASE_OK {
        let expected = known();
        if message != expected {
            violation(format!(
                "{function} succeeded but changed the last error from {expected:?} to {message:?}"
            ));
        }
    } else {
        if !message.contains(function) {
            violation(format!(
                "{function} returned {status:?} with a last error that does not name it: {message:?}"
            ));
        }
        check_no_panic(function, &message);
    }
    set_known(message);
    status
}

/// Calls `function`, which returns no status (a free function, or one that returns a value), and
/// checks that it did not panic inside.
pub fn quiet<T>(function: &str, call: impl FnOnce() -> T) -> T {
    let before = known();
    let value = call();
    let message = last_error();
    if message != before {
        check_no_panic(function, &message);
    }
    set_known(message);
    value
}

fn check_no_panic(function: &str, message: &str) {
    if message.contains(PANIC_MARK) {
        violation(format!("{function} panicked inside liblease: {message}"));
    }
}

/// Calls `function`, which must leave the last error alone whatever it does (lease_status_str,
/// lease_version, lease_last_error_message).
pub fn untouched<T>(function: &str, call: impl FnOnce() -> T) -> T {
    let before = known();
    let value = call();
    let message = last_error();
    if message != before {
        violation(format!("{function} changed the last error from {before:?} to {message:?}"));
    }
    value
}

/// Where an export writes a new handle, pre-filled with a value that no handle can have, so that
/// a write on failure shows.
pub fn out_slot<T>() -> *mut T {
    std::ptr::without_provenance_mut(0x5eed_0000)
}

/// The handle an export wrote to its `out_*` slot: one on LEASE_OK, and the untouched sentinel
/// on any other status.
pub fn written<T>(function: &str, status: LeaseStatus, slot: *mut T) -> Option<*mut T> {
    let untouched = slot == out_slot();
    match (status, untouched) {
        (LeaseStatus::LEASE_OK, false) if !slot.is_null() => Some(slot),
        (LeaseStatus::LEASE_OK, _) => {
            violation(format!("{function} returned LEASE_OK but wrote no handle ({slot:?})"));
            None
        }
        (_, true) => None,
        (status, false) => {
            violation(format!("{function} returned {status:?} but wrote its output ({slot:?})"));
            None
        }
    }
}

/// A C string from arbitrary bytes: an interior NUL simply ends it.
pub fn c_string(bytes: &[u8]) -> Vec<u8> {
    let mut string = bytes.to_vec();
    string.push(0);
    string
}

/// What C sees of `bytes` passed through [`c_string`].
pub fn c_text(bytes: &[u8]) -> &[u8] {
    bytes.split(|&byte| byte == 0).next().unwrap_or_default()
}

/// A pointer to a C string, or NULL.
pub fn c_ptr(string: &Option<Vec<u8>>) -> *const c_char {
    string.as_ref().map_or(std::ptr::null(), |string| string.as_ptr().cast())
}
