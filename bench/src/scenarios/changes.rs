//! Scenario 11: change notification. Process A commits a row; how soon is process B told?
//!
//! liblease: B observes the file (`Database::observe`): on Linux it is woken by inotify on the
//! bell A rings after its commit. Baseline: what an app does without liblease, B polling
//! `PRAGMA data_version` on a plain SQLite connection every 10 ms (a Darwin notification or a
//! bound service wakes sooner, but must be wired by hand on both sides). Each trial: A commits
//! row N and notes when its commit returned; B notes when its callback (or its poll) began, and
//! reads the largest N it sees; a trial ends when B has seen N. Times are CLOCK_MONOTONIC, read
//! by each process.

use std::path::Path;
use std::time::Duration;

use super::scenario_dir;
use crate::child::Worker;
use crate::clock::ms_between;
use crate::report::{distribution, Section, Side};
use crate::stats::Stat;
use crate::{Config, Result};

const STEP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_MS: u64 = 10;

pub fn run(config: &Config, _plots: &mut Vec<crate::plot::Plot>) -> Section {
    let trials = config.pick(1000, 20);
    let poll_trials = config.pick(200, 10);
    let mut section = Section::new(11, "change notification across processes");
    section.parameter("trials", trials);
    section.parameter("poll_trials", poll_trials);
    section.parameter("poll_ms", POLL_MS);
    let Some(dir) = scenario_dir(&mut section, "changes") else { return section };

    let liblease = Side::of(measure(&dir.path().join("observed.db"), trials, "observe", &[])).summary();
    let every = [("every_ms", POLL_MS.to_string())];
    let polled = Side::of(measure(&dir.path().join("polled.db"), poll_trials, "poll", &every)).summary();
    section.figures.extend(distribution(
        &format!("plain SQLite, polling PRAGMA data_version every {POLL_MS} ms"),
        "commit returned in A -> B told",
        "ms",
        &liblease,
        Some(&polled),
        &[Stat::P50, Stat::P99, Stat::Max],
    ));
    section.note(
        "A and B are two processes on one file; A commits one row through Database::execute, B \
         observes with Database::observe (inotify on the board's bell and the WAL; elsewhere than \
         Linux and Android it would look every 50 ms); each trial waits for B to have seen A's row, \
         then 1 ms before the next.",
    );
    section
}

fn measure(db: &Path, trials: usize, mode: &str, extra: &[(&str, String)]) -> Result<Vec<f64>> {
    let connection = rusqlite::Connection::open(db)?;
    connection.pragma_update(None, "journal_mode", "wal")?;
    connection.execute_batch("CREATE TABLE changes (n INTEGER)")?;
    drop(connection);
    let path = ("db", db.display().to_string());
    let mut committer = Worker::spawn("committer", "commit", std::slice::from_ref(&path))?;
    let mut args = vec![path];
    args.extend(extra.iter().cloned());
    let mut observer = Worker::spawn("observer", mode, &args)?;
    observer.expect("ready", STEP_TIMEOUT)?;
    let mut latencies = Vec::with_capacity(trials);
    for n in 0..trials as i64 {
        committer.send(&format!("commit {n}"))?;
        let answer = committer.expect("committed", STEP_TIMEOUT)?;
        let committed: u64 = answer.get(1).ok_or("no commit time")?.parse()?;
        loop {
            let told = observer.expect("changed", STEP_TIMEOUT)?;
            let [t, max] = told.as_slice() else { return Err(format!("malformed answer {told:?}").into()) };
            if max.parse::<i64>()? >= n {
                let t: u64 = t.parse()?;
                // The poll may have looked before the commit returned (it began earlier).
                latencies.push(if t >= committed {
                    ms_between(committed, t)
                } else {
                    -ms_between(t, committed)
                });
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    committer.finish(STEP_TIMEOUT)?;
    observer.finish(STEP_TIMEOUT)?;
    Ok(latencies)
}
