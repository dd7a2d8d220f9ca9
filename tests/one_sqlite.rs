//! One SQLite per process: a plain SQLite writer of the same process, on its own connection of
//! the SQLite that liblease uses (the bundled copy, or in the system-SQLite build the platform's
//! libsqlite3, which rusqlite then links too), writes the file beside a chunked job. Two copies
//! of SQLite in one process would not see each other's locks on the file; one copy does.

use std::time::{Duration, Instant};

use lease::{ChunkOptions, Database, Value};

#[test]
fn a_plain_writer_of_the_same_process_and_the_same_sqlite_writes_beside_a_chunked_job() {
    const PLAIN_ROWS: i64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let db = Database::open(&path).unwrap();
    db.execute("CREATE TABLE t (who TEXT, n INTEGER)", &[]).unwrap();
    let job_rows = std::thread::scope(|scope| {
        let plain = scope.spawn(|| {
            let connection = rusqlite::Connection::open(&path).unwrap();
            // The PRAGMA rather than rusqlite's busy_timeout, which needs SQLite 3.44 (the system
            // SQLite here is older).
            connection.execute_batch("PRAGMA busy_timeout = 20000").unwrap();
            for n in 0..PLAIN_ROWS {
                connection.execute("INSERT INTO t VALUES ('plain', ?1)", [n]).unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let mut tx = db.begin_chunked(ChunkOptions::DEFAULT).unwrap();
        let mut rows = 0;
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until || !plain.is_finished() {
            tx.execute("INSERT INTO t VALUES ('job', ?1)", &[Value::Integer(rows)]).unwrap();
            tx.maybe_commit().unwrap();
            rows += 1;
        }
        tx.commit().unwrap();
        plain.join().expect("the plain writer failed");
        rows
    });
    let count = |who: &str| -> i64 {
        let mut found = 0;
        db.query("SELECT count(*) FROM t WHERE who = ?1", &[Value::Text(who)], |row| {
            found = if let Value::Integer(n) = row[0] { n } else { -1 };
            false
        })
        .unwrap();
        found
    };
    assert_eq!(count("plain"), PLAIN_ROWS, "every row of the plain writer");
    assert_eq!(count("job"), job_rows, "every row of the job");
}
