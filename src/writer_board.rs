//! The writer board: fair turns at SQLite's write lock between processes.
//!
//! SQLite's busy handler lets whichever process polls at the right moment win, so a process that
//! writes back to back keeps the database and the others starve. Within a process the
//! [`WriterQueue`](crate::writer_queue) orders writers; between processes this board does.
//!
//! The board is a 4 KiB file beside the database, `<database>-liblease`, mapped into every
//! process that writes through liblease. It is never locked (no `fcntl`, no `flock`): on iOS a
//! suspended process holding a file lock in a shared container is killed, and a mapped file
//! without locks is as harmless as SQLite's own `-shm`. Each process posts at most one notice
//! (its in-process queue's head writer) saying since when it waits; the oldest fresh notice has
//! the turn and alone tries for SQLite's lock. A writer bumps the board's wake word when its
//! write ends and wakes the sleepers (Linux: a futex on the shared page; elsewhere they look at
//! the word between short sleeps, see [`wakeups`](crate::wakeups)).
//!
//! The board also orders the processes waiting for one lease ([`WriterBoard::post_lease_waiter`]):
//! each waiting acquisition posts a notice with its key's hash and since when it waits; the
//! oldest fresh notice of a key has the turn. Only it watches for a release and takes a lease it
//! finds free; the others leave a free lease to it and sleep on their notice's own word, which
//! the one before them bumps when it withdraws (it took the lease, or gave up). So a release
//! wakes one waiter, not all of them, and the process that has waited longest goes next. As for
//! writers, exclusion is not the board's: the lease row decides who holds.
//!
//! The board is also a bell: a writer that committed writes one byte of the file's last page
//! with `pwrite` ([`WriterBoard::ring`]), which file-change notifications (Linux's inotify) see,
//! whereas stores into the mapping are invisible to them. Observers of the database wait for it
//! (see [`changes`](crate::changes)).
//!
//! A holder that gives a lease back while a process waits for it may say so on the board alone
//! ([`WriterBoard::hand_back`]) rather than in the database: the waiter, woken at once, takes
//! the lease over from that exact hold in its own statement, so that a handover costs one commit
//! instead of two. The holder writes the release into the database a little later unless the
//! lease was taken meanwhile. Here too the lease row decides: the board only says which hold is
//! over, as a holder's ended process does.
//!
//! A notice stays fresh while its writer refreshes it, at least every [`REFRESH`]; a notice older
//! than [`STALE`] belongs to a process that died or was suspended and is ignored, so nobody
//! waits on it for long. The board only orders attempts: exclusion is still SQLite's write lock.
//! A board file with foreign content, or one that cannot be made or mapped, only costs fairness.
//! A file truncated while processes use it would kill each process that next touches its
//! mapping (SIGBUS); the mapping is guarded instead (see [`sigbus`](crate::sigbus)): it turns
//! into private zeroed memory, an empty board that only this process sees, so that the process
//! goes on without fairness until it opens the database again.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::liveness;
use crate::log::log;
use crate::sigbus::Region;
use crate::sync::MutexExt;
use crate::wakeups;

/// How often a waiting writer refreshes its notice.
pub(crate) const REFRESH: Duration = Duration::from_millis(10);
/// A notice not refreshed for this long is ignored.
pub(crate) const STALE: Duration = Duration::from_millis(100);

pub(crate) const MAGIC: u64 = u64::from_be_bytes(*b"LEASEBD1");
pub(crate) const SIZE: usize = 4096;
const SLOTS: usize = 63;
/// How many waiting acquisitions of leases the board orders; with every slot taken, a waiter
/// goes without a turn (it takes a free lease only when no posted waiter is older).
const LEASE_SLOTS: usize = 30;
/// How often a lease waiter refreshes its notice, and past how long one not refreshed is
/// ignored. Longer than a writer's: a lease waiter may wait for seconds, and each refresh wakes
/// it; a waiter whose process is gone is passed over sooner (see `lease_notice_is_stale`).
pub(crate) const LEASE_REFRESH: Duration = Duration::from_millis(100);
const LEASE_STALE: Duration = Duration::from_millis(1000);
/// Marks the `since` of a lease notice being written, with the writing process's pid in the low
/// bits (boot-clock nanoseconds never reach this bit).
const CLAIMING: u64 = 1 << 63;
/// How many leases given back on the board alone it keeps; with every slot taken, a holder
/// gives its lease back in the database.
const HANDED_SLOTS: usize = 16;
/// Past this age a hand-back's slot may be reused: by then its holder has written the release
/// into the database, or its process ended (which waiters see for themselves).
const HANDED_STALE: Duration = Duration::from_secs(10);
/// How many observing processes the board names; with every slot taken, writers record for all.
const OBSERVER_SLOTS: usize = 8;
/// The byte the bell writes: the page's last, beyond the layout.
const BELL: u64 = SIZE as u64 - 1;

#[repr(C)]
pub(crate) struct Layout {
    pub(crate) magic: AtomicU64,
    /// Bumped whenever a write ends; sleepers wait on it.
    wake: AtomicU32,
    /// The processes that observe the database (see `changes`), by pid; 0 is a free slot.
    /// Writers record what they change only while there is one.
    observers: [AtomicU32; OBSERVER_SLOTS],
    _reserved: [u32; 13 - OBSERVER_SLOTS],
    pub(crate) slots: [Slot; SLOTS],
    /// Waiting acquisitions of leases (a file made by an earlier version has zeros here, which
    /// are free slots).
    leases: [LeaseSlot; LEASE_SLOTS],
    /// Holds given back on the board alone (see [`WriterBoard::hand_back`]); zeros, free slots,
    /// in a file made by an earlier version, which neither reads nor writes them.
    handed: [HandedSlot; HANDED_SLOTS],
}

#[repr(C)]
pub(crate) struct Slot {
    /// Boot-clock nanoseconds since when the writer waits; 0 for a free slot.
    pub(crate) since: AtomicU64,
    /// When the writer last refreshed the notice.
    pub(crate) alive: AtomicU64,
    pub(crate) pid: AtomicU32,
    _reserved: [u32; 3],
}

/// One waiting acquisition of a lease.
#[repr(C)]
struct LeaseSlot {
    /// Boot-clock nanoseconds since when the acquisition waits; 0 for a free slot, [`CLAIMING`]
    /// while the rest is written.
    since: AtomicU64,
    /// The hash of the key ([`key_hash`]).
    key: AtomicU64,
    /// When the waiter last refreshed the notice.
    alive: AtomicU64,
    pid: AtomicU32,
    /// Bumped to wake the waiter; it sleeps on it (a futex word, on Linux).
    wake: AtomicU32,
}

/// One hold given back on the board alone.
#[repr(C)]
struct HandedSlot {
    /// The hold's hash ([`hold_hash`]); 0 for a free slot, [`CLAIMING`] with the writing
    /// process's pid while `at` is written.
    hold: AtomicU64,
    /// Boot-clock nanoseconds when it was given back.
    at: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<Layout>() <= BELL as usize);

/// Since when a writer waits, on the board's clock (the boot clock, which every process shares).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct WaitingSince(u64);

/// Now, for a writer that begins to wait.
pub(crate) fn waiting_since() -> WaitingSince {
    WaitingSince(now_ns())
}

/// For a waiter that began to wait at `began` (an `Instant` of this process).
pub(crate) fn waiting_since_for(began: std::time::Instant) -> WaitingSince {
    WaitingSince(now_ns().saturating_sub(began.elapsed().as_nanos() as u64))
}

/// A posted notice: the slot this writer holds on the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Notice {
    slot: usize,
    since: u64,
}

/// One process's mapping of a database's board.
pub(crate) struct WriterBoard {
    layout: *const Layout,
    /// Kept open for the bell.
    file: File,
    /// This process's observers, by the observer slot they share.
    observers_here: Mutex<BTreeMap<usize, usize>>,
    /// Keeps a truncation of the file from killing the process; `None` if no guard was left.
    guard: Option<Region>,
}

// SAFETY: the mapping lives as long as the board and is only accessed through atomics.
unsafe impl Send for WriterBoard {}
unsafe impl Sync for WriterBoard {}

impl std::fmt::Debug for WriterBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterBoard").finish_non_exhaustive()
    }
}

impl WriterBoard {
    /// Maps the board of the database at `database`, creating it if needed. `None` when it
    /// cannot be had (read-only directory, foreign file): writers then go without fairness.
    pub(crate) fn open(database: &Path) -> Option<WriterBoard> {
        let path = path_of(database);
        // The board is as private as the database it serves.
        let mode = std::fs::metadata(database).map(|m| m.permissions().mode() & 0o666).unwrap_or(0o600);
        let file = OpenOptions::new().read(true).write(true).create(true).mode(mode).open(&path).ok()?;
        // Only a file this code made (empty, then sized) or a board already is used: a shorter
        // file is someone else's and stays untouched.
        match file.metadata().ok()?.len() {
            0 => file.set_len(SIZE as u64).ok()?,
            len if len < SIZE as u64 => {
                log!(Warn, "{}: {len} bytes, shorter than a board: left alone; the database's writers go without fair turns", path.display());
                return None;
            }
            _ => {}
        }
        // SAFETY: maps SIZE bytes of a file that has at least that many; checked below.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return None;
        }
        let board = WriterBoard {
            layout: address.cast(),
            file,
            observers_here: Mutex::default(),
            guard: Region::guard(address.cast(), SIZE),
        };
        // A new file is all zeros, which is an empty board.
        let magic = &board.layout().magic;
        let _ = magic.compare_exchange(0, MAGIC, Ordering::AcqRel, Ordering::Acquire);
        if magic.load(Ordering::Acquire) != MAGIC {
            log!(Warn, "{}: not a liblease board (another program's, or another version's): left alone; the database's writers go without fair turns", path.display());
            return None;
        }
        Some(board)
    }

    /// Says that this process observes the database, until the returned registration is
    /// dropped. Slots of processes that are gone are freed first. With every slot taken the
    /// process goes unnamed: writers then record for everyone anyway.
    pub(crate) fn register_observer(self: &Arc<Self>) -> ObserverRegistration {
        let me = std::process::id();
        let slots = &self.layout().observers;
        for slot in slots {
            let pid = slot.load(Ordering::Acquire);
            if pid != 0 && pid != me && liveness::is_gone(pid) {
                let _ = slot.compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Acquire);
            }
        }
        // One slot per process, however many observers it has: counted here.
        let slot = slots.iter().position(|slot| slot.load(Ordering::Acquire) == me).or_else(|| {
            slots
                .iter()
                .position(|slot| slot.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire).is_ok())
        });
        if let Some(slot) = slot {
            *self.observers_here.locked().entry(slot).or_default() += 1;
        }
        ObserverRegistration { board: self.clone(), slot }
    }

    /// True while some process observes the database.
    pub(crate) fn is_observed(&self) -> bool {
        self.layout().observers.iter().any(|slot| slot.load(Ordering::Relaxed) != 0)
    }

    /// Rings the bell: a writer of this process committed.
    pub(crate) fn ring(&self) {
        // Not a store into the mapping, which change notifications do not see. Not into a file
        // truncated under us either (it would grow again, under processes whose mappings broke).
        // A bell not rung costs observers only promptness: they also watch the WAL.
        if !self.guard.as_ref().is_some_and(Region::is_broken) {
            let _ = self.file.write_at(&[1], BELL);
        }
    }

    fn layout(&self) -> &Layout {
        // SAFETY: `layout` points at a live mapping of SIZE bytes for as long as `self` lives (a
        // guarded one that stays readable and writable even if its file is truncated).
        unsafe { &*self.layout }
    }

    /// Posts this writer's notice: it waits since `since` ([`waiting_since`] when it began to
    /// wait; a writer that tries again in several stays keeps the time of its first, so that it
    /// does not go to the back each time).
    pub(crate) fn post(&self, since: WaitingSince) -> Option<Notice> {
        let now = now_ns();
        // 0 marks a free slot.
        let since = since.0.clamp(1, now);
        for (index, slot) in self.layout().slots.iter().enumerate() {
            let held = slot.since.load(Ordering::Acquire);
            let free = held == 0 || is_stale(slot, now);
            if free && slot.since.compare_exchange(held, since, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                slot.alive.store(now, Ordering::Release);
                slot.pid.store(std::process::id(), Ordering::Relaxed);
                return Some(Notice { slot: index, since });
            }
        }
        None // a full board: this writer goes without a turn
    }

    /// Keeps the notice fresh.
    pub(crate) fn refresh(&self, notice: Notice) {
        let slot = &self.layout().slots[notice.slot];
        if slot.since.load(Ordering::Acquire) == notice.since {
            slot.alive.store(now_ns(), Ordering::Release);
        }
    }

    /// Takes the notice down (the writer got the lock, or gave up).
    pub(crate) fn withdraw(&self, notice: Notice) {
        let slot = &self.layout().slots[notice.slot];
        let _ = slot.since.compare_exchange(notice.since, 0, Ordering::AcqRel, Ordering::Acquire);
    }

    /// True when no fresh notice is older than `notice` (ties go to the lower slot).
    pub(crate) fn has_turn(&self, notice: Notice) -> bool {
        let now = now_ns();
        !self.layout().slots.iter().enumerate().any(|(index, slot)| {
            let since = slot.since.load(Ordering::Acquire);
            index != notice.slot
                && since != 0
                && (since, index) < (notice.since, notice.slot)
                && !is_stale(slot, now)
        })
    }

    /// True when a writer of another process waits (a fresh notice other than `mine`).
    pub(crate) fn others_waiting(&self, mine: Option<Notice>) -> bool {
        let now = now_ns();
        self.layout().slots.iter().enumerate().any(|(index, slot)| {
            Some(index) != mine.map(|n| n.slot)
                && slot.since.load(Ordering::Acquire) != 0
                && !is_stale(slot, now)
        })
    }

    /// The wake word, read before deciding to sleep so that no wake-up is missed.
    pub(crate) fn wake_word(&self) -> u32 {
        self.layout().wake.load(Ordering::Acquire)
    }

    /// Sleeps until the wake word moves on from `seen`, or `timeout`.
    pub(crate) fn sleep(&self, seen: u32, timeout: Duration) {
        sleep_on(&self.layout().wake, seen, timeout, wakeups::FIRST_TICK);
    }

    /// A write ended: wake every process that waits for a turn.
    pub(crate) fn wake_all(&self) {
        let layout = self.layout();
        layout.wake.fetch_add(1, Ordering::AcqRel);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if wakeups::native() && self.others_waiting(None) {
            // SAFETY: wakes sleepers on a word of a live shared mapping.
            unsafe {
                libc::syscall(libc::SYS_futex, &layout.wake as *const AtomicU32, libc::FUTEX_WAKE, i32::MAX)
            };
        }
    }
}

/// Waiting acquisitions of leases (see the module documentation).
impl WriterBoard {
    /// Posts a waiting acquisition of the lease whose key hashes to `key` ([`key_hash`]), which
    /// waits since `since`. `None` with every slot taken.
    pub(crate) fn post_lease_waiter(&self, key: u64, since: WaitingSince) -> Option<LeaseNotice> {
        let now = now_ns();
        let since = since.0.clamp(1, now);
        let me = std::process::id();
        for (index, slot) in self.layout().leases.iter().enumerate() {
            let held = slot.since.load(Ordering::Acquire);
            let free = held == 0 || lease_notice_is_stale(slot, held, now);
            // Claimed under this process's mark first, so that nobody reads a half-written
            // notice (or claims it too) before `since` says it is whole.
            if free
                && slot
                    .since
                    .compare_exchange(held, CLAIMING | u64::from(me), Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                slot.key.store(key, Ordering::Relaxed);
                slot.pid.store(me, Ordering::Relaxed);
                slot.alive.store(now, Ordering::Relaxed);
                slot.since.store(since, Ordering::Release);
                return Some(LeaseNotice { slot: index, key, since });
            }
        }
        None
    }

    /// Keeps the notice fresh.
    pub(crate) fn refresh_lease_waiter(&self, notice: LeaseNotice) {
        let slot = &self.layout().leases[notice.slot];
        if slot.since.load(Ordering::Acquire) == notice.since {
            slot.alive.store(now_ns(), Ordering::Release);
        }
    }

    /// Takes the notice down (the acquisition took the lease, or gave up), and wakes the waiter
    /// that is now first in line for the key.
    pub(crate) fn withdraw_lease_waiter(&self, notice: LeaseNotice) {
        let slot = &self.layout().leases[notice.slot];
        let _ = slot.since.compare_exchange(notice.since, 0, Ordering::AcqRel, Ordering::Acquire);
        let now = now_ns();
        let first = self
            .lease_waiters(notice.key, now)
            .min_by_key(|(index, slot)| (slot.since.load(Ordering::Acquire), *index));
        if let Some((_, first)) = first {
            wake_one(&first.wake);
        }
    }

    /// True when no waiter of another process has waited longer for the lease whose key hashes
    /// to `key` than `mine` (than anyone, for `None`). Waiters of this process are not counted:
    /// whichever of them takes the lease, the others join its hold.
    pub(crate) fn has_lease_turn(&self, key: u64, mine: Option<LeaseNotice>) -> bool {
        let me = std::process::id();
        let now = now_ns();
        !self.lease_waiters(key, now).any(|(index, slot)| {
            slot.pid.load(Ordering::Relaxed) != me
                && mine
                    .is_none_or(|mine| (slot.since.load(Ordering::Acquire), index) < (mine.since, mine.slot))
        })
    }

    /// The word that the waiter before `notice` bumps when it withdraws.
    pub(crate) fn lease_wake_word(&self, notice: LeaseNotice) -> u32 {
        self.layout().leases[notice.slot].wake.load(Ordering::Acquire)
    }

    /// Sleeps until the word of `notice` moves on from `seen`, or `timeout`; a portable sleep
    /// looks at it every `tick`. Returns true when it moved.
    pub(crate) fn sleep_as_lease_waiter(
        &self,
        notice: LeaseNotice,
        seen: u32,
        timeout: Duration,
        tick: Duration,
    ) -> bool {
        let word = &self.layout().leases[notice.slot].wake;
        sleep_on(word, seen, timeout, tick);
        word.load(Ordering::Acquire) != seen
    }

    /// Wakes every lease waiter of this process (at a suspension, which ends their waits).
    pub(crate) fn wake_lease_waiters_of_this_process(&self) {
        let me = std::process::id();
        for slot in &self.layout().leases {
            if slot.pid.load(Ordering::Relaxed) == me && slot.since.load(Ordering::Acquire) != 0 {
                wake_one(&slot.wake);
            }
        }
    }

    /// The fresh, whole notices of waiters for `key`, with their slots.
    fn lease_waiters(&self, key: u64, now: u64) -> impl Iterator<Item = (usize, &LeaseSlot)> {
        self.layout().leases.iter().enumerate().filter(move |(_, slot)| {
            let since = slot.since.load(Ordering::Acquire);
            since != 0
                && since & CLAIMING == 0
                && slot.key.load(Ordering::Relaxed) == key
                && !lease_notice_is_stale(slot, since, now)
        })
    }
}

/// Holds given back on the board alone (see the module documentation).
impl WriterBoard {
    /// Says that the hold whose hash is `hold` ([`hold_hash`]) is over: its holder has stopped
    /// using it and gives the lease back. False with every slot taken; the holder then gives it
    /// back in the database.
    pub(crate) fn hand_back(&self, hold: u64) -> bool {
        let now = now_ns();
        let me = u64::from(std::process::id());
        for slot in &self.layout().handed {
            let held = slot.hold.load(Ordering::Acquire);
            let free = held == 0
                || if held & CLAIMING != 0 {
                    liveness::is_gone((held & !CLAIMING) as u32)
                } else {
                    now.saturating_sub(slot.at.load(Ordering::Acquire)) > HANDED_STALE.as_nanos() as u64
                };
            // Claimed under this process's mark first, so that a slot being written is not
            // taken as stale by another process meanwhile.
            if free
                && slot
                    .hold
                    .compare_exchange(held, CLAIMING | me, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                slot.at.store(now, Ordering::Release);
                slot.hold.store(hold, Ordering::Release);
                return true;
            }
        }
        false
    }

    /// True when the hold whose hash is `hold` was given back on the board (and not yet
    /// unmarked: taken over, or its release written into the database).
    pub(crate) fn was_handed_back(&self, hold: u64) -> bool {
        self.layout().handed.iter().any(|slot| slot.hold.load(Ordering::Acquire) == hold)
    }

    /// Takes the hand-back of `hold` off the board. True when it was there: nobody had taken it
    /// off yet.
    pub(crate) fn unmark_handed_back(&self, hold: u64) -> bool {
        self.layout()
            .handed
            .iter()
            .any(|slot| slot.hold.compare_exchange(hold, 0, Ordering::AcqRel, Ordering::Acquire).is_ok())
    }
}

/// The hash by which a hold given back is named on the board: of its key, holder, number and
/// boot, the same in every process (FNV-1a); never 0, never with [`CLAIMING`]'s bit.
pub(crate) fn hold_hash(key: &str, holder_id: &str, hold: u64, boot: &str) -> u64 {
    let parts: [&[u8]; 4] = [key.as_bytes(), holder_id.as_bytes(), &hold.to_le_bytes(), boot.as_bytes()];
    // A separator (no UTF-8 byte) after each part, so that ("ab", "c") and ("a", "bc") differ.
    let hash = parts.iter().fold(FNV_OFFSET, |hash, part| fnv1a(hash, part.iter().chain(&[0xff])));
    (hash & !CLAIMING).max(1)
}

/// A waiting acquisition's notice on the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaseNotice {
    slot: usize,
    key: u64,
    since: u64,
}

/// The hash by which lease waiters name their key on the board: the same in every process
/// (FNV-1a), never 0.
pub(crate) fn key_hash(key: &str) -> u64 {
    fnv1a(FNV_OFFSET, key.as_bytes()).max(1)
}

/// FNV-1a's starting value.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// `hash` continued over `bytes` by FNV-1a: no seed, so every process computes the same.
fn fnv1a<'a>(hash: u64, bytes: impl IntoIterator<Item = &'a u8>) -> u64 {
    bytes.into_iter().fold(hash, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// A lease notice (whose `since` is `since`) that its waiter stopped refreshing: for
/// [`LEASE_STALE`], or for two refreshes if its process is gone (killed while it waited). A
/// claim that never finished is stale once its process is gone.
fn lease_notice_is_stale(slot: &LeaseSlot, since: u64, now: u64) -> bool {
    if since & CLAIMING != 0 {
        return liveness::is_gone((since & !CLAIMING) as u32);
    }
    let quiet = now.saturating_sub(slot.alive.load(Ordering::Acquire));
    quiet > LEASE_STALE.as_nanos() as u64
        || (quiet > 2 * LEASE_REFRESH.as_nanos() as u64
            && liveness::is_gone(slot.pid.load(Ordering::Relaxed)))
}

/// Sleeps until `word` (in the board's mapping) moves on from `seen`, or `timeout`: on a futex
/// with the system's wake-ups, else looking at it every `tick`.
fn sleep_on(word: &AtomicU32, seen: u32, timeout: Duration, tick: Duration) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if wakeups::native() {
        let timeout = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: waits on a 4-byte aligned word of a live shared mapping; a shared (not
        // private) futex, so that other processes' wakes reach it.
        unsafe { libc::syscall(libc::SYS_futex, word as *const AtomicU32, libc::FUTEX_WAIT, seen, &timeout) };
        return;
    }
    // The portable wake-ups: look at the word between short sleeps. (Apple platforms could
    // wait with os_sync_wait_on_address(OS_SYNC_WAIT_ON_ADDRESS_SHARED) once that is built and
    // tested there.)
    let deadline = Instant::now() + timeout;
    while word.load(Ordering::Acquire) == seen {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(tick));
    }
}

/// Bumps `word` and wakes one sleeper on it.
fn wake_one(word: &AtomicU32) {
    word.fetch_add(1, Ordering::AcqRel);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if wakeups::native() {
        // SAFETY: wakes a sleeper on a word of a live shared mapping.
        unsafe { libc::syscall(libc::SYS_futex, word as *const AtomicU32, libc::FUTEX_WAKE, 1) };
    }
}

impl Drop for WriterBoard {
    fn drop(&mut self) {
        // Unguarded first: once unmapped, the addresses may be mapped again by someone else.
        drop(self.guard.take());
        // SAFETY: unmaps the mapping made in `open`, which nothing uses any more.
        unsafe { libc::munmap(self.layout as *mut libc::c_void, SIZE) };
    }
}

pub(crate) fn is_stale(slot: &Slot, now: u64) -> bool {
    now.saturating_sub(slot.alive.load(Ordering::Acquire)) > STALE.as_nanos() as u64
}

/// A process's registration as an observer of the database (see
/// [`WriterBoard::register_observer`]); withdrawn when dropped.
pub(crate) struct ObserverRegistration {
    board: Arc<WriterBoard>,
    slot: Option<usize>,
}

impl Drop for ObserverRegistration {
    fn drop(&mut self) {
        let Some(slot) = self.slot else { return };
        let mut here = self.board.observers_here.locked();
        let count = here.entry(slot).or_default();
        *count = count.saturating_sub(1);
        if *count == 0 {
            here.remove(&slot);
            let me = std::process::id();
            let _ = self.board.layout().observers[slot].compare_exchange(
                me,
                0,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }
}

/// The board file of the database at `database`.
pub(crate) fn path_of(database: &Path) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push("-liblease");
    PathBuf::from(path)
}

/// Nanoseconds on the boot clock, which every process of the machine shares.
pub(crate) fn now_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec.
    unsafe { libc::clock_gettime(crate::clock::LEASE_CLOCK, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> (tempfile::TempDir, WriterBoard, WriterBoard) {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("app.db");
        std::fs::write(&database, b"").unwrap();
        // Two mappings of one file, as two processes have.
        let (a, b) = (WriterBoard::open(&database).unwrap(), WriterBoard::open(&database).unwrap());
        (dir, a, b)
    }

    #[test]
    fn the_oldest_notice_has_the_turn_and_others_see_it_waiting() {
        let (_dir, a, b) = board();
        let first = a.post(waiting_since()).unwrap();
        std::thread::sleep(Duration::from_millis(1));
        let second = b.post(waiting_since()).unwrap();
        assert!(a.has_turn(first) && !b.has_turn(second));
        assert!(a.others_waiting(Some(first)) && b.others_waiting(Some(second)));
        a.withdraw(first);
        assert!(b.has_turn(second));
        assert!(!b.others_waiting(Some(second)));
    }

    #[test]
    fn a_stale_notice_is_ignored_and_its_slot_reused() {
        let (_dir, a, b) = board();
        let abandoned = a.post(waiting_since()).unwrap();
        std::thread::sleep(Duration::from_millis(1));
        let waiting = b.post(waiting_since()).unwrap();
        assert!(!b.has_turn(waiting));
        std::thread::sleep(STALE + Duration::from_millis(20));
        b.refresh(waiting);
        assert!(b.has_turn(waiting), "a writer that stopped refreshing does not block the board");
        let reused = b.post(waiting_since()).unwrap();
        assert_eq!(reused.slot, abandoned.slot);
    }

    #[test]
    fn a_wake_reaches_a_sleeper_of_another_mapping() {
        let (_dir, a, b) = board();
        let notice = b.post(waiting_since()).unwrap();
        let seen = b.wake_word();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                a.wake_all();
            });
            b.sleep(seen, Duration::from_secs(30));
        });
        assert_ne!(b.wake_word(), seen, "woken by the wake, not the timeout");
        b.withdraw(notice);
    }

    #[test]
    fn the_oldest_lease_waiter_of_another_process_has_the_turn_and_its_withdrawal_wakes_the_next() {
        let (_dir, a, b) = board();
        let key = key_hash("sync");
        let first = a.post_lease_waiter(key, waiting_since()).unwrap();
        std::thread::sleep(Duration::from_millis(1));
        let second = b.post_lease_waiter(key, waiting_since()).unwrap();
        let other_key = b.post_lease_waiter(key_hash("other"), waiting_since()).unwrap();
        // Both mappings are this process's: seen from it, its own waiters do not queue.
        assert!(a.has_lease_turn(key, None) && b.has_lease_turn(key, Some(second)));
        // As another process sees them: the oldest notice of a key is ahead of everyone else.
        let other_process =
            |slot: LeaseNotice| b.layout().leases[slot.slot].pid.store(u32::MAX, Ordering::Relaxed);
        other_process(first);
        assert!(!b.has_lease_turn(key, Some(second)), "the first waiter is ahead");
        assert!(!b.has_lease_turn(key, None), "and ahead of one that has not waited");
        assert!(b.has_lease_turn(key_hash("other"), Some(other_key)), "keys queue apart");
        let seen = b.lease_wake_word(second);
        a.withdraw_lease_waiter(first);
        assert!(b.has_lease_turn(key, Some(second)));
        assert_ne!(b.lease_wake_word(second), seen, "the withdrawal woke the next in line");
        assert!(b.sleep_as_lease_waiter(second, seen, Duration::from_secs(30), wakeups::FIRST_TICK));
        b.withdraw_lease_waiter(second);
        b.withdraw_lease_waiter(other_key);
    }

    #[test]
    fn a_lease_waiter_that_stops_refreshing_is_passed_over() {
        let (_dir, a, b) = board();
        let key = key_hash("sync");
        let stopped = a.post_lease_waiter(key, waiting_since()).unwrap();
        a.layout().leases[stopped.slot].pid.store(std::process::id() + 1_000_000, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(1));
        let waiting = b.post_lease_waiter(key, waiting_since()).unwrap();
        assert!(!b.has_lease_turn(key, Some(waiting)));
        // Its process is gone (no such pid): passed over after two refreshes' time.
        std::thread::sleep(2 * LEASE_REFRESH + Duration::from_millis(20));
        assert!(b.has_lease_turn(key, Some(waiting)));
        let reused = b.post_lease_waiter(key, waiting_since()).unwrap();
        assert_eq!(reused.slot, stopped.slot, "its slot is free again");
    }

    #[test]
    fn keys_hash_alike_in_every_process() {
        // FNV-1a, which any build computes the same: no per-process seed.
        assert_eq!(key_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(key_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(key_hash("sync"), key_hash("sync2"));
    }

    #[test]
    fn a_hold_handed_back_is_seen_from_every_mapping_until_taken_off() {
        let (_dir, a, b) = board();
        let hold = hold_hash("sync", "holder", 7, "boot");
        assert!(!b.was_handed_back(hold));
        assert!(a.hand_back(hold));
        assert!(b.was_handed_back(hold));
        assert!(!b.was_handed_back(hold_hash("sync", "holder", 8, "boot")), "the holder's next hold");
        assert!(b.unmark_handed_back(hold));
        assert!(!a.unmark_handed_back(hold), "taken off once");
        assert!(!a.was_handed_back(hold));
        // A full board refuses; a hand-back past its age gives up its slot.
        for number in 0..HANDED_SLOTS as u64 {
            assert!(a.hand_back(hold_hash("sync", "holder", 100 + number, "boot")));
        }
        assert!(!a.hand_back(hold), "every slot is taken");
        let old = now_ns() - HANDED_STALE.as_nanos() as u64 - 1;
        a.layout().handed[3].at.store(old, Ordering::Release);
        assert!(a.hand_back(hold));
        assert!(b.was_handed_back(hold) && !b.was_handed_back(hold_hash("sync", "holder", 103, "boot")));
    }

    #[test]
    fn holds_hash_alike_in_every_process_and_apart_in_each_part() {
        // FNV-1a over the parts, each followed by 0xff (no UTF-8 byte), without the top bit.
        assert_eq!(hold_hash("sync", "holder", 7, "boot"), 0x4b40_e6ab_0892_4417);
        let hashes = [
            hold_hash("ab", "c", 1, "boot"),
            hold_hash("a", "bc", 1, "boot"),
            hold_hash("a", "bc", 2, "boot"),
            hold_hash("a", "bc", 2, "boot2"),
        ];
        for (index, hash) in hashes.iter().enumerate() {
            assert!(hash & CLAIMING == 0 && *hash != 0);
            assert!(!hashes[index + 1..].contains(hash), "{hashes:x?}");
        }
    }

    #[test]
    fn a_foreign_file_is_not_used_nor_changed() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("app.db");
        let board = dir.path().join("app.db-liblease");
        for foreign in [vec![0xee; SIZE], vec![1, 2, 3, 4, 5]] {
            std::fs::write(&board, &foreign).unwrap();
            assert!(WriterBoard::open(&database).is_none());
            assert_eq!(std::fs::read(&board).unwrap(), foreign);
        }
    }
}
