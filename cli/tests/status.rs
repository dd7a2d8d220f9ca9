//! `lease status` against real holders: alive, killed with SIGKILL, stopped with SIGSTOP; the
//! writers waiting on the board; and the promise that looking changes nothing.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::child::{run_role, Child};
use support::{await_entry, hold, lease, lease_entry, scratch, status_json, text, LONG};

#[test]
#[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
fn child_process() {
    run_role(&[("holder", support::holder), ("writer", support::writer)]);
}

#[test]
fn a_live_holder_is_alive_and_holds() {
    let (_dir, db) = scratch();
    let before_hold = std::time::Instant::now();
    let (mut holder, generation) = hold(&db, "sync", "app", LONG, "1000");
    let entry = lease_entry(&db, "sync");
    let held_for = entry["held_for_ms"].as_u64().expect("held_for_ms of a held lease");
    assert!(held_for as u128 <= before_hold.elapsed().as_millis() + 1, "held since it was taken: {entry}");
    assert_eq!(entry["label"], "app");
    assert_eq!(entry["pid"], holder.pid());
    assert_eq!(entry["alive"], true);
    assert_eq!(entry["held"], true);
    assert_eq!(entry["state"], "held");
    assert_eq!(entry["generation"], generation);
    assert!(entry["expires_in_ms"].as_i64().is_some_and(|ms| ms > 0), "{entry}");

    let ran = lease(&["status", text(&db)]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let line = ran.stdout.lines().find(|line| line.starts_with("sync ")).expect("a line for the lease");
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cells[..5], ["sync", "app", &holder.pid().to_string(), "yes", "held"], "{}", ran.stdout);
    assert!(cells[5].ends_with("ms") || cells[5].ends_with('s'), "HELD FOR: {}", ran.stdout);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let later = lease_entry(&db, "sync")["held_for_ms"].as_u64().expect("still held");
    assert!(later > held_for, "the time held grows while the holder renews: {held_for} then {later}");
    let schema = format!("schema    {}", lease::inspect::SCHEMA_VERSION);
    assert!(ran.stdout.contains(&schema), "{}", ran.stdout);
    holder.finish();
}

#[test]
fn a_killed_holder_is_dead_and_its_lease_still_held_until_it_runs_out() {
    let (_dir, db) = scratch();
    let (mut holder, _) = hold(&db, "sync", "app", LONG, "1000");
    holder.signal(libc::SIGKILL);
    holder.wait();
    let entry = lease_entry(&db, "sync");
    assert_eq!(entry["pid"], holder.pid());
    assert_eq!(entry["alive"], false);
    assert_eq!(entry["held"], true, "nobody has taken it over yet");

    let ran = lease(&["status", text(&db)]);
    let line = ran.stdout.lines().find(|line| line.starts_with("sync ")).expect("a line for the lease");
    assert_eq!(line.split_whitespace().nth(3), Some("no"), "{}", ran.stdout);
}

#[test]
fn a_stopped_holder_is_alive_and_its_lease_runs_out() {
    let (_dir, db) = scratch();
    let (holder, _) = hold(&db, "sync", "app", "300", "100");
    holder.signal(libc::SIGSTOP);
    holder.wait_until_stopped();
    let entry = await_entry(&db, "sync", "expired", |entry| entry["held"] == false);
    assert_eq!(entry["alive"], true, "a stopped process is alive");
    assert_eq!(entry["state"], "expired");
    assert!(entry["expires_in_ms"].as_i64().is_some_and(|ms| ms <= 0), "{entry}");
    assert!(entry["held_for_ms"].is_null(), "no longer held: {entry}");
    // Dropping the child kills it, stopped or not.
}

#[test]
fn the_writers_waiting_on_the_board_are_listed() {
    let (_dir, db) = scratch();
    let mut writing = Child::spawn("writing", "writer", &[text(&db), "hold"]);
    writing.expect("WRITING");
    let mut waiting = Child::spawn("waiting", "writer", &[text(&db), "wait"]);
    waiting.expect("STARTING");
    let deadline = std::time::Instant::now() + support::child::PATIENCE;
    let writers = loop {
        let status = status_json(&db);
        let writers = status["writers"].as_array().expect("a writers array").clone();
        if !writers.is_empty() {
            break writers;
        }
        assert!(std::time::Instant::now() < deadline, "no writer ever waited: {status}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(writers.len(), 1, "{writers:?}");
    assert_eq!(writers[0]["pid"], waiting.pid());
    let ran = lease(&["status", text(&db)]);
    assert!(ran.stdout.contains("1 writer waiting"), "{}", ran.stdout);
    assert!(ran.stdout.contains("writers waiting\nSLOT"), "{}", ran.stdout);
    writing.finish();
    waiting.expect("WROTE");
    waiting.finish();
}

/// Every file in the directory, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .map(|entry| (entry.file_name().into_string().unwrap(), std::fs::read(entry.path()).unwrap()))
        .collect()
}

#[test]
fn looking_makes_writes_and_changes_nothing() {
    let (dir, db) = scratch();
    // A database with a lease, closed since: no -wal, no -shm.
    drop(hold(&db, "sync", "app", LONG, "1000").0.finish());
    std::fs::remove_file(lease::inspect::side_file(&db, "-liblease")).unwrap();
    let before = files(dir.path());
    assert!(before.len() == 1, "only the database: {:?}", before.keys());
    for args in [vec!["status"], vec!["status", "--json"], vec!["check"]] {
        let mut args = args.clone();
        args.insert(1, text(&db));
        let ran = lease(&args);
        assert!(ran.code == 0, "{ran:?}");
        assert_eq!(files(dir.path()), before, "{args:?} changed the directory");
    }

    // Open, with a holder whose renewals are rare: the WAL, its index and the board stay as
    // they are.
    let (mut holder, _) = hold(&db, "sync", "app", LONG, "1800000");
    let before = files(dir.path());
    let ran = lease(&["status", text(&db)]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(files(dir.path()), before, "status changed a file of a database in use");
    holder.finish();
}

#[test]
fn a_database_without_a_lease_table_has_no_leases_and_other_files_are_refused() {
    let (dir, db) = scratch();
    let connection = rusqlite::Connection::open(&db).unwrap();
    connection.execute_batch("CREATE TABLE notes (text)").unwrap();
    drop(connection);
    let ran = lease(&["status", text(&db)]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("no lease table") && ran.stdout.contains("no leases"), "{}", ran.stdout);
    assert_eq!(status_json(&db)["leases"], serde_json::json!([]));

    let not_a_database = dir.path().join("notes.txt");
    std::fs::write(&not_a_database, "not a database, but long enough to have a header ".repeat(20)).unwrap();
    let ran = lease(&["status", text(&not_a_database)]);
    assert_eq!(ran.code, 3, "{ran:?}");
    assert_eq!(ran.stderr, format!("lease: {}: file is not a database\n", not_a_database.display()));

    let missing = dir.path().join("missing.db");
    let ran = lease(&["status", text(&missing)]);
    assert_eq!(ran.code, 3, "{ran:?}");
    assert_eq!(ran.stderr, format!("lease: {}: no such file\n", missing.display()));
    assert!(!missing.exists(), "status made the file");
}
