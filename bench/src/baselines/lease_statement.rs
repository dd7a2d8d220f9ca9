//! The floor of an uncontended acquisition: the statement liblease takes a lease with, run
//! alone on a bare rusqlite connection configured as liblease configures its store's (WAL,
//! `synchronous = NORMAL`). The SQL is copied from liblease's `src/store/lease_table.rs` and
//! `src/store/schema.rs`, so that the difference to the figure through the C ABI is what the
//! library adds around it (queue, hold table, heartbeat task, release).

use std::path::Path;

use rusqlite::{named_params, Connection, OptionalExtension};

use crate::Result;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS liblease_lease (
    key        TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    hold       INTEGER NOT NULL,
    label      TEXT    NOT NULL,
    boot       TEXT    NOT NULL,
    expires_ms INTEGER NOT NULL,
    generation INTEGER NOT NULL
) WITHOUT ROWID";

/// liblease's take statement (`lease_table::take`).
const TAKE: &str = "INSERT INTO liblease_lease (key, holder, hold, label, boot, expires_ms, generation)
     VALUES (:key, :holder, :hold, :label, :boot, :expires_ms, 1)
     ON CONFLICT (key) DO UPDATE SET
         generation = generation + (holder IS NOT excluded.holder),
         holder = excluded.holder,
         hold = excluded.hold,
         label = excluded.label,
         boot = excluded.boot,
         expires_ms = excluded.expires_ms
     WHERE holder = excluded.holder OR boot IS NOT excluded.boot OR expires_ms <= :now_ms
     RETURNING generation";

/// liblease's release statement (`lease_table::release`).
const RELEASE: &str = "UPDATE liblease_lease SET expires_ms = 0 WHERE key = ?1 AND holder = ?2 AND hold = ?3";

/// A bare connection holding a lease table.
pub struct BareLeaseTable {
    connection: Connection,
    hold: u64,
}

impl BareLeaseTable {
    pub fn open(path: &Path) -> Result<BareLeaseTable> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "wal")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.execute_batch(CREATE)?;
        Ok(BareLeaseTable { connection, hold: 0 })
    }

    /// Takes the lease on `key` for 6 s, as liblease's statement does; returns its generation.
    pub fn take(&mut self, key: &str) -> Result<u64> {
        self.hold += 1;
        let now_ms = (crate::clock::now_ns() / 1_000_000) as i64;
        let generation = self
            .connection
            .prepare_cached(TAKE)?
            .query_row(
                named_params! {
                    ":key": key, ":holder": "bench-holder", ":hold": self.hold as i64,
                    ":label": "lease-bench", ":boot": "bench-boot", ":expires_ms": now_ms + 6_000,
                    ":now_ms": now_ms,
                },
                |row| row.get::<_, i64>(0),
            )
            .optional()?
            .ok_or("the bare lease statement did not take the lease")?;
        Ok(generation as u64)
    }

    /// Gives the lease taken last back, as liblease's release statement does.
    pub fn release(&mut self, key: &str) -> Result<()> {
        let changed = self.connection.prepare_cached(RELEASE)?.execute(rusqlite::params![
            key,
            "bench-holder",
            self.hold as i64
        ])?;
        if changed != 1 {
            return Err("the bare release statement changed no row".into());
        }
        Ok(())
    }
}
