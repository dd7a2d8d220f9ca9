//! Looking at a liblease database from outside, for the `lease` tool (`cli/`): not part of the
//! API, and free to change with it.
//!
//! A person who runs `lease status` wants to see the leases and the writers waiting without
//! taking part: no lease taken, no notice posted, no file made, nothing written, and no write
//! lock taken, since the tool may be run beside a stuck app precisely because something holds the
//! database. So [`ReadOnlyDatabase`] opens the file read-only, in one of two ways:
//!
//! - With a `-wal` beside it, as a reader of that WAL that never writes the `-shm` either
//!   (SQLite's `mode=ro&readonly_shm=1`): it reads the latest commit, and takes only readers'
//!   locks. A `-wal` without a `-shm` cannot be read without making one, and is refused.
//! - Without one, no process has the database open in WAL mode (the last one to close deletes
//!   the WAL), and a plain read-only open would make a `-wal` and a `-shm` and leave them behind.
//!   Every commit is then in the database file itself, which is read as it stands
//!   (`immutable=1`, no locks at all). A process that opens the database meanwhile makes a WAL
//!   first; if one has appeared once the read ends, the read is done again through it.
//!
//! The board is read as bytes, never mapped, so that reading it neither makes it nor posts on it;
//! whether a holder is alive, and whether its lease still counts, are judged as a waiter would.
//! Breaking a lease ([`break_lease`]) is the one write: it opens the database as a store and
//! takes the lease over as a waiter takes it from a crashed holder, giving it back in the same
//! statement.

#![doc(hidden)]

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::file::{self, OPEN_BUSY_LIMIT};
use crate::liveness::{self, Identity};
use crate::store::lease_table::{self, Claim, EndedHold, HoldName};
use crate::store::{schema, LeaseRow, Store};
use crate::vfs;
use crate::writer_board::{self, Layout, MAGIC, SIZE};

/// The lease table's schema version that this build writes and understands.
pub const SCHEMA_VERSION: i64 = schema::VERSION;

/// How long a board file is.
pub const BOARD_SIZE: u64 = SIZE as u64;

/// This build's version of liblease.
pub const LIBRARY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The label a lease broken by [`break_lease`] is left with, so that its row says what
/// happened to it.
pub const BREAKER_LABEL: &str = "lease release";

/// An error's own words, without the kind's prefix that `Display` adds.
pub fn reason(error: &Error) -> &str {
    error.message()
}

/// `<database><suffix>`: the side files (`-wal`, `-shm`, `-liblease`, `-journal`).
pub fn side_file(database: &Path, suffix: &str) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push(suffix);
    PathBuf::from(path)
}

/// A database file opened only to be read (see the module documentation).
#[derive(Debug)]
pub struct ReadOnlyDatabase {
    path: PathBuf,
}

impl ReadOnlyDatabase {
    /// `Err` when `path` is not a file this process may read; makes nothing.
    pub fn open(path: &Path) -> Result<ReadOnlyDatabase> {
        let refused = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Database("no such file".into()),
            _ => Error::Database(e.to_string()),
        };
        let metadata = std::fs::metadata(path).map_err(refused)?;
        if !metadata.is_file() {
            return Err(Error::Database("not a regular file".into()));
        }
        File::open(path).map_err(refused)?;
        Ok(ReadOnlyDatabase { path: path.to_path_buf() })
    }

    /// The lease table's schema version; 0 when the database has no lease table.
    pub fn schema_version(&self) -> Result<i64> {
        self.read(schema::version)
    }

    /// Every row of the lease table, by key, as `clock` judges them; none without a lease table.
    pub fn leases(&self, clock: &dyn Clock) -> Result<Vec<Lease>> {
        let rows = self.read(|connection| {
            if schema::version(connection)? == 0 {
                return Ok(Vec::new());
            }
            let keys: Vec<String> = connection
                .prepare("SELECT key FROM liblease_lease ORDER BY key")?
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut rows = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some(row) = lease_table::read(connection, &key)? {
                    rows.push((key, row));
                }
            }
            Ok(rows)
        })?;
        Ok(rows.into_iter().map(|(key, row)| Lease::judge(key, row, clock)).collect())
    }

    /// The row of `key`, as `clock` judges it; `None` when there is none (or no lease table).
    pub fn lease(&self, key: &str, clock: &dyn Clock) -> Result<Option<Lease>> {
        let row = self.read(|connection| {
            if schema::version(connection)? == 0 {
                return Ok(None);
            }
            lease_table::read(connection, key)
        })?;
        Ok(row.map(|row| Lease::judge(key.to_owned(), row, clock)))
    }

    /// SQLite's `PRAGMA integrity_check`: the problems it found, none for a sound file. A file
    /// too damaged to be checked (not a database, a broken first page) is one problem.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        self.read(|connection| {
            let checked = connection.prepare("PRAGMA integrity_check").and_then(|mut statement| {
                statement.query_map([], |row| row.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()
            });
            match checked {
                Ok(lines) if lines == ["ok"] => Ok(Vec::new()),
                Ok(lines) => Ok(lines),
                Err(e) if is_damage(&e) => Ok(vec![e.to_string()]),
                Err(e) => Err(e),
            }
        })
    }

    /// Runs `f` in one read transaction (one snapshot), on a connection opened for it.
    fn read<T>(&self, mut f: impl FnMut(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let wal = side_file(&self.path, "-wal");
        let mut tries = 0;
        loop {
            tries += 1;
            let immutable = !wal.exists();
            // SQLite reads a WAL only through its index, which it would make.
            if !immutable && !side_file(&self.path, "-shm").exists() {
                return Err(Error::Database(
                    "its -wal has no -shm beside it, which reading it would make; the next process \
                     that opens the database for writing makes it again"
                        .into(),
                ));
            }
            let connection = self.connect(immutable)?;
            let read = file::while_busy(Instant::now() + OPEN_BUSY_LIMIT, || {
                connection.execute_batch("BEGIN")?;
                let read = f(&connection);
                connection.execute_batch("ROLLBACK")?;
                read
            });
            // A WAL made while the file was read as it stood may hold newer commits, and a
            // checkpoint from it may have changed pages under the read: again, through the WAL.
            if immutable && wal.exists() && tries < 3 {
                continue;
            }
            return read.map_err(Error::from);
        }
    }

    fn connect(&self, immutable: bool) -> Result<Connection> {
        let path = std::path::absolute(&self.path).map_err(|e| Error::Database(e.to_string()))?;
        let query = if immutable { "immutable=1" } else { "mode=ro&readonly_shm=1" };
        let uri = format!("file:{}?{query}", uri_path(path.as_os_str()));
        let flags =
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let vfs = vfs::name()
            .map_err(|rc| Error::from(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rc), None)))?;
        Ok(Connection::open_with_flags_and_vfs(uri, flags, vfs)?)
    }
}

/// True for SQLite's answers that the file is damaged or not a database at all.
fn is_damage(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// An absolute path as the path of a `file:` URI: bytes other than unreserved ones and `/`
/// percent-encoded (a `?`, `#` or `%` in a file name would otherwise be read as URI syntax).
fn uri_path(path: &OsStr) -> String {
    let mut encoded = String::new();
    for &byte in path.as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Whether a lease still keeps others out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Unexpired: nobody else may take it (unless its holder is certainly dead).
    Held,
    /// Ran out, or was taken in an earlier boot, without being given back: anyone may take it.
    Expired,
    /// Given back (`expires_ms` 0).
    Released,
}

/// Whether the process that holds (or last held) a lease is running, as seen from this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Dead,
    /// It cannot be told: the row names no process (written before schema version 2, or where
    /// liveness is not known), or one of another PID namespace or boot, or `/proc` is hidden.
    Unknown,
}

/// One lease, as the table has it and as a waiter would judge it now.
#[derive(Debug, Clone)]
pub struct Lease {
    pub key: String,
    pub row: LeaseRow,
    pub state: LeaseState,
    pub holder: Liveness,
    /// Milliseconds until it runs out, negative once it has; `None` once given back, or for a
    /// lease of another boot (whose clock cannot be read now).
    pub expires_in_ms: Option<i64>,
    /// Milliseconds since its hold took it, while it is held; `None` otherwise, and where the
    /// row does not say (taken before schema version 4, or in another boot).
    pub held_for_ms: Option<u64>,
}

impl Lease {
    fn judge(key: String, row: LeaseRow, clock: &dyn Clock) -> Lease {
        let this_boot = *row.boot == *clock.boot_id();
        let now_ms = clock.now_ms();
        // As `take` and a waiter's look decide: a lease of another boot, or run out, is free.
        let state = if row.expires_ms == 0 {
            LeaseState::Released
        } else if !this_boot || row.expires_ms <= now_ms {
            LeaseState::Expired
        } else {
            LeaseState::Held
        };
        let expires_in_ms =
            (this_boot && state != LeaseState::Released).then(|| row.expires_ms as i64 - now_ms as i64);
        let held_for_ms =
            (state == LeaseState::Held && row.taken_ms != 0).then(|| now_ms.saturating_sub(row.taken_ms));
        let holder = if this_boot { liveness_of(&row.identity()) } else { Liveness::Unknown };
        Lease { key, row, state, holder, expires_in_ms, held_for_ms }
    }
}

/// Dead exactly when a waiter would take the lease over from it; alive when the process with
/// its pid, in this PID namespace, started when it did.
fn liveness_of(holder: &Identity) -> Liveness {
    let me = Identity::of_this_process();
    if holder.is_certainly_dead(&me) {
        Liveness::Dead
    } else if holder.started != 0
        && holder.pid_namespace == me.pid_namespace
        && liveness::start_time(holder.pid) == Some(holder.started)
    {
        Liveness::Alive
    } else {
        Liveness::Unknown
    }
}

/// Takes the lease on `key` over from the hold that `seen` names, as a waiter takes it from a
/// crashed holder, and gives it back in the same statement: the lease is then free, its
/// generation one higher, and its row names this process with [`BREAKER_LABEL`]. The old
/// holder's next renewal finds the row no longer its own and its hold lost; its fenced
/// transactions fail at once (the fence checks holder and generation in the database). Only
/// that hold is taken over: had another holder taken the lease since `seen` was read, it keeps
/// it, and this returns `None`. Otherwise the new generation.
///
/// This opens the database as a store, as any process that uses liblease does (its board made
/// if there is none, an older lease table migrated), and waits for its turn to write up to the
/// time a store's opening waits.
pub fn break_lease(path: &Path, key: &str, seen: &LeaseRow) -> Result<Option<u64>> {
    let store = Store::open(path)?;
    let store = &store.inner;
    let boot = store.clock.boot_id();
    let now_ms = store.clock.now_ms();
    let claim = Claim {
        name: HoldName {
            key,
            holder_id: store.holder.id(),
            hold: store.holder.next_hold_number(),
            boot: &boot,
        },
        label: BREAKER_LABEL,
        now_ms,
        // Given back as it is taken.
        expires_ms: 0,
    };
    let dead = EndedHold { holder_id: &seen.holder_id, hold: seen.hold };
    store.write(Some(Instant::now() + OPEN_BUSY_LIMIT), |connection| {
        lease_table::take(connection, &claim, store.holder.identity(), Some(&dead))
    })
}

/// Wakes a watcher of a database when it may have changed: a commit (its WAL written, or its
/// board's bell rung), on Linux and Android through inotify; elsewhere only when its timeout
/// passes. Watches without opening the database.
pub struct CommitWait(crate::wait::ChangeWait);

impl CommitWait {
    pub fn new(database: &Path) -> CommitWait {
        CommitWait(crate::wait::ChangeWait::new(Some(database), None))
    }

    /// Blocks until the database may have changed, or `timeout`; true when woken by a change.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        self.0.wait(timeout)
    }
}

/// What the board file beside a database holds, read without mapping or changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Board {
    /// No board: no process has written through liblease since the file was made (the first one
    /// makes it), or it was deleted.
    Missing,
    /// Shorter than a board: truncated, or not liblease's (a process leaves such a file alone,
    /// and goes without fair turns). Its length.
    Short(u64),
    /// Another program's file: a process leaves it alone, and goes without fair turns.
    Foreign,
    /// A board, and the writers of other processes waiting on it now (fresh notices only: a
    /// stale one is ignored by every writer).
    Board(Vec<WaitingWriter>),
}

/// A notice on the board: a process's writer waiting for its turn at SQLite's write lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingWriter {
    pub slot: usize,
    pub pid: u32,
    /// How long it has waited.
    pub waiting: Duration,
}

/// Reads the board of the database at `database`.
pub fn read_board(database: &Path) -> std::io::Result<Board> {
    let mut file = match File::open(side_file(database, "-liblease")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Board::Missing),
        other => other?,
    };
    let len = file.metadata()?.len();
    if len < SIZE as u64 {
        return Ok(Board::Short(len));
    }
    // SAFETY: a board's layout is atomics and integers, for which all-zero bytes are valid.
    let mut layout: Layout = unsafe { std::mem::MaybeUninit::zeroed().assume_init() };
    // SAFETY: the bytes of a layout this function owns, which nothing else refers to; any bytes
    // are a valid layout (as above).
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(std::ptr::from_mut(&mut layout).cast::<u8>(), size_of::<Layout>())
    };
    match file.read_exact(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Ok(Board::Short(file.metadata()?.len()))
        }
        other => other?,
    }
    // An all-zero file is a board not yet stamped: `WriterBoard::open` stamps it.
    if !matches!(layout.magic.load(Ordering::Relaxed), 0 | MAGIC) {
        return Ok(Board::Foreign);
    }
    let now = writer_board::now_ns();
    let waiting = layout
        .slots
        .iter()
        .enumerate()
        .filter(|(_, slot)| slot.since.load(Ordering::Relaxed) != 0 && !writer_board::is_stale(slot, now))
        .map(|(index, slot)| WaitingWriter {
            slot: index,
            pid: slot.pid.load(Ordering::Relaxed),
            waiting: Duration::from_nanos(now.saturating_sub(slot.since.load(Ordering::Relaxed))),
        })
        .collect();
    Ok(Board::Board(waiting))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::writer_board::WriterBoard;

    fn row(boot: &str, expires_ms: u64) -> LeaseRow {
        let me = Identity::of_this_process();
        LeaseRow {
            holder_id: "h".into(),
            hold: 1,
            label: "app".into(),
            boot: boot.into(),
            expires_ms,
            generation: 3,
            pid: me.pid,
            started: me.started,
            pid_namespace: me.pid_namespace,
            taken_ms: 500,
        }
    }

    #[test]
    fn a_lease_is_judged_as_a_waiter_judges_it() {
        let clock = ManualClock::new(10_000, "boot-a");
        let held = Lease::judge("k".into(), row("boot-a", 12_500), &*clock);
        assert_eq!(
            (held.state, held.expires_in_ms, held.held_for_ms),
            (LeaseState::Held, Some(2_500), Some(9_500))
        );
        let untimed = LeaseRow { taken_ms: 0, ..row("boot-a", 12_500) };
        assert_eq!(Lease::judge("k".into(), untimed, &*clock).held_for_ms, None, "taken before schema 4");
        let expired = Lease::judge("k".into(), row("boot-a", 10_000), &*clock);
        assert_eq!(
            (expired.state, expired.expires_in_ms, expired.held_for_ms),
            (LeaseState::Expired, Some(0), None)
        );
        let released = Lease::judge("k".into(), row("boot-a", 0), &*clock);
        assert_eq!((released.state, released.expires_in_ms), (LeaseState::Released, None));
        // Another boot's clock cannot be read, nor its pids compared.
        let earlier = Lease::judge("k".into(), row("boot-0", 99_999), &*clock);
        assert_eq!(
            (earlier.state, earlier.expires_in_ms, earlier.holder),
            (LeaseState::Expired, None, Liveness::Unknown)
        );
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_holder_is_alive_dead_or_unknown() {
        let clock = ManualClock::new(10_000, "boot-a");
        assert_eq!(Lease::judge("k".into(), row("boot-a", 12_500), &*clock).holder, Liveness::Alive);
        let gone = LeaseRow { started: row("boot-a", 1).started + 1, ..row("boot-a", 12_500) };
        assert_eq!(Lease::judge("k".into(), gone, &*clock).holder, Liveness::Dead);
        let unnamed = LeaseRow { started: 0, ..row("boot-a", 12_500) };
        assert_eq!(Lease::judge("k".into(), unnamed, &*clock).holder, Liveness::Unknown);
        let elsewhere = LeaseRow { pid_namespace: "0:1".into(), ..row("boot-a", 12_500) };
        assert_eq!(Lease::judge("k".into(), elsewhere, &*clock).holder, Liveness::Unknown);
    }

    #[test]
    fn a_board_is_read_without_being_made_or_changed() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("app.db");
        let path = side_file(&database, "-liblease");
        assert_eq!(read_board(&database).unwrap(), Board::Missing);
        assert!(!path.exists(), "reading made no board");
        for (bytes, board) in [(vec![1; 100], Board::Short(100)), (vec![0xee; SIZE], Board::Foreign)] {
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(read_board(&database).unwrap(), board);
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
        }
        std::fs::remove_file(&path).unwrap();
        let board = WriterBoard::open(&database).unwrap();
        assert_eq!(read_board(&database).unwrap(), Board::Board(Vec::new()));
        let notice = board.post(writer_board::waiting_since()).unwrap();
        let Board::Board(waiting) = read_board(&database).unwrap() else { panic!("a board") };
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].pid, std::process::id());
        board.withdraw(notice);
        assert_eq!(read_board(&database).unwrap(), Board::Board(Vec::new()));
    }

    #[test]
    fn a_path_with_uri_syntax_is_percent_encoded() {
        assert_eq!(uri_path(OsStr::new("/tmp/a b/x?y#z%.db")), "/tmp/a%20b/x%3Fy%23z%25.db");
    }
}
