//! The `abi_sequence` target: a sequence of C ABI calls on a few handles, in any order, checked
//! against the header after every call.
//!
//! The input decodes into steps. Each step is one call (or a pause), or two lists of calls run
//! at once on two new threads. Handles live in small slot tables and are named by an index into
//! them, so a call may get NULL (an empty slot), another handle of the same type than the one
//! that would make sense, or one whose end state the header describes (an ended transaction, a
//! lost guard). A handle is never used after it was freed: that is the caller's undefined
//! behaviour, not a finding.
//!
//! During a parallel step the main thread's stores, locks, guards and databases are shared by
//! both threads (the header: every handle but LeaseTx may be used by several threads at once)
//! but freed by neither; what a thread makes is its own, and the main thread takes it back when
//! the step ends. The transactions go to the first thread alone (a LeaseTx is used by one thread
//! at a time).
//!
//! Every duration is short (acquisitions, busy timeouts and pauses up to 10 ms) so that an
//! input runs in well under a second, even one that waits for itself: a thread with an open
//! transaction may write outside it, which waits for the transaction until the busy timeout.
//!
//! At the end everything is ended and freed, every asynchronous acquisition has called back, and
//! lease_shutdown must return LEASE_OK.

use std::collections::BTreeMap;
use std::ffi::{c_void, CStr};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use lease::ffi::{self, LeaseDb, LeaseGuard, LeaseLock, LeaseLockOptions, LeaseStatus, LeaseStore, LeaseTx};

use crate::callbacks::{self, AsyncRecord, GuardInfo, LostRecord, NULL_CONTEXT};
use crate::contract::{self, c_ptr, c_string, c_text, out_slot, violation, written};
use crate::files::{FileTag, Files, Opens, PathArg, DATABASES};
use crate::locked;
use crate::params::{Bound, Param};
use crate::rows::{self, Column};

use LeaseStatus::{
    LEASE_BUSY as BUSY, LEASE_DATABASE as DATABASE, LEASE_INVALID_ARGUMENT as INVALID, LEASE_LOST as LOST,
    LEASE_MISUSE as MISUSE, LEASE_OK as OK, LEASE_TIMEOUT as TIMEOUT,
};

const MAX_STEPS: usize = 48;
const MAX_PARALLEL_OPS: usize = 12;

/// The slots of each handle type.
const STORES: usize = 3;
const LOCKS: usize = 4;
const GUARDS: usize = 6;
const DBS: usize = 3;
const TXS: usize = 3;

/// The longest acquisition timeout, busy timeout and pause, in milliseconds.
const LONGEST_MS: u8 = 10;

/// How long the end of an input waits for asynchronous acquisitions to call back: far more than
/// their timeouts; past it, one never called back.
const CALLBACK_DEADLINE: Duration = Duration::from_secs(10);

/// What `out_changes` holds until a call writes it; no statement changes that many rows.
const NO_CHANGES: u64 = u64::MAX - 0x5eed;

/// LeaseLockOptions as the fuzzer lays it out: the four fields, then bytes that a later version
/// might define.
const OPTIONS_WORDS: usize = 16;

/// What lease_lock_options_init leaves in the bytes it must not write.
const UNWRITTEN: u32 = 0xa5a5_a5a5;

/// lease_lock_options_init's defaults (the header).
const DEFAULT_OPTIONS: [u32; 3] = [6000, 2000, 50];

/// A context that names no acquisition, for lease_lock_cancel_acquire.
static NO_ACQUISITION: u8 = 0;

#[derive(Arbitrary, Debug)]
enum Step {
    Op(Op),
    Parallel(Vec<Op>, Vec<Op>),
}

/// An index into a slot table (the calling thread's own, after the shared ones); past the end, or
/// an empty slot, is NULL.
type Ref = u8;

#[derive(Arbitrary, Debug)]
enum Op {
    StoreOpen {
        path: PathArg,
        null_out: bool,
        slot: u8,
    },
    StoreOpenMemory {
        null_out: bool,
        slot: u8,
    },
    StoreFree {
        store: Ref,
    },
    OptionsInit {
        size: OptionsSize,
    },
    LockNew {
        store: Ref,
        key: Text,
        label: Text,
        options: Options,
        null_out: bool,
        slot: u8,
    },
    TryAcquire {
        lock: Ref,
        null_out: bool,
        slot: u8,
    },
    Acquire {
        lock: Ref,
        timeout_ms: u8,
        null_out: bool,
        slot: u8,
    },
    AcquireAsync {
        lock: Ref,
        timeout_ms: u8,
        null_callback: bool,
        context: AsyncContext,
    },
    CancelAcquire {
        lock: Ref,
        context: CancelContext,
    },
    /// Takes the guards that asynchronous acquisitions kept.
    CollectAsync,
    SetLostCallback {
        lock: Ref,
        callback: bool,
        destroy: bool,
    },
    LockFree {
        lock: Ref,
    },
    GuardCheck {
        guard: Ref,
    },
    GuardGeneration {
        guard: Ref,
    },
    GuardIsDirty {
        guard: Ref,
    },
    GuardRelease {
        guard: Ref,
    },
    DbOpen {
        path: PathArg,
        null_out: bool,
        slot: u8,
        busy_timeout_ms: u8,
    },
    DbSetBusyTimeout {
        db: Ref,
        timeout_ms: u8,
    },
    DbExecute {
        db: Ref,
        statement: Statement,
        null_changes: bool,
    },
    DbQuery {
        db: Ref,
        statement: Statement,
        rows: RowPlan,
        nested: InDbRow,
    },
    DbBegin {
        db: Ref,
        null_out: bool,
        slot: u8,
    },
    DbBeginChunked {
        db: Ref,
        chunk_ms: ChunkMs,
        null_out: bool,
        slot: u8,
    },
    DbBeginFenced {
        db: Ref,
        guard: Ref,
        null_out: bool,
        slot: u8,
    },
    TxExecute {
        tx: Ref,
        statement: Statement,
        null_changes: bool,
    },
    TxQuery {
        tx: Ref,
        statement: Statement,
        rows: RowPlan,
        nested: InTxRow,
    },
    TxMaybeCommit {
        tx: Ref,
        null_out: bool,
        prefill: bool,
    },
    TxCommit {
        tx: Ref,
    },
    TxRollback {
        tx: Ref,
    },
    DbFree {
        db: Ref,
    },
    StatusStr {
        code: u32,
    },
    LastError,
    Version,
    Shutdown,
    Sleep {
        ms: u8,
    },
}

/// A string argument (a key or a label).
#[derive(Arbitrary, Debug)]
enum Text {
    Null,
    Known(u8),
    Bytes(Vec<u8>),
}

/// Keys and labels: few, so that locks share keys; one empty, one not ASCII.
const TEXTS: &[&[u8]] = &[b"sync", b"a", b"b", b"", "cl\u{e9}".as_bytes(), b"k\0after a NUL", b"\xff\xfe"];

impl Text {
    fn c_string(&self) -> Option<Vec<u8>> {
        match self {
            Text::Null => None,
            Text::Known(index) => Some(c_string(TEXTS[usize::from(*index) % TEXTS.len()])),
            Text::Bytes(bytes) => Some(c_string(bytes)),
        }
    }
}

/// The options of lease_lock_new.
#[derive(Arbitrary, Debug)]
enum Options {
    Null,
    Given { size: u8, lease_ms: Ms, renew_every_ms: Ms, max_backoff_ms: Ms, tail: Vec<u8> },
}

/// A duration option.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Ms {
    Zero,
    Short(u8),
    Default,
    Day,
    OverADay,
    Max,
    Any(u32),
}

impl Ms {
    fn get(self) -> u32 {
        match self {
            Ms::Zero => 0,
            Ms::Short(ms) => u32::from(ms % 40),
            Ms::Default => 6000,
            Ms::Day => 86_400_000,
            Ms::OverADay => 86_400_001,
            Ms::Max => u32::MAX,
            Ms::Any(ms) => ms,
        }
    }
}

/// The size given to lease_lock_options_init.
#[derive(Arbitrary, Debug)]
enum OptionsSize {
    /// Up to the fuzzer's buffer: 64 bytes.
    Buffer(u8),
    /// With a NULL pointer, any size.
    Null(u64),
}

#[derive(Arbitrary, Debug)]
enum AsyncContext {
    Null,
    New {
        keep: bool,
    },
    /// Another context used before with a lock on the same lease.
    Reuse(u8),
}

#[derive(Arbitrary, Debug)]
enum CancelContext {
    Null,
    Record(u8),
    Unknown,
}

#[derive(Arbitrary, Debug)]
enum ChunkMs {
    Zero,
    Short(u8),
    Default,
    Max,
}

/// A statement and its parameters.
#[derive(Arbitrary, Debug)]
struct Statement {
    sql: Sql,
    params: Vec<Param>,
    null_params: bool,
    /// Fewer parameters passed than the array holds (never more: liblease would read past it).
    fewer: u8,
}

#[derive(Arbitrary, Debug)]
enum Sql {
    Null,
    Known(u8),
    KnownWithTail(u8, Vec<u8>),
    Bytes(Vec<u8>),
}

/// SQL that reaches liblease's paths: writes, reads, several statements, none, transaction
/// control (which liblease refuses or notices), the lease table itself (which makes leases lost
/// or held by "someone else"), journal modes and failures.
const SQL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS t(k INTEGER PRIMARY KEY, v)",
    "INSERT INTO t(v) VALUES (?)",
    "INSERT INTO t(k, v) VALUES (?, ?)",
    "INSERT INTO t(v) SELECT randomblob(100) FROM t",
    "UPDATE t SET v = ? WHERE k % 2 = 0",
    "DELETE FROM t WHERE k > ?",
    "SELECT k, v FROM t ORDER BY k",
    "SELECT * FROM t WHERE v = ?",
    "SELECT ?, ?, ?",
    "SELECT ?3, :name, @other",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300) SELECT x, randomblob(x % 7) FROM c",
    "SELECT CAST(x'ff00fe' AS TEXT), x'', '', 1.5, NULL",
    "SELECT 1; SELECT 2",
    "SELECT 1;",
    "",
    "  -- only a comment",
    "BEGIN",
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "END",
    "SAVEPOINT s",
    "RELEASE s",
    "ROLLBACK TO s",
    "PRAGMA foreign_keys = ON",
    "PRAGMA journal_mode",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA wal_checkpoint(TRUNCATE)",
    "VACUUM",
    "SELECT * FROM liblease_lease",
    "UPDATE liblease_lease SET expires_ms = 0",
    "UPDATE liblease_lease SET holder = 'someone else', expires_ms = expires_ms + 3600000",
    "UPDATE liblease_lease SET generation = generation + 1",
    "DELETE FROM liblease_lease",
    "DROP TABLE liblease_lease",
    "DROP TABLE t",
    "SELECT * FROM no_such_table",
    "CREATE TEMP TABLE IF NOT EXISTS tt(x)",
    "ATTACH DATABASE ':memory:' AS other",
    "INSERT INTO t(k, v) VALUES (1, 'twice')",
    "CREATE TRIGGER IF NOT EXISTS tr AFTER INSERT ON t BEGIN DELETE FROM t WHERE k < new.k - 5; END",
    "SELECT zeroblob(1000000)",
    "PRAGMA user_version = 7",
    "ANALYZE",
];

impl Sql {
    fn c_string(&self) -> Option<Vec<u8>> {
        let known = |index: &u8| SQL[usize::from(*index) % SQL.len()].as_bytes();
        match self {
            Sql::Null => None,
            Sql::Known(index) => Some(c_string(known(index))),
            Sql::KnownWithTail(index, tail) => Some(c_string(&[known(index), tail].concat())),
            Sql::Bytes(bytes) => Some(c_string(bytes)),
        }
    }
}

/// A statement laid out for C.
struct CStatement {
    sql: Option<Vec<u8>>,
    params: Bound,
    null_params: bool,
    count: usize,
}

impl CStatement {
    fn new(statement: &Statement) -> CStatement {
        let params = Bound::new(&statement.params);
        let count = params.len().saturating_sub(statement.fewer.into());
        CStatement { sql: statement.sql.c_string(), params, null_params: statement.null_params, count }
    }

    fn sql(&self) -> *const std::ffi::c_char {
        c_ptr(&self.sql)
    }

    fn params(&self) -> *const ffi::LeaseValue {
        if self.null_params {
            std::ptr::null()
        } else {
            self.params.as_ptr()
        }
    }

    /// True when the header says LEASE_INVALID_ARGUMENT whatever the handle's state: NULL SQL,
    /// SQL that is not UTF-8, or a NULL array of some parameters.
    fn invalid(&self) -> bool {
        let not_utf8 = self.sql.as_ref().is_some_and(|sql| std::str::from_utf8(c_text(sql)).is_err());
        self.sql.is_none() || not_utf8 || (self.null_params && self.count > 0)
    }

    /// True when it may write: a database's file is then "touched" (see [`Input::touched`]).
    fn may_write(&self) -> bool {
        self.sql.is_some()
    }
}

/// How a query's row callback answers.
#[derive(Arbitrary, Debug)]
struct RowPlan {
    null_callback: bool,
    /// Stop after this many rows (0: never).
    stop_after: u8,
    /// What to return to stop: any non-zero value.
    stop_code: i32,
}

/// What a LeaseDb query's row callback calls on its first row.
#[derive(Arbitrary, Debug)]
enum InDbRow {
    Nothing,
    /// The same handle's lease_db_query: LEASE_MISUSE.
    QuerySame,
    /// The same handle's lease_db_execute: allowed.
    ExecuteSame(Statement),
    /// Another handle's query (or the same one, if the index says so).
    QueryOther(Ref),
}

/// What a LeaseTx query's row callback calls on its first row.
#[derive(Arbitrary, Debug)]
enum InTxRow {
    Nothing,
    /// Any function of the same transaction: LEASE_MISUSE.
    ExecuteSame,
    MaybeCommitSame,
    /// Also LEASE_MISUSE; the transaction is rolled back and freed when the query returns.
    CommitSame,
    RollbackSame,
    /// A database handle's query: allowed.
    QueryDb(Ref),
}

pub fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let mut steps = Vec::new();
    while steps.len() < MAX_STEPS && !input.is_empty() {
        match Step::arbitrary(&mut input) {
            Ok(step) => steps.push(step),
            Err(_) => break,
        }
    }
    contract::adopt_last_error();
    callbacks::forget_acquisitions();
    let input = Input::new();
    let mut main = Actor::new(&input, None, Vec::new());
    for step in &steps {
        match step {
            Step::Op(op) => main.run(op),
            Step::Parallel(first, second) => main.parallel(first, second),
        }
        contract::assert_kept(step);
    }
    main.finish();
    contract::assert_kept(&"the end of the input");
}

/// What the threads of one input share besides handles: its files and its callbacks' records.
struct Input {
    files: Files,
    async_records: Mutex<Vec<Arc<AsyncRecord>>>,
    lost_records: Mutex<Vec<Arc<LostRecord>>>,
    next_memory: AtomicU32,
    /// Files that SQL may have written (dropped the lease table, say): opening a store there may
    /// then fail, and leases kept there may be lost.
    touched: [AtomicBool; DATABASES],
    /// The shortest lease_ms of the locks made on each lease (file and key).
    shortest_lease: Mutex<BTreeMap<(FileTag, Vec<u8>), u32>>,
}

impl Input {
    /// A fresh directory whose databases already have their lease table: creating it later,
    /// while a transaction of this process holds the file, would wait seconds.
    fn new() -> Input {
        let files = Files::new();
        files.write_databases(with_lease_table());
        Input {
            files,
            async_records: Mutex::default(),
            lost_records: Mutex::default(),
            next_memory: AtomicU32::new(0),
            touched: Default::default(),
            shortest_lease: Mutex::default(),
        }
    }

    /// True when `guard`'s lease cannot have been lost yet: it was not seen lost, no SQL wrote
    /// its file, and every lock on it has a lease of the default length or more, which an
    /// input does not outlast (its renewals always have time to get in).
    fn surely_held(&self, guard: &GuardInfo) -> bool {
        let untouched = match guard.file {
            FileTag::Database(index) => !self.touched[index].load(Ordering::SeqCst),
            FileTag::Memory(_) => true,
        };
        let shortest = locked(&self.shortest_lease).get(&(guard.file, guard.key.clone())).copied();
        !guard.lost.load(Ordering::SeqCst) && untouched && shortest.is_some_and(|ms| ms >= DEFAULT_OPTIONS[0])
    }
}

/// The bytes of a database file that holds liblease's lease table and nothing else, made once:
/// each input's databases start as copies, which takes microseconds where making the table takes
/// milliseconds.
fn with_lease_table() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let files = Files::new();
        let path = files.database(0);
        let c_path = c_string(path.as_os_str().as_encoded_bytes());
        let mut store = out_slot();
        let status = contract::status("lease_store_open", &[OK], || {
            ffi::lease_store_open(c_path.as_ptr().cast(), &mut store)
        });
        let store = written("lease_store_open", status, store).expect("a new database opens");
        // Closing the last connection folds the WAL into the file, which stays in WAL mode.
        contract::quiet("lease_store_free", || ffi::lease_store_free(store));
        std::fs::read(&path).expect("the database just made")
    })
}

struct Store {
    ptr: *mut LeaseStore,
    file: FileTag,
}

struct Lock {
    ptr: *mut LeaseLock,
    file: FileTag,
    key: Vec<u8>,
    /// The lost callbacks given to it that may still be installed.
    lost: Mutex<Vec<Arc<LostRecord>>>,
}

struct Db {
    ptr: *mut LeaseDb,
    file: usize,
}

// SAFETY: LeaseStore, LeaseLock and LeaseDb may be used by several threads at once (the header).
unsafe impl Send for Store {}
unsafe impl Sync for Store {}
unsafe impl Send for Lock {}
unsafe impl Sync for Lock {}
unsafe impl Send for Db {}
unsafe impl Sync for Db {}

struct Tx {
    ptr: *mut LeaseTx,
    /// Its database's file.
    file: usize,
    chunked: bool,
    state: TxState,
}

// SAFETY: a LeaseTx may move between threads; only one thread at a time ever has it here.
unsafe impl Send for Tx {}

/// What the fuzzer knows of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    Open,
    /// Ended by itself (its SQL ended it, or a chunk could not begin): only MISUSE from now on.
    Ended,
    /// After a failed statement, which SQLite may have ended the transaction with.
    Unknown,
}

/// Handles that may be shared between threads.
#[derive(Default)]
struct Handles {
    stores: Vec<Option<Store>>,
    locks: Vec<Option<Lock>>,
    guards: Vec<Option<GuardInfo>>,
    dbs: Vec<Option<Db>>,
}

impl Handles {
    fn empty() -> Handles {
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
enum At {
    Shared(usize),
    Own(usize),
}

/// Resolves `index` over the shared slots, then the own ones; `None` for NULL.
fn find<T>(shared: &[Option<T>], own: &[Option<T>], index: Ref) -> Option<At> {
    let index = usize::from(index) % (shared.len() + own.len() + 1);
    if index < shared.len() {
        shared[index].as_ref().map(|_| At::Shared(index))
    } else {
        let index = index - shared.len();
        own.get(index)?.as_ref().map(|_| At::Own(index))
    }
}

/// One thread's part of an input: its own handles, and those it shares with another thread.
struct Actor<'a> {
    input: &'a Input,
    shared: Option<&'a Handles>,
    own: Handles,
    txs: Vec<Option<Tx>>,
}

macro_rules! getter {
    ($name:ident, $field:ident, $type:ty) => {
        fn $name(&self, index: Ref) -> Option<&$type> {
            match self.find(|handles| &handles.$field, index)? {
                At::Shared(at) => self.shared?.$field[at].as_ref(),
                At::Own(at) => self.own.$field[at].as_ref(),
            }
        }
    };
}

impl<'a> Actor<'a> {
    fn new(input: &'a Input, shared: Option<&'a Handles>, txs: Vec<Option<Tx>>) -> Actor<'a> {
        let mut txs = txs;
        txs.resize_with(TXS, || None);
        Actor { input, shared, own: Handles::empty(), txs }
    }

    /// True while no other thread of the fuzzer makes calls, so that checks which depend on the
    /// order of calls hold.
    fn alone(&self) -> bool {
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

    fn tx_slot(&self, index: Ref) -> Option<usize> {
        let at = usize::from(index) % (self.txs.len() + 1);
        self.txs.get(at)?.as_ref().map(|_| at)
    }

    fn run(&mut self, op: &Op) {
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
    fn parallel(&mut self, first: &[Op], second: &[Op]) {
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

    fn store_open(&mut self, path: PathArg, null_out: bool, slot: u8) {
        let (path, opens) = self.input.files.c_path(path);
        let allowed: &[LeaseStatus] = match opens {
            _ if null_out => &[INVALID],
            Opens::Invalid => &[INVALID],
            Opens::Fails => &[DATABASE],
            Opens::File(index) if self.input.touched[index].load(Ordering::SeqCst) => &[OK, DATABASE, BUSY],
            Opens::File(_) => &[OK],
        };
        let mut out = out_slot();
        let out_ptr = if null_out { null_mut() } else { &mut out };
        let status =
            contract::status("lease_store_open", allowed, || ffi::lease_store_open(c_ptr(&path), out_ptr));
        if null_out {
            return;
        }
        match (written("lease_store_open", status, out), opens) {
            (Some(ptr), Opens::File(index)) => {
                free_store(put(&mut self.own.stores, slot, Store { ptr, file: FileTag::Database(index) }))
            }
            (Some(ptr), _) => contract::quiet("lease_store_free", || ffi::lease_store_free(ptr)),
            (None, _) => {}
        }
    }

    fn store_open_memory(&mut self, null_out: bool, slot: u8) {
        let mut out = out_slot();
        let out_ptr = if null_out { null_mut() } else { &mut out };
        let allowed = if null_out { INVALID } else { OK };
        let status =
            contract::status("lease_store_open_memory", &[allowed], || ffi::lease_store_open_memory(out_ptr));
        if null_out {
            return;
        }
        if let Some(ptr) = written("lease_store_open_memory", status, out) {
            let file = FileTag::Memory(self.input.next_memory.fetch_add(1, Ordering::SeqCst));
            free_store(put(&mut self.own.stores, slot, Store { ptr, file }));
        }
    }

    fn lock_new(
        &mut self,
        store: Ref,
        key: &Text,
        label: &Text,
        options: &Options,
        null_out: bool,
        slot: u8,
    ) {
        let store = self.store(store);
        let (key, label) = (key.c_string(), label.c_string());
        let (options, options_valid) = lay_out_options(options);
        let text_valid = |text: &Option<Vec<u8>>, may_be_empty: bool| {
            text.as_ref().is_some_and(|text| {
                let text = c_text(text);
                std::str::from_utf8(text).is_ok() && (may_be_empty || !text.is_empty())
            })
        };
        let valid = !null_out
            && store.is_some()
            && text_valid(&key, false)
            && text_valid(&label, true)
            && options_valid;
        let mut out = out_slot();
        let out_ptr = if null_out { null_mut() } else { &mut out };
        let store_ptr = store.map_or(null_mut(), |store| store.ptr);
        let options_ptr = options.as_ref().map_or(std::ptr::null(), |options| options.as_ptr().cast());
        let status = contract::status("lease_lock_new", &[if valid { OK } else { INVALID }], || {
            ffi::lease_lock_new(store_ptr, c_ptr(&key), c_ptr(&label), options_ptr, out_ptr)
        });
        if null_out {
            return;
        }
        let (Some(ptr), Some(store)) = (written("lease_lock_new", status, out), store) else { return };
        let key = c_text(key.as_deref().unwrap_or_default()).to_vec();
        let lease_ms = options.map_or(DEFAULT_OPTIONS[0], |options| options[1]);
        let mut shortest = locked(&self.input.shortest_lease);
        let shortest = shortest.entry((store.file, key.clone())).or_insert(lease_ms);
        *shortest = lease_ms.min(*shortest);
        let lock = Lock { ptr, file: store.file, key, lost: Mutex::default() };
        free_lock(put(&mut self.own.locks, slot, lock));
    }

    /// lease_lock_try_acquire (no timeout) or lease_lock_acquire.
    fn acquire(&mut self, lock: Ref, timeout_ms: Option<u8>, null_out: bool, slot: u8) {
        let lock = self.lock(lock);
        let mut out = out_slot();
        let out_ptr = if null_out { null_mut() } else { &mut out };
        let lock_ptr = lock.map_or(null_mut(), |lock| lock.ptr);
        let valid = !null_out && lock.is_some();
        if let (true, Some(lock)) = (valid, lock) {
            callbacks::acquiring(lock.file, &lock.key);
        }
        // While this process holds the lease, acquiring it again joins that hold at once.
        let held = lock.and_then(|lock| self.held(lock.file, &lock.key));
        let (function, status) = match timeout_ms {
            None if valid && held.is_some() => {
                let status = contract::status("lease_lock_try_acquire", &[OK], || {
                    ffi::lease_lock_try_acquire(lock_ptr, out_ptr)
                });
                ("lease_lock_try_acquire", status)
            }
            Some(timeout_ms) if valid && held.is_some() => {
                let status = contract::status("lease_lock_acquire", &[OK], || {
                    ffi::lease_lock_acquire(lock_ptr, timeout_ms.into(), out_ptr)
                });
                ("lease_lock_acquire", status)
            }
            None => {
                let allowed: &[LeaseStatus] = if valid { &[OK, BUSY, DATABASE] } else { &[INVALID] };
                let status = contract::status("lease_lock_try_acquire", allowed, || {
                    ffi::lease_lock_try_acquire(lock_ptr, out_ptr)
                });
                ("lease_lock_try_acquire", status)
            }
            Some(timeout_ms) => {
                let allowed: &[LeaseStatus] = if valid { &[OK, TIMEOUT, DATABASE] } else { &[INVALID] };
                let status = contract::status("lease_lock_acquire", allowed, || {
                    ffi::lease_lock_acquire(lock_ptr, timeout_ms.into(), out_ptr)
                });
                ("lease_lock_acquire", status)
            }
        };
        if null_out {
            return;
        }
        let (Some(ptr), Some(lock)) = (written(function, status, out), lock) else { return };
        let guard = GuardInfo::new(ptr, lock.file, &lock.key);
        if let Some(generation) = held.filter(|generation| guard.dirty || guard.generation != *generation) {
            violation(format!("{function} joined a hold of generation {generation} but got {guard:?}"));
        }
        release_guard(put(&mut self.own.guards, slot, guard));
    }

    /// The generation of a hold of this lease that this thread sees and that is surely still
    /// held (see [`Input::surely_held`]).
    fn held(&self, file: FileTag, key: &[u8]) -> Option<u64> {
        let shared = self.shared.map_or(&[][..], |shared| &shared.guards[..]);
        shared
            .iter()
            .chain(&self.own.guards)
            .flatten()
            .find(|guard| guard.file == file && guard.key == key && self.input.surely_held(guard))
            .map(|guard| guard.generation)
    }

    fn acquire_async(&mut self, lock: Ref, timeout_ms: u8, null_callback: bool, context: &AsyncContext) {
        let lock = self.lock(lock);
        let record: Arc<AsyncRecord> = match (context, lock) {
            (AsyncContext::Null, _) | (_, None) => {
                return self.acquire_async_with(lock, timeout_ms, null_callback, &NULL_CONTEXT)
            }
            (AsyncContext::Reuse(index), Some(lock)) => {
                let records = locked(&self.input.async_records);
                let same: Vec<_> = records
                    .iter()
                    .filter(|record| record.lease.as_ref() == Some(&(lock.file, lock.key.clone())))
                    .cloned()
                    .collect();
                drop(records);
                match same.get(usize::from(*index) % same.len().max(1)) {
                    Some(record) => record.clone(),
                    None => self.new_async_record(lock, false),
                }
            }
            (AsyncContext::New { keep }, Some(lock)) => self.new_async_record(lock, *keep),
        };
        self.acquire_async_with(lock, timeout_ms, null_callback, &record);
    }

    fn new_async_record(&self, lock: &Lock, keep: bool) -> Arc<AsyncRecord> {
        let record = Arc::new(AsyncRecord::new(lock.file, &lock.key, keep));
        locked(&self.input.async_records).push(record.clone());
        record
    }

    fn acquire_async_with(
        &self,
        lock: Option<&Lock>,
        timeout_ms: u8,
        null_callback: bool,
        record: &AsyncRecord,
    ) {
        let valid = lock.is_some() && !null_callback;
        let lock_ptr = lock.map_or(null_mut(), |lock| lock.ptr);
        let callback = (!null_callback).then_some(callbacks::on_acquired as _);
        if let (true, Some(lock)) = (valid, lock) {
            callbacks::acquiring(lock.file, &lock.key);
        }
        // Counted first: the callback may run before the call returns.
        record.started.fetch_add(1, Ordering::SeqCst);
        let status =
            contract::status("lease_lock_acquire_async", &[if valid { OK } else { INVALID }], || {
                ffi::lease_lock_acquire_async(lock_ptr, timeout_ms.into(), callback, record.context())
            });
        if status != OK {
            record.started.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn cancel_acquire(&self, lock: Ref, context: &CancelContext) {
        let lock_ptr = self.lock(lock).map_or(null_mut(), |lock| lock.ptr);
        let context = match context {
            CancelContext::Null => null_mut(),
            CancelContext::Record(index) => {
                let records = locked(&self.input.async_records);
                records
                    .get(usize::from(*index) % records.len().max(1))
                    .map_or(null_mut(), |record| record.context())
            }
            CancelContext::Unknown => std::ptr::from_ref(&NO_ACQUISITION).cast_mut().cast::<c_void>(),
        };
        let allowed = if lock_ptr.is_null() { INVALID } else { OK };
        contract::status("lease_lock_cancel_acquire", &[allowed], || {
            ffi::lease_lock_cancel_acquire(lock_ptr, context)
        });
    }

    fn collect_async(&mut self) {
        let records = locked(&self.input.async_records).clone();
        for record in records {
            let kept = std::mem::take(&mut *locked(&record.kept));
            for guard in kept {
                release_guard(put_free(&mut self.own.guards, guard));
            }
        }
    }

    fn set_lost_callback(&self, lock: Ref, callback: bool, destroy: bool) {
        let lock = self.lock(lock);
        let record = Arc::new(LostRecord::new(lock.map_or(&[][..], |lock| &lock.key)));
        locked(&self.input.lost_records).push(record.clone());
        let lock_ptr = lock.map_or(null_mut(), |lock| lock.ptr);
        let status = contract::status(
            "lease_lock_set_lost_callback",
            &[if lock.is_some() { OK } else { INVALID }],
            || {
                ffi::lease_lock_set_lost_callback(
                    lock_ptr,
                    callback.then_some(callbacks::on_lost as _),
                    record.context(),
                    destroy.then_some(callbacks::on_destroy as _),
                )
            },
        );
        let Some(lock) = lock.filter(|_| status == OK) else {
            return record.check_destroyed("after a failed lease_lock_set_lost_callback");
        };
        // With a NULL callback, context and destroy are not used.
        record.owns_context.store(callback && destroy, Ordering::SeqCst);
        let mut installed = locked(&lock.lost);
        if self.alone() {
            // The previous callback is not running, will not run again, and its destroy has run.
            for previous in installed.drain(..) {
                previous.retired.store(true, Ordering::SeqCst);
                previous.check_destroyed("after lease_lock_set_lost_callback replaced it");
            }
        }
        if callback {
            installed.push(record);
        }
    }

    fn guard_check(&self, guard: Ref) {
        let info = self.guard(guard);
        let allowed: &[LeaseStatus] = match info {
            None => &[INVALID],
            Some(info) if info.lost.load(Ordering::SeqCst) => &[LOST],
            Some(info) if self.input.surely_held(info) => &[OK],
            Some(_) => &[OK, LOST],
        };
        let ptr = info.map_or(null_mut(), |info| info.ptr);
        let status = contract::status("lease_guard_check", allowed, || ffi::lease_guard_check(ptr));
        if let (LOST, Some(info)) = (status, info) {
            info.lost.store(true, Ordering::SeqCst);
        }
    }

    fn db_open(&mut self, path: PathArg, null_out: bool, slot: u8, busy_timeout_ms: u8) {
        let (path, opens) = self.input.files.c_path(path);
        let allowed: &[LeaseStatus] = match opens {
            _ if null_out => &[INVALID],
            Opens::Invalid => &[INVALID],
            Opens::Fails => &[DATABASE],
            Opens::File(index) if self.input.touched[index].load(Ordering::SeqCst) => &[OK, DATABASE, BUSY],
            Opens::File(_) => &[OK],
        };
        let mut out = out_slot();
        let out_ptr = if null_out { null_mut() } else { &mut out };
        let status = contract::status("lease_db_open", allowed, || ffi::lease_db_open(c_ptr(&path), out_ptr));
        if null_out {
            return;
        }
        let Some(ptr) = written("lease_db_open", status, out) else { return };
        // The default busy timeout is 5 s: the fuzzer's writes wait at most a few milliseconds.
        contract::status("lease_db_set_busy_timeout", &[OK], || {
            ffi::lease_db_set_busy_timeout(ptr, busy_timeout_ms.into())
        });
        match opens {
            Opens::File(file) => free_db(put(&mut self.own.dbs, slot, Db { ptr, file })),
            _ => contract::quiet("lease_db_free", || ffi::lease_db_free(ptr)),
        }
    }

    /// Marks the file of a database that a statement may write.
    fn touch(&self, file: Option<usize>, statement: &CStatement) {
        if let (Some(file), true) = (file, statement.may_write()) {
            self.input.touched[file].store(true, Ordering::SeqCst);
        }
    }

    fn db_execute(&self, db: Ref, statement: &Statement, null_changes: bool) {
        let db = self.db(db);
        let statement = CStatement::new(statement);
        self.touch(db.map(|db| db.file), &statement);
        let allowed: &[LeaseStatus] =
            if db.is_none() || statement.invalid() { &[INVALID] } else { &[OK, INVALID, BUSY, DATABASE] };
        let db_ptr = db.map_or(null_mut(), |db| db.ptr);
        let mut changes = NO_CHANGES;
        let changes_ptr = if null_changes { null_mut() } else { &mut changes };
        let status = contract::status("lease_db_execute", allowed, || {
            ffi::lease_db_execute(db_ptr, statement.sql(), statement.params(), statement.count, changes_ptr)
        });
        check_changes("lease_db_execute", status, null_changes, changes);
    }

    fn db_query(&self, db: Ref, statement: &Statement, plan: &RowPlan, nested: &InDbRow) {
        let db = self.db(db);
        let statement = CStatement::new(statement);
        let db_ptr = db.map_or(null_mut(), |db| db.ptr);
        let allowed: &[LeaseStatus] = if db.is_none() || statement.invalid() || plan.null_callback {
            &[INVALID]
        } else {
            &[OK, INVALID, BUSY, DATABASE]
        };
        // Resolved now: the callback runs during the call.
        let nested_statement = match nested {
            InDbRow::ExecuteSame(statement) => {
                let statement = CStatement::new(statement);
                self.touch(db.map(|db| db.file), &statement);
                Some(statement)
            }
            _ => None,
        };
        let other = match nested {
            InDbRow::QueryOther(other) => self.db(*other).map_or(null_mut(), |other| other.ptr),
            _ => null_mut(),
        };
        let mut first = true;
        let in_row = || {
            if !std::mem::take(&mut first) {
                return;
            }
            match nested {
                InDbRow::Nothing => {}
                InDbRow::QuerySame => {
                    query_select_one("lease_db_query", &[MISUSE], |sql, on_row, context| {
                        ffi::lease_db_query(db_ptr, sql, std::ptr::null(), 0, on_row, context)
                    })
                }
                InDbRow::ExecuteSame(_) => {
                    let statement = nested_statement.as_ref().expect("made above");
                    let allowed: &[LeaseStatus] =
                        if statement.invalid() { &[INVALID] } else { &[OK, INVALID, BUSY, DATABASE] };
                    contract::status("lease_db_execute", allowed, || {
                        ffi::lease_db_execute(
                            db_ptr,
                            statement.sql(),
                            statement.params(),
                            statement.count,
                            null_mut(),
                        )
                    });
                }
                InDbRow::QueryOther(_) => {
                    let allowed: &[LeaseStatus] = match other {
                        _ if other.is_null() => &[INVALID],
                        _ if other == db_ptr => &[MISUSE],
                        _ => &[OK, BUSY, DATABASE],
                    };
                    query_select_one("lease_db_query", allowed, |sql, on_row, context| {
                        ffi::lease_db_query(other, sql, std::ptr::null(), 0, on_row, context)
                    });
                }
            }
        };
        query("lease_db_query", allowed, plan, in_row, |on_row, context| {
            ffi::lease_db_query(db_ptr, statement.sql(), statement.params(), statement.count, on_row, context)
        });
    }

    fn db_begin(&mut self, db: Ref, begin: Begin, null_out: bool, slot: u8) {
        let db = self.db(db);
        let db_ptr = db.map_or(null_mut(), |db| db.ptr);
        let mut out = out_slot();
        let out_ptr = if null_out { null_mut() } else { &mut out };
        let invalid = null_out || db.is_none();
        let (function, status) = match begin {
            Begin::Plain => {
                let allowed: &[LeaseStatus] = if invalid { &[INVALID] } else { &[OK, BUSY, DATABASE] };
                (
                    "lease_db_begin",
                    contract::status("lease_db_begin", allowed, || ffi::lease_db_begin(db_ptr, out_ptr)),
                )
            }
            Begin::Chunked(chunk_ms) => {
                let allowed: &[LeaseStatus] =
                    if invalid || chunk_ms == 0 { &[INVALID] } else { &[OK, BUSY, DATABASE] };
                let status = contract::status("lease_db_begin_chunked", allowed, || {
                    ffi::lease_db_begin_chunked(db_ptr, chunk_ms, out_ptr)
                });
                ("lease_db_begin_chunked", status)
            }
            Begin::Fenced(guard) => {
                let guard = self.guard(guard);
                let guard_ptr = guard.map_or(null_mut(), |guard| guard.ptr);
                let allowed: &[LeaseStatus] = match (db, guard) {
                    (Some(db), Some(guard)) if !null_out => {
                        if guard.lost.load(Ordering::SeqCst) {
                            &[LOST]
                        } else if guard.file != FileTag::Database(db.file) {
                            &[INVALID, LOST]
                        } else if self.input.surely_held(guard) {
                            &[OK, BUSY]
                        } else {
                            &[OK, LOST, BUSY, DATABASE]
                        }
                    }
                    _ => &[INVALID],
                };
                let status = contract::status("lease_db_begin_fenced", allowed, || {
                    ffi::lease_db_begin_fenced(db_ptr, guard_ptr.cast_const(), out_ptr)
                });
                if let (LOST, Some(guard)) = (status, guard) {
                    guard.lost.store(true, Ordering::SeqCst);
                }
                ("lease_db_begin_fenced", status)
            }
        };
        if null_out {
            return;
        }
        if let Some(ptr) = written(function, status, out) {
            let file = db.map_or(0, |db| db.file);
            let tx = Tx { ptr, file, chunked: matches!(begin, Begin::Chunked(_)), state: TxState::Open };
            let at = usize::from(slot) % TXS;
            rollback_tx(self.txs[at].replace(tx));
        }
    }

    fn tx_execute(&mut self, tx: Ref, statement: &Statement, null_changes: bool) {
        let at = self.tx_slot(tx);
        let statement = CStatement::new(statement);
        let tx = at.and_then(|at| self.txs[at].as_ref());
        self.touch(tx.map(|tx| tx.file), &statement);
        let allowed = tx_call_allowed(tx.map(|tx| tx.state), statement.invalid());
        let tx_ptr = tx.map_or(null_mut(), |tx| tx.ptr);
        let mut changes = NO_CHANGES;
        let changes_ptr = if null_changes { null_mut() } else { &mut changes };
        let status = contract::status("lease_tx_execute", allowed, || {
            ffi::lease_tx_execute(tx_ptr, statement.sql(), statement.params(), statement.count, changes_ptr)
        });
        check_changes("lease_tx_execute", status, null_changes, changes);
        if let Some(tx) = at.and_then(|at| self.txs[at].as_mut()) {
            tx.state = after_tx_call(tx.state, status);
        }
    }

    fn tx_query(&mut self, tx: Ref, statement: &Statement, plan: &RowPlan, nested: &InTxRow) {
        let at = self.tx_slot(tx);
        let statement = CStatement::new(statement);
        let tx = at.and_then(|at| self.txs[at].as_ref());
        self.touch(tx.map(|tx| tx.file), &statement);
        let allowed = tx_call_allowed(tx.map(|tx| tx.state), statement.invalid() || plan.null_callback);
        let tx_ptr = tx.map_or(null_mut(), |tx| tx.ptr);
        let db_ptr = match nested {
            InTxRow::QueryDb(db) => self.db(*db).map_or(null_mut(), |db| db.ptr),
            _ => null_mut(),
        };
        // Set when the callback ended the transaction: the query then frees it as it returns.
        let mut consumed = false;
        let mut first = true;
        let in_row = || {
            if !std::mem::take(&mut first) {
                return;
            }
            match nested {
                InTxRow::Nothing => {}
                InTxRow::ExecuteSame => {
                    let sql = c_string(b"SELECT 1");
                    contract::status("lease_tx_execute", &[MISUSE], || {
                        ffi::lease_tx_execute(tx_ptr, sql.as_ptr().cast(), std::ptr::null(), 0, null_mut())
                    });
                }
                InTxRow::MaybeCommitSame => {
                    contract::status("lease_tx_maybe_commit", &[MISUSE], || {
                        ffi::lease_tx_maybe_commit(tx_ptr, null_mut())
                    });
                }
                InTxRow::CommitSame => {
                    contract::status("lease_tx_commit", &[MISUSE], || ffi::lease_tx_commit(tx_ptr));
                    consumed = true;
                }
                InTxRow::RollbackSame => {
                    contract::quiet("lease_tx_rollback", || ffi::lease_tx_rollback(tx_ptr));
                    consumed = true;
                }
                InTxRow::QueryDb(_) => {
                    let allowed: &[LeaseStatus] =
                        if db_ptr.is_null() { &[INVALID] } else { &[OK, BUSY, DATABASE] };
                    query_select_one("lease_db_query", allowed, |sql, on_row, context| {
                        ffi::lease_db_query(db_ptr, sql, std::ptr::null(), 0, on_row, context)
                    });
                }
            }
        };
        let status = query("lease_tx_query", allowed, plan, in_row, |on_row, context| {
            ffi::lease_tx_query(tx_ptr, statement.sql(), statement.params(), statement.count, on_row, context)
        });
        let Some(at) = at else { return };
        if consumed {
            self.txs[at] = None;
        } else if let Some(tx) = self.txs[at].as_mut() {
            tx.state = after_tx_call(tx.state, status);
        }
    }

    fn tx_maybe_commit(&mut self, tx: Ref, null_out: bool, prefill: bool) {
        let at = self.tx_slot(tx);
        let tx = at.and_then(|at| self.txs[at].as_mut());
        let allowed: &[LeaseStatus] = match tx.as_ref().map(|tx| tx.state) {
            None => &[INVALID],
            Some(TxState::Ended) => &[MISUSE],
            Some(TxState::Open) => &[OK, BUSY, DATABASE],
            Some(TxState::Unknown) => &[OK, BUSY, DATABASE, MISUSE],
        };
        let tx_ptr = tx.as_ref().map_or(null_mut(), |tx| tx.ptr);
        let mut committed = prefill;
        let out_ptr = if null_out { null_mut() } else { &mut committed };
        let status = contract::status("lease_tx_maybe_commit", allowed, || {
            ffi::lease_tx_maybe_commit(tx_ptr, out_ptr)
        });
        let Some(tx) = tx else { return };
        match status {
            OK if committed && !null_out && !tx.chunked => {
                violation("lease_tx_maybe_commit committed a transaction that is not chunked".into())
            }
            OK => tx.state = TxState::Open,
            _ => {
                if committed != prefill {
                    violation(format!("lease_tx_maybe_commit returned {status:?} but wrote out_committed"));
                }
                tx.state = TxState::Ended;
            }
        }
    }

    fn tx_commit(&mut self, tx: Ref) {
        let tx = self.tx_slot(tx).and_then(|at| self.txs[at].take());
        let allowed: &[LeaseStatus] = match tx.as_ref().map(|tx| tx.state) {
            None => &[INVALID],
            Some(TxState::Ended) => &[MISUSE],
            Some(TxState::Open) => &[OK, DATABASE],
            Some(TxState::Unknown) => &[OK, DATABASE, MISUSE],
        };
        let tx_ptr = tx.map_or(null_mut(), |tx| tx.ptr);
        contract::status("lease_tx_commit", allowed, || ffi::lease_tx_commit(tx_ptr));
    }

    /// Ends the input: everything ended and freed, every acquisition called back, and the
    /// library's thread stopped.
    fn finish(mut self) {
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

/// Which lease_db_begin.
#[derive(Clone, Copy)]
enum Begin {
    Plain,
    Chunked(u32),
    Fenced(Ref),
}

/// The statuses of a call on a transaction in `state` (`None`: NULL), with arguments that are
/// surely invalid or not.
fn tx_call_allowed(state: Option<TxState>, invalid: bool) -> &'static [LeaseStatus] {
    match state {
        None => &[INVALID],
        _ if invalid => &[INVALID],
        Some(TxState::Ended) => &[MISUSE],
        Some(TxState::Open | TxState::Unknown) => &[OK, INVALID, DATABASE, MISUSE],
    }
}

/// What a transaction is after a statement on it returned `status`.
fn after_tx_call(state: TxState, status: LeaseStatus) -> TxState {
    match status {
        // Ended by its own SQL, or by SQLite after a failure (or it had ended already).
        MISUSE => TxState::Ended,
        // SQLite may have rolled it back.
        DATABASE => TxState::Unknown,
        OK => TxState::Open,
        _ => state,
    }
}

/// Runs a query with `plan`'s callback, calling `in_row` on each row, and checks what the rows
/// may do: none after the callback stopped the query, none on LEASE_INVALID_ARGUMENT, and the
/// same number of columns in each.
fn query(
    function: &str,
    allowed: &[LeaseStatus],
    plan: &RowPlan,
    mut in_row: impl FnMut(),
    call: impl FnOnce(ffi::LeaseRowCallback, *mut c_void) -> LeaseStatus,
) -> LeaseStatus {
    let mut rows = 0usize;
    let mut stopped = false;
    let mut columns = None;
    let stop_code = if plan.stop_code == 0 { 1 } else { plan.stop_code };
    let mut each = |row: &[Column]| {
        if stopped {
            violation(format!("{function} handed over a row after its callback stopped it"));
        }
        if *columns.get_or_insert(row.len()) != row.len() {
            violation(format!("{function} handed over rows of {columns:?} and {} columns", row.len()));
        }
        rows += 1;
        in_row();
        if plan.stop_after != 0 && rows >= plan.stop_after.into() {
            stopped = true;
            return stop_code;
        }
        0
    };
    let mut on_row: &mut rows::OnRow = &mut each;
    let (callback, context) = rows::callback(&mut on_row);
    let callback = if plan.null_callback { None } else { callback };
    let status = contract::status(function, allowed, || call(callback, context));
    if status == INVALID && rows > 0 {
        violation(format!("{function} returned LEASE_INVALID_ARGUMENT after handing over {rows} rows"));
    }
    status
}

/// A query of "SELECT 1" from inside a row callback.
fn query_select_one(
    function: &str,
    allowed: &[LeaseStatus],
    call: impl FnOnce(*const std::ffi::c_char, ffi::LeaseRowCallback, *mut c_void) -> LeaseStatus,
) {
    let sql = c_string(b"SELECT 1");
    let plan = RowPlan { null_callback: false, stop_after: 0, stop_code: 0 };
    query(function, allowed, &plan, || {}, |on_row, context| call(sql.as_ptr().cast(), on_row, context));
}

/// Checks out_changes: written on LEASE_OK (unless NULL), untouched otherwise.
fn check_changes(function: &str, status: LeaseStatus, null_changes: bool, changes: u64) {
    let written = changes != NO_CHANGES;
    if null_changes {
        return;
    }
    if status == OK && !written {
        violation(format!("{function} returned LEASE_OK but left out_changes unset"));
    }
    if status != OK && written {
        violation(format!("{function} returned {status:?} but wrote out_changes ({changes})"));
    }
}

/// The options laid out as a caller's header of some size would: `None` for NULL. Returns
/// whether the header says lease_lock_new must accept them.
fn lay_out_options(options: &Options) -> (Option<[u32; OPTIONS_WORDS]>, bool) {
    let Options::Given { size, lease_ms, renew_every_ms, max_backoff_ms, tail } = options else {
        return (None, true);
    };
    let size = usize::from(*size) % (OPTIONS_WORDS * 4 + 1);
    let mut words = [0u32; OPTIONS_WORDS];
    words[0] = size as u32;
    words[1] = lease_ms.get();
    words[2] = renew_every_ms.get();
    words[3] = max_backoff_ms.get();
    let known = size_of::<LeaseLockOptions>();
    for (index, byte) in tail.iter().take(OPTIONS_WORDS * 4 - known).enumerate() {
        let at = known + index;
        words[at / 4] |= u32::from(*byte) << (8 * (at % 4));
    }
    let tail_is_zero = (known..size.max(known)).all(|at| (words[at / 4] >> (8 * (at % 4))) & 0xff == 0);
    let (lease, renew, backoff) = (u64::from(words[1]), u64::from(words[2]), u64::from(words[3]));
    let valid = size >= known
        && tail_is_zero
        && lease > 0
        && renew > 0
        && backoff > 0
        && 2 * renew <= lease
        && lease <= 86_400_000;
    (Some(words), valid)
}

/// lease_lock_options_init: the defaults in the size given, nothing written past it.
fn options_init(size: &OptionsSize) {
    let size = match size {
        OptionsSize::Buffer(size) => size,
        OptionsSize::Null(size) => {
            contract::status("lease_lock_options_init", &[INVALID], || {
                ffi::lease_lock_options_init(null_mut(), *size as usize)
            });
            return;
        }
    };
    let size = usize::from(*size) % (OPTIONS_WORDS * 4 + 1);
    let known = size_of::<LeaseLockOptions>();
    let mut words = [UNWRITTEN; OPTIONS_WORDS + 1];
    let allowed = if size < known { INVALID } else { OK };
    let status = contract::status("lease_lock_options_init", &[allowed], || {
        ffi::lease_lock_options_init(words.as_mut_ptr().cast(), size)
    });
    let byte = |at: usize| (words[at / 4] >> (8 * (at % 4))) as u8;
    let untouched_from = if status == OK { size } else { 0 };
    if (untouched_from..words.len() * 4).any(|at| byte(at) != UNWRITTEN as u8) {
        violation(format!("lease_lock_options_init({size}) wrote past what it may: {words:x?}"));
    }
    if status == OK {
        let defaults = [size as u32, DEFAULT_OPTIONS[0], DEFAULT_OPTIONS[1], DEFAULT_OPTIONS[2]];
        if words[..4] != defaults || (known..size).any(|at| byte(at) != 0) {
            violation(format!("lease_lock_options_init({size}) gave {words:x?}, not the defaults"));
        }
    }
}

fn status_str(code: u32) {
    let text = contract::untouched("lease_status_str", || ffi::lease_status_str(code));
    if text.is_null() {
        return violation(format!("lease_status_str({code}) returned NULL"));
    }
    // SAFETY: static NUL-terminated text.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    let expected = LeaseStatus::from_code(code)
        .map_or("unknown LeaseStatus".to_owned(), |status| format!("{status:?} ("));
    if !text.starts_with(&expected) {
        violation(format!("lease_status_str({code}) is {text:?}, not {expected:?}..."));
    }
}

fn last_error() {
    let first = contract::untouched("lease_last_error_message", || ffi::lease_last_error_message());
    let second = ffi::lease_last_error_message();
    if first != second {
        violation("lease_last_error_message moved between two calls with no failure between".into());
    }
}

/// The version this header describes, from the header itself.
fn header_version() -> &'static str {
    const HEADER: &str = include_str!("../../include/lease.h");
    const MACRO: &str = "#define LEASE_VERSION_STRING \"";
    let start = HEADER.find(MACRO).expect("the header defines LEASE_VERSION_STRING") + MACRO.len();
    let length = HEADER[start..].find('"').expect("a quoted version");
    &HEADER[start..start + length]
}

fn version() {
    let version = contract::untouched("lease_version", || ffi::lease_version());
    if version.is_null() {
        return violation("lease_version returned NULL".into());
    }
    // SAFETY: static NUL-terminated text.
    let version = unsafe { CStr::from_ptr(version) }.to_string_lossy();
    if version != header_version() {
        violation(format!(
            "lease_version is {version:?}, the header's LEASE_VERSION_STRING {:?}",
            header_version()
        ));
    }
}

/// Puts `value` in slot `slot` of `table`; returns what was there.
fn put<T>(table: &mut [Option<T>], slot: u8, value: T) -> Option<T> {
    let at = usize::from(slot) % table.len();
    table[at].replace(value)
}

/// Puts `value` in a free slot of `table`; returns it when there is none.
fn put_free<T>(table: &mut [Option<T>], value: T) -> Option<T> {
    match table.iter_mut().find(|slot| slot.is_none()) {
        Some(slot) => {
            *slot = Some(value);
            None
        }
        None => Some(value),
    }
}

fn free_store(store: Option<Store>) {
    let ptr = store.map_or(null_mut(), |store| store.ptr);
    contract::quiet("lease_store_free", || ffi::lease_store_free(ptr));
}

/// Frees a lock: when this returns, its lost callback is not running, will not run, and its
/// destroy has run.
fn free_lock(lock: Option<Lock>) {
    let ptr = lock.as_ref().map_or(null_mut(), |lock| lock.ptr);
    contract::quiet("lease_lock_free", || ffi::lease_lock_free(ptr));
    for record in
        lock.map(|lock| lock.lost.into_inner().unwrap_or_else(|p| p.into_inner())).unwrap_or_default()
    {
        record.retired.store(true, Ordering::SeqCst);
        record.check_destroyed("after lease_lock_free");
    }
}

fn release_guard(guard: Option<GuardInfo>) {
    let ptr = guard.map_or(null_mut::<LeaseGuard>(), |guard| guard.ptr);
    contract::quiet("lease_guard_release", || ffi::lease_guard_release(ptr));
}

fn free_db(db: Option<Db>) {
    let ptr = db.map_or(null_mut(), |db| db.ptr);
    contract::quiet("lease_db_free", || ffi::lease_db_free(ptr));
}

fn rollback_tx(tx: Option<Tx>) {
    let ptr = tx.map_or(null_mut(), |tx| tx.ptr);
    contract::quiet("lease_tx_rollback", || ffi::lease_tx_rollback(ptr));
}
