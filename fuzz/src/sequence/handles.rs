//! The handles of an input, in slot tables, with what the fuzzer knows of each, and how each is
//! freed.

use std::ptr::null_mut;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use lease::ffi::{self, LeaseDb, LeaseGuard, LeaseLock, LeaseStore, LeaseTx};

use super::ops::Ref;
use crate::callbacks::{GuardInfo, LostRecord};
use crate::contract;
use crate::files::FileTag;
use crate::suspension::Mark;

/// The slots of each handle type.
const STORES: usize = 3;
const LOCKS: usize = 4;
const GUARDS: usize = 6;
const DBS: usize = 3;
pub(super) const TXS: usize = 3;

pub(super) struct Store {
    pub(super) ptr: *mut LeaseStore,
    pub(super) file: FileTag,
}

pub(super) struct Lock {
    pub(super) ptr: *mut LeaseLock,
    pub(super) file: FileTag,
    pub(super) key: Vec<u8>,
    /// The lost callbacks given to it that may still be installed.
    pub(super) lost: Mutex<Vec<Arc<LostRecord>>>,
}

pub(super) struct Db {
    pub(super) ptr: *mut LeaseDb,
    pub(super) file: usize,
}

// SAFETY: LeaseStore, LeaseLock and LeaseDb may be used by several threads at once (the header).
unsafe impl Send for Store {}
unsafe impl Sync for Store {}
unsafe impl Send for Lock {}
unsafe impl Sync for Lock {}
unsafe impl Send for Db {}
unsafe impl Sync for Db {}

pub(super) struct Tx {
    pub(super) ptr: *mut LeaseTx,
    /// Its database's file.
    pub(super) file: usize,
    pub(super) chunked: bool,
    pub(super) state: TxState,
    /// Before it began: a suspension since may have rolled it back.
    pub(super) since: Mark,
    /// After its last call that succeeded (or its beginning): a whole suspension since surely
    /// rolled it back, if it was still open.
    pub(super) quiet: Mark,
}

// SAFETY: a LeaseTx may move between threads; only one thread at a time ever has it here.
unsafe impl Send for Tx {}

/// What the fuzzer knows of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxState {
    Open,
    /// Ended by itself (its SQL ended it, or a chunk could not begin): only MISUSE from now on.
    Ended,
    /// After a failed statement, which SQLite may have ended the transaction with.
    Unknown,
}

/// Handles that may be shared between threads.
#[derive(Default)]
pub(super) struct Handles {
    pub(super) stores: Vec<Option<Store>>,
    pub(super) locks: Vec<Option<Lock>>,
    pub(super) guards: Vec<Option<GuardInfo>>,
    pub(super) dbs: Vec<Option<Db>>,
}

impl Handles {
    pub(super) fn empty() -> Handles {
        Handles {
            stores: (0..STORES).map(|_| None).collect(),
            locks: (0..LOCKS).map(|_| None).collect(),
            guards: (0..GUARDS).map(|_| None).collect(),
            dbs: (0..DBS).map(|_| None).collect(),
        }
    }
}

/// Where a [`Ref`] points.
#[derive(Clone, Copy)]
pub(super) enum At {
    Shared(usize),
    Own(usize),
}

/// Resolves `index` over the shared slots, then the own ones; `None` for NULL.
pub(super) fn find<T>(shared: &[Option<T>], own: &[Option<T>], index: Ref) -> Option<At> {
    let index = usize::from(index) % (shared.len() + own.len() + 1);
    if index < shared.len() {
        shared[index].as_ref().map(|_| At::Shared(index))
    } else {
        let index = index - shared.len();
        own.get(index)?.as_ref().map(|_| At::Own(index))
    }
}

/// Puts `value` in slot `slot` of `table`; returns what was there.
pub(super) fn put<T>(table: &mut [Option<T>], slot: u8, value: T) -> Option<T> {
    let at = usize::from(slot) % table.len();
    table[at].replace(value)
}

/// Puts `value` in a free slot of `table`; returns it when there is none.
pub(super) fn put_free<T>(table: &mut [Option<T>], value: T) -> Option<T> {
    match table.iter_mut().find(|slot| slot.is_none()) {
        Some(slot) => {
            *slot = Some(value);
            None
        }
        None => Some(value),
    }
}

pub(super) fn free_store(store: Option<Store>) {
    let ptr = store.map_or(null_mut(), |store| store.ptr);
    contract::quiet("lease_store_free", || ffi::lease_store_free(ptr));
}

/// Frees a lock: when this returns, its lost callback is not running, will not run, and its
/// destroy has run.
pub(super) fn free_lock(lock: Option<Lock>) {
    let ptr = lock.as_ref().map_or(null_mut(), |lock| lock.ptr);
    contract::quiet("lease_lock_free", || ffi::lease_lock_free(ptr));
    for record in
        lock.map(|lock| lock.lost.into_inner().unwrap_or_else(|p| p.into_inner())).unwrap_or_default()
    {
        record.retired.store(true, Ordering::SeqCst);
        record.check_destroyed("after lease_lock_free");
    }
}

pub(super) fn release_guard(guard: Option<GuardInfo>) {
    let ptr = guard.map_or(null_mut::<LeaseGuard>(), |guard| guard.ptr);
    contract::quiet("lease_guard_release", || ffi::lease_guard_release(ptr));
}

pub(super) fn free_db(db: Option<Db>) {
    let ptr = db.map_or(null_mut(), |db| db.ptr);
    contract::quiet("lease_db_free", || ffi::lease_db_free(ptr));
}

pub(super) fn rollback_tx(tx: Option<Tx>) {
    let ptr = tx.map_or(null_mut(), |tx| tx.ptr);
    contract::quiet("lease_tx_rollback", || ffi::lease_tx_rollback(ptr));
}
