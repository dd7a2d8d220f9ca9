//! Mutexes that keep working after a panic.
//!
//! A panic inside liblease is caught at the C boundary (`LEASE_PANIC`) and the library goes on,
//! so a mutex poisoned by it must not turn every later call into a panic as well: the state it
//! guards is kept consistent by each critical section on its own.

use std::sync::{Mutex, MutexGuard};

pub(crate) trait MutexExt<T> {
    /// Locks, ignoring poisoning.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> MutexExt<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
