//! Database files as several processes meet them: opened by many at the same instant, and
//! deleted, renamed over or replaced while a process holds a lease in them. Real processes (the
//! test binary run again, see `support::child`).

#![cfg(unix)]

mod support;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lease::{Database, Error, Lock, LockOptions, Store, Value};
use support::child::{run_role, say, Child};
use support::monotonic_ns;

/// A short lease, so that a renewal (the latest moment a loss must be noticed) comes soon.
const QUICK: LockOptions = LockOptions {
    lease: Duration::from_millis(2_000),
    renew_every: Duration::from_millis(250),
    max_backoff: Duration::from_millis(10),
};

#[test]
#[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
fn child_process() {
    run_role(&[("opener", opener), ("holder", holder)]);
}

// ---------------------------------------------------------------------------------------------
// Opening at the same instant.

/// `opener`: for each command `OPEN <path> <at_ns>`, waits until CLOCK_MONOTONIC reaches
/// `at_ns` (the instant every opener was given), then opens a store and a database on `path`,
/// writes a row, takes the lease "sync" and gives it back, and closes everything. Says `OK` or
/// `FAILED <what>: <error>`.
fn opener(_args: &[String]) {
    say("READY");
    for command in std::io::stdin().lock().lines() {
        let command = command.expect("the parent's commands read");
        let mut words = command.split_whitespace();
        assert_eq!(words.next(), Some("OPEN"), "{command}");
        let path = PathBuf::from(words.next().expect("a path"));
        let at: u64 = words.next().and_then(|at| at.parse().ok()).expect("an instant");
        while monotonic_ns() < at {
            std::hint::spin_loop();
        }
        match open_write_and_lock(&path) {
            Ok(()) => say("OK"),
            Err((what, error)) => say(format!("FAILED {what}: {error}")),
        }
    }
}

fn open_write_and_lock(path: &Path) -> Result<(), (&'static str, Error)> {
    let store = Store::open(path).map_err(|e| ("Store::open", e))?;
    let db = Database::open(path).map_err(|e| ("Database::open", e))?;
    db.execute("CREATE TABLE IF NOT EXISTS opened (pid INTEGER)", &[]).map_err(|e| ("CREATE TABLE", e))?;
    db.execute("INSERT INTO opened (pid) VALUES (?)", &[Value::Integer(std::process::id().into())])
        .map_err(|e| ("INSERT", e))?;
    let lock = Lock::new(&store, "sync", "opener", QUICK).map_err(|e| ("Lock::new", e))?;
    let guard = lock.acquire(Duration::from_secs(30)).map_err(|e| ("acquire", e))?;
    guard.release().map_err(|e| ("release", e))
}

/// What a file is before the openers come.
#[derive(Debug, Clone, Copy)]
enum Before {
    Missing,
    RollbackJournal,
    Wal,
}

#[test]
fn eight_processes_opening_one_file_at_the_same_instant_all_succeed() {
    const PROCESSES: usize = 8;
    const TRIALS: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let mut openers: Vec<Child> =
        (0..PROCESSES).map(|i| Child::spawn(&format!("opener-{i}"), "opener", &[] as &[&str])).collect();
    for opener in &mut openers {
        opener.expect("READY");
    }
    let mut failures = Vec::new();
    for trial in 0..TRIALS {
        let before = [Before::Missing, Before::RollbackJournal, Before::Wal][trial % 3];
        let path = dir.path().join(format!("trial-{trial}.db"));
        prepare(&path, before);
        // Far enough ahead that every opener has read its command; then they start together.
        let at = monotonic_ns() + 50_000_000;
        for opener in &mut openers {
            opener.send(&format!("OPEN {} {at}", path.display()));
        }
        let failed_before = failures.len();
        for opener in &mut openers {
            let reply = opener.next_line();
            if reply != "OK" {
                failures.push(format!("trial {trial} ({before:?}), '{}': {reply}", opener.name()));
            }
        }
        if failures.len() == failed_before {
            let rows: i64 = rusqlite::Connection::open(&path)
                .unwrap()
                .query_row("SELECT count(*) FROM opened", [], |row| row.get(0))
                .unwrap();
            assert_eq!(rows, PROCESSES as i64, "trial {trial}: every opener's row is there");
        }
    }
    for opener in &mut openers {
        opener.finish();
    }
    assert!(
        failures.is_empty(),
        "{} of {} opens failed:\n{}",
        failures.len(),
        PROCESSES * TRIALS,
        failures.join("\n")
    );
}

fn prepare(path: &Path, before: Before) {
    let mode = match before {
        Before::Missing => return,
        Before::RollbackJournal => "delete",
        Before::Wal => "wal",
    };
    let connection = rusqlite::Connection::open(path).unwrap();
    let set: String =
        connection.pragma_update_and_check(None, "journal_mode", mode, |row| row.get(0)).unwrap();
    assert_eq!(set, mode);
    connection.execute_batch("CREATE TABLE app_data (x); INSERT INTO app_data VALUES (1);").unwrap();
}

// ---------------------------------------------------------------------------------------------
// A file deleted or replaced under a holder.

/// `holder <path>`: takes the lease "sync" and says `HELD`; says `LOST-CALLBACK` when its lost
/// callback runs. Commands: `CHECK` says `OK` or `LOST <why>` (a guard check); `WRITE` tries
/// one insert through its database handle and a fenced transaction and says `WROTE` or
/// `REFUSED <execute's error> | <fenced's error>`.
fn holder(args: &[String]) {
    let path = Path::new(&args[0]);
    let store = Store::open(path).unwrap();
    let db = Database::open(path).unwrap();
    db.execute("CREATE TABLE IF NOT EXISTS note (who TEXT)", &[]).unwrap();
    let lock = Lock::new(&store, "sync", "extension", QUICK).unwrap();
    lock.set_lost_callback(Some(Box::new(|_key: &str| say("LOST-CALLBACK")))).unwrap();
    let guard = lock.try_acquire().unwrap();
    say("HELD");
    for command in std::io::stdin().lock().lines() {
        match command.unwrap().as_str() {
            "CHECK" => match guard.check() {
                Ok(()) => say("OK"),
                Err(e) => say(format!("LOST {e}")),
            },
            "WRITE" => {
                let executed = db.execute("INSERT INTO note (who) VALUES ('extension')", &[]);
                let fenced = db.begin_fenced(&guard).and_then(|mut tx| {
                    tx.execute("INSERT INTO note (who) VALUES ('extension, fenced')", &[])?;
                    tx.commit()
                });
                match (executed, fenced) {
                    (Ok(_), Ok(())) => say("WROTE"),
                    (executed, fenced) => say(format!("REFUSED {executed:?} | {fenced:?}")),
                }
            }
            other => panic!("unknown command {other}"),
        }
    }
}

/// How the holder's file goes away.
#[derive(Debug, Clone, Copy)]
enum Away {
    /// Deleted with its -wal and -shm, and a fresh database made at the same path.
    DeletedAndRemade,
    /// A new database made elsewhere and renamed over the path.
    RenamedOver,
    /// Deleted with its -wal and -shm, and nothing made again.
    Deleted,
}

fn file_goes_away_under_a_holder(away: Away) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let mut holder = Child::spawn("extension", "holder", &[path.to_str().unwrap()]);
    holder.expect("HELD");
    holder.send("CHECK");
    assert_eq!(holder.next_line(), "OK");

    // The app resets: the file the extension holds its lease in goes away.
    let remove = |path: &Path| {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
    };
    match away {
        Away::DeletedAndRemade | Away::Deleted => remove(&path),
        Away::RenamedOver => {
            // A fresh database, complete in its main file once closed, replaces the old one and
            // its -wal and -shm (which would otherwise be read as the new file's).
            let fresh = dir.path().join("fresh.db");
            drop(Store::open(&fresh).unwrap());
            remove(&path);
            std::fs::rename(&fresh, &path).unwrap();
        }
    }
    let app = match away {
        Away::Deleted => None,
        Away::DeletedAndRemade | Away::RenamedOver => {
            // The app takes the lease on the file the path names now, at once.
            let store = Store::open(&path).unwrap();
            let guard = Lock::new(&store, "sync", "app", QUICK).unwrap().try_acquire().unwrap();
            Some((store, guard))
        }
    };

    // The extension learns it at its next renewal at the latest, without being asked...
    holder.expect("LOST-CALLBACK");
    // ...and at every check from then on.
    for _ in 0..2 {
        holder.send("CHECK");
        let answer = holder.next_line();
        assert!(answer.starts_with("LOST "), "{away:?}: the check said {answer:?}");
        assert!(
            answer.contains("deleted or renamed") || answer.contains("replaced"),
            "{away:?}: the loss says why: {answer:?}"
        );
    }
    // Its writes fail, saying why, instead of going into a file nobody sees.
    holder.send("WRITE");
    let answer = holder.next_line();
    assert!(answer.starts_with("REFUSED "), "{away:?}: the writes said {answer:?}");
    assert!(answer.contains("Database(") && answer.contains("Lost("), "{away:?}: {answer:?}");
    holder.finish();

    if let Some((store, guard)) = app {
        guard.check().unwrap();
        assert_eq!(store.lease_row("sync").unwrap().unwrap().label, "app", "the app kept the lease");
    }
}

#[test]
fn a_holder_whose_file_is_deleted_and_made_again_loses_its_lease_and_cannot_write() {
    file_goes_away_under_a_holder(Away::DeletedAndRemade);
}

#[test]
fn a_holder_whose_file_is_renamed_over_loses_its_lease_and_cannot_write() {
    file_goes_away_under_a_holder(Away::RenamedOver);
}

#[test]
fn a_holder_whose_file_is_deleted_loses_its_lease_and_cannot_write() {
    file_goes_away_under_a_holder(Away::Deleted);
}
