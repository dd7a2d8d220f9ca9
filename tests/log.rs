//! The log (`lease::log`): what the locks say, with real processes for the holders that die or
//! stop. The sink is process-wide, so the cases run one at a time (see `Heard`).

#![cfg(unix)]

mod support;

use std::io::BufRead;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lease::log::{self, Level};
use lease::{Database, Holder, Lock, LockOptions, ManualClock, Store, StoreOptions};
use support::child::{run_role, say, Child, PATIENCE};

#[test]
#[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
fn child_process() {
    run_role(&[("holder", holder)]);
}

/// `holder <path> <lease_ms>`: holds "sync" as 'child', says `HELD`, and waits.
fn holder(args: &[String]) {
    let store = Store::open(Path::new(&args[0])).unwrap();
    let lease = Duration::from_millis(args[1].parse().unwrap());
    let options = LockOptions { lease, renew_every: lease / 3, max_backoff: Duration::from_millis(10) };
    let _guard = Lock::new(&store, "sync", "child", options).unwrap().acquire(PATIENCE).unwrap();
    say("HELD");
    for _ in std::io::stdin().lock().lines() {}
}

/// The messages heard at `level` and more severe while it lives; one at a time in this process.
struct Heard {
    messages: Arc<Mutex<Vec<(Level, String)>>>,
    _alone: MutexGuard<'static, ()>,
}

static ALONE: Mutex<()> = Mutex::new(());

impl Heard {
    fn at(level: Level) -> Heard {
        let alone = ALONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        log::set_sink(
            level,
            Some(Box::new(move |level, message| sink.lock().unwrap().push((level, message.to_owned())))),
        );
        Heard { messages, _alone: alone }
    }

    /// The messages at `level` that contain every one of `words`.
    fn said(&self, level: Level, words: &[&str]) -> Vec<String> {
        let messages = self.messages.lock().unwrap();
        messages
            .iter()
            .filter(|(at, message)| *at == level && words.iter().all(|word| message.contains(word)))
            .map(|(_, message)| message.clone())
            .collect()
    }

    fn all(&self) -> Vec<(Level, String)> {
        self.messages.lock().unwrap().clone()
    }
}

impl Drop for Heard {
    fn drop(&mut self) {
        log::set_sink(Level::Error, None);
    }
}

const QUICK: LockOptions = LockOptions {
    lease: Duration::from_millis(600),
    renew_every: Duration::from_millis(200),
    max_backoff: Duration::from_millis(10),
};

#[test]
fn acquiring_and_releasing_say_so_with_the_file_the_key_the_generation_and_dirtiness() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("said.db");
    let heard = Heard::at(Level::Info);
    let store = Store::open(&path).unwrap();
    let lock = Lock::new(&store, "sync", "app", LockOptions::DEFAULT).unwrap();
    lock.try_acquire().unwrap().release().unwrap();
    let file = path.display().to_string();
    let acquired = heard.said(Level::Info, &[&file, "'sync'", "acquired by 'app'", "generation 1", "dirty"]);
    assert_eq!(acquired.len(), 1, "{:?}", heard.all());
    assert_eq!(heard.said(Level::Info, &[&file, "'sync'", "released"]).len(), 1, "{:?}", heard.all());
    assert!(heard.said(Level::Debug, &[]).is_empty(), "nothing more verbose than asked for");
}

/// Linux and Android only: elsewhere a dead holder is not told apart from a live one (see
/// `liveness`), and its lease runs out instead.
#[test]
#[cfg(any(target_os = "linux", target_os = "android"))]
fn taking_over_from_a_killed_holder_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.db");
    let mut child = Child::spawn("holder", "holder", &[path.to_str().unwrap(), "60000"]);
    child.expect("HELD");
    let pid = child.pid();
    child.signal(libc::SIGKILL);
    let _ = child.wait();
    let heard = Heard::at(Level::Info);
    let lock = Lock::new(&Store::open(&path).unwrap(), "sync", "app", QUICK).unwrap();
    drop(lock.acquire(PATIENCE).unwrap());
    let from = format!("taken over from 'child' (pid {pid}), whose process ended");
    assert_eq!(heard.said(Level::Info, &["acquired by 'app'", &from]).len(), 1, "{:?}", heard.all());
}

#[test]
fn taking_over_from_a_stopped_holder_says_its_lease_ran_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stopped.db");
    let mut child = Child::spawn("holder", "holder", &[path.to_str().unwrap(), "300"]);
    child.expect("HELD");
    let pid = child.pid();
    child.signal(libc::SIGSTOP);
    child.wait_until_stopped();
    let heard = Heard::at(Level::Info);
    let lock = Lock::new(&Store::open(&path).unwrap(), "sync", "app", QUICK).unwrap();
    drop(lock.acquire(PATIENCE).unwrap());
    let from = format!("taken over from 'child' (pid {pid}), whose lease ran out");
    assert_eq!(heard.said(Level::Info, &["acquired by 'app'", &from]).len(), 1, "{:?}", heard.all());
    child.signal(libc::SIGCONT);
    child.finish();
}

#[test]
fn a_lost_lease_and_a_late_renewal_are_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lost.db");
    let clock = ManualClock::new(1_000_000, "boot");
    let options = StoreOptions { clock: Some(clock.clone()), holder: Some(Holder::new().unwrap()) };
    let store = Store::open_with(Some(&path), options).unwrap();
    let heard = Heard::at(Level::Warn);
    let slow = LockOptions {
        lease: Duration::from_secs(10),
        renew_every: Duration::from_millis(200),
        max_backoff: Duration::from_millis(10),
    };
    let guard = Lock::new(&store, "sync", "app", slow).unwrap().try_acquire().unwrap();
    // The clock jumps by most of the lease before the heartbeat's first renewal: it comes late.
    clock.advance(Duration::from_secs(8));
    let deadline = std::time::Instant::now() + PATIENCE;
    while heard.said(Level::Warn, &["'sync'", "a renewal came", "ms late"]).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no late renewal said: {:?}", heard.all());
        std::thread::sleep(Duration::from_millis(10));
    }
    // Then past the whole lease: lost.
    clock.advance(Duration::from_secs(60));
    while guard.check().is_ok() {
        assert!(std::time::Instant::now() < deadline, "never lost");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(heard.said(Level::Warn, &["'sync'", "the lease is lost"]).len(), 1, "{:?}", heard.all());
}

#[test]
fn releasing_a_lease_taken_over_meanwhile_says_there_was_nothing_to_give_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("taken.db");
    let clock = ManualClock::new(1_000_000, "boot");
    let store = |label| {
        let options = StoreOptions { clock: Some(clock.clone()), holder: Some(Holder::new().unwrap()) };
        (Store::open_with(Some(&path), options).unwrap(), label)
    };
    let ((first, app), (second, extension)) = (store("app"), store("extension"));
    let heard = Heard::at(Level::Info);
    let guard = Lock::new(&first, "sync", app, QUICK).unwrap().try_acquire().unwrap();
    clock.advance(Duration::from_secs(60));
    let other = Lock::new(&second, "sync", extension, QUICK).unwrap().try_acquire().unwrap();
    assert!(guard.check().is_err(), "taken over");
    guard.release().unwrap_or_default();
    let file = path.display().to_string();
    let nothing =
        heard.said(Level::Info, &[&file, "'sync'", "released a lost lease", "nothing to give back"]);
    assert_eq!(nothing.len(), 1, "{:?}", heard.all());
    other.release().unwrap();
    assert_eq!(heard.said(Level::Info, &["'sync'", "released"]).len(), 2, "{:?}", heard.all());
}

#[test]
fn a_foreign_board_file_is_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.db");
    let foreign: Vec<u8> = b"NOTOURS!".iter().copied().cycle().take(4096).collect();
    std::fs::write(format!("{}-liblease", path.display()), foreign).unwrap();
    let heard = Heard::at(Level::Warn);
    Database::open(&path).unwrap();
    assert_eq!(heard.said(Level::Warn, &["-liblease", "not a liblease board"]).len(), 1, "{:?}", heard.all());
}

#[test]
fn with_no_sink_nothing_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let heard = Heard::at(Level::Debug);
    log::set_sink(Level::Debug, None);
    let store = Store::open(dir.path().join("quiet.db")).unwrap();
    Lock::new(&store, "sync", "app", LockOptions::DEFAULT).unwrap().try_acquire().unwrap().release().unwrap();
    assert!(heard.all().is_empty(), "{:?}", heard.all());
}
