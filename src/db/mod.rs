//! A database handle: the application's connection to a shared SQLite file, whose writes queue
//! fairly with every other writer of the file in this process.
//!
//! Each handle has a writer connection, used by transactions and by single writes, and a reader
//! connection, opened on first read, so that reads outside transactions are never held up by a
//! transaction open on the same handle (WAL lets readers and the writer proceed together).

mod transaction;
mod value;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::Connection;

pub use transaction::{ChunkOptions, Transaction};
pub use value::Value;

use crate::error::{Error, Result};
use crate::holder::{self, Holder, OpenFile};
use crate::lock::Guard;
use crate::store::{self, file_id, FileId};
use crate::sync::MutexExt;
use crate::writer_queue::WriterQueue;

/// What a database handle is opened with.
#[derive(Clone)]
pub struct DatabaseOptions {
    /// How long a write may wait for the database: for its turn in the writer queue and for
    /// another process's write lock. Past it, the write fails with `Error::Busy`.
    pub busy_timeout: Duration,
    /// The process this handle writes for; `None` is this OS process. Tests pass others.
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

pub(crate) struct DbInner {
    writer: Mutex<Connection>,
    reader: Mutex<Option<Connection>>,
    file: OpenFile,
    path: PathBuf,
    busy_timeout_ms: AtomicU64,
    fork_generation: u64,
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
        holder.ensure_not_forked()?;
        if path.as_os_str().is_empty() {
            return Err(Error::InvalidArgument("the database path is empty".into()));
        }
        let writer = open_connection(path, options.busy_timeout)?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
            .map_err(|e| named(path, e.into()))?;
        // From here on liblease waits for the writer itself, in queue order, rather than
        // through SQLite's busy handler.
        writer.busy_timeout(Duration::ZERO).map_err(|e| named(path, e.into()))?;
        if mode != "wal" {
            return Err(Error::Database(format!(
                "{}: cannot switch the database to WAL mode (it stays in {mode} mode)",
                path.display()
            )));
        }
        let file = holder.open_file(file_id(path)?, Some(path));
        let mut writer = writer;
        file.queue().watch_wal(&mut writer).map_err(|e| named(path, e.into()))?;
        Ok(Database {
            inner: Arc::new(DbInner {
                writer: Mutex::new(writer),
                reader: Mutex::new(None),
                file,
                path: path.to_path_buf(),
                busy_timeout_ms: AtomicU64::new(options.busy_timeout.as_millis() as u64),
                fork_generation: holder::fork_generation(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Sets how long writes may wait (see [`DatabaseOptions::busy_timeout`]), and reads (which
    /// wait only while another connection recovers the database or switches its journal).
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<()> {
        self.inner.ensure_not_forked()?;
        self.inner.busy_timeout_ms.store(timeout.as_millis() as u64, Ordering::Relaxed);
        if let Some(reader) = self.inner.reader.locked().as_ref() {
            reader.busy_timeout(timeout)?;
        }
        Ok(())
    }

    /// Runs one statement on its own, outside any transaction, through the writer queue, and
    /// returns the number of rows it changed. A single writing statement takes SQLite's write
    /// lock when it starts (there is no read-to-write upgrade to fail), and connection settings
    /// such as `PRAGMA foreign_keys` take effect, as they would not inside a transaction. SQL
    /// that opens a transaction (`BEGIN`) is rolled back and refused: use [`Database::begin`].
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let inner = &self.inner;
        inner.ensure_not_forked()?;
        let run = || -> Result<u64> {
            let writer = inner.writer();
            let mut statement = value::prepare(&writer, sql, params)?;
            let ran = value::execute(&writer, &mut statement);
            drop(statement);
            if !writer.is_autocommit() {
                let _ = writer.execute_batch("ROLLBACK");
                return Err(Error::InvalidArgument(
                    "execute runs one statement on its own; begin transactions with begin".into(),
                ));
            }
            // Busy (another process writes) goes back to the queue, which tries again in turn.
            ran
        };
        let (turn, changes) =
            inner.queue().enter(Some(inner.busy_deadline()), run).map_err(|e| inner.named(e))?;
        drop(turn);
        inner.queue().checkpoint_if_due(&inner.writer());
        Ok(changes)
    }

    /// Runs one read-only statement outside any transaction, handing each row to `on_row` until
    /// it returns `false`. Sees what is committed; never waits for writers.
    pub fn query(&self, sql: &str, params: &[Value], mut on_row: impl FnMut(&[Value]) -> bool) -> Result<()> {
        self.inner.ensure_not_forked()?;
        let mut reader = self.inner.reader.locked();
        if reader.is_none() {
            let busy_timeout = Duration::from_millis(self.inner.busy_timeout_ms.load(Ordering::Relaxed));
            *reader = Some(open_connection(&self.inner.path, busy_timeout)?);
        }
        let connection = reader.as_ref().expect("opened above");
        let mut statement = value::prepare(connection, sql, params).map_err(|e| self.inner.named(e))?;
        if !statement.readonly() {
            return Err(Error::InvalidArgument(
                "query runs read-only statements; write with execute or in a transaction".into(),
            ));
        }
        value::run(&mut statement, &mut on_row).map_err(|e| self.inner.named(e))
    }

    /// Begins a write transaction: waits for its turn in the writer queue, then `BEGIN
    /// IMMEDIATE`, so that it holds SQLite's write lock from its first statement.
    pub fn begin(&self) -> Result<Transaction> {
        Transaction::begin(self.inner.clone(), None, None)
    }

    /// Begins a chunked transaction for a long job (see [`Transaction::maybe_commit`]).
    pub fn begin_chunked(&self, chunk: ChunkOptions) -> Result<Transaction> {
        chunk.validate()?;
        Transaction::begin(self.inner.clone(), Some(chunk), None)
    }

    /// Begins a write transaction fenced by `guard`: before anything is written it checks, inside
    /// the transaction, that the guard's lease is still this process's with the guard's
    /// generation, and fails with `Error::Lost` otherwise. The guard's store must be this file.
    pub fn begin_fenced(&self, guard: &Guard) -> Result<Transaction> {
        Transaction::begin(self.inner.clone(), None, Some(guard.fence()))
    }
}

impl DbInner {
    pub(crate) fn ensure_not_forked(&self) -> Result<()> {
        holder::ensure_same_fork(self.fork_generation)
    }

    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.locked()
    }

    pub(crate) fn busy_deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.busy_timeout_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn file(&self) -> &FileId {
        self.file.id()
    }

    pub(crate) fn queue(&self) -> &Arc<WriterQueue> {
        self.file.queue()
    }

    /// Names the file in a database error's message.
    pub(crate) fn named(&self, error: Error) -> Error {
        named(&self.path, error)
    }
}

impl Drop for DbInner {
    fn drop(&mut self) {
        if holder::forked_since(self.fork_generation) {
            holder::leak_parent_connection(&mut self.writer);
            std::mem::forget(self.reader.get_mut().unwrap_or_else(|p| p.into_inner()).take());
        }
    }
}

/// A connection whose SQLite busy handler waits up to `busy_timeout`: readers keep it (a WAL
/// reader is busy only while another connection recovers or switches the journal); the writer
/// turns it off once set up.
fn open_connection(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let connection = store::open_connection(path).map_err(|e| named(path, e.into()))?;
    let configure = || -> rusqlite::Result<()> {
        connection.busy_timeout(busy_timeout)?;
        // WAL's usual pairing: a commit is durable across a crash of the app, and a power cut can
        // lose only the last commits, never corrupt the file. `PRAGMA synchronous = FULL` through
        // `execute` restores fsync at every commit where that matters more than speed.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        // Small caches: a notification extension has about 24 MB in all.
        connection.pragma_update(None, "cache_size", -512)?;
        Ok(())
    };
    configure().map_err(|e| named(path, e.into()))?;
    Ok(connection)
}

fn named(path: &Path, error: Error) -> Error {
    error.in_file(Some(path))
}
