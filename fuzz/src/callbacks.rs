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
}

// SAFETY: a LeaseGuard may be used and released on any thread (the header).
unsafe impl Send for GuardInfo {}
unsafe impl Sync for GuardInfo {}

impl GuardInfo {
    /// Reads a new guard, and checks that it is dirty when nothing can have acquired the lease
    /// before it (see [`acquiring`]).
    pub fn new(ptr: *mut LeaseGuard, file: FileTag, key: &[u8]) -> GuardInfo {
        let generation = contract::quiet("lease_guard_generation", || ffi::lease_guard_generation(ptr));
        let dirty = contract::quiet("lease_guard_is_dirty", || ffi::lease_guard_is_dirty(ptr));
        if !dirty && locked(&ACQUISITIONS).get(&(file, key.to_vec())).copied().unwrap_or(0) < 2 {
            violation(format!(
                "the first acquisition of {:?} in {file:?} is not dirty",
                String::from_utf8_lossy(key)
            ));
        }
        GuardInfo { ptr, file, key: key.to_vec(), generation, dirty, lost: AtomicBool::new(false) }
    }
}

/// How many acquisitions of each lease (file and key) this input has started. A guard that is
/// not dirty joined a hold that an earlier acquisition took, so when it comes the count, which
/// includes its own, is at least 2. Counted before each acquisition starts, so that a racing
/// one is always counted already.
static ACQUISITIONS: Mutex<BTreeMap<(FileTag, Vec<u8>), u32>> = Mutex::new(BTreeMap::new());

/// Counts an acquisition that is about to start.
pub fn acquiring(file: FileTag, key: &[u8]) {
    *locked(&ACQUISITIONS).entry((file, key.to_vec())).or_default() += 1;
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
}

impl AsyncRecord {
    pub fn new(file: FileTag, key: &[u8], keep: bool) -> AsyncRecord {
        AsyncRecord {
            lease: Some((file, key.to_vec())),
            started: AtomicU32::new(0),
            calls: AtomicU32::new(0),
            keep,
            kept: Mutex::new(Vec::new()),
        }
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
};

/// Starts an input afresh: no acquisitions counted, none started with a NULL context.
pub fn forget_acquisitions() {
    locked(&ACQUISITIONS).clear();
    NULL_CONTEXT.started.store(0, Ordering::SeqCst);
    NULL_CONTEXT.calls.store(0, Ordering::SeqCst);
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
    let calls = record.calls.fetch_add(1, Ordering::SeqCst) + 1;
    if calls > record.started.load(Ordering::SeqCst) {
        violation(format!("an acquisition callback ran {calls} times for fewer acquisitions: {record:?}"));
    }
    let message = contract::last_error();
    let allowed = [
        LeaseStatus::LEASE_OK,
        LeaseStatus::LEASE_TIMEOUT,
        LeaseStatus::LEASE_CANCELLED,
        LeaseStatus::LEASE_DATABASE,
    ];
    if !allowed.contains(&status) {
        violation(format!("an acquisition called back with {status:?}: {message}"));
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
    let info = record.lease.as_ref().map(|(file, key)| GuardInfo::new(guard, *file, key));
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
