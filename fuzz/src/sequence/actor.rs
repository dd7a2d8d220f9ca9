//! An actor: one thread's part of an input, running its calls on its own handles and on those
//! it shares with another thread; and the end of an input.

use std::ptr::null_mut;
use std::time::{Duration, Instant};

use lease::ffi;

use super::databases::Begin;
use super::handles::{
    find, free_db, free_lock, free_store, put_free, release_guard, rollback_tx, At, Db, Handles, Lock, Store,
    Tx, TXS,
};
use super::library::{self, last_error, status_str, version};
use super::locks::options_init;
use super::ops::{ChunkMs, Op, Ref};
use super::{Input, MAX_PARALLEL_OPS};
use crate::callbacks::{GuardInfo, NULL_CONTEXT};
use crate::contract::{self, violation};
use crate::locked;

use lease::ffi::LeaseStatus::{
    self, LEASE_BUSY as BUSY, LEASE_DATABASE as DATABASE, LEASE_INVALID_ARGUMENT as INVALID,
    LEASE_MISUSE as MISUSE, LEASE_OK as OK, LEASE_SUSPENDED as SUSPENDED,
};
use std::sync::atomic::Ordering;

use crate::files::Opens;

/// The longest acquisition timeout, busy timeout and pause, in milliseconds.
const LONGEST_MS: u8 = 10;

/// The longest timeout of lease_suspend, in milliseconds: it waits only for statements that are
/// running, which the suspension interrupts.
const LONGEST_SUSPEND_MS: u8 = 200;

/// How long the end of an input waits for asynchronous acquisitions to call back: far more than
/// their timeouts; past it, one never called back.
const CALLBACK_DEADLINE: Duration = Duration::from_secs(10);

/// The statuses an open of a store or a database may return: usually, and while the process is
/// suspended.
pub(super) type OpenStatuses = (&'static [LeaseStatus], &'static [LeaseStatus]);

impl Actor<'_> {
    /// What lease_store_open and lease_db_open may return for a path that `opens`. While
    /// suspended (the second list) a file that needs no write opens all the same: each input's
    /// files are in WAL mode with their lease table until SQL writes them.
    pub(super) fn open_statuses(&self, opens: Opens, null_out: bool) -> OpenStatuses {
        match opens {
            _ if null_out => (&[INVALID], &[INVALID]),
            Opens::Invalid => (&[INVALID], &[INVALID]),
            Opens::Fails => (&[DATABASE], &[DATABASE, SUSPENDED]),
            Opens::File(index) if self.input.touched[index].load(Ordering::SeqCst) => {
                (&[OK, DATABASE, BUSY], &[OK, DATABASE, BUSY, SUSPENDED])
            }
            Opens::File(_) => (&[OK], &[OK]),
        }
    }
}

/// One thread's part of an input: its own handles, and those it shares with another thread.
pub(super) struct Actor<'a> {
    pub(super) input: &'a Input,
    pub(super) shared: Option<&'a Handles>,
    pub(super) own: Handles,
    pub(super) txs: Vec<Option<Tx>>,
}

/// Makes `$name(index)`: the handle of `$field` that a [`Ref`] names, shared or own; `None` for
/// NULL.
macro_rules! getter {
    ($name:ident, $field:ident, $type:ty) => {
        pub(super) fn $name(&self, index: Ref) -> Option<&$type> {
            match self.find(|handles| &handles.$field, index)? {
                At::Shared(at) => self.shared?.$field[at].as_ref(),
                At::Own(at) => self.own.$field[at].as_ref(),
            }
        }
    };
}

impl<'a> Actor<'a> {
    pub(super) fn new(input: &'a Input, shared: Option<&'a Handles>, txs: Vec<Option<Tx>>) -> Actor<'a> {
        let mut txs = txs;
        txs.resize_with(TXS, || None);
        Actor { input, shared, own: Handles::empty(), txs }
    }

    /// True while no other thread of the fuzzer makes calls, so that checks which depend on the
    /// order of calls hold.
    pub(super) fn alone(&self) -> bool {
        self.shared.is_none()
    }

    fn find<T>(&self, table: fn(&Handles) -> &Vec<Option<T>>, index: Ref) -> Option<At> {
        let shared = self.shared.map_or(&[][..], |shared| &table(shared)[..]);
        find(shared, table(&self.own), index)
    }

    getter!(store, stores, Store);
    getter!(lock, locks, Lock);
    getter!(guard, guards, GuardInfo);
    getter!(db, dbs, Db);

    /// The own slot `index` names, to free what is there: `Err(())` for a shared handle, which
    /// this thread must not free; `Ok(None)` for NULL.
    fn own_slot<T>(&self, table: fn(&Handles) -> &Vec<Option<T>>, index: Ref) -> Result<Option<usize>, ()> {
        match self.find(table, index) {
            None => Ok(None),
            Some(At::Own(at)) => Ok(Some(at)),
            Some(At::Shared(_)) => Err(()),
        }
    }

    fn holds_guards(&self) -> bool {
        let shared = self.shared.map_or(&[][..], |shared| &shared.guards[..]);
        shared.iter().chain(&self.own.guards).any(Option::is_some)
    }

    pub(super) fn tx_slot(&self, index: Ref) -> Option<usize> {
        let at = usize::from(index) % (self.txs.len() + 1);
        self.txs.get(at)?.as_ref().map(|_| at)
    }

    pub(super) fn run(&mut self, op: &Op) {
        match op {
            Op::StoreOpen { path, null_out, slot } => self.store_open(*path, *null_out, *slot),
            Op::StoreOpenMemory { null_out, slot } => self.store_open_memory(*null_out, *slot),
            Op::StoreFree { store } => {
                if let Ok(at) = self.own_slot(|handles| &handles.stores, *store) {
                    free_store(at.and_then(|at| self.own.stores[at].take()));
                }
            }
            Op::OptionsInit { size } => options_init(size),
            Op::LockNew { store, key, label, options, null_out, slot } => {
                self.lock_new(*store, key, label, options, *null_out, *slot)
            }
            Op::TryAcquire { lock, null_out, slot } => self.acquire(*lock, None, *null_out, *slot),
            Op::Acquire { lock, timeout_ms, null_out, slot } => {
                self.acquire(*lock, Some(timeout_ms % (LONGEST_MS + 1)), *null_out, *slot)
            }
            Op::AcquireAsync { lock, timeout_ms, null_callback, context } => {
                self.acquire_async(*lock, timeout_ms % (LONGEST_MS + 1), *null_callback, context)
            }
            Op::CancelAcquire { lock, context } => self.cancel_acquire(*lock, context),
            Op::CollectAsync => self.collect_async(),
            Op::SetLostCallback { lock, callback, destroy } => {
                self.set_lost_callback(*lock, *callback, *destroy)
            }
            Op::LockFree { lock } => {
                if let Ok(at) = self.own_slot(|handles| &handles.locks, *lock) {
                    free_lock(at.and_then(|at| self.own.locks[at].take()));
                }
            }
            Op::GuardCheck { guard } => self.guard_check(*guard),
            Op::GuardGeneration { guard } => {
                let info = self.guard(*guard);
                let ptr = info.map_or(null_mut(), |info| info.ptr);
                let generation =
                    contract::quiet("lease_guard_generation", || ffi::lease_guard_generation(ptr));
                if generation != info.map_or(0, |info| info.generation) {
                    violation(format!("lease_guard_generation changed to {generation}: {info:?}"));
                }
            }
            Op::GuardIsDirty { guard } => {
                let info = self.guard(*guard);
                let ptr = info.map_or(null_mut(), |info| info.ptr);
                let dirty = contract::quiet("lease_guard_is_dirty", || ffi::lease_guard_is_dirty(ptr));
                if dirty != info.is_some_and(|info| info.dirty) {
                    violation(format!("lease_guard_is_dirty changed to {dirty}: {info:?}"));
                }
            }
            Op::GuardRelease { guard } => {
                if let Ok(at) = self.own_slot(|handles| &handles.guards, *guard) {
                    release_guard(at.and_then(|at| self.own.guards[at].take()));
                }
            }
            Op::DbOpen { path, null_out, slot, busy_timeout_ms } => {
                self.db_open(*path, *null_out, *slot, busy_timeout_ms % (LONGEST_MS + 1))
            }
            Op::DbSetBusyTimeout { db, timeout_ms } => {
                let ptr = self.db(*db).map_or(null_mut(), |db| db.ptr);
                let allowed = if ptr.is_null() { INVALID } else { OK };
                contract::status("lease_db_set_busy_timeout", &[allowed], || {
                    ffi::lease_db_set_busy_timeout(ptr, u32::from(timeout_ms % (LONGEST_MS + 1)))
                });
            }
            Op::DbExecute { db, statement, null_changes } => self.db_execute(*db, statement, *null_changes),
            Op::DbQuery { db, statement, rows, nested } => self.db_query(*db, statement, rows, nested),
            Op::DbBegin { db, null_out, slot } => self.db_begin(*db, Begin::Plain, *null_out, *slot),
            Op::DbBeginChunked { db, chunk_ms, null_out, slot } => {
                let chunk_ms = match chunk_ms {
                    ChunkMs::Zero => 0,
                    ChunkMs::Short(ms) => u32::from(ms % LONGEST_MS) + 1,
                    ChunkMs::Default => ffi::LEASE_DEFAULT_CHUNK_MS,
                    ChunkMs::Max => u32::MAX,
                };
                self.db_begin(*db, Begin::Chunked(chunk_ms), *null_out, *slot)
            }
            Op::DbBeginFenced { db, guard, null_out, slot } => {
                self.db_begin(*db, Begin::Fenced(*guard), *null_out, *slot)
            }
            Op::TxExecute { tx, statement, null_changes } => self.tx_execute(*tx, statement, *null_changes),
            Op::TxQuery { tx, statement, rows, nested } => self.tx_query(*tx, statement, rows, nested),
            Op::TxMaybeCommit { tx, null_out, prefill } => self.tx_maybe_commit(*tx, *null_out, *prefill),
            Op::TxCommit { tx } => self.tx_commit(*tx),
            Op::TxRollback { tx } => {
                let tx = self.tx_slot(*tx).and_then(|at| self.txs[at].take());
                rollback_tx(tx);
            }
            Op::DbFree { db } => {
                if let Ok(at) = self.own_slot(|handles| &handles.dbs, *db) {
                    free_db(at.and_then(|at| self.own.dbs[at].take()));
                }
            }
            Op::StatusStr { code } => status_str(*code),
            Op::LastError => last_error(),
            Op::Version => version(),
            Op::Suspend { timeout_ms } => library::suspend(u32::from(timeout_ms % (LONGEST_SUSPEND_MS + 1))),
            Op::Resume => library::resume(),
            Op::IsSuspended => library::is_suspended(),
            // With a guard held, lease_shutdown waits 100 ms before it refuses: it is called only
            // while this thread holds none (a pending acquisition, or a guard a callback kept,
            // still makes it refuse).
            Op::Shutdown if self.holds_guards() => {}
            Op::Shutdown => {
                contract::status("lease_shutdown", &[OK, MISUSE], || ffi::lease_shutdown());
            }
            Op::Sleep { ms } => std::thread::sleep(Duration::from_millis(u64::from(ms % (LONGEST_MS + 1)))),
        }
    }

    /// Runs two lists of calls at once on two new threads, sharing this thread's handles.
    pub(super) fn parallel(&mut self, first: &[Op], second: &[Op]) {
        let shared = std::mem::take(&mut self.own);
        let txs = std::mem::take(&mut self.txs);
        let input = self.input;
        let run = |ops: &[Op], txs: Vec<Option<Tx>>, shared: &Handles| {
            contract::fresh_thread();
            let mut actor = Actor::new(input, Some(shared), txs);
            for op in ops.iter().take(MAX_PARALLEL_OPS) {
                actor.run(op);
                contract::assert_kept(op);
            }
            (actor.own, actor.txs)
        };
        let (first, second) = std::thread::scope(|scope| {
            let first = scope.spawn(|| run(first, txs, &shared));
            let second = scope.spawn(|| run(second, Vec::new(), &shared));
            let join = |thread: std::thread::ScopedJoinHandle<'_, _>| {
                thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            };
            (join(first), join(second))
        });
        self.own = shared;
        self.txs = Vec::new();
        for (own, txs) in [first, second] {
            self.adopt(own, txs);
        }
        self.txs.resize_with(TXS, || None);
    }

    /// Takes another thread's handles into free slots, and frees those that find none.
    fn adopt(&mut self, other: Handles, txs: Vec<Option<Tx>>) {
        for store in other.stores.into_iter().flatten() {
            free_store(put_free(&mut self.own.stores, store));
        }
        for lock in other.locks.into_iter().flatten() {
            free_lock(put_free(&mut self.own.locks, lock));
        }
        for guard in other.guards.into_iter().flatten() {
            release_guard(put_free(&mut self.own.guards, guard));
        }
        for db in other.dbs.into_iter().flatten() {
            free_db(put_free(&mut self.own.dbs, db));
        }
        for tx in txs.into_iter().flatten() {
            if self.txs.len() < TXS {
                self.txs.push(Some(tx));
            } else {
                rollback_tx(Some(tx));
            }
        }
    }

    /// Ends the input: the process resumed, everything ended and freed, every acquisition called
    /// back, and the library's thread stopped.
    pub(super) fn finish(mut self) {
        library::resume();
        // Transactions first: a release or a renewal may wait for their write turn.
        for tx in std::mem::take(&mut self.txs) {
            rollback_tx(tx);
        }
        for guard in std::mem::take(&mut self.own.guards) {
            release_guard(guard);
        }
        let records = locked(&self.input.async_records).clone();
        let deadline = Instant::now() + CALLBACK_DEADLINE;
        while !(NULL_CONTEXT.all_called_back() && records.iter().all(|record| record.all_called_back())) {
            if Instant::now() > deadline {
                violation(format!(
                    "asynchronous acquisitions never called back: {records:?} {NULL_CONTEXT:?}"
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        for record in &records {
            for guard in std::mem::take(&mut *locked(&record.kept)) {
                release_guard(Some(guard));
            }
        }
        for lock in std::mem::take(&mut self.own.locks) {
            free_lock(lock);
        }
        for store in std::mem::take(&mut self.own.stores) {
            free_store(store);
        }
        for db in std::mem::take(&mut self.own.dbs) {
            free_db(db);
        }
        contract::status("lease_shutdown", &[OK], || ffi::lease_shutdown());
        for record in locked(&self.input.lost_records).iter() {
            record.check_destroyed("at the end of the input");
        }
    }
}
