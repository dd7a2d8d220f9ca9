//! What a database handle is: its connections and its place in the file's writer queue, shared
//! with its transactions.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::file::{FileId, OpenFile};
use crate::fork::{self, Epoch};
use crate::sync::MutexExt;
use crate::writer_queue::WriterQueue;

pub(crate) struct DbInner {
    writer: Mutex<Connection>,
    /// Opened on the first read.
    pub(super) reader: Mutex<Option<Connection>>,
    file: OpenFile,
    pub(super) path: PathBuf,
    busy_timeout_ms: AtomicU64,
    epoch: Epoch,
}

impl DbInner {
    pub(super) fn new(writer: Connection, file: OpenFile, path: &Path, busy_timeout: Duration) -> DbInner {
        DbInner {
            writer: Mutex::new(writer),
            reader: Mutex::new(None),
            file,
            path: path.to_path_buf(),
            busy_timeout_ms: AtomicU64::new(busy_timeout.as_millis() as u64),
            epoch: Epoch::current(),
        }
    }

    pub(super) fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms.load(Ordering::Relaxed))
    }

    pub(super) fn set_busy_timeout(&self, timeout: Duration) {
        self.busy_timeout_ms.store(timeout.as_millis() as u64, Ordering::Relaxed);
    }
    /// `Err(Misuse)` in a child forked after the database was opened.
    pub(crate) fn check_fork(&self) -> Result<()> {
        self.epoch.check()
    }

    pub(crate) fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.locked()
    }

    pub(crate) fn busy_deadline(&self) -> Instant {
        Instant::now() + self.busy_timeout()
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

impl Drop for DbInner {
    fn drop(&mut self) {
        if self.epoch.is_past() {
            fork::leak_connection(&mut self.writer);
            std::mem::forget(self.reader.get_mut().unwrap_or_else(|p| p.into_inner()).take());
        }
    }
}
