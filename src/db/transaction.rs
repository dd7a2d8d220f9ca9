//! Write transactions: plain, chunked for long jobs, and fenced by a lease.
//!
//! Every transaction holds this process's write turn on the file from `BEGIN IMMEDIATE` until it
//! ends, and always ends with the connection out of any transaction: a commit that fails rolls
//! back, and a transaction dropped without commit rolls back. The turn is kept with the
//! connection (see `inner.rs`), where a suspension of the process can end the transaction: its
//! next call then fails with `Error::Suspended`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::inner::{self, roll_back, DbInner, OpenTransaction, WriterConnection};
use super::value::Value;
use crate::error::{Error, Result};
use crate::lock::Fence;
use crate::log::log;
use crate::suspension;

/// A wait for the database this long is worth a warning.
const LONG_WAIT: Duration = Duration::from_secs(1);

/// When a chunked transaction commits and lets other writers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    /// A chunk commits once it has lasted this long, waiting writers or not.
    pub period: Duration,
    /// A chunk commits once it has lasted this long if another writer that uses liblease waits
    /// (of this process or another).
    pub slice: Duration,
    /// After a chunk that ran its whole period, the job leaves SQLite's write lock free this
    /// long before it goes on (less if another connection commits meanwhile), so that writers
    /// that use plain SQLite get in: their busy handler sleeps up to 100 ms between tries and
    /// cannot be seen waiting. Costs a lone job up to `gap / period` of its time; zero turns it
    /// off where no plain-SQLite writer shares the file.
    pub gap: Duration,
}

impl ChunkOptions {
    /// Chunks of at most 1 s, cut after 4 ms when another writer waits, with a 100 ms gap after
    /// a full chunk (one sleep of SQLite's busy handler).
    pub const DEFAULT: ChunkOptions = ChunkOptions {
        period: Duration::from_secs(1),
        slice: Duration::from_millis(4),
        gap: Duration::from_millis(100),
    };

    pub fn validate(&self) -> Result<()> {
        if self.period.is_zero() {
            return Err(Error::InvalidArgument("a chunk's period must be above zero".into()));
        }
        if self.slice > self.period || self.gap > self.period {
            return Err(Error::InvalidArgument("a chunk's slice and gap must not exceed its period".into()));
        }
        Ok(())
    }
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions::DEFAULT
    }
}

/// What a transaction is, which decides what it checks when it begins and what `maybe_commit`
/// does.
pub(crate) enum Kind {
    Plain,
    /// Commits in chunks; `started` is when the current chunk began.
    Chunked {
        options: ChunkOptions,
        started: Instant,
    },
    /// Checks, inside the transaction, that a guard's lease is still held.
    Fenced(Fence),
}

impl Kind {
    pub(crate) fn chunked(options: ChunkOptions) -> Kind {
        Kind::Chunked { options, started: Instant::now() }
    }
}

/// An open write transaction. Used by one thread at a time.
pub struct Transaction {
    db: Arc<DbInner>,
    kind: Kind,
    /// Names this transaction in its handle's [`OpenTransaction`].
    id: u64,
    /// Why the transaction ended before `commit` or `rollback`, for the error of later calls.
    ended: Option<String>,
}

impl Transaction {
    pub(crate) fn begin(db: Arc<DbInner>, kind: Kind) -> Result<Transaction> {
        let deadline = db.busy_deadline();
        Transaction::begin_by(db, kind, deadline)
    }

    /// Like [`Transaction::begin`], waiting for the database until `deadline`.
    pub(crate) fn begin_by(db: Arc<DbInner>, kind: Kind, deadline: Instant) -> Result<Transaction> {
        db.check_fork()?;
        if let Kind::Fenced(fence) = &kind {
            fence.same_file(db.file())?;
            // A lease known lost (its file replaced, say) fails as such before anything else.
            fence.check()?;
        }
        let id = db.next_transaction_id();
        let mut transaction = Transaction { db, kind, id, ended: None };
        transaction.start(deadline)?;
        Ok(transaction)
    }

    /// Takes the write turn and SQLite's write lock, then checks the fence inside the transaction.
    fn start(&mut self, deadline: Instant) -> Result<()> {
        let db = &self.db;
        db.ensure_in_place()?;
        let begin = || {
            let writer = db.writer();
            suspension::check()?;
            Ok(writer.connection.execute_batch("BEGIN IMMEDIATE")?)
        };
        let asked = Instant::now();
        let (turn, ()) = db.queue().enter(Some(deadline), begin).map_err(|e| db.named(e))?;
        let waited = asked.elapsed();
        if waited >= LONG_WAIT {
            log!(
                Warn,
                "{}: a transaction waited {} ms for the database (other writers had it)",
                db.path.display(),
                waited.as_millis()
            );
        }
        let mut writer = db.writer();
        // A suspension that came since the BEGIN has rolled it back, or finds it open now.
        if let Err(suspended) = suspension::check() {
            roll_back(&writer.connection);
            return Err(suspended);
        }
        match &mut self.kind {
            Kind::Plain => {}
            Kind::Chunked { started, .. } => *started = Instant::now(),
            Kind::Fenced(fence) => {
                if let Err(e) = fence.verify(&writer.connection) {
                    roll_back(&writer.connection);
                    return Err(e);
                }
            }
        }
        writer.changes.begin(db.queue().is_observed());
        writer.open = OpenTransaction::Open { id: self.id, _turn: turn };
        Ok(())
    }

    /// Runs `f` on the connection if the transaction is still open and the process is not
    /// suspended; otherwise says why not. A transaction found open while the process is suspended
    /// is rolled back here (the suspension may not have come to it yet).
    fn with_open<T>(&mut self, f: impl FnOnce(&mut WriterConnection) -> Result<T>) -> Result<T> {
        self.db.check_fork()?;
        let mut writer = self.db.writer();
        match writer.open {
            OpenTransaction::Open { id, .. } if id == self.id => {
                if let Err(suspended) = suspension::check() {
                    roll_back(&writer.connection);
                    writer.open = OpenTransaction::None;
                    drop(writer);
                    self.ended = Some("it was rolled back when the process was suspended".into());
                    return Err(suspended);
                }
                f(&mut writer)
            }
            _ if writer.suspended.contains(&self.id) => {
                writer.suspended.retain(|&id| id != self.id);
                drop(writer);
                self.ended = Some("it was rolled back when the process was suspended".into());
                Err(Error::Suspended(
                    "the transaction was rolled back when the process was suspended (lease_suspend)".into(),
                ))
            }
            _ => Err(Error::Misuse(match &self.ended {
                Some(why) => format!("the transaction has ended: {why}"),
                None => "the transaction has ended".into(),
            })),
        }
    }

    /// Runs one statement in the transaction; returns the number of rows it inserted, updated or
    /// deleted (0 for any other statement).
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.run(sql, params, &mut |_| true, true).map(|changes| changes.unwrap_or(0))
    }

    /// Runs one statement in the transaction (it sees the transaction's own writes), handing
    /// each row to `on_row` until it returns `false`.
    pub fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        mut on_row: impl FnMut(&[Value]) -> bool,
    ) -> Result<()> {
        self.run(sql, params, &mut on_row, false).map(|_| ())
    }

    /// Runs a statement; with `count`, returns how many rows it changed.
    fn run(
        &mut self,
        sql: &str,
        params: &[Value],
        on_row: &mut dyn FnMut(&[Value]) -> bool,
        count: bool,
    ) -> Result<Option<u64>> {
        let mut why_ended = None;
        let result = self.with_open(|writer| {
            let WriterConnection { statements, connection, changes, .. } = writer;
            let before = connection.total_changes();
            let result = statements.get(connection, sql, Some(changes)).and_then(|statement| {
                let ran = statement.run(params, on_row);
                // Even a statement that failed may have changed rows (ON CONFLICT FAIL).
                if let Some(tables) = statement.writes() {
                    changes.wrote(tables);
                }
                ran
            });
            let result = result.map(|()| {
                let changed = connection.total_changes() != before;
                count.then(|| if changed { connection.changes() } else { 0 })
            });
            // Some failures (a full disk, say) make SQLite roll the whole transaction back; and
            // SQL such as COMMIT would end it behind our back.
            if connection.is_autocommit() {
                let why = match &result {
                    Ok(_) => "the SQL ended the transaction; end it with commit or rollback".to_owned(),
                    Err(e) => format!("SQLite rolled it back after: {e}"),
                };
                writer.open = OpenTransaction::None;
                why_ended = Some(why.clone());
                return Err(match result {
                    Ok(_) => Error::Misuse(why),
                    Err(e) => e,
                });
            }
            result
        });
        if why_ended.is_some() {
            self.ended = why_ended;
        }
        result.map_err(|e| self.db.named(e))
    }

    /// For a chunked transaction: commits and begins again, through the writer queue, when the
    /// chunk is due, and returns whether it did. A chunk is due once it has lasted its period, or
    /// its slice while another writer that uses liblease waits (of this process or another). A
    /// plain or fenced transaction never commits here and returns `false`.
    ///
    /// The bounds hold between calls: a writer waits at most the slice plus the time between two
    /// calls, so a job calls this after every small piece of work. After a chunk that ran its
    /// whole period the job leaves a gap for plain-SQLite writers (see [`ChunkOptions::gap`]).
    pub fn maybe_commit(&mut self) -> Result<bool> {
        self.with_open(|_| Ok(()))?;
        let Kind::Chunked { options, started } = self.kind else { return Ok(false) };
        let lasted = started.elapsed();
        let full = lasted >= options.period;
        let let_waiter_in = lasted >= options.slice && self.db.queue().has_waiters();
        if !full && !let_waiter_in {
            return Ok(false);
        }
        self.commit_chunk()?;
        if full {
            self.leave_a_gap(options.gap);
        }
        if let Err(e) = self.start(self.db.busy_deadline()) {
            self.ended = Some(format!("its last chunk was committed, but the next could not begin: {e}"));
            return Err(e);
        }
        Ok(true)
    }

    /// Waits up to `gap` without the write lock, or until another connection commits.
    fn leave_a_gap(&self, gap: Duration) {
        let data_version = || {
            let writer = self.db.writer();
            writer.connection.query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0)).ok()
        };
        let before = data_version();
        let until = Instant::now() + gap;
        while Instant::now() < until && data_version() == before {
            std::thread::sleep(Duration::from_millis(1).min(until - Instant::now()));
        }
    }

    /// Commits. Consumes the transaction; if the commit fails it is rolled back.
    pub fn commit(mut self) -> Result<()> {
        self.commit_chunk()
    }

    /// Rolls back (a chunked transaction: its current chunk only; committed chunks stay).
    pub fn rollback(mut self) {
        self.end("rolled back");
    }

    /// Commits the current chunk, and ends the transaction (its turn goes); a failed commit
    /// rolls back.
    fn commit_chunk(&mut self) -> Result<()> {
        let db = self.db.clone();
        let mut why_ended = None;
        let committed = self.with_open(|writer| {
            let committed = inner::commit(&writer.connection, &mut writer.changes, db.queue());
            writer.open = OpenTransaction::None;
            match committed {
                Ok(()) => {
                    why_ended = Some("committed".to_owned());
                    db.queue().checkpoint_if_due(&writer.connection);
                    Ok(())
                }
                Err(e) => {
                    let error = db.named(e);
                    why_ended = Some(format!("its commit failed and it was rolled back: {error}"));
                    Err(error)
                }
            }
        });
        if why_ended.is_some() {
            self.ended = why_ended;
        }
        committed
    }

    /// Rolls back whatever of the transaction is open, and lets its turn go.
    fn end(&mut self, why: &str) {
        if self.db.epoch().is_past() {
            // Nothing of the parent's may be touched: not its connection, not its queue.
            return;
        }
        let mut writer = self.db.writer();
        writer.suspended.retain(|&id| id != self.id);
        let ours = match writer.open {
            OpenTransaction::Open { id, .. } => id == self.id,
            OpenTransaction::None => false,
        };
        if ours {
            roll_back(&writer.connection);
            writer.open = OpenTransaction::None;
            drop(writer);
            self.ended = Some(why.to_owned());
        }
    }
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Plain => "plain",
            Kind::Chunked { .. } => "chunked",
            Kind::Fenced(_) => "fenced",
        };
        f.debug_struct("Transaction").field("kind", &kind).field("id", &self.id).finish_non_exhaustive()
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.end("dropped");
    }
}
