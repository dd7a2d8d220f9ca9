//! Telling a forked child from the process that made a handle.
//!
//! After `fork()` the child must not touch anything the parent made: the parent's SQLite
//! connections (closing one could checkpoint or delete the parent's WAL), its runtime thread
//! (which does not exist in the child) and its mutexes (which a parent thread may have held at
//! the moment of the fork). A `pthread_atfork` handler, which runs in the child while it is still
//! single-threaded, counts the forks; every handle of the core keeps the [`Epoch`] it was made in
//! and checks it at every entry point, refusing to work in another one, and leaking rather than
//! freeing what it owns when it is dropped there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// How many forks this process is the child of; 0 in the original process.
static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

/// The fork generation a handle was made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Epoch(u64);

impl Epoch {
    /// This process's generation. The fork handler is registered on the first call, which comes
    /// before any handle exists.
    pub(crate) fn current() -> Epoch {
        REGISTER.call_once(|| {
            // SAFETY: registers a handler that only touches an atomic; valid for the process's life.
            unsafe { libc::pthread_atfork(None, None, Some(count_fork_in_child)) };
        });
        Epoch(GENERATION.load(Ordering::Acquire))
    }

    /// `Err(Misuse)` in a child forked after this epoch: what was made in it is the parent's.
    pub(crate) fn check(self) -> Result<()> {
        if self.is_past() {
            Err(Error::Misuse(
                "this handle was created before fork(); a forked child must open its own".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// True in a child forked after this epoch, where freeing what was made in it would close or
    /// write through the parent's connections: leak it instead.
    pub(crate) fn is_past(self) -> bool {
        self != Epoch::current()
    }
}

/// For a handle dropped in a forked child: leaks the parent's connection rather than close it.
pub(crate) fn leak_connection(connection: &mut Connection) {
    // An in-memory connection takes its place: free to open, harmless to close.
    let placeholder = Connection::open_in_memory().expect("an in-memory connection opens");
    std::mem::forget(std::mem::replace(connection, placeholder));
}

extern "C" fn count_fork_in_child() {
    // Runs in the child right after fork(), single-threaded: only the atomic is touched. What
    // the parent made is left behind where it is (see `ForkLocal` for the process-wide values).
    GENERATION.fetch_add(1, Ordering::AcqRel);
}
