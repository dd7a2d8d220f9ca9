//! Telling a lock's owner that its lease was lost.
//!
//! Each lock has one [`LostSlot`]; each hold keeps the [`Watchers`] of the locks through
//! which its guards were taken. A hold that is lost tells its watchers once, on the library's
//! thread, and each calls its lock's callback with the key.
//!
//! When the callback may be replaced, and when the replaced one is gone, is
//! [`CallbackSlot`]'s rule.

use std::sync::{Arc, Mutex, Weak};

use crate::callback::CallbackSlot;
use crate::runtime;
use crate::sync::MutexExt;

/// What a lost callback is: called with the key.
pub type Callback = dyn Fn(&str) + Send + Sync;

/// A lock's lost-callback slot.
pub(crate) type LostSlot = CallbackSlot<Callback>;

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
                lost.call(|callback| callback(&key));
            }
        });
    }
}
