//! One OS process contending for a lease, spawned by the multi-process tests
//! (`tests/multiprocess.rs`). It uses only the public API.
//!
//! `lease-test-worker <mode> <database> <log> <key> <label> <lease_ms> <renew_every_ms> <max_backoff_ms>`
//!
//! It reports through its log file, appended to with one `write` per line, so that a killed
//! worker leaves whole lines:
//! - `A <hold> <generation> <dirty>` when it has taken the lease (holds are numbered from 1);
//! - `C <hold> <t>` after a check that succeeded and began after `t` (CLOCK_MONOTONIC
//!   nanoseconds), so the lease was ours at `t`;
//! - `L <hold>` when a check found the lease lost; the hold is then abandoned.
//!
//! It reads commands from stdin, one per line; the end of input means "finish and exit". It
//! prints on stdout the events a test waits for. Modes:
//! - `hammer`: takes the lease, checks it every millisecond for a few steps, gives it back,
//!   pauses a few random milliseconds, and again, until the end of input; then prints
//!   `DONE <holds>`. After the command `linger`, the next hold lasts until its lease is lost:
//!   `HELD <hold>` once a check in it succeeded, `LOST <hold>` when a check fails (if that comes
//!   before `HELD`, the hold after it lingers instead).
//! - `hold`: prints `WAITING`, waits in `acquire`, prints
//!   `ACQUIRED <t> <boot_ms> <generation> <dirty>` (`t` and `boot_ms` read once `acquire`
//!   returned; `boot_ms` on the lease's own clock), then holds until the command `release`
//!   (prints `RELEASED <t>`, `t` read just before the guard is released) or the end of input.
//! - `hold-main-ends` (Linux): `hold`, on a second thread, once the main thread has ended.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Duration;

use lease::{BootClock, Clock, Error, Guard, Lock, LockOptions, Store};

/// How long one `acquire` waits before the worker looks at its commands again.
const ACQUIRE_SLICE: Duration = Duration::from_millis(200);
/// The pause between two checks inside a hold.
const STEP: Duration = Duration::from_millis(1);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lease-test-worker: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, database, log, key, label, lease_ms, renew_every_ms, max_backoff_ms] = &args[..] else {
        return Err(format!(
            "expected <mode> <database> <log> <key> <label> <lease_ms> <renew_every_ms> <max_backoff_ms>, \
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
    let mut log = Log::open(log)?;
    let mut inbox = Inbox::listen();
    match mode.as_str() {
        "hammer" => {
            let holds = hammer(&lock, &mut log, &mut inbox)?;
            println!("DONE {holds}");
            Ok(())
        }
        "hold" => hold(&lock, &mut log, &mut inbox),
        #[cfg(target_os = "linux")]
        "hold-main-ends" => hold_after_main_ends(lock, log, inbox),
        other => Err(format!("unknown mode '{other}'")),
    }
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
            println!("LOST {hold}");
            // Lost before the test was told: the test still waits for a lingering hold.
            inbox.linger |= !announced;
            return Ok(());
        }
        if !announced {
            println!("HELD {hold}");
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
    println!("WAITING");
    let guard = lock.acquire(Duration::from_secs(60)).map_err(|e| format!("acquire: {e}"))?;
    let (t, boot_ms) = (monotonic_ns(), clock.now_ms());
    log.acquired(1, &guard)?;
    println!("ACQUIRED {t} {boot_ms} {} {}", guard.generation(), u8::from(guard.is_dirty()));
    loop {
        match inbox.next() {
            Command::Linger => {}
            Command::Release => {
                guard.check().map_err(|e| format!("check before release: {e}"))?;
                let t = monotonic_ns();
                guard.release().map_err(|e| format!("release: {e}"))?;
                println!("RELEASED {t}");
                return Ok(());
            }
            Command::End => return Ok(()),
        }
    }
}

/// `hold` on a second thread while the main thread ends, as a C program's does when `main`
/// calls `pthread_exit`: the process lives on in the other thread, and so does its hold.
#[cfg(target_os = "linux")]
fn hold_after_main_ends(lock: Lock, mut log: Log, mut inbox: Inbox) -> Result<(), String> {
    std::thread::spawn(move || {
        let code = match hold(&lock, &mut log, &mut inbox) {
            Ok(()) => 0,
            Err(message) => {
                eprintln!("lease-test-worker: {message}");
                1
            }
        };
        std::process::exit(code);
    });
    // SAFETY: the raw `exit` system call ends only the calling thread (unlike `exit_group`),
    // without unwinding; the other thread owns everything it uses.
    unsafe { libc::syscall(libc::SYS_exit, 0) };
    unreachable!("the main thread has ended")
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
                        eprintln!("lease-test-worker: ignoring unknown command '{other}'");
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

fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    assert_eq!(rc, 0, "CLOCK_MONOTONIC is always available");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
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
