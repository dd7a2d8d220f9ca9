//! The heartbeat: one task per held lease, on the library's thread, that renews it every
//! `renew_every` until the hold is given back or lost.
//!
//! The task sleeps on the runtime's timer, which (like `Instant`) may stop while the machine
//! sleeps; that only makes a renewal late. Whether it is too late is decided by the boot clock,
//! which counts through sleep: a renewal attempted after the confirmed expiry is refused and the
//! hold becomes lost, because another process may have taken the lease meanwhile.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::hold::Hold;
use crate::error::{Error, Result};
use crate::log::log;
use crate::runtime;
use crate::store::lease_table;

/// The pause between renewal attempts while another connection holds the write lock.
const BUSY_PAUSE: Duration = Duration::from_millis(5);

/// How late a renewal may come, in ms, before it is worth a warning (or a tenth of the period).
const LATE: u64 = 250;

/// The longest one renewal attempt waits in the writer queue.
const QUEUE_STAY: Duration = Duration::from_millis(100);

pub(crate) fn start(hold: &Arc<Hold>) -> Result<()> {
    runtime::spawn(run(Arc::downgrade(hold), hold.stop_signal(), hold.options().renew_every))
}

/// Holds the hold weakly between renewals: once its guards are gone the hold, its store and its
/// file are let go at once, not when this task next wakes.
async fn run(hold: Weak<Hold>, stop: Arc<Notify>, period: Duration) {
    loop {
        if tokio::time::timeout(period, stop.notified()).await.is_ok() {
            return;
        }
        let Some(hold) = hold.upgrade() else { return };
        if hold.is_released() || hold.is_lost() {
            return;
        }
        if let Err(reason) = renew(&hold).await {
            hold.mark_lost(reason);
            return;
        }
    }
}

/// Renews the lease, retrying while the database is busy, until the lease's confirmed expiry.
/// `Err` carries why the hold is lost.
async fn renew(hold: &Hold) -> Result<(), String> {
    let store = hold.store();
    let mut last_failure = None;
    loop {
        if hold.is_released() {
            return Ok(());
        }
        if let Err(moved) = store.file.ensure_in_place() {
            return Err(format!("the lease on '{}' is lost: {}", hold.key(), moved.message()));
        }
        let now_ms = store.clock.now_ms();
        if now_ms >= hold.confirmed_until_ms() {
            return Err(match last_failure {
                Some(failure) => format!("the lease on '{}' ran out while renewing failed: {failure}", hold.key()),
                None => format!(
                    "the lease on '{}' ran out before the heartbeat could renew it (was the process suspended?)",
                    hold.key()
                ),
            });
        }
        let expires_ms = now_ms + hold.options().lease.as_millis() as u64;
        // Wait in the writer queue (so that a long job of this process lets the renewal in), but
        // in short stays, so that the library's thread keeps serving other leases.
        let remaining = Duration::from_millis(hold.confirmed_until_ms() - now_ms);
        let deadline = Instant::now() + remaining.min(QUEUE_STAY);
        let renewed = store.write(Some(deadline), |connection| {
            lease_table::renew(connection, &hold.name(), now_ms, expires_ms)
        });
        match renewed {
            Ok(true) => {
                // Due when `renew_every` of the lease had passed, so that this much was left.
                let options = hold.options();
                let due_left = options.lease.saturating_sub(options.renew_every).as_millis() as u64;
                let late = due_left.saturating_sub(remaining.as_millis() as u64);
                if late > LATE.max(options.renew_every.as_millis() as u64 / 10) {
                    log!(
                        Warn,
                        "{}: '{}': a renewal came {late} ms late, with {} ms of the lease left (was the \
                         process stopped, or the database busy?)",
                        store.name(),
                        hold.key(),
                        remaining.as_millis()
                    );
                } else {
                    log!(
                        Debug,
                        "{}: '{}': renewed for {} ms",
                        store.name(),
                        hold.key(),
                        options.lease.as_millis()
                    );
                }
                hold.confirm(expires_ms);
                return Ok(());
            }
            Ok(false) if hold.is_released() => return Ok(()),
            Ok(false) => {
                return Err(format!(
                    "another holder took the lease on '{}', or its row was changed",
                    hold.key()
                ))
            }
            // A busy database, or any other failure, may pass: try again until the lease runs out.
            Err(Error::Busy(message)) => last_failure = Some(message),
            Err(Error::Database(message)) => {
                log!(
                    Error,
                    "{}: '{}': renewing the lease failed (trying again): {message}",
                    store.name(),
                    hold.key()
                );
                last_failure = Some(message);
            }
            Err(other) => return Err(other.to_string()),
        }
        tokio::time::sleep(BUSY_PAUSE).await;
    }
}
