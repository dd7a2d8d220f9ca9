//! A store: one connection to the shared SQLite database that holds the lease table.
//!
//! The lease table normally lives in the application's own database file, beside its tables.
//! Opening a store switches the file to WAL mode (so readers never block the writer, and because
//! iOS exempts a WAL database from the 0xdead10cc rule) and creates or migrates the lease table.

pub(crate) mod lease_table;
pub(crate) mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use rusqlite::Connection;

pub use lease_table::LeaseRow;

use crate::changes;
use crate::clock::{BootClock, Clock};
use crate::error::Result;
use crate::file::{self, Cache, OpenFile, OPEN_BUSY_LIMIT};
use crate::fork::{self, Epoch};
use crate::holder::Holder;
use crate::log::log;
use crate::runtime;
use crate::suspension;
use crate::sync::MutexExt;
use crate::writer_queue::{self, Place};

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
    /// Declared (and so dropped) before the connection: see [`OpenFile`] on why.
    pub(crate) file: OpenFile,
    connection: Mutex<Connection>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) holder: Arc<Holder>,
    path: Option<PathBuf>,
    epoch: Epoch,
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
        holder.check_fork()?;
        let clock: Arc<dyn Clock> = match options.clock {
            Some(clock) => clock,
            None => BootClock::system()?,
        };
        let (connection, file) = match path {
            Some(path) => {
                let mut connection = file::connect_writer(path, Cache::Lease)?;
                let file = file::open(&holder, path, &mut connection)?;
                (connection, file)
            }
            None => file::open_memory(&holder)?,
        };
        // Creating or migrating the lease table is a write like any other: it waits its turn, so
        // that a long job lets it in. A private in-memory store locks no file, so it may be
        // created while the process is suspended (with the suspension's own entry).
        let begin = || {
            let deadline = Some(Instant::now() + OPEN_BUSY_LIMIT);
            let start = || Ok(connection.execute_batch("BEGIN IMMEDIATE")?);
            let entered = match path {
                Some(_) => file.queue().enter(deadline, start),
                None => file.queue().enter_suspending(deadline, start),
            };
            entered.map(|(turn, ())| turn)
        };
        schema::migrate(&connection, begin).map_err(|e| e.in_file(path))?;
        let store = Store {
            inner: Arc::new_cyclic(|me| StoreInner {
                me: me.clone(),
                connection: Mutex::new(connection),
                file,
                clock,
                holder,
                path: path.map(Path::to_path_buf),
                epoch: Epoch::current(),
            }),
        };
        let writer: std::sync::Weak<dyn file::Writer> = Arc::downgrade(&store.inner) as _;
        store.inner.file.add_writer(writer);
        Ok(store)
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

/// How a store's write enters the writer queue.
#[derive(Debug, Clone, Copy)]
enum Entering<'a> {
    Write,
    /// A write retried in stays, from a place it keeps.
    At(&'a Place),
    /// The suspension's own.
    Suspending,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl StoreInner {
    /// `Err(Misuse)` in a child forked after the store was opened.
    pub(crate) fn check_fork(&self) -> Result<()> {
        self.epoch.check()
    }

    pub(crate) fn epoch(&self) -> Epoch {
        self.epoch
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        self.connection.locked()
    }

    /// Runs a read. In WAL mode reads are not blocked by writers; they wait only while another
    /// connection holds the file for a moment (see `file::while_busy`).
    pub(crate) fn read<T>(&self, mut f: impl FnMut(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.check_fork()?;
        let connection = self.connection();
        file::while_busy(Instant::now() + OPEN_BUSY_LIMIT, || f(&connection))
            .map_err(|e| crate::Error::from(e).in_file(self.path.as_deref()))
    }

    /// Runs one write statement (atomic on its own) through the file's writer queue, retrying
    /// while another process holds the write lock, until `deadline`; `None` tries once without
    /// waiting. Waiting past the deadline is `Error::Busy`; while the process is suspended it is
    /// `Error::Suspended`.
    pub(crate) fn write<T>(
        &self,
        deadline: Option<Instant>,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.write_as(Entering::Write, deadline, &mut f)
    }

    /// Like [`StoreInner::write`], from a place in the writer queue kept across stays (see
    /// `WriterQueue::take_place`); `None` as `deadline`: one try.
    pub(crate) fn write_at<T>(
        &self,
        place: &Place,
        deadline: Option<Instant>,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.write_as(Entering::At(place), deadline, &mut f)
    }

    /// A place at the back of the file's writer queue (see `WriterQueue::take_place`).
    pub(crate) fn take_place(&self) -> Place {
        self.file.queue().take_place()
    }

    /// Like [`StoreInner::write`], for the suspension's own statements (giving the process's
    /// leases back), which run while the process is suspended.
    pub(crate) fn write_suspending<T>(
        &self,
        deadline: Instant,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.write_as(Entering::Suspending, Some(deadline), &mut f)
    }

    fn write_as<T>(
        &self,
        entering: Entering<'_>,
        deadline: Option<Instant>,
        f: &mut dyn FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.check_fork()?;
        self.file.ensure_in_place()?;
        let queue = self.file.queue();
        let mut write = || {
            let connection = self.connection();
            // Asked again under the connection's mutex, which a suspension takes after it has
            // set the flag: a statement either ran before it, or is refused.
            if !matches!(entering, Entering::Suspending) {
                suspension::check()?;
            }
            // While some process observes the file, each of the lease's commits counts itself
            // in the change record, in a transaction with its statement: observers must not
            // take it for a foreign writer's (see `changes`). Otherwise it is one statement,
            // one page.
            if self.path.is_some() && queue.is_observed() {
                return counted(&connection, &mut *f);
            }
            f(&connection).map_err(crate::Error::from)
        };
        // The statement is its own transaction: the write turn ends as soon as it returns.
        let entered = match entering {
            Entering::Write => queue.enter(deadline, &mut write),
            Entering::At(place) => queue.enter_at(place, deadline, &mut write),
            Entering::Suspending => queue.enter_suspending(deadline, &mut write),
        };
        let (turn, value) = entered.map_err(|e| e.in_file(self.path.as_deref()))?;
        drop(turn);
        // Waiters of this lease (and observers) look at once, now that the write is visible.
        queue.committed();
        if queue.take_checkpoint() {
            log!(
                Debug,
                "{}: the WAL is past its limit: checkpointing it on the library's thread",
                self.name()
            );
            self.checkpoint_in_background();
        }
        Ok(value)
    }

    /// The file, for log messages: its path, or `:memory:`.
    pub(crate) fn name(&self) -> std::borrow::Cow<'_, str> {
        self.path.as_deref().map_or(":memory:".into(), |path| path.to_string_lossy())
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

impl file::Writer for StoreInner {
    /// The store's connection runs only single statements: a suspension waits for the one that
    /// runs now, if any.
    fn stop_writing(&self, deadline: Instant) -> std::result::Result<(), String> {
        loop {
            if let Ok(connection) = self.connection.try_lock() {
                debug_assert!(connection.is_autocommit(), "a store never keeps a transaction open");
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("the lease table's connection to {:?} was still writing", self.path));
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
}

impl Drop for StoreInner {
    fn drop(&mut self) {
        if self.epoch.is_past() {
            fork::leak_connection(self.connection.get_mut().unwrap_or_else(|p| p.into_inner()));
        }
    }
}

/// Creates (or migrates) the lease table on a bare connection: for the benchmark's floor.
pub(crate) fn create_lease_table(connection: &Connection) -> Result<()> {
    schema::migrate(connection, || Ok(connection.execute_batch("BEGIN IMMEDIATE")?))
}

/// Runs the lease's statements `f` and counts the commit in the change record, in one write
/// transaction (`Busy` at its `BEGIN` goes back to the writer queue, which tries again in turn).
fn counted<T>(connection: &Connection, f: &mut dyn FnMut(&Connection) -> rusqlite::Result<T>) -> Result<T> {
    connection.execute_batch("BEGIN IMMEDIATE")?;
    let done = f(connection).and_then(|value| {
        changes::count_commit(connection)?;
        connection.execute_batch("COMMIT")?;
        Ok(value)
    });
    if done.is_err() && !connection.is_autocommit() {
        let _ = connection.execute_batch("ROLLBACK");
    }
    done.map_err(crate::Error::from)
}
