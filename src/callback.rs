//! A slot for a callback into foreign code that can be replaced or removed while it may be
//! running on the library's thread: a lock's lost callback, a database observer's change
//! callback.
//!
//! The one rule callers rely on: when [`CallbackSlot::set`] returns, the callback it replaced is
//! not running and will not be called again, and whatever it owned (its context, whose destroy
//! function runs when the callback is dropped) is gone, so the caller may free what it refers
//! to. A call from inside that very callback is the exception: it cannot wait for itself, so it
//! returns at once and the old callback is dropped when its call ends.

use std::cell::Cell;
use std::sync::{Arc, Mutex};

use crate::sync::MutexExt;

pub(crate) struct CallbackSlot<C: ?Sized> {
    /// Cloned out by each call, so that replacing it never waits under this mutex.
    callback: Mutex<Option<Arc<C>>>,
    /// Held while the callback runs, so that replacing it can wait for the call to end.
    running: Mutex<()>,
}

thread_local! {
    /// The slot whose callback this thread is running, if any (its address).
    static CALLING: Cell<usize> = const { Cell::new(0) };
}

impl<C: ?Sized> Default for CallbackSlot<C> {
    fn default() -> Self {
        CallbackSlot { callback: Mutex::new(None), running: Mutex::new(()) }
    }
}

impl<C: ?Sized> CallbackSlot<C> {
    pub(crate) fn new(callback: Box<C>) -> Self {
        CallbackSlot { callback: Mutex::new(Some(Arc::from(callback))), running: Mutex::new(()) }
    }

    fn address(&self) -> usize {
        std::ptr::from_ref(self).cast::<()>().addr()
    }

    /// Sets (or with `None` clears) the callback; see the module documentation for when the
    /// old one is gone.
    pub(crate) fn set(&self, callback: Option<Box<C>>) {
        let old = std::mem::replace(&mut *self.callback.locked(), callback.map(Arc::from));
        // A call running now holds its own reference: the old callback is dropped when it ends.
        drop(old);
        if !self.is_calling_here() {
            drop(self.running.locked());
        }
    }

    /// True when this thread is inside this slot's callback.
    pub(crate) fn is_calling_here(&self) -> bool {
        CALLING.with(|calling| calling.get() == self.address())
    }

    /// Calls `call` with the callback, if there is one. On the library's thread.
    pub(crate) fn call(&self, call: impl FnOnce(&C)) {
        let running = self.running.locked();
        let callback = self.callback.locked().clone();
        let outer = CALLING.with(|calling| calling.replace(self.address()));
        if let Some(callback) = &callback {
            // A callback that panics (a Rust one: C cannot unwind into Rust) ends its own call,
            // not the library's thread or the calls to come.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(callback)));
        }
        // If the callback was replaced meanwhile, this reference is its last, and dropping it
        // runs its destroy function: still marked as this slot's call, so that a destroy that
        // frees the callback's owner (which clears the slot) does not wait for this very call;
        // and before `running` is let go, so that `set` returns only once it is done.
        drop(callback);
        CALLING.with(|calling| calling.set(outer));
        drop(running);
    }
}
