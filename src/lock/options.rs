//! How long a lease lasts, how often it is renewed, and how a waiter backs off.

use std::time::Duration;

use crate::error::{Error, Result};

/// The timing of a lock. See the README's "Defaults" for how the defaults were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// How long a lease lasts without renewal: the longest another process waits after this one
    /// crashed or was suspended while holding it.
    pub lease: Duration,
    /// How often the heartbeat renews a held lease. At most half of `lease`, so that a renewal
    /// delayed by a busy database still has time to succeed before the lease runs out.
    pub renew_every: Duration,
    /// The longest pause between two attempts of a waiting `acquire`. A waiter is woken when a
    /// liblease process writes the database (a release is a write) or the holder's process ends;
    /// this bounds how late it notices what nothing announces (a write by a program that does
    /// not use liblease, say).
    pub max_backoff: Duration,
}

impl LockOptions {
    /// The defaults: a 10 s lease renewed every 5 s; waiters look at least every 250 ms. Planned
    /// events (a release, a suspension, a crash that the system can see) hand over at once, so
    /// the lease only bounds the unplanned ones; a renewal writes one WAL frame (a page and 24
    /// bytes), so every 5 s keeps an idle held lease under 1 KiB/s. See the README's "Defaults".
    pub const DEFAULT: LockOptions = LockOptions {
        lease: Duration::from_millis(10_000),
        renew_every: Duration::from_millis(5_000),
        max_backoff: Duration::from_millis(250),
    };

    /// `Err(InvalidArgument)` for zero or contradictory values.
    pub fn validate(&self) -> Result<()> {
        let invalid = |why: &str| Err(Error::InvalidArgument(format!("lock options: {why}")));
        if self.lease.is_zero() || self.renew_every.is_zero() || self.max_backoff.is_zero() {
            return invalid("lease, renewal period and backoff must all be above zero");
        }
        if self.renew_every > self.lease / 2 {
            return invalid("the renewal period must be at most half the lease");
        }
        if self.lease > Duration::from_secs(24 * 3600) {
            return invalid("a lease longer than a day cannot be told from a stuck holder");
        }
        Ok(())
    }
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions::DEFAULT
    }
}
