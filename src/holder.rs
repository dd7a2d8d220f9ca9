//! This process as a lease holder: its random id, who it is to other processes, and the numbers
//! of its holds.
//!
//! A process gets a holder id of 128 random bits the first time it needs one. Two processes that
//! pass the same label still have different ids, so they exclude each other; the label is only
//! kept for diagnostics. A forked child is another holder, with an id of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fork::Epoch;
use crate::fork_local::ForkLocal;
use crate::liveness::Identity;

static CURRENT: ForkLocal<Arc<Holder>> = ForkLocal::new();

/// One lease holder: normally this OS process ([`Holder::current`]).
///
/// Tests create more with [`Holder::new`] to play several processes inside one test binary;
/// the multi-process tests use real processes.
#[derive(Debug)]
pub struct Holder {
    id: String,
    identity: Identity,
    epoch: Epoch,
    next_hold: AtomicU64,
}

impl Holder {
    /// A holder with a fresh random id and no leases.
    pub fn new() -> Result<Arc<Holder>> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| Error::Misuse(format!("no randomness for a holder id: {e}")))?;
        Ok(Arc::new(Holder {
            id: id.iter().map(|b| format!("{b:02x}")).collect(),
            identity: Identity::of_this_process(),
            epoch: Epoch::current(),
            next_hold: AtomicU64::new(1),
        }))
    }

    /// This OS process. Made on first use; a forked child gets a new one.
    pub fn current() -> Result<Arc<Holder>> {
        CURRENT.get_or_try_init(Holder::new).cloned()
    }

    /// The id written to the lease table: unique to this process (or simulated process).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The OS process behind this holder, for liveness checks by waiters.
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    /// A number unique within this holder for each hold it takes, so that a late release of an
    /// old hold can never give back a newer one.
    pub(crate) fn next_hold_number(&self) -> u64 {
        self.next_hold.fetch_add(1, Ordering::Relaxed)
    }

    /// `Err(Misuse)` in a child forked after this holder was made: it is the parent's.
    pub(crate) fn check_fork(&self) -> Result<()> {
        self.epoch.check()
    }
}
