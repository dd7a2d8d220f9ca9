//! The lease table's schema and its migrations.
//!
//! The version lives in a table of its own, `liblease_schema`, not in `PRAGMA user_version`,
//! which belongs to the application whose database file the lease table shares.

use rusqlite::{Connection, OptionalExtension};

use std::time::Instant;

use crate::error::{sqlite_error, Result};
use crate::file::{self, OPEN_BUSY_LIMIT};

/// The schema version this build writes and understands.
pub(crate) const VERSION: i64 = 4;

/// Each step takes the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the lease table.
    "CREATE TABLE liblease_schema (version INTEGER NOT NULL);
     INSERT INTO liblease_schema (version) VALUES (0);
     CREATE TABLE liblease_lease (
         key        TEXT    NOT NULL PRIMARY KEY,
         holder     TEXT    NOT NULL, -- the holding process's random id
         hold       INTEGER NOT NULL, -- which of that process's holds this is
         label      TEXT    NOT NULL, -- the holder's label, for diagnostics only
         boot       TEXT    NOT NULL, -- the boot whose clock expires_ms is read on
         expires_ms INTEGER NOT NULL, -- boot-clock milliseconds; 0 once released
         generation INTEGER NOT NULL  -- +1 each time a different holder takes the lease
     ) WITHOUT ROWID;",
    // 1 -> 2: who the holder is, so that a waiter can tell that a crashed holder is gone.
    "ALTER TABLE liblease_lease ADD COLUMN pid INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE liblease_lease ADD COLUMN started INTEGER NOT NULL DEFAULT 0; -- holder's start time
     ALTER TABLE liblease_lease ADD COLUMN pid_namespace TEXT NOT NULL DEFAULT '';",
    // 2 -> 3: the change record (see `changes`), with its count of commits, which the lease's
    // own commits bump while the file is observed.
    concat!(
        crate::changes::create_change_table!(),
        ";
         INSERT OR IGNORE INTO liblease_change (name, seq) VALUES ('', 0);"
    ),
    // 3 -> 4: since when the hold has had the lease, for `lease status`.
    "ALTER TABLE liblease_lease ADD COLUMN taken_ms INTEGER NOT NULL DEFAULT 0; -- 0: not known",
];

/// Brings the schema to [`VERSION`]. Does not write when the schema is current, so read-only use
/// of a current database works. Otherwise `begin` must start a write transaction (`BEGIN
/// IMMEDIATE`, in its turn in the writer queue) and return what is to be held until it ends.
pub(super) fn migrate<T>(connection: &Connection, begin: impl FnOnce() -> Result<T>) -> Result<()> {
    if file::while_busy(Instant::now() + OPEN_BUSY_LIMIT, || version(connection))? == VERSION {
        return Ok(());
    }
    let _turn = begin()?;
    let migrated = migrate_in_transaction(connection);
    let end = if migrated.is_ok() { "COMMIT" } else { "ROLLBACK" };
    match (migrated, connection.execute_batch(end)) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), _) => Err(e.into()),
        (Ok(()), Err(e)) => {
            let _ = connection.execute_batch("ROLLBACK");
            Err(e.into())
        }
    }
}

fn migrate_in_transaction(connection: &Connection) -> rusqlite::Result<()> {
    // Another process may have migrated while we waited for the write lock: read again.
    let mut current = version(connection)?;
    if current > VERSION {
        return Err(sqlite_error(format!(
            "the lease table has schema version {current}, newer than this liblease understands \
             ({VERSION}); upgrade liblease in every process that shares the database"
        )));
    }
    while current < VERSION {
        connection.execute_batch(MIGRATIONS[current as usize])?;
        current += 1;
        connection.execute("UPDATE liblease_schema SET version = ?1", [current])?;
    }
    // The migration's commit counts itself too, as every commit of liblease does (see
    // `changes`): observers must not take it for a foreign writer's.
    connection.execute("UPDATE liblease_change SET seq = seq + 1 WHERE name = ''", [])?;
    Ok(())
}

/// The schema version in the database; 0 when it has no lease table yet.
pub(crate) fn version(connection: &Connection) -> rusqlite::Result<i64> {
    let has_table: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'liblease_schema')",
        [],
        |row| row.get(0),
    )?;
    if !has_table {
        return Ok(0);
    }
    Ok(connection
        .query_row("SELECT version FROM liblease_schema", [], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn begin(connection: &Connection) -> impl FnOnce() -> Result<()> + '_ {
        || Ok(connection.execute_batch("BEGIN IMMEDIATE")?)
    }

    #[test]
    fn a_version_1_table_migrates_and_keeps_its_leases() {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(MIGRATIONS[0]).unwrap();
        connection.execute_batch("UPDATE liblease_schema SET version = 1").unwrap();
        connection
            .execute_batch("INSERT INTO liblease_lease VALUES ('sync', 'h', 1, 'app', 'boot', 99, 7)")
            .unwrap();
        migrate(&connection, begin(&connection)).unwrap();
        assert_eq!(version(&connection).unwrap(), VERSION);
        let (generation, pid): (i64, i64) = connection
            .query_row("SELECT generation, pid FROM liblease_lease WHERE key = 'sync'", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((generation, pid), (7, 0), "old rows keep their generation; liveness is unknown");
        // Current: a second open does not write.
        migrate(&connection, begin(&connection)).unwrap();
    }
}
