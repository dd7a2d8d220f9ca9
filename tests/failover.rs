//! Taking over from a crashed holder before its lease runs out, with real processes: the test
//! binary runs itself again as the holder (see `child_process`, and `tests/support`).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use lease::{Lock, LockOptions, Store};
use support::child::{say, Child};

/// Long enough that waiting for expiry would fail the test: only liveness can explain a takeover.
const LONG_LEASE: LockOptions = LockOptions {
    lease: Duration::from_secs(120),
    renew_every: Duration::from_secs(30),
    max_backoff: Duration::from_millis(50),
};

/// Run as a child by the tests below; does nothing in a normal test run.
#[test]
#[ignore = "not a test: the other process of the tests below, which run it with --ignored"]
fn child_process() {
    support::child::run_role(&[("holder", holder)]);
}

/// `holder <database>`: takes the lease, says `HELD`, and holds it until killed.
fn holder(args: &[String]) {
    let [path] = args else { panic!("expected <database>, got {args:?}") };
    let store = Store::open(path).unwrap();
    let _guard = Lock::new(&store, "sync", "crashing holder", LONG_LEASE).unwrap().try_acquire().unwrap();
    say("HELD");
    std::thread::sleep(Duration::from_secs(600));
}

/// A holder of the lease on the database at `path`, once it holds it.
fn spawn_holder(path: &Path) -> Child {
    let mut holder = Child::spawn("holder", "holder", &[path.to_str().expect("a UTF-8 path")]);
    holder.expect("HELD");
    holder
}

#[test]
fn a_waiter_takes_over_from_a_killed_holder_long_before_its_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("failover.db");
    let holder = spawn_holder(&path);
    let store = Store::open(&path).unwrap();
    let lock = Lock::new(&store, "sync", "waiter", LONG_LEASE).unwrap();
    assert!(lock.try_acquire().is_err(), "the holder has it");

    let waiter = std::thread::spawn(move || {
        let guard = lock.acquire(Duration::from_secs(60)).unwrap();
        (Instant::now(), guard.generation(), guard.is_dirty())
    });
    std::thread::sleep(Duration::from_millis(200)); // the waiter is waiting
    holder.signal(libc::SIGKILL);
    let killed = Instant::now();
    drop(holder);
    let (taken, generation, dirty) = waiter.join().unwrap();
    assert!(taken >= killed, "taken only after the holder died");
    assert!(taken - killed < LONG_LEASE.lease / 4, "taken over by liveness, not by expiry");
    assert_eq!(generation, 2);
    assert!(dirty);
}

#[test]
fn a_stopped_holder_is_alive_and_its_lease_is_respected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stopped.db");
    let holder = spawn_holder(&path);
    holder.signal(libc::SIGSTOP);
    let store = Store::open(&path).unwrap();
    let lock = Lock::new(&store, "sync", "waiter", LONG_LEASE).unwrap();
    let waited = lock.acquire(Duration::from_millis(300));
    assert!(matches!(waited, Err(lease::Error::Timeout(_))), "a suspended holder is not dead: {waited:?}");
    drop(holder); // killed
    drop(lock.acquire(Duration::from_secs(60)).unwrap());
}
