//! SIGKILL at random points: 200 processes killed in the middle of opening (and migrating) the
//! lease table, of chunked jobs, of fenced writes and of releases. After each kill the file is
//! intact, everything a process reported committed is there, whole, and nothing else is: no
//! partial chunk, no half-migrated lease table.

#![cfg(unix)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use lease::{ChunkOptions, Database, Lock, LockOptions, Store, Value};
use support::child::{run_role, say, Child};

const QUICK: LockOptions = LockOptions {
    lease: Duration::from_millis(2_000),
    renew_every: Duration::from_millis(500),
    max_backoff: Duration::from_millis(5),
};

#[test]
#[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
fn child_process() {
    run_role(&[("worker", worker)]);
}

/// `worker <path> <name>`: says OPENING, opens a store (migrating the lease table if it is old)
/// and a database, says STARTED, then forever: takes the lease, makes a fenced write (says
/// `FENCED <n>` once committed), gives the lease back, and runs a chunked job of a few chunks
/// (says `CHUNK <chunk> <rows>` after each chunk committed).
fn worker(args: &[String]) {
    let (path, name) = (Path::new(&args[0]), args[1].as_str());
    say("OPENING");
    let store = Store::open(path).unwrap();
    let db = Database::open(path).unwrap();
    say("STARTED");
    let lock = Lock::new(&store, "sync", name, QUICK).unwrap();
    let chunk = ChunkOptions {
        period: Duration::from_millis(2),
        slice: Duration::from_millis(2),
        gap: Duration::ZERO,
    };
    let (mut fenced, mut chunk_number) = (0i64, 0i64);
    loop {
        let guard = lock.acquire(Duration::from_secs(30)).unwrap();
        let mut tx = db.begin_fenced(&guard).unwrap();
        tx.execute(
            "INSERT INTO fenced (worker, n) VALUES (?, ?)",
            &[Value::Text(name), Value::Integer(fenced)],
        )
        .unwrap();
        tx.commit().unwrap();
        say(format!("FENCED {fenced}"));
        fenced += 1;
        guard.release().unwrap();

        let mut tx = db.begin_chunked(chunk).unwrap();
        let mut rows = 0i64;
        for _ in 0..200 {
            tx.execute(
                "INSERT INTO job (worker, chunk, n) VALUES (?, ?, ?)",
                &[Value::Text(name), Value::Integer(chunk_number), Value::Integer(rows)],
            )
            .unwrap();
            rows += 1;
            if tx.maybe_commit().unwrap() {
                say(format!("CHUNK {chunk_number} {rows}"));
                chunk_number += 1;
                rows = 0;
            }
        }
        tx.commit().unwrap();
        say(format!("CHUNK {chunk_number} {rows}"));
        chunk_number += 1;
    }
}

/// A small deterministic generator, so that a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// The first lease table (schema version 1), as a liblease of that version made it.
const LEASE_TABLE_V1: &str = "CREATE TABLE liblease_schema (version INTEGER NOT NULL);
    INSERT INTO liblease_schema (version) VALUES (1);
    CREATE TABLE liblease_lease (
        key TEXT NOT NULL PRIMARY KEY, holder TEXT NOT NULL, hold INTEGER NOT NULL,
        label TEXT NOT NULL, boot TEXT NOT NULL, expires_ms INTEGER NOT NULL,
        generation INTEGER NOT NULL
    ) WITHOUT ROWID;";

fn make_file(path: &Path, old_lease_table: bool) {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.pragma_update(None, "journal_mode", "wal").unwrap();
    connection
        .execute_batch(
            "CREATE TABLE fenced (worker TEXT, n INTEGER);
             CREATE TABLE job (worker TEXT, chunk INTEGER, n INTEGER);",
        )
        .unwrap();
    if old_lease_table {
        connection.execute_batch(LEASE_TABLE_V1).unwrap();
    }
}

#[test]
fn two_hundred_processes_killed_at_random_points_leave_every_reported_commit_and_nothing_partial() {
    const KILLS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(std::env::var("LEASE_KILLS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7));
    // Made anew by every tenth process, the first one included.
    let mut path = std::path::PathBuf::new();
    let mut migrations_cut = 0;
    for kill in 0..KILLS {
        // Every tenth process opens a file whose lease table is of the first version, and is
        // killed soon after it starts opening: in the middle of the migration, some of the time.
        let migrating = kill % 10 == 0;
        if migrating {
            path = dir.path().join(format!("kills-{kill}.db"));
            make_file(&path, true);
        }
        let name = format!("worker-{kill}");
        let mut worker = Child::spawn(&name, "worker", &[path.to_str().unwrap(), &name]);
        if migrating {
            worker.expect("OPENING");
            std::thread::sleep(Duration::from_micros(rng.below(3_000)));
        } else {
            worker.expect("STARTED");
            std::thread::sleep(Duration::from_micros(rng.below(40_000)));
        }
        worker.signal(libc::SIGKILL);
        worker.wait();
        let said = worker.rest();
        if migrating && !said.iter().any(|line| line == "STARTED") {
            migrations_cut += 1;
        }
        check_after_kill(&path, &name, &said);
    }
    eprintln!(
        "{KILLS} processes killed; {migrations_cut} of them while opening a file with an old lease table"
    );
}

fn check_after_kill(path: &Path, name: &str, said: &[String]) {
    let connection = rusqlite::Connection::open(path).unwrap();
    let integrity: String = connection.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
    assert_eq!(integrity, "ok", "after killing '{name}'");

    // The lease table is of one version or the other, wholly.
    let version: i64 =
        connection.query_row("SELECT version FROM liblease_schema", [], |row| row.get(0)).unwrap();
    let has_column = |column: &str| -> bool {
        connection
            .query_row(
                "SELECT count(*) > 0 FROM pragma_table_info('liblease_lease') WHERE name = ?1",
                [column],
                |row| row.get(0),
            )
            .unwrap()
    };
    let (has_pid, has_taken) = (has_column("pid"), has_column("taken_ms"));
    let has_record: bool = connection
        .query_row("SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'liblease_change'", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert!(
        matches!(
            (version, has_pid, has_record, has_taken),
            (1, false, false, false)
                | (2, true, false, false)
                | (3, true, true, false)
                | (4, true, true, true)
        ),
        "after killing '{name}': version {version}, pid column {has_pid}, change record {has_record}, \
         taken_ms column {has_taken}"
    );

    // Every fenced write it reported is there.
    for line in said.iter().filter_map(|line| line.strip_prefix("FENCED ")) {
        let n: i64 = line.parse().unwrap();
        let found: i64 = connection
            .query_row(
                "SELECT count(*) FROM fenced WHERE worker = ?1 AND n = ?2",
                rusqlite::params![name, n],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(found, 1, "'{name}' reported fenced write {n}");
    }
    // Every chunk it reported is there, whole; every chunk in the file is whole (rows 0..k).
    let mut reported = BTreeMap::new();
    for line in said.iter().filter_map(|line| line.strip_prefix("CHUNK ")) {
        let (chunk, rows) = line.split_once(' ').unwrap();
        reported.insert(chunk.parse::<i64>().unwrap(), rows.parse::<i64>().unwrap());
    }
    let mut statement = connection
        .prepare("SELECT chunk, count(*), min(n), max(n) FROM job WHERE worker = ?1 GROUP BY chunk")
        .unwrap();
    let found: BTreeMap<i64, (i64, i64, i64)> = statement
        .query_map([name], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?, row.get(3)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (chunk, rows) in &reported {
        // A chunk of no rows (the job's last, when its last row had just been committed) is
        // nowhere in the file.
        let in_file = found.get(chunk).map_or(0, |f| f.0);
        assert_eq!(in_file, *rows, "'{name}' reported chunk {chunk} of {rows} rows");
    }
    for (chunk, (count, min, max)) in &found {
        assert!(
            *min == 0 && *max == count - 1,
            "'{name}': chunk {chunk} is partial ({count} rows, {min}..{max})"
        );
    }
}
