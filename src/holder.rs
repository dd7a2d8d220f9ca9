//! This process as a lease holder: its identity, its table of held leases, and fork detection.
//!
//! A process gets a holder id of 128 random bits the first time it needs one. Two processes that
//! pass the same holder label still have different ids, so they exclude each other; the label is
//! only kept for diagnostics.
//!
//! After `fork()` the child must not touch anything the parent created: the parent's SQLite
//! connections, its runtime thread (which does not exist in the child) and its mutexes (which a
//! parent thread may have held at the moment of the fork). A `pthread_atfork` child handler,
//! which runs while the child is still single-threaded, bumps the fork generation and forgets the
//! parent's `Holder`; every handle remembers the generation it was made in and refuses to work,
//! or to free what it owns, in another.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

use crate::error::{Error, Result};
use crate::fork_local::ForkLocal;
use crate::liveness::Identity;
use crate::lock::HoldTable;
use crate::store::FileId;
use crate::sync::MutexExt;
use crate::writer_board::WriterBoard;
use crate::writer_queue::WriterQueue;

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static CURRENT: ForkLocal<Arc<Holder>> = ForkLocal::new();
static REGISTER_ATFORK: Once = Once::new();

/// One lease holder: normally this OS process ([`Holder::current`]).
///
/// Tests create more with [`Holder::new`] to play several processes inside one test binary;
/// the multi-process tests use real processes.
#[derive(Debug)]
pub struct Holder {
    holder_id: String,
    identity: Identity,
    fork_generation: u64,
    next_hold: AtomicU64,
    pub(crate) holds: HoldTable,
    files: Mutex<BTreeMap<FileId, FileEntry>>,
}

/// What this process keeps for a database file while any handle has it open.
#[derive(Debug)]
struct FileEntry {
    queue: Arc<WriterQueue>,
    handles: usize,
}

/// A database file open in this process, held by each store and database handle of it. While
/// one is alive the process keeps the file's writer queue, board and lease slots; when the last
/// goes they are forgotten, so that a file deleted and made again (perhaps with the same inode)
/// or renamed starts afresh, and its first acquisition counts as dirty.
#[derive(Debug)]
pub(crate) struct OpenFile {
    process: Arc<Holder>,
    id: FileId,
    queue: Arc<WriterQueue>,
    fork_generation: u64,
}

impl OpenFile {
    pub(crate) fn id(&self) -> &FileId {
        &self.id
    }

    /// The writer queue shared by every handle of the file in this process.
    pub(crate) fn queue(&self) -> &Arc<WriterQueue> {
        &self.queue
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        // In a forked child the parent's tables are not ours to touch.
        if !forked_since(self.fork_generation) {
            self.process.close_file(&self.id);
        }
    }
}

impl Holder {
    /// A holder with a fresh random id and no leases.
    pub fn new() -> Result<Arc<Holder>> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| Error::Misuse(format!("no randomness for a holder id: {e}")))?;
        Ok(Arc::new(Holder {
            holder_id: id.iter().map(|b| format!("{b:02x}")).collect(),
            identity: Identity::of_this_process(),
            fork_generation: fork_generation(),
            next_hold: AtomicU64::new(1),
            holds: HoldTable::default(),
            files: Mutex::default(),
        }))
    }

    /// This OS process. Made on first use; a forked child gets a new one.
    pub fn current() -> Result<Arc<Holder>> {
        CURRENT.get_or_try_init(Holder::new).cloned()
    }

    /// The id written to the lease table: unique to this process (or simulated process).
    pub fn id(&self) -> &str {
        &self.holder_id
    }

    /// The OS process behind this holder, for liveness checks by waiters.
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    /// A number unique within this process for each hold it takes, so that a late release of an
    /// old hold can never give back a newer one.
    pub(crate) fn next_hold_number(&self) -> u64 {
        self.next_hold.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers one more handle of the database file `id`. `path` names the file (`None` for
    /// an in-memory store) so that its board can be mapped when the file is first opened.
    pub(crate) fn open_file(self: &Arc<Self>, id: FileId, path: Option<&Path>) -> OpenFile {
        let mut files = self.files.locked();
        let entry = files.entry(id.clone()).or_insert_with(|| FileEntry {
            queue: Arc::new(WriterQueue::new(path.and_then(WriterBoard::open))),
            handles: 0,
        });
        entry.handles += 1;
        OpenFile {
            process: self.clone(),
            queue: entry.queue.clone(),
            id,
            fork_generation: self.fork_generation,
        }
    }

    fn close_file(&self, id: &FileId) {
        let mut files = self.files.locked();
        if let Some(entry) = files.get_mut(id) {
            entry.handles -= 1;
            if entry.handles == 0 {
                files.remove(id);
                self.holds.forget_file(id);
            }
        }
    }

    /// `Err(Misuse)` when called in a child forked after this `Holder` was made.
    pub(crate) fn ensure_not_forked(&self) -> Result<()> {
        ensure_same_fork(self.fork_generation)
    }
}

/// Counts the forks this process is the child of; 0 in the original process. Every handle reads
/// it when it is made, so the fork handler is in place before any handle exists.
pub(crate) fn fork_generation() -> u64 {
    REGISTER_ATFORK.call_once(|| {
        // SAFETY: registers a handler that only touches atomics; valid for the process's life.
        unsafe { libc::pthread_atfork(None, None, Some(forget_parent_in_child)) };
    });
    FORK_GENERATION.load(Ordering::Acquire)
}

/// `Err(Misuse)` unless `made_in` is the current fork generation.
pub(crate) fn ensure_same_fork(made_in: u64) -> Result<()> {
    if made_in == fork_generation() {
        Ok(())
    } else {
        Err(Error::Misuse("this handle was created before fork(); a forked child must open its own".into()))
    }
}

/// True when a handle made in generation `made_in` is being dropped in a forked child, where
/// freeing it would close or write through the parent's connections: leak it instead.
pub(crate) fn forked_since(made_in: u64) -> bool {
    made_in != fork_generation()
}

/// Called by a handle's drop in a forked child: leaks the parent's connection rather than close
/// it, because closing it here could checkpoint, or delete, the parent's WAL.
pub(crate) fn leak_parent_connection(slot: &mut std::sync::Mutex<rusqlite::Connection>) {
    // An in-memory connection takes its place: free to open, harmless to close.
    let placeholder = rusqlite::Connection::open_in_memory().expect("an in-memory connection opens");
    std::mem::forget(std::mem::replace(slot.get_mut().unwrap_or_else(|p| p.into_inner()), placeholder));
}

extern "C" fn forget_parent_in_child() {
    // Runs in the child right after fork(), single-threaded. The parent's Holder (with its
    // mutexes and holds) is leaked on purpose: the child gets a new identity on first use.
    CURRENT.forget();
    crate::runtime::forget_parent_in_child();
    FORK_GENERATION.fetch_add(1, Ordering::AcqRel);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Lock, LockOptions, Store, StoreOptions};

    #[test]
    fn closed_files_leave_nothing_behind() {
        let process = Holder::new().unwrap();
        for _ in 0..3 {
            let options = StoreOptions { holder: Some(process.clone()), ..StoreOptions::default() };
            let store = Store::open_with(None, options).unwrap();
            drop(Lock::new(&store, "k", "app", LockOptions::DEFAULT).unwrap().try_acquire().unwrap());
        }
        // Forgotten at once: nothing (not a heartbeat that has yet to wake) keeps a closed store.
        assert!(process.files.lock().unwrap().is_empty());
        assert_eq!(process.holds.len(), 0);
    }
}
