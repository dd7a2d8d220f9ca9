//! The statements on the lease table. Each is a single statement, atomic on its own: SQLite takes
//! the write lock at the start of a writing statement, so there is no read-then-upgrade window.

use rusqlite::{named_params, Connection, OptionalExtension};

use crate::liveness::Identity;

/// One row of the lease table, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// The holding (or last holding) process's random id (see [`Holder::id`](crate::Holder::id)).
    pub holder_id: String,
    /// Which of that process's holds this is.
    pub hold: u64,
    /// The holder's label, for diagnostics.
    pub label: String,
    /// The boot whose clock `expires_ms` is read on.
    pub boot: String,
    /// Boot-clock milliseconds at which the lease runs out; 0 once released.
    pub expires_ms: u64,
    /// Increases each time a different holder takes the lease.
    pub generation: u64,
    /// The holding process's pid, start time and PID namespace (0, 0, "" where unknown), which
    /// let a waiter see that a crashed holder is gone.
    pub pid: u32,
    pub started: u64,
    pub pid_namespace: String,
    /// Boot-clock milliseconds at which this hold took the lease (its renewals keep it); 0 where
    /// not known (a row last taken before schema version 4).
    pub taken_ms: u64,
}

impl LeaseRow {
    pub(crate) fn identity(&self) -> Identity {
        Identity { pid: self.pid, started: self.started, pid_namespace: self.pid_namespace.clone() }
    }
}

/// One hold of a lease, as the table names it: which key, whose (the holder's random id), which
/// of that holder's holds, and in which boot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HoldName<'a> {
    pub key: &'a str,
    pub holder_id: &'a str,
    pub hold: u64,
    pub boot: &'a str,
}

impl HoldName<'_> {
    /// How the board names this hold once it is given back there (see
    /// [`WriterBoard::hand_back`](crate::writer_board::WriterBoard::hand_back)).
    pub(crate) fn board_hash(&self) -> u64 {
        crate::writer_board::hold_hash(self.key, self.holder_id, self.hold, self.boot)
    }
}

/// A request to take a lease: the hold it would be, the holder's label, and for how long.
pub(crate) struct Claim<'a> {
    pub name: HoldName<'a>,
    pub label: &'a str,
    pub now_ms: u64,
    pub expires_ms: u64,
}

/// A hold that is over before its lease expires (its process crashed, or it was given back on
/// the board): named exactly (holder and hold number), so that only that hold is taken over.
pub(crate) struct EndedHold<'a> {
    pub holder_id: &'a str,
    pub hold: u64,
}

/// The statement that takes a lease (see [`take`]); public, hidden, for the benchmark's floor.
pub const TAKE: &str = "INSERT INTO liblease_lease
         (key, holder, hold, label, boot, expires_ms, generation, pid, started, pid_namespace,
          taken_ms)
     VALUES (:key, :holder, :hold, :label, :boot, :expires_ms, 1, :pid, :started, :pid_namespace,
             :now_ms)
     ON CONFLICT (key) DO UPDATE SET
         generation = generation + (holder IS NOT excluded.holder),
         taken_ms = CASE WHEN holder = excluded.holder AND hold = excluded.hold
                              AND boot = excluded.boot AND expires_ms > :now_ms
                         THEN taken_ms ELSE :now_ms END,
         holder = excluded.holder,
         hold = excluded.hold,
         label = excluded.label,
         boot = excluded.boot,
         expires_ms = excluded.expires_ms,
         pid = excluded.pid,
         started = excluded.started,
         pid_namespace = excluded.pid_namespace
     WHERE holder = excluded.holder OR boot IS NOT excluded.boot OR expires_ms <= :now_ms
        OR (holder = :ended_holder AND hold = :ended_hold)
     RETURNING generation";

/// The statement that gives a lease back (see [`release`]); public, hidden, for the benchmark.
pub const RELEASE: &str =
    "UPDATE liblease_lease SET expires_ms = 0 WHERE key = ?1 AND holder = ?2 AND hold = ?3";

/// Takes the lease if it is free, expired, of another boot, already this holder's, or held by
/// `ended` (a hold judged over). Returns the generation, or `None` when another holder has
/// it.
pub(crate) fn take(
    connection: &Connection,
    claim: &Claim,
    identity: &Identity,
    ended: Option<&EndedHold>,
) -> rusqlite::Result<Option<u64>> {
    let name = &claim.name;
    connection
        .prepare_cached(TAKE)?
        .query_row(
            named_params! {
                ":key": name.key, ":holder": name.holder_id, ":hold": name.hold as i64,
                ":label": claim.label, ":boot": name.boot, ":expires_ms": claim.expires_ms as i64,
                ":now_ms": claim.now_ms as i64, ":pid": identity.pid, ":started": identity.started as i64,
                ":pid_namespace": identity.pid_namespace,
                ":ended_holder": ended.map(|e| e.holder_id), ":ended_hold": ended.map(|e| e.hold as i64),
            },
            |row| row.get::<_, i64>(0),
        )
        .optional()
        .map(|generation| generation.map(|g| g as u64))
}

/// Extends the hold's lease to `expires_ms`, unless it has expired by `now_ms` or is no longer
/// this hold's. Returns whether it was extended. Never takes back a lease another holder took.
pub(crate) fn renew(
    connection: &Connection,
    name: &HoldName,
    now_ms: u64,
    expires_ms: u64,
) -> rusqlite::Result<bool> {
    let mut statement = connection.prepare_cached(
        "UPDATE liblease_lease SET expires_ms = :expires_ms
         WHERE key = :key AND holder = :holder AND hold = :hold AND boot = :boot
           AND expires_ms > :now_ms",
    )?;
    let changed = statement.execute(named_params! {
        ":key": name.key, ":holder": name.holder_id, ":hold": name.hold as i64, ":boot": name.boot,
        ":expires_ms": expires_ms as i64, ":now_ms": now_ms as i64,
    })?;
    Ok(changed == 1)
}

/// Gives the lease back at once, if it is still this hold's. The row stays (expired) so that the
/// generation keeps counting.
pub(crate) fn release(connection: &Connection, name: &HoldName) -> rusqlite::Result<bool> {
    let mut statement = connection.prepare_cached(RELEASE)?;
    Ok(statement.execute(rusqlite::params![name.key, name.holder_id, name.hold as i64])? == 1)
}

/// The row of `key`, if there is one.
pub(crate) fn read(connection: &Connection, key: &str) -> rusqlite::Result<Option<LeaseRow>> {
    let mut statement = connection.prepare_cached(
        "SELECT holder, hold, label, boot, expires_ms, generation, pid, started, pid_namespace,
                taken_ms
         FROM liblease_lease WHERE key = ?1",
    )?;
    statement
        .query_row([key], |row| {
            Ok(LeaseRow {
                holder_id: row.get(0)?,
                hold: row.get::<_, i64>(1)? as u64,
                label: row.get(2)?,
                boot: row.get(3)?,
                expires_ms: row.get::<_, i64>(4)? as u64,
                generation: row.get::<_, i64>(5)? as u64,
                pid: row.get(6)?,
                started: row.get::<_, i64>(7)? as u64,
                pid_namespace: row.get(8)?,
                taken_ms: row.get::<_, i64>(9)? as u64,
            })
        })
        .optional()
}

/// The expiry of the hold's lease if the row still names this exact hold, of `generation`.
pub(crate) fn expiry_of_hold(
    connection: &Connection,
    name: &HoldName,
    generation: u64,
) -> rusqlite::Result<Option<u64>> {
    let mut statement = connection.prepare_cached(
        "SELECT expires_ms FROM liblease_lease
         WHERE key = ?1 AND holder = ?2 AND hold = ?3 AND generation = ?4 AND boot = ?5",
    )?;
    statement
        .query_row(
            rusqlite::params![name.key, name.holder_id, name.hold as i64, generation as i64, name.boot],
            |row| row.get::<_, i64>(0),
        )
        .optional()
        .map(|expires| expires.map(|e| e as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        let begin = || Ok(connection.execute_batch("BEGIN IMMEDIATE")?);
        crate::store::schema::migrate(&connection, begin).unwrap();
        connection
    }

    fn claim<'a>(holder_id: &'a str, hold: u64, now_ms: u64) -> Claim<'a> {
        Claim {
            name: HoldName { key: "sync", holder_id, hold, boot: "boot" },
            label: "app",
            now_ms,
            expires_ms: now_ms + 1_000,
        }
    }

    fn taken_ms(connection: &Connection) -> u64 {
        read(connection, "sync").unwrap().unwrap().taken_ms
    }

    #[test]
    fn a_hold_keeps_the_time_it_took_the_lease_until_another_hold_takes_it() {
        let connection = table();
        let me = Identity::of_this_process();
        assert_eq!(take(&connection, &claim("a", 1, 100), &me, None).unwrap(), Some(1));
        assert_eq!(taken_ms(&connection), 100, "a new row");
        let name = claim("a", 1, 0).name;
        assert!(renew(&connection, &name, 600, 1_600).unwrap());
        assert_eq!(take(&connection, &claim("a", 1, 700), &me, None).unwrap(), Some(1));
        assert_eq!(taken_ms(&connection), 100, "renewed and taken again by the same hold");
        assert!(release(&connection, &name).unwrap());
        assert_eq!(take(&connection, &claim("a", 2, 800), &me, None).unwrap(), Some(1));
        assert_eq!(taken_ms(&connection), 800, "the same holder's next hold");
        assert_eq!(take(&connection, &claim("b", 1, 900), &me, None).unwrap(), None, "held by a");
        assert_eq!(taken_ms(&connection), 800, "a refused take changes nothing");
        assert_eq!(take(&connection, &claim("b", 1, 5_000), &me, None).unwrap(), Some(2));
        assert_eq!(taken_ms(&connection), 5_000, "another holder, once a's lease ran out");
        assert_eq!(take(&connection, &claim("b", 1, 5_100), &me, None).unwrap(), Some(2));
        let mut expired = claim("b", 1, 9_000);
        expired.expires_ms = 10_000;
        assert_eq!(take(&connection, &expired, &me, None).unwrap(), Some(2));
        assert_eq!(taken_ms(&connection), 9_000, "the same hold again after its lease ran out");
    }
}
