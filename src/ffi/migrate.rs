//! The C face of schema migrations: `lease_db_migrate`.

use std::cell::Cell;
use std::ffi::c_void;
use std::time::Duration;

use super::db::LeaseDb;
use super::handle;
use super::panic::catch_status;
use super::status::LeaseStatus;
use super::tx::{self, LeaseTx, TxHandle};
use crate::Error;

/// Runs one migration step inside tx, which the library owns: the step must not commit or roll
/// it back (lease_tx_commit and lease_tx_rollback refuse it, with LEASE_MISUSE), nor keep it past
/// its return. It runs the step's SQL with lease_tx_execute and lease_tx_query and returns
/// LEASE_OK, or any other status to roll the step back. version is the version the step brings
/// the file to. context is the pointer given to lease_db_migrate. Runs on the thread that called
/// lease_db_migrate.
pub type LeaseMigrationStep =
    Option<unsafe extern "C" fn(context: *mut c_void, tx: *mut LeaseTx, version: u32) -> LeaseStatus>;

/// The step as it is called: a C enum comes back as the int it is, whatever number C put in it,
/// and is checked before it is taken for a LeaseStatus. (A C enum is an int, so the two function
/// types are called alike.)
type RawStep = unsafe extern "C" fn(context: *mut c_void, tx: *mut LeaseTx, version: u32) -> u32;

/// Brings db's file to target_version, its PRAGMA user_version being the version: for each
/// version from the current one + 1 up to target_version, calls step in a write transaction of
/// its own, which also sets user_version to that version and which the library commits when step
/// returns LEASE_OK. Each transaction first reads the version again, under SQLite's write lock,
/// so that every step runs exactly once across all the processes (and threads) that migrate the
/// file at the same time: the others wait, up to timeout_ms in all, and return LEASE_OK once the
/// file has reached target_version. A migrating process killed in the middle of a step leaves
/// the version before it; the next caller runs the step. A file already at target_version is
/// not written. Blocks; any thread but the library's.
///
/// Returns:
/// - LEASE_OK: the file is at target_version.
/// - any status step returned other than LEASE_OK: that step was rolled back, and the file stays
///   at the version before it; the message names the version.
/// - LEASE_TIMEOUT: the file did not reach target_version within timeout_ms (another process's
///   step, or other writers, kept the database).
/// - LEASE_DATABASE: the file's version is above target_version (it was migrated by a newer
///   program: an old extension still running after an update, say); the message says both. Or
///   SQLite failed.
/// - LEASE_INVALID_ARGUMENT: db or step is NULL, or step returned a number that is no
///   LeaseStatus (the message says which).
/// - LEASE_SUSPENDED: the process is suspended (lease_suspend).
/// - LEASE_MISUSE: db was opened before fork() and this is the child; or step ended its
///   transaction (with SQL such as COMMIT), or returned while a call on it ran on another thread.
#[no_mangle]
pub extern "C" fn lease_db_migrate(
    db: *mut LeaseDb,
    target_version: u32,
    step: LeaseMigrationStep,
    context: *mut c_void,
    timeout_ms: u32,
) -> LeaseStatus {
    // The status of the step that failed, if one did: returned as it is.
    let step_failed = Cell::new(None);
    let status = catch_status("lease_db_migrate", || {
        // SAFETY: the C contract: db is NULL or a live handle.
        let db = unsafe { handle::borrow(db, "db") }?;
        let step = step.ok_or_else(|| Error::InvalidArgument("step is NULL".into()))?;
        // SAFETY: the same function, with a return type of the same size and passing.
        let step: RawStep = unsafe { std::mem::transmute(step) };
        let timeout = Duration::from_millis(timeout_ms.into());
        db.database().migrate_owned(target_version, timeout, |transaction, version| {
            let lent = handle::into_handle::<LeaseTx>(TxHandle::lent(transaction));
            // SAFETY: the caller's step, with its context and a handle that lives through it.
            let code = unsafe { step(context, lent, version) };
            // SAFETY: made from `lent` above, and taken back once.
            let transaction = unsafe { tx::reclaim(lent) }?;
            match LeaseStatus::from_code(code) {
                Some(LeaseStatus::LEASE_OK) => Ok(transaction),
                status => {
                    step_failed.set(Some(status));
                    Err(step_error(status, code))
                }
            }
        })
    });
    match step_failed.get() {
        // A status the step made up is no status at all: LEASE_INVALID_ARGUMENT says so.
        Some(step_status) if status != LeaseStatus::LEASE_OK => {
            step_status.unwrap_or(LeaseStatus::LEASE_INVALID_ARGUMENT)
        }
        _ => status,
    }
}

/// The error of a step that returned `status` (`None`: the number `code`, which is none).
fn step_error(status: Option<LeaseStatus>, code: u32) -> Error {
    let Some(status) = status else {
        return Error::InvalidArgument(format!("the step returned {code}, which is no LeaseStatus"));
    };
    let said = format!("the step returned {}", status.text().to_string_lossy());
    match status {
        LeaseStatus::LEASE_BUSY => Error::Busy(said),
        LeaseStatus::LEASE_TIMEOUT => Error::Timeout(said),
        LeaseStatus::LEASE_LOST => Error::Lost(said),
        LeaseStatus::LEASE_INVALID_ARGUMENT => Error::InvalidArgument(said),
        LeaseStatus::LEASE_MISUSE => Error::Misuse(said),
        LeaseStatus::LEASE_CANCELLED => Error::Cancelled(said),
        LeaseStatus::LEASE_SUSPENDED => Error::Suspended(said),
        // The status itself is returned (see lease_db_migrate); the error carries the message.
        LeaseStatus::LEASE_DATABASE | LeaseStatus::LEASE_PANIC | LeaseStatus::LEASE_OK => {
            Error::Database(said)
        }
    }
}
