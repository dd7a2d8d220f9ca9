//! Writers on plain SQLite connections: `BEGIN IMMEDIATE` with a busy timeout, nothing else.
//! A writer that finds the database locked is left to SQLite's busy handler, which sleeps and
//! retries; nobody queues. The long job commits every second and begins again at once.
//!
//! The same writer, given a begin mutex, is the application-services design (see
//! [`app_services`](super::app_services)).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lease::Value;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::Connection;

use crate::writers::Writer;
use crate::Result;

/// The busy timeout of the plain writers: liblease's `Database` default, for a fair comparison.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection configured as liblease configures its own: WAL, `synchronous = NORMAL`.
pub fn open(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(busy_timeout)?;
    connection.pragma_update(None, "journal_mode", "wal")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(connection)
}

pub struct PlainWriter {
    connection: Connection,
    /// Held while `BEGIN IMMEDIATE` is obtained, when the writers of the process share one.
    begin_mutex: Option<Arc<Mutex<()>>>,
    /// The long job's period and when its chunk began.
    chunk: Option<(Duration, Instant)>,
}

impl PlainWriter {
    pub fn open(path: &Path, job_period: Option<Duration>) -> Result<PlainWriter> {
        PlainWriter::open_with(path, None, job_period)
    }

    /// A writer that begins under `begin_mutex`, when given one.
    pub(super) fn open_with(
        path: &Path,
        begin_mutex: Option<Arc<Mutex<()>>>,
        job_period: Option<Duration>,
    ) -> Result<PlainWriter> {
        Ok(PlainWriter {
            connection: open(path, BUSY_TIMEOUT)?,
            begin_mutex,
            chunk: job_period.map(|p| (p, Instant::now())),
        })
    }
}

impl Writer for PlainWriter {
    fn begin(&mut self) -> Result<()> {
        let _turn = self.begin_mutex.as_ref().map(|m| m.lock().unwrap_or_else(|p| p.into_inner()));
        self.connection.execute_batch("BEGIN IMMEDIATE")?;
        if let Some((_, started)) = &mut self.chunk {
            *started = Instant::now();
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<()> {
        let params = params.iter().map(|value| {
            ToSqlOutput::Borrowed(match *value {
                Value::Null => ValueRef::Null,
                Value::Integer(integer) => ValueRef::Integer(integer),
                Value::Real(real) => ValueRef::Real(real),
                Value::Text(text) => ValueRef::Text(text.as_bytes()),
                Value::Blob(blob) => ValueRef::Blob(blob),
            })
        });
        self.connection.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params))?;
        Ok(())
    }

    fn maybe_commit(&mut self) -> Result<bool> {
        match self.chunk {
            Some((period, started)) if started.elapsed() >= period => {
                self.commit()?;
                self.begin()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn commit(&mut self) -> Result<()> {
        commit(&self.connection)
    }
}

/// Commits, rolling back if the commit fails.
fn commit(connection: &Connection) -> Result<()> {
    if let Err(e) = connection.execute_batch("COMMIT") {
        if !connection.is_autocommit() {
            let _ = connection.execute_batch("ROLLBACK");
        }
        return Err(e.into());
    }
    Ok(())
}
