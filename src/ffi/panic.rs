//! The panic boundary: no Rust panic unwinds into C.
//!
//! Every export runs its body through one of the two functions below, inside the body, so that
//! cbindgen sees a plain signature. A body returns `Result`; an `Err` is recorded as the thread's
//! last error, and so is a panic.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::status::{self, LeaseStatus};
use crate::Result;

/// Runs the body of `function`, an export that returns a status: `LEASE_OK`, the error's
/// status, or `LEASE_PANIC`.
pub(crate) fn catch_status(function: &str, body: impl FnOnce() -> Result<()>) -> LeaseStatus {
    // A panic is a bug in liblease: the export reports it and returns. The core's mutexes ignore
    // poisoning, so later calls keep working (on state the panicking call may have left half done).
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => LeaseStatus::LEASE_OK,
        Ok(Err(error)) => status::failed(function, &error),
        Err(payload) => status::panicked(function, panic_message(&*payload)),
    }
}

/// Runs the body of `function`, an export that returns a value (or nothing): on an error or a
/// panic it returns `fallback`, a harmless default, and records why.
pub(crate) fn catch_value<T>(function: &str, fallback: T, body: impl FnOnce() -> Result<T>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            status::failed(function, &error);
            fallback
        }
        Err(payload) => {
            status::panicked(function, panic_message(&*payload));
            fallback
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "(no message)"
    }
}
