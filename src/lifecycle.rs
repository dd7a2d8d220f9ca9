//! Suspending and resuming the process, for an app about to be suspended by its system.
//!
//! iOS kills a suspended app that holds a write lock on a database in a shared container
//! (0xdead10cc), and Android freezes cached processes the same way; a holder that is suspended
//! with its leases makes every other process wait until they run out. So before the app goes to
//! the background it calls [`suspend`], which, at once:
//!
//! 1. marks the process suspended ([`suspension`]): from now on nothing of liblease's takes
//!    SQLite's write lock (no lease is taken or renewed, no write statement, transaction or
//!    checkpoint runs), and waiters stop waiting;
//! 2. stops every writer of every open file: the statement a database handle runs is
//!    interrupted and its write transaction rolled back (its next call says
//!    `Error::Suspended`); chunks a chunked transaction committed stay committed;
//! 3. gives every lease the process holds back to the database, so that a waiting process takes
//!    over in milliseconds rather than when the lease runs out; each becomes lost for its guards,
//!    its lock's lost callback runs once, and the next acquisition is dirty.
//!
//! Reads go on (a WAL reader takes no write lock). [`resume`] lets writes in again.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::file;
use crate::lock::LeaseSlots;
use crate::suspension;

/// Suspends the process (see the module documentation). Returns once no connection of the
/// process holds a write lock or a write transaction; `Err(Timeout)`, naming what still did,
/// when that took longer than `timeout`. Idempotent: a second call finds nothing to stop.
pub fn suspend(timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    suspension::set(true);
    let files = file::open_files();
    for file in &files {
        file.queue().wake_waiters();
    }
    let mut kept = Vec::new();
    // Transactions end first: one of this process would keep the releases below waiting in
    // its writer queue.
    for file in &files {
        for writer in file.writers() {
            if let Err(why) = writer.stop_writing(deadline) {
                kept.push(why);
            }
        }
    }
    // A lease that cannot be given back only runs out by itself: it holds no lock meanwhile.
    for file in &files {
        let _ = file.leases::<LeaseSlots>().give_up_all(deadline);
    }
    if kept.is_empty() {
        Ok(())
    } else {
        Err(Error::Timeout(format!(
            "within {} ms, not everything stopped writing: {}",
            timeout.as_millis(),
            kept.join("; ")
        )))
    }
}

/// Lets writes in again after [`suspend`]. Leases are taken afresh (their first acquisition is
/// dirty).
pub fn resume() {
    suspension::set(false);
}

/// True between [`suspend`] and [`resume`].
pub fn is_suspended() -> bool {
    suspension::is_suspended()
}
