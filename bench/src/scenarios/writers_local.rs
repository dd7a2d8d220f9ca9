//! Scenario 6: writers in one process. A long job inserts rows non-stop while three short
//! writers each run short transactions back to back (begin, one insert, commit); the figures are
//! the short writers' waits (from asking to begin to holding the transaction) and the job's rows
//! per second, in three designs:
//! - liblease: `Database::begin_chunked` with `maybe_commit` after every row, short writers
//!   through `Database::begin` (the fair queue);
//! - plain SQLite connections with a 5 s busy timeout, the job committing every second;
//! - the application-services design, the job committing every second.
//!
//! Beside them: the same job alone in one single transaction (the ceiling), and the cost of an
//! empty transaction, liblease's `begin` + `commit` against a bare `BEGIN IMMEDIATE` + `COMMIT`.

use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use lease::{Database, Value};

use super::scenario_dir;
use crate::baselines::plain_sqlite;
use crate::clock::now_ns;
use crate::plot::Plot;
use crate::report::{distribution, Figure, Section, Side};
use crate::stats::Stat;
use crate::writers::{create_schema, run_short, Design, Writer, Writers, INSERT_JOB};
use crate::{Config, Result};

const SHORT_WRITERS: usize = 3;
/// Each job row carries this many bytes besides its number.
const PAYLOAD: [u8; 32] = [0x5a; 32];

/// What one design did.
#[derive(Debug, Clone)]
struct Contest {
    /// Every short writer's wait to begin, in ms (a begin that failed counts with its wait).
    waits: Vec<f64>,
    commits: u64,
    /// The commits of the short writer that made fewest: starvation shows here.
    fewest_commits: u64,
    /// Begins that failed (the busy timeout ran out).
    failures: u64,
    /// Rows the job committed, per second from asking to begin to its last commit.
    job_rows_per_s: f64,
    job_rows: u64,
    /// The job's begins or chunk commits that failed.
    job_failures: u64,
}

pub fn run(config: &Config, plots: &mut Vec<Plot>) -> Section {
    let duration = config.pick(Duration::from_secs(10), Duration::from_secs(1));
    let empty_ops = config.pick(20_000, 1_000);
    let mut section = Section::new(6, "writers in one process");
    section.parameter("contest_s", duration.as_secs_f64());
    section.parameter("short_writers", SHORT_WRITERS);
    section.parameter("empty_transactions", empty_ops);
    section.parameter("busy_timeout_s", plain_sqlite::BUSY_TIMEOUT.as_secs_f64());
    let Some(dir) = scenario_dir(&mut section, "writers-local") else { return section };
    let db = |name: &str| dir.path().join(format!("{name}.db"));
    // Each database is removed once measured: a 10 s job writes hundreds of MB.
    let contest_of =
        |design: Design| Side::of(removed_after(&db(design.name()), |db| contest(design, db, duration)));
    let liblease = contest_of(Design::Liblease);
    let plain = contest_of(Design::PlainSqlite);
    let app_services = contest_of(Design::AppServices);
    let ceiling_of = |design: Design| {
        Side::of(removed_after(&db(&format!("ceiling-{}", design.name())), |db| {
            ceiling(design, db, duration)
        }))
    };
    let liblease_ceiling = ceiling_of(Design::Liblease);
    let sqlite_ceiling = ceiling_of(Design::PlainSqlite);

    let mut plot = Plot::new(
        "writer_waits.svg",
        "Short writers beside a long job, one process: wait to begin",
        "milliseconds from asking to begin to holding the transaction (log scale)",
    );
    for (label, side) in [
        ("liblease queue", &liblease),
        ("plain SQLite", &plain),
        ("application-services design", &app_services),
    ] {
        plot.add(label, side.measured().map(|c| c.waits.as_slice()));
    }
    plots.push(plot);

    let waits = |side: &Side<Contest>| side.map(|c| c.waits.clone()).summary();
    let of_ceiling = |side: &Side<Contest>, ceiling: &Side<f64>| {
        side.try_measure(
            |c| ceiling.measured().map(|ceiling| 100.0 * c.job_rows_per_s / ceiling),
            "its ceiling was not measured",
        )
    };
    for (against, baseline, baseline_ceiling) in [
        ("plain SQLite: busy_timeout 5 s, no queue, job commits every 1 s", &plain, &sqlite_ceiling),
        (
            "app-services design: mutex until BEGIN IMMEDIATE, job commits every 1 s",
            &app_services,
            &sqlite_ceiling,
        ),
    ] {
        section.figures.extend(distribution(
            against,
            "short-writer wait",
            "ms",
            &waits(&liblease),
            Some(&waits(baseline)),
            &[Stat::P50, Stat::P99, Stat::Max],
        ));
        let count = |side: &Side<Contest>, read: fn(&Contest) -> u64| side.measure(|c| read(c) as f64);
        // A count on both sides, given without a number of samples.
        let counted = |metric: &str, unit: &str, read: fn(&Contest) -> u64| {
            Figure::new(against, metric, unit)
                .liblease(count(&liblease, read), None)
                .baseline(count(baseline, read), None)
        };
        section.figures.push(counted("short-writer commits, all three", "commits", |c| c.commits));
        section
            .figures
            .push(counted("short-writer commits, the writer with fewest", "commits", |c| c.fewest_commits));
        section.figures.push(
            Figure::new(against, "short-writer begins that failed (busy timeout)", "begins")
                .liblease(count(&liblease, |c| c.failures), liblease.count(|c| c.waits.len()))
                .baseline(count(baseline, |c| c.failures), baseline.count(|c| c.waits.len())),
        );
        section.figures.push(
            Figure::new(against, "long job, rows committed per s", "rows/s")
                .liblease(liblease.measure(|c| c.job_rows_per_s), liblease.count(|c| c.job_rows as usize))
                .baseline(baseline.measure(|c| c.job_rows_per_s), baseline.count(|c| c.job_rows as usize)),
        );
        section
            .figures
            .push(counted("long job, begins or chunk commits that failed", "times", |c| c.job_failures));
        section.figures.push(
            Figure::new(against, "long job, % of one single transaction", "%")
                .liblease(of_ceiling(&liblease, &liblease_ceiling), None)
                .baseline(of_ceiling(baseline, baseline_ceiling), None),
        );
    }
    section.figures.push(
        Figure::new(
            "the same on bare rusqlite",
            "the job alone in one single transaction (ceiling)",
            "rows/s",
        )
        .liblease(liblease_ceiling.measure(|r| *r), None)
        .baseline(sqlite_ceiling.measure(|r| *r), None),
    );
    let empty_liblease = Side::of(empty_transactions(true, &db("empty-liblease"), empty_ops)).summary();
    let empty_sqlite = Side::of(empty_transactions(false, &db("empty-sqlite"), empty_ops)).summary();
    section.figures.extend(distribution(
        "bare BEGIN IMMEDIATE + COMMIT on rusqlite",
        "empty transaction, begin + commit",
        "µs",
        &empty_liblease,
        Some(&empty_sqlite),
        &[Stat::Mean, Stat::P50, Stat::P99],
    ));

    section.note(format!(
        "each design: one long job and {SHORT_WRITERS} short writers, each a thread with its own \
         connection, for {:.0} s on a fresh file database; the job inserts one {}-byte row per \
         statement; a short writer's transaction is one insert; its wait runs from asking to begin \
         until holding the transaction (samples = begins; a begin that failed counts with its wait); \
         the job's rows per s are the rows it committed (counted afterwards) over the time from \
         asking to begin to its last commit; a job whose begin fails tries again.",
        duration.as_secs_f64(),
        PAYLOAD.len()
    ));
    section.note(
        "liblease: Database::begin_chunked(ChunkOptions::DEFAULT: 1 s period, 4 ms slice when \
         another writer waits) with maybe_commit after every row; short writers Database::begin.",
    );
    section.note(format!(
        "ceiling: the job alone for {:.0} s in one transaction: through liblease's Database::begin, \
         and on a bare rusqlite connection (the baselines' % is of the rusqlite ceiling).",
        duration.as_secs_f64()
    ));
    section.note(format!(
        "empty transaction: {empty_ops} times Database::begin()?.commit() against execute_batch(\"BEGIN \
         IMMEDIATE\") + execute_batch(\"COMMIT\") on a bare rusqlite connection, each timed alone."
    ));
    section
}

fn contest(design: Design, db: &Path, duration: Duration) -> Result<Contest> {
    create_schema(db)?;
    let writers = Writers::new(design, db);
    let mut job = writers.job()?;
    let mut shorts = (0..SHORT_WRITERS).map(|_| writers.short()).collect::<Result<Vec<_>>>()?;
    let start = Barrier::new(SHORT_WRITERS + 1);
    let end = now_ns() + duration.as_nanos() as u64;
    let (job_result, short_results) = std::thread::scope(|scope| {
        let start = &start;
        let job = scope.spawn(move || {
            start.wait();
            run_job(job.as_mut(), end)
        });
        let shorts: Vec<_> = shorts
            .iter_mut()
            .enumerate()
            .map(|(id, writer)| {
                scope.spawn(move || {
                    start.wait();
                    run_short(writer.as_mut(), id as i64, Duration::ZERO, end)
                })
            })
            .collect();
        let job = job.join().unwrap_or_else(|_| Err("the job's thread panicked".into()));
        let shorts: Vec<_> = shorts
            .into_iter()
            .map(|s| s.join().unwrap_or_else(|_| Err("a short writer's thread panicked".into())))
            .collect();
        (job, shorts)
    });
    let (job_seconds, job_failures) = job_result?;
    let job_rows = committed_rows(db)?;
    let mut contest = Contest {
        job_failures,
        waits: Vec::new(),
        commits: 0,
        fewest_commits: u64::MAX,
        failures: 0,
        job_rows_per_s: job_rows as f64 / job_seconds,
        job_rows,
    };
    for result in short_results {
        let short = result?;
        contest.waits.extend(short.waits);
        contest.commits += short.commits;
        contest.fewest_commits = contest.fewest_commits.min(short.commits);
        contest.failures += short.failures;
    }
    Ok(contest)
}

/// The long job: seconds from asking to begin to its last commit, and its begins or chunk
/// commits that failed (a job tries again after a busy timeout, as a real one would).
fn run_job(job: &mut dyn Writer, end: u64) -> Result<(f64, u64)> {
    let started = Instant::now();
    let (mut n, mut failures, mut open) = (0i64, 0u64, false);
    while now_ns() < end {
        if !open {
            open = job.begin().is_ok();
            if !open {
                failures += 1;
                continue;
            }
        }
        job.execute(INSERT_JOB, &[Value::Integer(n), Value::Blob(&PAYLOAD)])?;
        n += 1;
        if job.maybe_commit().is_err() {
            open = false;
            failures += 1;
        }
    }
    if open {
        job.commit()?;
    }
    Ok((started.elapsed().as_secs_f64(), failures))
}

/// Rows of the job's table: what the job committed.
fn committed_rows(db: &Path) -> Result<u64> {
    let connection = plain_sqlite::open(db, plain_sqlite::BUSY_TIMEOUT)?;
    Ok(connection.query_row("SELECT count(*) FROM job", [], |row| row.get::<_, i64>(0))? as u64)
}

/// Runs `measure` on the database at `db`, then removes the database and its WAL.
fn removed_after<T>(db: &Path, measure: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let result = measure(db);
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Rows per second of the job alone in one transaction.
fn ceiling(design: Design, db: &Path, duration: Duration) -> Result<f64> {
    create_schema(db)?;
    let mut writer = Writers::new(design, db).short()?;
    let started = Instant::now();
    writer.begin()?;
    let mut rows = 0u64;
    while started.elapsed() < duration {
        writer.execute(INSERT_JOB, &[Value::Integer(rows as i64), Value::Blob(&PAYLOAD)])?;
        rows += 1;
    }
    writer.commit()?;
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// Per-op µs of an empty transaction: liblease's, or a bare one on rusqlite.
fn empty_transactions(liblease: bool, db: &Path, ops: usize) -> Result<Vec<f64>> {
    create_schema(db)?;
    let mut samples = Vec::with_capacity(ops);
    if liblease {
        let db = Database::open(db)?;
        for _ in 0..ops {
            let started = now_ns();
            db.begin()?.commit()?;
            samples.push((now_ns() - started) as f64 / 1e3);
        }
    } else {
        let connection = plain_sqlite::open(db, plain_sqlite::BUSY_TIMEOUT)?;
        for _ in 0..ops {
            let started = now_ns();
            connection.execute_batch("BEGIN IMMEDIATE")?;
            connection.execute_batch("COMMIT")?;
            samples.push((now_ns() - started) as f64 / 1e3);
        }
    }
    Ok(samples)
}
