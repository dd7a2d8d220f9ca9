//! The callbacks of asynchronous acquisitions and lost leases, and what they record: every call
//! is checked against the header (which thread, which arguments, how many times), and what it
//! saw stays with its context until the input ends.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use lease::ffi::{self, LeaseGuard, LeaseStatus};

use crate::contract::{self, violation};
use crate::files::FileTag;
use crate::locked;
use crate::suspension::{self, Mark};

/// The name of liblease's thread, where these callbacks must run.
const LIBRARY_THREAD: &str = "liblease";

/// A guard and what is known of it: where its lease is, and what it said when it was new.
#[derive(Debug)]
pub struct GuardInfo {
    pub ptr: *mut LeaseGuard,
    pub file: FileTag,
    pub key: Vec<u8>,
    pub generation: u64,
    pub dirty: bool,
    /// Once lease_guard_check said LEASE_LOST, it must keep saying so.
    pub lost: AtomicBool,
    /// Before its acquisition began: a suspension since may have taken its lease.
    pub before: Mark,
    /// Once it was made: a whole suspension since surely took its lease.
    pub after: Mark,
}

// SAFETY: a LeaseGuard may be used and released on any thread (the header).
unsafe impl Send for GuardInfo {}
unsafe impl Sync for GuardInfo {}

impl GuardInfo {
    /// Reads a new guard, made by an acquisition that began as `began` says, and checks that it
    /// is dirty when nothing can have acquired the lease before it (see [`Acquisitions`]).
    pub fn new(ptr: *mut LeaseGuard, file: FileTag, key: &[u8], began: &Began) -> GuardInfo {
        let after = suspension::mark();
        let generation = contract::quiet("lease_guard_generation", || ffi::lease_guard_generation(ptr));
        let dirty = contract::quiet("lease_guard_is_dirty", || ffi::lease_guard_is_dirty(ptr));
        let since = locked(&ACQUISITIONS)
            .leases
            .get(&(file, key.to_vec()))
            .map_or(0, |tally| tally.started.saturating_sub(began.given_up));
        if !dirty && since < 2 {
            violation(format!(
                "the first acquisition of {:?} in {file:?} (the first since a suspension gave the \
                 lease up, if one did) is not dirty",
                String::from_utf8_lossy(key)
            ));
        }
        GuardInfo {
            ptr,
            file,
            key: key.to_vec(),
            generation,
            dirty,
            lost: AtomicBool::new(false),
            before: began.mark,
            after,
        }
    }

    /// True when lease_guard_check must say LEASE_LOST: it said so before, or a suspension has
    /// given up every lease since the guard was made.
    pub fn surely_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst) || self.after.suspension_completed()
    }
}

/// The acquisitions of each lease (file and key) in this input, for the check that a guard that
/// is not dirty joined a hold an earlier acquisition took: when it comes, the acquisitions that
/// may have taken that hold, its own included, are at least 2. Those that had ended when a
/// lease_suspend returned are not among them: that suspension gave up every hold they took
/// (and the first acquisition after it is dirty). Counted before each acquisition starts, so that
/// a racing one is always counted already; ended once the guard it made is known, or it failed.
struct Acquisitions {
    leases: BTreeMap<(FileTag, Vec<u8>), Tally>,
    /// Asynchronous acquisitions running with a NULL context, whose callback cannot tell their
    /// lease: each may be of any lease.
    running_unnamed: u32,
}

#[derive(Default)]
struct Tally {
    started: u32,
    running: u32,
    /// How many of the started had ended when the last lease_suspend returned.
    given_up: u32,
}

static ACQUISITIONS: Mutex<Acquisitions> =
    Mutex::new(Acquisitions { leases: BTreeMap::new(), running_unnamed: 0 });

/// How an acquisition began: what the suspension was, and how many acquisitions of its lease
/// no hold it may join can come from.
#[derive(Debug, Clone, Copy)]
pub struct Began {
    pub mark: Mark,
    given_up: u32,
}

/// Counts an acquisition that is about to start; `unnamed` for an asynchronous one with a NULL
/// context.
pub fn acquiring(file: FileTag, key: &[u8], unnamed: bool) -> Began {
    let mut acquisitions = locked(&ACQUISITIONS);
    if unnamed {
        acquisitions.running_unnamed += 1;
    }
    let tally = acquisitions.leases.entry((file, key.to_vec())).or_default();
    tally.started += 1;
    if !unnamed {
        tally.running += 1;
    }
    Began { mark: suspension::mark(), given_up: tally.given_up }
}

/// Ends an acquisition counted by [`acquiring`]: `None` for an unnamed one.
pub fn acquired(lease: Option<(FileTag, &[u8])>) {
    let mut acquisitions = locked(&ACQUISITIONS);
    match lease {
        None => acquisitions.running_unnamed = acquisitions.running_unnamed.saturating_sub(1),
        Some((file, key)) => {
            if let Some(tally) = acquisitions.leases.get_mut(&(file, key.to_vec())) {
                tally.running = tally.running.saturating_sub(1);
            }
        }
    }
}

/// Records that a lease_suspend returned: every acquisition that had ended then has had its
/// hold given up.
pub fn holds_given_up() {
    let mut acquisitions = locked(&ACQUISITIONS);
    let unnamed = acquisitions.running_unnamed;
    for tally in acquisitions.leases.values_mut() {
        let ended = tally.started.saturating_sub(tally.running + unnamed);
        tally.given_up = tally.given_up.max(ended);
    }
}

/// The context of asynchronous acquisitions: how many were started with it, how many called
/// back, and the guards kept for the fuzzer to take.
#[derive(Debug)]
pub struct AsyncRecord {
    /// The lock's file and key; `None` for [`NULL_CONTEXT`], shared by every lock.
    pub lease: Option<(FileTag, Vec<u8>)>,
    /// Counted before lease_lock_acquire_async, and back down when it fails.
    pub started: AtomicU32,
    pub calls: AtomicU32,
    /// Keep guards for the fuzzer rather than release them in the callback.
    pub keep: bool,
    pub kept: Mutex<Vec<GuardInfo>>,
    /// How the oldest acquisition that has not called back began (a callback cannot tell which
    /// of them it ends); what it says holds for them all.
    oldest: Mutex<Option<Began>>,
}

impl AsyncRecord {
    pub fn new(file: FileTag, key: &[u8], keep: bool) -> AsyncRecord {
        AsyncRecord {
            lease: Some((file, key.to_vec())),
            started: AtomicU32::new(0),
            calls: AtomicU32::new(0),
            keep,
            kept: Mutex::new(Vec::new()),
            oldest: Mutex::new(None),
        }
    }

    /// Counts an acquisition of `file` and `key` with this context that is about to start. The
    /// callback may run before lease_lock_acquire_async returns.
    pub fn starting(&self, file: FileTag, key: &[u8]) {
        let mut oldest = locked(&self.oldest);
        let began = acquiring(file, key, self.lease.is_none());
        if oldest.is_none() || self.all_called_back() {
            *oldest = Some(began);
        }
        self.started.fetch_add(1, Ordering::SeqCst);
    }

    /// Takes back [`starting`](Self::starting) when lease_lock_acquire_async failed.
    pub fn not_started(&self, file: FileTag, key: &[u8]) {
        self.started.fetch_sub(1, Ordering::SeqCst);
        acquired(self.lease.as_ref().map(|_| (file, key)));
    }

    /// The context to pass for it: NULL for [`NULL_CONTEXT`].
    pub fn context(&self) -> *mut c_void {
        if std::ptr::eq(self, &NULL_CONTEXT) {
            return std::ptr::null_mut();
        }
        std::ptr::from_ref(self).cast_mut().cast()
    }

    pub fn all_called_back(&self) -> bool {
        self.calls.load(Ordering::SeqCst) == self.started.load(Ordering::SeqCst)
    }
}

/// The record of acquisitions started with a NULL context, whatever their lock: it releases
/// their guards at once. It lives across inputs; each input starts it afresh.
pub static NULL_CONTEXT: AsyncRecord = AsyncRecord {
    lease: None,
    started: AtomicU32::new(0),
    calls: AtomicU32::new(0),
    keep: false,
    kept: Mutex::new(Vec::new()),
    oldest: Mutex::new(None),
};

/// Starts an input afresh: no acquisitions counted, none started with a NULL context.
pub fn forget_acquisitions() {
    let mut acquisitions = locked(&ACQUISITIONS);
    acquisitions.leases.clear();
    acquisitions.running_unnamed = 0;
    NULL_CONTEXT.started.store(0, Ordering::SeqCst);
    NULL_CONTEXT.calls.store(0, Ordering::SeqCst);
    *locked(&NULL_CONTEXT.oldest) = None;
}

/// The asynchronous acquisition callback (LeaseAcquireCallback).
pub unsafe extern "C" fn on_acquired(context: *mut c_void, status: LeaseStatus, guard: *mut LeaseGuard) {
    // Failures on this thread (this acquisition's, say) set its last error behind our back.
    contract::adopt_last_error();
    on_library_thread("an acquisition callback");
    let record = match context.is_null() {
        true => &NULL_CONTEXT,
        // SAFETY: the context is an `AsyncRecord` that the input keeps until every callback ran.
        false => unsafe { &*context.cast::<AsyncRecord>() },
    };
    on_acquired_record(record, status, guard)
}

fn on_acquired_record(record: &AsyncRecord, status: LeaseStatus, guard: *mut LeaseGuard) {
    let began = *locked(&record.oldest);
    let Some(began) = began else {
        return violation(format!("an acquisition called back, but none was started: {record:?}"));
    };
    on_acquired_began(record, status, guard, &began);
    // Ended only now that its guard is known: a suspension from now on gives its hold up.
    acquired(record.lease.as_ref().map(|(file, key)| (*file, &key[..])));
    // Counted last: once every acquisition called back, the end of the input takes the guards
    // kept.
    record.calls.fetch_add(1, Ordering::SeqCst);
}

fn on_acquired_began(record: &AsyncRecord, status: LeaseStatus, guard: *mut LeaseGuard, began: &Began) {
    let calls = record.calls.load(Ordering::SeqCst) + 1;
    if calls > record.started.load(Ordering::SeqCst) {
        violation(format!("an acquisition callback ran {calls} times for fewer acquisitions: {record:?}"));
    }
    let message = contract::last_error();
    use LeaseStatus::{LEASE_CANCELLED, LEASE_DATABASE, LEASE_OK, LEASE_SUSPENDED, LEASE_TIMEOUT};
    let allowed = began.mark.allowed(
        &[LEASE_OK, LEASE_TIMEOUT, LEASE_CANCELLED, LEASE_DATABASE],
        &[LEASE_SUSPENDED, LEASE_CANCELLED],
    );
    if !allowed.contains(&status) {
        violation(format!("an acquisition called back with {status:?}, not one of {allowed:?}: {message}"));
    }
    match (status, guard.is_null()) {
        (LeaseStatus::LEASE_OK, false) => {}
        (LeaseStatus::LEASE_OK, true) => {
            violation("an acquisition called back LEASE_OK with no guard".into())
        }
        (_, false) => violation(format!("an acquisition called back {status:?} with a guard")),
        (_, true) => {
            if !message.contains("lease_lock_acquire_async") {
                violation(format!("a failed acquisition's message does not name it: {message:?}"));
            }
            return;
        }
    }
    let check =
        contract::status("lease_guard_check", &[LeaseStatus::LEASE_OK, LeaseStatus::LEASE_LOST], || {
            ffi::lease_guard_check(guard)
        });
    let info = record.lease.as_ref().map(|(file, key)| GuardInfo::new(guard, *file, key, began));
    match info {
        Some(info) if record.keep => {
            info.lost.store(check == LeaseStatus::LEASE_LOST, Ordering::SeqCst);
            locked(&record.kept).push(info);
        }
        _ => contract::quiet("lease_guard_release", || ffi::lease_guard_release(guard)),
    }
}

/// The context of a lost callback: the lock's key, how often it was called and destroyed.
#[derive(Debug)]
pub struct LostRecord {
    pub key: Vec<u8>,
    pub calls: AtomicU32,
    pub destroyed: AtomicU32,
    /// Given with a destroy function, to a call that returned LEASE_OK with a callback: then, and
    /// only then, destroy must run exactly once.
    pub owns_context: AtomicBool,
    /// Replaced or removed, or its lock freed: the callback must not run any more.
    pub retired: AtomicBool,
}

impl LostRecord {
    pub fn new(key: &[u8]) -> LostRecord {
        LostRecord {
            key: key.to_vec(),
            calls: AtomicU32::new(0),
            destroyed: AtomicU32::new(0),
            owns_context: AtomicBool::new(false),
            retired: AtomicBool::new(false),
        }
    }

    pub fn context(self: &Arc<Self>) -> *mut c_void {
        Arc::as_ptr(self).cast_mut().cast()
    }

    /// Checks that destroy ran exactly once if liblease took the context, and never otherwise.
    pub fn check_destroyed(&self, when: &str) {
        let expected = u32::from(self.owns_context.load(Ordering::SeqCst));
        let destroyed = self.destroyed.load(Ordering::SeqCst);
        if destroyed != expected {
            violation(format!("{when}, destroy ran {destroyed} times, not {expected}: {self:?}"));
        }
    }
}

/// The lost callback (LeaseLostCallback).
pub unsafe extern "C" fn on_lost(context: *mut c_void, key: *const c_char) {
    on_library_thread("a lost callback");
    // SAFETY: the fuzzer passes a `LostRecord` that it keeps until the input ends.
    let record = unsafe { &*context.cast::<LostRecord>() };
    record.calls.fetch_add(1, Ordering::SeqCst);
    if record.retired.load(Ordering::SeqCst) || record.destroyed.load(Ordering::SeqCst) > 0 {
        violation(format!("a lost callback ran after it was replaced, removed or destroyed: {record:?}"));
    }
    if key.is_null() {
        return violation("a lost callback got a NULL key".into());
    }
    // SAFETY: the header: key is a C string valid during the call.
    let key = unsafe { CStr::from_ptr(key) }.to_bytes();
    if key != record.key {
        violation(format!("a lost callback got the key {key:?}, not its lock's: {record:?}"));
    }
}

/// The destroy function of a lost callback's context (LeaseDestroyCallback).
pub unsafe extern "C" fn on_destroy(context: *mut c_void) {
    // SAFETY: as for `on_lost`.
    let record = unsafe { &*context.cast::<LostRecord>() };
    if record.destroyed.fetch_add(1, Ordering::SeqCst) > 0 {
        violation(format!("destroy ran twice: {record:?}"));
    }
}

fn on_library_thread(what: &str) {
    let thread = std::thread::current();
    if thread.name() != Some(LIBRARY_THREAD) {
        violation(format!("{what} ran on thread {:?}, not {LIBRARY_THREAD:?}", thread.name()));
    }
}
