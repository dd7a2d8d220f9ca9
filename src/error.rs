//! The one error type of the core. The C face maps each variant to a `LeaseStatus`.

/// What can go wrong in liblease.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `try_acquire` found the lease held by another process, or the database's write lock held.
    #[error("busy: {0}")]
    Busy(String),
    /// A call with a time limit ran out of time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The lease is no longer held: it expired before it could be renewed, or another holder took it.
    #[error("lease lost: {0}")]
    Lost(String),
    /// An argument is out of range, malformed or contradictory.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// SQLite reported an error other than busy; the text is SQLite's own message.
    #[error("database error: {0}")]
    Database(String),
    /// An asynchronous acquisition was cancelled before it took the lease.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The call is not allowed now: wrong order, wrong thread, or a handle used after `fork()`.
    #[error("misuse: {0}")]
    Misuse(String),
    /// The process is suspended (`lifecycle::suspend`): nothing that writes runs until it resumes.
    #[error("suspended: {0}")]
    Suspended(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error's own words, without the kind's prefix that `Display` adds.
    pub(crate) fn message(&self) -> &str {
        match self {
            Error::Busy(m)
            | Error::Timeout(m)
            | Error::Lost(m)
            | Error::InvalidArgument(m)
            | Error::Database(m)
            | Error::Cancelled(m)
            | Error::Misuse(m)
            | Error::Suspended(m) => m,
        }
    }

    /// The same kind of error, its message preceded by `context` (what was being done).
    pub(crate) fn prefixed(self, context: &str) -> Error {
        let reworded = |message: String| format!("{context}: {message}");
        match self {
            Error::Busy(m) => Error::Busy(reworded(m)),
            Error::Timeout(m) => Error::Timeout(reworded(m)),
            Error::Lost(m) => Error::Lost(reworded(m)),
            Error::InvalidArgument(m) => Error::InvalidArgument(reworded(m)),
            Error::Database(m) => Error::Database(reworded(m)),
            Error::Cancelled(m) => Error::Cancelled(reworded(m)),
            Error::Misuse(m) => Error::Misuse(reworded(m)),
            Error::Suspended(m) => Error::Suspended(reworded(m)),
        }
    }

    /// Names the database file in a database error's message; other errors pass unchanged.
    pub(crate) fn in_file(self, path: Option<&std::path::Path>) -> Error {
        match (self, path) {
            (Error::Database(message), Some(path)) => {
                Error::Database(format!("{}: {message}", path.display()))
            }
            (other, _) => other,
        }
    }
}

impl From<rusqlite::Error> for Error {
    /// Busy stays `Busy`, so that callers can wait and retry; every other SQLite error keeps
    /// SQLite's message, `SQLITE_LOCKED` among them: a conflict within one connection (a
    /// checkpoint inside its own transaction, say), which no wait ends.
    fn from(error: rusqlite::Error) -> Self {
        if is_busy(&error) {
            return Error::Busy(error.to_string());
        }
        let extended = match &error {
            rusqlite::Error::SqliteFailure(failure, _) => failure.extended_code,
            _ => 0,
        };
        // liblease's VFS refuses the WAL index's locks and maps once its -shm file was truncated
        // under it (src/vfs.rs): say what happened and what to do, not only "disk I/O error".
        if matches!(extended, rusqlite::ffi::SQLITE_IOERR_SHMLOCK | rusqlite::ffi::SQLITE_IOERR_SHMMAP) {
            return Error::Database(format!(
                "{error}: the database's -shm file was truncated by another program while it was in \
                 use; close every handle of this database in this process, then open it again"
            ));
        }
        Error::Database(error.to_string())
    }
}

/// True when SQLite answered that another connection holds a lock we need (`SQLITE_BUSY`, with
/// any extended code). Not `SQLITE_LOCKED`: liblease uses no shared cache, so that comes only
/// from a conflict within the connection itself.
pub(crate) fn is_busy(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

/// An error of liblease's own in SQLite's clothes, for code paths that return rusqlite errors.
pub(crate) fn sqlite_error(message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR), Some(message))
}
