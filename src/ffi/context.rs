//! Callers' context pointers: carried to the library's thread, and given back through their
//! destroy function once nothing can call with them any more.

use std::ffi::c_void;

use crate::fork::Epoch;

/// Called exactly once when the library no longer needs a callback's context: after the last
/// call of the callback that was given with it has returned, when that callback is replaced or
/// removed, or when its handle is freed. Runs on the thread that replaced the callback or freed
/// the handle, or on the library's thread ("liblease") when a call of the callback was still
/// running then (it runs right after that call returns). It may free liblease handles (a
/// binding's last reference to the lock, say) but must not wait (no lease_lock_acquire with a
/// timeout). context is the pointer given with the callback.
pub type LeaseDestroyCallback = Option<unsafe extern "C" fn(context: *mut c_void)>;

/// A caller's context pointer, carried to the library's thread. liblease never dereferences it;
/// the caller promises that it may be used there (see each function's documentation).
pub(crate) struct Context(*mut c_void);

// SAFETY: the pointer is only handed back to the caller's own callbacks; making that safe on the
// library's thread is the caller's documented duty.
unsafe impl Send for Context {}
unsafe impl Sync for Context {}

impl Context {
    pub(crate) fn new(context: *mut c_void) -> Context {
        Context(context)
    }

    pub(crate) fn get(&self) -> *mut c_void {
        self.0
    }
}

/// A context with its destroy function, which runs when this is dropped: put it in whatever
/// holds the callback, so that it is dropped after the callback's last call. Dropped in a child
/// forked since, it does not call destroy: the context is the parent's.
pub(crate) struct OwnedContext {
    context: Context,
    destroy: LeaseDestroyCallback,
    epoch: Epoch,
}

impl OwnedContext {
    pub(crate) fn new(context: *mut c_void, destroy: LeaseDestroyCallback) -> OwnedContext {
        OwnedContext { context: Context(context), destroy, epoch: Epoch::current() }
    }

    pub(crate) fn get(&self) -> *mut c_void {
        self.context.get()
    }

    /// Gives the context back to the caller without destroying it (the call that took it
    /// failed).
    pub(crate) fn give_back(self) {
        std::mem::forget(self);
    }
}

impl Drop for OwnedContext {
    fn drop(&mut self) {
        if let Some(destroy) = self.destroy.filter(|_| !self.epoch.is_past()) {
            // SAFETY: the caller's destroy function with its own context, once, as documented.
            unsafe { destroy(self.context.get()) }
        }
    }
}
