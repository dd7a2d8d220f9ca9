//! Scenario 13: N processes contending for one key. Each worker loops until the same deadline:
//! acquire, hold 2 ms, release; the figures are the acquisitions per second of all (against the
//! ceiling that 2 ms holds allow), the smallest and largest process's share against an equal
//! one, and the CPU all of them used, per acquisition. Through liblease's lock and through the
//! predecessor's.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::handover::PREDECESSOR;
use super::scenario_dir;
use crate::child::{run_to_deadline, Worker};
use crate::contender::LockKind;
use crate::plot::Plot;
use crate::report::{Figure, Section, Side};
use crate::{Config, Result};

const HOLD: Duration = Duration::from_millis(2);

/// One process's `result` answer: acquisitions, failures, cpu_s.
type ProcessResult = HashMap<String, f64>;

pub fn run(config: &Config, _plots: &mut Vec<Plot>) -> Section {
    let duration = config.pick(Duration::from_secs(5), Duration::from_secs(1));
    let counts: &[usize] = if config.quick { &[2, 4] } else { &[2, 8, 32] };
    let mut section = Section::new(13, "processes contending for one key");
    section.parameter("processes", format!("{counts:?}"));
    section.parameter("duration_s", duration.as_secs_f64());
    section.parameter("hold_ms", HOLD.as_millis() as u64);
    let Some(dir) = scenario_dir(&mut section, "contention") else { return section };
    let ceiling = 1_000.0 / HOLD.as_millis() as f64;
    for &processes in counts {
        let side = |kind: LockKind| {
            let db = dir.path().join(format!("{}-{processes}.db", kind.name()));
            Side::of(contest(kind, &db, processes, duration))
        };
        let (liblease, predecessor) = (side(LockKind::Liblease), side(LockKind::Predecessor));
        let against = format!("{processes} processes, vs {PREDECESSOR}");
        let field = |r: &ProcessResult, name: &str| r.get(name).copied().unwrap_or(f64::NAN);
        let total =
            |results: &Vec<ProcessResult>| results.iter().map(|r| field(r, "acquisitions")).sum::<f64>();
        let per_s = |results: &Vec<ProcessResult>| total(results) / duration.as_secs_f64();
        // A process's count against an equal share of all acquisitions, in %.
        let of_equal = |results: &Vec<ProcessResult>, pick: fn(f64, f64) -> f64, start: f64| {
            let equal = total(results) / results.len() as f64;
            results.iter().map(|r| field(r, "acquisitions")).fold(start, pick) / equal * 100.0
        };
        let cpu = |results: &Vec<ProcessResult>| results.iter().map(|r| field(r, "cpu_s")).sum::<f64>();
        let failures =
            |results: &Vec<ProcessResult>| results.iter().map(|r| field(r, "failures")).sum::<f64>();
        type Read<'a> = &'a dyn Fn(&Vec<ProcessResult>) -> f64;
        let share_low = |r: &Vec<ProcessResult>| of_equal(r, f64::min, f64::INFINITY);
        let share_high = |r: &Vec<ProcessResult>| of_equal(r, f64::max, 0.0);
        let of_ceiling = |r: &Vec<ProcessResult>| per_s(r) / ceiling * 100.0;
        let cpu_share = |r: &Vec<ProcessResult>| cpu(r) / duration.as_secs_f64() * 100.0;
        let cpu_each = |r: &Vec<ProcessResult>| cpu(r) * 1e3 / total(r);
        let rows: [(&str, &str, Read); 7] = [
            ("acquisitions per s, all processes", "1/s", &per_s),
            ("% of the ceiling that 2 ms holds allow", "%", &of_ceiling),
            ("fewest acquisitions of a process, % of an equal share", "%", &share_low),
            ("most acquisitions of a process, % of an equal share", "%", &share_high),
            ("CPU of all processes, % of one core", "% core", &cpu_share),
            ("CPU of all processes per acquisition", "ms", &cpu_each),
            ("acquisitions that failed (10 s timeout, or an error)", "times", &failures),
        ];
        for (metric, unit, read) in rows {
            section.figures.push(
                Figure::new(&against, metric, unit)
                    .liblease(liblease.measure(read), liblease.count(|r| total(r) as usize))
                    .baseline(predecessor.measure(read), predecessor.count(|r| total(r) as usize)),
            );
        }
    }
    section.note(format!(
        "N worker processes (N = {counts:?}), each with its own store, loop for {:.0} s: acquire \
         (10 s timeout), hold {} ms, release; the ceiling is one holder at a time, {ceiling:.0} \
         holds/s. CPU: each worker's utime + stime of all its threads (/proc/self/stat, 10 ms \
         ticks) over its loop. liblease at its default options: the waiter whose turn it is (the \
         one that has waited longest) is woken by the release, which is said on the board and \
         rings its bell (inotify), takes the lease over in one commit, and looks at least every \
         250 ms; the others sleep on the board until their turn.",
        duration.as_secs_f64(),
        HOLD.as_millis()
    ));
    section
}

fn contest(kind: LockKind, db: &Path, processes: usize, duration: Duration) -> Result<Vec<ProcessResult>> {
    let spawn = |id: usize| {
        Worker::spawn(
            &format!("contender {}", id + 1),
            "contend",
            &[
                ("kind", kind.name().to_owned()),
                ("db", db.display().to_string()),
                ("key", "sync".to_owned()),
                ("hold_ms", HOLD.as_millis().to_string()),
            ],
        )
    };
    // A worker waiting when time is up gives up within its acquire timeout.
    run_to_deadline(processes, spawn, duration, duration + Duration::from_secs(25))
}
