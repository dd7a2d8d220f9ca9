//! The writers' side of the change record: which tables a connection's statements write
//! (SQLite's authorizer), what its open transaction changed, and the rows that record a commit.

use std::collections::BTreeSet;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::Mutex;

use rusqlite::Connection;

use crate::sync::MutexExt;

/// The record's table.
pub(crate) const TABLE: &str = "liblease_change";

/// The SQL that makes the record's table, for `concat!`: it is also part of the lease table's
/// schema (whose triggers count the lease's commits in it).
macro_rules! create_change_table {
    () => {
        "CREATE TABLE IF NOT EXISTS liblease_change (
             name TEXT    NOT NULL PRIMARY KEY, -- an application table; '' for the count of commits
             seq  INTEGER NOT NULL              -- the count of commits when it last changed
         ) WITHOUT ROWID"
    };
}
pub(crate) use create_change_table;

const CREATE_TABLE: &str = create_change_table!();

/// The record's name for "tables unknown": a commit ran a write that names no table (a
/// `PRAGMA user_version`, say), which may change anything an observer reads.
pub(crate) const UNKNOWN_TABLES: &str = "*";

/// Counts one more commit and returns the count.
const COUNT: &str = "INSERT INTO liblease_change (name, seq) VALUES ('', 1)
    ON CONFLICT (name) DO UPDATE SET seq = seq + 1 RETURNING seq";

/// Counts one more commit, for a writer that records no table (the lease's).
const COUNT_ONLY: &str = "UPDATE liblease_change SET seq = seq + 1 WHERE name = ''";

/// Counts the commit of the open transaction in the change record (which the lease table's
/// schema makes, with its count's row).
pub(crate) fn count_commit(connection: &Connection) -> rusqlite::Result<()> {
    connection.prepare_cached(COUNT_ONLY)?.execute([]).map(|_| ())
}

/// Marks a table changed by the commit counted `?2`.
const MARK: &str = "INSERT INTO liblease_change (name, seq) VALUES (?1, ?2)
    ON CONFLICT (name) DO UPDATE SET seq = excluded.seq";

/// True for a table whose changes observers are told about: not SQLite's own, not liblease's.
pub(crate) fn is_application_table(name: &str) -> bool {
    !name.starts_with("sqlite_") && !name.starts_with("liblease_")
}

/// What a writer connection learns from SQLite's authorizer of the tables a statement writes
/// (when it is prepared: see `db::statements`, which keeps that with the statement), and the
/// tables its open transaction changed. Lives with the connection, under its mutex.
pub(crate) struct ChangeLog {
    /// Filled by the authorizer while a statement is prepared. Boxed: SQLite keeps its address.
    captured: Box<Captured>,
    /// The tables the open transaction changed.
    changed: BTreeSet<String>,
    /// Whether the open transaction records what it changes: some process observes the file.
    recording: bool,
    /// Whether the open transaction ran a statement that writes.
    wrote: bool,
    /// Whether the record's table is known to exist (made by a commit of this connection).
    table_made: bool,
}

#[derive(Default)]
struct Captured(Mutex<Vec<String>>);

impl ChangeLog {
    /// Installs the authorizer on `connection`, which must be dropped before this log.
    pub(crate) fn install(connection: &Connection) -> ChangeLog {
        let log = ChangeLog::detached();
        let context = std::ptr::from_ref::<Captured>(&log.captured).cast_mut().cast::<c_void>();
        // SAFETY: a live connection; the context outlives it (the connection is dropped first,
        // see WriterConnection), and the callback only reads its arguments.
        unsafe { rusqlite::ffi::sqlite3_set_authorizer(connection.handle(), Some(authorize), context) };
        log
    }

    /// A log installed on no connection.
    pub(crate) fn detached() -> ChangeLog {
        ChangeLog {
            captured: Box::default(),
            changed: BTreeSet::new(),
            recording: false,
            wrote: false,
            table_made: false,
        }
    }

    /// A statement is about to be prepared: what the authorizer noted before is not its.
    pub(crate) fn start_capture(&mut self) {
        self.captured.0.locked().clear();
    }

    /// The tables the statement prepared since [`ChangeLog::start_capture`] may write, each
    /// once (SQLite calls the authorizer only when it prepares, not when a kept statement runs
    /// again).
    pub(crate) fn take_captured(&mut self) -> Vec<String> {
        dedup(std::mem::take(&mut *self.captured.0.locked()))
    }

    /// A transaction begins; it records what it changes if `observed` (decided once, at its
    /// beginning: a transaction that began unrecorded and commits once an observer has come is
    /// seen by that observer as a commit of unknown tables, never as none).
    pub(crate) fn begin(&mut self, observed: bool) {
        self.changed.clear();
        self.recording = observed;
        self.wrote = false;
    }

    /// A statement that writes `tables` ran in the transaction.
    pub(crate) fn wrote(&mut self, tables: &[String]) {
        self.wrote = true;
        if !self.recording {
            // What a statement prepared again noted is cleared before the next preparation.
            return;
        }
        // SQLite prepares a statement again when the schema changed, authorizing it again.
        let again = std::mem::take(&mut *self.captured.0.locked());
        if tables.is_empty() && again.is_empty() {
            self.changed.insert(UNKNOWN_TABLES.to_owned());
        }
        self.changed.extend(tables.iter().cloned());
        self.changed.extend(again);
    }

    /// Whether the open transaction must be recorded: it records, and ran a statement that
    /// writes.
    pub(crate) fn must_record(&self) -> bool {
        self.recording && self.wrote
    }

    /// Records the open transaction's commit, inside it: one more commit, and the tables it
    /// changed. Called just before `COMMIT`.
    pub(crate) fn record(&mut self, connection: &Connection) -> rusqlite::Result<()> {
        if !self.table_made {
            connection.execute_batch(CREATE_TABLE)?;
        }
        let count: i64 = connection.prepare_cached(COUNT)?.query_row([], |row| row.get(0))?;
        let mut mark = connection.prepare_cached(MARK)?;
        for table in self.changed.iter().filter(|table| is_application_table(table)) {
            mark.execute(rusqlite::params![table, count])?;
        }
        Ok(())
    }

    /// The recorded transaction committed.
    pub(crate) fn committed(&mut self) {
        self.table_made = true;
        self.begin(false);
    }
}

fn dedup(mut tables: Vec<String>) -> Vec<String> {
    tables.sort_unstable();
    tables.dedup();
    tables
}

/// SQLite's authorizer: notes each table of the main database that the statement being
/// prepared may write (rows or schema), and allows everything.
unsafe extern "C" fn authorize(
    context: *mut c_void,
    action: c_int,
    first: *const c_char,
    second: *const c_char,
    database: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    use rusqlite::ffi::*;
    let table = match action {
        SQLITE_INSERT | SQLITE_UPDATE | SQLITE_DELETE | SQLITE_CREATE_TABLE | SQLITE_DROP_TABLE
        | SQLITE_CREATE_VIEW | SQLITE_DROP_VIEW | SQLITE_CREATE_VTABLE | SQLITE_DROP_VTABLE => first,
        // The table's name comes second: after the database's (ALTER) or the index's or
        // trigger's own.
        SQLITE_ALTER_TABLE
        | SQLITE_CREATE_INDEX
        | SQLITE_DROP_INDEX
        | SQLITE_CREATE_TRIGGER
        | SQLITE_DROP_TRIGGER => second,
        _ => return SQLITE_OK,
    };
    // SAFETY: SQLite passes NUL-terminated strings or NULL, valid during the call.
    let text =
        |name: *const c_char| (!name.is_null()).then(|| unsafe { CStr::from_ptr(name) }.to_string_lossy());
    // The temporary database and attached ones are not this file.
    if text(database).is_some_and(|database| database != "main") {
        return SQLITE_OK;
    }
    if let Some(table) = text(table) {
        // SAFETY: the context is the log's `Captured`, alive while the connection is.
        let captured = unsafe { &*context.cast::<Captured>() };
        if let Ok(mut captured) = captured.0.lock() {
            captured.push(table.into_owned());
        }
    }
    SQLITE_OK
}
