//! A store: one connection to the shared SQLite database that holds the lease table.
//!
//! The lease table normally lives in the application's own database file, beside its tables.
//! Opening a store switches the file to WAL mode (so readers never block the writer, and because
//! iOS exempts a WAL database from the 0xdead10cc rule) and creates or migrates the lease table.

pub(crate) mod lease_table;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

pub use lease_table::LeaseRow;

use crate::clock::{BootClock, Clock};
use crate::error::{Error, Result};
use crate::holder::{self, Holder, OpenFile};
use crate::runtime;
use crate::sync::MutexExt;
use crate::writer_queue;

/// How long opening a store may wait for another connection's write lock (to create the table).
const OPEN_BUSY_LIMIT: Duration = Duration::from_secs(5);

/// Identifies a database file however its path is spelled, so that every handle of one file in a
/// process shares its holds (and, later, its writer queue).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum FileId {
    File {
        device: u64,
        inode: u64,
    },
    /// An in-memory store is its own file.
    Memory(u64),
}

/// What a store is opened with. The defaults are right outside tests.
#[derive(Clone, Default)]
pub struct StoreOptions {
    /// The clock leases are timed by; `None` is the system's boot clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// The holder this store acts for; `None` is this OS process. Tests pass others to play
    /// several processes in one binary.
    pub holder: Option<Arc<Holder>>,
}

/// A connection to a database that holds a lease table. Cheap to clone; thread-safe.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<StoreInner>,
}

pub(crate) struct StoreInner {
    /// This store itself, for the work it hands to the library's thread.
    me: Weak<StoreInner>,
    connection: Mutex<Connection>,
    pub(crate) file: OpenFile,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) holder: Arc<Holder>,
    path: Option<PathBuf>,
    fork_generation: u64,
}

impl Store {
    /// Opens (creating if needed) the database file at `path` and its lease table.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(Some(path.as_ref()), StoreOptions::default())
    }

    /// A private in-memory store: for tests and for single-process use.
    pub fn open_in_memory() -> Result<Store> {
        Store::open_with(None, StoreOptions::default())
    }

    /// Opens the file at `path`, or an in-memory store for `None`, with explicit options.
    pub fn open_with(path: Option<&Path>, options: StoreOptions) -> Result<Store> {
        let holder = match options.holder {
            Some(holder) => holder,
            None => Holder::current()?,
        };
        holder.ensure_not_forked()?;
        let clock: Arc<dyn Clock> = match options.clock {
            Some(clock) => clock,
            None => BootClock::system()?,
        };
        let (connection, file_id) = match path {
            Some(path) => {
                if path.as_os_str().is_empty() {
                    return Err(Error::InvalidArgument("the database path is empty".into()));
                }
                let connection = open_connection(path).map_err(|e| at(Some(path), e))?;
                (connection, file_id(path)?)
            }
            None => (Connection::open_in_memory()?, FileId::Memory(next_memory_id())),
        };
        // Processes that open a new database at once contend for it while it switches to WAL
        // mode: SQLite's own busy handler waits that out. From then on liblease waits itself,
        // in its writer queue.
        connection.busy_timeout(OPEN_BUSY_LIMIT).map_err(|e| at(path, e))?;
        configure(&connection).map_err(|e| at(path, e))?;
        connection.busy_timeout(Duration::ZERO).map_err(|e| at(path, e))?;
        let file = holder.open_file(file_id, path);
        let mut connection = connection;
        file.queue().watch_wal(&mut connection).map_err(|e| at(path, e))?;
        // Creating or migrating the lease table is a write like any other: it waits its turn, so
        // that a long job lets it in.
        let begin = || {
            let deadline = Some(Instant::now() + OPEN_BUSY_LIMIT);
            file.queue()
                .enter(deadline, || Ok(connection.execute_batch("BEGIN IMMEDIATE")?))
                .map(|(turn, ())| turn)
        };
        schema::migrate(&connection, begin).map_err(|e| e.in_file(path))?;
        Ok(Store {
            inner: Arc::new_cyclic(|me| StoreInner {
                me: me.clone(),
                connection: Mutex::new(connection),
                file,
                clock,
                holder,
                path: path.map(Path::to_path_buf),
                fork_generation: holder::fork_generation(),
            }),
        })
    }

    /// The file's path, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The current row of `key` in the lease table, for diagnostics and tests.
    pub fn lease_row(&self, key: &str) -> Result<Option<LeaseRow>> {
        self.inner.read(|connection| lease_table::read(connection, key))
    }
}

impl StoreInner {
    pub(crate) fn ensure_not_forked(&self) -> Result<()> {
        holder::ensure_same_fork(self.fork_generation)
    }

    pub(crate) fn fork_generation(&self) -> u64 {
        self.fork_generation
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        self.connection.locked()
    }

    /// Runs a read. In WAL mode reads are not blocked by writers.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.ensure_not_forked()?;
        f(&self.connection()).map_err(|e| at(self.path.as_deref(), e))
    }

    /// Runs one write statement (atomic on its own) through the file's writer queue, retrying
    /// while another process holds the write lock, until `deadline`; `None` tries once without
    /// waiting. Waiting past the deadline is `Error::Busy`.
    pub(crate) fn write<T>(
        &self,
        deadline: Option<Instant>,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.ensure_not_forked()?;
        let queue = self.file.queue();
        // The statement is its own transaction: the write turn ends as soon as it returns.
        let (turn, value) = queue
            .enter(deadline, || f(&self.connection()).map_err(Error::from))
            .map_err(|e| e.in_file(self.path.as_deref()))?;
        drop(turn);
        if queue.take_checkpoint() {
            self.checkpoint_in_background();
        }
        Ok(value)
    }

    /// The lease's writes are waited for by their callers (a release may come from an app's main
    /// thread), so a checkpoint that one of them made due runs on the library's thread instead.
    fn checkpoint_in_background(&self) {
        let me = self.me.clone();
        let spawned = runtime::spawn(async move {
            if let Some(store) = me.upgrade() {
                writer_queue::checkpoint(&store.connection());
            }
        });
        if spawned.is_err() {
            writer_queue::checkpoint(&self.connection());
        }
    }
}

impl Drop for StoreInner {
    fn drop(&mut self) {
        if holder::forked_since(self.fork_generation) {
            holder::leak_parent_connection(&mut self.connection);
        }
    }
}

/// Opens (creating if needed) a database file for reading and writing. liblease's connections
/// are each used under a mutex of its own, so SQLite's per-connection mutex is not needed.
pub(crate) fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(path, flags)
}

fn configure(connection: &Connection) -> rusqlite::Result<()> {
    // The store touches one tiny table: a small page cache keeps a 24 MB extension comfortable.
    connection.pragma_update(None, "cache_size", -64)?;
    let mode: String = connection.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))?;
    if mode != "wal" && mode != "memory" {
        return Err(sqlite_error(format!(
            "cannot switch the database to WAL mode (it stays in {mode} mode)"
        )));
    }
    // A lease row lost to a power cut does not matter (a reboot expires every lease), so the
    // store's own commits need not wait for fsync.
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

pub(crate) fn file_id(path: &Path) -> Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path)
        .map_err(|e| Error::Database(format!("cannot stat {}: {e}", path.display())))?;
    Ok(FileId::File { device: metadata.dev(), inode: metadata.ino() })
}

fn next_memory_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// An error of liblease's own in SQLite's clothes, for code paths that return rusqlite errors.
pub(crate) fn sqlite_error(message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR), Some(message))
}

/// A database error naming the file, with SQLite's own message.
fn at(path: Option<&Path>, error: rusqlite::Error) -> Error {
    Error::from(error).in_file(path)
}
