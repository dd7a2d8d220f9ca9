//! Scenario 9: a writer that uses plain SQLite beside a liblease chunked job (issue 5, point 6),
//! as an extension using the platform's own SQLite would write the app's database while the app
//! runs a long import. The job inserts rows non-stop in a chunked transaction of 200 ms chunks;
//! beside it a plain rusqlite connection (busy_timeout 5 s) inserts one row at a time, back to
//! back. liblease's job leaves its default gap after each full chunk; the baseline is the same
//! job without a gap (commit and begin again at once), the simple design issue 5 measured.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lease::{ChunkOptions, Database, Value};

use super::scenario_dir;
use crate::plot::Plot;
use crate::report::{Figure, Section, Side};
use crate::{Config, Result};

const PERIOD: Duration = Duration::from_millis(200);
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What one run of the pair measured.
struct Outcome {
    plain_commits: u64,
    plain_failures: u64,
    plain_longest_wait: Duration,
    job_rows: u64,
    job_chunks: u64,
    seconds: f64,
}

pub fn run(config: &Config, _plots: &mut Vec<Plot>) -> Section {
    let duration = config.pick(Duration::from_secs(5), Duration::from_secs(1));
    let mut section = Section::new(9, "a plain-SQLite writer beside a chunked job");
    section.parameter("duration_s", duration.as_secs_f64());
    section.parameter("chunk_period_ms", PERIOD.as_millis() as u64);
    section.parameter("chunk_gap_ms", ChunkOptions::DEFAULT.gap.as_millis() as u64);
    section.parameter("plain_busy_timeout_s", BUSY_TIMEOUT.as_secs_f64());
    let Some(dir) = scenario_dir(&mut section, "plain-writer") else { return section };
    let side = |name: &str, gap: Duration| Side::of(pair(&dir.path().join(name), gap, duration));
    let liblease = side("gap.db", ChunkOptions::DEFAULT.gap);
    let baseline = side("no-gap.db", Duration::ZERO);
    let against = "the same chunked job without a gap (commits and begins again at once)";
    let figure = |metric: &str, unit: &str, read: &dyn Fn(&Outcome) -> f64| {
        Figure::new(against, metric, unit)
            .liblease(liblease.measure(read), None)
            .baseline(baseline.measure(read), None)
    };
    section.figures.push(figure("plain writer: commits", "commits", &|o| o.plain_commits as f64));
    section.figures.push(figure("plain writer: share of all commits", "%", &|o| {
        100.0 * o.plain_commits as f64 / (o.plain_commits + o.job_chunks) as f64
    }));
    section.figures.push(figure("plain writer: \"database is locked\" failures", "writes", &|o| {
        o.plain_failures as f64
    }));
    section.figures.push(figure("plain writer: longest wait for one write", "ms", &|o| {
        o.plain_longest_wait.as_secs_f64() * 1e3
    }));
    section.figures.push(figure("job: chunks committed", "commits", &|o| o.job_chunks as f64));
    section.figures.push(figure("job: rows committed per s", "rows/s", &|o| o.job_rows as f64 / o.seconds));
    section.note(format!(
        "One run of {} s per side, in one process: the job on one thread through liblease, the plain \
         writer on another with its own rusqlite connection (SQLite's locking treats it as any other \
         connection). A failure is a write that gave up after its {} s busy timeout.",
        duration.as_secs(),
        BUSY_TIMEOUT.as_secs()
    ));
    section
}

fn pair(path: &std::path::Path, gap: Duration, duration: Duration) -> Result<Outcome> {
    let db = Database::open(path)?;
    db.execute("CREATE TABLE job (n INTEGER)", &[])?;
    db.execute("CREATE TABLE plain (n INTEGER)", &[])?;
    let stop = Arc::new(AtomicBool::new(false));
    let chunk = ChunkOptions { period: PERIOD, gap, ..ChunkOptions::DEFAULT };
    let job = {
        let stop = stop.clone();
        std::thread::spawn(move || -> Result<(u64, u64)> {
            let mut tx = db.begin_chunked(chunk)?;
            let (mut rows, mut chunks) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                tx.execute("INSERT INTO job (n) VALUES (?)", &[Value::Integer(rows as i64)])?;
                rows += 1;
                if tx.maybe_commit()? {
                    chunks += 1;
                }
            }
            tx.commit()?;
            Ok((rows, chunks + 1))
        })
    };
    let plain = rusqlite::Connection::open(path)?;
    plain.busy_timeout(BUSY_TIMEOUT)?;
    let started = Instant::now();
    let (mut commits, mut failures, mut longest) = (0u64, 0u64, Duration::ZERO);
    while started.elapsed() < duration {
        let asked = Instant::now();
        match plain.execute("INSERT INTO plain (n) VALUES (?)", [commits as i64]) {
            Ok(_) => commits += 1,
            Err(_) => failures += 1,
        }
        longest = longest.max(asked.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let (job_rows, job_chunks) = job.join().map_err(|_| "the job's thread panicked")??;
    Ok(Outcome {
        plain_commits: commits,
        plain_failures: failures,
        plain_longest_wait: longest,
        job_rows,
        job_chunks,
        seconds,
    })
}
