//! Several OS processes contending for one lease, with real signals. Each process is a worker:
//! this test binary run again in one of the worker's roles (see `child_process`, at the end, and
//! `tests/support`); the tests talk to them through stdin, stdout and their log files in a
//! scratch directory.
//!
//! Mutual exclusion is verified without trusting the lock. Inside a hold a worker reads
//! CLOCK_MONOTONIC and then checks its guard; when the check succeeds it logs the time, at which
//! the lease was therefore its own. Each hold gives the interval from its first to its last such
//! time, and intervals of different workers must never overlap.

#![cfg(unix)]

mod support;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Duration;

use lease::{BootClock, Clock, Error, Guard, LeaseRow, Lock, LockOptions, Store};
use support::child::{say, Child};
use support::monotonic_ns;

const KEY: &str = "shared-work";

#[test]
fn hammering_processes_never_overlap_across_a_kill_and_a_stop() {
    let scratch = Scratch::new("hammer");
    let store = scratch.open_store();
    let timing = Timing { lease_ms: 600, renew_every_ms: 150, max_backoff_ms: 10 };
    let names = ["steady-1", "steady-2", "steady-3", "killed", "stopped"];
    let (killed, stopped) = (3, 4);
    let mut workers: Vec<Child> = names.iter().map(|name| scratch.spawn("hammer", name, timing)).collect();
    std::thread::sleep(Duration::from_millis(1500));

    // Kill a worker while it certainly holds the lease: it keeps checking it successfully.
    let victim = &mut workers[killed];
    victim.send("linger");
    let killed_hold = number(&victim.expect("HELD"), 1);
    std::thread::sleep(Duration::from_millis(100));
    let early = victim.drain();
    assert!(
        !early.contains(&format!("LOST {killed_hold}")),
        "'{}' lost its lease before the kill (lines: {early:?})",
        victim.name()
    );
    let kill_at = monotonic_ns();
    victim.signal(libc::SIGKILL);
    let status = victim.wait();
    assert!(!status.success(), "'{}' was killed, yet exited with {status}", victim.name());
    std::thread::sleep(Duration::from_millis(1200));

    // Stop a worker inside a hold for three lease lengths, then continue it. That tests the stop
    // only if the worker held the lease when it stopped and another took it meanwhile, so it is
    // tried again when under a heavy load its heartbeat came too late and lost the lease before
    // the stop, or when it was stopped inside a write and so kept the others out of the database.
    let victim = &mut workers[stopped];
    let mut stop = None;
    for attempt in 1..=3 {
        victim.send("linger");
        let hold = number(&victim.expect("HELD"), 1);
        std::thread::sleep(Duration::from_millis(50));
        let stopped_at = monotonic_ns();
        victim.signal(libc::SIGSTOP);
        std::thread::sleep(Duration::from_millis(3 * timing.lease_ms));
        // Whatever the worker printed before it stopped has reached the channel by now.
        let lost_before = victim.drain().contains(&format!("LOST {hold}"));
        let holder = store.lease_row(KEY).expect("the lease row reads").map(|row| row.label);
        let continued_at = monotonic_ns();
        victim.signal(libc::SIGCONT);
        if lost_before || holder.as_deref() == Some(victim.name()) {
            eprintln!(
                "attempt {attempt}: '{}' {} hold {hold}; trying again",
                victim.name(),
                if lost_before { "lost before it was stopped" } else { "was not replaced while stopped in" }
            );
            continue;
        }
        assert_eq!(number(&victim.expect("LOST"), 1), hold, "'{}' lost another hold", victim.name());
        stop = Some((hold, stopped_at, continued_at));
        break;
    }
    let (stopped_hold, stopped_at, continued_at) = stop.expect("a worker held the lease when it was stopped");
    std::thread::sleep(Duration::from_millis(2000));

    let mut logs = BTreeMap::new();
    for (index, worker) in workers.iter_mut().enumerate() {
        // The last line a worker said, once it has finished.
        let done = (index != killed).then(|| worker.finish().pop().unwrap_or_default());
        let holds = read_log(&scratch.log(worker.name()), index);
        if let Some(done) = done {
            assert_eq!(
                done,
                format!("DONE {}", holds.len()),
                "'{}' logged another number of holds",
                worker.name()
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

    let mut first = scratch.spawn("hold", "first", timing);
    first.expect("WAITING");
    let held_first = Acquired::parse(&first.expect("ACQUIRED"));
    assert!(held_first.dirty, "a process's first acquisition is dirty");

    // A clean release: the waiter takes over before the released lease would have run out.
    let mut second = scratch.spawn("hold", "second", timing);
    second.expect("WAITING");
    std::thread::sleep(Duration::from_millis(300));
    let early = second.drain();
    assert!(early.is_empty(), "'second' got the lease while 'first' held it: {early:?}");
    let released_row = lease_row(&store, "first");
    first.send("release");
    let released_at = number(&first.expect("RELEASED"), 1);
    let held_second = Acquired::parse(&second.expect("ACQUIRED"));
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
    let mut third = scratch.spawn("hold", "third", timing);
    third.expect("WAITING");
    std::thread::sleep(Duration::from_millis(300));
    let early = third.drain();
    assert!(early.is_empty(), "'third' got the lease while 'second' held it: {early:?}");
    let killed_row = lease_row(&store, "second");
    let kill_at = monotonic_ns();
    second.signal(libc::SIGKILL);
    second.wait();
    let held_third = Acquired::parse(&third.expect("ACQUIRED"));
    assert!(held_third.at > kill_at, "'third' took the lease before 'second' was killed");
    assert!(held_third.dirty && held_third.generation > held_second.generation, "{held_third:?}");
    third.send("release");
    third.expect("RELEASED");
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
        let mut workers: Vec<Child> =
            (1..=5).map(|i| scratch.spawn("hammer", &format!("opener-{i}"), timing)).collect();
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
    let mut holder = scratch.spawn("hold-main-ends", "holder", timing);
    holder.expect("ACQUIRED");
    let mut waiter = scratch.spawn("hold", "waiter", timing);
    waiter.expect("WAITING");
    std::thread::sleep(Duration::from_millis(300));
    let early = waiter.drain();
    assert!(early.is_empty(), "'waiter' took the lease of a live holder: {early:?}");
    lease_row(&store, "holder");
    holder.send("release");
    holder.expect("RELEASED");
    waiter.expect("ACQUIRED");
    waiter.send("release");
    waiter.expect("RELEASED");
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

    /// The log of the worker `name`.
    fn log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    /// Starts a worker in `mode` whose name (its label, and its log's name) is `name`.
    fn spawn(&self, mode: &str, name: &str, timing: Timing) -> Child {
        let text = |path: PathBuf| path.to_str().expect("a UTF-8 path").to_owned();
        let args = [
            text(self.database()),
            text(self.log(name)),
            KEY.to_owned(),
            name.to_owned(),
            timing.lease_ms.to_string(),
            timing.renew_every_ms.to_string(),
            timing.max_backoff_ms.to_string(),
        ];
        Child::spawn(name, mode, &args)
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

// ---------------------------------------------------------------------------------------------
// The worker: one process contending for the lease, the child of the tests above. It uses only
// the public API.

/// Run as a worker by the tests above; does nothing in a normal test run.
///
/// Every role takes `<database> <log> <key> <label> <lease_ms> <renew_every_ms> <max_backoff_ms>`.
///
/// A worker reports through its log file, appended to with one `write` per line, so that a
/// killed worker leaves whole lines:
/// - `A <hold> <generation> <dirty>` when it has taken the lease (holds are numbered from 1);
/// - `C <hold> <t>` after a check that succeeded and began after `t` (CLOCK_MONOTONIC
///   nanoseconds), so the lease was ours at `t`;
/// - `L <hold>` when a check found the lease lost; the hold is then abandoned.
///
/// It reads commands from stdin, one per line; the end of input means "finish and exit". It
/// says the events a test waits for. Roles:
/// - `hammer`: takes the lease, checks it every millisecond for a few steps, gives it back,
///   pauses a few random milliseconds, and again, until the end of input; then says
///   `DONE <holds>`. After the command `linger`, the next hold lasts until its lease is lost:
///   `HELD <hold>` once a check in it succeeded, `LOST <hold>` when a check fails (if that comes
///   before `HELD`, the hold after it lingers instead).
/// - `hold`: says `WAITING`, waits in `acquire`, says
///   `ACQUIRED <t> <boot_ms> <generation> <dirty>` (`t` and `boot_ms` read once `acquire`
///   returned; `boot_ms` on the lease's own clock), then holds until the command `release`
///   (says `RELEASED <t>`, `t` read just before the guard is released) or the end of input.
/// - `hold-main-ends` (Linux): `hold`, once the process's main thread has ended.
#[test]
#[ignore = "not a test: the other process of the tests above, which run it with --ignored"]
fn child_process() {
    support::child::run_role(&[
        ("hammer", hammer_role),
        ("hold", hold_role),
        #[cfg(target_os = "linux")]
        ("hold-main-ends", hold_main_ends_role),
    ]);
}

/// How long one `acquire` waits before the worker looks at its commands again.
const ACQUIRE_SLICE: Duration = Duration::from_millis(200);
/// The pause between two checks inside a hold.
const STEP: Duration = Duration::from_millis(1);

fn hammer_role(args: &[String]) {
    let (lock, mut log, mut inbox) = open_worker(args).unwrap_or_else(|message| panic!("{message}"));
    let holds = hammer(&lock, &mut log, &mut inbox).unwrap_or_else(|message| panic!("{message}"));
    say(format!("DONE {holds}"));
}

fn hold_role(args: &[String]) {
    let (lock, mut log, mut inbox) = open_worker(args).unwrap_or_else(|message| panic!("{message}"));
    hold(&lock, &mut log, &mut inbox).unwrap_or_else(|message| panic!("{message}"));
}

/// `hold` once the main thread has ended, as a C program's does when `main` calls
/// `pthread_exit`: the process lives on in its other threads, and so does its hold.
#[cfg(target_os = "linux")]
fn hold_main_ends_role(args: &[String]) {
    let (lock, mut log, mut inbox) = open_worker(args).unwrap_or_else(|message| panic!("{message}"));
    end_the_main_thread();
    let code = match hold(&lock, &mut log, &mut inbox) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("worker: {message}");
            1
        }
    };
    // The test harness, which would end this test and the process, ran on the main thread.
    std::process::exit(code);
}

/// Ends the process's main thread, and returns once it has ended. The main thread is the test
/// harness's, waiting for this test to end (the test runs on a thread of its own), so a signal
/// sent to it alone ends it.
#[cfg(target_os = "linux")]
fn end_the_main_thread() {
    extern "C" fn exit_thread(_signal: libc::c_int) {
        // SAFETY: the raw `exit` system call ends only the calling thread (unlike `exit_group`),
        // without unwinding; it is async-signal-safe.
        unsafe { libc::syscall(libc::SYS_exit, 0) };
    }
    let pid = libc::pid_t::try_from(std::process::id()).expect("a pid fits pid_t");
    // SAFETY: installs a handler for SIGUSR1, which nothing else in this process uses, and sends
    // SIGUSR1 to the main thread alone, whose thread id is the pid. The main thread is waiting
    // for this test's result and holds nothing that the other threads need.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = exit_thread as *const () as libc::sighandler_t;
        assert_eq!(libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()), 0, "sigaction");
        let rc = libc::syscall(libc::SYS_tgkill, pid, pid, libc::SIGUSR1);
        assert_eq!(rc, 0, "tgkill: {}", std::io::Error::last_os_error());
    }
    // A process whose main thread has ended reads as a zombie while its other threads run.
    let deadline = std::time::Instant::now() + support::child::PATIENCE;
    loop {
        let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat reads");
        // The state follows the command's name, which is in parentheses.
        let state = stat.rfind(')').and_then(|at| stat[at + 1..].split_whitespace().next());
        if state == Some("Z") {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the main thread did not end: {stat}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The worker's lock, log and commands, from its arguments.
fn open_worker(args: &[String]) -> Result<(Lock, Log, Inbox), String> {
    let [database, log, key, label, lease_ms, renew_every_ms, max_backoff_ms] = args else {
        return Err(format!(
            "expected <database> <log> <key> <label> <lease_ms> <renew_every_ms> <max_backoff_ms>, \
             got {args:?}"
        ));
    };
    let options = LockOptions {
        lease: millis(lease_ms)?,
        renew_every: millis(renew_every_ms)?,
        max_backoff: millis(max_backoff_ms)?,
    };
    let store = Store::open(database).map_err(|e| format!("open {database}: {e}"))?;
    let lock = Lock::new(&store, key, label, options).map_err(|e| format!("new lock: {e}"))?;
    let log = Log::open(log)?;
    Ok((lock, log, Inbox::listen()))
}

fn millis(text: &str) -> Result<Duration, String> {
    text.parse().map(Duration::from_millis).map_err(|e| format!("'{text}' is not a number of ms: {e}"))
}

fn hammer(lock: &Lock, log: &mut Log, inbox: &mut Inbox) -> Result<u64, String> {
    let mut random = Random::seeded();
    let mut holds = 0;
    loop {
        inbox.poll();
        if inbox.ended {
            return Ok(holds);
        }
        let guard = match lock.acquire(ACQUIRE_SLICE) {
            Ok(guard) => guard,
            Err(Error::Timeout(_)) => continue,
            Err(e) => return Err(format!("acquire: {e}")),
        };
        holds += 1;
        log.acquired(holds, &guard)?;
        inbox.poll();
        if std::mem::take(&mut inbox.linger) {
            linger(&guard, holds, log, inbox)?;
        } else {
            for _ in 0..3 + random.below(4) {
                if !step(&guard, holds, log)? {
                    break;
                }
                std::thread::sleep(STEP);
            }
        }
        drop(guard);
        std::thread::sleep(Duration::from_millis(random.below(16)));
    }
}

/// Checks the lease every step until it is lost or the input ends.
fn linger(guard: &Guard, hold: u64, log: &mut Log, inbox: &mut Inbox) -> Result<(), String> {
    let mut announced = false;
    loop {
        if !step(guard, hold, log)? {
            say(format!("LOST {hold}"));
            // Lost before the test was told: the test still waits for a lingering hold.
            inbox.linger |= !announced;
            return Ok(());
        }
        if !announced {
            say(format!("HELD {hold}"));
            announced = true;
        }
        inbox.poll();
        if inbox.ended {
            return Ok(());
        }
        std::thread::sleep(STEP);
    }
}

/// One step inside a hold: reads the time, then checks the lease. Returns whether it is held.
fn step(guard: &Guard, hold: u64, log: &mut Log) -> Result<bool, String> {
    let t = monotonic_ns();
    match guard.check() {
        Ok(()) => {
            log.line(&format!("C {hold} {t}"))?;
            Ok(true)
        }
        Err(Error::Lost(_)) => {
            log.line(&format!("L {hold}"))?;
            Ok(false)
        }
        Err(e) => Err(format!("check: {e}")),
    }
}

fn hold(lock: &Lock, log: &mut Log, inbox: &mut Inbox) -> Result<(), String> {
    let clock = BootClock::system().map_err(|e| format!("boot clock: {e}"))?;
    say("WAITING");
    let guard = lock.acquire(Duration::from_secs(60)).map_err(|e| format!("acquire: {e}"))?;
    let (t, boot_ms) = (monotonic_ns(), clock.now_ms());
    log.acquired(1, &guard)?;
    say(format!("ACQUIRED {t} {boot_ms} {} {}", guard.generation(), u8::from(guard.is_dirty())));
    loop {
        match inbox.next() {
            Command::Linger => {}
            Command::Release => {
                guard.check().map_err(|e| format!("check before release: {e}"))?;
                let t = monotonic_ns();
                guard.release().map_err(|e| format!("release: {e}"))?;
                say(format!("RELEASED {t}"));
                return Ok(());
            }
            Command::End => return Ok(()),
        }
    }
}

/// The worker's log file. Each line is one `write` to a file opened for appending.
struct Log(File);

impl Log {
    fn open(path: &str) -> Result<Log, String> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("open {path}: {e}"))?;
        Ok(Log(file))
    }

    fn line(&mut self, text: &str) -> Result<(), String> {
        self.0.write_all(format!("{text}\n").as_bytes()).map_err(|e| format!("write to the log: {e}"))
    }

    fn acquired(&mut self, hold: u64, guard: &Guard) -> Result<(), String> {
        self.line(&format!("A {hold} {} {}", guard.generation(), u8::from(guard.is_dirty())))
    }
}

enum Command {
    Linger,
    Release,
    End,
}

/// The commands read from stdin by a thread of their own.
struct Inbox {
    commands: Receiver<Command>,
    /// A `linger` came and no hold has lingered since.
    linger: bool,
    ended: bool,
}

impl Inbox {
    fn listen() -> Inbox {
        let (send, commands) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let command = match line.as_deref().map(str::trim) {
                    Ok("linger") => Command::Linger,
                    Ok("release") => Command::Release,
                    Ok(other) => {
                        eprintln!("worker: ignoring unknown command '{other}'");
                        continue;
                    }
                    Err(_) => break,
                };
                if send.send(command).is_err() {
                    return;
                }
            }
            let _ = send.send(Command::End);
        });
        Inbox { commands, linger: false, ended: false }
    }

    /// Takes in the commands that came, without waiting.
    fn poll(&mut self) {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Linger) => self.linger = true,
                Ok(Command::Release) => {}
                Ok(Command::End) | Err(TryRecvError::Disconnected) => {
                    self.ended = true;
                    return;
                }
                Err(TryRecvError::Empty) => return,
            }
        }
    }

    /// Waits for the next command.
    fn next(&mut self) -> Command {
        self.commands.recv().unwrap_or(Command::End)
    }
}

/// A xorshift generator for the pauses: they only need to differ between workers.
struct Random(u64);

impl Random {
    fn seeded() -> Random {
        Random((monotonic_ns() ^ u64::from(std::process::id()).rotate_left(32)) | 1)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}
