//! Scenario 12: the cost of a small write. One thread, one file, nobody else: a transaction that
//! inserts one row (begin, insert, commit), and a single insert through `execute`, through
//! liblease and on a bare rusqlite connection (the same SQL, `BEGIN IMMEDIATE`, the same
//! `synchronous=NORMAL`). liblease's extra cost is its writer queue and board, and the record of
//! what each commit changed (see `changes`, in the library), which this scenario exists to
//! watch: run it at two commits to see what a change costs.

use std::ffi::{CStr, CString};
use std::path::Path;
use std::time::{Duration, Instant};

use super::scenario_dir;
use crate::child::Worker;
use crate::report::{distribution, Figure, Measure, Section, Side};
use crate::stats::Stat;
use crate::{Config, Result};

const ROW: &str = "a row of about forty bytes, like a note's";

pub fn run(config: &Config, _plots: &mut Vec<crate::plot::Plot>) -> Section {
    let ops = config.pick(20_000, 500);
    let mut section = Section::new(12, "cost of a small write");
    section.parameter("ops", ops);
    let Some(dir) = scenario_dir(&mut section, "write-cost") else { return section };
    let db = |name: &str| dir.path().join(format!("{name}.db"));
    for (what, run) in [
        ("transaction of one insert (begin, insert, commit)", Write::Transaction),
        ("one insert through execute", Write::Execute),
        ("the same transaction, another process observing", Write::Observed),
    ] {
        let liblease = Side::of(liblease_writes(&db(&format!("liblease-{run:?}")), ops, run)).summary();
        let sqlite = Side::of(sqlite_writes(&db(&format!("sqlite-{run:?}")), ops, run)).summary();
        section.figures.extend(distribution(
            "the same on bare rusqlite",
            what,
            "µs",
            &liblease,
            Some(&sqlite),
            &[Stat::Mean, Stat::P50, Stat::P99],
        ));
    }
    let (rows, runs) = (config.pick(100_000, 2_000), config.pick(9, 2));
    section.parameter("bulk_rows", rows);
    section.parameter("bulk_runs", runs);
    // The two sides take turns, run by run, so that the machine's slower minutes fall on both.
    let (mut liblease, mut bare) = (Ok(Vec::new()), Ok(Vec::new()));
    for i in 0..runs {
        for (side, run, name) in [
            (&mut liblease, bulk_through_c_abi as fn(&Path, usize) -> Result<f64>, "liblease"),
            (&mut bare, bulk_on_rusqlite, "rusqlite"),
        ] {
            if let Ok(rates) = side {
                match run(&db(&format!("bulk-{name}-{i}")), rows) {
                    Ok(rate) => rates.push(rate),
                    Err(e) => *side = Err(e),
                }
            }
        }
    }
    // Each liblease run beside the bare run right after it: the median of these ratios is less
    // moved by the machine's pace than a ratio of two medians.
    let paired = match (&liblease, &bare) {
        (Ok(l), Ok(b)) => Side::of(Ok(l.iter().zip(b).map(|(l, b)| l / b * 100.0).collect::<Vec<f64>>())),
        _ => Side::of(Err("a side failed".into())),
    }
    .summary();
    let (liblease, bare) = (Side::of(liblease).summary(), Side::of(bare).summary());
    let against = "the same inserts on a bare prepared rusqlite statement";
    section.figures.push(
        Figure::new(against, "bulk insert in one transaction, rows per s, median of runs", "rows/s")
            .liblease(liblease.measure(|s| s.p50), liblease.count(|s| s.n))
            .baseline(bare.measure(|s| s.p50), bare.count(|s| s.n)),
    );
    section.figures.push(
        Figure::new(
            against,
            "bulk insert: liblease's rows per s, % of bare rusqlite's, median of pairs",
            "%",
        )
        .liblease(paired.measure(|s| s.p50), paired.count(|s| s.n))
        .baseline(Measure::Text("100".into()), None),
    );
    section.note(format!(
        "bulk insert: {rows} rows of (integer, {}-byte text) in one transaction on a fresh file, \
         {runs} runs each, the two sides taking turns; liblease through the C ABI (lease_db_begin, lease_tx_execute with two \
         LeaseValue parameters per row, lease_tx_commit); rusqlite: BEGIN IMMEDIATE, one cached \
         prepared statement executed per row, COMMIT.",
        ROW.len()
    ));
    section.note(format!(
        "{ops} writes of one {}-byte row into one table, each timed alone, one thread, a fresh file \
         in WAL mode with synchronous=NORMAL; liblease: Database::begin + Transaction::execute + \
         commit, and Database::execute; rusqlite: BEGIN IMMEDIATE + INSERT + COMMIT, and the INSERT \
         alone.",
        ROW.len()
    ));
    section.note(
        "writers record what each commit changed (in liblease_change, inside the transaction) and \
         ring the board's bell only while some process observes the file: the first two rows are \
         unobserved, the third has an observer (Database::observe) in another process, told of \
         every commit.",
    );
    section
}

#[derive(Debug, Clone, Copy)]
enum Write {
    Transaction,
    Execute,
    /// A transaction while another process observes the file: writers then record what they
    /// change (see `changes`, in the library).
    Observed,
}

fn liblease_writes(db: &Path, ops: usize, write: Write) -> Result<Vec<f64>> {
    let database = lease::Database::open(db)?;
    database.execute("CREATE TABLE notes (body TEXT)", &[])?;
    // The observer reads the largest n of table `changes` (see the worker).
    database.execute("CREATE TABLE changes (n INTEGER)", &[])?;
    let _observer = match write {
        Write::Observed => {
            let mut worker = Worker::spawn("observer", "observe", &[("db", db.display().to_string())])?;
            worker.expect("ready", Duration::from_secs(30))?;
            Some(worker)
        }
        _ => None,
    };
    let row = [lease::Value::Text(ROW)];
    let mut samples = Vec::with_capacity(ops);
    for _ in 0..ops {
        let began = Instant::now();
        match write {
            Write::Transaction | Write::Observed => {
                let mut tx = database.begin()?;
                tx.execute("INSERT INTO notes (body) VALUES (?)", &row)?;
                tx.commit()?;
            }
            Write::Execute => {
                database.execute("INSERT INTO notes (body) VALUES (?)", &row)?;
            }
        }
        samples.push(began.elapsed().as_secs_f64() * 1e6);
    }
    Ok(samples)
}

fn sqlite_writes(db: &Path, ops: usize, write: Write) -> Result<Vec<f64>> {
    let connection = rusqlite::Connection::open(db)?;
    connection.pragma_update(None, "journal_mode", "wal")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute_batch("CREATE TABLE notes (body TEXT)")?;
    let mut samples = Vec::with_capacity(ops);
    for _ in 0..ops {
        let began = Instant::now();
        let transaction = !matches!(write, Write::Execute);
        if transaction {
            connection.execute_batch("BEGIN IMMEDIATE")?;
        }
        connection.prepare_cached("INSERT INTO notes (body) VALUES (?)")?.execute([ROW])?;
        if transaction {
            connection.execute_batch("COMMIT")?;
        }
        samples.push(began.elapsed().as_secs_f64() * 1e6);
    }
    Ok(samples)
}

/// Inserts `rows` rows in one transaction through the C ABI; returns rows per second.
fn bulk_through_c_abi(db: &Path, rows: usize) -> Result<f64> {
    use lease::ffi::{
        lease_db_begin, lease_db_execute, lease_db_free, lease_db_open, lease_last_error_message,
        lease_tx_commit, lease_tx_execute, LeaseDb, LeaseStatus, LeaseTx, LeaseValue, LEASE_VALUE_INTEGER,
        LEASE_VALUE_TEXT,
    };
    let check = |status: LeaseStatus, call: &str| -> Result<()> {
        if status == LeaseStatus::LEASE_OK {
            return Ok(());
        }
        // SAFETY: the message of this thread's last failure, valid until its next call.
        let message = unsafe { CStr::from_ptr(lease_last_error_message()) }.to_string_lossy().into_owned();
        Err(format!("{call}: {message}").into())
    };
    let path = CString::new(db.to_str().ok_or("a path that is not UTF-8")?)?;
    let (create, insert) = (
        CString::new("CREATE TABLE bulk (n INTEGER, body TEXT)")?,
        CString::new("INSERT INTO bulk (n, body) VALUES (?, ?)")?,
    );
    let mut handle: *mut LeaseDb = std::ptr::null_mut();
    // Valid strings and out-pointers; each handle is freed once, below.
    {
        check(lease_db_open(path.as_ptr(), &mut handle), "lease_db_open")?;
        let result = (|| -> Result<f64> {
            check(
                lease_db_execute(handle, create.as_ptr(), std::ptr::null(), 0, std::ptr::null_mut()),
                "create",
            )?;
            let began = Instant::now();
            let mut tx: *mut LeaseTx = std::ptr::null_mut();
            check(lease_db_begin(handle, &mut tx), "lease_db_begin")?;
            let mut params = [
                LeaseValue {
                    kind: LEASE_VALUE_INTEGER,
                    integer: 0,
                    real: 0.0,
                    data: std::ptr::null(),
                    len: 0,
                },
                LeaseValue {
                    kind: LEASE_VALUE_TEXT,
                    integer: 0,
                    real: 0.0,
                    data: ROW.as_ptr(),
                    len: ROW.len(),
                },
            ];
            for n in 0..rows {
                params[0].integer = n as i64;
                let status = lease_tx_execute(tx, insert.as_ptr(), params.as_ptr(), 2, std::ptr::null_mut());
                if let Err(failed) = check(status, "lease_tx_execute") {
                    lease::ffi::lease_tx_rollback(tx);
                    return Err(failed);
                }
            }
            check(lease_tx_commit(tx), "lease_tx_commit")?;
            Ok(rows as f64 / began.elapsed().as_secs_f64())
        })();
        lease_db_free(handle);
        result
    }
}

/// The same inserts on a bare rusqlite connection; returns rows per second.
fn bulk_on_rusqlite(db: &Path, rows: usize) -> Result<f64> {
    let connection = rusqlite::Connection::open(db)?;
    connection.pragma_update(None, "journal_mode", "wal")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute_batch("CREATE TABLE bulk (n INTEGER, body TEXT)")?;
    let began = Instant::now();
    connection.execute_batch("BEGIN IMMEDIATE")?;
    {
        let mut insert = connection.prepare_cached("INSERT INTO bulk (n, body) VALUES (?, ?)")?;
        for n in 0..rows {
            insert.execute(rusqlite::params![n as i64, ROW])?;
        }
    }
    connection.execute_batch("COMMIT")?;
    Ok(rows as f64 / began.elapsed().as_secs_f64())
}
