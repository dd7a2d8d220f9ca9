//! The driver: starts the workers, and at random moments SIGKILLs one (and starts a new
//! incarnation in its place), or SIGSTOPs one, past the lease or briefly, and SIGCONTs it later.
//! It aims most kills and stops at the lease's holder, read from the lease row.
//!
//! For each stop it records what `check` needs to judge it, without relying on the lock:
//! - the length of the worker's log once every thread of the worker had stopped: a stopped
//!   process writes nothing, so the lines past it were written after the continue;
//! - the lease row, read after the stop: if it names the stopped worker with a lease that had
//!   not run out (by the lease clock, read after the row), the worker held the lease when it
//!   stopped (nobody but the holder writes a row with its label);
//! - when the lease row first named another worker, polled every few ms during the stop: that
//!   worker's take had committed by then.
//!
//! A worker that was continued is left alone (not killed, not stopped) for `QUIET`, long
//! enough to log what it finds after the continue. A worker that exits on its own, or does not
//! exit once its stdin closes at the end, is a failure.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lease::{BootClock, Clock, LeaseRow, Store};

use crate::rng::Rng;
use crate::schema;
use crate::time::monotonic_ns;
use crate::worker::{self, WorkerConfig};

/// How often the driver looks at its workers and, during a stop, at the lease row.
const POLL: Duration = Duration::from_millis(5);
/// How long the driver waits for the lease to be held, to aim a kill or a stop at its holder.
const HOLDER_PATIENCE: Duration = Duration::from_secs(1);
/// How long a continued worker is left alone.
const QUIET: Duration = Duration::from_secs(2);
/// How long a worker may take to stop all its threads, or to exit once its stdin closed.
const PATIENCE: Duration = Duration::from_secs(30);

/// What the run is asked for.
pub struct Plan {
    pub duration: Duration,
    pub processes: usize,
    pub lease: Duration,
    pub seed: u64,
    pub unsafe_writes: bool,
}

/// What the run did, for the checks.
pub struct Record {
    pub elapsed: Duration,
    /// Every worker process the run started.
    pub incarnations: Vec<Incarnation>,
    pub kills: u64,
    /// Kills of the lease's holder (by the lease row, read just before).
    pub holder_kills: u64,
    pub stops: Vec<Stop>,
    /// What went wrong with the processes themselves: exits on their own, hangs.
    pub failures: Vec<String>,
}

pub struct Incarnation {
    pub label: String,
    pub log: PathBuf,
}

/// One SIGSTOP and its SIGCONT.
pub struct Stop {
    pub label: String,
    pub stopped_at: u64,
    pub continued_at: u64,
    /// The log's length once the worker had stopped.
    pub log_offset: u64,
    /// The lease row read after the stop, if it named this worker with a lease not run out.
    pub held: Option<LeaseRow>,
    /// The lease row first seen naming another worker during the stop.
    pub taken: Option<Taken>,
}

pub struct Taken {
    /// Read after the row was read: the take had committed by then.
    pub at: u64,
    pub by: String,
}

/// Runs the workers over `database` (created, with its tables, by the caller) for the plan's
/// duration; `store` is the driver's own view of the lease row.
pub fn run(plan: &Plan, dir: &Path, database: &Path, store: &Store) -> Result<Record, String> {
    let started = Instant::now();
    let mut driver = Driver {
        plan,
        dir,
        database: database.to_path_buf(),
        store,
        clock: BootClock::system().map_err(|e| format!("the boot clock: {e}"))?,
        rng: Rng::new(Rng::derive(plan.seed, &[u64::MAX])),
        slots: Vec::new(),
        stopped: None,
        journal: OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("driver.log"))
            .map_err(|e| format!("open the driver's log: {e}"))?,
        record: Record {
            elapsed: Duration::ZERO,
            incarnations: Vec::new(),
            kills: 0,
            holder_kills: 0,
            stops: Vec::new(),
            failures: Vec::new(),
        },
    };
    for index in 0..plan.processes {
        let slot = driver.spawn(index, 1)?;
        driver.slots.push(slot);
    }
    let end = started + plan.duration;
    let mut next_action = started + driver.rng.millis(200, 800);
    let mut next_progress = started + Duration::from_secs(60);
    while Instant::now() < end {
        driver.reap_unexpected()?;
        driver.watch_stop()?;
        let now = Instant::now();
        if now >= next_action {
            driver.act()?;
            next_action = now + driver.rng.millis(200, 800);
        }
        if now >= next_progress {
            let past =
                driver.record.stops.iter().filter(|s| s.continued_at - s.stopped_at > nanos(plan.lease));
            println!(
                "  {:>4} s: {} kills, {} stops ({} past the lease), {} processes started",
                started.elapsed().as_secs(),
                driver.record.kills,
                driver.record.stops.len(),
                past.count(),
                driver.record.incarnations.len()
            );
            next_progress += Duration::from_secs(60);
        }
        std::thread::sleep(POLL);
    }
    driver.finish()?;
    driver.record.elapsed = started.elapsed();
    Ok(driver.record)
}

struct Driver<'a> {
    plan: &'a Plan,
    dir: &'a Path,
    database: PathBuf,
    store: &'a Store,
    clock: Arc<BootClock>,
    rng: Rng,
    slots: Vec<Slot>,
    stopped: Option<Stopped>,
    /// `driver.log`: every kill, stop, take and continue, with its time, for a failure's story.
    journal: File,
    record: Record,
}

/// A worker's place: its current incarnation.
struct Slot {
    incarnation: u64,
    label: String,
    log: PathBuf,
    process: Child,
    /// Closed at the end of the run, which tells the worker to finish.
    stdin: Option<ChildStdin>,
    /// Not killed or stopped before then.
    quiet_until: Instant,
}

struct Stopped {
    slot: usize,
    until: Instant,
    stop: Stop,
}

impl Driver<'_> {
    fn spawn(&mut self, index: usize, incarnation: u64) -> Result<Slot, String> {
        let label = format!("w{index}.{incarnation}");
        let log = self.dir.join(format!("{label}.log"));
        let stderr =
            File::create(self.dir.join(format!("{label}.err"))).map_err(|e| format!("{label}.err: {e}"))?;
        let config = WorkerConfig {
            database: self.database.clone(),
            log: log.clone(),
            label: label.clone(),
            lease: self.plan.lease,
            seed: Rng::derive(self.plan.seed, &[index as u64, incarnation]),
            parent: std::process::id(),
            unsafe_writes: self.plan.unsafe_writes,
        };
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let mut process = Command::new(exe)
            .arg(worker::SUBCOMMAND)
            .args(config.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {label}: {e}"))?;
        let stdin = process.stdin.take();
        self.note(&format!("start {label} pid {}", process.id()));
        self.record.incarnations.push(Incarnation { label: label.clone(), log: log.clone() });
        Ok(Slot { incarnation, label, log, process, stdin, quiet_until: Instant::now() })
    }

    fn note(&mut self, what: &str) {
        // The journal is for reading after a failure; the run does not depend on it.
        let _ = writeln!(self.journal, "{} {what}", monotonic_ns());
    }

    /// Starts a new incarnation in the place of any worker that exited without being killed.
    fn reap_unexpected(&mut self) -> Result<(), String> {
        for index in 0..self.slots.len() {
            let status = self.slots[index].process.try_wait().map_err(|e| format!("waitpid: {e}"))?;
            if let Some(status) = status {
                let label = self.slots[index].label.clone();
                self.record.failures.push(format!(
                    "{label} exited on its own ({status}); its stderr: {}",
                    self.stderr_of(&label)
                ));
                self.note(&format!("exited {label} {status}"));
                let incarnation = self.slots[index].incarnation + 1;
                self.slots[index] = self.spawn(index, incarnation)?;
            }
        }
        Ok(())
    }

    /// During a stop: notes when another worker takes the lease, and continues the worker when
    /// its stop is over.
    fn watch_stop(&mut self) -> Result<(), String> {
        let Some(stopped) = self.stopped.as_mut() else { return Ok(()) };
        if stopped.stop.held.is_some() && stopped.stop.taken.is_none() {
            let row = self.store.lease_row(schema::KEY);
            let at = monotonic_ns();
            match row {
                Ok(Some(row)) if row.label != stopped.stop.label => {
                    stopped.stop.taken = Some(Taken { at, by: row.label.clone() });
                    let line = format!(
                        "taken from {} by {} generation {}",
                        stopped.stop.label, row.label, row.generation
                    );
                    self.note(&line);
                }
                Ok(_) => {}
                Err(e) => self.record.failures.push(format!("reading the lease row during a stop: {e}")),
            }
        }
        if self.stopped.as_ref().is_some_and(|stopped| Instant::now() >= stopped.until) {
            self.continue_stopped();
        }
        Ok(())
    }

    fn continue_stopped(&mut self) {
        let Some(Stopped { slot, mut stop, .. }) = self.stopped.take() else { return };
        signal(self.slots[slot].process.id(), libc::SIGCONT);
        stop.continued_at = monotonic_ns();
        self.slots[slot].quiet_until = Instant::now() + QUIET;
        self.note(&format!("continue {}", stop.label));
        self.record.stops.push(stop);
    }

    fn act(&mut self) -> Result<(), String> {
        let roll = self.rng.below(100);
        if roll < 20 {
            if let Some(slot) = self.target(50)? {
                self.kill(slot)?;
            }
        } else if roll < 60 && self.stopped.is_none() {
            if let Some(slot) = self.target(85)? {
                self.stop(slot)?;
            }
        }
        Ok(())
    }

    /// A worker that may be killed or stopped now: `holder_percent` times in a hundred, the
    /// lease's holder, waited for up to `HOLDER_PATIENCE` (the lease is free between holds);
    /// else, or if none comes, any. A stop under way goes on being watched meanwhile.
    fn target(&mut self, holder_percent: u64) -> Result<Option<usize>, String> {
        let now = Instant::now();
        let stopped = self.stopped.as_ref().map(|stopped| stopped.slot);
        let eligible: Vec<usize> = (0..self.slots.len())
            .filter(|&i| Some(i) != stopped && self.slots[i].quiet_until <= now)
            .collect();
        if eligible.is_empty() {
            return Ok(None);
        }
        if self.rng.chance(holder_percent) {
            let deadline = now + HOLDER_PATIENCE;
            while Instant::now() < deadline {
                let holder = self.live_lease().map(|row| row.label);
                if let Some(&i) = eligible.iter().find(|&&i| Some(&self.slots[i].label) == holder.as_ref()) {
                    self.note(&format!("aiming at the holder, {}", self.slots[i].label));
                    // Seen at once, the holder has often just taken the lease: a few ms more
                    // land most stops inside its hold instead.
                    std::thread::sleep(self.rng.millis(0, 5));
                    return Ok(Some(i));
                }
                self.watch_stop()?;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(Some(eligible[self.rng.below(eligible.len() as u64) as usize]))
    }

    fn kill(&mut self, index: usize) -> Result<(), String> {
        let label = self.slots[index].label.clone();
        if self.slots[index].process.try_wait().map_err(|e| format!("waitpid: {e}"))?.is_some() {
            // It exited on its own: `reap_unexpected` reports it.
            return Ok(());
        }
        if self.live_lease().is_some_and(|row| row.label == label) {
            self.record.holder_kills += 1;
        }
        let slot = &mut self.slots[index];
        slot.process.kill().map_err(|e| format!("kill {label}: {e}"))?;
        slot.process.wait().map_err(|e| format!("reap {label}: {e}"))?;
        self.record.kills += 1;
        self.note(&format!("killed {label}"));
        let incarnation = self.slots[index].incarnation + 1;
        self.slots[index] = self.spawn(index, incarnation)?;
        Ok(())
    }

    fn stop(&mut self, index: usize) -> Result<(), String> {
        let lease_ms = self.plan.lease.as_millis() as u64;
        let length = if self.rng.chance(60) {
            self.rng.millis(lease_ms * 5 / 4, lease_ms * 3)
        } else {
            self.rng.millis(5, 200)
        };
        let slot = &self.slots[index];
        let (label, pid) = (slot.label.clone(), slot.process.id());
        signal(pid, libc::SIGSTOP);
        let deadline = Instant::now() + PATIENCE;
        while !all_threads_stopped(pid) {
            if Instant::now() >= deadline {
                self.record.failures.push(format!("{label} did not stop within {PATIENCE:?} of a SIGSTOP"));
                signal(pid, libc::SIGCONT);
                return Ok(());
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let stopped_at = monotonic_ns();
        let log_offset = std::fs::metadata(&slot.log).map(|m| m.len()).unwrap_or(0);
        let held = self.live_lease().filter(|row| row.label == label);
        let holding = held
            .as_ref()
            .map_or("not holding".to_owned(), |row| format!("holding generation {}", row.generation));
        self.note(&format!("stopped {label} for {length:?}, log at {log_offset}, {holding}"));
        let stop = Stop { label, stopped_at, continued_at: 0, log_offset, held, taken: None };
        self.stopped = Some(Stopped { slot: index, until: Instant::now() + length, stop });
        Ok(())
    }

    /// The lease row, if it holds a lease that has not run out (by the lease clock, read after
    /// the row).
    fn live_lease(&mut self) -> Option<LeaseRow> {
        match self.store.lease_row(schema::KEY) {
            Ok(row) => {
                let now_ms = self.clock.now_ms();
                row.filter(|row| row.expires_ms > now_ms)
            }
            Err(e) => {
                self.record.failures.push(format!("reading the lease row: {e}"));
                None
            }
        }
    }

    /// Continues a stopped worker, lets the continued settle, closes every worker's stdin and
    /// waits for each to exit.
    fn finish(&mut self) -> Result<(), String> {
        self.continue_stopped();
        let settled = Instant::now() + QUIET;
        while Instant::now() < settled {
            self.reap_unexpected()?;
            std::thread::sleep(POLL);
        }
        self.note("end: closing the workers' input");
        for slot in &mut self.slots {
            slot.stdin.take();
        }
        let deadline = Instant::now() + PATIENCE;
        for index in 0..self.slots.len() {
            loop {
                let slot = &mut self.slots[index];
                let label = slot.label.clone();
                if let Some(status) = slot.process.try_wait().map_err(|e| format!("waitpid: {e}"))? {
                    if !status.success() {
                        let stderr = self.stderr_of(&label);
                        self.record
                            .failures
                            .push(format!("{label} ended with {status}; its stderr: {stderr}"));
                    }
                    break;
                }
                if Instant::now() >= deadline {
                    let threads = threads_of(slot.process.id());
                    self.record.failures.push(format!(
                        "{label} hung: it had not exited {PATIENCE:?} after its input closed; its threads: {threads}"
                    ));
                    let _ = slot.process.kill();
                    let _ = slot.process.wait();
                    break;
                }
                std::thread::sleep(POLL);
            }
        }
        Ok(())
    }

    /// The end of a worker's stderr, on one line.
    fn stderr_of(&self, label: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join(format!("{label}.err"))).unwrap_or_default();
        let text = text.trim().replace('\n', " | ");
        let start = text.char_indices().rev().nth(600).map_or(0, |(i, _)| i);
        if text.is_empty() {
            "(empty)".into()
        } else {
            text[start..].to_owned()
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).expect("the soak's durations fit u64 nanoseconds")
}

fn signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
    // SAFETY: signals a child of this process that it has not reaped (a reaped child's slot
    // holds its successor), so the pid cannot have been reused.
    unsafe { libc::kill(pid, signal) };
}

/// The state letter of each thread of `pid`, from `/proc/<pid>/task/*/stat`.
fn thread_states(pid: u32) -> Vec<(String, String)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut states = Vec::new();
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The state follows the command's name, which is in parentheses.
        let state = stat.rfind(')').and_then(|at| stat[at + 1..].split_whitespace().next()).unwrap_or("?");
        states.push((task.file_name().to_string_lossy().into_owned(), state.to_owned()));
    }
    states
}

fn all_threads_stopped(pid: u32) -> bool {
    let states = thread_states(pid);
    !states.is_empty() && states.iter().all(|(_, state)| state == "T" || state == "t")
}

/// Each thread of `pid` with its state and where it sleeps in the kernel, for a hang's report.
fn threads_of(pid: u32) -> String {
    let described: Vec<String> = thread_states(pid)
        .into_iter()
        .map(|(tid, state)| {
            let wchan = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/wchan")).unwrap_or_default();
            format!("{tid} {state} {wchan}")
        })
        .collect();
    described.join(", ")
}
