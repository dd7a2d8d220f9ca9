//! Scenario 12: the cost of a small write. One thread, one file, nobody else: a transaction that
//! inserts one row (begin, insert, commit), and a single insert through `execute`, through
//! liblease and on a bare rusqlite connection (the same SQL, `BEGIN IMMEDIATE`, the same
//! `synchronous=NORMAL`). liblease's extra cost is its writer queue and board, and the record of
//! what each commit changed (see `changes`, in the library), which this scenario exists to
//! watch: run it at two commits to see what a change costs.

use std::path::Path;
use std::time::{Duration, Instant};

use super::scenario_dir;
use crate::child::Worker;
use crate::report::{distribution, Section, Side};
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
