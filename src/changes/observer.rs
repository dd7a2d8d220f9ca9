//! An observer of a database file: a callback told, on the library's thread, after commits.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::look::{Looker, Seen};
use super::wake::{Waker, Woken};
use crate::callback::CallbackSlot;
use crate::error::{Error, Result};
use crate::file::OpenFile;
use crate::fork::Epoch;
use crate::runtime;
use crate::writer_board::{self, ObserverRegistration};

/// What a change callback is: called with the tables that changed (sorted, each once), or
/// `None` when they are not known (a writer outside liblease committed).
pub type ChangeCallback = dyn Fn(Option<&[String]>) + Send + Sync;

/// How long a look waits for a database that another connection is recovering; it is tried
/// again later rather than hold up the library's thread.
const LOOK_BUSY_TIMEOUT: Duration = Duration::from_millis(20);

/// After a write to the WAL that no bell followed (a writer outside liblease does not ring),
/// the observer looks again after these pauses, each four times the last: the commit becomes
/// visible a moment after the WAL's last write, and announces itself no further.
const FIRST_RELOOK: Duration = Duration::from_millis(1);
const LAST_RELOOK: Duration = Duration::from_millis(1024);

/// An observer of a database file (see [`crate::Database::observe`]). Dropping it stops the
/// callback: once the drop returns, the callback is not running and will not run again (unless
/// the drop came from inside the callback, which cannot wait for itself).
pub struct Observer {
    shared: Arc<Shared>,
    /// Tells writers (on the board) that this process observes the file: they record what they
    /// change only while some process does.
    registration: Option<ObserverRegistration>,
    epoch: Epoch,
}

struct Shared {
    callback: CallbackSlot<ChangeCallback>,
    stop: Notify,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer").finish_non_exhaustive()
    }
}

/// Starts observing the file of `file`, a database handle's registration.
pub(crate) fn observe(file: &OpenFile, callback: Box<ChangeCallback>) -> Result<Observer> {
    let path =
        file.path().ok_or_else(|| Error::InvalidArgument("an in-memory database has no observers".into()))?;
    // Before the first look: a writer that begins after it records; one that began before and
    // commits after the look is seen as a commit of unknown tables.
    let registration = file.queue().register_observer();
    let looker = Looker::open(path, LOOK_BUSY_TIMEOUT)?;
    let bell = file.queue().has_board().then(|| writer_board::path_of(path));
    let waker = Waker::new(path, bell.as_deref());
    let shared = Arc::new(Shared { callback: CallbackSlot::new(callback), stop: Notify::new() });
    let watch = Watch { shared: shared.clone(), looker, waker, file: file.another(), relook: None };
    runtime::spawn(watch.run())?;
    Ok(Observer { shared, registration, epoch: Epoch::current() })
}

impl Drop for Observer {
    fn drop(&mut self) {
        if self.epoch.is_past() {
            // A forked child's copy: the parent's task, callback and registration are not the
            // child's.
            std::mem::forget(self.shared.clone());
            std::mem::forget(self.registration.take());
            return;
        }
        self.shared.stop.notify_one();
        self.shared.callback.set(None);
    }
}

/// The observer's task on the library's thread.
struct Watch {
    /// Keeps the file's registration (and so its board) while the observer lives. Declared (and
    /// so dropped) before the looker's connection: see [`OpenFile`] on why.
    file: OpenFile,
    shared: Arc<Shared>,
    looker: Looker,
    waker: Waker,
    /// The next look after a write to the WAL, and the pause before it.
    relook: Option<Relook>,
}

#[derive(Debug, Clone, Copy)]
struct Relook {
    at: Instant,
    pause: Duration,
    /// The WAL was written again since the pauses began: begin them again at their end.
    again: bool,
}

enum Event {
    Stop,
    Woken(Woken),
    Relook,
}

impl Watch {
    async fn run(mut self) {
        loop {
            let relook_at = self.relook.map(|relook| relook.at);
            let event = tokio::select! {
                biased;
                () = self.shared.stop.notified() => Event::Stop,
                woken = self.waker.wait() => Event::Woken(woken),
                () = sleep_until(relook_at), if relook_at.is_some() => Event::Relook,
            };
            match event {
                Event::Stop => return,
                Event::Woken(woken) if woken.moved && self.file.ensure_in_place().is_err() => {
                    // Its file is gone: whatever the observer knew may be stale, and nothing more
                    // will be written to that file through this process.
                    self.tell(&Seen::Unknown);
                    return;
                }
                Event::Woken(woken) => {
                    if woken.bell || woken.wal || woken.moved {
                        self.look();
                    }
                    if woken.wal {
                        self.wal_written();
                    }
                }
                Event::Relook => {
                    self.look();
                    self.next_relook();
                }
            }
        }
    }

    fn look(&mut self) {
        match self.looker.look() {
            Ok(seen) => self.tell(&seen),
            // Busy (a recovery) or failing for now: look again a moment later.
            Err(_) => self.wal_written(),
        }
    }

    fn tell(&self, seen: &Seen) {
        match seen {
            Seen::Nothing => {}
            Seen::Tables(tables) => self.shared.callback.call(|callback| callback(Some(tables))),
            Seen::Unknown => self.shared.callback.call(|callback| callback(None)),
        }
    }

    fn wal_written(&mut self) {
        match &mut self.relook {
            Some(relook) => relook.again = true,
            None => {
                self.relook =
                    Some(Relook { at: Instant::now() + FIRST_RELOOK, pause: FIRST_RELOOK, again: false });
            }
        }
    }

    fn next_relook(&mut self) {
        let Some(relook) = self.relook.take() else { return };
        if relook.pause < LAST_RELOOK {
            let pause = relook.pause * 4;
            self.relook = Some(Relook { at: Instant::now() + pause, pause, ..relook });
        } else if relook.again {
            self.relook =
                Some(Relook { at: Instant::now() + FIRST_RELOOK, pause: FIRST_RELOOK, again: false });
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
