//! Telling a lock's owner that its lease was lost.
//!
//! Each lock has one [`LostSlot`]; each hold keeps the [`Watchers`] of the locks through
//! which its guards were taken. A hold that is lost tells its watchers once, on the library's
//! thread, and each calls its lock's callback with the key.
//!
//! The one rule callers rely on: when [`LostSlot::set`] returns, the callback it replaced is
//! not running and will not be called again, and whatever it owned (its context, whose destroy
//! function runs when the callback is dropped) is gone, so the caller may free what it refers
//! to. A call from inside that very callback is the exception: it cannot wait for itself, so it
//! returns at once and the old callback is dropped when its call ends.

use std::cell::Cell;
use std::sync::{Arc, Mutex, Weak};

use crate::runtime;
use crate::sync::MutexExt;

/// What a lost callback is: called with the key.
pub type Callback = dyn Fn(&str) + Send + Sync;

/// A lock's lost-callback slot.
#[derive(Default)]
pub(crate) struct LostSlot {
    /// Cloned out by each call, so that replacing it never waits under this mutex.
    callback: Mutex<Option<Arc<Callback>>>,
    /// Held while the callback runs, so that replacing it can wait for the call to end.
    running: Mutex<()>,
}

thread_local! {
    /// The slot whose callback this thread is running, if any.
    static CALLING: Cell<*const LostSlot> = const { Cell::new(std::ptr::null()) };
}

impl LostSlot {
    /// Sets (or with `None` clears) the callback; see the module documentation for when the
    /// old one is gone.
    pub(crate) fn set(&self, callback: Option<Box<Callback>>) {
        let old = std::mem::replace(&mut *self.callback.locked(), callback.map(Arc::from));
        // A call running now holds its own reference: the old callback is dropped when it ends.
        drop(old);
        let inside_own_call = CALLING.with(|calling| std::ptr::eq(calling.get(), self));
        if !inside_own_call {
            drop(self.running.locked());
        }
    }

    /// Calls the callback, if there is one. On the library's thread.
    fn call(&self, key: &str) {
        let running = self.running.locked();
        let callback = self.callback.locked().clone();
        CALLING.with(|calling| calling.set(self));
        if let Some(callback) = &callback {
            callback(key);
        }
        // If the callback was replaced meanwhile, this reference is its last, and dropping it
        // runs its destroy function: still marked as this slot's call, so that a destroy that
        // frees the lock (which clears its callback) does not wait for this very call; and
        // before `running` is let go, so that `set` returns only once it is done.
        drop(callback);
        CALLING.with(|calling| calling.set(std::ptr::null()));
        drop(running);
    }
}

/// The lost callbacks of the locks through which a hold's guards were taken, held weakly: a lock
/// that is gone is not called.
#[derive(Default)]
pub(crate) struct Watchers(Mutex<Vec<Weak<LostSlot>>>);

impl Watchers {
    /// Adds a lock's callback slot, once however many of its guards join.
    pub(crate) fn add(&self, lost: &Arc<LostSlot>) {
        let mut watchers = self.0.locked();
        if !watchers.iter().any(|watcher| std::ptr::eq(watcher.as_ptr(), Arc::as_ptr(lost))) {
            watchers.push(Arc::downgrade(lost));
        }
    }

    /// Calls every watcher's callback with `key`, on the library's thread. If the thread cannot
    /// start there is nobody to call back on; the loss still shows in every check.
    pub(crate) fn tell(&self, key: String) {
        let watchers = self.0.locked().clone();
        let _ = runtime::spawn(async move {
            for lost in watchers.iter().filter_map(Weak::upgrade) {
                lost.call(&key);
            }
        });
    }
}
