//! Faults, the way SQLite's own tests inject them (see `support::faults`), and files that other
//! programs damage: each fails with a clear status and message, crashes nothing, loses nothing
//! that was committed, and never leaves a lease reported held when it may not be.

#![cfg(unix)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lease::{ChunkOptions, Database, Error, Holder, Lock, LockOptions, Store, StoreOptions, Value};
use support::child::{run_role, say, Child};
use support::faults::{self, Fault};

const QUICK: LockOptions = LockOptions {
    lease: Duration::from_millis(800),
    renew_every: Duration::from_millis(200),
    max_backoff: Duration::from_millis(10),
};

#[test]
#[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
fn child_process() {
    run_role(&[("writer", writer)]);
}

/// A directory of the test's own, and the faults set up.
fn scratch() -> tempfile::TempDir {
    faults::install();
    tempfile::tempdir().unwrap()
}

fn count(db: &Database, sql: &str) -> i64 {
    let mut count = -1;
    db.query(sql, &[], |row| {
        count = if let Value::Integer(n) = row[0] { n } else { -1 };
        true
    })
    .unwrap();
    count
}

fn integrity(path: &Path) -> String {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

fn is_database(result: &lease::Result<impl std::fmt::Debug>, words: &str) -> bool {
    matches!(result, Err(Error::Database(message)) if message.contains(words))
}

#[test]
fn a_full_disk_during_a_chunked_job_fails_clearly_and_keeps_every_committed_chunk() {
    let dir = scratch();
    let _serial = faults::serial();
    let path = dir.path().join("job.db");
    let db = Database::open(&path).unwrap();
    db.execute("CREATE TABLE job (chunk INTEGER, n INTEGER)", &[]).unwrap();
    let chunk = ChunkOptions {
        period: Duration::from_millis(20),
        slice: Duration::from_millis(20),
        gap: Duration::ZERO,
    };
    let mut tx = db.begin_chunked(chunk).unwrap();
    let (mut current, mut committed, mut full) = (0i64, Vec::new(), None);
    for n in 0.. {
        if committed.len() == 3 && full.is_none() {
            full = Some(faults::set(Fault::DiskFull, "job.db"));
        }
        let step = tx.execute(
            "INSERT INTO job (chunk, n) VALUES (?, ?)",
            &[Value::Integer(current), Value::Integer(n)],
        );
        let step = step.and_then(|_| tx.maybe_commit());
        match step {
            Ok(true) => {
                committed.push(current);
                current += 1;
            }
            Ok(false) => {}
            Err(error) => {
                assert!(is_database(&Err::<(), _>(error.clone()), "full"), "{error:?}");
                break;
            }
        }
        assert!(n < 10_000_000, "the full disk never showed");
    }
    drop(full);
    // The job has ended; what it committed is there, the chunk that failed is not.
    assert!(matches!(tx.execute("SELECT 1", &[]), Err(Error::Misuse(_))));
    tx.rollback();
    for chunk in &committed {
        assert!(
            count(&db, &format!("SELECT count(*) FROM job WHERE chunk = {chunk}")) > 0,
            "chunk {chunk} is there"
        );
    }
    assert_eq!(
        count(&db, &format!("SELECT count(*) FROM job WHERE chunk > {}", committed.last().unwrap())),
        0
    );
    assert_eq!(integrity(&path), "ok");
    db.execute("INSERT INTO job (chunk, n) VALUES (-1, -1)", &[]).unwrap();
}

#[test]
fn a_full_disk_during_renewals_loses_the_lease_by_its_expiry_and_never_reports_it_held_after() {
    let dir = scratch();
    let _serial = faults::serial();
    let path = dir.path().join("renew.db");
    let store = Store::open(&path).unwrap();
    let guard = Lock::new(&store, "sync", "app", QUICK).unwrap().try_acquire().unwrap();
    let full = faults::set(Fault::DiskFull, "renew.db");
    // No renewal succeeds from here: the lease the table holds ends at the latest one lease
    // length after now.
    let latest_expiry = Instant::now() + QUICK.lease;
    let lost = loop {
        match guard.check() {
            Ok(()) => assert!(Instant::now() < latest_expiry, "reported held after the lease ran out"),
            Err(error) => break error,
        }
        assert!(Instant::now() < latest_expiry + Duration::from_secs(30), "never lost");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(matches!(&lost, Error::Lost(_)), "{lost:?}");
    assert!(faults::clear() > 0, "the renewals met the full disk");
    drop(full);
    // The lease is free again for another process once it has run out.
    let other = Store::open_with(
        Some(&path),
        StoreOptions { holder: Some(Holder::new().unwrap()), ..StoreOptions::default() },
    )
    .unwrap();
    drop(Lock::new(&other, "sync", "other", QUICK).unwrap().acquire(Duration::from_secs(30)).unwrap());
}

#[test]
fn a_full_disk_during_a_release_lets_the_lease_run_out_instead() {
    let dir = scratch();
    let _serial = faults::serial();
    let path = dir.path().join("release.db");
    let store = Store::open(&path).unwrap();
    let guard = Lock::new(&store, "sync", "app", QUICK).unwrap().try_acquire().unwrap();
    let full = faults::set(Fault::DiskFull, "release.db");
    let released = guard.release();
    assert!(is_database(&released, "full"), "{released:?}");
    drop(full);
    let other = Store::open_with(
        Some(&path),
        StoreOptions { holder: Some(Holder::new().unwrap()), ..StoreOptions::default() },
    )
    .unwrap();
    let lock = Lock::new(&other, "sync", "other", QUICK).unwrap();
    assert!(
        matches!(lock.try_acquire(), Err(Error::Busy(_))),
        "the lease was not given back, so it runs out"
    );
    drop(lock.acquire(Duration::from_secs(30)).unwrap());
}

#[test]
fn a_full_disk_while_the_lease_table_is_made_fails_the_open_and_a_later_open_works() {
    let dir = scratch();
    let _serial = faults::serial();
    let path = dir.path().join("schema.db");
    let full = faults::set(Fault::DiskFull, "schema.db");
    let opened = Store::open(&path);
    assert!(is_database(&opened, "full") && is_database(&opened, "schema.db"), "{:?}", opened.err());
    drop(full);
    let store = Store::open(&path).unwrap();
    drop(Lock::new(&store, "sync", "app", QUICK).unwrap().try_acquire().unwrap());
    assert_eq!(integrity(&path), "ok");
}

#[test]
fn read_write_and_sync_errors_fail_the_call_with_sqlites_message_and_keep_what_was_committed() {
    let dir = scratch();
    let _serial = faults::serial();
    let path = dir.path().join("io.db");
    let db = Database::open(&path).unwrap();
    db.execute("CREATE TABLE t (x)", &[]).unwrap();
    db.execute("INSERT INTO t VALUES (1)", &[]).unwrap();

    let failed = {
        let _fault = faults::set(Fault::WriteError, "io.db");
        db.execute("INSERT INTO t VALUES (2)", &[])
    };
    assert!(is_database(&failed, "disk I/O error") && is_database(&failed, "io.db"), "{failed:?}");

    let failed = {
        let _fault = faults::set(Fault::ReadError, "io.db");
        // A new handle reads from the file, not from a page cache.
        let fresh = Database::open(&path);
        fresh.and_then(|fresh| fresh.query("SELECT x FROM t", &[], |_| true))
    };
    assert!(is_database(&failed, "disk I/O error"), "{failed:?}");

    db.execute("PRAGMA synchronous = FULL", &[]).unwrap();
    let failed = {
        let _fault = faults::set(Fault::SyncError, "io.db");
        db.execute("INSERT INTO t VALUES (3)", &[])
    };
    assert!(is_database(&failed, "disk I/O error"), "{failed:?}");

    // What was committed before the faults is there, and the handle works again.
    drop(db);
    let db = Database::open(&path).unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM t WHERE x = 1"), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM t WHERE x = 2"), 0, "the failed write left nothing");
    db.execute("INSERT INTO t VALUES (4)", &[]).unwrap();
    assert_eq!(integrity(&path), "ok");
}

fn side(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[test]
fn a_truncated_shm_file_fails_the_handles_instead_of_killing_the_process() {
    let dir = scratch();
    let path = dir.path().join("shm.db");
    let store = Store::open(&path).unwrap();
    let db = Database::open(&path).unwrap();
    db.execute("CREATE TABLE t (x)", &[]).unwrap();
    for x in 0..100 {
        db.execute("INSERT INTO t VALUES (?)", &[Value::Integer(x)]).unwrap();
    }
    let guard = Lock::new(&store, "sync", "app", QUICK).unwrap().try_acquire().unwrap();
    // Another program truncates the WAL index under every connection of the file. Without the
    // guard (see src/sigbus.rs), the next access kills this process with SIGBUS.
    std::fs::File::create(side(&path, "-shm")).unwrap();
    let write = db.execute("INSERT INTO t VALUES (-1)", &[]);
    let read = db.query("SELECT count(*) FROM t", &[], |_| true);
    assert!(is_database(&write, "-shm file was truncated"), "{write:?}");
    assert!(is_database(&read, "-shm file was truncated"), "{read:?}");
    // The lease's renewals fail too: it is lost by its expiry, never reported held after.
    let latest_expiry = Instant::now() + QUICK.lease;
    while guard.check().is_ok() {
        assert!(Instant::now() < latest_expiry, "reported held after the lease ran out");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop((guard, store, db));
    // Opened again once the library's thread has let go of the old handles too (a heartbeat
    // retries until the lease's expiry), the database rebuilds its index from the WAL: every
    // commit is there.
    let deadline = Instant::now() + Duration::from_secs(30);
    let db = loop {
        match Database::open(&path) {
            Ok(db) => break db,
            Err(error) => assert!(Instant::now() < deadline, "never opened again: {error:?}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(count(&db, "SELECT count(*) FROM t"), 100);
    assert_eq!(integrity(&path), "ok");
}

#[test]
fn a_truncated_wal_or_a_database_overwritten_with_garbage_fails_clearly() {
    let dir = scratch();
    let path = dir.path().join("wal.db");
    let db = Database::open(&path).unwrap();
    db.execute("CREATE TABLE t (x)", &[]).unwrap();
    db.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    // The WAL holds what is not checkpointed yet; another program empties it. What it held is
    // gone (that is the other program's doing), but nothing crashes, and the file works on.
    std::fs::File::create(side(&path, "-wal")).unwrap();
    let _ = db.query("SELECT count(*) FROM t", &[], |_| true);
    let _ = db.execute("INSERT INTO t VALUES (2)", &[]);
    drop(db);
    let reopened = Database::open(&path);
    assert!(reopened.is_ok() || is_database(&reopened, &path.display().to_string()), "{:?}", reopened.err());

    // A database overwritten with garbage while it is open: every call says so.
    let path = dir.path().join("garbage.db");
    let db = Database::open(&path).unwrap();
    db.execute("CREATE TABLE t (x)", &[]).unwrap();
    std::fs::write(&path, vec![0xA5u8; 64 * 1024]).unwrap();
    std::fs::remove_file(side(&path, "-wal")).unwrap();
    let fresh = Database::open(&path);
    assert!(is_database(&fresh, "not a database"), "{:?}", fresh.err());
    let opened = Store::open(&path);
    assert!(is_database(&opened, "not a database"), "{:?}", opened.err());
}

// ---------------------------------------------------------------------------------------------
// The board beside the database, truncated under processes that write.

/// `writer <path>`: says READY, then writes short transactions until its input closes, and says
/// `DONE <commits>`.
fn writer(args: &[String]) {
    let db = Database::open(Path::new(&args[0])).unwrap();
    say("READY");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_line(&mut String::new());
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let mut commits = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let mut tx = db.begin().unwrap();
        tx.execute("INSERT INTO written (pid) VALUES (?)", &[Value::Integer(std::process::id().into())])
            .unwrap();
        tx.commit().unwrap();
        commits += 1;
        if commits == 50 {
            say("WRITING");
        }
    }
    watcher.join().unwrap();
    say(format!("DONE {commits}"));
}

#[test]
fn writers_go_on_when_the_board_file_is_truncated_under_them() {
    let dir = scratch();
    let path = dir.path().join("board.db");
    Database::open(&path).unwrap().execute("CREATE TABLE written (pid INTEGER)", &[]).unwrap();
    let mut writers: Vec<Child> =
        (0..2).map(|i| Child::spawn(&format!("writer-{i}"), "writer", &[path.to_str().unwrap()])).collect();
    for writer in &mut writers {
        writer.expect("READY");
        writer.expect("WRITING");
    }
    // Without the guard, each writer dies of SIGBUS at its next turn.
    std::fs::File::create(side(&path, "-liblease")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut done = Vec::new();
    for writer in &mut writers {
        writer.send("STOP");
        done.push(writer.expect("DONE"));
        writer.finish();
    }
    let db = Database::open(&path).unwrap();
    let total: i64 =
        done.iter().map(|line| line.split_whitespace().nth(1).unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(count(&db, "SELECT count(*) FROM written"), total, "every commit is there");
}
