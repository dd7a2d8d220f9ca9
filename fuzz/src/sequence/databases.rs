//! The calls on databases and transactions, and what the header says of each.

use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::atomic::Ordering;

use lease::ffi::{self, LeaseStatus};

use super::actor::Actor;
use super::handles::{free_db, put, rollback_tx, Db, Tx, TxState, TXS};
use super::ops::{CStatement, Effect, InDbRow, InTxRow, Ref, RowPlan, Statement};
use crate::contract::{self, c_ptr, c_string, out_slot, violation, written};
use crate::files::{FileTag, Opens, PathArg};
use crate::rows::{self, Column};
use crate::suspension;

use LeaseStatus::{
    LEASE_BUSY as BUSY, LEASE_DATABASE as DATABASE, LEASE_INVALID_ARGUMENT as INVALID, LEASE_LOST as LOST,
    LEASE_MISUSE as MISUSE, LEASE_OK as OK, LEASE_SUSPENDED as SUSPENDED,
};

/// What `out_changes` holds until a call writes it; no statement changes that many rows.
const NO_CHANGES: u64 = u64::MAX - 0x5eed;

impl Actor<'_> {
    pub(super) fn db_open(&mut self, path: PathArg, null_out: bool, slot: u8, busy_timeout_ms: u8) {
        let (path, opens) = self.input.files.c_path(path);
        let (usual, suspended) = self.open_statuses(opens, null_out);
        let mut out = out_slot();
        let out_ptr = if null_out { null_mut() } else { &mut out };
        let mark = suspension::mark();
        let status = contract::status_after(
            "lease_db_open",
            || ffi::lease_db_open(c_ptr(&path), out_ptr),
            || mark.allowed(usual, suspended),
        );
        if null_out {
            return;
        }
        let Some(ptr) = written("lease_db_open", status, out) else { return };
        // The default busy timeout is 5 s: the fuzzer's writes wait at most a few milliseconds.
        contract::status("lease_db_set_busy_timeout", &[OK], || {
            ffi::lease_db_set_busy_timeout(ptr, busy_timeout_ms.into())
        });
        match opens {
            Opens::File(file) => free_db(put(&mut self.own.dbs, slot, Db { ptr, file })),
            _ => contract::quiet("lease_db_free", || ffi::lease_db_free(ptr)),
        }
    }

    /// Marks the file of a database that a statement may write.
    fn touch(&self, file: Option<usize>, statement: &CStatement) {
        if let (Some(file), true) = (file, statement.may_write()) {
            self.input.touched[file].store(true, Ordering::SeqCst);
        }
    }

    pub(super) fn db_execute(&self, db: Ref, statement: &Statement, null_changes: bool) {
        let db = self.db(db);
        let statement = CStatement::new(statement);
        self.touch(db.map(|db| db.file), &statement);
        let (usual, suspended) =
            if db.is_none() { (&[INVALID][..], &[INVALID][..]) } else { execute_allowed(&statement) };
        let db_ptr = db.map_or(null_mut(), |db| db.ptr);
        let mut changes = NO_CHANGES;
        let changes_ptr = if null_changes { null_mut() } else { &mut changes };
        let mark = suspension::mark();
        let status = contract::status_after(
            "lease_db_execute",
            || {
                ffi::lease_db_execute(
                    db_ptr,
                    statement.sql(),
                    statement.params(),
                    statement.count,
                    changes_ptr,
                )
            },
            || mark.allowed(usual, suspended),
        );
        check_changes("lease_db_execute", status, null_changes, changes);
    }

    pub(super) fn db_query(&self, db: Ref, statement: &Statement, plan: &RowPlan, nested: &InDbRow) {
        let db = self.db(db);
        let statement = CStatement::new(statement);
        let db_ptr = db.map_or(null_mut(), |db| db.ptr);
        // A read, which a suspension does not stop.
        let allowed: &[LeaseStatus] = if db.is_none() || statement.invalid() || plan.null_callback {
            &[INVALID]
        } else {
            &[OK, INVALID, BUSY, DATABASE]
        };
        // Resolved now: the callback runs during the call.
        let nested_statement = match nested {
            InDbRow::ExecuteSame(statement) => {
                let statement = CStatement::new(statement);
                self.touch(db.map(|db| db.file), &statement);
                Some(statement)
            }
            _ => None,
        };
        let other = match nested {
            InDbRow::QueryOther(other) => self.db(*other).map_or(null_mut(), |other| other.ptr),
            _ => null_mut(),
        };
        let mut first = true;
        let in_row = || {
            if !std::mem::take(&mut first) {
                return;
            }
            match nested {
                InDbRow::Nothing => {}
                InDbRow::QuerySame => {
                    query_select_one("lease_db_query", &[MISUSE], |sql, on_row, context| {
                        ffi::lease_db_query(db_ptr, sql, std::ptr::null(), 0, on_row, context)
                    })
                }
                InDbRow::ExecuteSame(_) => {
                    let statement = nested_statement.as_ref().expect("made above");
                    let (usual, suspended) = execute_allowed(statement);
                    let mark = suspension::mark();
                    contract::status_after(
                        "lease_db_execute",
                        || {
                            ffi::lease_db_execute(
                                db_ptr,
                                statement.sql(),
                                statement.params(),
                                statement.count,
                                null_mut(),
                            )
                        },
                        || mark.allowed(usual, suspended),
                    );
                }
                InDbRow::QueryOther(_) => {
                    let allowed: &[LeaseStatus] = match other {
                        _ if other.is_null() => &[INVALID],
                        _ if other == db_ptr => &[MISUSE],
                        _ => &[OK, BUSY, DATABASE],
                    };
                    query_select_one("lease_db_query", allowed, |sql, on_row, context| {
                        ffi::lease_db_query(other, sql, std::ptr::null(), 0, on_row, context)
                    });
                }
            }
        };
        query(
            "lease_db_query",
            || allowed.to_vec(),
            plan,
            in_row,
            |on_row, context| {
                ffi::lease_db_query(
                    db_ptr,
                    statement.sql(),
                    statement.params(),
                    statement.count,
                    on_row,
                    context,
                )
            },
        );
    }

    pub(super) fn db_begin(&mut self, db: Ref, begin: Begin, null_out: bool, slot: u8) {
        let db = self.db(db);
        let db_ptr = db.map_or(null_mut(), |db| db.ptr);
        let mut out = out_slot();
        let out_ptr = if null_out { null_mut() } else { &mut out };
        let invalid = null_out || db.is_none();
        // While suspended (the second lists), no transaction begins.
        let mark = suspension::mark();
        let (function, status) = match begin {
            Begin::Plain => {
                let (usual, suspended): (&[LeaseStatus], &[LeaseStatus]) =
                    if invalid { (&[INVALID], &[INVALID]) } else { (&[OK, BUSY, DATABASE], &[SUSPENDED]) };
                let status = contract::status_after(
                    "lease_db_begin",
                    || ffi::lease_db_begin(db_ptr, out_ptr),
                    || mark.allowed(usual, suspended),
                );
                ("lease_db_begin", status)
            }
            Begin::Chunked(chunk_ms) => {
                let (usual, suspended): (&[LeaseStatus], &[LeaseStatus]) = if invalid || chunk_ms == 0 {
                    (&[INVALID], &[INVALID])
                } else {
                    (&[OK, BUSY, DATABASE], &[SUSPENDED])
                };
                let status = contract::status_after(
                    "lease_db_begin_chunked",
                    || ffi::lease_db_begin_chunked(db_ptr, chunk_ms, out_ptr),
                    || mark.allowed(usual, suspended),
                );
                ("lease_db_begin_chunked", status)
            }
            Begin::Fenced(guard) => {
                let guard = self.guard(guard);
                let guard_ptr = guard.map_or(null_mut(), |guard| guard.ptr);
                // A guard that was there while the process was suspended is lost.
                let (usual, suspended): (&[LeaseStatus], &[LeaseStatus]) = match (db, guard) {
                    (Some(db), Some(guard)) if !null_out => {
                        if guard.surely_lost() {
                            (&[LOST], &[LOST, SUSPENDED])
                        } else if guard.file != FileTag::Database(db.file) {
                            (&[INVALID, LOST], &[INVALID, LOST, SUSPENDED])
                        } else if self.input.surely_held(guard) {
                            (&[OK, BUSY], &[LOST, SUSPENDED])
                        } else {
                            (&[OK, LOST, BUSY, DATABASE], &[LOST, SUSPENDED])
                        }
                    }
                    _ => (&[INVALID], &[INVALID]),
                };
                let status = contract::status_after(
                    "lease_db_begin_fenced",
                    || ffi::lease_db_begin_fenced(db_ptr, guard_ptr.cast_const(), out_ptr),
                    || mark.allowed(usual, suspended),
                );
                if let (LOST, Some(guard)) = (status, guard) {
                    guard.lost.store(true, Ordering::SeqCst);
                }
                ("lease_db_begin_fenced", status)
            }
        };
        if null_out {
            return;
        }
        if let Some(ptr) = written(function, status, out) {
            let file = db.map_or(0, |db| db.file);
            let chunked = matches!(begin, Begin::Chunked(_));
            let (since, quiet) = (mark, suspension::mark());
            let tx = Tx { ptr, file, chunked, state: TxState::Open, since, quiet };
            let at = usize::from(slot) % TXS;
            rollback_tx(self.txs[at].replace(tx));
        }
    }

    pub(super) fn tx_execute(&mut self, tx: Ref, statement: &Statement, null_changes: bool) {
        let at = self.tx_slot(tx);
        let statement = CStatement::new(statement);
        let tx = at.and_then(|at| self.txs[at].as_ref());
        self.touch(tx.map(|tx| tx.file), &statement);
        let state = tx.map(|tx| tx.state);
        let allowed = tx_allowed(
            tx,
            tx_call_allowed(state, statement.invalid()),
            tx_call_suspended(state, statement.invalid()),
        );
        let tx_ptr = tx.map_or(null_mut(), |tx| tx.ptr);
        let mut changes = NO_CHANGES;
        let changes_ptr = if null_changes { null_mut() } else { &mut changes };
        let status = contract::status_after(
            "lease_tx_execute",
            || {
                ffi::lease_tx_execute(
                    tx_ptr,
                    statement.sql(),
                    statement.params(),
                    statement.count,
                    changes_ptr,
                )
            },
            allowed,
        );
        check_changes("lease_tx_execute", status, null_changes, changes);
        if let Some(tx) = at.and_then(|at| self.txs[at].as_mut()) {
            after_tx_call(tx, status);
        }
    }

    pub(super) fn tx_query(&mut self, tx: Ref, statement: &Statement, plan: &RowPlan, nested: &InTxRow) {
        let at = self.tx_slot(tx);
        let statement = CStatement::new(statement);
        let tx = at.and_then(|at| self.txs[at].as_ref());
        self.touch(tx.map(|tx| tx.file), &statement);
        let (state, invalid) = (tx.map(|tx| tx.state), statement.invalid() || plan.null_callback);
        let allowed = tx_allowed(tx, tx_call_allowed(state, invalid), tx_call_suspended(state, invalid));
        let tx_ptr = tx.map_or(null_mut(), |tx| tx.ptr);
        let db_ptr = match nested {
            InTxRow::QueryDb(db) => self.db(*db).map_or(null_mut(), |db| db.ptr),
            _ => null_mut(),
        };
        // Set when the callback ended the transaction: the query then frees it as it returns.
        let mut consumed = false;
        let mut first = true;
        let in_row = || {
            if !std::mem::take(&mut first) {
                return;
            }
            match nested {
                InTxRow::Nothing => {}
                InTxRow::ExecuteSame => {
                    let sql = c_string(b"SELECT 1");
                    contract::status("lease_tx_execute", &[MISUSE], || {
                        ffi::lease_tx_execute(tx_ptr, sql.as_ptr().cast(), std::ptr::null(), 0, null_mut())
                    });
                }
                InTxRow::MaybeCommitSame => {
                    contract::status("lease_tx_maybe_commit", &[MISUSE], || {
                        ffi::lease_tx_maybe_commit(tx_ptr, null_mut())
                    });
                }
                InTxRow::CommitSame => {
                    contract::status("lease_tx_commit", &[MISUSE], || ffi::lease_tx_commit(tx_ptr));
                    consumed = true;
                }
                InTxRow::RollbackSame => {
                    contract::quiet("lease_tx_rollback", || ffi::lease_tx_rollback(tx_ptr));
                    consumed = true;
                }
                InTxRow::QueryDb(_) => {
                    let allowed: &[LeaseStatus] =
                        if db_ptr.is_null() { &[INVALID] } else { &[OK, BUSY, DATABASE] };
                    query_select_one("lease_db_query", allowed, |sql, on_row, context| {
                        ffi::lease_db_query(db_ptr, sql, std::ptr::null(), 0, on_row, context)
                    });
                }
            }
        };
        let status = query("lease_tx_query", allowed, plan, in_row, |on_row, context| {
            ffi::lease_tx_query(tx_ptr, statement.sql(), statement.params(), statement.count, on_row, context)
        });
        let Some(at) = at else { return };
        if consumed {
            self.txs[at] = None;
        } else if let Some(tx) = self.txs[at].as_mut() {
            after_tx_call(tx, status);
        }
    }

    pub(super) fn tx_maybe_commit(&mut self, tx: Ref, null_out: bool, prefill: bool) {
        let at = self.tx_slot(tx);
        let tx = at.and_then(|at| self.txs[at].as_mut());
        let state = tx.as_ref().map(|tx| tx.state);
        let usual: &[LeaseStatus] = match state {
            None => &[INVALID],
            Some(TxState::Ended) => &[MISUSE],
            Some(TxState::Open) => &[OK, BUSY, DATABASE],
            Some(TxState::Unknown) => &[OK, BUSY, DATABASE, MISUSE],
        };
        let allowed = tx_allowed(tx.as_deref(), usual, tx_call_suspended(state, false));
        let tx_ptr = tx.as_ref().map_or(null_mut(), |tx| tx.ptr);
        let mut committed = prefill;
        let out_ptr = if null_out { null_mut() } else { &mut committed };
        let status = contract::status_after(
            "lease_tx_maybe_commit",
            || ffi::lease_tx_maybe_commit(tx_ptr, out_ptr),
            allowed,
        );
        let Some(tx) = tx else { return };
        match status {
            OK if committed && !null_out && !tx.chunked => {
                violation("lease_tx_maybe_commit committed a transaction that is not chunked".into())
            }
            OK => {
                tx.state = TxState::Open;
                tx.quiet = suspension::mark();
            }
            _ => {
                if committed != prefill {
                    violation(format!("lease_tx_maybe_commit returned {status:?} but wrote out_committed"));
                }
                tx.state = TxState::Ended;
            }
        }
    }

    pub(super) fn tx_commit(&mut self, tx: Ref) {
        let tx = self.tx_slot(tx).and_then(|at| self.txs[at].take());
        let state = tx.as_ref().map(|tx| tx.state);
        let usual: &[LeaseStatus] = match state {
            None => &[INVALID],
            Some(TxState::Ended) => &[MISUSE],
            Some(TxState::Open) => &[OK, DATABASE],
            Some(TxState::Unknown) => &[OK, DATABASE, MISUSE],
        };
        let allowed = tx_allowed(tx.as_ref(), usual, tx_call_suspended(state, false));
        let tx_ptr = tx.map_or(null_mut(), |tx| tx.ptr);
        contract::status_after("lease_tx_commit", || ffi::lease_tx_commit(tx_ptr), allowed);
    }
}

/// Which lease_db_begin.
#[derive(Clone, Copy)]
pub(super) enum Begin {
    Plain,
    Chunked(u32),
    Fenced(Ref),
}

/// The statuses of a call on a transaction in `state` (`None`: NULL), with arguments that are
/// surely invalid or not. The header does not say which of LEASE_INVALID_ARGUMENT and
/// LEASE_MISUSE wins for invalid arguments on an ended transaction: either may.
fn tx_call_allowed(state: Option<TxState>, invalid: bool) -> &'static [LeaseStatus] {
    match state {
        None => &[INVALID],
        Some(TxState::Open) if invalid => &[INVALID],
        Some(TxState::Ended | TxState::Unknown) if invalid => &[INVALID, MISUSE],
        Some(TxState::Ended) => &[MISUSE],
        Some(TxState::Open | TxState::Unknown) => &[OK, INVALID, DATABASE, MISUSE],
    }
}

/// The statuses of a call on a transaction in `state` that a suspension rolled back since its
/// last call that succeeded: it says so once (its arguments are checked first), then it has
/// ended.
fn tx_call_suspended(state: Option<TxState>, invalid: bool) -> &'static [LeaseStatus] {
    match state {
        None | Some(TxState::Ended) => tx_call_allowed(state, invalid),
        Some(_) if invalid => tx_call_allowed(state, invalid),
        Some(TxState::Open) => &[SUSPENDED],
        // SQLite may have ended it before the suspension came.
        Some(TxState::Unknown) => &[SUSPENDED, MISUSE],
    }
}

/// The statuses allowed of a call on `tx`, once it returned: `usual`; `suspended` when a
/// whole suspension came since its last call that succeeded, which rolled it back (no call
/// on it ran meanwhile: only this thread uses it); either when one may have come since it
/// began.
fn tx_allowed(
    tx: Option<&Tx>,
    usual: &'static [LeaseStatus],
    suspended: &'static [LeaseStatus],
) -> impl FnOnce() -> Vec<LeaseStatus> {
    let marks = tx.map(|tx| (tx.since, tx.quiet.suspension_completed()));
    move || {
        let Some((since, rolled_back)) = marks else { return usual.to_vec() };
        match rolled_back {
            true => suspended.to_vec(),
            false if since.may_have_suspended() => suspension::either(usual, suspended),
            false => usual.to_vec(),
        }
    }
}

/// What a transaction is after a statement on it returned `status`.
fn after_tx_call(tx: &mut Tx, status: LeaseStatus) {
    tx.state = match status {
        // Ended by its own SQL, by SQLite after a failure, or by a suspension (or it had ended
        // already).
        MISUSE | SUSPENDED => TxState::Ended,
        // SQLite may have rolled it back.
        DATABASE => TxState::Unknown,
        OK => {
            tx.quiet = suspension::mark();
            TxState::Open
        }
        _ => tx.state,
    };
}

/// The statuses of lease_db_execute of a statement on a handle, usually and while the process
/// is suspended: then a write is refused, after its SQL is checked; a read runs.
fn execute_allowed(statement: &CStatement) -> (&'static [LeaseStatus], &'static [LeaseStatus]) {
    const USUAL: &[LeaseStatus] = &[OK, INVALID, BUSY, DATABASE];
    if statement.invalid() {
        return (&[INVALID], &[INVALID]);
    }
    match statement.effect {
        Effect::Reads => (USUAL, USUAL),
        Effect::Writes => (USUAL, &[INVALID, BUSY, DATABASE, SUSPENDED]),
        Effect::Unknown => (USUAL, &[OK, INVALID, BUSY, DATABASE, SUSPENDED]),
    }
}

/// Runs a query with `plan`'s callback, calling `in_row` on each row, and checks what the rows
/// may do: none after the callback stopped the query, none on LEASE_INVALID_ARGUMENT, and the
/// same number of columns in each.
fn query(
    function: &str,
    allowed: impl FnOnce() -> Vec<LeaseStatus>,
    plan: &RowPlan,
    mut in_row: impl FnMut(),
    call: impl FnOnce(ffi::LeaseRowCallback, *mut c_void) -> LeaseStatus,
) -> LeaseStatus {
    let mut rows = 0usize;
    let mut stopped = false;
    let mut columns = None;
    let stop_code = if plan.stop_code == 0 { 1 } else { plan.stop_code };
    let mut each = |row: &[Column]| {
        if stopped {
            violation(format!("{function} handed over a row after its callback stopped it"));
        }
        if *columns.get_or_insert(row.len()) != row.len() {
            violation(format!("{function} handed over rows of {columns:?} and {} columns", row.len()));
        }
        rows += 1;
        in_row();
        if plan.stop_after != 0 && rows >= plan.stop_after.into() {
            stopped = true;
            return stop_code;
        }
        0
    };
    let mut on_row: &mut rows::OnRow = &mut each;
    let (callback, context) = rows::callback(&mut on_row);
    let callback = if plan.null_callback { None } else { callback };
    let status = contract::status_after(function, || call(callback, context), allowed);
    if status == INVALID && rows > 0 {
        violation(format!("{function} returned LEASE_INVALID_ARGUMENT after handing over {rows} rows"));
    }
    status
}

/// A query of "SELECT 1" from inside a row callback.
fn query_select_one(
    function: &str,
    allowed: &[LeaseStatus],
    call: impl FnOnce(*const std::ffi::c_char, ffi::LeaseRowCallback, *mut c_void) -> LeaseStatus,
) {
    let sql = c_string(b"SELECT 1");
    let plan = RowPlan { null_callback: false, stop_after: 0, stop_code: 0 };
    query(
        function,
        || allowed.to_vec(),
        &plan,
        || {},
        |on_row, context| call(sql.as_ptr().cast(), on_row, context),
    );
}

/// Checks out_changes: written on LEASE_OK (unless NULL), untouched otherwise.
fn check_changes(function: &str, status: LeaseStatus, null_changes: bool, changes: u64) {
    let written = changes != NO_CHANGES;
    if null_changes {
        return;
    }
    if status == OK && !written {
        violation(format!("{function} returned LEASE_OK but left out_changes unset"));
    }
    if status != OK && written {
        violation(format!("{function} returned {status:?} but wrote out_changes ({changes})"));
    }
}
