//! A global made on first use that a forked child makes anew instead of inheriting.

use std::sync::atomic::{AtomicPtr, Ordering};

use crate::error::Result;

/// Holds a leaked `&'static T`. The `pthread_atfork` child handler calls [`ForkLocal::forget`],
/// which needs no lock, so a value whose mutexes a parent thread held at the fork is simply left
/// behind; the child's next [`ForkLocal::get_or_try_init`] makes a fresh one.
pub(crate) struct ForkLocal<T: 'static> {
    value: AtomicPtr<T>,
}

impl<T: 'static> ForkLocal<T> {
    pub(crate) const fn new() -> Self {
        ForkLocal { value: AtomicPtr::new(std::ptr::null_mut()) }
    }

    pub(crate) fn get_or_try_init(&self, init: impl FnOnce() -> Result<T>) -> Result<&'static T> {
        let existing = self.value.load(Ordering::Acquire);
        if !existing.is_null() {
            // SAFETY: every stored pointer comes from `Box::leak` and is never freed.
            return Ok(unsafe { &*existing });
        }
        let candidate = Box::into_raw(Box::new(init()?));
        match self.value.compare_exchange(
            std::ptr::null_mut(),
            candidate,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: `candidate` is now published and, like every published value, never freed.
            Ok(_) => Ok(unsafe { &*candidate }),
            Err(winner) => {
                // SAFETY: `candidate` was never published; `winner` is published and never freed.
                drop(unsafe { Box::from_raw(candidate) });
                Ok(unsafe { &*winner })
            }
        }
    }

    /// In a forked child only: leaks the parent's value.
    pub(crate) fn forget(&self) {
        self.value.store(std::ptr::null_mut(), Ordering::Release);
    }
}
