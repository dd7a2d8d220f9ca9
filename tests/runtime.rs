//! The library's thread: started only on need, stopped on request. In a test binary of its own,
//! because it observes process-wide state.

use std::time::Duration;

use lease::{runtime, Error, Lock, LockOptions, Store};

/// The threads named after the library, once the count has settled (a new thread names itself
/// when it starts running; a joined one is gone).
fn library_threads() -> usize {
    let mut count = count_library_threads();
    for _ in 0..1000 {
        std::thread::sleep(Duration::from_millis(1));
        let again = count_library_threads();
        if again == count && (count > 0) == runtime::is_running() {
            return count;
        }
        count = again;
    }
    count
}

fn count_library_threads() -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    tasks
        .filter(|task| {
            let comm = task.as_ref().unwrap().path().join("comm");
            std::fs::read_to_string(comm).unwrap().trim() == runtime::THREAD_NAME
        })
        .count()
}

#[test]
fn the_thread_starts_on_first_hold_only_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("lazy.db")).unwrap();
    let lock = Lock::new(&store, "sync", "app", LockOptions::DEFAULT).unwrap();
    assert!(!runtime::is_running(), "opening a store and making a lock start no thread");
    assert_eq!(library_threads(), 0);

    let guard = lock.try_acquire().unwrap();
    assert!(runtime::is_running());
    assert_eq!(library_threads(), 1, "one thread, whatever is held");
    let second = Lock::new(&store, "other", "app", LockOptions::DEFAULT).unwrap().try_acquire().unwrap();
    assert_eq!(library_threads(), 1);

    assert!(matches!(runtime::shutdown(), Err(Error::Misuse(_))), "not while leases are held");
    drop((guard, second));
    runtime::shutdown().unwrap();
    assert!(!runtime::is_running());
    assert_eq!(library_threads(), 0);

    // It comes back on next need, and a second shutdown with nothing running is harmless.
    let guard = lock.acquire(Duration::from_secs(5)).unwrap();
    assert_eq!(library_threads(), 1);
    drop(guard);
    runtime::shutdown().unwrap();
    runtime::shutdown().unwrap();
}
