//! Scenario 3: handover. Two processes alternate holding one key; the figure is the time from
//! one's release to the other's hold, while the other is already waiting in `acquire`.
//!
//! The parent drives both workers step by step. For handover N: the waiter is told to acquire
//! and answers `waiting` just before it calls acquire; then the holder is told to release after
//! a pause drawn from `HOLD_MS` (so the waiter has been waiting that long, and its backoff is at
//! a different phase each time); the holder takes its timestamp just before releasing, the
//! waiter just after its acquire returns, both on CLOCK_MONOTONIC.
//!
//! liblease is measured twice: with the system's wake-ups, and with the portable ones that Apple
//! platforms run (`LIBLEASE_WAKEUPS=portable` in both workers' environment; see
//! `src/wakeups.rs`). An idle waiter's cost is measured for each too: the CPU a process uses
//! while it waits in acquire for a lease that another process holds and does not release.

use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use super::scenario_dir;
use crate::child::Worker;
use crate::clock::ms_between;
use crate::contender::LockKind;
use crate::plot::Plot;
use crate::procfs;
use crate::report::{distribution, Figure, Section, Side};
use crate::rng::Rng;
use crate::stats::Stat;
use crate::{Config, Result};

/// How long the waiter waits in acquire before the holder releases, in ms.
const HOLD_MS: RangeInclusive<u64> = 5..=100;
const STEP_TIMEOUT: Duration = Duration::from_secs(15);
/// The environment of a worker that runs the portable wake-ups.
const PORTABLE: &[(&str, &str)] = &[("LIBLEASE_WAKEUPS", "portable")];

pub const PREDECESSOR: &str = "the predecessor's lock: 500 ms lease, 50 ms renewal, polls 10 ms..1 s";

pub fn run(config: &Config, plots: &mut Vec<Plot>) -> Section {
    let handovers = config.pick(1_000, 20);
    let mut section = Section::new(3, "handover between two processes");
    section.parameter("handovers", handovers);
    section.parameter("waiter_waits_ms", format!("{}..={}", HOLD_MS.start(), HOLD_MS.end()));
    let Some(dir) = scenario_dir(&mut section, "handover") else { return section };
    let liblease = Side::of(measure(LockKind::Liblease, &dir.path().join("liblease.db"), handovers, &[]));
    let portable =
        Side::of(measure(LockKind::Liblease, &dir.path().join("portable.db"), handovers, PORTABLE));
    let predecessor =
        Side::of(measure(LockKind::Predecessor, &dir.path().join("predecessor.db"), handovers, &[]));

    let mut plot = Plot::new(
        "handover.svg",
        "Handover: release by one process -> held by the waiting other",
        "milliseconds from release to held (log scale)",
    );
    let latencies = (liblease.map(|h| h.latencies.clone()), predecessor.map(|h| h.latencies.clone()));
    let release_calls =
        (liblease.map(|h| h.release_calls.clone()), predecessor.map(|h| h.release_calls.clone()));
    let portable_latencies = portable.map(|h| h.latencies.clone());
    plot.add("liblease (default options)", latencies.0.samples());
    plot.add("liblease, portable wake-ups", portable_latencies.samples());
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
    section.figures.extend(distribution(
        PREDECESSOR,
        "release -> other holds, portable wake-ups",
        "ms",
        &portable_latencies.summary(),
        Some(&latencies.1.summary()),
        &[Stat::P50, Stat::P99, Stat::Max, Stat::Mean],
    ));

    let idle_for = config.pick(Duration::from_secs(5), Duration::from_millis(500));
    let idle = |kind: LockKind, name: &str, env: &[(&str, &str)]| {
        Side::of(idle_waiter_cpu(kind, &dir.path().join(format!("idle-{name}.db")), idle_for, env))
    };
    let predecessor_idle = idle(LockKind::Predecessor, "predecessor", &[]);
    for (metric, ours) in [
        ("an idle waiter's CPU, % of a core", idle(LockKind::Liblease, "liblease", &[])),
        (
            "an idle waiter's CPU, portable wake-ups, % of a core",
            idle(LockKind::Liblease, "portable", PORTABLE),
        ),
    ] {
        section.figures.push(
            Figure::new(PREDECESSOR, metric, "%")
                .liblease(ours.measure(|cpu| *cpu), ours.count(|_| 1))
                .baseline(predecessor_idle.measure(|cpu| *cpu), predecessor_idle.count(|_| 1)),
        );
    }

    let floor = Side::of(sleeping_thread_cpu(FLOOR_STEP, idle_for));
    section.figures.push(
        Figure::new(
            "",
            format!(
                "the floor: a thread that only sleeps, waking every {} ms, % of a core",
                FLOOR_STEP.as_millis()
            ),
            "%",
        )
        .liblease(floor.measure(|cpu| *cpu), floor.count(|_| 1)),
    );

    // What a commit costs a process that has just slept as the holder did: the take is one, by
    // a process that was asleep (a release to a waiting process is said on the board, without
    // one).
    let commits = config.pick(200, 10);
    let db = dir.path().join("floor.db");
    let (cold, warm) = (
        Side::of(bare_commits(&db, commits, Some(HOLD_MS))),
        Side::of(bare_commits(&db, commits * 10, None)),
    );
    for (metric, side) in [
        (
            format!(
                "the floor: a bare SQLite commit right after a {}..{} ms sleep",
                HOLD_MS.start(),
                HOLD_MS.end()
            ),
            &cold,
        ),
        ("the floor: the same commit, back to back".to_owned(), &warm),
    ] {
        section.figures.extend(distribution(
            "",
            &metric,
            "ms",
            &side.summary(),
            None,
            &[Stat::P50, Stat::P99],
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
    section.note(format!(
        "the floor: {commits} commits of a one-row UPDATE (BEGIN IMMEDIATE, UPDATE, COMMIT) on a \
         bare rusqlite connection to a WAL file of its own, each after a sleep drawn as the \
         holder's pause is, then {} back to back. A handover holds one such commit, the take, by \
         a process that has just woken: a release to a waiting process is said on the board \
         beside the database (src/writer_board.rs), and the waiter takes the lease over from \
         that hold.",
        commits * 10
    ));
    section.note(
        "liblease: Lock::acquire / Guard::release with the default options; baseline: the \
         predecessor's algorithm (bench/src/baselines/predecessor_lock.rs) on a database of its own.",
    );
    section.note(format!(
        "portable wake-ups: the same, with LIBLEASE_WAKEUPS=portable in both workers' environment: \
         no inotify, pidfd, futex or eventfd; a waiter looks at the board's wake word and the \
         holder's pid between sleeps of 1 ms, growing to 20 ms with the time waited (a sixteenth \
         of it), and reads the database when the word moves. An idle \
         waiter: one process holds the lease and does nothing, another waits in acquire; the \
         waiter's CPU time (the scheduler's, of all its threads) over {} ms of waiting, as a \
         share of one core.",
        idle_for.as_millis()
    ));
    section
}

/// Times `count` commits of one row update (`BEGIN IMMEDIATE`, `UPDATE`, `COMMIT`, as a take
/// does) on a bare rusqlite connection to a WAL file of its own, each after a sleep drawn from
/// `pause` when there is one; in ms. This VM runs a thread that has just woken several times
/// slower for a while (a syscall as simple as getppid takes 15 µs instead of 0.5): a handover
/// pays that in the take.
fn bare_commits(db: &Path, count: usize, pause: Option<RangeInclusive<u64>>) -> Result<Vec<f64>> {
    let connection = rusqlite::Connection::open(db)?;
    connection.pragma_update(None, "journal_mode", "wal")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS lease (key TEXT PRIMARY KEY, n INTEGER);
         INSERT OR IGNORE INTO lease VALUES ('k', 0);",
    )?;
    let mut rng = Rng::seeded();
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        if let Some(pause) = &pause {
            std::thread::sleep(Duration::from_millis(rng.in_range(pause.clone())));
        }
        let began = std::time::Instant::now();
        connection.execute_batch("BEGIN IMMEDIATE; UPDATE lease SET n = n + 1 WHERE key = 'k'; COMMIT")?;
        samples.push(began.elapsed().as_secs_f64() * 1e3);
    }
    Ok(samples)
}

/// The pause of a portable waiter that has waited long (`LONGEST_TICK` in src/wakeups.rs): the
/// floor's thread wakes as often, so that the figure says what the wake-ups alone cost here.
const FLOOR_STEP: Duration = Duration::from_millis(20);

/// The CPU of a thread that sleeps in steps of `step` for `window` and does nothing else, in %
/// of one core: what each wake-up of a sleeping thread costs on this machine.
fn sleeping_thread_cpu(step: Duration, window: Duration) -> Result<f64> {
    std::thread::spawn(move || -> Result<f64> {
        let start = std::time::Instant::now();
        let before = procfs::cpu_seconds_of_this_thread()?;
        while start.elapsed() < window {
            std::thread::sleep(step);
        }
        Ok((procfs::cpu_seconds_of_this_thread()? - before) / start.elapsed().as_secs_f64() * 100.0)
    })
    .join()
    .map_err(|_| "the sleeping thread panicked")?
}

/// The CPU a waiter uses while the lease it waits for stays held, in % of one core.
fn idle_waiter_cpu(kind: LockKind, db: &Path, window: Duration, env: &[(&str, &str)]) -> Result<f64> {
    let args = [("kind", kind.name().to_owned()), ("db", db.display().to_string()), ("key", "idle".into())];
    let mut holder = Worker::spawn_with_env("idle holder", "hold", &args, env)?;
    holder.expect("holding", STEP_TIMEOUT)?;
    let mut waiter_args = args.to_vec();
    waiter_args.push(("timeout_ms", (window + STEP_TIMEOUT).as_millis().to_string()));
    let mut waiter = Worker::spawn_with_env("idle waiter", "wait", &waiter_args, env)?;
    waiter.expect("waiting", STEP_TIMEOUT)?;
    // Past its first looks and the runtime's start.
    std::thread::sleep(Duration::from_millis(200));
    let before = procfs::cpu_seconds_precise(waiter.pid())?;
    std::thread::sleep(window);
    let after = procfs::cpu_seconds_precise(waiter.pid())?;
    holder.finish(STEP_TIMEOUT)?;
    waiter.expect("acquired", STEP_TIMEOUT)?;
    waiter.finish(STEP_TIMEOUT)?;
    Ok((after - before) / window.as_secs_f64() * 100.0)
}

/// What was measured of each handover, in ms.
#[derive(Debug, Clone)]
struct Handovers {
    /// From just before the release call to just after the other's acquire returned.
    latencies: Vec<f64>,
    /// How long the release call itself took.
    release_calls: Vec<f64>,
}

fn measure(kind: LockKind, db: &Path, count: usize, env: &[(&str, &str)]) -> Result<Handovers> {
    let args =
        [("kind", kind.name().to_owned()), ("db", db.display().to_string()), ("key", "handover".into())];
    // One after the other, so that they do not race to set up the database.
    let mut first = Worker::spawn_with_env("handover A", "handover", &args, env)?;
    first.expect("ready", STEP_TIMEOUT)?;
    let mut second = Worker::spawn_with_env("handover B", "handover", &args, env)?;
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
