//! Waiting for a lease: the steps that the blocking and the asynchronous acquisitions share.
//! Each only supplies its own way of sleeping ([`Acquisition::sleep`], `sleep_async`).
//!
//! A waiting acquisition posts a notice on the file's board (see
//! [`WriterBoard::post_lease_waiter`]) and keeps it fresh while it waits. The one whose
//! notice is oldest has the turn: it sleeps on the wake-ups that tell of a release
//! ([`ChangeWait`]) and takes the lease when it finds it free. The others leave a free lease
//! to it (the attempt checks) and sleep on their notice's word, which the waiter before them
//! bumps when it withdraws, without reading the database meanwhile; so a release wakes one
//! process, not every waiting one, and a long line costs each handover little more than a short
//! one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::attempt::Attempt;
use super::guard::Guard;
use super::inner::LockInner;
use crate::error::{Error, Result};
use crate::log::log;
use crate::sync::MutexExt;
use crate::wait::ChangeWait;
use crate::wakeups;
use crate::writer_board::{self, LeaseNotice, WriterBoard, LEASE_REFRESH};

/// The first pause of a waiting acquisition whose wake-ups may come before the change is
/// visible (inotify on the WAL, for a file without a board); it doubles up to `max_backoff`
/// while no wake-up comes, and starts again from here after one. A waiter whose wake-ups all
/// come once the change is visible ([`ChangeWait::wakes_once_visible`]) sleeps `max_backoff`
/// each time instead: there is nothing to look for sooner.
const FIRST_BACKOFF: Duration = Duration::from_micros(250);

pub(super) enum Step {
    Done(Result<Guard>),
    /// Sleep at most this long ([`Acquisition::sleep`]), then step again.
    Wait(Wait),
}

/// How to sleep until the next step.
pub(super) struct Wait {
    at_most: Duration,
    /// The word of this acquisition's notice when it found a waiter of another process ahead
    /// of it: it sleeps on that word rather than on the wake-ups of a release.
    behind: Option<u32>,
}

pub(super) struct Acquisition {
    inner: Arc<LockInner>,
    timeout: Duration,
    asked: Instant,
    deadline: Instant,
    /// How long one attempt may wait in the writer queue: `None`, until the deadline (a blocking
    /// acquisition); otherwise a short stay, so that the library's thread is not held up.
    queue_stay: Option<Duration>,
    backoff: Duration,
    wait: Option<ChangeWait>,
    /// This acquisition's notice on the file's board, once it waits.
    notice: Option<LeaseNotice>,
}

impl Acquisition {
    pub(super) fn new(inner: Arc<LockInner>, timeout: Duration, queue_stay: Option<Duration>) -> Acquisition {
        // The last waiting acquisition's sources, which have watched since it ended.
        let mut wait = inner.idle_wait.locked().take();
        if let Some(wait) = &mut wait {
            wait.begin();
        }
        Acquisition {
            inner,
            timeout,
            asked: Instant::now(),
            deadline: Instant::now() + timeout,
            queue_stay,
            backoff: FIRST_BACKOFF,
            wait,
            notice: None,
        }
    }

    /// Looks until the lease is taken, something fails, or there is nothing to do but wait.
    pub(super) fn step(&mut self) -> Step {
        loop {
            // Behind a waiter of another process there is nothing to look at (a free lease is
            // left to that waiter): sleep on the notice's word until the turn comes, without
            // reading the database. With 32 processes in line, their looks at the lease row and
            // its holder were most of the CPU that each handover cost. (A notice is posted only
            // once the wake-up sources are made.)
            if let Some(seen) = self.behind().filter(|_| !crate::suspension::is_suspended()) {
                let left = self.deadline.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    return Step::Wait(Wait { at_most: left, behind: Some(seen) });
                }
            }
            // Waiting in the writer queue (not polling it) is what makes a long job of this
            // process let the acquisition in.
            let write_deadline = match self.queue_stay {
                None => self.deadline,
                Some(stay) => (Instant::now() + stay).min(self.deadline),
            };
            let held = match self.inner.attempt(Some(write_deadline), self.asked, self.notice) {
                Ok(Attempt::Taken(guard)) => {
                    // At once, so that the next in line starts to watch for this hold's release.
                    self.withdraw();
                    return Step::Done(Ok(guard));
                }
                Ok(Attempt::Held(held)) => held,
                Err(e) => return Step::Done(Err(e)),
            };
            let now = Instant::now();
            if now >= self.deadline {
                return Step::Done(Err(Error::Timeout(format!(
                    "could not acquire '{}' within {} ms: {}",
                    self.inner.key,
                    self.timeout.as_millis(),
                    held.why
                ))));
            }
            let Some(wait) = self.wait.as_mut() else {
                // Watch first, then look again: a release between the first look and the watch
                // would otherwise go unnoticed. (A reused watch has been watching all along.)
                let board = self.board().cloned();
                self.wait = Some(ChangeWait::new(self.inner.store.path(), board));
                continue;
            };
            if let Some(holder) = &held.holder {
                wait.watch_holder(holder, self.inner.store.inner.holder.identity(), &self.inner.known_alive);
            }
            let backoff =
                if wait.wakes_once_visible() { self.inner.options.max_backoff } else { self.backoff };
            if self.notice.is_none() {
                // In line since the acquisition was asked for; then look again, as above.
                let since = writer_board::waiting_since_for(self.asked);
                self.notice =
                    self.board().and_then(|board| board.post_lease_waiter(self.inner.key_hash, since));
                if self.notice.is_some() {
                    continue;
                }
            }
            // Never sleep past the holder's expiry or the deadline.
            let at_most = backoff.min(held.retry_in).min(self.deadline - now);
            return Step::Wait(Wait { at_most, behind: self.behind() });
        }
    }

    /// The word of this acquisition's notice, when a waiter of another process is ahead of it.
    /// Read before the turn is judged, so that a withdrawal in between is not missed.
    fn behind(&self) -> Option<u32> {
        let (board, notice) = (self.board()?, self.notice?);
        let seen = board.lease_wake_word(notice);
        (!board.has_lease_turn(self.inner.key_hash, Some(notice))).then_some(seen)
    }

    /// Sleeps as `wait` says, refreshing the notice at least every [`LEASE_REFRESH`]. Returns
    /// true when woken by an event rather than by the time running out.
    pub(super) fn sleep(&mut self, wait: Wait) -> bool {
        let until = Instant::now() + wait.at_most;
        while let Some(segment) = self.next_segment(until) {
            let woken = match self.behind_of(&wait) {
                Some((seen, board, notice)) => {
                    board.sleep_as_lease_waiter(notice, seen, segment, self.tick())
                }
                None => self.change_wait().wait(segment),
            };
            if woken || self.refreshed_into_turn(wait.behind) {
                return true;
            }
        }
        false
    }

    /// Like [`Acquisition::sleep`], on the library's runtime, without blocking its thread.
    pub(super) async fn sleep_async(&mut self, wait: Wait) -> bool {
        let until = Instant::now() + wait.at_most;
        while let Some(segment) = self.next_segment(until) {
            let woken = match self.behind_of(&wait) {
                // The runtime's thread must not block on the word: look at it between sleeps.
                Some((seen, board, notice)) => {
                    let end = Instant::now() + segment;
                    loop {
                        if board.lease_wake_word(notice) != seen {
                            break true;
                        }
                        let left = end.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break false;
                        }
                        tokio::time::sleep(left.min(self.tick())).await;
                    }
                }
                None => self.change_wait().wait_async(segment).await,
            };
            if woken || self.refreshed_into_turn(wait.behind) {
                return true;
            }
        }
        false
    }

    /// The next stretch of a sleep that ends at `until`: at most [`LEASE_REFRESH`] while the
    /// acquisition has a notice to keep fresh; `None` once the time is up.
    fn next_segment(&self, until: Instant) -> Option<Duration> {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            None
        } else if self.notice.is_some() {
            Some(left.min(LEASE_REFRESH))
        } else {
            Some(left)
        }
    }

    /// What a sleep behind another waiter sleeps on: the word it saw, the board and the notice.
    fn behind_of(&self, wait: &Wait) -> Option<(u32, Arc<WriterBoard>, LeaseNotice)> {
        Some((wait.behind?, self.board()?.clone(), self.notice?))
    }

    /// Refreshes the notice after a quiet stretch of sleep; true when this acquisition, which
    /// slept behind another waiter, now has the turn (that waiter's notice went stale) or the
    /// process was suspended (the next attempt says so).
    fn refreshed_into_turn(&self, behind: Option<u32>) -> bool {
        let (Some(board), Some(notice)) = (self.board(), self.notice) else { return false };
        board.refresh_lease_waiter(notice);
        behind.is_some()
            && (crate::suspension::is_suspended() || board.has_lease_turn(self.inner.key_hash, Some(notice)))
    }

    /// How often a portable sleep looks, as [`wakeups::tick`] says for this acquisition.
    fn tick(&self) -> Duration {
        wakeups::tick(self.asked.elapsed())
    }

    /// The file's board, where the acquisition queues.
    fn board(&self) -> Option<&Arc<WriterBoard>> {
        self.inner.store.inner.file.queue().board()
    }

    fn change_wait(&mut self) -> &mut ChangeWait {
        self.wait.as_mut().expect("made before the first Step::Wait")
    }

    /// Records how the sleep ended. A wake-up on the WAL comes with the first write of a commit,
    /// which may not be visible yet when the waiter looks: so after one the next look comes
    /// soon, and only quiet sleeps grow longer.
    pub(super) fn waited(&mut self, woken: bool) {
        let (name, key) = (self.inner.store.inner.name(), &self.inner.key);
        if woken {
            log!(Debug, "{name}: '{key}': woken, looking again");
        } else {
            log!(Debug, "{name}: '{key}': nothing woke the waiter, looking again");
        }
        self.backoff =
            if woken { FIRST_BACKOFF } else { (self.backoff * 2).min(self.inner.options.max_backoff) };
    }

    fn withdraw(&mut self) {
        if let Some(notice) = self.notice.take() {
            if let Some(board) = self.board() {
                board.withdraw_lease_waiter(notice);
            }
        }
    }
}

impl Drop for Acquisition {
    /// Takes the notice down, and keeps the wake-up sources with the lock for its next
    /// acquisition: closing an inotify descriptor waits for the kernel (an RCU grace period,
    /// milliseconds), which would delay every acquisition that had to wait.
    fn drop(&mut self) {
        self.withdraw();
        if let Some(wait) = self.wait.take() {
            let mut idle = self.inner.idle_wait.locked();
            if idle.is_none() {
                *idle = Some(wait);
            }
        }
    }
}
