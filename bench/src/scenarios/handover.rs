//! Scenario 3: handover. Two processes alternate holding one key; the figure is the time from
//! one's release to the other's hold, while the other is already waiting in `acquire`.
//!
//! The parent drives both workers step by step. For handover N: the waiter is told to acquire
//! and answers `waiting` just before it calls acquire; then the holder is told to release after
//! a pause drawn from `HOLD_MS` (so the waiter has been waiting that long, and its backoff is at
//! a different phase each time); the holder takes its timestamp just before releasing, the
//! waiter just after its acquire returns, both on CLOCK_MONOTONIC.

use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use super::scenario_dir;
use crate::child::Worker;
use crate::clock::ms_between;
use crate::contender::LockKind;
use crate::plot::Plot;
use crate::report::{distribution, Section, Side};
use crate::rng::Rng;
use crate::stats::Stat;
use crate::{Config, Result};

/// How long the waiter waits in acquire before the holder releases, in ms.
const HOLD_MS: RangeInclusive<u64> = 5..=100;
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

pub const PREDECESSOR: &str = "the predecessor's lock: 500 ms lease, 50 ms renewal, polls 10 ms..1 s";

pub fn run(config: &Config, plots: &mut Vec<Plot>) -> Section {
    let handovers = config.pick(1_000, 20);
    let mut section = Section::new(3, "handover between two processes");
    section.parameter("handovers", handovers);
    section.parameter("waiter_waits_ms", format!("{}..={}", HOLD_MS.start(), HOLD_MS.end()));
    let Some(dir) = scenario_dir(&mut section, "handover") else { return section };
    let liblease = Side::of(measure(LockKind::Liblease, &dir.path().join("liblease.db"), handovers));
    let predecessor = Side::of(measure(LockKind::Predecessor, &dir.path().join("predecessor.db"), handovers));

    let mut plot = Plot::new(
        "handover.svg",
        "Handover: release by one process -> held by the waiting other",
        "milliseconds from release to held (log scale)",
    );
    let latencies = (liblease.map(|h| h.latencies.clone()), predecessor.map(|h| h.latencies.clone()));
    let release_calls =
        (liblease.map(|h| h.release_calls.clone()), predecessor.map(|h| h.release_calls.clone()));
    plot.add("liblease (default options)", latencies.0.samples());
    plot.add("predecessor's lock", latencies.1.samples());
    plots.push(plot);

    for (metric, (ours, theirs), stats) in [
        ("release -> other holds", &latencies, &[Stat::P50, Stat::P99, Stat::Max, Stat::Mean][..]),
        ("the release call itself", &release_calls, &[Stat::P50, Stat::P99, Stat::Max][..]),
    ] {
        section.figures.extend(distribution(
            PREDECESSOR,
            metric,
            "ms",
            &ours.summary(),
            Some(&theirs.summary()),
            stats,
        ));
    }
    section.note(format!(
        "two worker processes alternate on one key; the waiter is in acquire for {}..{} ms (uniformly \
         drawn) before the holder releases; release -> other holds is the waiter's CLOCK_MONOTONIC \
         time just after acquire returns minus the holder's just before it releases, paired by \
         handover number; {handovers} handovers each (the first acquisition is not counted); the \
         release call is timed by the holder from just before it to its return.",
        HOLD_MS.start(),
        HOLD_MS.end()
    ));
    section.note(
        "liblease: Lock::acquire / Guard::release with the default options; baseline: the \
         predecessor's algorithm (bench/src/baselines/predecessor_lock.rs) on a database of its own.",
    );
    section
}

/// What was measured of each handover, in ms.
#[derive(Debug, Clone)]
struct Handovers {
    /// From just before the release call to just after the other's acquire returned.
    latencies: Vec<f64>,
    /// How long the release call itself took.
    release_calls: Vec<f64>,
}

fn measure(kind: LockKind, db: &Path, count: usize) -> Result<Handovers> {
    let args =
        [("kind", kind.name().to_owned()), ("db", db.display().to_string()), ("key", "handover".into())];
    // One after the other, so that they do not race to set up the database.
    let mut first = Worker::spawn("handover A", "handover", &args)?;
    first.expect("ready", STEP_TIMEOUT)?;
    let mut second = Worker::spawn("handover B", "handover", &args)?;
    second.expect("ready", STEP_TIMEOUT)?;
    let mut workers = [first, second];
    let mut rng = Rng::seeded();

    workers[0].send("acquire 0")?;
    workers[0].expect("waiting", STEP_TIMEOUT)?;
    workers[0].expect("acquired", STEP_TIMEOUT)?;
    let mut handovers =
        Handovers { latencies: Vec::with_capacity(count), release_calls: Vec::with_capacity(count) };
    for seq in 1..=count {
        let (holder, waiter) = ((seq - 1) % 2, seq % 2);
        workers[waiter].send(&format!("acquire {seq}"))?;
        workers[waiter].expect("waiting", STEP_TIMEOUT)?;
        let hold_ms = rng.in_range(HOLD_MS);
        workers[holder].send(&format!("release {} {hold_ms}", seq - 1))?;
        let released = workers[holder].expect("released", STEP_TIMEOUT)?;
        let acquired = workers[waiter].expect("acquired", STEP_TIMEOUT)?;
        let (released, acquired) = (timestamps(&released, seq - 1)?, timestamps(&acquired, seq)?);
        match (released.as_slice(), acquired.as_slice()) {
            ([released, release_returned], [acquired]) => {
                handovers.latencies.push(ms_between(*released, *acquired));
                handovers.release_calls.push(ms_between(*released, *release_returned));
            }
            other => return Err(format!("malformed answers for handover {seq}: {other:?}").into()),
        }
    }
    for worker in workers {
        worker.finish(STEP_TIMEOUT)?;
    }
    Ok(handovers)
}

/// The timestamps of an answer `<seq> <t>...`, checking that it is about handover `seq`.
fn timestamps(words: &[String], seq: usize) -> Result<Vec<u64>> {
    match words.split_first() {
        Some((got, times)) if got.parse::<usize>().ok() == Some(seq) => {
            Ok(times.iter().map(|t| t.parse()).collect::<std::result::Result<_, _>>()?)
        }
        _ => Err(format!("expected an answer about handover {seq}, got {words:?}").into()),
    }
}
