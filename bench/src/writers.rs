//! Writers of the writer scenarios, one trait over the three designs compared: liblease's
//! `Database` (its fair queue, chunked transactions), plain SQLite connections, and the
//! application-services design.
//!
//! A short writer runs `begin`, one insert, `commit`; the long job runs `begin`, then inserts
//! with `maybe_commit` after each row, and `commit` at the end.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lease::{ChunkOptions, Database, Transaction, Value};

use crate::baselines::{app_services, plain_sqlite};
use crate::clock::{ms_between, now_ns};
use crate::Result;

/// How often the baselines' long job commits (the application-services design's period; liblease
/// uses its own default chunk, also 1 s).
pub const JOB_PERIOD: Duration = Duration::from_secs(1);

/// The tables every writer scenario writes to.
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS job (n INTEGER NOT NULL, payload BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS short (writer INTEGER NOT NULL, n INTEGER NOT NULL);";
pub const INSERT_JOB: &str = "INSERT INTO job (n, payload) VALUES (?1, ?2)";
pub const INSERT_SHORT: &str = "INSERT INTO short (writer, n) VALUES (?1, ?2)";

/// A write connection in one of the designs.
pub trait Writer: Send {
    /// Waits until this writer holds SQLite's write lock in a transaction (or its busy timeout
    /// runs out: an error).
    fn begin(&mut self) -> Result<()>;
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<()>;
    /// For the long job: commits and begins again when its design says a chunk is over.
    fn maybe_commit(&mut self) -> Result<bool>;
    fn commit(&mut self) -> Result<()>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// liblease's `Database`: the fair queue; the job in a chunked transaction.
    Liblease,
    /// Plain SQLite connections with a 5 s busy timeout and no queue.
    PlainSqlite,
    /// A mutex per process held until `BEGIN IMMEDIATE` returns.
    AppServices,
}

impl Design {
    pub fn name(self) -> &'static str {
        match self {
            Design::Liblease => "liblease",
            Design::PlainSqlite => "plain-sqlite",
            Design::AppServices => "app-services",
        }
    }

    pub fn parse(name: &str) -> Result<Design> {
        [Design::Liblease, Design::PlainSqlite, Design::AppServices]
            .into_iter()
            .find(|design| design.name() == name)
            .ok_or_else(|| format!("no writer design '{name}'").into())
    }
}

/// Creates the tables (in WAL mode) before the writers start.
pub fn create_schema(path: &Path) -> Result<()> {
    let connection = plain_sqlite::open(path, Duration::from_secs(5))?;
    connection.execute_batch(SCHEMA)?;
    Ok(())
}

/// What a short writer did.
pub struct ShortRun {
    /// Its waits to begin, in ms, from asking to holding the transaction; a begin that failed
    /// counts with its wait.
    pub waits: Vec<f64>,
    pub commits: u64,
    /// Begins that failed (the busy timeout ran out).
    pub failures: u64,
}

/// Runs short transactions on `writer` back to back until `end` (a [`now_ns`] time): begin, one
/// insert as writer `id`, `txn` more holding the transaction, commit.
pub fn run_short(writer: &mut dyn Writer, id: i64, txn: Duration, end: u64) -> Result<ShortRun> {
    let mut run = ShortRun { waits: Vec::new(), commits: 0, failures: 0 };
    while now_ns() < end {
        let asked = now_ns();
        let began = writer.begin();
        run.waits.push(ms_between(asked, now_ns()));
        if began.is_err() {
            run.failures += 1;
            continue;
        }
        writer.execute(INSERT_SHORT, &[Value::Integer(id), Value::Integer(run.commits as i64)])?;
        if !txn.is_zero() {
            std::thread::sleep(txn);
        }
        writer.commit()?;
        run.commits += 1;
    }
    Ok(run)
}

/// Makes the writers of one design on one file, in this process.
pub struct Writers {
    design: Design,
    path: PathBuf,
    /// The application-services design's per-process mutex.
    begin_mutex: Arc<Mutex<()>>,
}

impl Writers {
    pub fn new(design: Design, path: &Path) -> Writers {
        Writers { design, path: path.into(), begin_mutex: Arc::default() }
    }

    /// A writer of short transactions.
    pub fn short(&self) -> Result<Box<dyn Writer>> {
        self.open(None)
    }

    /// The long job's writer: it commits every chunk (liblease: its default chunk options).
    pub fn job(&self) -> Result<Box<dyn Writer>> {
        self.open(Some(JOB_PERIOD))
    }

    fn open(&self, job_period: Option<Duration>) -> Result<Box<dyn Writer>> {
        Ok(match self.design {
            Design::Liblease => Box::new(LeaseWriter {
                db: Database::open(&self.path)?,
                tx: None,
                chunked: job_period.is_some(),
            }),
            Design::PlainSqlite => Box::new(plain_sqlite::PlainWriter::open(&self.path, job_period)?),
            Design::AppServices => {
                Box::new(app_services::open(&self.path, self.begin_mutex.clone(), job_period)?)
            }
        })
    }
}

/// liblease's `Database`, with the default options (a 5 s busy timeout).
struct LeaseWriter {
    db: Database,
    tx: Option<Transaction>,
    chunked: bool,
}

impl LeaseWriter {
    fn tx(&mut self) -> Result<&mut Transaction> {
        self.tx.as_mut().ok_or_else(|| "no transaction is open".into())
    }
}

impl Writer for LeaseWriter {
    fn begin(&mut self) -> Result<()> {
        self.tx = Some(if self.chunked {
            self.db.begin_chunked(ChunkOptions::DEFAULT)?
        } else {
            self.db.begin()?
        });
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<()> {
        self.tx()?.execute(sql, params)?;
        Ok(())
    }

    fn maybe_commit(&mut self) -> Result<bool> {
        Ok(self.tx()?.maybe_commit()?)
    }

    fn commit(&mut self) -> Result<()> {
        self.tx.take().ok_or("no transaction is open")?.commit()?;
        Ok(())
    }
}
