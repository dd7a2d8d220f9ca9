//! The application's prepared statements on one of a database handle's connections.
//!
//! Each SQL text is prepared once and kept, with the tables it writes, until it is the least
//! recently used of [`CAPACITY`]; every call finds it by its text, binds, steps and resets it
//! through SQLite's C API. rusqlite's statement cache does the same work with, per call, a copy
//! of the SQL into a new allocation, two hash lookups and a walk of its recency list, and the
//! record of what a statement writes was a third lookup beside it: a bulk insert paid all of that
//! on every row (a third of its time through the C ABI). Here a call compares the SQL with the
//! kept texts of its length, the most recently used first.
//!
//! The text and blob parameters are bound without a copy (`SQLITE_STATIC`): they only need to
//! live while the statement runs, which [`Prepared::run`] ends, whatever happens, with a reset.
//! The statement keeps pointing at them after that, and is not unbound: SQLite reads a bound
//! value only when it steps, and every run binds every parameter again before its first step
//! (it refuses a count that differs), so what was bound before is never read. Unbinding them
//! (`sqlite3_clear_bindings`) was 2% of the instructions of each row of a bulk insert.

use std::ffi::{c_char, c_int, CStr};
use std::ptr::NonNull;

use rusqlite::{ffi, Connection};

use super::value::{utf8, Value};
use crate::changes::ChangeLog;
use crate::error::{Error, Result};

/// How many statements a connection keeps (rusqlite's default for its own cache). A statement
/// costs a few KiB of SQLite's memory; an application's statements are usually fewer.
const CAPACITY: usize = 16;

/// The statements kept for one connection, the most recently used first. Must be dropped before
/// the connection: each statement belongs to it, and SQLite does not close a connection with
/// statements left.
///
/// A list rather than a map: with at most [`CAPACITY`] entries, comparing lengths (and then the
/// bytes of the few of equal length) costs less than hashing the SQL, and a loop that runs one
/// statement finds it first.
pub(crate) struct Statements {
    kept: Vec<(Box<str>, Prepared)>,
}

// SAFETY: the statements are used only by whoever holds the `Statements` (a connection's owner,
// behind its mutex), one call at a time, and SQLite (built thread-safe, as rusqlite requires)
// lets a statement move between threads as its connection does.
unsafe impl Send for Statements {}

/// One kept statement.
pub(crate) struct Prepared {
    raw: NonNull<ffi::sqlite3_stmt>,
    /// The tables it writes (perhaps none, as for a PRAGMA); `None` when it is read-only.
    writes: Option<Box<[String]>>,
    parameters: usize,
}

impl Statements {
    pub(crate) fn new() -> Statements {
        Statements { kept: Vec::new() }
    }

    /// The statement for `sql` (exactly one statement) on `connection`, prepared now if it is not
    /// kept. `log` is the writer connection's change log, which learns from the authorizer what
    /// a statement prepared now writes; the reader has none (and runs only read-only SQL).
    pub(crate) fn get(
        &mut self,
        connection: &Connection,
        sql: &str,
        log: Option<&mut ChangeLog>,
    ) -> Result<&mut Prepared> {
        match self.kept.iter().position(|(kept, _)| kept.len() == sql.len() && **kept == *sql) {
            Some(index) => self.kept[..=index].rotate_right(1),
            None => {
                let prepared = Prepared::new(connection, sql, log)?;
                self.kept.truncate(CAPACITY - 1);
                self.kept.insert(0, (sql.into(), prepared));
            }
        }
        Ok(&mut self.kept[0].1)
    }
}

impl Prepared {
    fn new(connection: &Connection, sql: &str, mut log: Option<&mut ChangeLog>) -> Result<Prepared> {
        if let Some(log) = log.as_deref_mut() {
            log.start_capture();
        }
        let raw = prepare_one(connection, sql)?;
        // SAFETY: a statement just prepared.
        let readonly = unsafe { ffi::sqlite3_stmt_readonly(raw.as_ptr()) } != 0;
        let captured = log.map(ChangeLog::take_captured).unwrap_or_default();
        Ok(Prepared {
            raw,
            writes: (!readonly).then(|| captured.into_boxed_slice()),
            // SAFETY: as above.
            parameters: unsafe { ffi::sqlite3_bind_parameter_count(raw.as_ptr()) } as usize,
        })
    }

    /// The tables the statement writes (perhaps none); `None` when it is read-only.
    pub(crate) fn writes(&self) -> Option<&[String]> {
        self.writes.as_deref()
    }

    pub(crate) fn readonly(&self) -> bool {
        self.writes.is_none()
    }

    /// Binds `params` to the statement's `?` placeholders in order and steps it to its end,
    /// handing each row to `on_row` until it returns `false`; then resets it, on every path.
    pub(crate) fn run(&mut self, params: &[Value], on_row: &mut dyn FnMut(&[Value]) -> bool) -> Result<()> {
        if params.len() != self.parameters {
            return Err(Error::InvalidArgument(format!(
                "the statement has {} parameter(s) but {} value(s) were given",
                self.parameters,
                params.len()
            )));
        }
        let running = Running(self.raw);
        for (index, value) in params.iter().enumerate() {
            running.bind(index + 1, value)?;
        }
        let mut row = Vec::new();
        loop {
            // SAFETY: a live statement, its parameters bound.
            match unsafe { ffi::sqlite3_step(running.0.as_ptr()) } {
                ffi::SQLITE_DONE => return Ok(()),
                ffi::SQLITE_ROW => {
                    row.clear();
                    for index in 0..running.column_count() {
                        // SAFETY: a row is current, and `row` is emptied before the next step,
                        // which is when the values' bytes stop being valid.
                        row.push(unsafe { running.column(index) }?);
                    }
                    if !on_row(&row) {
                        return Ok(());
                    }
                }
                code => return Err(running.error(code)),
            }
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // SAFETY: the statement is this value's own, finalized once, here.
        unsafe { ffi::sqlite3_finalize(self.raw.as_ptr()) };
    }
}

/// A statement between its first bind and its reset, which dropping this does; what it was
/// bound to stays bound (see the module's documentation).
struct Running(NonNull<ffi::sqlite3_stmt>);

impl Running {
    /// Binds one value. Text and blobs are not copied (`SQLITE_STATIC`): the caller's bytes
    /// outlive the run, and no later run steps before binding its own (see the module's
    /// documentation).
    fn bind(&self, index: usize, value: &Value) -> Result<()> {
        let (raw, index) = (self.0.as_ptr(), index as c_int);
        // An empty slice's pointer may dangle; SQLite would still read it as a place.
        let bytes =
            |bytes: &[u8]| if bytes.is_empty() { c"".as_ptr() } else { bytes.as_ptr().cast::<c_char>() };
        // SAFETY: a live statement; `index` is within its parameters (counted by the caller); the
        // bytes live until the reset (see above).
        let code = unsafe {
            match *value {
                Value::Null => ffi::sqlite3_bind_null(raw, index),
                Value::Integer(integer) => ffi::sqlite3_bind_int64(raw, index, integer),
                Value::Real(real) => ffi::sqlite3_bind_double(raw, index, real),
                Value::Text(text) => ffi::sqlite3_bind_text64(
                    raw,
                    index,
                    bytes(text.as_bytes()),
                    text.len() as u64,
                    ffi::SQLITE_STATIC(),
                    ffi::SQLITE_UTF8 as u8,
                ),
                Value::Blob(blob) => ffi::sqlite3_bind_blob64(
                    raw,
                    index,
                    bytes(blob).cast(),
                    blob.len() as u64,
                    ffi::SQLITE_STATIC(),
                ),
            }
        };
        if code == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.error(code))
        }
    }

    fn column_count(&self) -> usize {
        // SAFETY: a live statement.
        unsafe { ffi::sqlite3_column_count(self.0.as_ptr()) as usize }
    }

    /// Column `index` of the current row. A TEXT that is not UTF-8 comes as a `Blob`.
    ///
    /// # Safety
    /// A row is current, and the value is dropped before the statement is stepped or reset.
    unsafe fn column<'row>(&self, index: usize) -> Result<Value<'row>> {
        let (raw, index) = (self.0.as_ptr(), index as c_int);
        // SAFETY: a live statement with a current row, and `index` below its column count. The
        // pointer comes before the length, as SQLite documents; the bytes stay valid until the
        // next step or reset, which the caller's promise puts after the value's end.
        unsafe {
            let bytes = |data: *const u8| -> Result<&'row [u8]> {
                let len = ffi::sqlite3_column_bytes(raw, index) as usize;
                match data.is_null() {
                    false => Ok(std::slice::from_raw_parts(data, len)),
                    true if len == 0 => Ok(&[]),
                    true => Err(self.error(ffi::SQLITE_NOMEM)),
                }
            };
            Ok(match ffi::sqlite3_column_type(raw, index) {
                ffi::SQLITE_INTEGER => Value::Integer(ffi::sqlite3_column_int64(raw, index)),
                ffi::SQLITE_FLOAT => Value::Real(ffi::sqlite3_column_double(raw, index)),
                ffi::SQLITE_TEXT => {
                    // A NULL here is an allocation that failed: SQLite returns "" for an empty text.
                    let text = ffi::sqlite3_column_text(raw, index);
                    if text.is_null() {
                        return Err(self.error(ffi::SQLITE_NOMEM));
                    }
                    let text = bytes(text)?;
                    utf8(text).map_or(Value::Blob(text), Value::Text)
                }
                ffi::SQLITE_BLOB => Value::Blob(bytes(ffi::sqlite3_column_blob(raw, index).cast())?),
                _ => Value::Null,
            })
        }
    }

    /// The error `code` of the statement's last call, with its connection's message.
    fn error(&self, code: c_int) -> Error {
        // SAFETY: a live statement, whose connection is open.
        failure(unsafe { ffi::sqlite3_db_handle(self.0.as_ptr()) }, code)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: a live statement. A reset after a failed step returns that failure again,
        // already reported.
        unsafe { ffi::sqlite3_reset(self.0.as_ptr()) };
    }
}

/// Prepares `sql`, which must hold exactly one statement.
fn prepare_one(connection: &Connection, sql: &str) -> Result<NonNull<ffi::sqlite3_stmt>> {
    // SQLite would end the SQL at the NUL, and ignore the rest.
    if sql.contains('\0') {
        return Err(Error::InvalidArgument("the SQL holds a NUL byte".into()));
    }
    let (first, rest) = prepare(connection, sql)?;
    let Some(first) = first else { return Err(Error::InvalidArgument("the SQL holds no statement".into())) };
    let Some(rest) = rest.filter(|rest| !rest.is_empty()) else { return Ok(first) };
    // What follows the first statement may be only blanks and comments, which prepare to nothing.
    let finalize = |raw: NonNull<ffi::sqlite3_stmt>| {
        // SAFETY: a statement prepared here and not kept.
        unsafe { ffi::sqlite3_finalize(raw.as_ptr()) }
    };
    match prepare(connection, rest) {
        Ok((None, _)) => Ok(first),
        Ok((Some(second), _)) => {
            finalize(second);
            finalize(first);
            Err(Error::InvalidArgument("the SQL holds more than one statement; pass one at a time".into()))
        }
        Err(e) => {
            finalize(first);
            Err(e)
        }
    }
}

/// Prepares the first statement of `sql`: the statement (`None` when there is only blanks or
/// comments) and the text after it.
fn prepare<'s>(
    connection: &Connection,
    sql: &'s str,
) -> Result<(Option<NonNull<ffi::sqlite3_stmt>>, Option<&'s str>)> {
    let len = c_int::try_from(sql.len()).map_err(|_| Error::InvalidArgument("the SQL is too long".into()))?;
    let (mut raw, mut tail) = (std::ptr::null_mut(), std::ptr::null());
    // SAFETY: a live connection; the SQL is `len` bytes; the out-pointers are writable.
    let code = unsafe {
        ffi::sqlite3_prepare_v3(
            connection.handle(),
            sql.as_ptr().cast(),
            len,
            ffi::SQLITE_PREPARE_PERSISTENT,
            &mut raw,
            &mut tail,
        )
    };
    if code != ffi::SQLITE_OK {
        // SAFETY: as above.
        return Err(failure(unsafe { connection.handle() }, code));
    }
    // The tail points into `sql`, after the statement's `;` or at the end.
    let used = (tail as usize).saturating_sub(sql.as_ptr() as usize);
    let rest = sql.get(used..).filter(|_| !tail.is_null());
    Ok((NonNull::new(raw), rest))
}

/// SQLite's failure `code` on connection `db`, with the connection's message, as rusqlite would
/// report it (so that `Busy` stays `Busy`, see `Error`'s conversion).
fn failure(db: *mut ffi::sqlite3, code: c_int) -> Error {
    // SAFETY: a live connection; its message lives until its next call, and is copied here.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }.to_string_lossy().into_owned();
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(message)).into()
}
