//! The cross-process leased lock.
//!
//! A lock names a key in a store's lease table. Acquiring takes a time-limited lease on it in one
//! atomic statement; the heartbeat renews the lease while any guard is alive; dropping the last
//! guard gives it back at once. Within a process the lock is re-entrant across threads and
//! across `Lock` handles: while the process holds the lease, every acquisition of the same key in
//! the same database file succeeds at once. Exclusion is between processes.

mod acquisition;
mod fence;
mod heartbeat;
mod hold;
mod options;

use std::cell::Cell;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acquisition::{Acquisition, Step};
pub(crate) use fence::Fence;
pub(crate) use hold::HoldTable;
use hold::{Hold, NewHold};
pub use options::LockOptions;

use crate::error::{Error, Result};
use crate::liveness::Identity;
use crate::runtime;
use crate::store::lease_table::{self, Claim, DeadHold};
use crate::store::Store;
use crate::sync::MutexExt;
use crate::wait::ChangeWait;

/// How long an asynchronous attempt may wait in the writer queue on the library's thread: long
/// enough to be seen by a chunked job, which then lets it in.
const ASYNC_QUEUE_STAY: Duration = Duration::from_millis(10);

type LostCallback = dyn Fn(&str) + Send + Sync;

/// A named lease in a store. Thread-safe.
pub struct Lock {
    shared: Arc<LockShared>,
}

pub(crate) struct LockShared {
    store: Store,
    key: String,
    label: String,
    options: LockOptions,
    lost_callback: Mutex<Option<Arc<LostCallback>>>,
    /// Held while a lost callback runs, so that replacing the callback waits for it to finish.
    callback_running: Mutex<()>,
    /// The wake-up sources of the last acquisition that had to wait, kept for the next one.
    idle_wait: Mutex<Option<ChangeWait>>,
}

thread_local! {
    /// The lock whose lost callback this thread is running, if any.
    static IN_LOST_CALLBACK: Cell<*const LockShared> = const { Cell::new(std::ptr::null()) };
}

/// The outcome of one attempt to take the lease.
enum Attempt {
    Taken(Guard),
    /// Held by another holder (or the database busy).
    Held(Held),
}

/// Why an attempt did not take the lease, and when to look again: after a change, or after
/// `retry_in` at the latest (the holder's expiry).
struct Held {
    retry_in: Duration,
    /// The holding process, when known: a waiter also wakes when it ends.
    holder: Option<Identity>,
    why: String,
}

impl Lock {
    /// A lock on `key` in `store`. `label` names this holder in the lease table, for diagnostics;
    /// processes are told apart by an id of their own, not by the label.
    pub fn new(store: &Store, key: &str, label: &str, options: LockOptions) -> Result<Lock> {
        store.inner.ensure_not_forked()?;
        if key.is_empty() {
            return Err(Error::InvalidArgument("the lock key is empty".into()));
        }
        options.validate()?;
        Ok(Lock {
            shared: Arc::new(LockShared {
                store: store.clone(),
                key: key.to_owned(),
                label: label.to_owned(),
                options,
                lost_callback: Mutex::new(None),
                callback_running: Mutex::new(()),
                idle_wait: Mutex::new(None),
            }),
        })
    }

    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// `Err(Misuse)` in a child forked after the lock was made, where every call on it fails.
    pub fn ensure_usable(&self) -> Result<()> {
        self.shared.store.inner.ensure_not_forked()
    }

    pub fn options(&self) -> LockOptions {
        self.shared.options
    }

    /// Takes the lease if it is free, expired, or already held by this process; never waits.
    /// `Err(Busy)` when another process holds it or the database's write lock is taken.
    pub fn try_acquire(&self) -> Result<Guard> {
        match self.shared.attempt(None)? {
            Attempt::Taken(guard) => Ok(guard),
            Attempt::Held(held) => Err(Error::Busy(held.why)),
        }
    }

    /// Takes the lease, waiting up to `timeout`; `Err(Timeout)` when it stays held.
    ///
    /// The thread sleeps until the lease may have changed hands: the database was written (a
    /// release is a write), or the holder's process ended; where the system cannot tell, it
    /// polls with a backoff from 250 µs to `max_backoff`. It never sleeps past the holder's
    /// expiry.
    pub fn acquire(&self, timeout: Duration) -> Result<Guard> {
        let mut acquisition = Acquisition::new(self.shared.clone(), timeout, None);
        loop {
            match acquisition.step() {
                Step::Done(result) => return result,
                Step::Wait(at_most) => {
                    let woken = acquisition.change_wait().wait(at_most);
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
        self.shared.store.inner.ensure_not_forked()?;
        let shared = self.shared.clone();
        let cancelled = Arc::new(tokio::sync::Notify::new());
        let pending = PendingAcquire {
            cancelled: cancelled.clone(),
            fork_generation: self.shared.store.inner.fork_generation(),
        };
        runtime::spawn(async move {
            let acquired = async {
                let mut acquisition = Acquisition::new(shared.clone(), timeout, Some(ASYNC_QUEUE_STAY));
                loop {
                    match acquisition.step() {
                        Step::Done(result) => return result,
                        Step::Wait(at_most) => {
                            let woken = acquisition.change_wait().wait_async(at_most).await;
                            acquisition.waited(woken);
                        }
                    }
                }
            };
            let result = tokio::select! {
                biased;
                result = acquired => result,
                () = cancelled.notified() => Err(Error::Cancelled(format!("acquiring '{}' was cancelled", shared.key))),
            };
            done(result);
        })?;
        Ok(pending)
    }

    /// Sets (or with `None` clears) the function called once, on the library's thread, with the
    /// key when a hold acquired through this lock is lost. When this returns, the previous
    /// callback is not running and will not be called again (unless this is called from inside
    /// that very callback, which is allowed).
    pub fn set_lost_callback(&self, callback: Option<Box<LostCallback>>) -> Result<()> {
        self.ensure_usable()?;
        self.shared.store.inner.ensure_not_forked()?;
        *self.shared.lost_callback.locked() = callback.map(Arc::from);
        let inside_own_callback = IN_LOST_CALLBACK.with(|current| std::ptr::eq(current.get(), &*self.shared));
        if !inside_own_callback {
            drop(self.shared.callback_running.locked());
        }
        Ok(())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // After a lock is gone its callback must not run: its context may be freed next.
        if !crate::holder::forked_since(self.shared.store.inner.fork_generation()) {
            let _ = self.set_lost_callback(None);
        }
    }
}

impl Drop for LockShared {
    fn drop(&mut self) {
        if crate::holder::forked_since(self.store.inner.fork_generation()) {
            // The callback is the parent's: dropping it here would run the parent's destroy.
            std::mem::forget(
                self.lost_callback.get_mut().map_or_else(|p| p.into_inner().take(), Option::take),
            );
        }
    }
}

impl LockShared {
    /// One attempt: joins this process's hold if it has a valid one; otherwise looks at the
    /// lease row and, unless a live holder keeps it, takes it in one statement, waiting for the
    /// database's write lock until `write_deadline` (`None`: not at all). Another holder's
    /// lease is never waited for here.
    fn attempt(self: &Arc<Self>, write_deadline: Option<Instant>) -> Result<Attempt> {
        let store = &self.store.inner;
        store.ensure_not_forked()?;
        let slot = store.holder.holds.slot(store.file.id(), &self.key);
        let mut state = slot.lock();
        if let Some(hold) = state.hold.clone() {
            if hold.check().is_ok() {
                hold.add_guard(&state, self);
                return Ok(Attempt::Taken(Guard::new(hold, false)));
            }
            // Lost: its remaining guards see that; the next hold starts afresh (dirty).
            state.hold = None;
            state.last_generation = None;
        }

        // Look before taking: a lease that a live holder keeps is not worth the write lock.
        let now_ms = store.clock.now_ms();
        let boot = store.clock.boot_id();
        let me = store.holder.identity();
        let row = store.read(|connection| lease_table::read(connection, &self.key))?;
        let mut dead = None;
        if let Some(row) = &row {
            let kept = row.holder_id != store.holder.id() && *row.boot == *boot && row.expires_ms > now_ms;
            if kept {
                let holder = row.identity();
                if !holder.is_certainly_dead(me) {
                    return Ok(Attempt::Held(Held {
                        retry_in: Duration::from_millis(row.expires_ms - now_ms + 1),
                        holder: Some(holder),
                        why: format!("'{}' is held by '{}' (another process)", self.key, row.label),
                    }));
                }
                // The holder crashed: its lease may be taken now rather than when it expires.
                dead = Some(DeadHold { holder: &row.holder_id, hold: row.hold });
            }
        }

        let claim = Claim {
            key: &self.key,
            holder: store.holder.id(),
            hold: store.holder.next_hold_number(),
            label: &self.label,
            boot: &boot,
            now_ms,
            expires_ms: now_ms + self.options.lease.as_millis() as u64,
        };
        let taken = store
            .write(write_deadline, |connection| lease_table::take(connection, &claim, me, dead.as_ref()));
        let generation = match taken {
            Ok(Some(generation)) => generation,
            // It changed hands between the look and the take: look again at once.
            Ok(None) => {
                return Ok(Attempt::Held(Held {
                    retry_in: Duration::ZERO,
                    holder: None,
                    why: format!("'{}' changed hands", self.key),
                }))
            }
            Err(Error::Busy(why)) => {
                return Ok(Attempt::Held(Held { retry_in: Duration::MAX, holder: None, why }))
            }
            Err(e) => return Err(e),
        };
        let dirty = state.last_generation != Some(generation);
        state.last_generation = Some(generation);
        let hold = Hold::new(NewHold {
            store: store.clone(),
            slot: slot.clone(),
            key: self.key.clone(),
            number: claim.hold,
            generation,
            boot: boot.clone(),
            options: self.options,
            expires_ms: claim.expires_ms,
        });
        hold.add_guard(&state, self);
        state.hold = Some(hold.clone());
        drop(state);
        let guard = Guard::new(hold.clone(), dirty);
        // Without a heartbeat the lease would silently run out: give it back and fail.
        heartbeat::start(&hold)?;
        Ok(Attempt::Taken(guard))
    }

    /// Calls the lost callback, on the library's thread.
    pub(crate) fn notify_lost(&self, key: &str) {
        let _running = self.callback_running.locked();
        let callback = self.lost_callback.locked().clone();
        if let Some(callback) = callback {
            IN_LOST_CALLBACK.with(|current| current.set(self));
            callback(key);
            IN_LOST_CALLBACK.with(|current| current.set(std::ptr::null()));
        }
    }
}

/// An asynchronous acquisition under way; see [`Lock::acquire_async`]. Dropping it does not
/// cancel the acquisition.
#[derive(Debug, Clone)]
#[must_use = "the handle is the only way to cancel the acquisition"]
pub struct PendingAcquire {
    cancelled: Arc<tokio::sync::Notify>,
    fork_generation: u64,
}

impl PendingAcquire {
    /// Ends the wait: the acquisition's callback gets `Error::Cancelled` soon, on the library's
    /// thread, unless it already took the lease. Cancelling twice, or after the end, does nothing.
    /// `Err(Misuse)` in a forked child: the acquisition is the parent's.
    pub fn cancel(&self) -> Result<()> {
        crate::holder::ensure_same_fork(self.fork_generation)?;
        self.cancelled.notify_one();
        Ok(())
    }
}

/// Proof that this process holds a lease. The lease is given back when the last guard of the
/// process's hold is dropped (or released).
#[must_use = "dropping the guard releases the lease at once (when it is the process's last guard)"]
pub struct Guard {
    hold: Option<Arc<Hold>>,
    dirty: bool,
}

impl Guard {
    fn new(hold: Arc<Hold>, dirty: bool) -> Guard {
        Guard { hold: Some(hold), dirty }
    }

    fn hold(&self) -> &Arc<Hold> {
        self.hold.as_ref().expect("a guard has its hold until it is released")
    }

    pub fn key(&self) -> &str {
        &self.hold().key
    }

    /// The lease's generation: it increases each time a different holder takes the lease.
    pub fn generation(&self) -> u64 {
        self.hold().generation
    }

    /// True when another process may have held the lease since this process last held it, so
    /// that what this process cached under the lease is stale. The first acquisition in a
    /// process, and the first after a lost lease, are dirty; a re-entrant one never is.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// `Ok` while the lease is known to be held; `Err(Lost)` once it is lost, for good.
    pub fn check(&self) -> Result<()> {
        self.hold().store.ensure_not_forked()?;
        self.hold().check()
    }

    /// Releases this guard, reporting a failure to give the lease back (it then runs out on its
    /// own). Dropping a guard does the same and ignores the failure.
    pub fn release(mut self) -> Result<()> {
        self.hold.take().expect("released once").drop_guard()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(hold) = self.hold.take() {
            let _ = hold.drop_guard();
        }
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("key", &self.key())
            .field("generation", &self.generation())
            .field("dirty", &self.dirty)
            .finish()
    }
}
