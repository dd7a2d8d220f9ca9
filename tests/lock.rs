//! The lock's rules, through the public Rust API. Time is a `ManualClock` wherever expiry matters;
//! other processes are played by other `Holder` values (the real multi-process tests are in
//! `multiprocess.rs`).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use lease::{Error, Holder, Lock, LockOptions, ManualClock, Store, StoreOptions};
use support::eventually;

const SECOND: Duration = Duration::from_secs(1);

/// A 10 s lease whose heartbeat comes every 5 s of real time: out of the way of a test that moves
/// a manual clock, unless the test asks for a faster one.
const SLOW_HEARTBEAT: LockOptions = LockOptions {
    lease: Duration::from_secs(10),
    renew_every: Duration::from_secs(5),
    max_backoff: Duration::from_millis(20),
};

/// A database file shared by the simulated processes of one test.
struct World {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
}

impl World {
    fn new() -> World {
        World { dir: tempfile::tempdir().unwrap(), clock: ManualClock::new(1_000_000, "boot-1") }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("shared.db")
    }

    /// A store of a new simulated process.
    fn process(&self) -> Store {
        self.store_of(Holder::new().unwrap())
    }

    fn store_of(&self, process: Arc<Holder>) -> Store {
        let options = StoreOptions { clock: Some(self.clock.clone()), holder: Some(process) };
        Store::open_with(Some(&self.path()), options).unwrap()
    }

    fn lock(&self, store: &Store, label: &str, options: LockOptions) -> Lock {
        Lock::new(store, "sync", label, options).unwrap()
    }

    fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path()).unwrap()
    }
}

fn is_busy<T: std::fmt::Debug>(result: lease::Result<T>) -> bool {
    matches!(result, Err(Error::Busy(_)))
}

#[test]
fn a_free_lease_is_taken_and_excludes_other_processes_until_released() {
    let world = World::new();
    let (app, extension) = (world.process(), world.process());
    let app_lock = world.lock(&app, "app", SLOW_HEARTBEAT);
    let extension_lock = world.lock(&extension, "extension", SLOW_HEARTBEAT);

    let guard = app_lock.try_acquire().unwrap();
    assert_eq!(guard.generation(), 1);
    assert!(guard.is_dirty(), "the first acquisition in a process is dirty");
    guard.check().unwrap();
    assert!(is_busy(extension_lock.try_acquire()));

    drop(guard);
    // Given back at once: no clock movement is needed for the other process to take it.
    let guard = extension_lock.try_acquire().unwrap();
    assert_eq!(guard.generation(), 2, "a different holder took it");
    assert!(guard.is_dirty());
}

#[test]
fn two_processes_with_the_same_label_still_exclude_each_other() {
    let world = World::new();
    let first = world.lock(&world.process(), "same", SLOW_HEARTBEAT);
    let second = world.lock(&world.process(), "same", SLOW_HEARTBEAT);
    let _guard = first.try_acquire().unwrap();
    assert!(is_busy(second.try_acquire()));
}

#[test]
fn the_lock_is_reentrant_within_a_process_across_handles_threads_and_path_spellings() {
    let world = World::new();
    let process = Holder::new().unwrap();
    let store = world.store_of(process.clone());
    let first = world.lock(&store, "app", SLOW_HEARTBEAT);
    let guard = first.try_acquire().unwrap();

    // Another handle, another store of the same file under another spelling, another thread.
    let options = StoreOptions { clock: Some(world.clock.clone()), holder: Some(process) };
    let respelled = world.dir.path().join(".").join("shared.db");
    let other_store = Store::open_with(Some(&respelled), options).unwrap();
    let second = Lock::new(&other_store, "sync", "app-thread", SLOW_HEARTBEAT).unwrap();
    let other_guard = std::thread::spawn(move || second.try_acquire().unwrap()).join().unwrap();
    assert_eq!(other_guard.generation(), guard.generation());
    assert!(!other_guard.is_dirty(), "a re-entrant acquisition is never dirty");

    // Held while any guard lives; given back when the last one goes.
    let rival = world.lock(&world.process(), "rival", SLOW_HEARTBEAT);
    drop(guard);
    assert!(is_busy(rival.try_acquire()));
    drop(other_guard);
    drop(rival.try_acquire().unwrap());
}

#[test]
fn the_same_process_taking_the_lease_again_is_not_dirty_and_keeps_the_generation() {
    let world = World::new();
    let lock = world.lock(&world.process(), "app", SLOW_HEARTBEAT);
    let first = lock.try_acquire().unwrap();
    let generation = first.generation();
    drop(first);
    let again = lock.try_acquire().unwrap();
    assert_eq!(again.generation(), generation);
    assert!(!again.is_dirty(), "nobody else held it in between");
}

#[test]
fn an_expired_lease_is_taken_over_and_the_old_holder_sees_it_lost() {
    let world = World::new();
    let holder = world.lock(&world.process(), "app", SLOW_HEARTBEAT);
    let guard = holder.try_acquire().unwrap();
    let waiter = world.lock(&world.process(), "extension", SLOW_HEARTBEAT);

    world.clock.advance(SLOW_HEARTBEAT.lease - Duration::from_millis(1));
    assert!(is_busy(waiter.try_acquire()), "not yet expired");
    guard.check().unwrap();

    // The machine slept, or the holder was suspended, past the lease.
    world.clock.advance(Duration::from_millis(1));
    assert!(matches!(guard.check(), Err(Error::Lost(_))), "a guard never claims more than it knows");
    let taken = waiter.try_acquire().unwrap();
    assert_eq!(taken.generation(), guard.generation() + 1);
    assert!(matches!(guard.check(), Err(Error::Lost(_))), "lost is for good");
}

#[test]
fn a_lease_past_its_expiry_is_lost_even_if_nobody_took_it_and_the_next_hold_is_dirty() {
    let world = World::new();
    let lock = world.lock(&world.process(), "app", SLOW_HEARTBEAT);
    let guard = lock.try_acquire().unwrap();
    let generation = guard.generation();
    world.clock.advance(SLOW_HEARTBEAT.lease * 2);
    assert!(matches!(guard.check(), Err(Error::Lost(_))));

    let fresh = lock.try_acquire().unwrap();
    assert!(fresh.is_dirty(), "the process cannot know that nobody held it meanwhile");
    assert_eq!(fresh.generation(), generation, "nobody else did, so the generation stays");
    fresh.check().unwrap();
    assert!(matches!(guard.check(), Err(Error::Lost(_))), "the old guard does not come back");
    // The old guard's release must not give back the new hold.
    drop(guard);
    assert!(is_busy(world.lock(&world.process(), "rival", SLOW_HEARTBEAT).try_acquire()));
}

#[test]
fn a_lease_of_an_earlier_boot_is_expired() {
    let world = World::new();
    let guard = world.lock(&world.process(), "app", SLOW_HEARTBEAT).try_acquire().unwrap();
    // After a reboot the boot clock starts near zero: the stored expiry (about 1000 s) would look
    // far in the future if the boot were not compared.
    world.clock.reboot("boot-2", 5);
    assert!(matches!(guard.check(), Err(Error::Lost(_))));
    let taken = world.lock(&world.process(), "extension", SLOW_HEARTBEAT).try_acquire().unwrap();
    assert_eq!(taken.generation(), 2);
}

#[test]
fn the_heartbeat_renews_a_held_lease_before_it_expires() {
    let world = World::new();
    let options = LockOptions { renew_every: Duration::from_millis(20), ..SLOW_HEARTBEAT };
    let store = world.process();
    let guard = world.lock(&store, "app", options).try_acquire().unwrap();
    let first_expiry = store.lease_row("sync").unwrap().unwrap().expires_ms;

    world.clock.advance(Duration::from_secs(6));
    let expiry = || store.lease_row("sync").unwrap().unwrap().expires_ms;
    eventually("a renewal after the clock moved", || expiry() > first_expiry);
    // The renewal is in the database a moment before the heartbeat has noted it; a later
    // renewal comes only after that.
    world.clock.advance(Duration::from_millis(1));
    let renewed = expiry();
    eventually("a later renewal", || expiry() > renewed);
    // Past the first expiry, the renewed lease still holds and still excludes.
    world.clock.advance(Duration::from_secs(6));
    guard.check().unwrap();
    assert!(is_busy(world.lock(&world.process(), "rival", options).try_acquire()));
}

#[test]
fn a_changed_row_makes_the_hold_lost_and_the_lost_callback_fires_once() {
    let world = World::new();
    let options = LockOptions { renew_every: Duration::from_millis(10), ..SLOW_HEARTBEAT };
    let lock = world.lock(&world.process(), "app", options);
    let calls = Arc::new(AtomicUsize::new(0));
    let (keys, key_received) = mpsc::channel();
    let counter = calls.clone();
    lock.set_lost_callback(Some(Box::new(move |key: &str| {
        counter.fetch_add(1, Ordering::SeqCst);
        keys.send((key.to_owned(), std::thread::current().name().map(str::to_owned))).unwrap();
    })))
    .unwrap();
    let guard = lock.try_acquire().unwrap();

    // Someone rewrote the row: the renewal must not silently take it back.
    world
        .raw()
        .execute("UPDATE liblease_lease SET holder = 'intruder', generation = generation + 1", [])
        .unwrap();
    let (key, thread) = key_received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(key, "sync");
    assert_eq!(thread.as_deref(), Some(lease::runtime::THREAD_NAME));
    assert!(matches!(guard.check(), Err(Error::Lost(_))));
    let row = world.store_of(Holder::new().unwrap()).lease_row("sync").unwrap().unwrap();
    assert_eq!(row.holder_id, "intruder", "the heartbeat did not take the lease back");

    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the callback fires once");
}

#[test]
fn the_heartbeat_finding_its_lease_expired_marks_it_lost_and_calls_back() {
    let world = World::new();
    let options = LockOptions { renew_every: Duration::from_millis(10), ..SLOW_HEARTBEAT };
    let lock = world.lock(&world.process(), "app", options);
    let (lost, lost_received) = mpsc::channel();
    lock.set_lost_callback(Some(Box::new(move |_: &str| lost.send(()).unwrap()))).unwrap();
    let guard = lock.try_acquire().unwrap();
    // As if the process had been suspended: the next heartbeat finds the lease run out.
    world.clock.advance(SLOW_HEARTBEAT.lease);
    lost_received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(matches!(guard.check(), Err(Error::Lost(_))));
}

#[test]
fn no_callback_runs_after_it_is_cleared() {
    let world = World::new();
    let options = LockOptions { renew_every: Duration::from_millis(10), ..SLOW_HEARTBEAT };
    let lock = world.lock(&world.process(), "app", options);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    lock.set_lost_callback(Some(Box::new(move |_: &str| {
        counter.fetch_add(1, Ordering::SeqCst);
    })))
    .unwrap();
    let guard = lock.try_acquire().unwrap();
    lock.set_lost_callback(None).unwrap();
    world.clock.advance(SLOW_HEARTBEAT.lease);
    eventually("the heartbeat notices", || guard.check().is_err());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn acquire_waits_for_a_release_and_times_out_while_held() {
    let world = World::new();
    let holder = world.lock(&world.process(), "app", SLOW_HEARTBEAT);
    let waiter = world.lock(&world.process(), "extension", SLOW_HEARTBEAT);
    let guard = holder.try_acquire().unwrap();

    let started = Instant::now();
    assert!(matches!(waiter.acquire(Duration::from_millis(50)), Err(Error::Timeout(_))));
    assert!(started.elapsed() >= Duration::from_millis(50), "it waited for its whole timeout");

    let (released_tx, released) = mpsc::channel();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        released_tx.send(Instant::now()).unwrap();
        drop(guard);
    });
    let taken = waiter.acquire(Duration::from_secs(30)).unwrap();
    let taken_at = Instant::now();
    release.join().unwrap();
    assert!(taken_at >= released.recv().unwrap(), "taken only after the release");
    assert_eq!(taken.generation(), 2);
}

#[test]
fn acquire_async_calls_back_once_on_the_library_thread() {
    let world = World::new();
    let holder = world.lock(&world.process(), "app", SLOW_HEARTBEAT);
    let waiter = world.lock(&world.process(), "extension", SLOW_HEARTBEAT);
    let guard = holder.try_acquire().unwrap();

    let (done, outcome) = mpsc::channel();
    let timed_out = done.clone();
    let _short = waiter
        .acquire_async(Duration::from_millis(30), move |result| {
            timed_out.send(("short", result.map(|g| g.generation()), thread_name())).unwrap()
        })
        .unwrap();
    let (_, result, thread) = outcome.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(matches!(result, Err(Error::Timeout(_))));
    assert_eq!(thread.as_deref(), Some(lease::runtime::THREAD_NAME));

    let _long = waiter
        .acquire_async(Duration::from_secs(30), move |result| {
            done.send(("long", result.map(|g| g.generation()), thread_name())).unwrap()
        })
        .unwrap();
    drop(guard);
    let (which, result, _) = outcome.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((which, result), ("long", Ok(2)));
    assert!(outcome.recv_timeout(Duration::from_millis(100)).is_err(), "each callback runs once");
}

fn thread_name() -> Option<String> {
    std::thread::current().name().map(str::to_owned)
}

#[test]
fn a_busy_database_is_busy_for_try_acquire_and_waited_out_by_acquire() {
    let world = World::new();
    let lock = world.lock(&world.process(), "app", SLOW_HEARTBEAT);
    let writer = world.raw();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();

    assert!(is_busy(lock.try_acquire()), "try_acquire never waits");
    let commit = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        writer.execute_batch("COMMIT").unwrap();
    });
    drop(lock.acquire(Duration::from_secs(30)).unwrap());
    commit.join().unwrap();
}

#[test]
fn a_held_lease_survives_another_connection_holding_the_write_lock_for_a_second() {
    // Real time: the lease must outlast a one-second write transaction of someone else.
    let store = Store::open(tempfile::tempdir().unwrap().keep().join("busy.db")).unwrap();
    let lock = Lock::new(&store, "sync", "app", LockOptions::DEFAULT).unwrap();
    let guard = lock.try_acquire().unwrap();
    let writer = rusqlite::Connection::open(store.path().unwrap()).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE; CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
    let until = Instant::now() + SECOND;
    while Instant::now() < until {
        guard.check().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    writer.execute_batch("COMMIT").unwrap();
    guard.check().unwrap();
}

#[test]
fn bad_options_and_keys_are_invalid_arguments() {
    let store = Store::open_in_memory().unwrap();
    let invalid =
        |options: LockOptions| matches!(Lock::new(&store, "k", "l", options), Err(Error::InvalidArgument(_)));
    let zero = Duration::ZERO;
    assert!(invalid(LockOptions { lease: zero, ..LockOptions::DEFAULT }));
    assert!(invalid(LockOptions { renew_every: zero, ..LockOptions::DEFAULT }));
    assert!(invalid(LockOptions { max_backoff: zero, ..LockOptions::DEFAULT }));
    assert!(invalid(LockOptions { renew_every: LockOptions::DEFAULT.lease, ..LockOptions::DEFAULT }));
    assert!(matches!(Lock::new(&store, "", "l", LockOptions::DEFAULT), Err(Error::InvalidArgument(_))));
}

#[test]
fn in_memory_stores_work_and_are_independent() {
    let (first, second) = (Store::open_in_memory().unwrap(), Store::open_in_memory().unwrap());
    let a = Lock::new(&first, "k", "a", LockOptions::DEFAULT).unwrap().try_acquire().unwrap();
    let b = Lock::new(&second, "k", "b", LockOptions::DEFAULT).unwrap().try_acquire().unwrap();
    assert!(a.is_dirty() && b.is_dirty());
    assert_eq!(first.path(), None);
}

#[test]
fn a_corrupt_file_is_a_database_error_with_sqlites_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    match Store::open(&path) {
        Err(Error::Database(message)) => assert!(message.contains("not a database"), "{message}"),
        other => panic!("expected a database error, got {:?}", other.err()),
    }
}

#[test]
fn a_lease_table_from_a_newer_liblease_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    drop(Store::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE liblease_schema SET version = 99", [])
        .unwrap();
    match Store::open(&path) {
        Err(Error::Database(message)) => assert!(message.contains("newer"), "{message}"),
        other => panic!("expected a database error, got {:?}", other.err()),
    }
}

#[test]
fn opening_an_existing_store_keeps_its_leases() {
    let world = World::new();
    let guard = world.lock(&world.process(), "app", SLOW_HEARTBEAT).try_acquire().unwrap();
    // A late-starting process opens the same file: the schema is current, the lease still held.
    assert!(is_busy(world.lock(&world.process(), "late", SLOW_HEARTBEAT).try_acquire()));
    drop(guard);
}

#[test]
fn a_forked_child_may_not_use_the_parents_handles() {
    let store = Store::open_in_memory().unwrap();
    let lock = Lock::new(&store, "k", "parent", LockOptions::DEFAULT).unwrap();
    let guard = lock.try_acquire().unwrap();
    // SAFETY: the child only calls liblease (which must refuse without touching shared state),
    // drops the handles (which must leak, not free) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let refused = |r: lease::Result<()>| matches!(r, Err(Error::Misuse(_)));
        let ok = refused(lock.try_acquire().map(drop))
            && refused(guard.check())
            && refused(Lock::new(&store, "k", "child", LockOptions::DEFAULT).map(drop));
        drop((guard, lock, store));
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status}");
    guard.check().unwrap();
}

#[test]
fn a_cancelled_asynchronous_acquisition_calls_back_with_cancelled_and_takes_nothing() {
    let world = World::new();
    let holder = world.lock(&world.process(), "app", SLOW_HEARTBEAT);
    let waiter = world.lock(&world.process(), "extension", SLOW_HEARTBEAT);
    let guard = holder.try_acquire().unwrap();
    let (done, outcome) = mpsc::channel();
    let pending = waiter
        .acquire_async(Duration::from_secs(60), move |result| done.send(result.map(drop)).unwrap())
        .unwrap();
    pending.cancel().unwrap();
    assert!(matches!(outcome.recv_timeout(Duration::from_secs(10)).unwrap(), Err(Error::Cancelled(_))));
    drop(guard);
    // Nothing keeps waiting on the cancelled acquisition's behalf: the lease stays free.
    std::thread::sleep(Duration::from_millis(100));
    let rival = world.lock(&world.process(), "rival", SLOW_HEARTBEAT).try_acquire().unwrap();
    assert_eq!(rival.generation(), 2, "taken from the first holder, not from a cancelled waiter");
    pending.cancel().unwrap(); // after the end: harmless
}

#[test]
fn after_every_handle_of_a_file_closed_the_next_acquisition_is_dirty() {
    // The file may have been deleted and made again meanwhile, even with the same inode: the
    // process keeps nothing of a file it no longer has open, so it cannot mistake the new one.
    let world = World::new();
    let process = Holder::new().unwrap();
    let lock = world.lock(&world.store_of(process.clone()), "app", SLOW_HEARTBEAT);
    drop(lock.try_acquire().unwrap());
    assert!(!lock.try_acquire().unwrap().is_dirty(), "while the file is open, the process remembers");
    drop(lock);
    let again = world.lock(&world.store_of(process), "app", SLOW_HEARTBEAT).try_acquire().unwrap();
    assert!(again.is_dirty());
}

/// The lease's own writes make the WAL grow too; its checkpoint runs on the library's thread, so
/// that no release waits for it, and the WAL stops growing.
#[test]
fn a_lock_alone_keeps_the_wal_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locks.db");
    let lock = Lock::new(&Store::open(&path).unwrap(), "sync", "app", LockOptions::DEFAULT).unwrap();
    for _ in 0..3000 {
        drop(lock.try_acquire().unwrap());
    }
    // 6000 commits of one 4 KiB page: about 24 MiB of WAL if it were never checkpointed.
    let wal = || std::fs::metadata(format!("{}-wal", path.display())).unwrap().len();
    eventually("the WAL checkpointed and reused", || wal() < 8 << 20);
}

/// Drops the lock it owns when it is dropped: a language binding's callback object that holds
/// the last reference to its own lock.
struct OwnsTheLock(Arc<std::sync::Mutex<Option<Lock>>>);

impl Drop for OwnsTheLock {
    fn drop(&mut self) {
        drop(self.0.lock().unwrap().take());
    }
}

#[test]
fn a_callback_that_replaces_itself_and_owned_the_last_lock_handle_frees_it_without_deadlock() {
    let world = World::new();
    let lock = Arc::new(std::sync::Mutex::new(Some(world.lock(&world.process(), "app", SLOW_HEARTBEAT))));
    let (done, finished) = mpsc::channel();
    let slot = lock.clone();
    let owner = OwnsTheLock(lock.clone());
    let callback = move |_: &str| {
        let _keep = &owner;
        // Replaced from inside itself: this callback (and the lock it owns) goes when it returns.
        if let Some(lock) = slot.lock().unwrap().as_ref() {
            lock.set_lost_callback(None).unwrap();
        }
        done.send(()).unwrap();
    };
    let guard = {
        let slot = lock.lock().unwrap();
        let lock = slot.as_ref().unwrap();
        lock.set_lost_callback(Some(Box::new(callback))).unwrap();
        lock.try_acquire().unwrap()
    };
    world.clock.advance(SLOW_HEARTBEAT.lease);
    assert!(matches!(guard.check(), Err(Error::Lost(_))));
    finished.recv_timeout(Duration::from_secs(10)).unwrap();
    // The callback's drop freed the lock on the library's thread; had it waited for its own
    // call to end, the thread would never serve anything again.
    eventually("the callback's drop freed the lock", || lock.try_lock().is_ok_and(|lock| lock.is_none()));
    let (served, was_served) = mpsc::channel();
    let other = world.lock(&world.process(), "other", SLOW_HEARTBEAT);
    let _pending = other.acquire_async(SECOND, move |result| served.send(result.is_ok()).unwrap()).unwrap();
    assert!(was_served.recv_timeout(Duration::from_secs(10)).unwrap(), "the library's thread still works");
}

#[test]
fn an_asynchronous_acquisition_cancelled_before_it_started_writes_nothing() {
    let world = World::new();
    let store = world.process();
    let lock = world.lock(&store, "app", SLOW_HEARTBEAT);
    drop(lock.try_acquire().unwrap());
    let before = store.lease_row("sync").unwrap().unwrap();
    // Keep the library's thread busy in a lost callback of another key, so that the acquisition
    // below cannot start before it is cancelled.
    let (unblock, blocked) = mpsc::channel::<()>();
    let blocked = std::sync::Mutex::new(blocked);
    let (entered, is_entered) = mpsc::channel();
    let blocker = Lock::new(&world.process(), "blocker", "blocker", SLOW_HEARTBEAT).unwrap();
    blocker
        .set_lost_callback(Some(Box::new(move |_: &str| {
            entered.send(()).unwrap();
            blocked.lock().unwrap().recv().unwrap();
        })))
        .unwrap();
    let blocker_guard = blocker.try_acquire().unwrap();
    world.clock.advance(SLOW_HEARTBEAT.lease);
    assert!(blocker_guard.check().is_err());
    is_entered.recv_timeout(Duration::from_secs(10)).unwrap();

    let (done, outcome) = mpsc::channel();
    let pending =
        lock.acquire_async(SECOND, move |result| done.send(result.map(|g| g.generation())).unwrap()).unwrap();
    pending.cancel().unwrap();
    unblock.send(()).unwrap();
    let result = outcome.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(matches!(result, Err(Error::Cancelled(_))), "{result:?}");
    let after = store.lease_row("sync").unwrap().unwrap();
    assert_eq!((after.hold, after.expires_ms), (before.hold, before.expires_ms), "no attempt was made");
}
