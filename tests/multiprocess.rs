//! Several OS processes contending for one lease, with real signals. Each process is a
//! `lease-test-worker` (`tests/bin/worker.rs`); the tests talk to them through stdin, stdout and
//! their log files in a scratch directory.
//!
//! Mutual exclusion is verified without trusting the lock. Inside a hold a worker reads
//! CLOCK_MONOTONIC and then checks its guard; when the check succeeds it logs the time, at which
//! the lease was therefore its own. Each hold gives the interval from its first to its last such
//! time, and intervals of different workers must never overlap.

#![cfg(unix)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use lease::{LeaseRow, Store};

const WORKER: &str = env!("CARGO_BIN_EXE_lease-test-worker");
const KEY: &str = "shared-work";
/// The longest a test waits for a worker's line or exit; reached only when something is wrong.
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn hammering_processes_never_overlap_across_a_kill_and_a_stop() {
    let scratch = Scratch::new("hammer");
    let store = scratch.open_store();
    let timing = Timing { lease_ms: 600, renew_every_ms: 150, max_backoff_ms: 10 };
    let names = ["steady-1", "steady-2", "steady-3", "killed", "stopped"];
    let (killed, stopped) = (3, 4);
    let mut workers: Vec<Worker> =
        names.iter().map(|name| Worker::spawn("hammer", &scratch, name, timing)).collect();
    std::thread::sleep(Duration::from_millis(1500));

    // Kill a worker while it certainly holds the lease: it keeps checking it successfully.
    let victim = &mut workers[killed];
    victim.send("linger");
    let killed_hold = victim.wait_for_hold("HELD");
    std::thread::sleep(Duration::from_millis(100));
    let early = victim.drain();
    assert!(
        !early.contains(&format!("LOST {killed_hold}")),
        "'{}' lost its lease before the kill (lines: {early:?})",
        victim.name
    );
    let kill_at = monotonic_ns();
    victim.signal(libc::SIGKILL);
    let status = victim.wait();
    assert!(!status.success(), "'{}' was killed, yet exited with {status}", victim.name);
    std::thread::sleep(Duration::from_millis(1200));

    // Stop a worker inside a hold for three lease lengths, then continue it. That tests the stop
    // only if the worker held the lease when it stopped and another took it meanwhile, so it is
    // tried again when under a heavy load its heartbeat came too late and lost the lease before
    // the stop, or when it was stopped inside a write and so kept the others out of the database.
    let victim = &mut workers[stopped];
    let mut stop = None;
    for attempt in 1..=3 {
        victim.send("linger");
        let hold = victim.wait_for_hold("HELD");
        std::thread::sleep(Duration::from_millis(50));
        let stopped_at = monotonic_ns();
        victim.signal(libc::SIGSTOP);
        std::thread::sleep(Duration::from_millis(3 * timing.lease_ms));
        // Whatever the worker printed before it stopped has reached the channel by now.
        let lost_before = victim.drain().contains(&format!("LOST {hold}"));
        let holder = store.lease_row(KEY).expect("the lease row reads").map(|row| row.label);
        let continued_at = monotonic_ns();
        victim.signal(libc::SIGCONT);
        if lost_before || holder.as_deref() == Some(victim.name.as_str()) {
            eprintln!(
                "attempt {attempt}: '{}' {} hold {hold}; trying again",
                victim.name,
                if lost_before { "lost before it was stopped" } else { "was not replaced while stopped in" }
            );
            continue;
        }
        assert_eq!(victim.wait_for_hold("LOST"), hold, "'{}' lost another hold", victim.name);
        stop = Some((hold, stopped_at, continued_at));
        break;
    }
    let (stopped_hold, stopped_at, continued_at) = stop.expect("a worker held the lease when it was stopped");
    std::thread::sleep(Duration::from_millis(2000));

    let mut logs = BTreeMap::new();
    for (index, worker) in workers.iter_mut().enumerate() {
        let done = (index != killed).then(|| worker.finish());
        let holds = read_log(&worker.log, index);
        if let Some(done) = done {
            assert_eq!(
                done,
                format!("DONE {}", holds.len()),
                "'{}' logged another number of holds",
                worker.name
            );
        }
        logs.insert(index, holds);
    }
    let report = Report { names: &names, origin: scratch.origin };

    // Nobody's checked interval meets another's.
    let overlaps = report.overlaps(&logs);
    assert!(overlaps.is_empty(), "{} overlaps between holds:\n{}", overlaps.len(), overlaps.join("\n"));

    // The killed worker held the lease when it died, and another worker took it after.
    let last = logs[&killed].last().expect("the killed worker held the lease");
    assert_eq!(last.number, killed_hold, "the killed worker's last hold is the one it lingered in");
    assert!(!last.lost && !last.checks.is_empty(), "the killed worker held the lease until it died");
    let taken_after_kill =
        logs.values().flatten().any(|hold| hold.first_check().is_some_and(|t| t > kill_at));
    assert!(taken_after_kill, "nobody took the lease after the killed worker died");

    // The stopped worker found its lease lost once continued, while another had taken it.
    let holds = &logs[&stopped];
    let position =
        holds.iter().position(|hold| hold.number == stopped_hold).expect("the stopped hold is logged");
    let stopped_hold = &holds[position];
    assert!(stopped_hold.lost, "the stopped worker logged no loss: {stopped_hold:?}");
    assert!(
        stopped_hold.checks.iter().all(|&t| t < continued_at),
        "a check of the stopped worker succeeded after it was continued at {}: {stopped_hold:?}",
        report.at(continued_at)
    );
    let taken_meanwhile = logs
        .iter()
        .filter(|(&index, _)| index != stopped)
        .flat_map(|(_, holds)| holds)
        .any(|hold| hold.first_check().is_some_and(|t| stopped_at < t && t < continued_at));
    assert!(taken_meanwhile, "nobody took the lease while the stopped worker was stopped");
    let next =
        holds.get(position + 1).expect("the stopped worker took the lease again after it was continued");
    assert!(next.dirty, "the acquisition after a lost lease is dirty: {next:?}");

    // Every worker that lived to the end made progress.
    for (index, holds) in logs.iter().filter(|(&index, _)| index != killed) {
        let valid = holds.iter().filter(|hold| !hold.checks.is_empty()).count();
        assert!(valid >= 5, "'{}' made only {valid} holds", names[*index]);
    }

    report.check_generations(&logs);
    eprintln!(
        "holds per worker: {:?}",
        logs.iter().map(|(&index, holds)| (names[index], holds.len())).collect::<Vec<_>>()
    );
}

#[test]
fn a_waiter_takes_over_at_once_after_a_release_and_only_after_a_kill() {
    let scratch = Scratch::new("takeover");
    let store = scratch.open_store();
    let timing = Timing { lease_ms: 2000, renew_every_ms: 500, max_backoff_ms: 20 };

    let mut first = Worker::spawn("hold", &scratch, "first", timing);
    first.wait_for("WAITING");
    let held_first = Acquired::parse(&first.wait_for("ACQUIRED"));
    assert!(held_first.dirty, "a process's first acquisition is dirty");

    // A clean release: the waiter takes over before the released lease would have run out.
    let mut second = Worker::spawn("hold", &scratch, "second", timing);
    second.wait_for("WAITING");
    std::thread::sleep(Duration::from_millis(300));
    let early = second.drain();
    assert!(early.is_empty(), "'second' got the lease while 'first' held it: {early:?}");
    let released_row = lease_row(&store, "first");
    first.send("release");
    let released_at = number(&first.wait_for("RELEASED"), 1);
    let held_second = Acquired::parse(&second.wait_for("ACQUIRED"));
    assert!(held_second.at > released_at, "'second' took the lease before 'first' released it");
    assert!(
        held_second.boot_ms < released_row.expires_ms,
        "'second' took the lease at {} ms, not before the lease of 'first' ran out at {} ms",
        held_second.boot_ms,
        released_row.expires_ms
    );
    assert!(held_second.dirty && held_second.generation > held_first.generation, "{held_second:?}");
    assert!(first.finish().is_empty(), "'first' printed more after releasing");

    // A kill: the waiter takes over once the holder is dead (seen dead, or its lease run out),
    // never before.
    let mut third = Worker::spawn("hold", &scratch, "third", timing);
    third.wait_for("WAITING");
    std::thread::sleep(Duration::from_millis(300));
    let early = third.drain();
    assert!(early.is_empty(), "'third' got the lease while 'second' held it: {early:?}");
    let killed_row = lease_row(&store, "second");
    let kill_at = monotonic_ns();
    second.signal(libc::SIGKILL);
    second.wait();
    let held_third = Acquired::parse(&third.wait_for("ACQUIRED"));
    assert!(held_third.at > kill_at, "'third' took the lease before 'second' was killed");
    assert!(held_third.dirty && held_third.generation > held_second.generation, "{held_third:?}");
    third.send("release");
    third.wait_for("RELEASED");
    third.finish();

    eprintln!(
        "takeover after a clean release: {:.1} ms; after a SIGKILL: {:.1} ms, {} the lease ran out",
        (held_second.at - released_at) as f64 / 1e6,
        (held_third.at - kill_at) as f64 / 1e6,
        if held_third.boot_ms < killed_row.expires_ms { "before" } else { "after" }
    );
}

#[test]
fn processes_open_a_fresh_database_at_once() {
    let timing = Timing { lease_ms: 600, renew_every_ms: 150, max_backoff_ms: 10 };
    for round in 1..=5 {
        let scratch = Scratch::new(&format!("open-{round}"));
        let mut workers: Vec<Worker> =
            (1..=5).map(|i| Worker::spawn("hammer", &scratch, &format!("opener-{i}"), timing)).collect();
        for worker in &mut workers {
            // A worker that cannot open the database exits with an error, which `finish` reports.
            worker.finish();
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_holder_whose_main_thread_has_ended_keeps_its_lease() {
    let scratch = Scratch::new("main-ended");
    let store = scratch.open_store();
    let timing = Timing { lease_ms: 2000, renew_every_ms: 500, max_backoff_ms: 20 };
    let mut holder = Worker::spawn("hold-main-ends", &scratch, "holder", timing);
    holder.wait_for("ACQUIRED");
    let mut waiter = Worker::spawn("hold", &scratch, "waiter", timing);
    waiter.wait_for("WAITING");
    std::thread::sleep(Duration::from_millis(300));
    let early = waiter.drain();
    assert!(early.is_empty(), "'waiter' took the lease of a live holder: {early:?}");
    lease_row(&store, "holder");
    holder.send("release");
    holder.wait_for("RELEASED");
    waiter.wait_for("ACQUIRED");
    waiter.send("release");
    waiter.wait_for("RELEASED");
    holder.finish();
    waiter.finish();
}

#[derive(Debug, Clone, Copy)]
struct Timing {
    lease_ms: u64,
    renew_every_ms: u64,
    max_backoff_ms: u64,
}

/// A directory of its own under the system's temporary directory: the database and the logs.
/// Removed when the test passes, kept for a look when it fails.
struct Scratch {
    dir: PathBuf,
    /// When the test began, for readable times in diagnostics.
    origin: u64,
}

impl Scratch {
    fn new(test: &str) -> Scratch {
        let origin = monotonic_ns();
        let dir = std::env::temp_dir().join(format!("liblease-{test}-{}-{origin}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the scratch directory is created");
        Scratch { dir, origin }
    }

    fn database(&self) -> PathBuf {
        self.dir.join("lease.db")
    }

    /// Creates the database before the workers start, and keeps it open while they run.
    ///
    /// Workers opening a fresh database at the same moment fail with "database is locked" (see
    /// `processes_open_a_fresh_database_at_once`); with the file already in WAL mode and a
    /// connection kept open, no worker's open has to change the journal mode or recover the WAL.
    fn open_store(&self) -> Store {
        Store::open(self.database()).expect("the test creates the database")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the database and the workers' logs are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A running worker process. Dropping it kills and reaps the process, so that a failing test
/// leaves nothing behind.
struct Worker {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    log: PathBuf,
}

impl Worker {
    fn spawn(mode: &str, scratch: &Scratch, name: &str, timing: Timing) -> Worker {
        let log = scratch.dir.join(format!("{name}.log"));
        let mut child = Command::new(WORKER)
            .arg(mode)
            .arg(scratch.database())
            .arg(&log)
            .args([KEY, name])
            .args([timing.lease_ms, timing.renew_every_ms, timing.max_backoff_ms].map(|ms| ms.to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the worker starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        Worker { name: name.to_owned(), child, stdin, lines, log }
    }

    fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("the worker's input is open");
        writeln!(stdin, "{command}").expect("the worker reads its commands");
    }

    /// Waits for a line that starts with `prefix`, passing over the others.
    fn wait_for(&self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut passed = Vec::new();
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(line) => passed.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("'{}' printed no {prefix} in {PATIENCE:?} (but {passed:?})", self.name)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("'{}' exited without printing {prefix} (but {passed:?})", self.name)
                }
            }
        }
    }

    /// Waits for `HELD <hold>` or `LOST <hold>`; returns the hold's number.
    fn wait_for_hold(&self, event: &str) -> u64 {
        number(&self.wait_for(&format!("{event} ")), 1)
    }

    /// The lines printed and not yet read.
    fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: sends a signal to our own child, which is not reaped yet.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "signal {signal} to '{}': {}", self.name, std::io::Error::last_os_error());
    }

    fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("the worker is reaped")
    }

    /// Closes the worker's input, so that it finishes, and waits for it to exit successfully.
    /// Returns its last line.
    fn finish(&mut self) -> String {
        drop(self.stdin.take());
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the worker's status reads") {
                break status;
            }
            assert!(Instant::now() < deadline, "'{}' did not exit in {PATIENCE:?}", self.name);
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "'{}' failed: {status}", self.name);
        // The reader thread ends with the worker's output; the channel then holds every line.
        let mut last = String::new();
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            last = line;
        }
        last
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // SIGKILL also ends a stopped process; both calls do nothing once the worker is reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A worker's `ACQUIRED` line.
#[derive(Debug)]
struct Acquired {
    at: u64,
    boot_ms: u64,
    generation: u64,
    dirty: bool,
}

impl Acquired {
    fn parse(line: &str) -> Acquired {
        Acquired {
            at: number(line, 1),
            boot_ms: number(line, 2),
            generation: number(line, 3),
            dirty: number(line, 4) == 1,
        }
    }
}

/// The lease's row, which `label` holds.
fn lease_row(store: &Store, label: &str) -> LeaseRow {
    let row = store.lease_row(KEY).expect("the lease row reads").expect("the lease has a row");
    assert_eq!(row.label, label, "'{label}' holds the lease: {row:?}");
    row
}

/// The `index`th word of `line`, a number.
fn number(line: &str, index: usize) -> u64 {
    let word = line.split(' ').nth(index).unwrap_or_else(|| panic!("no word {index} in {line:?}"));
    word.parse().unwrap_or_else(|e| panic!("word {index} of {line:?}: {e}"))
}

/// One hold of one worker, from its log.
#[derive(Debug)]
struct Hold {
    worker: usize,
    number: u64,
    generation: u64,
    dirty: bool,
    /// The times at which the lease was known to be held.
    checks: Vec<u64>,
    lost: bool,
}

impl Hold {
    fn first_check(&self) -> Option<u64> {
        self.checks.first().copied()
    }
}

/// The holds in a worker's log. A line cut short by a kill (no newline) is left out.
fn read_log(path: &Path, worker: usize) -> Vec<Hold> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut holds: Vec<Hold> = Vec::new();
    for line in text.split_inclusive('\n').filter(|line| line.ends_with('\n')) {
        let line = line.trim_end();
        let hold = number(line, 1);
        if line.starts_with("A ") {
            let previous = holds.last().map_or(0, |hold| hold.number);
            assert_eq!(hold, previous + 1, "{}: holds are numbered in order: {line}", path.display());
            holds.push(Hold {
                worker,
                number: hold,
                generation: number(line, 2),
                dirty: number(line, 3) == 1,
                checks: Vec::new(),
                lost: false,
            });
            continue;
        }
        let current = holds.last_mut().filter(|current| current.number == hold);
        let current = current.unwrap_or_else(|| panic!("{}: {line} outside its hold", path.display()));
        assert!(!current.lost, "{}: {line} after the hold was lost", path.display());
        match line.split(' ').next() {
            Some("C") => current.checks.push(number(line, 2)),
            Some("L") => current.lost = true,
            _ => panic!("{}: unknown line {line}", path.display()),
        }
    }
    holds
}

/// Judges the logs, and describes holds readably.
struct Report<'a> {
    names: &'a [&'a str],
    origin: u64,
}

impl Report<'_> {
    /// A time as milliseconds since the test began.
    fn at(&self, t: u64) -> String {
        format!("{:.3} ms", t.saturating_sub(self.origin) as f64 / 1e6)
    }

    fn describe(&self, hold: &Hold) -> String {
        let span = match (hold.checks.first(), hold.checks.last()) {
            (Some(&first), Some(&last)) => format!("[{}, {}]", self.at(first), self.at(last)),
            _ => "[no successful check]".to_owned(),
        };
        format!(
            "'{}' hold {} (generation {}, dirty {}, lost {}) {span}",
            self.names[hold.worker], hold.number, hold.generation, hold.dirty, hold.lost
        )
    }

    /// Every pair of holds of different workers whose checked intervals meet.
    fn overlaps(&self, logs: &BTreeMap<usize, Vec<Hold>>) -> Vec<String> {
        let mut spans: Vec<(u64, u64, &Hold)> = logs
            .values()
            .flatten()
            .filter_map(|hold| Some((*hold.checks.first()?, *hold.checks.last()?, hold)))
            .collect();
        spans.sort_by_key(|&(first, _, _)| first);
        let mut found = Vec::new();
        for (i, &(_, last, hold)) in spans.iter().enumerate() {
            for &(_, _, other) in spans[i + 1..].iter().take_while(|&&(first, _, _)| first <= last) {
                if other.worker != hold.worker {
                    found.push(format!("{}\n  meets {}", self.describe(hold), self.describe(other)));
                }
            }
        }
        found
    }

    /// Generations never decrease and grow when the holder changes; an acquisition is dirty when
    /// it is a worker's first or when another worker held the lease since its last one.
    fn check_generations(&self, logs: &BTreeMap<usize, Vec<Hold>>) {
        for holds in logs.values() {
            let first = holds.first().expect("every worker held the lease");
            assert!(first.dirty, "a worker's first acquisition is dirty: {}", self.describe(first));
            for pair in holds.windows(2) {
                let (before, after) = (&pair[0], &pair[1]);
                assert!(
                    after.generation >= before.generation,
                    "generations decrease: {} then {}",
                    self.describe(before),
                    self.describe(after)
                );
                assert!(
                    after.dirty || (after.generation == before.generation && !before.lost),
                    "another worker held the lease in between, yet clean: {} then {}",
                    self.describe(before),
                    self.describe(after)
                );
            }
        }
        // In the order the holds happened (which, as they do not overlap, is the order of their
        // checked intervals), each change of worker is a new generation and a dirty acquisition.
        let mut held: Vec<&Hold> = logs.values().flatten().filter(|hold| !hold.checks.is_empty()).collect();
        held.sort_by_key(|hold| hold.checks[0]);
        for pair in held.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            assert!(
                after.generation >= before.generation,
                "generations decrease: {} then {}",
                self.describe(before),
                self.describe(after)
            );
            if after.worker != before.worker {
                assert!(
                    after.dirty && after.generation > before.generation,
                    "a change of holder is a new generation and dirty: {} then {}",
                    self.describe(before),
                    self.describe(after)
                );
            }
        }
    }
}

fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    assert_eq!(rc, 0, "CLOCK_MONOTONIC is always available");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
