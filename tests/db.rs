//! Database handles and cooperative transactions, through the public Rust API.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use lease::{
    ChunkOptions, Database, DatabaseOptions, Error, Holder, Lock, LockOptions, ManualClock, Store,
    StoreOptions, Value,
};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let fixture = Fixture { dir: tempfile::tempdir().unwrap() };
        fixture
            .db()
            .execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, writer TEXT)", &[])
            .unwrap();
        fixture
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("app.db")
    }

    fn db(&self) -> Database {
        Database::open(self.path()).unwrap()
    }

    fn count(&self, db: &Database) -> i64 {
        let mut count = -1;
        db.query("SELECT count(*) FROM item", &[], |row| {
            count = match row[0] {
                Value::Integer(n) => n,
                other => panic!("count is {other:?}"),
            };
            true
        })
        .unwrap();
        count
    }
}

fn insert(tx: &mut lease::Transaction, name: &str) {
    tx.execute("INSERT INTO item (name) VALUES (?)", &[Value::Text(name)]).unwrap();
}

#[test]
fn every_kind_of_value_goes_in_and_comes_back() {
    let fixture = Fixture::new();
    let db = fixture.db();
    db.execute("CREATE TABLE v (a, b, c, d, e)", &[]).unwrap();
    let blob = [0u8, 159, 146, 150, 255];
    let params =
        [Value::Null, Value::Integer(-7), Value::Real(2.5), Value::Text("héllo"), Value::Blob(&blob)];
    assert_eq!(db.execute("INSERT INTO v VALUES (?, ?, ?, ?, ?)", &params).unwrap(), 1);
    // TEXT that is not UTF-8, written by some other program, comes back as its bytes.
    db.execute("INSERT INTO v VALUES (NULL, NULL, NULL, CAST(x'ff00fe' AS TEXT), NULL)", &[]).unwrap();

    let mut rows = Vec::new();
    db.query("SELECT a, b, c, d, e FROM v ORDER BY rowid", &[], |row| {
        rows.push(format!("{row:?}"));
        true
    })
    .unwrap();
    assert_eq!(rows[0], format!("{:?}", params));
    assert!(rows[1].contains("Blob([255, 0, 254])"), "{}", rows[1]);
}

#[test]
fn a_query_can_stop_early_and_may_not_write() {
    let fixture = Fixture::new();
    let db = fixture.db();
    for name in ["a", "b", "c"] {
        db.execute("INSERT INTO item (name) VALUES (?)", &[Value::Text(name)]).unwrap();
    }
    let mut seen = 0;
    db.query("SELECT name FROM item", &[], |_| {
        seen += 1;
        seen < 2
    })
    .unwrap();
    assert_eq!(seen, 2);
    let write = db.query("DELETE FROM item", &[], |_| true);
    assert!(matches!(write, Err(Error::InvalidArgument(_))), "{write:?}");
    assert_eq!(fixture.count(&db), 3);
}

#[test]
fn bad_sql_and_parameters_say_what_is_wrong() {
    let fixture = Fixture::new();
    let db = fixture.db();
    let invalid = |r: lease::Result<u64>| matches!(r, Err(Error::InvalidArgument(_)));
    assert!(invalid(db.execute("INSERT INTO item (name) VALUES (?)", &[])));
    assert!(invalid(db.execute("INSERT INTO item (name) VALUES ('a'); DELETE FROM item", &[])));
    assert!(invalid(db.execute("INSERT INTO item (name) VALUES ('a')\0; DELETE FROM item", &[])));
    // Blanks and comments after the one statement are no second statement.
    assert_eq!(db.execute("INSERT INTO item (name) VALUES ('a'); -- one row", &[]).unwrap(), 1);
    assert!(invalid(db.execute("BEGIN", &[])), "execute may not open a transaction");
    match db.execute("INSERT INTO nowhere VALUES (1)", &[]) {
        Err(Error::Database(message)) => assert!(message.contains("no such table: nowhere"), "{message}"),
        other => panic!("{other:?}"),
    }
    // Nothing was left open: a transaction begins.
    db.begin().unwrap().commit().unwrap();
}

#[test]
fn commit_keeps_rollback_and_drop_discard() {
    let fixture = Fixture::new();
    let db = fixture.db();
    let mut tx = db.begin().unwrap();
    insert(&mut tx, "kept");
    let mut inside = 0;
    tx.query("SELECT count(*) FROM item", &[], |row| {
        inside = if let Value::Integer(n) = row[0] { n } else { -1 };
        true
    })
    .unwrap();
    assert_eq!(inside, 1, "a transaction sees its own writes");
    assert_eq!(fixture.count(&db), 0, "a read outside sees only what is committed, without waiting");
    tx.commit().unwrap();

    let mut tx = db.begin().unwrap();
    insert(&mut tx, "rolled back");
    tx.rollback();
    let mut tx = db.begin().unwrap();
    insert(&mut tx, "dropped");
    drop(tx);
    assert_eq!(fixture.count(&db), 1);
}

#[test]
fn a_failed_commit_rolls_back_and_leaves_no_transaction_open() {
    let fixture = Fixture::new();
    let db = fixture.db();
    db.execute("PRAGMA foreign_keys = ON", &[]).unwrap();
    db.execute("CREATE TABLE child (parent INTEGER REFERENCES item (id) DEFERRABLE INITIALLY DEFERRED)", &[])
        .unwrap();
    let mut tx = db.begin().unwrap();
    insert(&mut tx, "orphan's neighbour");
    tx.execute("INSERT INTO child VALUES (999)", &[]).unwrap();
    // The deferred foreign key fails at COMMIT, which SQLite leaves open: liblease rolls back.
    match tx.commit() {
        Err(Error::Database(message)) => assert!(message.contains("FOREIGN KEY"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fixture.count(&db), 0);
    let mut tx = db.begin().unwrap();
    insert(&mut tx, "after");
    tx.commit().unwrap();
    assert_eq!(fixture.count(&db), 1);
}

#[test]
fn sql_that_ends_the_transaction_is_refused_and_ends_it_cleanly() {
    let fixture = Fixture::new();
    let db = fixture.db();
    let mut tx = db.begin().unwrap();
    insert(&mut tx, "a");
    assert!(matches!(tx.execute("COMMIT", &[]), Err(Error::Misuse(_))));
    assert!(matches!(tx.execute("SELECT 1", &[]), Err(Error::Misuse(_))), "the transaction is over");
    drop(tx);
    db.begin().unwrap().commit().unwrap();
}

#[test]
fn a_chunked_transaction_commits_each_period_and_rollback_undoes_only_the_current_chunk() {
    let fixture = Fixture::new();
    let db = fixture.db();
    let chunk = ChunkOptions {
        period: Duration::from_millis(20),
        slice: Duration::from_millis(20),
        gap: Duration::ZERO,
    };
    let mut tx = db.begin_chunked(chunk).unwrap();
    insert(&mut tx, "first chunk");
    assert!(!tx.maybe_commit().unwrap(), "not due yet");
    std::thread::sleep(Duration::from_millis(25));
    assert!(tx.maybe_commit().unwrap());
    assert_eq!(fixture.count(&db), 1, "a committed chunk is visible to others");
    insert(&mut tx, "second chunk");
    tx.rollback();
    assert_eq!(fixture.count(&db), 1);
    assert!(matches!(
        db.begin_chunked(ChunkOptions { period: Duration::ZERO, ..chunk }),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_plain_transaction_never_commits_in_maybe_commit() {
    let fixture = Fixture::new();
    let db = fixture.db();
    let mut tx = db.begin().unwrap();
    insert(&mut tx, "a");
    assert!(!tx.maybe_commit().unwrap());
    assert_eq!(fixture.count(&db), 0);
}

/// A chunked job whose period never comes: only its rule of letting waiting writers in after the
/// slice can let anyone else write.
const NEVER_DUE: ChunkOptions = ChunkOptions { period: Duration::from_secs(3600), ..ChunkOptions::DEFAULT };

/// A long job inserts non-stop in a chunked transaction while three short writers each run
/// transactions. Nobody starves: every short transaction gets in (within its 5 s busy timeout),
/// and while it waits the job commits at most twice: the chunk it waits through, and one that
/// may end between the writer reading the count and joining the queue (the job commits and
/// queues again in that gap when the machine is slow: it did under ThreadSanitizer).
#[test]
fn short_writers_are_let_in_by_a_chunked_job_after_its_slice() {
    let fixture = Fixture::new();
    let db = fixture.db();
    let stop = Arc::new(AtomicBool::new(false));
    let chunks = Arc::new(AtomicU64::new(0));
    let job = {
        let (db, stop, chunks) = (db.clone(), stop.clone(), chunks.clone());
        std::thread::spawn(move || {
            let mut tx = db.begin_chunked(NEVER_DUE).unwrap();
            while !stop.load(Ordering::SeqCst) {
                insert(&mut tx, "job");
                if tx.maybe_commit().unwrap() {
                    chunks.fetch_add(1, Ordering::SeqCst);
                }
            }
            tx.commit().unwrap();
        })
    };
    let start = Arc::new(Barrier::new(3));
    let writers: Vec<_> = (0..3)
        .map(|writer| {
            let (db, chunks, start) = (fixture.db(), chunks.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut most_chunks_waited = 0;
                for _ in 0..30 {
                    let before = chunks.load(Ordering::SeqCst);
                    let mut tx = db.begin().unwrap();
                    most_chunks_waited = most_chunks_waited.max(chunks.load(Ordering::SeqCst) - before);
                    insert(&mut tx, &format!("writer {writer}"));
                    tx.commit().unwrap();
                }
                most_chunks_waited
            })
        })
        .collect();
    for writer in writers {
        assert!(writer.join().unwrap() <= 2, "a short writer waited through more than one chunk");
    }
    assert!(!job.is_finished(), "the short writers finished while the job kept running");
    stop.store(true, Ordering::SeqCst);
    job.join().unwrap();
    let mut short = 0;
    db.query("SELECT count(*) FROM item WHERE writer IS NOT NULL OR name LIKE 'writer%'", &[], |row| {
        short = if let Value::Integer(n) = row[0] { n } else { -1 };
        true
    })
    .unwrap();
    assert_eq!(short, 90);
}

#[test]
fn a_busy_database_waits_up_to_the_busy_timeout() {
    let fixture = Fixture::new();
    let options = DatabaseOptions { busy_timeout: Duration::from_millis(50), ..DatabaseOptions::default() };
    let db = Database::open_with(&fixture.path(), options).unwrap();
    let other = rusqlite::Connection::open(fixture.path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert!(matches!(db.begin(), Err(Error::Busy(_))));
    assert!(matches!(db.execute("INSERT INTO item (name) VALUES ('x')", &[]), Err(Error::Busy(_))));

    db.set_busy_timeout(Duration::from_secs(30)).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        other.execute_batch("COMMIT").unwrap();
    });
    db.execute("INSERT INTO item (name) VALUES ('x')", &[]).unwrap();
    release.join().unwrap();
}

/// The lease table and the application's tables share the file, and a clock the test moves.
struct Fenced {
    fixture: Fixture,
    clock: Arc<ManualClock>,
}

impl Fenced {
    fn new() -> Fenced {
        Fenced { fixture: Fixture::new(), clock: ManualClock::new(1_000_000, "boot") }
    }

    fn store(&self, process: Arc<Holder>) -> Store {
        let options = StoreOptions { clock: Some(self.clock.clone()), holder: Some(process) };
        Store::open_with(Some(&self.fixture.path()), options).unwrap()
    }

    fn db(&self, process: Arc<Holder>) -> Database {
        let options = DatabaseOptions { holder: Some(process), ..DatabaseOptions::default() };
        Database::open_with(&self.fixture.path(), options).unwrap()
    }
}

const FENCE_LOCK: LockOptions = LockOptions {
    lease: Duration::from_secs(10),
    renew_every: Duration::from_secs(5),
    max_backoff: Duration::from_millis(10),
};

#[test]
fn a_fenced_transaction_writes_while_the_lease_is_held_and_never_after_it_was_lost() {
    let world = Fenced::new();
    let (first, second) = (Holder::new().unwrap(), Holder::new().unwrap());
    let first_lock = Lock::new(&world.store(first.clone()), "sync", "first", FENCE_LOCK).unwrap();
    let first_db = world.db(first);
    let guard = first_lock.try_acquire().unwrap();
    let mut tx = first_db.begin_fenced(&guard).unwrap();
    insert(&mut tx, "first, under its lease");
    tx.commit().unwrap();

    // The first holder is suspended past its lease; the second takes over and writes.
    world.clock.advance(FENCE_LOCK.lease);
    let second_guard =
        Lock::new(&world.store(second.clone()), "sync", "second", FENCE_LOCK).unwrap().try_acquire().unwrap();
    let second_db = world.db(second);
    let mut tx = second_db.begin_fenced(&second_guard).unwrap();
    insert(&mut tx, "second");
    tx.commit().unwrap();

    // The first resumes and tries to write: refused, nothing written.
    assert!(matches!(first_db.begin_fenced(&guard), Err(Error::Lost(_))));
    assert_eq!(world.fixture.count(&first_db), 2);
    first_db.begin().unwrap().commit().unwrap(); // no transaction was left open
}

#[test]
fn the_fence_is_checked_in_the_database_not_only_in_memory() {
    let world = Fenced::new();
    let process = Holder::new().unwrap();
    let guard =
        Lock::new(&world.store(process.clone()), "sync", "app", FENCE_LOCK).unwrap().try_acquire().unwrap();
    let db = world.db(process);
    // The row changes hands behind the heartbeat's back (its next renewal is seconds away).
    db.execute("UPDATE liblease_lease SET holder = 'other', generation = generation + 1", &[]).unwrap();
    guard.check().unwrap();
    assert!(matches!(db.begin_fenced(&guard), Err(Error::Lost(_))));
    assert!(matches!(guard.check(), Err(Error::Lost(_))), "the failed fence marks the hold lost");
}

#[test]
fn a_fence_from_another_database_file_is_an_invalid_argument() {
    let world = Fenced::new();
    let elsewhere = Store::open(world.fixture.dir.path().join("other.db")).unwrap();
    let guard = Lock::new(&elsewhere, "sync", "app", LockOptions::DEFAULT).unwrap().try_acquire().unwrap();
    let db = world.fixture.db();
    assert!(matches!(db.begin_fenced(&guard), Err(Error::InvalidArgument(_))));
}

/// A long job in this process must not starve the lock's own writes to the same file: an
/// acquisition waits in the same queue and gets in after the job's slice, and the heartbeat
/// keeps the lease alive through a job longer than the lease.
#[test]
fn the_locks_writes_share_the_queue_with_a_long_job() {
    let fixture = Fixture::new();
    let db = fixture.db();
    let options = LockOptions {
        lease: Duration::from_millis(900),
        renew_every: Duration::from_millis(150),
        max_backoff: Duration::from_millis(10),
    };
    let store = Store::open(fixture.path()).unwrap();
    let holder = Lock::new(&store, "held", "app", options).unwrap().try_acquire().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let job = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut tx = db.begin_chunked(NEVER_DUE).unwrap();
            while !stop.load(Ordering::SeqCst) {
                insert(&mut tx, "job");
                tx.maybe_commit().unwrap();
            }
            tx.commit().unwrap();
        })
    };
    let acquired =
        Lock::new(&store, "other", "app", options).unwrap().acquire(Duration::from_secs(30)).unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        holder.check().unwrap();
        acquired.check().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!job.is_finished());
    stop.store(true, Ordering::SeqCst);
    job.join().unwrap();
}

/// Releasing a guard never waits behind a transaction of this process: if the database is taken
/// it returns at once, and the lease is given back as soon as the transaction ends.
#[test]
fn releasing_a_guard_does_not_wait_for_an_open_transaction() {
    let world = Fenced::new();
    let process = Holder::new().unwrap();
    let store = world.store(process.clone());
    let guard = Lock::new(&store, "sync", "app", FENCE_LOCK).unwrap().try_acquire().unwrap();
    let db = world.db(process);
    let mut tx = db.begin().unwrap();
    insert(&mut tx, "written while the lease is released");
    drop(guard); // on this very thread: waiting for the transaction would never end
    assert_ne!(store.lease_row("sync").unwrap().unwrap().expires_ms, 0, "not yet given back");
    tx.commit().unwrap();
    let released = || store.lease_row("sync").unwrap().unwrap().expires_ms == 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !released() {
        assert!(Instant::now() < deadline, "the lease was never given back");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A writer that uses plain SQLite, with the usual busy timeout, beside a chunked job: it is
/// never starved into "database is locked", because the job leaves a gap after each full chunk.
#[test]
fn a_plain_sqlite_writer_gets_in_at_chunk_boundaries() {
    let fixture = Fixture::new();
    let db = fixture.db();
    let chunk = ChunkOptions { period: Duration::from_millis(200), ..ChunkOptions::DEFAULT };
    let stop = Arc::new(AtomicBool::new(false));
    let (running, job_running) = std::sync::mpsc::channel();
    let job = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut tx = db.begin_chunked(chunk).unwrap();
            running.send(()).unwrap();
            let mut rows = 0;
            while !stop.load(Ordering::SeqCst) {
                insert(&mut tx, "job");
                rows += 1;
                tx.maybe_commit().unwrap();
            }
            tx.commit().unwrap();
            rows
        })
    };
    job_running.recv().unwrap(); // the job holds the write lock from here on
    let plain = rusqlite::Connection::open(fixture.path()).unwrap();
    // With the gap each write waits about one period (200 ms) at most: five times less than
    // its busy timeout.
    plain.pragma_update(None, "busy_timeout", 1000).unwrap();
    for _ in 0..10 {
        plain.execute("INSERT INTO item (name, writer) VALUES ('plain', 'plain')", []).unwrap();
    }
    assert!(!job.is_finished());
    stop.store(true, Ordering::SeqCst);
    let job_rows = job.join().unwrap();
    // One SQLite in the process, so one bookkeeping of the file's locks: every row of both is
    // there (with two copies of SQLite in one process this is what fails; see the README).
    assert_eq!(fixture.count(&db), job_rows + 10);
}

#[test]
fn the_change_count_is_the_statements_own() {
    let fixture = Fixture::new();
    let db = fixture.db();
    assert_eq!(db.execute("INSERT INTO item (name) VALUES ('a'), ('b')", &[]).unwrap(), 2);
    // Not a row change: 0, not the previous statement's count.
    assert_eq!(db.execute("CREATE TABLE other (x)", &[]).unwrap(), 0);
    let mut tx = db.begin().unwrap();
    assert_eq!(tx.execute("UPDATE item SET name = 'c'", &[]).unwrap(), 2);
    assert_eq!(tx.execute("SELECT 1", &[]).unwrap(), 0);
    tx.commit().unwrap();
}

/// A handle keeps its statements prepared between calls (see `db::statements`): each call must
/// still see a statement as fresh as a new one would be.
#[test]
fn kept_statements_start_afresh_after_failures_early_stops_schema_changes_and_many_others() {
    let fixture = Fixture::new();
    let db = fixture.db();
    db.execute("CREATE TABLE u (k TEXT UNIQUE)", &[]).unwrap();
    let put = "INSERT INTO u (k) VALUES (?)";
    db.execute(put, &[Value::Text("a")]).unwrap();
    match db.execute(put, &[Value::Text("a")]) {
        Err(Error::Database(message)) => assert!(message.contains("UNIQUE constraint failed"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(db.execute(put, &[Value::Text("b")]).unwrap(), 1, "a failed run leaves it ready");

    let first = |db: &Database| {
        let mut first = None;
        db.query("SELECT k FROM u ORDER BY k", &[], |row| {
            first = Some(format!("{:?}", row[0]));
            false
        })
        .unwrap();
        first
    };
    assert_eq!(first(&db).as_deref(), Some("Text(\"a\")"));
    assert_eq!(first(&db).as_deref(), Some("Text(\"a\")"), "a query stopped early starts again");

    let columns = |db: &Database| {
        let mut columns = 0;
        db.query("SELECT * FROM u", &[], |row| {
            columns = row.len();
            false
        })
        .unwrap();
        columns
    };
    assert_eq!(columns(&db), 1);
    db.execute("ALTER TABLE u ADD COLUMN v", &[]).unwrap();
    assert_eq!(columns(&db), 2, "the kept statement follows the schema");

    // More statements than a handle keeps: the first ones are prepared again, and still right.
    for n in 0..40i64 {
        let mut got = None;
        db.query(&format!("SELECT {n}"), &[], |row| {
            got = Some(format!("{:?}", row[0]));
            true
        })
        .unwrap();
        assert_eq!(got, Some(format!("Integer({n})")));
        let mut tx = db.begin().unwrap();
        assert_eq!(tx.execute(&format!("INSERT INTO u (k) VALUES ('{n}')"), &[]).unwrap(), 1);
        tx.commit().unwrap();
    }
    // The caller's bytes need to live only during the call.
    for name in ["c", "d"] {
        let owned = name.repeat(3);
        assert_eq!(db.execute(put, &[Value::Text(&owned)]).unwrap(), 1);
    }
    assert_eq!(first(&db).as_deref(), Some("Text(\"0\")"));
    let mut kept = Vec::new();
    db.query("SELECT k FROM u WHERE k > '9' ORDER BY k", &[], |row| {
        kept.push(format!("{:?}", row[0]));
        true
    })
    .unwrap();
    assert_eq!(kept, ["Text(\"a\")", "Text(\"b\")", "Text(\"ccc\")", "Text(\"ddd\")"]);
}

/// A kept statement stays bound to the last run's values, which are the caller's and gone after
/// it (they are not copied, nor unbound): every run must bind all of its own before it steps.
#[test]
fn a_kept_statement_never_runs_with_the_values_of_an_earlier_run() {
    let fixture = Fixture::new();
    let db = fixture.db();
    db.execute("CREATE TABLE pair (a TEXT, b TEXT)", &[]).unwrap();
    let put = "INSERT INTO pair (a, b) VALUES (?, ?)";
    let rows = |db: &Database| {
        let mut rows = Vec::new();
        db.query("SELECT a, b FROM pair ORDER BY rowid", &[], |row| {
            rows.push(format!("{:?} {:?}", row[0], row[1]));
            true
        })
        .unwrap();
        rows
    };
    let run = |values: &[&str]| {
        let owned: Vec<String> = values.iter().map(|value| value.repeat(2)).collect();
        let values: Vec<Value> = owned.iter().map(|value| Value::Text(value)).collect();
        db.execute(put, &values)
    };
    assert_eq!(run(&["first", "second"]).unwrap(), 1);
    match run(&["third"]) {
        Err(Error::InvalidArgument(message)) => {
            assert!(message.contains("2 parameter(s) but 1"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let mut tx = db.begin().unwrap();
    match tx.execute(put, &[]) {
        Err(Error::InvalidArgument(_)) => {}
        other => panic!("{other:?}"),
    }
    tx.commit().unwrap();
    assert_eq!(run(&["fourth", "fifth"]).unwrap(), 1);
    assert_eq!(
        rows(&db),
        ["Text(\"firstfirst\") Text(\"secondsecond\")", "Text(\"fourthfourth\") Text(\"fifthfifth\")"],
        "the refused runs wrote nothing"
    );
}

/// Dropping a handle closes its connections, statements kept and all: SQLite leaves a connection
/// open, silently, when it is closed with statements left.
#[cfg(target_os = "linux")]
#[test]
fn dropping_a_handle_closes_its_descriptors_of_the_file() {
    let fixture = Fixture::new();
    let open = || {
        let descriptors = std::fs::read_dir("/proc/self/fd").unwrap();
        let targets = descriptors.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok());
        targets.filter(|target| target.starts_with(fixture.dir.path())).count()
    };
    let before = open();
    let db = fixture.db();
    db.execute("INSERT INTO item (name) VALUES (?)", &[Value::Text("a")]).unwrap();
    assert_eq!(fixture.count(&db), 1);
    let mut tx = db.begin().unwrap();
    tx.query("SELECT name FROM item", &[], |_| true).unwrap();
    tx.commit().unwrap();
    assert!(open() > before, "the handle's connections are open");
    drop(db);
    assert_eq!(open(), before);
}

#[test]
fn sql_without_a_statement_is_an_invalid_argument() {
    let fixture = Fixture::new();
    let db = fixture.db();
    for sql in ["", "   ", "-- only a comment"] {
        assert!(matches!(db.execute(sql, &[]), Err(Error::InvalidArgument(_))), "{sql:?}");
        assert!(matches!(db.query(sql, &[], |_| true), Err(Error::InvalidArgument(_))), "{sql:?}");
    }
}

/// SQLite's automatic checkpoint is replaced by one run after the write turn: the WAL must
/// still be checkpointed, so that it stops growing.
#[test]
fn the_wal_is_checkpointed_outside_the_write_turn() {
    let fixture = Fixture::new();
    let db = fixture.db();
    let page = vec![7u8; 4000];
    for _ in 0..3000 {
        db.execute("INSERT INTO item (name) VALUES (?)", &[Value::Blob(&page)]).unwrap();
    }
    // 3000 commits of at least one 4 KiB page each: about 12 MiB of WAL if it were never
    // checkpointed. Checkpointed past 1000 pages, it is reused from its start.
    let wal = std::fs::metadata(format!("{}-wal", fixture.path().display())).unwrap().len();
    assert!(wal < 8 << 20, "the WAL grew to {wal} bytes");
}
