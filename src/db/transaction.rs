//! Write transactions: plain, chunked for long jobs, and fenced by a lease.
//!
//! Every transaction holds this process's write turn on the file from `BEGIN IMMEDIATE` until it
//! ends, and always ends with the connection out of any transaction: a commit that fails rolls
//! back, and a transaction dropped without commit rolls back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::inner::DbInner;
use super::value::{self, Value};
use crate::error::{Error, Result};
use crate::lock::Fence;
use crate::writer_queue::WriteTurn;

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
    /// This process's write turn; `None` once the transaction has ended.
    turn: Option<WriteTurn>,
    /// Why the transaction ended before `commit` or `rollback`, for the error of later calls.
    ended: Option<String>,
}

impl Transaction {
    pub(crate) fn begin(db: Arc<DbInner>, kind: Kind) -> Result<Transaction> {
        db.check_fork()?;
        if let Kind::Fenced(fence) = &kind {
            fence.same_file(db.file())?;
            // A lease known lost (its file replaced, say) fails as such before anything else.
            fence.check()?;
        }
        let mut transaction = Transaction { db, kind, turn: None, ended: None };
        transaction.start()?;
        Ok(transaction)
    }

    /// Takes the write turn and SQLite's write lock, then checks the fence inside the transaction.
    fn start(&mut self) -> Result<()> {
        let db = &self.db;
        db.ensure_in_place()?;
        let (turn, ()) = db
            .queue()
            .enter(Some(db.busy_deadline()), || Ok(db.writer().execute_batch("BEGIN IMMEDIATE")?))
            .map_err(|e| db.named(e))?;
        match &mut self.kind {
            Kind::Plain => {}
            Kind::Chunked { started, .. } => *started = Instant::now(),
            Kind::Fenced(fence) => {
                let writer = db.writer();
                if let Err(e) = fence.verify(&writer) {
                    roll_back(&writer);
                    return Err(e);
                }
            }
        }
        self.turn = Some(turn);
        Ok(())
    }

    fn ensure_open(&self) -> Result<()> {
        self.db.check_fork()?;
        match (&self.turn, &self.ended) {
            (Some(_), _) => Ok(()),
            (None, Some(why)) => Err(Error::Misuse(format!("the transaction has ended: {why}"))),
            (None, None) => Err(Error::Misuse("the transaction has ended".into())),
        }
    }

    /// Runs one statement in the transaction; returns the number of rows it inserted, updated or
    /// deleted (0 for any other statement).
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let before = self.db.writer().total_changes();
        self.run(sql, params, &mut |_| true)?;
        let writer = self.db.writer();
        Ok(if writer.total_changes() == before { 0 } else { writer.changes() })
    }

    /// Runs one statement in the transaction (it sees the transaction's own writes), handing
    /// each row to `on_row` until it returns `false`.
    pub fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        mut on_row: impl FnMut(&[Value]) -> bool,
    ) -> Result<()> {
        self.run(sql, params, &mut on_row)
    }

    fn run(&mut self, sql: &str, params: &[Value], on_row: &mut dyn FnMut(&[Value]) -> bool) -> Result<()> {
        self.ensure_open()?;
        let writer = self.db.writer();
        let result =
            value::prepare(&writer, sql, params).and_then(|mut statement| value::run(&mut statement, on_row));
        // Some failures (a full disk, say) make SQLite roll the whole transaction back; and SQL
        // such as COMMIT would end it behind our back.
        let ended_by_sqlite = writer.is_autocommit();
        drop(writer);
        if ended_by_sqlite {
            let why = match &result {
                Ok(()) => "the SQL ended the transaction; end it with commit or rollback".to_owned(),
                Err(e) => format!("SQLite rolled it back after: {e}"),
            };
            self.end(why.clone());
            return Err(match result {
                Ok(()) => Error::Misuse(why),
                Err(e) => self.db.named(e),
            });
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
        self.ensure_open()?;
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
        if let Err(e) = self.start() {
            self.ended = Some(format!("its last chunk was committed, but the next could not begin: {e}"));
            return Err(e);
        }
        Ok(true)
    }

    /// Waits up to `gap` without the write lock, or until another connection commits.
    fn leave_a_gap(&self, gap: Duration) {
        let data_version =
            || self.db.writer().query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0)).ok();
        let before = data_version();
        let until = Instant::now() + gap;
        while Instant::now() < until && data_version() == before {
            std::thread::sleep(Duration::from_millis(1).min(until - Instant::now()));
        }
    }

    /// Commits. Consumes the transaction; if the commit fails it is rolled back.
    pub fn commit(mut self) -> Result<()> {
        self.ensure_open()?;
        self.commit_chunk()
    }

    /// Rolls back (a chunked transaction: its current chunk only; committed chunks stay).
    pub fn rollback(mut self) {
        if self.turn.is_some() && !self.db.epoch().is_past() {
            roll_back(&self.db.writer());
            self.end("rolled back".into());
        }
    }

    fn commit_chunk(&mut self) -> Result<()> {
        let writer = self.db.writer();
        let committed = writer.execute_batch("COMMIT");
        if committed.is_err() && !writer.is_autocommit() {
            roll_back(&writer);
        }
        drop(writer);
        match committed {
            Ok(()) => {
                self.end("committed".into());
                self.db.queue().checkpoint_if_due(&self.db.writer());
                Ok(())
            }
            Err(e) => {
                let error = self.db.named(e.into());
                self.end(format!("its commit failed and it was rolled back: {error}"));
                Err(error)
            }
        }
    }

    /// Gives up the write turn, letting the next writer in.
    fn end(&mut self, why: String) {
        self.turn = None;
        self.ended = Some(why);
    }
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Plain => "plain",
            Kind::Chunked { .. } => "chunked",
            Kind::Fenced(_) => "fenced",
        };
        f.debug_struct("Transaction")
            .field("kind", &kind)
            .field("open", &self.turn.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.db.epoch().is_past() {
            // Nothing of the parent's may be touched: not its connection, not its queue.
            std::mem::forget(self.turn.take());
            return;
        }
        if self.turn.is_some() {
            roll_back(&self.db.writer());
            self.end("dropped".into());
        }
    }
}

/// Leaves the connection out of any transaction, whatever state it is in.
fn roll_back(connection: &Connection) {
    if !connection.is_autocommit() {
        // A ROLLBACK fails only if there is no transaction, which was just ruled out; should
        // SQLite still refuse, the next BEGIN reports it.
        let _ = connection.execute_batch("ROLLBACK");
    }
}
