//! Scenario 7: writers across processes. Three worker processes each run short write
//! transactions back to back on one file (begin, one insert, hold the transaction 1 ms,
//! commit) until the same deadline; the figures are each one's share of the commits and its
//! waits to begin, through liblease's `Database` and through plain SQLite.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::scenario_dir;
use crate::baselines::plain_sqlite;
use crate::child::{run_to_deadline, Worker};
use crate::plot::Plot;
use crate::report::{Figure, Section, Side};
use crate::writers::{create_schema, Design};
use crate::{Config, Result};

const PROCESSES: usize = 3;
const TRANSACTION: Duration = Duration::from_millis(1);

/// One process's `result` answer: commits, failures, waits, p50_ms, p99_ms, max_ms.
type ProcessResult = HashMap<String, f64>;

pub fn run(config: &Config, _plots: &mut Vec<Plot>) -> Section {
    let duration = config.pick(Duration::from_secs(10), Duration::from_secs(3));
    let mut section = Section::new(7, "writers across processes");
    section.parameter("processes", PROCESSES);
    section.parameter("duration_s", duration.as_secs_f64());
    section.parameter("transaction_ms", TRANSACTION.as_millis() as u64);
    section.parameter("busy_timeout_s", plain_sqlite::BUSY_TIMEOUT.as_secs_f64());
    let Some(dir) = scenario_dir(&mut section, "writers-across") else { return section };
    let side = |design: Design| {
        Side::of(contest(design, &dir.path().join(format!("{}.db", design.name())), duration))
    };
    let (liblease, plain) = (side(Design::Liblease), side(Design::PlainSqlite));
    let against = "plain SQLite: busy_timeout 5 s, no queue";
    let field = |results: &[ProcessResult], index: usize, name: &str| {
        results[index].get(name).copied().unwrap_or(f64::NAN)
    };
    let total =
        |results: &Vec<ProcessResult>| (0..PROCESSES).map(|i| field(results, i, "commits")).sum::<f64>();
    let share = |results: &Vec<ProcessResult>, index: usize| {
        100.0 * field(results, index, "commits") / total(results)
    };
    let waits = |results: &Vec<ProcessResult>, index: usize| field(results, index, "waits") as usize;
    let all_waits = |results: &Vec<ProcessResult>| (0..PROCESSES).map(|i| waits(results, i)).sum::<usize>();

    section.figures.push(
        Figure::new(against, "commits, all processes", "commits")
            .liblease(liblease.measure(total), None)
            .baseline(plain.measure(total), None),
    );
    for index in 0..PROCESSES {
        section.figures.push(
            Figure::new(against, format!("process {}: share of commits", index + 1), "%")
                .liblease(liblease.measure(|r| share(r, index)), None)
                .baseline(plain.measure(|r| share(r, index)), None),
        );
    }
    let smallest = |r: &Vec<ProcessResult>| (0..PROCESSES).map(|i| share(r, i)).fold(f64::INFINITY, f64::min);
    section.figures.push(
        Figure::new(against, "smallest share of commits", "%")
            .liblease(liblease.measure(smallest), None)
            .baseline(plain.measure(smallest), None),
    );
    for index in 0..PROCESSES {
        for (stat, name) in [("p99_ms", "p99"), ("max_ms", "max")] {
            section.figures.push(
                Figure::new(against, format!("process {}: wait to begin, {name}", index + 1), "ms")
                    .liblease(
                        liblease.measure(|r| field(r, index, stat)),
                        liblease.count(|r| waits(r, index)),
                    )
                    .baseline(plain.measure(|r| field(r, index, stat)), plain.count(|r| waits(r, index))),
            );
        }
    }
    let failures = |r: &Vec<ProcessResult>| (0..PROCESSES).map(|i| field(r, i, "failures")).sum::<f64>();
    section.figures.push(
        Figure::new(against, "begins that failed (busy timeout), all processes", "begins")
            .liblease(liblease.measure(failures), liblease.count(all_waits))
            .baseline(plain.measure(failures), plain.count(all_waits)),
    );
    section.note(format!(
        "{PROCESSES} worker processes, each with one connection, run transactions back to back for \
         {:.0} s: begin, insert one row, hold {} ms, commit; a process's wait runs from asking to \
         begin until holding the transaction (samples = begins; a failed begin counts with its wait).",
        duration.as_secs_f64(),
        TRANSACTION.as_millis()
    ));
    section.note(
        "liblease: Database::begin (its queue is per process; across processes it retries SQLite's \
         busy with short pauses); baseline: BEGIN IMMEDIATE on plain connections with a 5 s busy \
         timeout, SQLite's busy handler doing the waiting.",
    );
    section
}

fn contest(design: Design, db: &Path, duration: Duration) -> Result<Vec<ProcessResult>> {
    create_schema(db)?;
    let spawn = |id: usize| {
        Worker::spawn(
            &format!("writer {}", id + 1),
            "writer",
            &[
                ("design", design.name().to_owned()),
                ("db", db.display().to_string()),
                ("id", id.to_string()),
                ("txn_ms", TRANSACTION.as_millis().to_string()),
            ],
        )
    };
    // A writer stuck in begin when time is up gives up within its busy timeout.
    run_to_deadline(
        PROCESSES,
        spawn,
        duration,
        duration + plain_sqlite::BUSY_TIMEOUT + Duration::from_secs(10),
    )
}
