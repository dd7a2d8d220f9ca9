//! A worker: one process of the soak (this binary, run again by the driver with the hidden
//! `worker` subcommand). It loops at random over three things, logging each fact to its own log
//! (see `event`) and writing only through liblease's public API:
//!
//! - a hold: takes the lease (waiting up to a few seconds), keeps it a few ms (now and then a
//!   few hundred), checking its guard every millisecond and making a fenced write every few tens
//!   of ms (the first at once), then gives it back;
//! - a plain transaction of one to four rows;
//! - a chunked job: `begin_chunked` with a period of 50 to 200 ms, a row and `maybe_commit` about
//!   every half millisecond, for a tenth of a second to a second and a half.
//!
//! It goes on until its stdin closes (the driver's end of the run), and dies with the driver.
//! Busy and timed-out writes are logged and the worker goes on; any other error ends it with
//! status 1, which the driver reports as a failure.
//!
//! `--unsafe-writes` plants the bug that the stopped-holder check is there to catch: a holder
//! told by a SIGCONT handler that it was continued writes its next fenced row with a plain
//! `begin()`, before checking its guard (and one whose fenced begin is refused after a continue
//! writes it that way all the same). Only the soak's own test uses it, to see the check fail.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lease::{ChunkOptions, Database, Error, Guard, Lock, LockOptions, Store, Value};

use crate::event::{Event, EventLog, LostBy};
use crate::rng::Rng;
use crate::schema;
use crate::time::monotonic_ns;

pub const SUBCOMMAND: &str = "worker";

/// The pause between two guard checks, and the "piece of work" between rows of a job.
const STEP: Duration = Duration::from_millis(1);
/// The longest pause between two attempts of a waiting `acquire`.
const MAX_BACKOFF: Duration = Duration::from_millis(20);

/// What the driver starts a worker with.
pub struct WorkerConfig {
    pub database: PathBuf,
    pub log: PathBuf,
    /// The worker's name and incarnation (`w3.2`): its lock's label, and its rows' `worker`.
    pub label: String,
    pub lease: Duration,
    pub seed: u64,
    /// The driver's pid: the worker ends if it is not its parent (it died before the worker
    /// could ask to die with it).
    pub parent: u32,
    pub unsafe_writes: bool,
}

impl WorkerConfig {
    /// The arguments after `worker` that make this configuration.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--db".into(),
            self.database.display().to_string(),
            "--log".into(),
            self.log.display().to_string(),
            "--label".into(),
            self.label.clone(),
            "--lease-ms".into(),
            self.lease.as_millis().to_string(),
            "--seed".into(),
            self.seed.to_string(),
            "--parent".into(),
            self.parent.to_string(),
        ];
        if self.unsafe_writes {
            args.push("--unsafe-writes".into());
        }
        args
    }

    pub fn from_args(args: &[String]) -> Result<WorkerConfig, String> {
        let mut config = WorkerConfig {
            database: PathBuf::new(),
            log: PathBuf::new(),
            label: String::new(),
            lease: Duration::ZERO,
            seed: 0,
            parent: 0,
            unsafe_writes: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg == "--unsafe-writes" {
                config.unsafe_writes = true;
                continue;
            }
            let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
            let number = || value.parse::<u64>().map_err(|_| format!("{arg}: '{value}' is not a number"));
            match arg.as_str() {
                "--db" => config.database = value.into(),
                "--log" => config.log = value.into(),
                "--label" => config.label = value.clone(),
                "--lease-ms" => config.lease = Duration::from_millis(number()?),
                "--seed" => config.seed = number()?,
                "--parent" => config.parent = u32::try_from(number()?).map_err(|_| "--parent: not a pid")?,
                other => return Err(format!("unknown worker argument: {other}")),
            }
        }
        if config.label.is_empty() || config.lease.is_zero() || config.parent == 0 {
            return Err("a worker needs --db, --log, --label, --lease-ms and --parent".into());
        }
        Ok(config)
    }
}

/// Runs a worker until its stdin closes.
pub fn run(config: WorkerConfig) -> Result<(), String> {
    die_with_parent(config.parent)?;
    let store = Store::open(&config.database).map_err(|e| format!("open the store: {e}"))?;
    let options =
        LockOptions { lease: config.lease, renew_every: config.lease / 4, max_backoff: MAX_BACKOFF };
    let lock =
        Lock::new(&store, schema::KEY, &config.label, options).map_err(|e| format!("new lock: {e}"))?;
    let database = Database::open(&config.database).map_err(|e| format!("open the database: {e}"))?;
    let mut worker = Worker {
        lock,
        database,
        log: EventLog::open(&config.log)?,
        rng: Rng::new(config.seed),
        label: config.label,
        unsafe_writes: config.unsafe_writes,
        holds: 0,
        transactions: 0,
        jobs: 0,
    };
    if config.unsafe_writes {
        watch_continue()?;
    }
    let ending = watch_stdin();
    while !ending.load(Ordering::SeqCst) {
        match worker.rng.below(4) {
            0 | 1 => worker.hold()?,
            2 => worker.plain()?,
            _ => worker.job()?,
        }
        std::thread::sleep(worker.rng.millis(0, 5));
    }
    Ok(())
}

struct Worker {
    lock: Lock,
    database: Database,
    log: EventLog,
    rng: Rng,
    label: String,
    unsafe_writes: bool,
    holds: u64,
    transactions: u64,
    jobs: u64,
}

impl Worker {
    fn hold(&mut self) -> Result<(), String> {
        self.holds += 1;
        let hold = self.holds;
        // A continue before this hold is not the planted bug's business.
        CONTINUED.store(false, Ordering::SeqCst);
        self.log.write(&Event::Waiting { hold })?;
        let guard = match self.lock.acquire(self.rng.millis(500, 3000)) {
            Ok(guard) => guard,
            Err(Error::Timeout(_)) => return self.log.write(&Event::TimedOut { hold }),
            Err(e) => return Err(format!("acquire: {e}")),
        };
        let generation = guard.generation();
        let dirty = guard.is_dirty();
        self.log.write(&Event::Acquired { hold, generation, dirty, t: monotonic_ns() })?;
        let length = if self.rng.chance(85) { self.rng.millis(3, 20) } else { self.rng.millis(20, 300) };
        let end = monotonic_ns() + nanos(length);
        let mut next_write = 0;
        let mut seq = 0;
        loop {
            let t = monotonic_ns();
            // Always false without `--unsafe-writes`.
            let unfenced = self.continued();
            if !unfenced {
                match guard.check() {
                    Ok(()) => self.log.write(&Event::Checked { hold, t })?,
                    Err(Error::Lost(_)) => return self.log.write(&Event::Lost { hold, by: LostBy::Check }),
                    Err(e) => return Err(format!("check: {e}")),
                }
                if t >= end {
                    break;
                }
            }
            if unfenced || t >= next_write {
                match self.fenced_write(&guard, hold, generation, seq, unfenced) {
                    Ok(t) => {
                        self.log.write(&Event::Fenced { hold, seq, t })?;
                        seq += 1;
                    }
                    Err(Error::Lost(_)) => return self.log.write(&Event::Lost { hold, by: LostBy::Begin }),
                    Err(e) => self.failed("fenced", e)?,
                }
                next_write = monotonic_ns() + nanos(self.rng.millis(5, 50));
            }
            std::thread::sleep(STEP);
        }
        if let Err(e) = guard.release() {
            self.failed("release", e)?;
        }
        self.log.write(&Event::Released { hold, t: monotonic_ns() })
    }

    /// One fenced row; returns the time read inside the transaction. `unfenced` (the planted
    /// bug) writes it with a plain `begin()`, as does a fenced begin refused after a continue.
    fn fenced_write(
        &self,
        guard: &Guard,
        hold: u64,
        generation: u64,
        seq: u64,
        unfenced: bool,
    ) -> lease::Result<u64> {
        let begun = if unfenced { self.database.begin() } else { self.database.begin_fenced(guard) };
        let mut tx = match begun {
            Err(Error::Lost(_)) if self.continued() => self.database.begin()?,
            other => other?,
        };
        let t = monotonic_ns();
        tx.execute(schema::INSERT_FENCED, &self.fenced_row(hold, generation, seq, t))?;
        tx.commit()?;
        Ok(t)
    }

    /// With `--unsafe-writes`, whether the worker was continued since it last asked.
    fn continued(&self) -> bool {
        self.unsafe_writes && CONTINUED.swap(false, Ordering::SeqCst)
    }

    fn fenced_row(&self, hold: u64, generation: u64, seq: u64, t: u64) -> [Value<'_>; 5] {
        [Value::Text(&self.label), int(hold), int(generation), int(seq), int(t)]
    }

    fn plain(&mut self) -> Result<(), String> {
        self.transactions += 1;
        let tx = self.transactions;
        let rows = 1 + self.rng.below(4);
        let written = self.database.begin().and_then(|mut transaction| {
            for seq in 0..rows {
                transaction.execute(
                    schema::INSERT_PLAIN,
                    &[Value::Text(&self.label), int(tx), int(rows), int(seq)],
                )?;
            }
            transaction.commit()
        });
        match written {
            Ok(()) => self.log.write(&Event::Plain { tx, rows }),
            Err(e) => self.failed("plain", e),
        }
    }

    fn job(&mut self) -> Result<(), String> {
        self.jobs += 1;
        let job = self.jobs;
        let period = self.rng.millis(50, 200);
        let options = ChunkOptions { period, slice: ChunkOptions::DEFAULT.slice, gap: period / 4 };
        let mut transaction = match self.database.begin_chunked(options) {
            Ok(transaction) => transaction,
            Err(e) => return self.failed("chunked", e),
        };
        let end = monotonic_ns() + nanos(self.rng.millis(100, 1500));
        let (mut chunk, mut first, mut seq) = (0, 0, 0);
        loop {
            transaction
                .execute(schema::INSERT_CHUNK, &[Value::Text(&self.label), int(job), int(chunk), int(seq)])
                .map_err(|e| format!("insert a chunk's row: {e}"))?;
            seq += 1;
            match transaction.maybe_commit() {
                Ok(true) => {
                    self.log.write(&Event::Chunk { job, chunk, first, last: seq - 1 })?;
                    chunk += 1;
                    first = seq;
                }
                Ok(false) => {}
                // The transaction has ended: its chunk was rolled back, or committed and the
                // next could not begin. Nothing is claimed for it.
                Err(e) => return self.failed("chunk", e),
            }
            if monotonic_ns() >= end {
                break;
            }
            if self.rng.chance(50) {
                std::thread::sleep(STEP);
            }
        }
        match transaction.commit() {
            Ok(()) if seq > first => self.log.write(&Event::Chunk { job, chunk, first, last: seq - 1 }),
            Ok(()) => Ok(()),
            Err(e) => self.failed("chunk", e),
        }
    }

    /// Logs a write that failed in a way a user of liblease would retry; ends the worker with
    /// any other error.
    fn failed(&mut self, what: &str, error: Error) -> Result<(), String> {
        match error {
            Error::Busy(_) | Error::Timeout(_) => {
                self.log.write(&Event::Failed { what: what.into(), message: error.to_string() })
            }
            other => Err(format!("{what}: {other}")),
        }
    }
}

fn int(n: u64) -> Value<'static> {
    Value::Integer(i64::try_from(n).expect("the soak's numbers fit an i64"))
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).expect("the soak's durations fit u64 nanoseconds")
}

/// Set once stdin closes: the driver ends the run by closing it.
fn watch_stdin() -> Arc<AtomicBool> {
    let ending = Arc::new(AtomicBool::new(false));
    let flag = ending.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 64];
        while matches!(std::io::stdin().read(&mut buffer), Ok(n) if n > 0) {}
        flag.store(true, Ordering::SeqCst);
    });
    ending
}

/// Set by SIGCONT in a worker with `--unsafe-writes`.
static CONTINUED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_continue(_signal: libc::c_int) {
    CONTINUED.store(true, Ordering::SeqCst);
}

/// Makes SIGCONT set [`CONTINUED`] (the process is continued as ever).
fn watch_continue() -> Result<(), String> {
    // SAFETY: installs a handler that only stores to an atomic, which is async-signal-safe;
    // SA_RESTART keeps the interrupted system calls of the other threads going.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_continue as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        if libc::sigaction(libc::SIGCONT, &action, std::ptr::null_mut()) != 0 {
            return Err(format!("sigaction: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Asks the kernel to SIGKILL this process when the driver dies, so that no worker outlives
/// it, even a stopped one (which would never see its stdin close).
fn die_with_parent(parent: u32) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_PDEATHSIG takes a signal number and changes nothing else.
        let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        if rc != 0 {
            return Err(format!("prctl: {}", std::io::Error::last_os_error()));
        }
    }
    // The parent may have died before the request: then this process has been adopted.
    // SAFETY: getppid has no preconditions.
    let actual = unsafe { libc::getppid() };
    if u32::try_from(actual).ok() != Some(parent) {
        return Err(format!("the driver (pid {parent}) is gone"));
    }
    Ok(())
}
