//! The input's grammar: what each step calls, with which arguments, as `arbitrary` decodes it
//! (seeds.py writes it the same way; keep the two in step).

use arbitrary::Arbitrary;
use lease::ffi;

use crate::contract::{c_ptr, c_string, c_text};
use crate::files::PathArg;
use crate::params::{first_invalid, Bound, Param};

#[derive(Arbitrary, Debug)]
pub(super) enum Step {
    Op(Op),
    Parallel(Vec<Op>, Vec<Op>),
}

/// An index into a slot table (the calling thread's own, after the shared ones); past the end, or
/// an empty slot, is NULL.
pub(super) type Ref = u8;

#[derive(Arbitrary, Debug)]
pub(super) enum Op {
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
    /// lease_suspend, with a timeout of up to 200 ms.
    Suspend {
        timeout_ms: u8,
    },
    Resume,
    IsSuspended,
    Shutdown,
    Sleep {
        ms: u8,
    },
}

/// A string argument (a key or a label).
#[derive(Arbitrary, Debug)]
pub(super) enum Text {
    Null,
    Known(u8),
    Bytes(Vec<u8>),
}

/// Keys and labels: few, so that locks share keys; one empty, one not ASCII.
const TEXTS: &[&[u8]] = &[b"sync", b"a", b"b", b"", "cl\u{e9}".as_bytes(), b"k\0after a NUL", b"\xff\xfe"];

impl Text {
    pub(super) fn c_string(&self) -> Option<Vec<u8>> {
        match self {
            Text::Null => None,
            Text::Known(index) => Some(c_string(TEXTS[usize::from(*index) % TEXTS.len()])),
            Text::Bytes(bytes) => Some(c_string(bytes)),
        }
    }
}

/// The options of lease_lock_new.
#[derive(Arbitrary, Debug)]
pub(super) enum Options {
    Null,
    Given { size: u8, lease_ms: Ms, renew_every_ms: Ms, max_backoff_ms: Ms, tail: Vec<u8> },
}

/// A duration option.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(super) enum Ms {
    Zero,
    Short(u8),
    Default,
    Day,
    OverADay,
    Max,
    Any(u32),
}

impl Ms {
    pub(super) fn get(self) -> u32 {
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
pub(super) enum OptionsSize {
    /// Up to the fuzzer's buffer: 64 bytes.
    Buffer(u8),
    /// With a NULL pointer, any size.
    Null(u64),
}

#[derive(Arbitrary, Debug)]
pub(super) enum AsyncContext {
    Null,
    New {
        keep: bool,
    },
    /// Another context used before with a lock on the same lease.
    Reuse(u8),
}

#[derive(Arbitrary, Debug)]
pub(super) enum CancelContext {
    Null,
    Record(u8),
    Unknown,
}

#[derive(Arbitrary, Debug)]
pub(super) enum ChunkMs {
    Zero,
    Short(u8),
    Default,
    Max,
}

/// A statement and its parameters.
#[derive(Arbitrary, Debug)]
pub(super) struct Statement {
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

/// What a statement does to the database, as far as the fuzzer can tell: the SQL of [`SQL`]
/// that surely reads and surely writes (which SQLite counts as such: sqlite3_stmt_readonly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    Reads,
    Writes,
    Unknown,
}

/// A statement laid out for C.
pub(super) struct CStatement {
    sql: Option<Vec<u8>>,
    pub(super) effect: Effect,
    params: Bound,
    null_params: bool,
    pub(super) count: usize,
    bad_param: bool,
}

impl CStatement {
    pub(super) fn new(statement: &Statement) -> CStatement {
        let params = Bound::new(&statement.params);
        let count = params.len().saturating_sub(statement.fewer.into());
        let bad_param = !statement.null_params && first_invalid(&statement.params, count).is_some();
        let effect = match statement.sql {
            Sql::Known(index) => {
                let sql = SQL[usize::from(index) % SQL.len()];
                if sql.starts_with("SELECT") || sql.starts_with("WITH") {
                    Effect::Reads
                } else if ["INSERT", "UPDATE", "DELETE"].iter().any(|write| sql.starts_with(write)) {
                    Effect::Writes
                } else {
                    Effect::Unknown
                }
            }
            _ => Effect::Unknown,
        };
        CStatement {
            sql: statement.sql.c_string(),
            effect,
            params,
            null_params: statement.null_params,
            count,
            bad_param,
        }
    }

    pub(super) fn sql(&self) -> *const std::ffi::c_char {
        c_ptr(&self.sql)
    }

    pub(super) fn params(&self) -> *const ffi::LeaseValue {
        if self.null_params {
            std::ptr::null()
        } else {
            self.params.as_ptr()
        }
    }

    /// True when the header says LEASE_INVALID_ARGUMENT whatever the statement says: NULL SQL,
    /// SQL that is not UTF-8, a NULL array of some parameters, or an invalid parameter.
    pub(super) fn invalid(&self) -> bool {
        let not_utf8 = self.sql.as_ref().is_some_and(|sql| std::str::from_utf8(c_text(sql)).is_err());
        self.sql.is_none() || not_utf8 || (self.null_params && self.count > 0) || self.bad_param
    }

    /// True when it may write: a database's file is then "touched" (see [`Input::touched`]).
    pub(super) fn may_write(&self) -> bool {
        self.sql.is_some()
    }
}

/// How a query's row callback answers.
#[derive(Arbitrary, Debug)]
pub(super) struct RowPlan {
    pub(super) null_callback: bool,
    /// Stop after this many rows (0: never).
    pub(super) stop_after: u8,
    /// What to return to stop: any non-zero value.
    pub(super) stop_code: i32,
}

/// What a LeaseDb query's row callback calls on its first row.
#[derive(Arbitrary, Debug)]
pub(super) enum InDbRow {
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
pub(super) enum InTxRow {
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
