//! The application-services writer design, written here from its description in issue 3: the
//! writer connections of one process share a mutex that is held only while `BEGIN IMMEDIATE` is
//! obtained; a long job commits once its chunk has lasted a second (`maybe_commit`) and begins
//! again through the mutex, so that the other writers get a chance in between. Connections keep
//! SQLite's busy timeout for writers of other processes.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lease::Value;
use rusqlite::Connection;

use super::plain_sqlite::{self, BUSY_TIMEOUT};
use crate::writers::Writer;
use crate::Result;

pub struct CoopWriter {
    connection: Connection,
    begin_mutex: Arc<Mutex<()>>,
    chunk: Option<(Duration, Instant)>,
}

impl CoopWriter {
    pub fn open(
        path: &Path,
        begin_mutex: Arc<Mutex<()>>,
        job_period: Option<Duration>,
    ) -> Result<CoopWriter> {
        Ok(CoopWriter {
            connection: plain_sqlite::open(path, BUSY_TIMEOUT)?,
            begin_mutex,
            chunk: job_period.map(|p| (p, Instant::now())),
        })
    }
}

impl Writer for CoopWriter {
    fn begin(&mut self) -> Result<()> {
        let _turn = self.begin_mutex.lock().unwrap_or_else(|p| p.into_inner());
        self.connection.execute_batch("BEGIN IMMEDIATE")?;
        if let Some((_, started)) = &mut self.chunk {
            *started = Instant::now();
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<()> {
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
        plain_sqlite::commit(&self.connection)
    }
}
