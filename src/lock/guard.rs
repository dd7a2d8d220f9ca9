//! A guard: proof that this process holds a lease.

use std::sync::Arc;

use super::fence::Fence;
use super::hold::Hold;
use crate::error::Result;

/// Proof that this process holds a lease. The lease is given back when the last guard of the
/// process's hold is dropped (or released).
#[must_use = "dropping the guard releases the lease at once (when it is the process's last guard)"]
pub struct Guard {
    /// `None` only once released.
    hold: Option<Arc<Hold>>,
    dirty: bool,
}

impl Guard {
    pub(super) fn new(hold: Arc<Hold>, dirty: bool) -> Guard {
        Guard { hold: Some(hold), dirty }
    }

    fn hold(&self) -> &Arc<Hold> {
        self.hold.as_ref().expect("a guard has its hold until it is released")
    }

    pub fn key(&self) -> &str {
        self.hold().key()
    }

    /// The lease's generation: it increases each time a different holder takes the lease.
    pub fn generation(&self) -> u64 {
        self.hold().generation()
    }

    /// True when another process may have held the lease since this process last held it, so
    /// that what this process cached under the lease is stale. The first acquisition in a
    /// process, and the first after a lost lease, are dirty; a re-entrant one never is.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// `Ok` while the lease is known to be held; `Err(Lost)` once it is lost, for good.
    pub fn check(&self) -> Result<()> {
        self.hold().store().check_fork()?;
        self.hold().check()
    }

    /// Releases this guard, reporting a failure to give the lease back (it then runs out on its
    /// own). Dropping a guard does the same and ignores the failure.
    pub fn release(mut self) -> Result<()> {
        self.hold.take().expect("released once").drop_guard()
    }

    /// What a fenced transaction checks: this guard's hold.
    pub(crate) fn fence(&self) -> Fence {
        Fence::new(self.hold().clone())
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
