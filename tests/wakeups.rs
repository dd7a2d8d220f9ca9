//! The two kinds of wake-ups a waiting process sleeps on (see `src/wakeups.rs`): the system's
//! (Linux: inotify, pidfd, futex, eventfd) and the portable ones that Apple platforms run (a
//! word of the board looked at between short sleeps), chosen by `LIBLEASE_WAKEUPS`. Each test
//! runs a waiter in a real process of each kind, so that whichever mode this suite itself runs
//! in, both are checked. On a file with a board every wake-up of either kind comes once the
//! change is visible, so a waiter looks only when woken, or after its longest backoff.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod support;

use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lease::log::{self, Level};
use lease::{Lock, LockOptions, Store};
use support::child::{run_role, say, Child, PATIENCE};

const KEY: &str = "wake";

/// A long lease and long backoffs: the waiter's looks are few, and each is logged at Debug as
/// caused by a wake-up ("woken, looking again") or not ("nothing woke the waiter").
const SLOW_POLLING: LockOptions = LockOptions {
    lease: Duration::from_secs(60),
    renew_every: Duration::from_secs(20),
    max_backoff: Duration::from_secs(60),
};

#[test]
#[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
fn child_process() {
    run_role(&[("waiter", waiter), ("waits", waits)]);
}

/// `waiter <path>`: finds the lease held, says `WAITING`, waits for it (with [`SLOW_POLLING`]),
/// and says `HELD woken=<looks after a wake-up> quiet=<looks after a sleep nothing woke>
/// inotify=<n> pidfd=<n>`, the last two counting its descriptors of each kind; then waits for
/// its input to close.
fn waiter(args: &[String]) {
    let looks = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let count = looks.clone();
    log::set_sink(
        Level::Debug,
        Some(Box::new(move |_, message| {
            if message.contains("woken, looking again") {
                count[0].fetch_add(1, Ordering::Relaxed);
            } else if message.contains("nothing woke the waiter") {
                count[1].fetch_add(1, Ordering::Relaxed);
            }
        })),
    );
    let store = Store::open(Path::new(&args[0])).unwrap();
    let lock = Lock::new(&store, KEY, "waiter", SLOW_POLLING).unwrap();
    assert!(lock.try_acquire().is_err(), "the parent holds the lease");
    say("WAITING");
    let _guard = lock.acquire(PATIENCE).expect("the release wakes the waiter");
    say(format!(
        "HELD woken={} quiet={} inotify={} pidfd={}",
        looks[0].load(Ordering::Relaxed),
        looks[1].load(Ordering::Relaxed),
        descriptors("self", "inotify"),
        descriptors("self", "pidfd")
    ));
    for _ in std::io::stdin().lock().lines() {}
}

/// `waits <path>`: twice, when told `wait`, finds the lease held, says `WAITING`, waits for it,
/// says `HELD`, and gives it back when told `release`.
fn waits(args: &[String]) {
    let store = Store::open(Path::new(&args[0])).unwrap();
    let lock = Lock::new(&store, KEY, "waiter", SLOW_POLLING).unwrap();
    let mut commands = std::io::stdin().lock().lines();
    for _ in 0..2 {
        assert_eq!(commands.next().unwrap().unwrap(), "wait");
        assert!(lock.try_acquire().is_err(), "the parent holds the lease");
        say("WAITING");
        let guard = lock.acquire(PATIENCE).expect("the release wakes the waiter");
        say("HELD");
        assert_eq!(commands.next().unwrap().unwrap(), "release");
        guard.release().unwrap();
        say("RELEASED");
    }
    for _ in commands {}
}

/// How many descriptors of the process `pid` (a number, or `self`) are of `kind` (`inotify`,
/// `pidfd`: what /proc shows their targets as).
fn descriptors(pid: impl std::fmt::Display, kind: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    entries
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains(kind))
        .count()
}

/// Holds the lease while a waiter of the given kind waits, releases it, and returns what the
/// waiter said when it held the lease.
fn hand_over_to(wakeups: &str) -> String {
    hand_over_after(wakeups, |_| {})
}

/// Like [`hand_over_to`], doing `meanwhile` to the database while the waiter waits.
fn hand_over_after(wakeups: &str, meanwhile: impl FnOnce(&Path)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = Store::open(&path).unwrap();
    let guard = Lock::new(&store, KEY, "parent", SLOW_POLLING).unwrap().acquire(PATIENCE).unwrap();
    let mut waiter = Child::spawn_with_env(
        &format!("{wakeups} waiter"),
        "waiter",
        &[path.to_str().unwrap()],
        &[("LIBLEASE_WAKEUPS", wakeups)],
    );
    waiter.expect("WAITING");
    // The waiter is asleep in its wait by now (it only has to read the row once more).
    std::thread::sleep(Duration::from_millis(300));
    meanwhile(&path);
    guard.release().unwrap();
    let held = waiter.expect("HELD");
    waiter.finish();
    held
}

fn field(line: &str, name: &str) -> usize {
    let prefix = format!("{name}=");
    let value = line.split_whitespace().find_map(|word| word.strip_prefix(&prefix));
    value.unwrap_or_else(|| panic!("no {name} in {line:?}")).parse().unwrap()
}

#[test]
fn the_portable_wake_ups_hand_over_without_inotify_or_pidfd() {
    let held = hand_over_to("portable");
    assert!(field(&held, "woken") >= 1, "the board's word woke the waiter: {held}");
    assert_eq!(field(&held, "inotify"), 0, "{held}");
    assert_eq!(field(&held, "pidfd"), 0, "{held}");
}

#[test]
fn the_systems_wake_ups_hand_over_through_inotify() {
    // Any value but `portable` means the system's, even in a suite run with the switch set.
    let held = hand_over_to("native");
    assert!(field(&held, "woken") >= 1, "a wake-up woke the waiter: {held}");
    assert!(field(&held, "inotify") >= 1, "the waiter keeps its inotify watch: {held}");
}

#[test]
fn a_waiter_rung_once_a_change_is_visible_does_not_look_between_wake_ups() {
    // A wake-up on the WAL may come before its commit is visible, so such a waiter looks again
    // 250 µs later and backs off from there, doubling; the board's bell and word move after the
    // commit, so a waiter woken by them has nothing to look for before its longest backoff
    // (60 s here). Over the 300 ms it waits, the doubling pauses would make about ten looks.
    for wakeups in ["native", "portable"] {
        let held = hand_over_to(wakeups);
        assert_eq!(field(&held, "quiet"), 0, "{wakeups} wake-ups: looks that no wake-up caused: {held}");
        assert!(field(&held, "woken") >= 1, "{wakeups} wake-ups: the release woke the waiter: {held}");
    }
}

#[test]
fn a_lock_waits_again_on_the_wake_ups_of_its_last_wait() {
    // Closing an inotify descriptor waits out a kernel grace period, so a lock keeps its sources
    // for its next wait instead of making new ones: its second wait opens no second watch.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = Store::open(&path).unwrap();
    let lock = Lock::new(&store, KEY, "parent", SLOW_POLLING).unwrap();
    let mut guard = lock.acquire(PATIENCE).unwrap();
    let mut waiter = Child::spawn_with_env(
        "waiter",
        "waits",
        &[path.to_str().unwrap()],
        &[("LIBLEASE_WAKEUPS", "native")],
    );
    let mut most = Vec::new();
    for _ in 0..2 {
        waiter.send("wait");
        waiter.expect("WAITING");
        // While the waiter waits, count its watches for a while.
        let mut seen = 0;
        for _ in 0..50 {
            seen = seen.max(descriptors(waiter.pid(), "inotify"));
            std::thread::sleep(Duration::from_millis(10));
        }
        most.push(seen);
        guard.release().unwrap();
        waiter.expect("HELD");
        waiter.send("release");
        waiter.expect("RELEASED");
        guard = lock.acquire(PATIENCE).unwrap();
    }
    drop(guard);
    waiter.finish();
    assert_eq!(most, [1, 1], "inotify descriptors of the waiter during its first and second wait");
}

#[test]
fn a_waiter_wakes_to_liblease_commits_not_to_every_write_of_the_wal() {
    // A waiter on a file with a board is rung once a liblease commit is visible; other writes
    // of the WAL (a program without liblease, or the several writes of one commit) would only
    // wake it too early. The lease row is written by liblease alone.
    let held = hand_over_after("native", |path| {
        let other = rusqlite::Connection::open(path).unwrap();
        other.execute_batch("CREATE TABLE notes (text)").unwrap();
        for _ in 0..20 {
            other.execute("INSERT INTO notes VALUES ('not liblease')", []).unwrap();
        }
    });
    assert!(field(&held, "woken") <= 2, "the release woke the waiter, the 21 other commits did not: {held}");
}
