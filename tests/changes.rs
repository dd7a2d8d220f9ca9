//! Change notification across processes (`Database::observe`): the writers and, where it is the
//! one stopped, the observer are child processes (see `support::child`).

#![cfg(unix)]

mod support;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use lease::{Database, Lock, LockOptions, Observer, Store, Value};
use support::child::{run_role, say, Child, PATIENCE};

#[test]
#[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
fn child_process() {
    run_role(&[
        ("writer", writer),
        ("plain", plain),
        ("observer", observer),
        ("holder", holder),
        ("begun", begun),
    ]);
}

/// `writer <path>`: for each command, writes through liblease and says `DONE`:
/// `TX <table>...` one row into each table in one transaction; `ONE <table>` one row through
/// `execute`; `BURST <table> <n>` n rows, each its own commit; `VERSION TX|ONE <n>` sets
/// `user_version` (a write that names no table) in a transaction or through `execute`.
fn writer(args: &[String]) {
    let db = Database::open(Path::new(&args[0])).unwrap();
    for command in std::io::stdin().lock().lines() {
        let command = command.unwrap();
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["TX", tables @ ..] => {
                let mut tx = db.begin().unwrap();
                for table in tables {
                    tx.execute(&format!("CREATE TABLE IF NOT EXISTS {table} (x)"), &[]).unwrap();
                    tx.execute(&format!("INSERT INTO {table} VALUES (1)"), &[]).unwrap();
                }
                tx.commit().unwrap();
            }
            ["VERSION", how, version] => {
                let sql = format!("PRAGMA user_version = {version}");
                if *how == "TX" {
                    let mut tx = db.begin().unwrap();
                    tx.execute(&sql, &[]).unwrap();
                    tx.commit().unwrap();
                } else {
                    db.execute(&sql, &[]).unwrap();
                }
            }
            ["ONE", table] => {
                db.execute(&format!("INSERT INTO {table} VALUES (1)"), &[]).unwrap();
            }
            ["BURST", table, n] => {
                for i in 0..n.parse::<i64>().unwrap() {
                    db.execute(&format!("INSERT INTO {table} VALUES (?1)"), &[Value::Integer(i)]).unwrap();
                }
            }
            other => panic!("unknown command {other:?}"),
        }
        say("DONE");
    }
}

/// `plain <path>`: on each `WRITE <table>`, inserts a row with plain SQLite (a writer that does
/// not use liblease) and says `DONE`.
fn plain(args: &[String]) {
    let connection = rusqlite::Connection::open(&args[0]).unwrap();
    // The pragma, not rusqlite's busy_timeout, which needs SQLite 3.44 (the system-sqlite
    // build links the platform's, older on Debian 12).
    connection.pragma_update(None, "busy_timeout", 10_000).unwrap();
    for command in std::io::stdin().lock().lines() {
        let command = command.unwrap();
        let table = command.strip_prefix("WRITE ").expect("WRITE <table>");
        connection.execute_batch(&format!("INSERT INTO {table} VALUES (1)")).unwrap();
        say("DONE");
    }
}

/// `observer <path>`: observes the database and says `CHANGED <table>,...` or `UNKNOWN` for
/// each call. Says `READY` first.
fn observer(args: &[String]) {
    let db = Database::open(Path::new(&args[0])).unwrap();
    let _observer = db
        .observe(Box::new(|tables| match tables {
            Some(tables) => say(format!("CHANGED {}", tables.join(","))),
            None => say("UNKNOWN"),
        }))
        .unwrap();
    say("READY");
    for _ in std::io::stdin().lock().lines() {}
}

/// `holder <path>`: holds a lease renewed every 20 ms until its stdin closes. Says `HELD`.
fn holder(args: &[String]) {
    let store = Store::open(Path::new(&args[0])).unwrap();
    let options = LockOptions {
        lease: Duration::from_millis(200),
        renew_every: Duration::from_millis(20),
        max_backoff: Duration::from_millis(10),
    };
    let lock = Lock::new(&store, "sync", "holder", options).unwrap();
    let guard = lock.acquire(PATIENCE).unwrap();
    say("HELD");
    for _ in std::io::stdin().lock().lines() {}
    guard.check().unwrap();
    guard.release().unwrap();
}

/// A database with tables `a`, `b`, `c`, and the callbacks an observer in this process got.
struct Watched {
    _dir: tempfile::TempDir,
    path: PathBuf,
    calls: Arc<Mutex<Vec<Option<Vec<String>>>>>,
    observer: Option<Observer>,
}

impl Watched {
    fn new() -> Watched {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let db = Database::open(&path).unwrap();
        db.execute("CREATE TABLE a (x)", &[]).unwrap();
        db.execute("CREATE TABLE b (x)", &[]).unwrap();
        db.execute("CREATE TABLE c (x)", &[]).unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let observer = db
            .observe(Box::new(move |tables| seen.lock().unwrap().push(tables.map(<[String]>::to_vec))))
            .unwrap();
        Watched { _dir: dir, path, calls, observer: Some(observer) }
    }

    fn spawn(&self, role: &str) -> Child {
        Child::spawn(role, role, &[self.path.to_str().unwrap()])
    }

    /// Waits (generously) until the callbacks so far satisfy `done`; returns them.
    fn wait_for(
        &self,
        what: &str,
        done: impl Fn(&[Option<Vec<String>>]) -> bool,
    ) -> Vec<Option<Vec<String>>> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let calls = self.calls.lock().unwrap().clone();
            if done(&calls) {
                return calls;
            }
            assert!(Instant::now() < deadline, "never happened: {what}; the calls: {calls:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn tables_told(&self) -> BTreeSet<String> {
        self.calls.lock().unwrap().iter().flatten().flatten().cloned().collect()
    }
}

fn set(tables: &[&str]) -> BTreeSet<String> {
    tables.iter().map(|&t| t.to_owned()).collect()
}

#[test]
fn a_commit_in_another_process_is_told_with_the_tables_it_changed() {
    let watched = Watched::new();
    let mut writer = watched.spawn("writer");
    writer.send("TX a b");
    writer.expect("DONE");
    let calls = watched.wait_for("a and b told", |_| watched.tables_told().is_superset(&set(&["a", "b"])));
    writer.send("ONE c");
    writer.expect("DONE");
    watched.wait_for("c told", |_| watched.tables_told().contains("c"));
    writer.finish();
    let calls = watched.calls.lock().unwrap().clone().into_iter().chain(calls).collect::<Vec<_>>();
    assert!(calls.iter().all(Option::is_some), "every writer was liblease's: {calls:?}");
    assert!(!watched.tables_told().iter().any(|t| t.starts_with("liblease_")), "{calls:?}");
}

#[test]
fn a_commit_of_this_process_is_told_too() {
    let watched = Watched::new();
    let db = Database::open(&watched.path).unwrap();
    db.execute("INSERT INTO b VALUES (1)", &[]).unwrap();
    watched.wait_for("b told", |_| watched.tables_told().contains("b"));
}

#[test]
fn a_statement_prepared_again_after_many_others_is_told_with_its_tables() {
    let watched = Watched::new();
    let db = Database::open(&watched.path).unwrap();
    let put = "INSERT INTO a VALUES (1)";
    db.execute(put, &[]).unwrap();
    watched.wait_for("a told", |_| watched.tables_told().contains("a"));
    // More statements than a handle keeps, the last one writing b: the first is prepared again.
    for n in 0..40 {
        db.execute(&format!("SELECT {n}"), &[]).unwrap();
    }
    db.execute("INSERT INTO b VALUES (1)", &[]).unwrap();
    watched.wait_for("b told", |_| watched.tables_told().contains("b"));
    watched.calls.lock().unwrap().clear();
    let mut tx = db.begin().unwrap();
    tx.execute(put, &[]).unwrap();
    tx.commit().unwrap();
    let calls = watched.wait_for("a told again", |_| watched.tables_told().contains("a"));
    assert_eq!(watched.tables_told(), set(&["a"]), "{calls:?}");
}

#[test]
fn after_a_burst_of_commits_a_call_comes_that_sees_the_last() {
    const BURST: i64 = 2000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("burst.db");
    let db = Database::open(&path).unwrap();
    db.execute("CREATE TABLE a (x)", &[]).unwrap();
    // Each call counts the rows it can see, on a connection of its own.
    let counted = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let reader = Mutex::new(rusqlite::Connection::open(&path).unwrap());
    let (seen, calls_made) = (counted.clone(), calls.clone());
    let _observer = db
        .observe(Box::new(move |tables| {
            assert_eq!(tables, Some(&["a".to_owned()][..]));
            let rows: i64 =
                reader.lock().unwrap().query_row("SELECT count(*) FROM a", [], |row| row.get(0)).unwrap();
            seen.lock().unwrap().push(rows);
            calls_made.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    let mut writer = Child::spawn("writer", "writer", &[path.to_str().unwrap()]);
    writer.send(&format!("BURST a {BURST}"));
    writer.expect("DONE");
    writer.finish();
    let deadline = Instant::now() + PATIENCE;
    while counted.lock().unwrap().last() != Some(&BURST) {
        assert!(Instant::now() < deadline, "no call saw the last commit: {:?}", counted.lock().unwrap());
        std::thread::sleep(Duration::from_millis(5));
    }
    let calls = calls.load(Ordering::SeqCst);
    eprintln!("{BURST} commits, {calls} calls");
    assert!(calls as i64 <= BURST, "calls are coalesced, never more than the commits");
}

#[test]
fn a_commit_of_a_plain_sqlite_writer_is_told_with_tables_unknown() {
    let watched = Watched::new();
    let mut plain = watched.spawn("plain");
    plain.send("WRITE a");
    plain.expect("DONE");
    watched.wait_for("an unknown change", |calls| calls.contains(&None));
    plain.finish();
}

#[test]
fn a_write_that_names_no_table_is_told_with_tables_unknown() {
    let watched = Watched::new();
    let mut writer = watched.spawn("writer");
    for how in ["TX", "ONE"] {
        let before = watched.calls.lock().unwrap().len();
        writer.send(&format!("VERSION {how} 7"));
        writer.expect("DONE");
        watched.wait_for(&format!("an unknown change ({how})"), |calls| calls[before..].contains(&None));
        // Then a table again, by name.
        writer.send("ONE a");
        writer.expect("DONE");
        watched.wait_for("a told", |calls| calls.last() == Some(&Some(vec!["a".to_owned()])));
    }
    writer.finish();
}

#[test]
fn a_lease_held_and_renewed_beside_an_observer_calls_it_never() {
    let watched = Watched::new();
    let mut holder = watched.spawn("holder");
    holder.expect("HELD");
    // A few dozen renewals: each a commit, counted in the record, none of the application's.
    std::thread::sleep(Duration::from_millis(600));
    holder.finish();
    // A commit after them all, so that the observer has looked past every renewal.
    let db = Database::open(&watched.path).unwrap();
    db.execute("INSERT INTO c VALUES (1)", &[]).unwrap();
    let calls = watched.wait_for("c told", |_| watched.tables_told().contains("c"));
    assert!(calls.iter().all(|call| call.as_deref() == Some(&["c".to_owned()][..])), "{calls:?}");
}

#[test]
fn an_observer_stopped_while_others_write_is_told_everything_once_it_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stopped.db");
    let db = Database::open(&path).unwrap();
    for table in ["x", "y", "z", "plain"] {
        db.execute(&format!("CREATE TABLE {table} (v)"), &[]).unwrap();
    }
    let mut observer = Child::spawn("observer", "observer", &[path.to_str().unwrap()]);
    observer.expect("READY");
    // Stopped while liblease writers commit: told every table once it goes on.
    observer.signal(libc::SIGSTOP);
    observer.wait_until_stopped();
    for table in ["x", "y", "z"] {
        db.execute(&format!("INSERT INTO {table} VALUES (1)"), &[]).unwrap();
    }
    observer.signal(libc::SIGCONT);
    let mut told = BTreeSet::new();
    while !told.is_superset(&set(&["x", "y", "z"])) {
        let line = observer.next_line();
        assert_ne!(line, "UNKNOWN", "every writer was liblease's");
        if let Some(tables) = line.strip_prefix("CHANGED ") {
            told.extend(tables.split(',').map(str::to_owned));
        }
    }
    assert!(!told.iter().any(|t| t.starts_with("liblease_")), "{told:?}");
    // Stopped while a plain SQLite writer commits (among liblease's): told that what changed is
    // unknown, which covers everything.
    observer.signal(libc::SIGSTOP);
    observer.wait_until_stopped();
    db.execute("INSERT INTO x VALUES (2)", &[]).unwrap();
    let mut plain = Child::spawn("plain", "plain", &[path.to_str().unwrap()]);
    plain.send("WRITE plain");
    plain.expect("DONE");
    plain.finish();
    db.execute("INSERT INTO y VALUES (2)", &[]).unwrap();
    observer.signal(libc::SIGCONT);
    observer.expect("UNKNOWN");
    observer.finish();
}

#[test]
fn dropping_an_observer_waits_for_its_running_call_and_runs_its_destroy_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drop.db");
    let db = Database::open(&path).unwrap();
    db.execute("CREATE TABLE a (x)", &[]).unwrap();
    let (entered, in_call) = mpsc::channel();
    let finished = Arc::new(AtomicBool::new(false));
    let destroyed = Arc::new(AtomicUsize::new(0));
    struct Destroy(Arc<AtomicUsize>);
    impl Drop for Destroy {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let owned = Destroy(destroyed.clone());
    let done = finished.clone();
    let entered = Mutex::new(entered);
    let observer = db
        .observe(Box::new(move |_| {
            let _owned = &owned;
            let _ = entered.lock().unwrap().send(());
            std::thread::sleep(Duration::from_millis(200));
            done.store(true, Ordering::SeqCst);
        }))
        .unwrap();
    db.execute("INSERT INTO a VALUES (1)", &[]).unwrap();
    in_call.recv_timeout(PATIENCE).expect("the callback was called");
    drop(observer);
    assert!(finished.load(Ordering::SeqCst), "the drop returned only after the call ended");
    assert_eq!(destroyed.load(Ordering::SeqCst), 1, "what the callback owned is gone, once");
    // No call after the drop.
    let before = finished.swap(false, Ordering::SeqCst);
    db.execute("INSERT INTO a VALUES (2)", &[]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(before && !finished.load(Ordering::SeqCst), "called after it was dropped");
}

#[test]
fn an_observer_dropped_from_inside_its_own_call_does_not_wait_for_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inside.db");
    let db = Database::open(&path).unwrap();
    db.execute("CREATE TABLE a (x)", &[]).unwrap();
    let slot: Arc<Mutex<Option<Observer>>> = Arc::new(Mutex::new(None));
    let (dropped, was_dropped) = mpsc::channel();
    let (inside, dropped) = (slot.clone(), Mutex::new(dropped));
    let observer = db
        .observe(Box::new(move |_| {
            drop(inside.lock().unwrap().take());
            let _ = dropped.lock().unwrap().send(());
        }))
        .unwrap();
    *slot.lock().unwrap() = Some(observer);
    db.execute("INSERT INTO a VALUES (1)", &[]).unwrap();
    was_dropped.recv_timeout(PATIENCE).expect("the observer was dropped from its own call, without deadlock");
}

#[test]
fn an_observer_outlives_its_database_handle() {
    let watched = Watched::new();
    // `Watched::new` dropped the handle it observed through.
    let mut writer = watched.spawn("writer");
    writer.send("ONE a");
    writer.expect("DONE");
    watched.wait_for("a told", |_| watched.tables_told().contains("a"));
    writer.finish();
}

#[test]
fn an_observer_of_a_file_deleted_under_it_is_told_so_once_and_stops() {
    let mut watched = Watched::new();
    std::fs::remove_file(&watched.path).unwrap();
    let calls = watched.wait_for("an unknown change", |calls| calls.contains(&None));
    assert_eq!(calls, vec![None]);
    drop(watched.observer.take());
}

/// The record's count of commits, or `None` when nothing was recorded yet (no table).
fn recorded_commits(path: &Path) -> Option<i64> {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.query_row("SELECT seq FROM liblease_change WHERE name = ''", [], |row| row.get(0)).ok()
}

#[test]
fn writers_record_nothing_while_no_process_observes_and_record_once_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unobserved.db");
    let db = Database::open(&path).unwrap();
    db.execute("CREATE TABLE a (x)", &[]).unwrap();
    for x in 0..10 {
        db.execute("INSERT INTO a VALUES (?1)", &[Value::Integer(x)]).unwrap();
    }
    assert_eq!(recorded_commits(&path), None, "unobserved commits cost no record");
    let observer = db.observe(Box::new(|_| {})).unwrap();
    let mut writer = Child::spawn("writer", "writer", &[path.to_str().unwrap()]);
    writer.send("ONE a");
    writer.expect("DONE");
    writer.finish();
    let observed = recorded_commits(&path).expect("an observed commit is recorded");
    drop(observer);
    db.execute("INSERT INTO a VALUES (99)", &[]).unwrap();
    assert_eq!(recorded_commits(&path), Some(observed), "nothing recorded once the observer went");
}

/// `begun <path>`: begins a transaction that inserts into `a`, says `BEGUN`, and commits on
/// `COMMIT`, saying `DONE`.
fn begun(args: &[String]) {
    let db = Database::open(Path::new(&args[0])).unwrap();
    let mut tx = db.begin().unwrap();
    tx.execute("INSERT INTO a VALUES (1)", &[]).unwrap();
    say("BEGUN");
    let command = std::io::stdin().lock().lines().next().unwrap().unwrap();
    assert_eq!(command, "COMMIT");
    tx.commit().unwrap();
    say("DONE");
}

#[test]
fn a_transaction_begun_before_the_first_observer_came_is_told_when_it_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("early.db");
    Database::open(&path).unwrap().execute("CREATE TABLE a (x)", &[]).unwrap();
    let mut writer = Child::spawn("begun", "begun", &[path.to_str().unwrap()]);
    writer.expect("BEGUN");
    let (told, calls) = mpsc::channel();
    let told = Mutex::new(told);
    let db = Database::open(&path).unwrap();
    let _observer = db
        .observe(Box::new(move |tables| drop(told.lock().unwrap().send(tables.map(<[String]>::to_vec)))))
        .unwrap();
    writer.send("COMMIT");
    writer.expect("DONE");
    writer.finish();
    // Unrecorded (it began unobserved), so its tables are not known: but it is told.
    let call = calls.recv_timeout(PATIENCE).expect("the commit was told");
    assert!(call.is_none() || call == Some(vec!["a".to_owned()]), "{call:?}");
}

#[test]
fn an_observer_killed_leaves_a_registration_that_the_next_observer_clears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.db");
    let db = Database::open(&path).unwrap();
    db.execute("CREATE TABLE x (v)", &[]).unwrap();
    let mut observer = Child::spawn("observer", "observer", &[path.to_str().unwrap()]);
    observer.expect("READY");
    observer.signal(libc::SIGKILL);
    let _ = observer.wait();
    db.execute("INSERT INTO x VALUES (1)", &[]).unwrap();
    let recorded = recorded_commits(&path).expect("the dead observer's registration still stands");
    // An observer of this process comes and goes: it clears the dead one's on its way in.
    drop(db.observe(Box::new(|_| {})).unwrap());
    db.execute("INSERT INTO x VALUES (2)", &[]).unwrap();
    assert_eq!(recorded_commits(&path), Some(recorded), "nobody observes any more");
}

#[test]
fn an_observer_made_after_another_was_dropped_is_told_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("again.db");
    let db = Database::open(&path).unwrap();
    db.execute("CREATE TABLE a (x)", &[]).unwrap();
    let mut writer = Child::spawn("writer", "writer", &[path.to_str().unwrap()]);
    for round in 0..5 {
        let (told, calls) = mpsc::channel();
        let told = Mutex::new(told);
        let observer = db
            .observe(Box::new(move |tables| drop(told.lock().unwrap().send(tables.map(<[String]>::to_vec)))))
            .unwrap();
        writer.send("ONE a");
        writer.expect("DONE");
        let call = calls.recv_timeout(PATIENCE).expect("the commit was told");
        assert_eq!(call, Some(vec!["a".to_owned()]), "round {round}");
        drop(observer);
    }
    writer.finish();
}
