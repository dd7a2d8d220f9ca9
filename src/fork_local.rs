//! A process-wide value made on first use, which a forked child makes anew instead of
//! inheriting.

use std::sync::atomic::{AtomicPtr, Ordering};

use crate::error::Result;
use crate::fork::Epoch;

/// Holds a leaked `&'static T`, with the fork epoch it was made in. A child forked since gets a
/// fresh value from [`ForkLocal::get_or_try_init`], and the parent's (whose mutexes a parent
/// thread may have held at the fork) is left behind, untouched.
pub(crate) struct ForkLocal<T: 'static> {
    value: AtomicPtr<(Epoch, T)>,
}

impl<T: 'static> ForkLocal<T> {
    pub(crate) const fn new() -> Self {
        ForkLocal { value: AtomicPtr::new(std::ptr::null_mut()) }
    }

    pub(crate) fn get_or_try_init(&self, init: impl FnOnce() -> Result<T>) -> Result<&'static T> {
        let epoch = Epoch::current();
        let existing = self.value.load(Ordering::Acquire);
        // SAFETY: every stored pointer comes from `Box::into_raw` and is never freed.
        if let Some((made_in, value)) = unsafe { existing.as_ref() } {
            if *made_in == epoch {
                return Ok(value);
            }
        }
        let candidate = Box::into_raw(Box::new((epoch, init()?)));
        match self.value.compare_exchange(existing, candidate, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: `candidate` is now published and, like every published value, never freed.
            Ok(_) => Ok(unsafe { &(*candidate).1 }),
            Err(winner) => {
                // SAFETY: `candidate` was never published; `winner` is published and never freed,
                // and was made in this epoch (only this process's threads publish here).
                drop(unsafe { Box::from_raw(candidate) });
                Ok(unsafe { &(*winner).1 })
            }
        }
    }
}
