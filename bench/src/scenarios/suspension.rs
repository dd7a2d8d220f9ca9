//! Scenario 10: suspension. An app that goes to the background calls `lease_suspend`: its
//! leases go back to the database at once, its write transactions end, and the process may be
//! suspended. The figures: how soon a process waiting for the app's lease holds it, and how long
//! `lease_suspend` takes while a chunked import runs in the app; beside the same app stopped
//! (SIGSTOP) in the middle of its import without `lease_suspend`.
//!
//! For each trial, on a fresh file: the app (a worker in `suspend` mode) holds the lease with
//! the default options and runs a chunked import; a second worker waits in `acquire`; then the
//! app is told to suspend (or is stopped). Times are CLOCK_MONOTONIC, read by each process.

use std::path::Path;
use std::time::Duration;

use super::scenario_dir;
use crate::child::Worker;
use crate::clock::ms_between;
use crate::report::{distribution, Figure, Section, Side};
use crate::stats::Stat;
use crate::{Config, Result};

const STEP_TIMEOUT: Duration = Duration::from_secs(30);
const AGAINST: &str = "the app stopped mid-import without lease_suspend (SIGSTOP)";

pub fn run(config: &Config, _plots: &mut Vec<crate::plot::Plot>) -> Section {
    let trials = config.pick(50, 3);
    // A stopped app is given a whole lease and more per trial: fewer trials.
    let stopped_trials = config.pick(3, 1);
    let lease_ms = lease::LockOptions::DEFAULT.lease.as_millis() as u64;
    let mut section = Section::new(10, "suspension (lease_suspend)");
    section.parameter("trials", trials);
    section.parameter("stopped_trials", stopped_trials);
    section.parameter("lease_ms", lease_ms);
    let Some(dir) = scenario_dir(&mut section, "suspension") else { return section };

    let suspended = Side::of(measure(dir.path(), trials, Way::Suspend, lease_ms));
    let stopped = Side::of(measure(dir.path(), stopped_trials, Way::Stop, lease_ms));
    let stats = [Stat::P50, Stat::P99, Stat::Max];
    section.figures.push(
        Figure::new(AGAINST, "the waiting process held the lease while the app was suspended", "trials")
            .liblease(suspended.measure(|t| t.from_call.len() as f64), suspended.count(|t| t.trials))
            .baseline(stopped.measure(|t| t.from_call.len() as f64), stopped.count(|t| t.trials)),
    );
    for (metric, samples) in [
        ("suspended -> the waiting process holds", suspended.map(|t| t.from_call.clone())),
        ("lease_suspend returned -> the waiting process holds", suspended.map(|t| t.from_return.clone())),
        ("the lease_suspend call, beside a chunked import", suspended.map(|t| t.durations.clone())),
    ] {
        section.figures.extend(distribution(AGAINST, metric, "ms", &samples.summary(), None, &stats));
    }
    section.note(format!(
        "the app holds the lease (default options: {lease_ms} ms) and runs a chunked import (default \
         chunks, rows back to back); another process waits in acquire; the app calls \
         lease::lifecycle::suspend (5 s timeout), timed around the call; 'suspended -> holds' runs \
         from the call to the waiter's time just after acquire returned; 'returned -> holds' is \
         negative when the waiter held the lease before lease_suspend returned."
    ));
    section.note(format!(
        "baseline: the app is stopped (SIGSTOP) in the middle of its import, as a system suspends an \
         app that did not call lease_suspend; the waiter is given the lease's {lease_ms} ms and 5 s \
         more. The stopped import holds SQLite's write lock, so nobody can take the expired lease \
         (nor write at all) until the app runs again: the case iOS answers by killing the app \
         (0xdead10cc)."
    ));
    section
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Suspend,
    Stop,
}

#[derive(Debug, Clone, Default)]
struct Trials {
    trials: usize,
    /// How long lease_suspend took.
    durations: Vec<f64>,
    /// From lease_suspend returning to the waiter holding.
    from_return: Vec<f64>,
    /// From lease_suspend being called (or the SIGSTOP) to the waiter holding; one per trial in
    /// which the waiter held the lease while the app was suspended.
    from_call: Vec<f64>,
}

fn measure(dir: &Path, trials: usize, way: Way, lease_ms: u64) -> Result<Trials> {
    let mut measured = Trials { trials, ..Trials::default() };
    for trial in 0..trials {
        let db = dir.join(format!("{way:?}-{trial}.db"));
        let args = [("db", db.display().to_string()), ("key", "sync".to_owned())];
        let mut app = Worker::spawn("suspending app", "suspend", &args)?;
        app.expect("ready", STEP_TIMEOUT)?;
        let waiter_args = [
            ("kind", "liblease".to_owned()),
            ("db", db.display().to_string()),
            ("key", "sync".to_owned()),
            ("timeout_ms", (lease_ms + 60_000).to_string()),
        ];
        let mut waiter = Worker::spawn("waiter", "wait", &waiter_args)?;
        waiter.expect("waiting", STEP_TIMEOUT)?;
        // Waiting in acquire, asleep until the lease may have changed hands.
        std::thread::sleep(Duration::from_millis(20));
        match way {
            Way::Suspend => {
                app.send("suspend")?;
                let answer = app.expect("suspended", STEP_TIMEOUT)?;
                let [called, returned, outcome] = answer.as_slice() else {
                    return Err(format!("malformed answer {answer:?}").into());
                };
                if outcome != "ok" {
                    return Err("lease_suspend failed".into());
                }
                let (called, returned): (u64, u64) = (called.parse()?, returned.parse()?);
                let held: u64 = waiter.expect("acquired", STEP_TIMEOUT)?.first().ok_or("no time")?.parse()?;
                measured.durations.push(ms_between(called, returned));
                measured.from_return.push(signed_ms(returned, held));
                measured.from_call.push(signed_ms(called, held));
                waiter.finish(STEP_TIMEOUT)?;
            }
            Way::Stop => {
                let stopped = crate::clock::now_ns();
                app.signal(libc::SIGSTOP)?;
                // Held while the app is stopped, or not at all (the waiter is then killed).
                if let Ok(held) = waiter.expect("acquired", Duration::from_millis(lease_ms + 5_000)) {
                    let held: u64 = held.first().ok_or("no time")?.parse()?;
                    measured.from_call.push(signed_ms(stopped, held));
                }
                app.signal(libc::SIGCONT)?;
            }
        }
        drop(app);
    }
    Ok(measured)
}

/// `to - from` in ms, negative when `to` came first.
fn signed_ms(from: u64, to: u64) -> f64 {
    if to >= from {
        ms_between(from, to)
    } else {
        -ms_between(to, from)
    }
}
