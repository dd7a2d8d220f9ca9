//! Fencing: a write transaction that proves, inside itself, that a guard's lease is still held.
//!
//! The check runs after `BEGIN IMMEDIATE`, so this transaction holds SQLite's write lock. Taking
//! a lease is a write, so no other process can take the lease between the check and the commit:
//! everything the transaction writes is written under the lease. A holder that was suspended
//! past its lease and continued finds the lease gone and writes nothing.

use std::sync::Arc;

use rusqlite::Connection;

use super::hold::Hold;
use crate::error::{Error, Result};
use crate::file::FileId;
use crate::store::lease_table;

/// What a fenced transaction checks: a guard's hold (kept alive, not its guard count).
pub(crate) struct Fence {
    hold: Arc<Hold>,
}

impl Fence {
    pub(super) fn new(hold: Arc<Hold>) -> Fence {
        Fence { hold }
    }

    /// The lease must be kept in the file the transaction writes.
    pub(crate) fn same_file(&self, file: &FileId) -> Result<()> {
        if self.hold.store().file.id() == file {
            Ok(())
        } else {
            Err(Error::InvalidArgument(
                "the guard's lock is kept in another database file; a fenced transaction needs \
                 the lock's store to be the database it writes"
                    .into(),
            ))
        }
    }

    /// `Err(Lost)` when the hold is known lost, without looking at the database.
    pub(crate) fn check(&self) -> Result<()> {
        self.hold.check()
    }

    /// Checks, on the transaction's connection, that the lease is this hold's, of its
    /// generation, and unexpired. A failed check marks the hold lost.
    pub(crate) fn verify(&self, connection: &Connection) -> Result<()> {
        let hold = &self.hold;
        // A guard of the parent's proves nothing in a forked child.
        hold.store().check_fork()?;
        if hold.is_released() {
            return Err(Error::Lost(format!("the guard of '{}' was released", hold.key())));
        }
        hold.check()?;
        let expires_ms = lease_table::expiry_of_hold(connection, &hold.name(), hold.generation())?;
        let now_ms = hold.store().clock.now_ms();
        match expires_ms {
            Some(expires_ms) if expires_ms > now_ms => Ok(()),
            Some(_) => {
                hold.mark_lost(format!(
                    "the lease on '{}' had run out when the fence was checked",
                    hold.key()
                ));
                hold.check()
            }
            None => {
                hold.mark_lost(format!("another holder took the lease on '{}'", hold.key()));
                hold.check()
            }
        }
    }
}
