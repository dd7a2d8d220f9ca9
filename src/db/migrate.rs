//! Schema migrations of the application's own, run once across the processes that open the file
//! together.
//!
//! The version is the file's `PRAGMA user_version`. Each step runs in a write transaction of its
//! own that also sets the version, and reads the version again first, inside it: SQLite's write
//! lock is the migration's lock, so whichever process gets it first runs the step and every other
//! finds the step done when its turn comes. A process killed mid-step leaves its transaction
//! uncommitted, so the version stays and the next caller runs the step. No lease is taken: none
//! is needed, and none is left behind.

use std::time::{Duration, Instant};

use super::transaction::{Kind, Transaction};
use super::{Database, Value};
use crate::error::{Error, Result};

impl Database {
    /// Brings the file's `user_version` up to `target`, calling `step(tx, version)` for each
    /// version from the current one + 1 to `target`, inside a write transaction that the library
    /// begins and commits (with `user_version` set to `version`); `step` must not end it. A step
    /// that fails rolls its transaction back, the version stays, and its error is returned
    /// (naming the version). Other processes (and threads) migrating at the same time wait, up to
    /// `timeout` in all, and return once the file is at `target`: each step runs once, in
    /// whichever of them gets to it. A file already at `target` is left as it is, unwritten; one
    /// above it (an old program after an update) is refused with `Error::Database`.
    pub fn migrate(
        &self,
        target: u32,
        timeout: Duration,
        mut step: impl FnMut(&mut Transaction, u32) -> Result<()>,
    ) -> Result<()> {
        self.migrate_owned(target, timeout, |mut tx, version| step(&mut tx, version).map(|()| tx))
    }

    /// Like [`Database::migrate`], with a step that takes the transaction and gives it back (the
    /// C face lends it to C as a handle of its own).
    pub(crate) fn migrate_owned(
        &self,
        target: u32,
        timeout: Duration,
        mut step: impl FnMut(Transaction, u32) -> Result<Transaction>,
    ) -> Result<()> {
        self.inner.check_fork()?;
        let deadline = Instant::now() + timeout;
        // Read first, without the write lock: a file at the target is not written.
        if compare(self.user_version()?, target)? {
            return Ok(());
        }
        loop {
            let mut tx =
                Transaction::begin_by(self.inner.clone(), Kind::Plain, deadline).map_err(|e| match e {
                    Error::Busy(why) => Error::Timeout(format!(
                        "the database did not reach version {target} within {} ms: {why}",
                        timeout.as_millis()
                    )),
                    other => other,
                })?;
            let version = read_user_version(&mut tx)?;
            if compare(version, target)? {
                return Ok(());
            }
            let next = version + 1;
            let failed =
                |e: Error| e.prefixed(&format!("migrating to version {next} (the file stays at {version})"));
            let mut tx = step(tx, next).map_err(failed)?;
            tx.execute(&format!("PRAGMA user_version = {next}"), &[]).map_err(failed)?;
            tx.commit().map_err(failed)?;
            if next == target {
                return Ok(());
            }
        }
    }

    /// The file's `user_version`, read outside any transaction.
    fn user_version(&self) -> Result<u32> {
        read_version(|on_row| self.query("PRAGMA user_version", &[], on_row))
    }
}

/// True when `version` is `target`; `Err` when it is above it.
fn compare(version: u32, target: u32) -> Result<bool> {
    if version > target {
        return Err(Error::Database(format!(
            "the database is at version {version}, newer than this program's {target}: it was \
             migrated by a newer version of the program"
        )));
    }
    Ok(version == target)
}

fn read_user_version(tx: &mut Transaction) -> Result<u32> {
    read_version(|on_row| tx.query("PRAGMA user_version", &[], on_row))
}

/// The version that `query` (`PRAGMA user_version`, run with the row callback it is given) reads.
fn read_version(query: impl FnOnce(&mut dyn FnMut(&[Value]) -> bool) -> Result<()>) -> Result<u32> {
    let mut version = None;
    query(&mut |row| {
        version = Some(integer(row));
        false
    })?;
    as_version(version)
}

fn integer(row: &[Value]) -> Option<i64> {
    match row.first() {
        Some(Value::Integer(value)) => Some(*value),
        _ => None,
    }
}

fn as_version(value: Option<Option<i64>>) -> Result<u32> {
    let version =
        value.flatten().ok_or_else(|| Error::Database("PRAGMA user_version gave no number".into()))?;
    // SQLite's user_version is a signed 32-bit number; a negative one is no version of ours.
    u32::try_from(version)
        .map_err(|_| Error::Database(format!("the database's user_version ({version}) is not a version")))
}
