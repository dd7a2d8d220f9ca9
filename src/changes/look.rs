//! An observer's look at the change record: what changed since its last look.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use super::record::{is_application_table, TABLE, UNKNOWN_TABLES};
use super::wal_index::WalIndex;
use crate::error::Result;
use crate::file::{self, Cache};

/// What one look found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Seen {
    /// No commit since the last look, or only commits of liblease's own tables.
    Nothing,
    /// Commits of liblease writers, which changed these tables.
    Tables(Vec<String>),
    /// A commit of a writer outside liblease (perhaps among others): which tables changed is
    /// not known.
    Unknown,
}

/// What the record says changed since the last look.
#[derive(Debug, Default)]
struct Recorded {
    /// The application tables, sorted.
    tables: Vec<String>,
    /// A write that names no table: anything may have changed.
    unknown: bool,
}

/// How many times a look reads again when a commit landed while it read.
const READS: usize = 8;

/// An observer's connection and what it saw last.
pub(super) struct Looker {
    connection: Connection,
    /// `None` where the WAL index cannot be read; the looker then goes by `data_version`.
    index: Option<WalIndex>,
    /// The WAL index's count of commits at the last look.
    commits: Option<u32>,
    /// The record's count of commits at the last look.
    recorded: i64,
    /// The connection's `PRAGMA data_version` at the last look.
    data_version: i64,
}

impl Looker {
    /// Opens a connection of its own to the database at `path`, and takes what is there now as
    /// seen.
    pub(super) fn open(path: &Path, busy_timeout: Duration) -> Result<Looker> {
        let connection = file::connect_reader(path, Cache::Observer, busy_timeout)?;
        let mut looker = Looker { connection, index: None, commits: None, recorded: 0, data_version: 0 };
        // The first read makes SQLite open the WAL and its index.
        looker.look().map_err(|e| crate::Error::from(e).in_file(Some(path)))?;
        looker.index = WalIndex::open(path);
        looker.look().map_err(|e| crate::Error::from(e).in_file(Some(path)))?;
        Ok(looker)
    }

    /// What changed since the last look.
    pub(super) fn look(&mut self) -> rusqlite::Result<Seen> {
        // The WAL index's count is read before and after the record, until no commit landed in
        // between: then it is the count of the snapshot the record was read in.
        let mut read = None;
        for _ in 0..READS {
            let before = self.index.as_ref().and_then(WalIndex::commits);
            let record = self.read_record()?;
            let after = self.index.as_ref().and_then(WalIndex::commits);
            let settled = before == after;
            read = Some((after, record));
            if settled {
                break;
            }
        }
        let (commits, (recorded, Recorded { tables, unknown: named_unknown }, data_version)) =
            read.expect("read at least once");
        let recorded_since = recorded - self.recorded;
        let unknown = match (self.commits, commits) {
            // Count by count: a commit that left no record was not liblease's. A count that went
            // back (the WAL index was made afresh) says nothing either way.
            (Some(last), Some(now)) => {
                let since = now.wrapping_sub(last);
                since > i32::MAX as u32 || i64::from(since) > recorded_since
            }
            // Without counts: something committed, and none of it was recorded.
            _ => data_version != self.data_version && recorded_since == 0,
        };
        self.commits = commits;
        self.recorded = recorded;
        self.data_version = data_version;
        Ok(if unknown || named_unknown {
            Seen::Unknown
        } else if tables.is_empty() {
            Seen::Nothing
        } else {
            Seen::Tables(tables)
        })
    }

    /// The record's count of commits, the application tables changed since the last look, and
    /// the connection's `data_version`, all of one snapshot.
    fn read_record(&self) -> rusqlite::Result<(i64, Recorded, i64)> {
        self.connection.execute_batch("BEGIN")?;
        let read = self.read_record_in_transaction();
        let ended = self.connection.execute_batch("COMMIT");
        let read = read?;
        ended.map(|()| read)
    }

    fn read_record_in_transaction(&self) -> rusqlite::Result<(i64, Recorded, i64)> {
        let data_version = || self.connection.query_row("PRAGMA data_version", [], |row| row.get(0));
        let mut statement =
            match self.connection.prepare_cached(&format!("SELECT name, seq FROM {TABLE} WHERE seq > ?1")) {
                Ok(statement) => statement,
                // No liblease writer has committed to the file yet.
                Err(_) if !self.has_record()? => return Ok((0, Recorded::default(), data_version()?)),
                Err(e) => return Err(e),
            };
        let mut recorded = self.recorded;
        let mut tables = Vec::new();
        let mut unknown = false;
        let mut rows = statement.query([self.recorded])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            if name.is_empty() {
                recorded = row.get(1)?;
            } else if name == UNKNOWN_TABLES {
                unknown = true;
            } else if is_application_table(&name) {
                tables.push(name);
            }
        }
        drop(rows);
        Ok((recorded, Recorded { tables, unknown }, data_version()?))
    }

    fn has_record(&self) -> rusqlite::Result<bool> {
        self.connection
            .query_row("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1", [TABLE], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
    }
}
