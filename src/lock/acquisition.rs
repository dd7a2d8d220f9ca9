//! Waiting for a lease: the steps that the blocking and the asynchronous acquisitions share.
//! Each only supplies its own way of sleeping until a wake-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::attempt::Attempt;
use super::guard::Guard;
use super::inner::LockInner;
use crate::error::{Error, Result};
use crate::log::log;
use crate::sync::MutexExt;
use crate::wait::ChangeWait;

/// The first pause of a waiting acquisition; it doubles up to `max_backoff` while no wake-up
/// comes, and starts again from here after one.
const FIRST_BACKOFF: Duration = Duration::from_micros(250);

pub(super) enum Step {
    Done(Result<Guard>),
    /// Sleep on [`Acquisition::change_wait`] at most this long, then step again.
    Wait(Duration),
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
        }
    }

    /// Looks until the lease is taken, something fails, or there is nothing to do but wait.
    pub(super) fn step(&mut self) -> Step {
        loop {
            // Waiting in the writer queue (not polling it) is what makes a long job of this
            // process let the acquisition in.
            let write_deadline = match self.queue_stay {
                None => self.deadline,
                Some(stay) => (Instant::now() + stay).min(self.deadline),
            };
            let held = match self.inner.attempt(Some(write_deadline), self.asked) {
                Ok(Attempt::Taken(guard)) => return Step::Done(Ok(guard)),
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
                let board = self.inner.store.inner.file.queue().board().cloned();
                self.wait = Some(ChangeWait::new(self.inner.store.path(), board));
                continue;
            };
            if let Some(holder) = &held.holder {
                wait.watch_holder(holder, self.inner.store.inner.holder.identity());
            }
            // Never sleep past the holder's expiry or the deadline.
            return Step::Wait(self.backoff.min(held.retry_in).min(self.deadline - now));
        }
    }

    /// What to sleep on after [`Step::Wait`].
    pub(super) fn change_wait(&mut self) -> &mut ChangeWait {
        self.wait.as_mut().expect("made before the first Step::Wait")
    }

    /// Records how the sleep ended. A wake-up comes with the first write of a commit, which may
    /// not be visible yet when the waiter looks: so after one the next look comes soon, and
    /// only quiet sleeps grow longer.
    pub(super) fn waited(&mut self, woken: bool) {
        if woken {
            log!(Debug, "{}: '{}': woken, looking again", self.inner.store.inner.name(), self.inner.key);
        }
        self.backoff =
            if woken { FIRST_BACKOFF } else { (self.backoff * 2).min(self.inner.options.max_backoff) };
    }
}

impl Drop for Acquisition {
    /// Keeps the wake-up sources with the lock for its next acquisition: closing an inotify
    /// descriptor waits for the kernel (an RCU grace period, milliseconds), which would delay
    /// every acquisition that had to wait.
    fn drop(&mut self) {
        if let Some(wait) = self.wait.take() {
            let mut idle = self.inner.idle_wait.locked();
            if idle.is_none() {
                *idle = Some(wait);
            }
        }
    }
}
