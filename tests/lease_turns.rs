//! The processes waiting for one lease take it in the order they began to wait (the board's
//! lease waiters, see `src/writer_board.rs`), with real processes: one that releases and asks
//! again goes to the back, and a waiter that stops or dies while first in line is passed over.
//! A release to a waiting process is said on the board alone: the waiter takes the lease over in
//! one commit, and a release nobody takes over is written into the database soon after, or at
//! once when the process is suspended.

#![cfg(unix)]

mod support;

use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lease::{Lock, LockOptions, Store};
use support::child::{run_role, say, Child, PATIENCE};
use support::eventually;

const KEY: &str = "turns";

/// A lease long enough that no test waits one out.
const OPTIONS: LockOptions = LockOptions {
    lease: Duration::from_secs(60),
    renew_every: Duration::from_secs(20),
    max_backoff: Duration::from_millis(250),
};

#[test]
#[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
fn child_process() {
    run_role(&[("waiter", waiter), ("holder", holder)]);
}

/// `holder <path>`: takes the lease and says `HOLDING`; then, told `release`, gives it back and
/// says `RELEASED`, or told `release-and-suspend`, gives it back, suspends the process at once
/// and says `SUSPENDED`.
fn holder(args: &[String]) {
    let store = Store::open(Path::new(&args[0])).unwrap();
    let guard = Lock::new(&store, KEY, "holder", OPTIONS).unwrap().acquire(PATIENCE).unwrap();
    say("HOLDING");
    let mut commands = std::io::stdin().lock().lines();
    match commands.next().unwrap().unwrap().as_str() {
        "release" => {
            guard.release().unwrap();
            say("RELEASED");
        }
        "release-and-suspend" => {
            guard.release().unwrap();
            lease::lifecycle::suspend(PATIENCE).unwrap();
            say("SUSPENDED");
        }
        other => panic!("unknown command {other}"),
    }
    for _ in commands {}
}

/// `waiter <path> [<max_backoff_ms>]`: finds the lease held, says `WAITING`, waits for it, says
/// `HELD`, and gives it back when told `release`, saying `RELEASED`.
fn waiter(args: &[String]) {
    let store = Store::open(Path::new(&args[0])).unwrap();
    let max_backoff =
        args.get(1).map_or(OPTIONS.max_backoff, |ms| Duration::from_millis(ms.parse().unwrap()));
    let lock = Lock::new(&store, KEY, "waiter", LockOptions { max_backoff, ..OPTIONS }).unwrap();
    assert!(lock.try_acquire().is_err(), "the lease is held when the waiter starts");
    say("WAITING");
    let guard = lock.acquire(PATIENCE).expect("the waiter's turn comes");
    say("HELD");
    let mut commands = std::io::stdin().lock().lines();
    assert_eq!(commands.next().unwrap().unwrap(), "release");
    guard.release().unwrap();
    say("RELEASED");
    for _ in commands {}
}

/// Starts waiters one after the other, each once the one before it is surely in line.
fn waiters_in_line(path: &Path, count: usize) -> Vec<Child> {
    waiters_in_line_with(path, count, &[])
}

/// The same, with `extra` after each waiter's path.
fn waiters_in_line_with(path: &Path, count: usize, extra: &[&str]) -> Vec<Child> {
    let args: Vec<&str> = [path.to_str().unwrap()].into_iter().chain(extra.iter().copied()).collect();
    (0..count)
        .map(|index| {
            let mut child = Child::spawn(&format!("waiter {index}"), "waiter", &args);
            child.expect("WAITING");
            // It posts its notice right after its first look.
            std::thread::sleep(Duration::from_millis(150));
            child
        })
        .collect()
}

/// Lets `waiter`, which is in line, take the lease, give it back and end.
fn takes_it_and_gives_it_back(waiter: &mut Child) {
    waiter.expect("HELD");
    waiter.send("release");
    waiter.expect("RELEASED");
    waiter.finish();
}

/// Waits until one of `children` says `HELD` and returns its index; fails if several did.
fn next_holder(children: &mut [Child]) -> usize {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let held: Vec<usize> = (0..children.len())
            .filter(|&index| children[index].drain().iter().any(|line| line == "HELD"))
            .collect();
        match held.as_slice() {
            [] => {}
            [one] => return *one,
            several => panic!("several waiters said HELD at once: {several:?}"),
        }
        assert!(std::time::Instant::now() < deadline, "no waiter took the lease in {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn waiters_take_the_lease_in_the_order_they_began_to_wait_and_a_returning_holder_goes_last() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = Store::open(&path).unwrap();
    let lock = Lock::new(&store, KEY, "parent", OPTIONS).unwrap();
    let guard = lock.acquire(PATIENCE).unwrap();
    let mut children = waiters_in_line(&path, 4);

    guard.release().unwrap();
    // A try at once, before the first waiter has woken, finds the lease free: it is left to
    // the waiters all the same.
    let barged = lock.try_acquire();
    assert!(barged.is_err(), "a try went before the waiters: {barged:?}");
    // The parent asks again: it is the youngest waiter now.
    let parent_held = Arc::new(AtomicBool::new(false));
    let again = {
        let (lock, parent_held) = (lock, parent_held.clone());
        std::thread::spawn(move || {
            let guard = lock.acquire(PATIENCE).unwrap();
            parent_held.store(true, Ordering::SeqCst);
            guard
        })
    };
    let mut order = Vec::new();
    for _ in 0..children.len() {
        let holder = next_holder(&mut children);
        assert!(!parent_held.load(Ordering::SeqCst), "the parent went before waiter {holder}");
        order.push(holder);
        children[holder].send("release");
        children[holder].expect("RELEASED");
    }
    assert_eq!(order, [0, 1, 2, 3], "the waiters took the lease in this order");
    drop(again.join().unwrap());
    assert!(parent_held.load(Ordering::SeqCst));
    for child in &mut children {
        child.finish();
    }
}

/// The CPU time of all of process `pid`'s threads so far, in ns (the scheduler's count).
fn cpu_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The first in line looks at the lease at every backoff (a release it did not hear of would
/// otherwise wait for the holder's expiry); the one behind it has nothing to look at until its
/// turn, and sleeps. Both back off at most 1 ms here, so the first looks about a thousand times
/// a second; their CPU over the same second is compared, not timed.
#[test]
fn a_waiter_behind_another_sleeps_until_its_turn_instead_of_looking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = Store::open(&path).unwrap();
    let guard = Lock::new(&store, KEY, "parent", OPTIONS).unwrap().acquire(PATIENCE).unwrap();
    let mut children = waiters_in_line_with(&path, 2, &["1"]);
    let before = [cpu_ns(children[0].pid()), cpu_ns(children[1].pid())];
    std::thread::sleep(Duration::from_secs(1));
    let spent = [cpu_ns(children[0].pid()) - before[0], cpu_ns(children[1].pid()) - before[1]];
    eprintln!("CPU (ns) over one second, the first in line and the one behind it: {spent:?}");
    assert!(spent[1] * 5 < spent[0], "CPU (ns) of the first in line and of the one behind: {spent:?}");
    guard.release().unwrap();
    for index in [0, 1] {
        assert_eq!(next_holder(&mut children), index);
        children[index].send("release");
        children[index].expect("RELEASED");
    }
    for child in &mut children {
        child.finish();
    }
}

#[test]
fn a_waiter_stopped_or_killed_while_first_in_line_is_passed_over() {
    for signal in [libc::SIGSTOP, libc::SIGKILL] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let store = Store::open(&path).unwrap();
        let guard = Lock::new(&store, KEY, "parent", OPTIONS).unwrap().acquire(PATIENCE).unwrap();
        let mut children = waiters_in_line(&path, 2);
        children[0].signal(signal);
        // Stopped or dead before the release, not holding the lease it took just after it.
        if signal == libc::SIGSTOP {
            children[0].wait_until_stopped();
        } else {
            children[0].wait();
        }
        guard.release().unwrap();
        // The second waiter takes the lease once the first one's notice is no longer fresh.
        takes_it_and_gives_it_back(&mut children[1]);
        if signal == libc::SIGSTOP {
            children[0].signal(libc::SIGCONT);
            children[0].expect("HELD");
            children[0].send("release");
            children[0].finish();
        }
    }
}

/// The frames in the database's WAL: each commit appends one per page it changed.
fn wal_frames(path: &Path) -> u64 {
    let page_size: i64 = rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .unwrap();
    let wal = std::fs::metadata(format!("{}-wal", path.display())).map_or(0, |m| m.len());
    wal.saturating_sub(32) / (24 + page_size as u64)
}

/// The lease row's holder label and expiry, read with a plain connection (not the board).
fn lease_row(path: &Path) -> (String, u64) {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .query_row("SELECT label, expires_ms FROM liblease_lease WHERE key = ?1", [KEY], |row| {
            Ok((row.get(0)?, row.get::<_, i64>(1)? as u64))
        })
        .unwrap()
}

#[test]
fn a_release_to_a_waiting_process_is_one_commit_the_waiters_take() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = Store::open(&path).unwrap();
    let lock = Lock::new(&store, KEY, "parent", OPTIONS).unwrap();
    // What one commit on the lease row appends: a release with nobody waiting, which is written.
    let guard = lock.acquire(PATIENCE).unwrap();
    let before = wal_frames(&path);
    guard.release().unwrap();
    let one_commit = wal_frames(&path) - before;
    assert!(one_commit > 0, "a release nobody waits for is written into the database");

    let guard = lock.acquire(PATIENCE).unwrap();
    let mut children = waiters_in_line(&path, 1);
    let before = wal_frames(&path);
    guard.release().unwrap();
    children[0].expect("HELD");
    // Past the time after which the parent would write a release nobody took over.
    std::thread::sleep(Duration::from_millis(500));
    let handover = wal_frames(&path) - before;
    assert_eq!(
        handover, one_commit,
        "the handover appended the waiter's take alone ({one_commit} frames a commit)"
    );
    assert_eq!(lease_row(&path).0, "waiter");
    children[0].send("release");
    children[0].expect("RELEASED");
    children[0].finish();
}

#[test]
fn a_release_handed_to_a_waiter_that_does_not_take_it_is_written_into_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = Store::open(&path).unwrap();
    let guard = Lock::new(&store, KEY, "parent", OPTIONS).unwrap().acquire(PATIENCE).unwrap();
    let mut children = waiters_in_line(&path, 1);
    // Stopped with its notice still fresh: the release is handed to it, and it cannot take it.
    children[0].signal(libc::SIGSTOP);
    children[0].wait_until_stopped();
    guard.release().unwrap();
    // The lease would otherwise stay held in the database for its minute; well before the
    // waiter's notice goes stale (a second), the parent writes the release.
    eventually("the release written into the database", || lease_row(&path) == ("parent".into(), 0));
    children[0].signal(libc::SIGCONT);
    takes_it_and_gives_it_back(&mut children[0]);
}

#[test]
fn a_suspension_writes_at_once_the_releases_handed_over_on_the_board() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    Store::open(&path).unwrap();
    let mut holder = Child::spawn("holder", "holder", &[path.to_str().unwrap()]);
    holder.expect("HOLDING");
    let mut children = waiters_in_line(&path, 1);
    children[0].signal(libc::SIGSTOP);
    children[0].wait_until_stopped();
    holder.send("release-and-suspend");
    holder.expect("SUSPENDED");
    // Right after the suspension, before the holder's thread would have written it.
    assert_eq!(lease_row(&path), ("holder".into(), 0), "released in the database by the suspension");
    children[0].signal(libc::SIGCONT);
    takes_it_and_gives_it_back(&mut children[0]);
    holder.finish();
}
