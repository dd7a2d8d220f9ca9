//! `lease check`: passes on a healthy database, open or closed; fails, naming the problem, on a
//! truncated board, a corrupt database, a truncated WAL index, a newer lease table, and a
//! missing file. Damage is done to copies, never under a live process.

mod support;

use std::path::{Path, PathBuf};

use support::child::run_role;
use support::{hold, lease, scratch, text, Ran, LONG};

#[test]
#[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
fn child_process() {
    run_role(&[("holder", support::holder)]);
}

/// The lines of a run that begin with `level`.
fn lines<'a>(ran: &'a Ran, level: &str) -> Vec<&'a str> {
    ran.stdout.lines().filter(|line| line.starts_with(&format!("{level}: "))).collect()
}

/// A database whose lease was taken and given back, with a few pages of rows, closed.
fn closed_database() -> (tempfile::TempDir, PathBuf) {
    let (dir, db) = scratch();
    let connection = rusqlite::Connection::open(&db).unwrap();
    connection
        .execute_batch(
            "CREATE TABLE notes (n INTEGER PRIMARY KEY, text TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO notes SELECT i, printf('note %d, long enough to fill pages', i) FROM n;",
        )
        .unwrap();
    drop(connection);
    hold(&db, "sync", "app", LONG, "1000").0.finish();
    (dir, db)
}

#[test]
fn a_healthy_database_passes_open_and_closed() {
    let (_dir, db) = closed_database();
    let ran = lease(&["check", text(&db)]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(lines(&ran, "problem").is_empty(), "{}", ran.stdout);
    assert!(ran.stdout.contains("ok: integrity_check: ok\n"), "{}", ran.stdout);
    let current = format!("ok: schema: version {}, this build's\n", lease::inspect::SCHEMA_VERSION);
    assert!(ran.stdout.contains(&current), "{}", ran.stdout);
    assert!(lines(&ran, "ok").iter().any(|line| line.contains("-liblease: a board")), "{}", ran.stdout);

    let (mut holder, _) = hold(&db, "sync", "app", LONG, "1000");
    let ran = lease(&["check", text(&db)]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(lines(&ran, "problem").is_empty(), "{}", ran.stdout);
    assert!(
        lines(&ran, "ok").iter().any(|line| line.contains("-wal: ") && line.ends_with("a WAL")),
        "{}",
        ran.stdout
    );
    holder.finish();
}

#[test]
fn a_truncated_board_is_a_problem() {
    let (_dir, db) = closed_database();
    let board = lease::inspect::side_file(&db, "-liblease");
    std::fs::OpenOptions::new().write(true).open(&board).unwrap().set_len(100).unwrap();
    let ran = lease(&["check", text(&db)]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert_eq!(
        lines(&ran, "problem"),
        [format!("problem: {}: 100 bytes, shorter than a board (4096): truncated, or not liblease's; processes go without fair turns at the write lock until it is deleted and they open the database again", board.display())],
        "{}",
        ran.stdout
    );
}

#[test]
fn a_foreign_board_is_a_problem() {
    let (_dir, db) = closed_database();
    let board = lease::inspect::side_file(&db, "-liblease");
    std::fs::write(&board, vec![0xee; 4096]).unwrap();
    let ran = lease(&["check", text(&db)]);
    assert_eq!(ran.code, 1, "{ran:?}");
    let problems = lines(&ran, "problem");
    assert!(problems.len() == 1 && problems[0].contains("not a liblease board"), "{}", ran.stdout);
}

/// Overwrites pages of a copy of `db`'s table with garbage.
fn corrupt_copy(db: &Path) -> PathBuf {
    let copy = db.with_file_name("copy.db");
    std::fs::copy(db, &copy).unwrap();
    let mut bytes = std::fs::read(&copy).unwrap();
    let page = 4096;
    assert!(bytes.len() >= 8 * page, "a few pages to spoil: {}", bytes.len());
    for byte in &mut bytes[3 * page..6 * page] {
        *byte = 0x5a;
    }
    std::fs::write(&copy, bytes).unwrap();
    copy
}

#[test]
fn a_corrupt_database_is_a_problem() {
    let (_dir, db) = closed_database();
    let copy = corrupt_copy(&db);
    let ran = lease(&["check", text(&copy)]);
    assert_eq!(ran.code, 1, "{ran:?}");
    let problems = lines(&ran, "problem");
    assert!(
        !problems.is_empty() && problems.iter().all(|line| line.starts_with("problem: integrity_check: ")),
        "{}",
        ran.stdout
    );

    let spoiled_header = db.with_file_name("header.db");
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[..100].fill(0x5a);
    std::fs::write(&spoiled_header, bytes).unwrap();
    let ran = lease(&["check", text(&spoiled_header)]);
    assert_eq!(ran.code, 1, "{ran:?}");
    let problems = lines(&ran, "problem");
    assert!(
        problems.iter().any(|line| line.ends_with("not a SQLite database (its header is another program's)")),
        "{}",
        ran.stdout
    );
    assert!(
        problems.iter().any(|line| line == &"problem: integrity_check: file is not a database"),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_truncated_wal_index_is_a_problem() {
    let (_dir, db) = closed_database();
    let (mut holder, _) = hold(&db, "sync", "app", LONG, "1000");
    // A copy of the database as it stands while in use, its -shm cut short.
    let copy = db.with_file_name("copy.db");
    for suffix in ["", "-wal", "-shm"] {
        std::fs::copy(lease::inspect::side_file(&db, suffix), lease::inspect::side_file(&copy, suffix))
            .unwrap();
    }
    holder.finish();
    let shm = lease::inspect::side_file(&copy, "-shm");
    std::fs::OpenOptions::new().write(true).open(&shm).unwrap().set_len(1000).unwrap();
    let ran = lease(&["check", text(&copy)]);
    assert_eq!(ran.code, 1, "{ran:?}");
    let problems = lines(&ran, "problem");
    assert!(
        problems.iter().any(|line| line.starts_with(&format!(
            "problem: {}: 1000 bytes, not a whole number of 32 KiB regions",
            shm.display()
        ))),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_newer_lease_table_is_a_problem() {
    let (_dir, db) = closed_database();
    let connection = rusqlite::Connection::open(&db).unwrap();
    connection.execute_batch("UPDATE liblease_schema SET version = 99").unwrap();
    drop(connection);
    let ran = lease(&["check", text(&db)]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert_eq!(
        lines(&ran, "problem"),
        [format!(
            "problem: schema: version 99, newer than this build understands ({}): upgrade lease and liblease",
            lease::inspect::SCHEMA_VERSION
        )],
        "{}",
        ran.stdout
    );
}

#[test]
fn a_missing_file_cannot_be_checked() {
    let (_dir, db) = scratch();
    let ran = lease(&["check", text(&db)]);
    assert_eq!(ran.code, 3, "{ran:?}");
    assert_eq!(ran.stderr, format!("lease: {}: no such file\n", db.display()));
    assert!(!db.exists());
}
