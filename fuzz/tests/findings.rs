//! The fuzzers' findings in liblease, each reduced to a few C ABI calls. They fail until
//! liblease is fixed; the input that found each is in regressions/, which tests/corpus.rs
//! replays.

use std::ffi::{c_void, CStr, CString};
use std::ptr::{null, null_mut};

use lease::ffi::{self, LeaseStatus, LeaseValue};

use LeaseStatus::{LEASE_DATABASE, LEASE_INVALID_ARGUMENT, LEASE_MISUSE, LEASE_OK};

fn last_error() -> String {
    // SAFETY: liblease's last error is a C string, valid until this thread's next failing call.
    unsafe { CStr::from_ptr(ffi::lease_last_error_message()) }.to_string_lossy().into_owned()
}

unsafe extern "C" fn ignore_rows(_: *mut c_void, _: *const LeaseValue, _: usize) -> i32 {
    0
}

/// abi_sequence, regressions/abi_sequence/crash-be4046a9f4949877665bfb8850abd80fd3aaeae2: a
/// statement that SQLite answers SQLITE_LOCKED inside a transaction (any PRAGMA wal_checkpoint)
/// makes lease_tx_execute and lease_tx_query return LEASE_BUSY, which the header does not list
/// for them (OK, INVALID_ARGUMENT, DATABASE, MISUSE), and which says that trying again later may
/// succeed: inside the transaction it never does.
#[test]
fn a_checkpoint_inside_a_transaction_gets_a_status_the_header_lists() {
    let documented = [LEASE_OK, LEASE_INVALID_ARGUMENT, LEASE_DATABASE, LEASE_MISUSE];
    let dir = tempfile::tempdir().unwrap();
    let path = CString::new(dir.path().join("db.db").into_os_string().into_encoded_bytes()).unwrap();
    let mut db = null_mut();
    assert_eq!(ffi::lease_db_open(path.as_ptr(), &mut db), LEASE_OK);
    let mut tx = null_mut();
    assert_eq!(ffi::lease_db_begin(db, &mut tx), LEASE_OK);
    let sql = c"PRAGMA wal_checkpoint";

    let executed = ffi::lease_tx_execute(tx, sql.as_ptr(), null(), 0, null_mut());
    let executed = (executed, last_error());
    let queried = ffi::lease_tx_query(tx, sql.as_ptr(), null(), 0, Some(ignore_rows), null_mut());
    let queried = (queried, last_error());
    ffi::lease_tx_rollback(tx);
    ffi::lease_db_free(db);

    assert!(documented.contains(&executed.0), "lease_tx_execute: {executed:?}");
    assert!(documented.contains(&queried.0), "lease_tx_query: {queried:?}");
}
