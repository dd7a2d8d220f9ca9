//! Suspending a process (`lease::lifecycle`), as an app going to the background does, with real
//! processes: a suspension is process-wide, so every process that suspends is a child of the
//! test (see `support::child`), and the test itself plays the other process.

#![cfg(unix)]

mod support;

use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use lease::{lifecycle, ChunkOptions, Database, DatabaseOptions, Error, Lock, LockOptions, Store, Value};
use support::child::{run_role, say, Child};

/// Long enough that only a release explains another process taking over.
const LONG: LockOptions = LockOptions {
    lease: Duration::from_secs(120),
    renew_every: Duration::from_secs(30),
    max_backoff: Duration::from_millis(10),
};

#[test]
#[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
fn child_process() {
    run_role(&[("app", app), ("idle", idle), ("suspending", suspending), ("opening", opening)]);
}

/// The line the child said that begins with `word`: heard already (the child's threads say
/// things in their own order), or waited for.
fn said(child: &mut Child, word: &str) -> String {
    let heard = child.heard().iter().find(|line| line.split_whitespace().next() == Some(word)).cloned();
    heard.unwrap_or_else(|| child.expect(word))
}

fn kind(error: &Error) -> &'static str {
    match error {
        Error::Suspended(_) => "Suspended",
        Error::Lost(_) => "Lost",
        Error::Busy(_) => "Busy",
        Error::Timeout(_) => "Timeout",
        Error::Database(_) => "Database",
        Error::Misuse(_) => "Misuse",
        Error::InvalidArgument(_) => "InvalidArgument",
        Error::Cancelled(_) => "Cancelled",
    }
}

fn outcome<T>(result: lease::Result<T>) -> String {
    match result {
        Ok(_) => "Ok".into(),
        Err(e) => kind(&e).into(),
    }
}

/// `app <path>`: holds "sync" and runs a chunked import on a thread, a row every 2 ms or so (says
/// `CHUNK <rows>` for each chunk committed, and `IMPORT-ENDED <outcome>` when a call fails), and a waiting acquisition
/// of "other" (held by the test) on another thread (says `WAIT-ENDED <outcome>`). Says READY.
/// Commands:
/// - `SUSPEND`: suspends the process; says `SUSPENDED <outcome>`.
/// - `LOOK`: says, one line each, `CHECK <outcome>` of the old guard, `READ <rows>` through the
///   database, `WRITE <outcome>`, `BEGIN <outcome>`, `TRY <outcome>`, `ACQUIRE <outcome>`,
///   `LOST-CALLBACKS <n>`.
/// - `RESUME`: resumes, acquires "sync" again and says `AGAIN <dirty> <generation>`, then writes
///   and says `WROTE`.
fn app(args: &[String]) {
    let path = Path::new(&args[0]);
    let store = Store::open(path).unwrap();
    let db = Database::open(path).unwrap();
    let lock = Lock::new(&store, "sync", "app", LONG).unwrap();
    let lost_callbacks = Arc::new(Mutex::new(0));
    let counter = lost_callbacks.clone();
    lock.set_lost_callback(Some(Box::new(move |_: &str| *counter.lock().unwrap() += 1))).unwrap();
    let guard = lock.try_acquire().unwrap();
    let first_generation = guard.generation();

    let importer = {
        let db = db.clone();
        std::thread::spawn(move || {
            let chunk = ChunkOptions {
                period: Duration::from_millis(20),
                slice: Duration::from_millis(4),
                gap: Duration::ZERO,
            };
            let mut tx = db.begin_chunked(chunk).unwrap();
            let mut rows = 0i64;
            let mut n = 0i64;
            let ended = loop {
                let step = tx
                    .execute("INSERT INTO import (n) VALUES (?)", &[Value::Integer(n)])
                    .and_then(|_| tx.maybe_commit());
                match step {
                    Ok(committed) => {
                        n += 1;
                        rows += 1;
                        if committed {
                            say(format!("CHUNK {rows}"));
                            rows = 0;
                        }
                        // The rest of the work on a row, between two calls: the transaction
                        // is open, and nothing of liblease's runs, when the suspension comes.
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => break e,
                }
            };
            tx.rollback();
            say(format!("IMPORT-ENDED {}", kind(&ended)));
        })
    };
    let waiter = {
        let store = store.clone();
        std::thread::spawn(move || {
            let other = Lock::new(&store, "other", "app", LONG).unwrap();
            say(format!("WAIT-ENDED {}", outcome(other.acquire(Duration::from_secs(120)))));
        })
    };
    say("READY");
    for command in std::io::stdin().lock().lines() {
        match command.unwrap().as_str() {
            "SUSPEND" => say(format!("SUSPENDED {}", outcome(lifecycle::suspend(Duration::from_secs(10))))),
            "LOOK" => {
                say(format!("CHECK {}", outcome(guard.check())));
                let mut rows = 0;
                db.query("SELECT count(*) FROM import", &[], |row| {
                    rows = if let Value::Integer(n) = row[0] { n } else { -1 };
                    true
                })
                .unwrap();
                say(format!("READ {rows}"));
                say(format!("WRITE {}", outcome(db.execute("INSERT INTO import (n) VALUES (-1)", &[]))));
                say(format!("BEGIN {}", outcome(db.begin())));
                say(format!("TRY {}", outcome(lock.try_acquire())));
                say(format!("ACQUIRE {}", outcome(lock.acquire(Duration::from_secs(1)))));
                say(format!("LOST-CALLBACKS {}", *lost_callbacks.lock().unwrap()));
            }
            "RESUME" => {
                lifecycle::resume();
                let again = lock.acquire(Duration::from_secs(30)).unwrap();
                assert!(again.generation() > first_generation);
                say(format!("AGAIN {} {}", again.is_dirty(), again.generation()));
                db.execute("INSERT INTO import (n) VALUES (-2)", &[]).unwrap();
                say("WROTE");
            }
            other => panic!("unknown command {other}"),
        }
    }
    importer.join().unwrap();
    waiter.join().unwrap();
}

#[test]
fn a_suspended_app_hands_over_at_once_and_writes_nothing_until_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let store = Store::open(&path).unwrap();
    let db = Database::open_with(
        &path,
        DatabaseOptions { busy_timeout: Duration::ZERO, ..DatabaseOptions::default() },
    )
    .unwrap();
    db.execute("CREATE TABLE import (n INTEGER)", &[]).unwrap();
    // The extension (this test) holds "other", which the app waits for.
    let other = Lock::new(&store, "other", "extension", LONG).unwrap().try_acquire().unwrap();
    let mut app = Child::spawn("app", "app", &[path.to_str().unwrap()]);
    app.expect("READY");
    app.expect("CHUNK");

    // The extension waits for "sync", which the app holds for two minutes unless it hands over.
    let sync = Lock::new(&store, "sync", "extension", LONG).unwrap();
    let (took, taken) = mpsc::channel();
    let extension = std::thread::spawn(move || {
        let guard = sync.acquire(Duration::from_secs(60));
        took.send(Instant::now()).unwrap();
        guard
    });
    app.send("SUSPEND");
    assert_eq!(app.expect("SUSPENDED"), "SUSPENDED Ok");
    // The system suspends the app.
    app.signal(libc::SIGSTOP);
    app.wait_until_stopped();
    // While the app is stopped: the extension holds "sync" (given back, since its lease has
    // two minutes to run), and begins a write transaction without waiting (no write lock is
    // left behind).
    let taken_at = taken.recv_timeout(Duration::from_secs(30)).expect("the extension took over");
    let guard = extension.join().unwrap().unwrap();
    assert!(guard.is_dirty() && taken_at.elapsed() < Duration::from_secs(60));
    db.begin().unwrap().commit().unwrap();
    app.signal(libc::SIGCONT);

    // The app's import and its waiting acquisition both stopped with Suspended; reads work,
    // writes and acquisitions say Suspended, the old guard is lost.
    let import_ended = said(&mut app, "IMPORT-ENDED");
    let wait_ended = said(&mut app, "WAIT-ENDED");
    assert_eq!(import_ended, "IMPORT-ENDED Suspended");
    assert_eq!(wait_ended, "WAIT-ENDED Suspended");
    app.send("LOOK");
    assert_eq!(app.expect("CHECK"), "CHECK Lost");
    let read: i64 = app.expect("READ")["READ ".len()..].parse().unwrap();
    assert_eq!(app.expect("WRITE"), "WRITE Suspended");
    assert_eq!(app.expect("BEGIN"), "BEGIN Suspended");
    assert_eq!(app.expect("TRY"), "TRY Suspended");
    assert_eq!(app.expect("ACQUIRE"), "ACQUIRE Suspended");
    assert_eq!(app.expect("LOST-CALLBACKS"), "LOST-CALLBACKS 1");

    // Exactly what the import reported committed is in the file.
    app.drain();
    let reported: i64 = app
        .heard()
        .iter()
        .filter_map(|line| line.strip_prefix("CHUNK "))
        .map(|rows| rows.parse::<i64>().unwrap())
        .sum();
    let mut in_file = 0;
    db.query("SELECT count(*) FROM import", &[], |row| {
        in_file = if let Value::Integer(n) = row[0] { n } else { -1 };
        true
    })
    .unwrap();
    assert_eq!(read, in_file, "the app read what is committed");
    assert_eq!(in_file, reported, "the file holds exactly the chunks the import reported committed");

    // Resumed, the app takes the lease again (dirty, once the extension gives it back) and writes.
    drop(guard);
    app.send("RESUME");
    let again = app.expect("AGAIN");
    assert!(again.starts_with("AGAIN true "), "{again}");
    app.expect("WROTE");
    drop(other);
    app.finish();
}

/// `suspending <path>`: a transaction whose row callback keeps the connection for 500 ms while
/// the process is suspended with a 50 ms timeout (says `FIRST <outcome>`). Meanwhile a read
/// through `execute` of the same handle, with a busy timeout of 50 ms (says `READ <outcome>`);
/// once the query has ended (says `QUERY <outcome>`), with the transaction still open, another
/// (says `READ-BETWEEN <outcome>`). Then the suspension again with 10 s (says `SECOND
/// <outcome>`), `AGAIN <outcome>` of a third, and `COMMIT <outcome>` of the transaction.
fn suspending(args: &[String]) {
    let db = Database::open(Path::new(&args[0])).unwrap();
    db.execute("CREATE TABLE IF NOT EXISTS t (x)", &[]).unwrap();
    db.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    let in_callback = Arc::new(AtomicBool::new(false));
    let (queried, query_ended) = mpsc::channel();
    let (commit, may_commit) = mpsc::channel::<()>();
    let holder = {
        let (db, in_callback) = (db.clone(), in_callback.clone());
        std::thread::spawn(move || {
            let mut tx = db.begin().unwrap();
            tx.execute("INSERT INTO t VALUES (2)", &[]).unwrap();
            let ran = tx.query("SELECT x FROM t", &[], |_| {
                in_callback.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(500));
                true
            });
            say(format!("QUERY {}", outcome(ran)));
            queried.send(()).unwrap();
            may_commit.recv().unwrap();
            say(format!("COMMIT {}", outcome(tx.commit())));
        })
    };
    while !in_callback.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    say(format!("FIRST {}", outcome(lifecycle::suspend(Duration::from_millis(50)))));
    db.set_busy_timeout(Duration::from_millis(50)).unwrap();
    say(format!("READ {}", outcome(db.execute("SELECT 1", &[]))));
    query_ended.recv().unwrap();
    say(format!("READ-BETWEEN {}", outcome(db.execute("SELECT 1", &[]))));
    say(format!("SECOND {}", outcome(lifecycle::suspend(Duration::from_secs(10)))));
    say(format!("AGAIN {}", outcome(lifecycle::suspend(Duration::ZERO))));
    commit.send(()).unwrap();
    holder.join().unwrap();
}

#[test]
fn a_suspension_that_cannot_end_a_transaction_in_time_times_out_and_a_later_one_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.db");
    let mut child = Child::spawn("suspending", "suspending", &[path.to_str().unwrap()]);
    assert_eq!(child.expect("FIRST"), "FIRST Timeout");
    // Not a wait for as long as the transaction keeps its connection: as busy as it would be
    // were the process not suspended.
    assert_eq!(child.expect("READ"), "READ Busy", "a read while another thread's statement runs");
    assert_eq!(said(&mut child, "QUERY"), "QUERY Database", "the statement was interrupted");
    // Not a read inside the other thread's transaction (which would then be rolled back).
    assert_eq!(child.expect("READ-BETWEEN"), "READ-BETWEEN Busy", "a read while a transaction is open");
    assert_eq!(child.expect("SECOND"), "SECOND Ok");
    assert_eq!(child.expect("AGAIN"), "AGAIN Ok", "a second suspension is harmless");
    assert_eq!(said(&mut child, "COMMIT"), "COMMIT Suspended", "the suspension rolled it back");
    child.finish();
    let db = Database::open(&path).unwrap();
    let mut rows = 0;
    db.query("SELECT count(*) FROM t", &[], |row| {
        rows = if let Value::Integer(n) = row[0] { n } else { -1 };
        true
    })
    .unwrap();
    assert_eq!(rows, 1, "what was committed stays");
}

/// `idle <path>`: begins a transaction, inserts a row and says OPEN; then, on `SUSPEND`,
/// suspends the process and says `SUSPENDED <outcome>`; on `COMMIT`, commits and says
/// `COMMIT <outcome>`.
fn idle(args: &[String]) {
    let db = Database::open(Path::new(&args[0])).unwrap();
    let mut tx = Some(db.begin().unwrap());
    tx.as_mut().unwrap().execute("INSERT INTO t VALUES ('idle')", &[]).unwrap();
    say("OPEN");
    for command in std::io::stdin().lock().lines() {
        match command.unwrap().as_str() {
            "SUSPEND" => say(format!("SUSPENDED {}", outcome(lifecycle::suspend(Duration::from_secs(10))))),
            "COMMIT" => say(format!("COMMIT {}", outcome(tx.take().unwrap().commit()))),
            other => panic!("unknown command {other}"),
        }
    }
}

#[test]
fn a_transaction_left_open_between_calls_is_rolled_back_by_the_suspension() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idle.db");
    let db = Database::open_with(
        &path,
        DatabaseOptions { busy_timeout: Duration::ZERO, ..DatabaseOptions::default() },
    )
    .unwrap();
    db.execute("CREATE TABLE t (x)", &[]).unwrap();
    let mut child = Child::spawn("idle", "idle", &[path.to_str().unwrap()]);
    child.expect("OPEN");
    assert!(matches!(db.begin(), Err(Error::Busy(_))), "the child's transaction holds the write lock");
    child.send("SUSPEND");
    assert_eq!(child.expect("SUSPENDED"), "SUSPENDED Ok");
    child.signal(libc::SIGSTOP);
    child.wait_until_stopped();
    // Suspended, the child holds no write lock: another process writes without waiting.
    db.begin().unwrap().commit().unwrap();
    child.signal(libc::SIGCONT);
    child.send("COMMIT");
    assert_eq!(child.expect("COMMIT"), "COMMIT Suspended");
    child.finish();
    let mut rows = -1;
    db.query("SELECT count(*) FROM t", &[], |row| {
        rows = if let Value::Integer(n) = row[0] { n } else { -1 };
        true
    })
    .unwrap();
    assert_eq!(rows, 0, "the rolled-back row is not there");
}

/// `opening <dir>`: suspends the process, then opens, in `dir`: a database in WAL mode already
/// (`wal.db`, made by the test), a new database (`new.db`), a store of a new file (`store.db`)
/// and an in-memory store; says `<name> <outcome>` of each.
fn opening(args: &[String]) {
    let dir = Path::new(&args[0]);
    lifecycle::suspend(Duration::from_secs(10)).unwrap();
    say(format!("WAL {}", outcome(Database::open(dir.join("wal.db")))));
    say(format!("NEW {}", outcome(Database::open(dir.join("new.db")))));
    say(format!("STORE {}", outcome(Store::open(dir.join("store.db")))));
    say(format!("MEMORY {}", outcome(Store::open_in_memory())));
}

#[test]
fn a_suspended_process_opens_what_needs_no_write_and_refuses_what_would_write() {
    let dir = tempfile::tempdir().unwrap();
    Database::open(dir.path().join("wal.db")).unwrap().execute("CREATE TABLE t (x)", &[]).unwrap();
    let mut child = Child::spawn("opening", "opening", &[dir.path().to_str().unwrap()]);
    assert_eq!(child.expect("WAL"), "WAL Ok", "a database in WAL mode is opened without a write");
    assert_eq!(child.expect("NEW"), "NEW Suspended", "switching a new file to WAL is a write");
    assert_eq!(child.expect("STORE"), "STORE Suspended", "making the lease table is a write");
    assert_eq!(child.expect("MEMORY"), "MEMORY Ok", "a private in-memory store locks no file");
    child.finish();
    for name in ["new.db", "store.db"] {
        let header = std::fs::read(dir.path().join(name)).unwrap_or_default();
        // Bytes 18 and 19 of the header are 2 in WAL mode; a file left alone is empty.
        assert!(header.len() < 20 || header[18] != 2, "{name} was switched to WAL while suspended");
    }
}
