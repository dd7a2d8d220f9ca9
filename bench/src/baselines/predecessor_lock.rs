//! The predecessor's cross-process lock, written here from its description (issues 4 and 5) to
//! measure liblease beside it:
//!
//! - a lease row per key (holder, expiry) in the shared database, its expiry on the wall clock;
//! - taking it: one UPSERT that succeeds when the row is free, expired, or already ours, and sets
//!   the expiry 500 ms ahead;
//! - while held, a heartbeat thread renews it every 50 ms with the same statement, ignoring
//!   failures (the holder is never told that its lease was lost);
//! - releasing: the heartbeat stops and an expired lease is written;
//! - waiting: try, then sleep 10 ms, doubling up to 1 s, until the timeout.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::Result;

pub const LEASE: Duration = Duration::from_millis(500);
pub const RENEW_EVERY: Duration = Duration::from_millis(50);
pub const FIRST_BACKOFF: Duration = Duration::from_millis(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

const CREATE: &str = "CREATE TABLE IF NOT EXISTS predecessor_lease (
    key TEXT NOT NULL PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
)";

const TAKE: &str = "INSERT INTO predecessor_lease (key, holder, expires_ms) VALUES (?1, ?2, ?3)
    ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
    WHERE predecessor_lease.holder = excluded.holder OR predecessor_lease.expires_ms < ?4";

const RELEASE: &str = "UPDATE predecessor_lease SET expires_ms = 0 WHERE key = ?1 AND holder = ?2";

/// One process's lock on one key.
pub struct PredecessorLock {
    shared: Arc<Shared>,
    heartbeat: Option<Heartbeat>,
}

struct Shared {
    connection: Mutex<Connection>,
    key: String,
    holder: String,
}

struct Heartbeat {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl PredecessorLock {
    /// Opens the database (WAL, `synchronous = NORMAL`, a 5 s busy timeout) and the lease table.
    pub fn open(path: &Path, key: &str, holder: &str) -> Result<PredecessorLock> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "wal")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.execute_batch(CREATE)?;
        Ok(PredecessorLock {
            shared: Arc::new(Shared {
                connection: Mutex::new(connection),
                key: key.into(),
                holder: holder.into(),
            }),
            heartbeat: None,
        })
    }

    /// Polls for the lease until `timeout`, then starts its heartbeat.
    pub fn acquire(&mut self, timeout: Duration) -> Result<()> {
        if self.heartbeat.is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        let mut backoff = FIRST_BACKOFF;
        while !self.shared.try_take()? {
            let now = Instant::now();
            if now >= deadline {
                return Err(
                    format!("the predecessor's lock stayed held for {} ms", timeout.as_millis()).into()
                );
            }
            std::thread::sleep(backoff.min(deadline - now));
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        let (stop, stopped) = mpsc::channel();
        let shared = self.shared.clone();
        let thread =
            std::thread::Builder::new().name("predecessor-heartbeat".into()).spawn(move || loop {
                match stopped.recv_timeout(RENEW_EVERY) {
                    Err(RecvTimeoutError::Timeout) => {
                        // A failed renewal goes unnoticed, as in the predecessor.
                        let _ = shared.try_take();
                    }
                    _ => return,
                }
            })?;
        self.heartbeat = Some(Heartbeat { stop, thread });
        Ok(())
    }

    /// Stops the heartbeat and writes an expired lease.
    pub fn release(&mut self) -> Result<()> {
        let Some(heartbeat) = self.heartbeat.take() else { return Ok(()) };
        let _ = heartbeat.stop.send(());
        let _ = heartbeat.thread.join();
        let connection = self.shared.connection.lock().unwrap_or_else(|p| p.into_inner());
        connection
            .prepare_cached(RELEASE)?
            .execute(rusqlite::params![self.shared.key, self.shared.holder])?;
        Ok(())
    }

    /// Whether this process believes it holds the lease: the predecessor cannot tell otherwise.
    pub fn believes_held(&self) -> bool {
        self.heartbeat.is_some()
    }
}

impl Drop for PredecessorLock {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

impl Shared {
    /// Takes or renews the lease for another 500 ms; false when another holder has it.
    fn try_take(&self) -> Result<bool> {
        let now_ms = wall_clock_ms();
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        let changed = connection.prepare_cached(TAKE)?.execute(rusqlite::params![
            self.key,
            self.holder,
            now_ms + LEASE.as_millis() as i64,
            now_ms
        ])?;
        Ok(changed == 1)
    }
}

fn wall_clock_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
