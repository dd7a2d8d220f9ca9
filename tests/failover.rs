//! Taking over from a crashed holder before its lease runs out, with real processes: the test
//! binary runs itself again as the holder (see `holder_process`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lease::{Lock, LockOptions, Store};

/// Long enough that waiting for expiry would fail the test: only liveness can explain a takeover.
const LONG_LEASE: LockOptions = LockOptions {
    lease: Duration::from_secs(120),
    renew_every: Duration::from_secs(30),
    max_backoff: Duration::from_millis(50),
};

const HOLDER_DB: &str = "LEASE_TEST_HOLDER_DB";

/// Run as a child by the tests below (it does nothing in a normal test run): takes the lease,
/// says so, and holds it until killed.
#[test]
#[ignore = "not a test: the other process of the tests below, which run it with --ignored"]
fn holder_process() {
    let Ok(path) = std::env::var(HOLDER_DB) else { return };
    let store = Store::open(path).unwrap();
    let _guard = Lock::new(&store, "sync", "crashing holder", LONG_LEASE).unwrap().try_acquire().unwrap();
    println!("HELD");
    std::thread::sleep(Duration::from_secs(600));
}

/// The holder's process; killed and reaped however the test ends.
struct Holder(std::process::Child);

impl Holder {
    fn spawn(path: &std::path::Path) -> Holder {
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "holder_process", "--ignored", "--nocapture", "--test-threads=1"])
            .env(HOLDER_DB, path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut holder = Holder(child);
        let stdout = BufReader::new(holder.0.stdout.take().unwrap());
        for line in stdout.lines() {
            if line.unwrap().contains("HELD") {
                return holder;
            }
        }
        panic!("the holder process never took the lease");
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: signals a child process this test owns and has not reaped.
        assert_eq!(unsafe { libc::kill(self.0.id() as libc::pid_t, signal) }, 0);
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_waiter_takes_over_from_a_killed_holder_long_before_its_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("failover.db");
    let holder = Holder::spawn(&path);
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
    let holder = Holder::spawn(&path);
    holder.signal(libc::SIGSTOP);
    let store = Store::open(&path).unwrap();
    let lock = Lock::new(&store, "sync", "waiter", LONG_LEASE).unwrap();
    let waited = lock.acquire(Duration::from_millis(300));
    assert!(matches!(waited, Err(lease::Error::Timeout(_))), "a suspended holder is not dead: {waited:?}");
    drop(holder); // killed
    drop(lock.acquire(Duration::from_secs(60)).unwrap());
}
