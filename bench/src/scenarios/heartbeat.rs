//! Scenario 5: what holding a lease costs while idle. A worker process takes the lease and sits
//! blocked on its stdin, so that its lock's heartbeat is all it does; after it has held for half
//! a second the parent measures, over the window:
//! - WAL frames appended (from the wal-index header, see `wal`), and the bytes they make;
//! - the holder's /proc/<pid>/io: `wchar` (bytes it passed to write calls: WAL frames, and the
//!   database file at checkpoints) and `write_bytes` (what it sent towards the block device);
//! - the holder's CPU time: utime + stime from /proc/<pid>/stat (whole ticks), and the sum of
//!   its threads' /proc/<pid>/task/*/schedstat (nanoseconds).

use std::path::Path;
use std::time::{Duration, Instant};

use super::scenario_dir;
use crate::baselines::predecessor_lock;
use crate::child::Worker;
use crate::contender::LockKind;
use crate::plot::Plot;
use crate::procfs;
use crate::report::{Figure, Section, Side};
use crate::wal::WalCounter;
use crate::{Config, Result};

const SETTLE: Duration = Duration::from_millis(500);
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
struct Rates {
    wal_frames: f64,
    wal_bytes: f64,
    wchar: f64,
    write_bytes: f64,
    cpu_percent: f64,
    cpu_percent_precise: f64,
}

pub fn run(config: &Config, _plots: &mut Vec<Plot>) -> Section {
    let window = config.pick(Duration::from_secs(10), Duration::from_secs(2));
    let mut section = Section::new(5, "heartbeat of a lease held idle");
    section.parameter("window_s", window.as_secs_f64());
    let Some(dir) = scenario_dir(&mut section, "heartbeat") else { return section };
    let side = |kind: LockKind| {
        let db = dir.path().join(format!("{}.db", kind.name()));
        Side::unless(procfs::unavailable(), || measure(kind, &db, window))
    };
    let (liblease, predecessor) = (side(LockKind::Liblease), side(LockKind::Predecessor));
    let against = format!(
        "the predecessor's lock: {} ms lease renewed every {} ms",
        predecessor_lock::LEASE.as_millis(),
        predecessor_lock::RENEW_EVERY.as_millis()
    );
    let seconds = window.as_secs_f64();
    type Read = fn(&Rates) -> f64;
    let rows: [(&str, &str, Read); 6] = [
        ("WAL written: frames x (page + 24 B), per s", "KiB/s", |r| r.wal_bytes / 1024.0),
        ("WAL frames appended, per s", "frames/s", |r| r.wal_frames),
        ("holder's write calls (wchar), per s", "KiB/s", |r| r.wchar / 1024.0),
        ("holder's block-layer writes (write_bytes), per s", "KiB/s", |r| r.write_bytes / 1024.0),
        ("holder's CPU, utime+stime (/proc/pid/stat)", "% core", |r| r.cpu_percent),
        ("holder's CPU, all threads' schedstat", "% core", |r| r.cpu_percent_precise),
    ];
    for (metric, unit, read) in rows {
        section.figures.push(
            Figure::new(&against, format!("{metric} over {seconds:.0} s"), unit)
                .liblease(liblease.measure(read), liblease.count(|_| 1))
                .baseline(predecessor.measure(read), predecessor.count(|_| 1)),
        );
    }
    section.note(format!(
        "one holder process per lock, idle (blocked on stdin) after taking the lease; measured over \
         one {seconds:.0} s window starting {} ms after it took the lease (samples = windows); liblease \
         with its default options (a {} ms lease renewed every {} ms).",
        SETTLE.as_millis(),
        lease::LockOptions::DEFAULT.lease.as_millis(),
        lease::LockOptions::DEFAULT.renew_every.as_millis()
    ));
    section.note(
        "WAL bytes are counted from the wal-index (-shm) header: frames appended (following WAL \
         restarts) times (page size + 24-byte frame header), sampled every 10 ms; wchar and \
         write_bytes are deltas of the holder's /proc/<pid>/io (write_bytes depends on the temp \
         dir's file system, see the machine line).",
    );
    section
}

fn measure(kind: LockKind, db: &Path, window: Duration) -> Result<Rates> {
    let args = [("kind", kind.name().to_owned()), ("db", db.display().to_string()), ("key", "idle".into())];
    let mut holder = Worker::spawn("idle holder", "hold", &args)?;
    holder.expect("holding", Duration::from_secs(15))?;
    std::thread::sleep(SETTLE);
    let pid = holder.pid();
    let mut wal = WalCounter::start(db)?;
    let (io_before, cpu_before, precise_before) =
        (procfs::io(pid)?, procfs::cpu_seconds(pid)?, procfs::cpu_seconds_precise(pid)?);
    let started = Instant::now();
    while started.elapsed() < window {
        std::thread::sleep(SAMPLE_EVERY);
        wal.sample()?;
    }
    let (io_after, cpu_after, precise_after) =
        (procfs::io(pid)?, procfs::cpu_seconds(pid)?, procfs::cpu_seconds_precise(pid)?);
    let seconds = started.elapsed().as_secs_f64();
    wal.sample()?;
    holder.finish(Duration::from_secs(5))?;
    Ok(Rates {
        wal_frames: wal.frames() as f64 / seconds,
        wal_bytes: wal.bytes() as f64 / seconds,
        wchar: (io_after.wchar - io_before.wchar) as f64 / seconds,
        write_bytes: io_after.write_bytes.saturating_sub(io_before.write_bytes) as f64 / seconds,
        cpu_percent: 100.0 * (cpu_after - cpu_before) / seconds,
        cpu_percent_precise: 100.0 * (precise_after - precise_before) / seconds,
    })
}
