//! What this process holds: one `Hold` per lease it has taken, shared by every guard of it.
//!
//! The locking story. Each (database file, key) has one `KeySlot` per holder; its mutex orders
//! everything that changes whether the holder holds that lease: taking it from the store,
//! adding a guard, dropping the last guard and giving the lease back. So a thread that acquires
//! while another gives the lease back either joins the hold before the release starts, or waits
//! for the release to finish and then takes the lease afresh. The heartbeat never takes the slot
//! mutex: it only renews, or marks the hold lost, which are atomic flags on the `Hold`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::lost::{LostSlot, Watchers};
use super::options::LockOptions;
use crate::error::{Error, Result};
use crate::log::log;
use crate::runtime;
use crate::store::lease_table::{self, HoldName};
use crate::store::StoreInner;
use crate::sync::MutexExt;
use crate::writer_queue::Place;

/// How long one background attempt to give a lease back waits in the writer queue, and the
/// pause between attempts.
const BACKGROUND_QUEUE_STAY: Duration = Duration::from_millis(20);
const BACKGROUND_PAUSE: Duration = Duration::from_millis(2);
/// How long after giving a lease back on the board alone its holder waits before writing the
/// release into the database, should nobody have taken the lease over by then. The waiter it
/// woke takes it within a millisecond or so; the release in the database is for those that do
/// not read the board (the `lease` tool, a process that could not map it, an earlier version).
const HANDED_BACK_GRACE: Duration = Duration::from_millis(50);

/// The lease slots of one database file, kept with the file's entry (see `file::OpenFile`) and
/// dropped with it.
#[derive(Debug, Default)]
pub(crate) struct LeaseSlots {
    // A BTreeMap, whose nodes are pointed at from their start, rather than a HashMap: leak
    // checkers then see these tables as reachable, not "possibly lost".
    slots: Mutex<BTreeMap<String, Arc<KeySlot>>>,
    /// Holds given back on the board alone whose release is not yet written into the database
    /// (see [`Hold::hand_over`]).
    handed: Mutex<Handed>,
}

#[derive(Debug, Default)]
struct Handed {
    /// Oldest first: when each was handed over, and the hold.
    pending: Vec<(Instant, Arc<Hold>)>,
    /// True while a task on the library's thread sees to `pending`.
    seen_to: bool,
}

impl LeaseSlots {
    pub(crate) fn slot(&self, key: &str) -> Arc<KeySlot> {
        self.slots.locked().entry(key.to_owned()).or_default().clone()
    }

    /// At a suspension of the process: gives every lease of this file that the holder holds
    /// back to the database, and makes each of them lost for its guards, so that the next
    /// acquisition (after the process resumes) is dirty. A release that cannot be written by
    /// `deadline` leaves the lease to run out; its `Err` says which.
    pub(crate) fn give_up_all(&self, deadline: Instant) -> Vec<String> {
        let slots: Vec<Arc<KeySlot>> = self.slots.locked().values().cloned().collect();
        let mut failures = Vec::new();
        // Holds handed over on the board: their releases are written now, before the process may
        // be frozen (the task that would write them is refused while it is suspended).
        let handed = std::mem::take(&mut self.handed.locked().pending);
        for (_, hold) in handed {
            hold.stop.notify_one();
            // Written before it is taken off the board (see `Hold::write_unclaimed_release`).
            let written =
                if hold.is_handed_back() { hold.write_release_suspending(deadline) } else { Ok(()) };
            hold.unmark_handed_back();
            if let Err(e) = written {
                failures.push(format!(
                    "the lease on '{}', handed over, could not be given back in the database ({e}); it \
                     runs out by itself",
                    hold.key
                ));
            }
        }
        for slot in slots {
            // Under the slot's mutex: an acquisition under way installs its hold before this
            // looks, or finds the process suspended.
            let mut state = slot.lock();
            state.last_generation = None;
            if let Some(hold) = state.hold.take() {
                if let Err(e) = hold.give_up_for_suspension(deadline) {
                    failures.push(format!(
                        "the lease on '{}' could not be given back ({e}); it runs out by itself",
                        hold.key
                    ));
                }
            }
        }
        failures
    }
}

#[derive(Debug, Default)]
pub(crate) struct KeySlot {
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
pub(crate) struct SlotState {
    /// The current hold, while it has guards.
    pub(crate) hold: Option<Arc<Hold>>,
    /// The generation of this holder's last hold; `None` before the first and after a loss, so
    /// that the next acquisition is dirty.
    pub(crate) last_generation: Option<u64>,
}

impl KeySlot {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.locked()
    }
}

/// What the store said when it gave a lease to a new hold.
pub(crate) struct Taken {
    pub number: u64,
    pub generation: u64,
    pub boot: Arc<str>,
    pub expires_ms: u64,
}

/// One lease taken from the store, alive while any guard of it is.
pub(crate) struct Hold {
    store: Arc<StoreInner>,
    slot: Arc<KeySlot>,
    key: String,
    number: u64,
    generation: u64,
    boot: Arc<str>,
    options: LockOptions,
    /// Changed only under the slot mutex; atomic so the type is `Sync`.
    guards: AtomicUsize,
    /// The boot-clock time until which the store is known to keep the lease ours.
    confirmed_until_ms: AtomicU64,
    released: AtomicBool,
    /// Set once, with the reason; `lost` mirrors it for the heartbeat's lock-free looks.
    lost: AtomicBool,
    lost_reason: Mutex<Option<String>>,
    /// Ends the heartbeat.
    stop: Arc<Notify>,
    /// The locks through which guards of this hold were taken: their lost callbacks fire.
    watchers: Watchers,
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold")
            .field("key", &self.key)
            .field("number", &self.number)
            .field("generation", &self.generation)
            .field("guards", &self.guards)
            .field("lost", &self.lost)
            .finish()
    }
}

impl Hold {
    pub(crate) fn new(
        store: Arc<StoreInner>,
        slot: Arc<KeySlot>,
        key: String,
        options: LockOptions,
        taken: Taken,
    ) -> Arc<Hold> {
        Arc::new(Hold {
            store,
            slot,
            key,
            number: taken.number,
            generation: taken.generation,
            boot: taken.boot,
            options,
            guards: AtomicUsize::new(0),
            confirmed_until_ms: AtomicU64::new(taken.expires_ms),
            released: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            lost_reason: Mutex::new(None),
            stop: Arc::new(Notify::new()),
            watchers: Watchers::default(),
        })
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn options(&self) -> LockOptions {
        self.options
    }

    pub(crate) fn store(&self) -> &Arc<StoreInner> {
        &self.store
    }

    /// This hold as the lease table names it.
    pub(crate) fn name(&self) -> HoldName<'_> {
        HoldName { key: &self.key, holder_id: self.store.holder.id(), hold: self.number, boot: &self.boot }
    }

    /// Notified when the hold ends (released or lost): the heartbeat's signal to stop.
    pub(crate) fn stop_signal(&self) -> Arc<Notify> {
        self.stop.clone()
    }

    /// Adds a guard taken through the lock whose callback slot is `lost`; the caller holds the
    /// slot mutex.
    pub(crate) fn add_guard(&self, _slot: &SlotState, lost: &Arc<LostSlot>) {
        self.guards.fetch_add(1, Ordering::SeqCst);
        self.watchers.add(lost);
    }

    pub(crate) fn confirmed_until_ms(&self) -> u64 {
        self.confirmed_until_ms.load(Ordering::SeqCst)
    }

    /// Records a successful renewal.
    pub(crate) fn confirm(&self, expires_ms: u64) {
        self.confirmed_until_ms.fetch_max(expires_ms, Ordering::SeqCst);
    }

    pub(crate) fn is_released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// `Ok` while the lease is known to be ours: not lost, and its last confirmed expiry not yet
    /// passed by this process's clock. Past that, the hold is lost for good, even if nobody else
    /// took the lease meanwhile: the process cannot know that nobody did.
    ///
    /// A hold is lost too once its database file was deleted, renamed or replaced: another
    /// process may take the lease in the file that the path names now.
    pub(crate) fn check(self: &Arc<Self>) -> Result<()> {
        if !self.is_lost() {
            let clock = &self.store.clock;
            if let Err(moved) = self.store.file.ensure_in_place() {
                self.mark_lost(format!("the lease on '{}' is lost: {}", self.key, moved.message()));
            } else if clock.boot_id() != self.boot {
                self.mark_lost(format!("the lease on '{}' was taken in an earlier boot", self.key));
            } else if clock.now_ms() >= self.confirmed_until_ms() {
                self.mark_lost(format!(
                    "the lease on '{}' ran out before it could be renewed (was the process suspended?)",
                    self.key
                ));
            }
        }
        if self.is_lost() {
            return Err(Error::Lost(self.lost_reason()));
        }
        Ok(())
    }

    fn lost_reason(&self) -> String {
        let reason = self.lost_reason.locked();
        reason.clone().unwrap_or_else(|| format!("the lease on '{}' was lost", self.key))
    }

    /// Marks the hold lost, once: stops the heartbeat and calls the lost callbacks on the
    /// library's thread. A hold that was given back is not lost.
    pub(crate) fn mark_lost(self: &Arc<Self>, reason: String) {
        if self.is_released() {
            return;
        }
        {
            let mut lost_reason = self.lost_reason.locked();
            if lost_reason.is_some() {
                return;
            }
            *lost_reason = Some(reason);
        }
        self.lost.store(true, Ordering::SeqCst);
        self.stop.notify_one();
        log!(Warn, "{}: '{}': the lease is lost: {}", self.store.name(), self.key, self.lost_reason());
        self.watchers.tell(self.key.clone());
    }

    /// At a suspension: the hold is lost for its guards, and the lease given back to the store at
    /// once, so that another process takes over without waiting for it to run out. Its guards'
    /// release later gives back nothing.
    fn give_up_for_suspension(self: &Arc<Self>, deadline: Instant) -> Result<()> {
        self.mark_lost(format!("the process was suspended (lease_suspend) while it held '{}'", self.key));
        if self.released.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.stop.notify_one();
        self.write_release_suspending(deadline)
    }

    fn write_release_suspending(&self, deadline: Instant) -> Result<()> {
        self.store
            .write_suspending(deadline, |connection| lease_table::release(connection, &self.name()))
            .map(|_| ())
    }

    /// Drops one guard. The last one detaches the hold from its slot and gives the lease back to
    /// the store at once, so that waiters need not wait for it to expire.
    pub(crate) fn drop_guard(self: &Arc<Self>) -> Result<()> {
        if self.store.epoch().is_past() {
            // The parent's mutexes and connection are not ours to touch.
            return Ok(());
        }
        let mut slot = self.slot.lock();
        if self.guards.fetch_sub(1, Ordering::SeqCst) != 1 {
            return Ok(());
        }
        if slot.hold.as_ref().is_some_and(|hold| Arc::ptr_eq(hold, self)) {
            slot.hold = None;
            if self.is_lost() {
                slot.last_generation = None;
            }
        }
        if self.released.swap(true, Ordering::SeqCst) {
            // Given back already, by a suspension of the process.
            return Ok(());
        }
        // Handed over, the heartbeat is ended by the task that sees to the hand-over, on the
        // library's thread: waking that thread now would run it while the waiter wakes.
        if self.hand_over() {
            return Ok(());
        }
        self.stop.notify_one();
        // Give the lease back now if the database lets us in at once. If another writer has it
        // (a long transaction of this process, say), do not keep the caller waiting: the library's
        // thread gives it back as soon as it can, from the place in the writer queue taken now,
        // so that the caller's next write comes after it. The write names this hold's number, so
        // a late release can never give back a newer hold of this process.
        let place = self.store.take_place();
        let released = self.give_back(&place, None);
        drop(slot);
        match released {
            Err(Error::Busy(_)) => {
                self.give_back_in_background(place);
                Ok(())
            }
            other => other,
        }
    }

    /// Gives the lease back on the board alone when a process waits for it: the waiter, woken
    /// at once, takes the lease over from this exact hold in its own statement, so that the
    /// handover costs one commit (the take) rather than two, and the release none. The library's
    /// thread writes the release into the database [`HANDED_BACK_GRACE`] later, unless the lease
    /// was taken over meanwhile. False when the lease is to be given back in the database now:
    /// nobody of another process waits, there is no board, or no slot on it, or no thread for the
    /// release left to write.
    fn hand_over(self: &Arc<Self>) -> bool {
        let Some(board) = self.store.file.queue().board() else { return false };
        if board.has_lease_turn(crate::writer_board::key_hash(&self.key), None)
            || !board.hand_back(self.board_hash())
        {
            return false;
        }
        // The waiter first, as a commit would wake it: its inotify watch sees the bell, a
        // portable waiter the wake word.
        board.ring();
        board.wake_all();
        let leases = self.store.file.leases::<LeaseSlots>();
        let mut handed = leases.handed.locked();
        handed.pending.push((Instant::now(), self.clone()));
        if !handed.seen_to {
            // One task for every hold handed over meanwhile: a process that hands a lease over
            // hundreds of times a second wakes its thread for them at most every grace period.
            let store = self.store.clone();
            if runtime::spawn(async move { write_unclaimed_releases(store).await }).is_err() {
                handed.pending.pop();
                drop(handed);
                // The waiter finds the lease released in the database instead.
                self.unmark_handed_back();
                return false;
            }
            handed.seen_to = true;
        }
        log!(Info, "{}: '{}': released, handed over to a waiting process", self.store.name(), self.key);
        true
    }

    fn board_hash(&self) -> u64 {
        self.name().board_hash()
    }

    fn is_handed_back(&self) -> bool {
        self.store.file.queue().board().is_some_and(|board| board.was_handed_back(self.board_hash()))
    }

    fn unmark_handed_back(&self) {
        if let Some(board) = self.store.file.queue().board() {
            board.unmark_handed_back(self.board_hash());
        }
    }

    fn give_back(&self, place: &Place, deadline: Option<Instant>) -> Result<()> {
        let given = self.give_back_once(place, deadline);
        self.log_given_back(&given, false);
        given.map(|_| ())
    }

    /// Logs how giving the lease back in the database went; `handed` for the release of a hold
    /// handed over on the board that nobody took over.
    fn log_given_back(&self, given: &Result<bool>, handed: bool) {
        let (store, key) = (self.store.name(), &self.key);
        match given {
            Ok(true) if handed => log!(
                Info,
                "{store}: '{key}': nobody took the lease over within {} ms of its hand-over: released in the database",
                HANDED_BACK_GRACE.as_millis()
            ),
            Ok(true) => log!(Info, "{store}: '{key}': released"),
            Ok(false) if handed => {}
            Ok(false) => log!(
                Info,
                "{store}: '{key}': released a lost lease: another holder has had it since, nothing to give back"
            ),
            Err(Error::Busy(_)) => {}
            Err(e) => log!(Error, "{store}: '{key}': giving the lease back failed (it runs out instead): {e}"),
        }
    }

    /// Whether the row was still this hold's to give back.
    fn give_back_once(&self, place: &Place, deadline: Option<Instant>) -> Result<bool> {
        let release = |connection: &rusqlite::Connection| lease_table::release(connection, &self.name());
        self.store.write_at(place, deadline, release)
    }

    /// Retries giving the lease back until it succeeds or the lease would have run out anyway.
    /// Each stay in the writer queue is short, so that the library's thread keeps serving other
    /// leases, and all are made from the same place, in this process's queue and on the board:
    /// each stay would otherwise begin again at the back, behind writers that came while it was
    /// away, and a busy file could keep the release out until the lease ran out.
    fn give_back_in_background(self: &Arc<Self>, place: Place) {
        let hold = self.clone();
        // Without the thread the lease simply runs out: slower for waiters, still correct.
        let _ = runtime::spawn(async move { hold.give_back_later(place, false).await });
    }

    /// Like [`Hold::give_back_later`], for a hold handed over on the board, if nobody took it
    /// over; then takes the hand-back off the board. In this order, so that nobody who reads the
    /// board finds the lease held meanwhile (the release changes nothing if the lease was taken
    /// over in between).
    async fn write_unclaimed_release(&self) {
        self.stop.notify_one();
        if self.is_handed_back() {
            self.give_back_later(self.store.take_place(), true).await;
        }
        self.unmark_handed_back();
    }

    /// Gives the lease back in the database from the library's thread; see
    /// [`Hold::log_given_back`] for `handed`.
    async fn give_back_later(&self, place: Place, handed: bool) {
        while self.store.clock.now_ms() < self.confirmed_until_ms() {
            match self.give_back_once(&place, Some(Instant::now() + BACKGROUND_QUEUE_STAY)) {
                Err(Error::Busy(_)) => tokio::time::sleep(BACKGROUND_PAUSE).await,
                given => return self.log_given_back(&given, handed),
            }
        }
    }
}

/// Sees to the holds of `store`'s file handed over on the board: each one's release is written
/// into the database [`HANDED_BACK_GRACE`] after its hand-over, unless it was taken over by then.
/// Ends when none is left.
async fn write_unclaimed_releases(store: Arc<StoreInner>) {
    let leases = store.file.leases::<LeaseSlots>();
    loop {
        // The oldest hand-over, once its grace is over; the list's mutex is not held across a
        // sleep or a write.
        let due = {
            let mut handed = leases.handed.locked();
            let Some((at, _)) = handed.pending.first() else {
                handed.seen_to = false;
                return;
            };
            let due = *at + HANDED_BACK_GRACE;
            (due <= Instant::now()).then(|| handed.pending.remove(0).1).ok_or(due)
        };
        match due {
            Ok(hold) => hold.write_unclaimed_release().await,
            Err(due) => tokio::time::sleep_until(due.into()).await,
        }
    }
}
