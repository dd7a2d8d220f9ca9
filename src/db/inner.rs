//! What a database handle is: its connections and its place in the file's writer queue, shared
//! with its transactions.
//!
//! The handle's writer connection and the one write transaction that may be open on it live
//! under one mutex ([`WriterConnection`]), because a suspension of the process ends that
//! transaction from another thread: whatever runs on the connection first takes the mutex and
//! then asks whether the process is suspended, so a statement either ran before the suspension
//! (which interrupts it and waits for the mutex) or is refused.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, InterruptHandle};

use super::statements::Statements;
use crate::changes::ChangeLog;
use crate::error::{Error, Result};
use crate::file::{self, FileId, OpenFile};
use crate::fork::{self, Epoch};
use crate::sync::MutexExt;
use crate::writer_queue::{WriteTurn, WriterQueue};

pub(crate) struct DbInner {
    /// Declared (and so dropped) before the connections: see [`OpenFile`] on why.
    file: OpenFile,
    writer: Mutex<WriterConnection>,
    /// Interrupts the statement the writer connection runs, from another thread.
    interrupt: InterruptHandle,
    /// Opened on the first read.
    pub(super) reader: Mutex<Option<Reader>>,
    pub(super) path: PathBuf,
    busy_timeout_ms: AtomicU64,
    next_transaction: AtomicU64,
    epoch: Epoch,
}

/// The writer connection, and the write transaction open on it, if any.
pub(crate) struct WriterConnection {
    /// The application's statements on the connection; declared before it, and so dropped
    /// (finalized) before it is closed.
    pub(crate) statements: Statements,
    /// Declared before `changes`, and so dropped before it: SQLite calls into the log.
    pub(crate) connection: Connection,
    pub(crate) open: OpenTransaction,
    /// The transactions a suspension of the process rolled back, until each is told so by its
    /// next call (or ends): the handle may begin others meanwhile.
    pub(crate) suspended: Vec<u64>,
    /// What the connection's statements write, for the change record.
    pub(crate) changes: ChangeLog,
}

/// The connection a database handle reads with, and its statements (declared first, and so
/// finalized before it closes).
pub(crate) struct Reader {
    pub(crate) statements: Statements,
    pub(crate) connection: Connection,
}

/// Commits the open transaction, recording its changes in it first; rolls back if either
/// fails. Rings the file's bell when it wrote.
pub(crate) fn commit(connection: &Connection, changes: &mut ChangeLog, queue: &WriterQueue) -> Result<()> {
    let recording = changes.must_record();
    let recorded = if recording { changes.record(connection) } else { Ok(()) };
    match recorded.and_then(|()| connection.execute_batch("COMMIT")) {
        Ok(()) => {
            if recording {
                changes.committed();
                queue.committed();
            } else {
                changes.begin(false);
            }
            Ok(())
        }
        Err(e) => {
            roll_back(connection);
            changes.begin(false);
            Err(e.into())
        }
    }
}

/// The transaction a database handle has open (there is at most one: each waits for the
/// writer queue, and holds the handle's write turn until it ends).
#[derive(Default)]
pub(crate) enum OpenTransaction {
    #[default]
    None,
    /// Transaction `id` is open, and holds the write turn (given back when this is dropped).
    Open { id: u64, _turn: WriteTurn },
}

impl DbInner {
    pub(super) fn new(writer: Connection, file: OpenFile, path: &Path, busy_timeout: Duration) -> DbInner {
        DbInner {
            interrupt: writer.get_interrupt_handle(),
            writer: Mutex::new(WriterConnection {
                statements: Statements::new(),
                changes: ChangeLog::install(&writer),
                connection: writer,
                open: OpenTransaction::None,
                suspended: Vec::new(),
            }),
            reader: Mutex::new(None),
            file,
            path: path.to_path_buf(),
            busy_timeout_ms: AtomicU64::new(busy_timeout.as_millis() as u64),
            next_transaction: AtomicU64::new(1),
            epoch: Epoch::current(),
        }
    }

    /// Registers the handle as a writer of its file, so that a suspension finds it.
    pub(super) fn register(self: &Arc<Self>) {
        let writer: std::sync::Weak<dyn file::Writer> = Arc::downgrade(self) as _;
        self.file.add_writer(writer);
    }

    pub(super) fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms.load(Ordering::Relaxed))
    }

    pub(super) fn set_busy_timeout(&self, timeout: Duration) {
        self.busy_timeout_ms.store(timeout.as_millis() as u64, Ordering::Relaxed);
    }

    /// A number for a new transaction of this handle.
    pub(super) fn next_transaction_id(&self) -> u64 {
        self.next_transaction.fetch_add(1, Ordering::Relaxed)
    }

    /// `Err(Misuse)` in a child forked after the database was opened.
    pub(crate) fn check_fork(&self) -> Result<()> {
        self.epoch.check()
    }

    pub(crate) fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub(crate) fn writer(&self) -> MutexGuard<'_, WriterConnection> {
        self.writer.locked()
    }

    /// The writer's connection with no transaction open on it, for a caller that has no turn in
    /// the writer queue (a read while the process is suspended). Another thread of this handle
    /// may hold the connection, or have a transaction open on it, for as long as it likes: this
    /// waits for them only until `deadline`, then fails with `Error::Busy`, as a writer would.
    pub(crate) fn idle_writer_by(&self, deadline: Instant) -> Result<MutexGuard<'_, WriterConnection>> {
        loop {
            let writer = match self.writer.try_lock() {
                Ok(writer) => Some(writer),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(writer) = writer.filter(|writer| !matches!(writer.open, OpenTransaction::Open { .. }))
            {
                return Ok(writer);
            }
            if Instant::now() >= deadline {
                return Err(Error::Busy(
                    "a transaction of this database handle, on another thread, has its connection".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub(crate) fn busy_deadline(&self) -> Instant {
        Instant::now() + self.busy_timeout()
    }

    pub(crate) fn open_file(&self) -> &OpenFile {
        &self.file
    }

    pub(crate) fn file(&self) -> &FileId {
        self.file.id()
    }

    /// `Err(Database)` once the path no longer names the file this handle opened: its writes
    /// would go to a file nobody else sees.
    pub(crate) fn ensure_in_place(&self) -> Result<()> {
        self.file.ensure_in_place()
    }

    pub(crate) fn queue(&self) -> &Arc<WriterQueue> {
        self.file.queue()
    }

    /// Names the file in a database error's message.
    pub(crate) fn named(&self, error: Error) -> Error {
        error.in_file(Some(&self.path))
    }
}

impl file::Writer for DbInner {
    fn stop_writing(&self, deadline: Instant) -> std::result::Result<(), String> {
        let mut writer = loop {
            match self.writer.try_lock() {
                Ok(writer) => break writer,
                Err(TryLockError::Poisoned(poisoned)) => break poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    // A statement runs: end it (SQLITE_INTERRUPT), then the connection is free.
                    self.interrupt.interrupt();
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "{}: a statement of a database handle did not end",
                            self.path.display()
                        ));
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        };
        roll_back(&writer.connection);
        // Dropping the open transaction's turn lets the next writer of the process in.
        if let OpenTransaction::Open { id, .. } = std::mem::take(&mut writer.open) {
            writer.suspended.push(id);
        }
        if writer.connection.is_autocommit() {
            Ok(())
        } else {
            Err(format!("{}: a write transaction could not be rolled back", self.path.display()))
        }
    }
}

/// Leaves the connection out of any transaction, whatever state it is in.
pub(crate) fn roll_back(connection: &Connection) {
    if !connection.is_autocommit() {
        // A ROLLBACK fails only if there is no transaction, which was just ruled out; should
        // SQLite still refuse, the next BEGIN reports it.
        let _ = connection.execute_batch("ROLLBACK");
    }
}

impl Drop for DbInner {
    fn drop(&mut self) {
        if self.epoch.is_past() {
            // The parent's: its connections must not be closed here, nor its queue touched.
            let writer = self.writer.get_mut().unwrap_or_else(|p| p.into_inner());
            std::mem::forget(std::mem::take(&mut writer.open));
            // Finalizing a statement would take its connection's mutex, which a thread of the
            // parent may have held at the fork.
            std::mem::forget(std::mem::replace(&mut writer.statements, Statements::new()));
            fork::leak_connection(&mut writer.connection);
            // The leaked connection keeps the log's address as its authorizer's.
            std::mem::forget(std::mem::replace(&mut writer.changes, ChangeLog::detached()));
            std::mem::forget(self.reader.get_mut().unwrap_or_else(|p| p.into_inner()).take());
        }
    }
}
