//! A database file: how liblease names it, how it connects to it, and what this process keeps
//! for it while any handle has it open.
//!
//! Every store and database handle of one file in one holder shares one [`FileEntry`]: the
//! file's writer queue (and through it the file's board), and the lease slots of the locks kept
//! in it. The entry lives while some handle has the file open; when the last one goes it is
//! dropped with all it holds, so that a file deleted and made again (perhaps with the same
//! inode) or renamed starts afresh, and its first acquisition counts as dirty.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::error::{is_busy, sqlite_error, Error, Result};
use crate::fork::Epoch;
use crate::fork_local::ForkLocal;
use crate::holder::Holder;
use crate::suspension;
use crate::sync::MutexExt;
use crate::vfs;
use crate::writer_board::WriterBoard;
use crate::writer_queue::WriterQueue;

/// How long opening waits for other connections while the file is switched to WAL mode.
pub(crate) const OPEN_BUSY_LIMIT: Duration = Duration::from_secs(5);

/// Identifies a database file however its path is spelled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum FileId {
    File {
        device: u64,
        inode: u64,
    },
    /// An in-memory store is its own file.
    Memory(u64),
}

impl FileId {
    /// The file `path` names now.
    pub(crate) fn of(path: &Path) -> Result<FileId> {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(path)
            .map_err(|e| Error::Database(format!("cannot stat {}: {e}", path.display())))?;
        Ok(FileId::File { device: metadata.dev(), inode: metadata.ino() })
    }

    fn new_memory() -> FileId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        FileId::Memory(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// The page cache of a connection, in KiB: small, because a notification extension has about
/// 24 MB in all.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cache {
    /// A store's connection, which touches one tiny table.
    Lease = 64,
    /// A database handle's, for the application's own SQL.
    Application = 512,
    /// An observer's, which reads one tiny table.
    Observer = 32,
}

/// Runs `f`, a read (or a switch of the journal) that SQLite may refuse for a moment, again
/// until it is not busy or `deadline` passes.
///
/// In WAL mode a reader is refused only while another connection holds the file exclusively for
/// a moment: it is switching the file to WAL, recovering the WAL after a crash, or, as the last
/// connection to close, checkpointing the WAL and deleting it. SQLite's own busy handler does not
/// always wait for those (a connection that holds a shared lock and wants more is refused at once,
/// so that two cannot wait for each other), and liblease's writers keep it off anyway (they wait
/// in their writer queue), so reads wait here, in short pauses.
pub(crate) fn while_busy<T>(
    deadline: Instant,
    mut f: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let mut pause = Duration::from_micros(250);
    loop {
        match f() {
            Err(error) if is_busy(&error) && Instant::now() < deadline => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(4));
            }
            other => return other,
        }
    }
}

/// Opens a writer's connection to the file at `path` (creating it if needed) in WAL mode.
///
/// liblease's connections are each used under a mutex of its own, so SQLite's per-connection
/// mutex is not needed. Processes that open a new database at once contend for it while it
/// switches to WAL mode: that is waited out, up to `OPEN_BUSY_LIMIT`. From then on the writer
/// waits in its writer queue instead, so its busy handler is off.
///
/// Commits use `synchronous = NORMAL`, WAL's usual pairing: a commit is durable across a crash
/// of the app, and a power cut can lose only the last commits, never corrupt the file.
pub(crate) fn connect_writer(path: &Path, cache: Cache) -> Result<Connection> {
    if path.as_os_str().is_empty() {
        return Err(Error::InvalidArgument("the database path is empty".into()));
    }
    let connect = || -> Result<Connection> {
        let connection = connect(path, cache, OPEN_BUSY_LIMIT)?;
        // Switching a file to WAL writes it (and takes its write lock): not while the process is
        // suspended. A file in WAL mode already is opened without a write.
        if suspension::is_suspended() {
            let mode: String = while_busy(Instant::now() + OPEN_BUSY_LIMIT, || {
                connection.pragma_query_value(None, "journal_mode", |row| row.get(0))
            })?;
            if !mode.eq_ignore_ascii_case("wal") {
                suspension::check()?;
            }
        }
        let mode: String = while_busy(Instant::now() + OPEN_BUSY_LIMIT, || {
            connection.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
        })?;
        if mode != "wal" {
            return Err(sqlite_error(format!(
                "cannot switch the database to WAL mode (it stays in {mode} mode)"
            ))
            .into());
        }
        set_busy_timeout(&connection, Duration::ZERO)?;
        Ok(connection)
    };
    connect().map_err(|e| e.in_file(Some(path)))
}

/// Opens a reader's connection to the file at `path`, whose busy handler waits up to
/// `busy_timeout` (a WAL reader is busy only while another connection recovers the file or
/// switches its journal).
pub(crate) fn connect_reader(path: &Path, cache: Cache, busy_timeout: Duration) -> Result<Connection> {
    connect(path, cache, busy_timeout).map_err(|e| Error::from(e).in_file(Some(path)))
}

/// Sets how long SQLite's own busy handler waits on `connection`, through SQLite's
/// `sqlite3_busy_timeout` (rusqlite's also clears a client datum, which needs SQLite 3.44).
pub(crate) fn set_busy_timeout(connection: &Connection, timeout: Duration) -> rusqlite::Result<()> {
    let ms = std::ffi::c_int::try_from(timeout.as_millis()).unwrap_or(std::ffi::c_int::MAX);
    // SAFETY: a live connection's handle.
    match unsafe { rusqlite::ffi::sqlite3_busy_timeout(connection.handle(), ms) } {
        rusqlite::ffi::SQLITE_OK => Ok(()),
        rc => Err(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rc), None)),
    }
}

/// The oldest SQLite liblease works with: 3.35 brought `RETURNING`, which takes a lease and reads
/// its generation in one statement.
pub(crate) const MIN_SQLITE: (i32, &str) = (3_035_000, "3.35.0");

/// `Err` when the SQLite this process loaded is older than [`MIN_SQLITE`] (a system SQLite).
fn check_sqlite_version() -> rusqlite::Result<()> {
    new_enough(rusqlite::version_number(), rusqlite::version())
}

fn new_enough(loaded: i32, name: &str) -> rusqlite::Result<()> {
    if loaded >= MIN_SQLITE.0 {
        return Ok(());
    }
    Err(sqlite_error(format!(
        "liblease needs SQLite {} or later, and this process loaded SQLite {name}",
        MIN_SQLITE.1
    )))
}

fn connect(path: &Path, cache: Cache, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    check_sqlite_version()?;
    crate::log::warn_of_another_sqlite();
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    // liblease's own VFS: SQLite's default, with the WAL index guarded against truncation.
    let vfs =
        vfs::name().map_err(|rc| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rc), None))?;
    let connection = Connection::open_with_flags_and_vfs(path, flags, vfs)?;
    size_lookaside(&connection, cache);
    set_busy_timeout(&connection, busy_timeout)?;
    connection.pragma_update(None, "cache_size", -(cache as i64))?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(connection)
}

/// Turns SQLite's lookaside off for a connection that runs only a few small statements of
/// liblease's own (a store's, an observer's). Lookaside is a connection's arena for small
/// allocations, 1200 bytes x 40 slots by default, every slot written (so resident) when the
/// connection opens: it speeds up preparing statements, which these connections do once, and
/// costs about 47 KiB of dirty memory each. A database handle's connections keep it, for the
/// application's SQL. Must come before the connection's first statement; if SQLite refuses
/// (lookaside already in use), the default stays, which only costs memory.
fn size_lookaside(connection: &Connection, cache: Cache) {
    if let Cache::Application = cache {
        return;
    }
    // SAFETY: a live connection's handle; SQLITE_DBCONFIG_LOOKASIDE takes a buffer (NULL: none
    // of the caller's), a slot size and a slot count, as its documentation says.
    unsafe {
        rusqlite::ffi::sqlite3_db_config(
            connection.handle(),
            rusqlite::ffi::SQLITE_DBCONFIG_LOOKASIDE,
            std::ptr::null_mut::<std::ffi::c_void>(),
            0 as std::ffi::c_int,
            0 as std::ffi::c_int,
        )
    };
}

/// Registers one more handle of `holder` on the file `connection` is open on, and makes the
/// connection report its commits to the file's writer queue.
pub(crate) fn open(holder: &Arc<Holder>, path: &Path, connection: &mut Connection) -> Result<OpenFile> {
    // Named absolutely, so that the checks of `OpenFile::ensure_in_place` mean the same file
    // after the process changes its directory.
    let path = std::path::absolute(path).map_err(|e| Error::Database(format!("{}: {e}", path.display())))?;
    let id = FileId::of(&path)?;
    // The path might have been given another file between the open and the stat: then it no
    // longer names the connection's file, which SQLite can tell from the descriptor it opened.
    if has_moved(connection) {
        return Err(Error::Database(format!(
            "{}: the file was replaced while it was being opened; open it again",
            path.display()
        )));
    }
    let file = OpenFile::register(holder, id, Some(path));
    file.queue().watch_wal(connection).map_err(|e| file.named(e.into()))?;
    Ok(file)
}

/// True when the path the connection opened no longer names the file it has open (SQLite's
/// `SQLITE_FCNTL_HAS_MOVED`: the file was deleted, renamed, or replaced).
fn has_moved(connection: &Connection) -> bool {
    let mut moved: std::ffi::c_int = 0;
    // SAFETY: a live connection's handle, its main database, and an int for the answer, as the
    // file control's documentation asks.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            connection.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_HAS_MOVED,
            std::ptr::from_mut(&mut moved).cast(),
        )
    };
    rc == rusqlite::ffi::SQLITE_OK && moved != 0
}

/// A private in-memory database of `holder`'s, and its registration.
pub(crate) fn open_memory(holder: &Arc<Holder>) -> Result<(Connection, OpenFile)> {
    check_sqlite_version()?;
    let connection = Connection::open_in_memory()?;
    connection.pragma_update(None, "cache_size", -(Cache::Lease as i64))?;
    Ok((connection, OpenFile::register(holder, FileId::new_memory(), None)))
}

/// A handle's connection that writes the file, as a suspension of the process sees it (see
/// `lifecycle.rs`); the store and the database handles are the writers.
pub(crate) trait Writer: Send + Sync {
    /// Interrupts the statement the connection runs now, if any, and rolls back its write
    /// transaction, if it has one, waiting up to `deadline` for the connection. `Err` says what
    /// kept it.
    fn stop_writing(&self, deadline: Instant) -> std::result::Result<(), String>;
}

/// What one holder keeps for one open file.
pub(crate) struct FileEntry {
    key: (String, FileId),
    queue: Arc<WriterQueue>,
    /// The lease slots of the locks kept in this file. The layer above owns their type; the
    /// entry only keeps them, and drops them with itself.
    leases: OnceLock<Box<dyn Any + Send + Sync>>,
    /// The handles that write the file, held weakly: a suspension stops them all.
    writers: Mutex<Vec<Weak<dyn Writer>>>,
}

impl FileEntry {
    /// The writer queue shared by every handle of the file in this holder.
    pub(crate) fn queue(&self) -> &Arc<WriterQueue> {
        &self.queue
    }

    /// The file's lease slots, made on first use.
    pub(crate) fn leases<T: Any + Default + Send + Sync>(&self) -> &T {
        self.leases
            .get_or_init(|| Box::new(T::default()))
            .downcast_ref()
            .expect("the lease slots of a file are always of one type")
    }

    /// The handles that write the file and are still open.
    pub(crate) fn writers(&self) -> Vec<Arc<dyn Writer>> {
        self.writers.locked().iter().filter_map(Weak::upgrade).collect()
    }
}

/// Every file open in this process, of every holder.
pub(crate) fn open_files() -> Vec<Arc<FileEntry>> {
    registry().locked().values().filter_map(Weak::upgrade).collect()
}

/// The open files of every holder of this process. A forked child starts with none.
type Registry = Mutex<BTreeMap<(String, FileId), Weak<FileEntry>>>;
static REGISTRY: ForkLocal<Registry> = ForkLocal::new();

fn registry() -> &'static Registry {
    REGISTRY.get_or_try_init(|| Ok(Registry::default())).expect("making an empty registry cannot fail")
}

/// One handle's registration on its file, held by each store and database handle.
///
/// A file is known by its device and inode, and a deleted file's inode number is given to the
/// next file made once nobody has the deleted one open any more. So a handle must drop its
/// registration before it closes its connection to the file: the other way round, a file made
/// in between (the app's new database, after a "log out") could be taken for the old one and
/// join its entry, with its board and writer queue.
pub(crate) struct OpenFile {
    entry: Arc<FileEntry>,
    /// The path this handle opened, absolute; `None` in memory.
    path: Option<PathBuf>,
    epoch: Epoch,
}

impl OpenFile {
    fn register(holder: &Holder, id: FileId, path: Option<PathBuf>) -> OpenFile {
        let key = (holder.id().to_owned(), id);
        let mut open = registry().locked();
        let entry = match open.get(&key).and_then(Weak::upgrade) {
            Some(entry) => entry,
            None => {
                let entry = Arc::new(FileEntry {
                    key: key.clone(),
                    queue: Arc::new(WriterQueue::new(path.as_deref().and_then(WriterBoard::open))),
                    leases: OnceLock::new(),
                    writers: Mutex::new(Vec::new()),
                });
                open.insert(key, Arc::downgrade(&entry));
                entry
            }
        };
        OpenFile { entry, path, epoch: Epoch::current() }
    }

    /// One more registration of the same file, for a handle made from this one's (an observer
    /// of a database handle, which may outlive it).
    pub(crate) fn another(&self) -> OpenFile {
        OpenFile { entry: self.entry.clone(), path: self.path.clone(), epoch: Epoch::current() }
    }

    /// The absolute path this handle opened; `None` in memory.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub(crate) fn id(&self) -> &FileId {
        &self.entry.key.1
    }

    /// `Ok` while this handle's path still names the file it opened; otherwise the file was
    /// deleted, renamed or replaced (an app's "log out", say), and whatever this handle writes
    /// would go to a file that nobody else sees. Costs one `stat`.
    pub(crate) fn ensure_in_place(&self) -> Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        match FileId::of(path) {
            Ok(id) if id == *self.id() => Ok(()),
            Ok(_) => Err(Error::Database(format!(
                "{}: the database file was replaced since it was opened (deleted and made again, \
                 or another file renamed over it); open it again",
                path.display()
            ))),
            Err(_) => Err(Error::Database(format!(
                "{}: the database file was deleted or renamed since it was opened; open it again",
                path.display()
            ))),
        }
    }

    /// Names this handle's file in a database error's message.
    pub(crate) fn named(&self, error: Error) -> Error {
        error.in_file(self.path.as_deref())
    }

    /// The writer queue shared by every handle of the file in this holder.
    pub(crate) fn queue(&self) -> &Arc<WriterQueue> {
        self.entry.queue()
    }

    /// The file's lease slots, made on first use.
    pub(crate) fn leases<T: Any + Default + Send + Sync>(&self) -> &T {
        self.entry.leases()
    }

    /// Registers the handle that owns this registration as a writer of the file.
    pub(crate) fn add_writer(&self, writer: Weak<dyn Writer>) {
        let mut writers = self.entry.writers.locked();
        writers.retain(|writer| writer.strong_count() > 0);
        writers.push(writer);
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if self.epoch.is_past() {
            // In a forked child the parent's entry is left as it is: what it holds (a mapped
            // board, the parent's holds) is not the child's to free.
            std::mem::forget(self.entry.clone());
        }
    }
}

impl Drop for FileEntry {
    fn drop(&mut self) {
        let mut open = registry().locked();
        // A handle opened since may have registered a new entry under the same key already.
        if open.get(&self.key).is_some_and(|entry| entry.strong_count() == 0) {
            open.remove(&self.key);
        }
    }
}

/// How many files `holder` has open, for tests.
#[cfg(test)]
pub(crate) fn open_count(holder: &Holder) -> usize {
    registry().locked().keys().filter(|(id, _)| id == holder.id()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Lock, LockOptions, Store, StoreOptions};

    #[test]
    fn an_sqlite_older_than_3_35_is_refused_by_name() {
        assert!(new_enough(3_035_000, "3.35.0").is_ok());
        assert!(
            new_enough(rusqlite::version_number(), rusqlite::version()).is_ok(),
            "the SQLite of this build"
        );
        let refused = new_enough(3_034_001, "3.34.1").unwrap_err().to_string();
        assert!(refused.contains("needs SQLite 3.35.0 or later") && refused.contains("3.34.1"), "{refused}");
    }

    /// How many of the connection's allocations lookaside served so far.
    fn lookaside_hits(connection: &Connection) -> i32 {
        let (mut current, mut highest) = (0, 0);
        // SAFETY: a live connection's handle and two ints for the answer.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                connection.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_LOOKASIDE_HIT,
                &mut current,
                &mut highest,
                0,
            )
        };
        assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
        highest
    }

    #[test]
    fn only_a_database_handles_connections_keep_lookaside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lookaside.db");
        for (cache, keeps) in [(Cache::Application, true), (Cache::Lease, false), (Cache::Observer, false)] {
            let connection = connect_writer(&path, cache).unwrap();
            // Some platforms' SQLite has no lookaside at all (Debian's is built without it).
            let omitted: bool = connection
                .query_row("SELECT sqlite_compileoption_used('OMIT_LOOKASIDE')", [], |row| row.get(0))
                .unwrap();
            connection
                .execute_batch("CREATE TABLE IF NOT EXISTS t (n INTEGER); SELECT count(*) FROM t")
                .unwrap();
            assert_eq!(lookaside_hits(&connection) > 0, keeps && !omitted, "{cache:?}");
        }
    }

    /// .cargo/config.toml compiles the bundled SQLite so that a connection's page cache grows a
    /// page at a time; by default SQLite writes 20 pages' worth at a connection's first read.
    #[cfg(feature = "bundled")]
    #[test]
    fn the_bundled_sqlite_allocates_no_page_cache_ahead() {
        let connection = Connection::open_in_memory().unwrap();
        let option = "SELECT sqlite_compileoption_used('DEFAULT_PCACHE_INITSZ=0')";
        let used: bool = connection.query_row(option, [], |row| row.get(0)).unwrap();
        assert!(used, "the bundled SQLite was built without LIBSQLITE3_FLAGS (.cargo/config.toml)");
    }

    #[test]
    fn closed_files_leave_nothing_behind() {
        let holder = Holder::new().unwrap();
        for _ in 0..3 {
            let options = StoreOptions { holder: Some(holder.clone()), ..StoreOptions::default() };
            let store = Store::open_with(None, options).unwrap();
            drop(Lock::new(&store, "k", "app", LockOptions::DEFAULT).unwrap().try_acquire().unwrap());
            assert_eq!(open_count(&holder), 1);
        }
        // Forgotten at once, with their lease slots: nothing (not a heartbeat that has yet to
        // wake) keeps a closed store.
        assert_eq!(open_count(&holder), 0);
    }
}
