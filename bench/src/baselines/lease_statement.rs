//! The floor of an uncontended acquisition: the statements liblease takes and gives back a
//! lease with (`lease::sql`, the library's own, not a copy), run alone on a bare rusqlite
//! connection configured as liblease configures its store's (WAL, `synchronous = NORMAL`), so
//! that the difference to the figure through the C ABI is what the library adds around them
//! (queue, hold table, heartbeat task, release).

use std::path::Path;

use lease::sql::{RELEASE, TAKE};
use rusqlite::{named_params, Connection, OptionalExtension};

use crate::Result;

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
        lease::sql::create_lease_table(&connection)?;
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
                    ":now_ms": now_ms, ":pid": std::process::id(), ":started": 0, ":pid_namespace": "",
                    ":ended_holder": None::<&str>, ":ended_hold": None::<i64>,
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
