//! What the tests of `lease` share: running the built tool, and the roles of the child
//! processes that hold leases and write (the repository's child harness runs them: each test
//! file lists these roles in its own `child_process`).

// Every test binary that includes this module compiles all of it, and none uses all of it.
#![allow(dead_code)]

#[path = "../../../tests/support/child.rs"]
pub mod child;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lease::{Database, Error, Guard, Lock, LockOptions, Store};

use child::{say, Child, PATIENCE};

/// What a run of the tool printed, and how it exited.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the built `lease` with `args`.
#[track_caller]
pub fn lease(args: &[&str]) -> Ran {
    let output = Command::new(env!("CARGO_BIN_EXE_lease")).args(args).output().expect("the tool runs");
    Ran {
        code: output.status.code().expect("the tool exits, not killed by a signal"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 output"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 errors"),
    }
}

/// `lease status DB --json`, parsed; fails the test unless it exited 0.
#[track_caller]
pub fn status_json(db: &Path) -> serde_json::Value {
    let ran = lease(&["status", text(db), "--json"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("status --json is JSON ({e}): {}", ran.stdout))
}

/// The `leases` entry of `key` in `lease status --json`.
#[track_caller]
pub fn lease_entry(db: &Path, key: &str) -> serde_json::Value {
    let status = status_json(db);
    let leases = status["leases"].as_array().expect("a leases array");
    leases
        .iter()
        .find(|lease| lease["key"] == key)
        .unwrap_or_else(|| panic!("no lease '{key}' in {status}"))
        .clone()
}

/// Asks `lease status --json` again until `wanted` holds of `key`'s entry, up to the children's
/// patience.
#[track_caller]
pub fn await_entry(
    db: &Path,
    key: &str,
    what: &str,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let entry = lease_entry(db, key);
        if wanted(&entry) {
            return entry;
        }
        assert!(Instant::now() < deadline, "'{key}' never became {what}: {entry}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn text(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// A scratch directory and a database in it.
pub fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    (dir, db)
}

/// A lease that outlasts any test: only a break or a crash can end it.
pub const LONG: &str = "3600000";

/// Starts a holder of `key` and waits until it holds; returns it and the lease's generation.
#[track_caller]
pub fn hold(db: &Path, key: &str, label: &str, lease_ms: &str, renew_ms: &str) -> (Child, u64) {
    let mut holder = Child::spawn(label, "holder", &[text(db), key, label, lease_ms, renew_ms]);
    let held = holder.expect("HELD");
    let generation = held.split_whitespace().nth(1).and_then(|g| g.parse().ok()).expect("HELD <generation>");
    (holder, generation)
}

fn millis(arg: &str) -> Duration {
    Duration::from_millis(arg.parse().expect("milliseconds"))
}

fn lines() -> impl Iterator<Item = String> {
    std::io::stdin().lock().lines().map_while(Result::ok)
}

/// How a guard or a transaction's check came out: `ok`, `lost <why>` or `error <what>`.
fn outcome(checked: lease::Result<()>) -> String {
    match checked {
        Ok(()) => "ok".into(),
        Err(Error::Lost(why)) => format!("lost {why}"),
        Err(other) => format!("error {other}"),
    }
}

/// `holder <db> <key> <label> <lease_ms> <renew_ms>`: takes the lease, says `HELD <generation>`,
/// then answers commands until its input ends:
/// - `check`: `CHECK <outcome>`, the guard's check;
/// - `await-lost`: checks the guard until it is lost, then says `LOST <outcome>` (`STILL ok` past
///   the patience of the harness);
/// - `fence`: begins and commits a fenced transaction, and says `FENCED <outcome>`.
pub fn holder(args: &[String]) {
    let (path, key, label) = (Path::new(&args[0]), &args[1], &args[2]);
    let options = LockOptions {
        lease: millis(&args[3]),
        renew_every: millis(&args[4]),
        max_backoff: Duration::from_millis(5),
    };
    let store = Store::open(path).unwrap();
    let db = Database::open(path).unwrap();
    let lock = Lock::new(&store, key, label, options).unwrap();
    let guard = lock.acquire(PATIENCE).unwrap();
    say(format!("HELD {}", guard.generation()));
    for command in lines() {
        match command.as_str() {
            "check" => say(format!("CHECK {}", outcome(guard.check()))),
            "await-lost" => say(await_lost(&guard)),
            "fence" => {
                let fenced = db.begin_fenced(&guard).and_then(|tx| tx.commit());
                say(format!("FENCED {}", outcome(fenced)));
            }
            other => panic!("unknown command '{other}'"),
        }
    }
}

fn await_lost(guard: &Guard) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match guard.check() {
            Ok(()) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            checked => return format!("LOST {}", outcome(checked)),
        }
    }
}

/// `acquirer <db> <key> <label>`: tries the lease once and says `REFUSED` if another holder keeps
/// it (`TOOK <generation>` if not), then waits for it and says `ACQUIRED <generation>`; holds it
/// until its input ends.
pub fn acquirer(args: &[String]) {
    let (path, key, label) = (Path::new(&args[0]), &args[1], &args[2]);
    let options = LockOptions {
        lease: millis(LONG),
        renew_every: millis(LONG) / 2,
        max_backoff: Duration::from_millis(5),
    };
    let store = Store::open(path).unwrap();
    let lock = Lock::new(&store, key, label, options).unwrap();
    let guard = match lock.try_acquire() {
        Ok(guard) => {
            say(format!("TOOK {}", guard.generation()));
            guard
        }
        Err(Error::Busy(_)) => {
            say("REFUSED");
            lock.acquire(PATIENCE * 2).unwrap()
        }
        Err(other) => panic!("try_acquire: {other}"),
    };
    say(format!("ACQUIRED {}", guard.generation()));
    for _ in lines() {}
}

/// `writer <db> hold`: begins a write transaction, says `WRITING`, and commits when its input
/// ends. `writer <db> wait`: says `STARTING`, then writes one row (waiting for its turn, behind
/// the holding writer) and says `WROTE`.
pub fn writer(args: &[String]) {
    let db = Database::open(Path::new(&args[0])).unwrap();
    db.set_busy_timeout(PATIENCE * 2).unwrap();
    match args[1].as_str() {
        "hold" => {
            let mut tx = db.begin().unwrap();
            tx.execute("CREATE TABLE IF NOT EXISTS t (x)", &[]).unwrap();
            say("WRITING");
            for _ in lines() {}
            tx.commit().unwrap();
        }
        "wait" => {
            say("STARTING");
            db.execute("CREATE TABLE IF NOT EXISTS t (x)", &[]).unwrap();
            say("WROTE");
            for _ in lines() {}
        }
        other => panic!("writer {other}?"),
    }
}
