//! A database handle: the application's connection to a shared SQLite file, whose writes queue
//! fairly with every other writer of the file in this process.
//!
//! Each handle has a writer connection, used by transactions and by single writes, and a reader
//! connection, opened on first read, so that reads outside transactions are never held up by a
//! transaction open on the same handle (WAL lets readers and the writer proceed together).

mod inner;
mod migrate;
mod statements;
mod transaction;
mod value;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use inner::{roll_back, DbInner, Reader, WriterConnection};
use statements::Statements;
use transaction::Kind;
pub use transaction::{ChunkOptions, Transaction};
pub(crate) use value::utf8;
pub use value::Value;

use crate::changes::{ChangeCallback, Observer};
use crate::error::{Error, Result};
use crate::file::{self, Cache};
use crate::holder::Holder;
use crate::lock::Guard;
use crate::suspension;
use crate::sync::MutexExt;

/// What a database handle is opened with.
#[derive(Clone)]
pub struct DatabaseOptions {
    /// How long a write may wait for the database: for its turn in the writer queue and for
    /// another process's write lock. Past it, the write fails with `Error::Busy`.
    pub busy_timeout: Duration,
    /// The holder this handle writes for; `None` is this OS process. Tests pass others.
    pub holder: Option<Arc<Holder>>,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        DatabaseOptions { busy_timeout: Duration::from_secs(5), holder: None }
    }
}

/// A handle on a shared database file. Thread-safe; cheap to clone.
#[derive(Clone)]
pub struct Database {
    inner: Arc<DbInner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("path", &self.path()).finish_non_exhaustive()
    }
}

impl Database {
    /// Opens (creating if needed) the database file at `path`, in WAL mode.
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        Database::open_with(path.as_ref(), DatabaseOptions::default())
    }

    pub fn open_with(path: &Path, options: DatabaseOptions) -> Result<Database> {
        let holder = match options.holder {
            Some(holder) => holder,
            None => Holder::current()?,
        };
        holder.check_fork()?;
        let mut writer = file::connect_writer(path, Cache::Application)?;
        let file = file::open(&holder, path, &mut writer)?;
        let inner = Arc::new(DbInner::new(writer, file, path, options.busy_timeout));
        inner.register();
        Ok(Database { inner })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Sets how long writes may wait (see [`DatabaseOptions::busy_timeout`]), and reads (which
    /// wait only while another connection recovers the database or switches its journal).
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<()> {
        self.inner.check_fork()?;
        self.inner.set_busy_timeout(timeout);
        if let Some(reader) = self.inner.reader.locked().as_ref() {
            file::set_busy_timeout(&reader.connection, timeout)?;
        }
        Ok(())
    }

    /// Runs one statement on its own, outside any transaction, through the writer queue, and
    /// returns the number of rows it changed. A single writing statement takes SQLite's write
    /// lock when it starts (there is no read-to-write upgrade to fail), and connection settings
    /// such as `PRAGMA foreign_keys` take effect, as they would not inside a transaction. SQL
    /// that opens a transaction (`BEGIN`) is rolled back and refused: use [`Database::begin`].
    /// While the process is suspended a read-only statement still runs (without the writer
    /// queue, since it takes no write lock); any other is refused with `Error::Suspended`.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let inner = &self.inner;
        inner.check_fork()?;
        inner.ensure_in_place()?;
        // Waiting for the connection is the queue's work; outside it (see below), it is bounded.
        let run = |outside_the_queue: bool| -> Result<u64> {
            let mut writer =
                if outside_the_queue { inner.idle_writer_by(inner.busy_deadline())? } else { inner.writer() };
            let WriterConnection { statements, connection, changes, .. } = &mut *writer;
            let statement = statements.get(connection, sql, Some(changes))?;
            // Asked under the connection's mutex, which a suspension takes after setting the flag.
            if !statement.readonly() {
                suspension::check()?;
            }
            let observed = || inner.queue().is_observed();
            let before = connection.total_changes();
            let changed = |connection: &rusqlite::Connection| {
                if connection.total_changes() == before {
                    0
                } else {
                    connection.changes()
                }
            };
            if statement.writes().is_some_and(|tables| !tables.is_empty()) && observed() {
                // A write to tables is recorded in its own transaction: begun (`Busy` goes back to
                // the queue, which tries again in turn), run, recorded, committed.
                connection.execute_batch("BEGIN IMMEDIATE")?;
                changes.begin(true);
                let ran = statement.run(params, &mut |_| true);
                changes.wrote(statement.writes().unwrap_or_default());
                return match ran {
                    Ok(()) => {
                        let changed = changed(connection);
                        inner::commit(connection, changes, inner.queue()).map(|()| changed)
                    }
                    Err(e) => {
                        roll_back(connection);
                        Err(e)
                    }
                };
            }
            let ran = statement.run(params, &mut |_| true).map(|()| changed(connection));
            if !statement.readonly() && ran.is_ok() && observed() {
                // A write that names no table (a PRAGMA): observers look, and find it unrecorded.
                inner.queue().committed();
            }
            if !connection.is_autocommit() {
                roll_back(connection);
                return Err(Error::InvalidArgument(
                    "execute runs one statement on its own; begin transactions with begin".into(),
                ));
            }
            // Busy (another process writes) goes back to the queue, which tries again in turn.
            ran
        };
        let changes = match inner.queue().enter(Some(inner.busy_deadline()), || run(false)) {
            Ok((turn, changes)) => {
                drop(turn);
                inner.queue().checkpoint_if_due(&inner.writer().connection);
                changes
            }
            // The queue is closed to writers while the process is suspended; a read need not
            // pass through it (`run` refuses anything else).
            Err(Error::Suspended(_)) => run(true).map_err(|e| inner.named(e))?,
            Err(e) => return Err(inner.named(e)),
        };
        Ok(changes)
    }

    /// Runs one read-only statement outside any transaction, handing each row to `on_row` until
    /// it returns `false`. Sees what is committed; never waits for writers.
    pub fn query(&self, sql: &str, params: &[Value], mut on_row: impl FnMut(&[Value]) -> bool) -> Result<()> {
        self.inner.check_fork()?;
        let mut reader = self.inner.reader.locked();
        if reader.is_none() {
            let connection =
                file::connect_reader(&self.inner.path, Cache::Application, self.inner.busy_timeout())?;
            *reader = Some(Reader { statements: Statements::new(), connection });
        }
        let Reader { statements, connection } = reader.as_mut().expect("opened above");
        let statement = statements.get(connection, sql, None).map_err(|e| self.inner.named(e))?;
        if !statement.readonly() {
            return Err(Error::InvalidArgument(
                "query runs read-only statements; write with execute or in a transaction".into(),
            ));
        }
        let ran = statement.run(params, &mut on_row).map_err(|e| self.inner.named(e));
        // SQLite counts BEGIN and SAVEPOINT as read-only: left open, they would keep every
        // later query of this handle on one old snapshot.
        if !connection.is_autocommit() {
            roll_back(connection);
            return Err(Error::InvalidArgument(
                "query runs one read-only statement on its own; it cannot begin a transaction".into(),
            ));
        }
        ran
    }

    /// Begins a write transaction: waits for its turn in the writer queue, then `BEGIN
    /// IMMEDIATE`, so that it holds SQLite's write lock from its first statement.
    pub fn begin(&self) -> Result<Transaction> {
        Transaction::begin(self.inner.clone(), Kind::Plain)
    }

    /// Begins a chunked transaction for a long job (see [`Transaction::maybe_commit`]).
    pub fn begin_chunked(&self, chunk: ChunkOptions) -> Result<Transaction> {
        chunk.validate()?;
        Transaction::begin(self.inner.clone(), Kind::chunked(chunk))
    }

    /// Begins a write transaction fenced by `guard`: before anything is written it checks, inside
    /// the transaction, that the guard's lease is still this process's with the guard's
    /// generation, and fails with `Error::Lost` otherwise. The guard's store must be this file.
    pub fn begin_fenced(&self, guard: &Guard) -> Result<Transaction> {
        Transaction::begin(self.inner.clone(), Kind::Fenced(guard.fence()))
    }

    /// Calls `callback` on the library's thread after commits to this database file, by any
    /// connection of any process: with the tables that changed (a writer that uses liblease), or
    /// `None` when they are not known (one that does not). Calls may be coalesced, never dropped:
    /// after the last commit there is always a call that comes after it, even if this process
    /// was stopped meanwhile. The observer lives on when this handle is dropped; dropping the
    /// observer stops the calls (see [`Observer`]).
    pub fn observe(&self, callback: Box<ChangeCallback>) -> Result<Observer> {
        self.inner.check_fork()?;
        self.inner.ensure_in_place()?;
        crate::changes::observe(self.inner.open_file(), callback)
    }
}
