//! Transactions across real processes: a fenced write by a holder that was suspended past its
//! lease, and a crash in the middle of a chunked job. The test binary runs itself again as the
//! child process (see `child_process`, and `tests/support`).

mod support;

use std::path::Path;
use std::time::Duration;

use lease::{ChunkOptions, Database, Error, Lock, LockOptions, Store, Value};
use support::child::{say, Child};

const SHORT_LEASE: LockOptions = LockOptions {
    lease: Duration::from_millis(600),
    renew_every: Duration::from_millis(150),
    max_backoff: Duration::from_millis(20),
};

/// Run as a child by the tests below; does nothing in a normal test run.
#[test]
#[ignore = "not a test: the other process of the tests below, which run it with --ignored"]
fn child_process() {
    support::child::run_role(&[("fenced-writer", fenced_writer), ("chunked-job", chunked_job)]);
}

/// `fenced-writer <database>`: takes the lease, says HELD, and on each WRITE line from the test
/// tries one fenced write, answering OK or LOST; ends with its input.
fn fenced_writer(args: &[String]) {
    let [path] = args else { panic!("expected <database>, got {args:?}") };
    let store = Store::open(path).unwrap();
    let db = Database::open(path).unwrap();
    let guard = Lock::new(&store, "sync", "first", SHORT_LEASE).unwrap().try_acquire().unwrap();
    say("HELD");
    for line in std::io::stdin().lines() {
        if line.unwrap() != "WRITE" {
            continue;
        }
        let written = db.begin_fenced(&guard).and_then(|mut tx| {
            tx.execute("INSERT INTO item (writer) VALUES ('first')", &[])?;
            tx.commit()
        });
        match written {
            Ok(()) => say("OK"),
            Err(Error::Lost(_)) => say("LOST"),
            Err(other) => say(format!("ERROR {other}")),
        }
    }
}

/// `chunked-job <database>`: inserts numbered rows in a chunked transaction forever, tagging
/// each with its chunk; says `STARTED`, and after each chunk commits `COMMITTED <chunk> <rows in
/// it>`.
fn chunked_job(args: &[String]) {
    let [path] = args else { panic!("expected <database>, got {args:?}") };
    let db = Database::open(path).unwrap();
    let chunk = ChunkOptions {
        period: Duration::from_millis(30),
        slice: Duration::from_millis(30),
        gap: Duration::ZERO,
    };
    let mut tx = db.begin_chunked(chunk).unwrap();
    let (mut number, mut chunk_number, mut rows) = (0i64, 0i64, 0);
    say("STARTED");
    loop {
        number += 1;
        rows += 1;
        tx.execute(
            "INSERT INTO job (number, chunk) VALUES (?, ?)",
            &[Value::Integer(number), Value::Integer(chunk_number)],
        )
        .unwrap();
        if tx.maybe_commit().unwrap() {
            say(format!("COMMITTED {chunk_number} {rows}"));
            chunk_number += 1;
            rows = 0;
        }
    }
}

/// A child that plays `role` on the database at `path`.
fn spawn(name: &str, role: &str, path: &Path) -> Child {
    Child::spawn(name, role, &[path.to_str().expect("a UTF-8 path")])
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

#[test]
fn a_holder_suspended_past_its_lease_cannot_write_over_the_next_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fenced.db");
    let db = Database::open(&path).unwrap();
    db.execute("CREATE TABLE item (writer TEXT)", &[]).unwrap();

    let mut first = spawn("first", "fenced-writer", &path);
    assert_eq!(first.next_line(), "HELD");
    first.send("WRITE");
    assert_eq!(first.next_line(), "OK", "while it holds the lease, its fenced write goes in");

    // Suspended past its lease; this process takes over and writes.
    first.signal(libc::SIGSTOP);
    let store = Store::open(&path).unwrap();
    let guard =
        Lock::new(&store, "sync", "second", SHORT_LEASE).unwrap().acquire(Duration::from_secs(30)).unwrap();
    assert!(guard.is_dirty());
    let mut tx = db.begin_fenced(&guard).unwrap();
    tx.execute("INSERT INTO item (writer) VALUES ('second')", &[]).unwrap();
    tx.commit().unwrap();

    // Continued, the first holder tries again, and is refused.
    first.signal(libc::SIGCONT);
    first.send("WRITE");
    assert_eq!(first.next_line(), "LOST");
    assert_eq!(
        count(&db, "SELECT count(*) FROM item WHERE writer = 'first'"),
        1,
        "only its write from before"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM item WHERE writer = 'second'"), 1);
    guard.check().unwrap();
}

#[test]
fn a_job_killed_mid_chunk_leaves_every_committed_chunk_and_no_partial_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    Database::open(&path).unwrap().execute("CREATE TABLE job (number INTEGER, chunk INTEGER)", &[]).unwrap();

    let mut job = spawn("job", "chunked-job", &path);
    assert_eq!(job.next_line(), "STARTED");
    let mut reported = Vec::new();
    while reported.len() < 10 {
        let line = job.expect("COMMITTED");
        let mut words = line.split_whitespace().skip(1).map(|w| w.parse::<i64>().unwrap());
        reported.push((words.next().unwrap(), words.next().unwrap()));
    }
    job.signal(libc::SIGKILL);
    drop(job);

    let db = Database::open(&path).unwrap();
    let mut integrity = String::new();
    db.query("PRAGMA integrity_check", &[], |row| {
        integrity = format!("{:?}", row[0]);
        true
    })
    .unwrap();
    assert_eq!(integrity, "Text(\"ok\")");
    // Every reported chunk is there, whole.
    for (chunk, rows) in &reported {
        assert_eq!(
            count(&db, &format!("SELECT count(*) FROM job WHERE chunk = {chunk}")),
            *rows,
            "chunk {chunk}"
        );
    }
    // Beyond them, at most the one chunk that committed just before the kill (unreported): the
    // rows are numbered without a gap, so no chunk is partly there.
    let chunks = count(&db, "SELECT count(DISTINCT chunk) FROM job");
    assert!(chunks == reported.len() as i64 || chunks == reported.len() as i64 + 1, "{chunks} chunks");
    assert_eq!(count(&db, "SELECT max(number) FROM job"), count(&db, "SELECT count(*) FROM job"));
}
