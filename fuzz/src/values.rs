//! The `values` target: SQL values and parameters through lease_db_execute, lease_db_query,
//! lease_tx_execute and lease_tx_query.
//!
//! Each call binds LeaseValues of every kind, valid or not, to a statement whose placeholders
//! may not match them. The header says exactly what must happen: an invalid parameter is
//! LEASE_INVALID_ARGUMENT naming it (params[i]), the wrong count is LEASE_INVALID_ARGUMENT, and
//! anything else runs; and a value read back (echoed by a SELECT, or inserted and selected) is
//! the value given: TEXT as TEXT, BLOB as BLOB, REAL bit for bit (a NaN as NULL), INTEGER equal.

use std::ptr::null_mut;

use arbitrary::{Arbitrary, Unstructured};
use lease::ffi::{self, LeaseDb, LeaseStatus, LeaseTx, LeaseValue, LEASE_VALUE_INTEGER};

use crate::contract::{self, c_string, out_slot, violation, written};
use crate::files::Files;
use crate::params::{first_invalid, Bound, Param};
use crate::rows::{self, Column};

use LeaseStatus::{LEASE_INVALID_ARGUMENT as INVALID, LEASE_OK as OK};

/// Calls per input: each may carry megabytes.
const MAX_CALLS: usize = 12;

/// What `out_changes` holds until a call writes it; no statement changes that many rows.
const NO_CHANGES: u64 = u64::MAX - 0x5eed;

#[derive(Arbitrary, Debug)]
struct Call {
    via: Via,
    shape: Shape,
    params: Vec<Param>,
    /// Pass NULL for the array (with the count below).
    null_params: bool,
    count: Count,
}

/// Which function runs the statement.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    DbQuery,
    DbExecute,
    TxQuery,
    TxExecute,
}

/// The statement: its placeholders are meant for the parameters passed, unless `Shape::Mismatch`.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// SELECT ?1, ?2, ...: echoes the parameters.
    Echo,
    /// SELECT :p1, :p2, ...: named placeholders, bound in order.
    Named,
    /// Echo with one placeholder more, or one fewer, than the parameters.
    Mismatch { more: bool },
    /// SELECT CAST(?1 AS TEXT): TEXT if the bytes are UTF-8, else a BLOB of the same bytes.
    CastText,
    /// INSERT INTO t(v) VALUES (?1), (?2), ...: then read back.
    Insert,
}

/// How many parameters are passed (n_params): never more than the array holds.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Count {
    All,
    Fewer(u8),
    /// With a NULL array only: a count that no array could have.
    Absurd,
}

pub fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let mut calls = Vec::new();
    while calls.len() < MAX_CALLS && !input.is_empty() {
        match Call::arbitrary(&mut input) {
            Ok(call) => calls.push(call),
            Err(_) => break,
        }
    }
    contract::adopt_last_error();
    let files = Files::new();
    let mut session = Session::open(&files);
    for call in &calls {
        session.run(call);
        contract::assert_kept(call);
    }
    session.close();
    contract::assert_kept(&"the end of the input");
}

/// One database, its table t, and the transaction the Tx calls share.
struct Session {
    db: *mut LeaseDb,
    tx: Option<*mut LeaseTx>,
    /// How many rows the inserts made (committed or in `tx`): the next one's key follows them.
    inserted: i64,
}

impl Session {
    fn open(files: &Files) -> Session {
        let path = c_string(files.database(0).as_os_str().as_encoded_bytes());
        let mut db = out_slot();
        let status =
            contract::status("lease_db_open", &[OK], || ffi::lease_db_open(path.as_ptr().cast(), &mut db));
        let db = written("lease_db_open", status, db).expect("the fuzzer's own database opens");
        let session = Session { db, tx: None, inserted: 0 };
        // No column affinity: every value is stored as it is given.
        session.execute_plain("CREATE TABLE t(k INTEGER PRIMARY KEY, v)");
        session
    }

    fn execute_plain(&self, sql: &str) {
        let sql = c_string(sql.as_bytes());
        contract::status("lease_db_execute", &[OK], || {
            ffi::lease_db_execute(self.db, sql.as_ptr().cast(), null_mut::<LeaseValue>(), 0, null_mut())
        });
    }

    fn tx(&mut self) -> *mut LeaseTx {
        let db = self.db;
        *self.tx.get_or_insert_with(|| {
            let mut tx = out_slot();
            let status = contract::status("lease_db_begin", &[OK], || ffi::lease_db_begin(db, &mut tx));
            written("lease_db_begin", status, tx).unwrap_or(null_mut())
        })
    }

    fn run(&mut self, call: &Call) {
        let bound = Bound::new(&call.params);
        let count = match (call.count, call.null_params) {
            (Count::All, _) => bound.len(),
            (Count::Fewer(fewer), _) => bound.len().saturating_sub(fewer.into()),
            (Count::Absurd, true) => usize::MAX,
            (Count::Absurd, false) => bound.len(),
        };
        // An absurd count (with a NULL array) fails before the SQL matters.
        let meant = count.min(bound.len());
        let placeholders = match call.shape {
            Shape::CastText => 1,
            Shape::Mismatch { more: true } => meant + 1,
            Shape::Mismatch { more: false } => meant.saturating_sub(1),
            _ => meant,
        };
        let sql = statement(call.shape, placeholders);
        let params = if call.null_params { std::ptr::null() } else { bound.as_ptr() };

        // The header's verdict, in the order it checks.
        let expected = if call.null_params && count > 0 {
            Err("params".to_owned())
        } else if let Some(index) = (!call.null_params).then(|| first_invalid(&call.params, count)).flatten()
        {
            Err(format!("params[{index}]"))
        } else if placeholders != count {
            Err("parameter".to_owned())
        } else if call.via == Via::DbQuery && call.shape == Shape::Insert {
            Err("read-only".to_owned())
        } else {
            Ok(())
        };
        let allowed: &[LeaseStatus] = if expected.is_ok() { &[OK] } else { &[INVALID] };

        let function = match call.via {
            Via::DbQuery => "lease_db_query",
            Via::DbExecute => "lease_db_execute",
            Via::TxQuery => "lease_tx_query",
            Via::TxExecute => "lease_tx_execute",
        };
        let mut rows = Vec::new();
        let mut changes = NO_CHANGES;
        let status = match call.via {
            Via::DbQuery | Via::TxQuery => {
                let tx = if call.via == Via::TxQuery { self.tx() } else { null_mut() };
                let db = self.db;
                let mut collect = |row: &[Column]| {
                    rows.push(row.to_vec());
                    0
                };
                let mut on_row: &mut rows::OnRow = &mut collect;
                let (callback, context) = rows::callback(&mut on_row);
                contract::status(function, allowed, || match call.via {
                    Via::DbQuery => {
                        ffi::lease_db_query(db, sql.as_ptr().cast(), params, count, callback, context)
                    }
                    _ => ffi::lease_tx_query(tx, sql.as_ptr().cast(), params, count, callback, context),
                })
            }
            Via::DbExecute | Via::TxExecute => {
                // A write outside the transaction would wait for it: it commits first.
                let tx = if call.via == Via::TxExecute { self.tx() } else { self.commit() };
                let db = self.db;
                contract::status(function, allowed, || match call.via {
                    Via::DbExecute => {
                        ffi::lease_db_execute(db, sql.as_ptr().cast(), params, count, &mut changes)
                    }
                    _ => ffi::lease_tx_execute(tx, sql.as_ptr().cast(), params, count, &mut changes),
                })
            }
        };

        if status != OK {
            if let Err(needle) = &expected {
                let message = contract::last_error();
                if !message.contains(needle.as_str()) {
                    violation(format!("{function}'s message should mention {needle:?}: {message:?}"));
                }
            }
            if !rows.is_empty() {
                violation(format!("{function} failed ({status:?}) after handing over {} rows", rows.len()));
            }
            if changes != NO_CHANGES {
                violation(format!("{function} failed ({status:?}) but wrote out_changes ({changes})"));
            }
            return;
        }
        if expected.is_err() {
            return;
        }
        let given: Vec<Column> = call
            .params
            .iter()
            .take(count)
            .map(|param| param.expected().expect("valid, as checked"))
            .collect();
        let echoed: Vec<Option<Column>> = match call.shape {
            Shape::CastText => vec![cast_to_text(&given[0])],
            _ if count == 0 => vec![Some(Column::Integer(0))],
            _ => given.iter().cloned().map(Some).collect(),
        };
        match call.via {
            Via::DbExecute | Via::TxExecute => {
                let inserts = if call.shape == Shape::Insert { count as u64 } else { 0 };
                if changes != inserts {
                    violation(format!("{function} reported {changes} changes, not {inserts}"));
                }
                if call.shape == Shape::Insert {
                    let from = self.inserted;
                    self.inserted += count as i64;
                    self.check_read_back(call.via == Via::TxExecute, from, &given);
                }
            }
            Via::DbQuery | Via::TxQuery => match call.shape {
                Shape::Insert => {
                    let from = self.inserted;
                    self.inserted += count as i64;
                    self.check_read_back(true, from, &given);
                }
                _ => check_rows(function, &rows, &echoed),
            },
        }
    }

    /// Reads back the rows inserted after key `from`, in the transaction or as committed.
    fn check_read_back(&mut self, in_tx: bool, from: i64, given: &[Column]) {
        let sql = c_string(b"SELECT v FROM t WHERE k > ?1 ORDER BY k");
        let key = LeaseValue {
            kind: LEASE_VALUE_INTEGER,
            integer: from,
            real: 0.0,
            data: std::ptr::null(),
            len: 0,
        };
        let mut rows = Vec::new();
        let mut collect = |row: &[Column]| {
            rows.push(row.to_vec());
            0
        };
        let mut on_row: &mut rows::OnRow = &mut collect;
        let (callback, context) = rows::callback(&mut on_row);
        let sql = sql.as_ptr().cast();
        if in_tx {
            let tx = self.tx();
            contract::status("lease_tx_query", &[OK], || {
                ffi::lease_tx_query(tx, sql, &key, 1, callback, context)
            });
        } else {
            let db = self.db;
            contract::status("lease_db_query", &[OK], || {
                ffi::lease_db_query(db, sql, &key, 1, callback, context)
            });
        }
        let got: Vec<Column> = rows.into_iter().flatten().collect();
        if got != given {
            violation(format!("read back values that differ from those inserted: {}", diff(&got, given)));
        }
    }

    /// Commits the transaction, if one is open; returns NULL, the transaction no call is on.
    fn commit(&mut self) -> *mut LeaseTx {
        if let Some(tx) = self.tx.take() {
            contract::status("lease_tx_commit", &[OK], || ffi::lease_tx_commit(tx));
        }
        null_mut()
    }

    fn close(mut self) {
        self.commit();
        contract::quiet("lease_db_free", || ffi::lease_db_free(self.db));
    }
}

/// The SQL of `shape` with `placeholders` placeholders.
fn statement(shape: Shape, placeholders: usize) -> Vec<u8> {
    let list = |prefix: &str| (1..=placeholders).map(|n| format!("{prefix}{n}")).collect::<Vec<_>>();
    let sql = match shape {
        _ if placeholders == 0 && shape != Shape::Insert => "SELECT 0".to_owned(),
        Shape::Echo | Shape::Mismatch { .. } => format!("SELECT {}", list("?").join(", ")),
        Shape::Named => format!("SELECT {}", list(":p").join(", ")),
        Shape::CastText => "SELECT CAST(?1 AS TEXT)".to_owned(),
        Shape::Insert if placeholders == 0 => "INSERT INTO t(v) SELECT 1 WHERE 0".to_owned(),
        Shape::Insert => format!("INSERT INTO t(v) VALUES {}", list("(?").join("), ") + ")"),
    };
    c_string(sql.as_bytes())
}

/// What SELECT CAST(? AS TEXT) gives: TEXT and BLOB bytes as TEXT, which arrives as a BLOB when
/// it is not UTF-8.
fn cast_to_text(value: &Column) -> Option<Column> {
    match value {
        Column::Null => Some(Column::Null),
        Column::Text(bytes) | Column::Blob(bytes) => Some(match std::str::from_utf8(bytes) {
            Ok(_) => Column::Text(bytes.clone()),
            Err(_) => Column::Blob(bytes.clone()),
        }),
        // SQLite's own formatting of numbers is not the contract's business.
        Column::Integer(_) | Column::Real(_) => None,
    }
}

/// Checks that a query gave exactly one row of `expected` (`None`: any value there).
fn check_rows(function: &str, rows: &[Vec<Column>], expected: &[Option<Column>]) {
    let [row] = rows else {
        return violation(format!("{function} gave {} rows, not 1", rows.len()));
    };
    if row.len() != expected.len() {
        return violation(format!("{function} gave {} columns, not {}", row.len(), expected.len()));
    }
    for (index, (got, expected)) in row.iter().zip(expected).enumerate() {
        if let Some(expected) = expected.as_ref().filter(|expected| *expected != got) {
            violation(format!(
                "{function}: column {index} came back different: {}",
                diff(std::slice::from_ref(got), std::slice::from_ref(expected))
            ));
        }
    }
}

/// A short account of how two lists of values differ (they may hold megabytes).
fn diff(got: &[Column], expected: &[Column]) -> String {
    let short = |column: &Column| match column {
        Column::Text(bytes) if bytes.len() > 32 => {
            format!("Text({} bytes, {:?}...)", bytes.len(), &bytes[..32])
        }
        Column::Blob(bytes) if bytes.len() > 32 => {
            format!("Blob({} bytes, {:?}...)", bytes.len(), &bytes[..32])
        }
        other => format!("{other:?}"),
    };
    let first = got.iter().zip(expected).position(|(got, expected)| got != expected);
    match first {
        Some(index) => {
            format!("at {index}: got {}, expected {}", short(&got[index]), short(&expected[index]))
        }
        None => format!("got {} values, expected {}", got.len(), expected.len()),
    }
}
