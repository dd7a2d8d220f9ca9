//! Schema migrations run once across processes (`Database::migrate`), with real processes.

#![cfg(unix)]

mod support;

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use lease::{Database, Error, Transaction, Value};
use support::child::{run_role, say, Child, PATIENCE};

#[test]
#[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
fn child_process() {
    run_role(&[("migrator", migrator), ("stuck", stuck)]);
}

/// The application's migration: version `v` makes table `t<v>`, and records who ran it.
fn step(tx: &mut Transaction, version: u32) -> lease::Result<()> {
    tx.execute("CREATE TABLE IF NOT EXISTS steps (version INTEGER, pid INTEGER)", &[])?;
    tx.execute(&format!("CREATE TABLE t{version} (x)"), &[])?;
    tx.execute(
        "INSERT INTO steps VALUES (?1, ?2)",
        &[Value::Integer(version.into()), Value::Integer(std::process::id().into())],
    )?;
    // Long enough that the others are at the door meanwhile.
    std::thread::sleep(Duration::from_millis(30));
    Ok(())
}

/// `migrator <path> <target>`: opens the database, says `READY`, waits for `GO`, migrates, and
/// says `MIGRATED <outcome>`.
fn migrator(args: &[String]) {
    let db = Database::open(Path::new(&args[0])).unwrap();
    let target: u32 = args[1].parse().unwrap();
    say("READY");
    let go = std::io::stdin().lock().lines().next().unwrap().unwrap();
    assert_eq!(go, "GO");
    let outcome = match db.migrate(target, PATIENCE, step) {
        Ok(()) => "Ok".to_owned(),
        Err(e) => format!("{e}"),
    };
    say(format!("MIGRATED {outcome}"));
}

/// `stuck <path>`: migrates to version 2, and in step 2 says `IN-STEP` and waits forever.
fn stuck(args: &[String]) {
    let db = Database::open(Path::new(&args[0])).unwrap();
    let _ = db.migrate(2, PATIENCE, |tx, version| {
        step(tx, version)?;
        if version == 2 {
            say("IN-STEP");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Ok(())
    });
}

fn user_version(path: &Path) -> i64 {
    rusqlite::Connection::open(path).unwrap().query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap()
}

/// The versions whose step committed, in order, each as often as it did.
fn steps_run(path: &Path) -> Vec<i64> {
    let connection = rusqlite::Connection::open(path).unwrap();
    let mut statement = connection.prepare("SELECT version FROM steps ORDER BY version").unwrap();
    statement.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn six_processes_migrating_a_new_file_at_once_run_each_step_once_and_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let mut migrators: Vec<Child> = (0..6)
        .map(|i| Child::spawn(&format!("migrator-{i}"), "migrator", &[path.to_str().unwrap(), "3"]))
        .collect();
    for migrator in &mut migrators {
        migrator.expect("READY");
    }
    for migrator in &mut migrators {
        migrator.send("GO");
    }
    for migrator in &mut migrators {
        assert_eq!(migrator.expect("MIGRATED"), "MIGRATED Ok");
        migrator.finish();
    }
    assert_eq!(steps_run(&path), [1, 2, 3], "each step ran once");
    assert_eq!(user_version(&path), 3);
}

#[test]
fn a_step_that_fails_rolls_back_and_its_error_names_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("failing.db");
    let db = Database::open(&path).unwrap();
    let failed = db.migrate(3, PATIENCE, |tx, version| {
        step(tx, version)?;
        if version == 2 {
            return Err(Error::InvalidArgument("the step refused".into()));
        }
        Ok(())
    });
    let Err(Error::InvalidArgument(message)) = failed else { panic!("the step's own error: {failed:?}") };
    assert!(message.contains("version 2") && message.contains("the step refused"), "{message}");
    assert_eq!(user_version(&path), 1, "the version stays where the last good step left it");
    assert_eq!(steps_run(&path), [1], "nothing of the failed step stays");
    // The next try runs it again.
    db.migrate(3, PATIENCE, step).unwrap();
    assert_eq!(steps_run(&path), [1, 2, 3]);
}

#[test]
fn a_file_of_a_newer_version_is_refused_and_one_at_the_target_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    let db = Database::open(&path).unwrap();
    db.migrate(4, PATIENCE, step).unwrap();
    let commits = || -> i64 {
        // SQLite's count of commits, in the WAL index header (see walformat.html).
        let shm = std::fs::read(format!("{}-shm", path.display())).unwrap();
        u32::from_ne_bytes(shm[8..12].try_into().unwrap()).into()
    };
    let before = commits();
    let refused = db.migrate(3, PATIENCE, |_, _| panic!("no step runs"));
    let Err(Error::Database(message)) = refused else { panic!("refused: {refused:?}") };
    assert!(message.contains("version 4") && message.contains('3'), "{message}");
    db.migrate(4, PATIENCE, |_, _| panic!("no step runs")).unwrap();
    assert_eq!(commits(), before, "neither wrote to the file");
    assert_eq!(user_version(&path), 4);
}

#[test]
fn a_migrator_killed_mid_step_leaves_the_previous_version_and_the_next_caller_runs_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.db");
    let mut stuck = Child::spawn("stuck", "stuck", &[path.to_str().unwrap()]);
    stuck.expect("IN-STEP");
    // Meanwhile another caller waits, and gives up within its timeout.
    let db = Database::open(&path).unwrap();
    let waited = db.migrate(2, Duration::from_millis(200), step);
    assert!(matches!(waited, Err(Error::Timeout(_))), "{waited:?}");
    stuck.signal(libc::SIGKILL);
    let _ = stuck.wait();
    assert_eq!(user_version(&path), 1);
    db.migrate(3, PATIENCE, step).unwrap();
    assert_eq!(steps_run(&path), [1, 2, 3], "step 2 ran again, once, and committed once");
}
