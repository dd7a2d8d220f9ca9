//! The cross-process leased lock.
//!
//! A lock names a key in a store's lease table. Acquiring takes a time-limited lease on it in one
//! atomic statement; the heartbeat renews the lease while any guard is alive; dropping the last
//! guard gives it back at once. Within a process the lock is re-entrant across threads and
//! across `Lock` handles: while the process holds the lease, every acquisition of the same key in
//! the same database file succeeds at once. Exclusion is between processes.
//!
//! - `attempt.rs`: one attempt to take the lease; `acquisition.rs`: waiting between attempts.
//! - `inner.rs`: what a lock is, shared with its acquisitions under way.
//! - `hold.rs`: what the process holds, shared by its guards; `guard.rs`: the guards.
//! - `heartbeat.rs`: renewing a hold; `lost.rs`: telling the lock's owner that a hold was lost.
//! - `fence.rs`: transactions that write only under the lease; `options.rs`: the timings.

mod acquisition;
mod attempt;
mod fence;
mod guard;
mod heartbeat;
mod hold;
mod inner;
mod lost;
mod options;

use std::sync::Arc;
use std::time::Duration;

use acquisition::{Acquisition, Step};
use attempt::Attempt;
pub(crate) use fence::Fence;
pub use guard::Guard;
pub(crate) use hold::LeaseSlots;
use inner::LockInner;
pub use lost::Callback as LostCallback;
pub use options::LockOptions;

use crate::error::{Error, Result};
use crate::fork::Epoch;
use crate::runtime;
use crate::store::Store;

/// How long an asynchronous attempt may wait in the writer queue on the library's thread: long
/// enough to be seen by a chunked job, which then lets it in.
const ASYNC_QUEUE_STAY: Duration = Duration::from_millis(10);

/// A named lease in a store. Thread-safe.
pub struct Lock {
    inner: Arc<LockInner>,
}

impl Lock {
    /// A lock on `key` in `store`. `label` names this holder in the lease table, for diagnostics;
    /// processes are told apart by an id of their own, not by the label.
    pub fn new(store: &Store, key: &str, label: &str, options: LockOptions) -> Result<Lock> {
        store.inner.check_fork()?;
        if key.is_empty() {
            return Err(Error::InvalidArgument("the lock key is empty".into()));
        }
        options.validate()?;
        Ok(Lock { inner: Arc::new(LockInner::new(store.clone(), key, label, options)) })
    }

    pub fn key(&self) -> &str {
        &self.inner.key
    }

    pub fn options(&self) -> LockOptions {
        self.inner.options
    }

    /// `Err(Misuse)` in a child forked after the lock was made, where every call on it fails.
    pub fn ensure_usable(&self) -> Result<()> {
        self.inner.store.inner.check_fork()
    }

    /// Takes the lease if it is free, expired, or already held by this process; never waits.
    /// `Err(Busy)` when another process holds it or the database's write lock is taken.
    pub fn try_acquire(&self) -> Result<Guard> {
        match self.inner.attempt(None, std::time::Instant::now(), None)? {
            Attempt::Taken(guard) => Ok(guard),
            Attempt::Held(held) => Err(Error::Busy(held.why)),
        }
    }

    /// Takes the lease, waiting up to `timeout`; `Err(Timeout)` when it stays held.
    ///
    /// The thread sleeps until the lease may have changed hands: a liblease process wrote the
    /// database (a release is a write), or the holder's process ended (see `wait.rs` for how
    /// each platform tells). Between wake-ups it looks again with a backoff from 250 µs to
    /// `max_backoff`, and never sleeps past the holder's expiry.
    pub fn acquire(&self, timeout: Duration) -> Result<Guard> {
        let mut acquisition = Acquisition::new(self.inner.clone(), timeout, None);
        loop {
            match acquisition.step() {
                Step::Done(result) => return result,
                Step::Wait(wait) => {
                    let woken = acquisition.sleep(wait);
                    acquisition.waited(woken);
                }
            }
        }
    }

    /// Like [`Lock::acquire`], but returns at once and calls `done` exactly once, on the library's
    /// thread, with the guard or the error. The wait does not occupy the library's thread. The
    /// returned handle cancels the wait: `done` then gets `Error::Cancelled` (unless the lease
    /// was already taken, in which case it gets the guard).
    pub fn acquire_async(
        &self,
        timeout: Duration,
        done: impl FnOnce(Result<Guard>) + Send + 'static,
    ) -> Result<PendingAcquire> {
        self.ensure_usable()?;
        let inner = self.inner.clone();
        let cancelled = Arc::new(tokio::sync::Notify::new());
        let pending = PendingAcquire { cancelled: cancelled.clone(), epoch: self.inner.store.inner.epoch() };
        runtime::spawn(async move {
            let acquired = async {
                let mut acquisition = Acquisition::new(inner.clone(), timeout, Some(ASYNC_QUEUE_STAY));
                loop {
                    match acquisition.step() {
                        Step::Done(result) => return result,
                        Step::Wait(wait) => {
                            let woken = acquisition.sleep_async(wait).await;
                            acquisition.waited(woken);
                        }
                    }
                }
            };
            // Cancellation first: one that came before the task started makes no attempt (an
            // attempt on a free lease would take it, a needless write that makes the next
            // holder's guard dirty).
            let result = tokio::select! {
                biased;
                () = cancelled.notified() => Err(Error::Cancelled(format!("acquiring '{}' was cancelled", inner.key))),
                result = acquired => result,
            };
            done(result);
        })?;
        Ok(pending)
    }

    /// Sets (or with `None` clears) the function called once, on the library's thread, with the
    /// key when a hold acquired through this lock is lost. When this returns, the previous
    /// callback is not running, will not be called again, and has been dropped (unless this is
    /// called from inside that very callback, which is allowed: it is dropped when it returns).
    pub fn set_lost_callback(&self, callback: Option<Box<LostCallback>>) -> Result<()> {
        self.ensure_usable()?;
        self.inner.lost.set(callback);
        Ok(())
    }
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("key", &self.inner.key)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // After a lock is gone its callback must not run: its context may be freed next.
        if self.ensure_usable().is_ok() {
            self.inner.lost.set(None);
        }
    }
}

/// An asynchronous acquisition under way; see [`Lock::acquire_async`]. Dropping it does not
/// cancel the acquisition.
#[derive(Debug, Clone)]
#[must_use = "the handle is the only way to cancel the acquisition"]
pub struct PendingAcquire {
    cancelled: Arc<tokio::sync::Notify>,
    epoch: Epoch,
}

impl PendingAcquire {
    /// Ends the wait: the acquisition's callback gets `Error::Cancelled` soon, on the library's
    /// thread, unless it already took the lease. Cancelling twice, or after the end, does nothing.
    /// `Err(Misuse)` in a forked child: the acquisition is the parent's.
    pub fn cancel(&self) -> Result<()> {
        self.epoch.check()?;
        self.cancelled.notify_one();
        Ok(())
    }
}
