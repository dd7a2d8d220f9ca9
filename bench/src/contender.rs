//! One process's side of a contended lock, liblease's or the predecessor's, behind one trait so
//! that the handover, failover and heartbeat workers run the same steps on both.

use std::path::Path;
use std::time::Duration;

use lease::{Guard, Lock, LockOptions, Store};

use crate::baselines::predecessor_lock::PredecessorLock;
use crate::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Liblease,
    Predecessor,
}

impl LockKind {
    pub fn name(self) -> &'static str {
        match self {
            LockKind::Liblease => "liblease",
            LockKind::Predecessor => "predecessor",
        }
    }

    pub fn parse(name: &str) -> Result<LockKind> {
        match name {
            "liblease" => Ok(LockKind::Liblease),
            "predecessor" => Ok(LockKind::Predecessor),
            other => Err(format!("no lock kind '{other}'").into()),
        }
    }
}

pub trait Contender {
    /// Waits up to `timeout` for the lease.
    fn acquire(&mut self, timeout: Duration) -> Result<()>;
    fn release(&mut self) -> Result<()>;
    /// What the holder knows of its hold: "held", "lost", or "believes-held" for a lock that
    /// cannot tell.
    fn check(&self) -> &'static str;
}

/// Opens `kind`'s lock on `key` in the database at `path`. `options` applies to liblease only;
/// the predecessor has its fixed timing.
pub fn open(kind: LockKind, path: &Path, key: &str, options: LockOptions) -> Result<Box<dyn Contender>> {
    let label = format!("lease-bench-{}", std::process::id());
    Ok(match kind {
        LockKind::Liblease => {
            let store = Store::open(path)?;
            Box::new(LeaseContender { lock: Lock::new(&store, key, &label, options)?, guard: None })
        }
        LockKind::Predecessor => Box::new(PredecessorContender(PredecessorLock::open(path, key, &label)?)),
    })
}

struct LeaseContender {
    lock: Lock,
    guard: Option<Guard>,
}

impl Contender for LeaseContender {
    fn acquire(&mut self, timeout: Duration) -> Result<()> {
        self.guard = Some(self.lock.acquire(timeout)?);
        Ok(())
    }

    fn release(&mut self) -> Result<()> {
        self.guard.take().ok_or("nothing is held")?.release()?;
        Ok(())
    }

    fn check(&self) -> &'static str {
        match self.guard.as_ref().map(Guard::check) {
            Some(Ok(())) => "held",
            Some(Err(lease::Error::Lost(_))) => "lost",
            Some(Err(_)) => "error",
            None => "not-held",
        }
    }
}

struct PredecessorContender(PredecessorLock);

impl Contender for PredecessorContender {
    fn acquire(&mut self, timeout: Duration) -> Result<()> {
        self.0.acquire(timeout)
    }

    fn release(&mut self) -> Result<()> {
        self.0.release()
    }

    fn check(&self) -> &'static str {
        if self.0.believes_held() {
            "believes-held"
        } else {
            "not-held"
        }
    }
}
