//! The C face of a lock: `LeaseLock`, its options and its callbacks.

use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::context::{Context, LeaseDestroyCallback, OwnedContext};
use super::guard::LeaseGuard;
use super::handle::{self, Boxed, Castable, Out};
use super::panic::{catch_status, catch_value};
use super::status::{self, LeaseStatus};
use super::store::LeaseStore;
use crate::sync::MutexExt;
use crate::{Error, Lock, LockOptions, PendingAcquire, Result};

/// A named lease in a store. Opaque; made by lease_lock_new, freed by lease_lock_free.
/// Thread-safe.
pub struct LeaseLock {
    _private: [u8; 0],
}

impl Castable for LeaseLock {
    type Ownership = Boxed;
    type RustType = LockHandle;
}

/// What a `LeaseLock` points at: the lock, and its asynchronous acquisitions under way, so that
/// lease_lock_cancel_acquire can find them by their context.
pub(crate) struct LockHandle {
    lock: Lock,
    pending: Arc<Mutex<Vec<Pending>>>,
    next_id: AtomicU64,
}

struct Pending {
    id: u64,
    /// The context's address, which names the acquisition to lease_lock_cancel_acquire.
    context: usize,
    acquisition: PendingAcquire,
}

impl LockHandle {
    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        self.pending.locked()
    }
}

/// The timing of a lock, in milliseconds: give it to lease_lock_new. Set it up with
/// lease_lock_options_init, which fills in the defaults, then change what you need.
///
/// The struct may grow in later versions: size says how much of it the caller's header knew
/// (lease_lock_options_init sets it to the size it was given, sizeof(LeaseLockOptions)). A
/// library newer than the caller's header uses the defaults for the fields the caller did not
/// know; one older than the caller's header accepts fields it does not know only when they are
/// zero, and otherwise refuses the options (LEASE_INVALID_ARGUMENT), rather than ignore a
/// setting the caller asked for.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseLockOptions {
    /// The size of the struct as the caller knows it, in bytes; set by lease_lock_options_init.
    pub size: u32,
    /// How long a lease lasts without renewal: the longest another process waits for it after
    /// this one crashed, was killed or was suspended while holding it. Above 0, at most one day.
    pub lease_ms: u32,
    /// How often the library's thread renews a held lease. Above 0, and at most half of
    /// lease_ms, so that a renewal delayed by a busy database still succeeds before the lease
    /// runs out.
    pub renew_every_ms: u32,
    /// The longest pause between two attempts of a waiting acquisition; above 0. A waiting
    /// acquisition is woken when the lease may have changed hands: a liblease process wrote the
    /// database (a release is a write), or the holder's process ended. This pause bounds how late
    /// it notices what nothing announces, such as a write by a program that does not use liblease.
    pub max_backoff_ms: u32,
}

/// The size of the first LeaseLockOptions (liblease 0.2): the least a caller may give.
const OPTIONS_V1_SIZE: usize = 16;

impl From<LockOptions> for LeaseLockOptions {
    fn from(options: LockOptions) -> LeaseLockOptions {
        let ms = |duration: Duration| u32::try_from(duration.as_millis()).unwrap_or(u32::MAX);
        LeaseLockOptions {
            size: size_of::<LeaseLockOptions>() as u32,
            lease_ms: ms(options.lease),
            renew_every_ms: ms(options.renew_every),
            max_backoff_ms: ms(options.max_backoff),
        }
    }
}

/// Reads the caller's options: as many fields as its `size` covers, the defaults for the rest.
///
/// # Safety
/// `options` points at `options.size` readable bytes.
unsafe fn read_options(options: &LeaseLockOptions) -> Result<LockOptions> {
    let size = options.size as usize;
    let known = size_of::<LeaseLockOptions>();
    if size < OPTIONS_V1_SIZE {
        return Err(Error::InvalidArgument(format!(
            "options.size is {size}, less than any LeaseLockOptions; set it up with \
             lease_lock_options_init"
        )));
    }
    if size > known {
        // SAFETY: the caller's header says the struct has `size` bytes.
        let tail = unsafe {
            std::slice::from_raw_parts(std::ptr::from_ref(options).cast::<u8>().add(known), size - known)
        };
        if tail.iter().any(|&byte| byte != 0) {
            return Err(Error::InvalidArgument(format!(
                "options sets fields that this liblease ({}) does not know; it knows the first {known} \
                 bytes of LeaseLockOptions, and the caller's header {size}",
                env!("CARGO_PKG_VERSION")
            )));
        }
    }
    // Every field of this version lies within the first version's size.
    let ms = |ms: u32| Duration::from_millis(ms.into());
    Ok(LockOptions {
        lease: ms(options.lease_ms),
        renew_every: ms(options.renew_every_ms),
        max_backoff: ms(options.max_backoff_ms),
    })
}

/// Called once when an asynchronous acquisition ends, on the library's thread ("liblease").
///
/// On success status is LEASE_OK and guard is a new guard that the callee owns and must release
/// with lease_guard_release (at once, or later from any thread). Otherwise guard is NULL, status
/// says why (LEASE_TIMEOUT, LEASE_SUSPENDED, LEASE_CANCELLED, ...) and lease_last_error_message(), called in the
/// callback, gives the message. context is the pointer given to lease_lock_acquire_async.
pub type LeaseAcquireCallback =
    Option<unsafe extern "C" fn(context: *mut c_void, status: LeaseStatus, guard: *mut LeaseGuard)>;

/// Called once, on the library's thread ("liblease"), when a lease held through a lock is lost:
/// another process may be doing the work the lease protects. key is the lock's key, valid only
/// during the call. context is the pointer given to lease_lock_set_lost_callback.
pub type LeaseLostCallback = Option<unsafe extern "C" fn(context: *mut c_void, key: *const c_char)>;

/// Fills options with liblease's defaults: a 10000 ms lease renewed every 5000 ms, and waiters
/// that look again at least every 250 ms. A release, a suspension (lease_suspend) and, on
/// Linux and Android, a crash hand the lease over at once, so its length only bounds how long
/// others wait for a holder that stopped without warning; a renewal writes one page to the WAL,
/// so an idle held lease costs under 1 KiB/s; and 5 s of slack keep a lease safe even when
/// another connection holds the database's write lock for seconds. size is sizeof(LeaseLockOptions):
/// the function writes that many bytes at most and records the size in options->size. Any
/// thread.
///
/// Returns:
/// - LEASE_OK: options holds the defaults.
/// - LEASE_INVALID_ARGUMENT: options is NULL, or size is less than 16 (the size of the first
///   LeaseLockOptions, in liblease 0.2).
#[no_mangle]
pub extern "C" fn lease_lock_options_init(options: *mut LeaseLockOptions, size: usize) -> LeaseStatus {
    catch_status("lease_lock_options_init", || {
        if options.is_null() {
            return Err(Error::InvalidArgument("options is NULL".into()));
        }
        if size < OPTIONS_V1_SIZE || size > u32::MAX as usize {
            return Err(Error::InvalidArgument(format!("size is {size}; pass sizeof(LeaseLockOptions)")));
        }
        let defaults = LeaseLockOptions::from(LockOptions::DEFAULT);
        let known = size_of::<LeaseLockOptions>();
        // SAFETY: the C contract: options points at `size` writable bytes. The fields this
        // version knows are written as far as they fit; any bytes beyond them are zeroed.
        unsafe {
            let bytes = options.cast::<u8>();
            std::ptr::copy_nonoverlapping(std::ptr::from_ref(&defaults).cast::<u8>(), bytes, known.min(size));
            if size > known {
                std::ptr::write_bytes(bytes.add(known), 0, size - known);
            }
            (*options).size = size as u32;
        }
        Ok(())
    })
}

/// Makes a lock on key in store. Nothing is acquired yet, and nothing is written to the database.
///
/// key names the lease; every process that uses the same key in the same database file contends
/// for the same lease. label names this process (say "app" or "share-extension") beside the
/// lease, for diagnostics; processes are told apart by an id of their own, so two processes
/// with the same label still exclude each other. options is NULL for the defaults, or options
/// set up by lease_lock_options_init. The strings and options are copied.
///
/// On LEASE_OK, *out_lock is a new lock that the caller frees with lease_lock_free. The lock keeps
/// the store's connection alive, so the store may be freed first. Any thread.
///
/// Returns:
/// - LEASE_OK: *out_lock is set.
/// - LEASE_INVALID_ARGUMENT: store, key, label or out_lock is NULL; key is empty; key or label is
///   not UTF-8; options->size is too small, or options sets fields this version does not know
///   (see LeaseLockOptions); or an option is zero or contradictory (renew_every_ms above half of
///   lease_ms, lease_ms above a day).
/// - LEASE_MISUSE: store was opened before fork() and this is the child.
#[no_mangle]
pub extern "C" fn lease_lock_new(
    store: *mut LeaseStore,
    key: *const c_char,
    label: *const c_char,
    options: *const LeaseLockOptions,
    out_lock: *mut *mut LeaseLock,
) -> LeaseStatus {
    catch_status("lease_lock_new", || {
        // SAFETY: the C contract: out_lock is NULL or writable; store is NULL or a live store; key
        // and label are NULL or C strings; options is NULL or points at options->size bytes.
        let out = unsafe { Out::new(out_lock, "out_lock") }?;
        let store = unsafe { handle::borrow(store, "store") }?;
        let key = unsafe { handle::str_arg(key, "key") }?;
        let label = unsafe { handle::str_arg(label, "label") }?;
        let options = match unsafe { options.as_ref() } {
            None => LockOptions::DEFAULT,
            Some(options) => unsafe { read_options(options) }?,
        };
        out.set(LockHandle {
            lock: Lock::new(store, key, label, options)?,
            pending: Arc::default(),
            next_id: AtomicU64::new(0),
        });
        Ok(())
    })
}

/// Takes the lease if it is free, has run out, or is already held by this process; never waits.
///
/// While this process holds the lease (through any lock on the same key and database file, on
/// any thread) this succeeds at once with a guard that is not dirty. Otherwise it takes the lease
/// from the database in one atomic statement, and the library's thread starts renewing it.
///
/// On LEASE_OK, *out_guard is a new guard that the caller releases with lease_guard_release; the
/// lease is held until this process's last guard of it is released. Any thread.
///
/// Returns:
/// - LEASE_OK: the lease is held; *out_guard is set.
/// - LEASE_BUSY: another process holds the lease, or another connection holds the database's
///   write lock at this instant.
/// - LEASE_INVALID_ARGUMENT: lock or out_guard is NULL.
/// - LEASE_DATABASE: SQLite failed.
/// - LEASE_MISUSE: the lock was made before fork() and this is the child, or the library's
///   thread could not be started (the lease is then not kept).
/// - LEASE_SUSPENDED: the process is suspended (lease_suspend).
#[no_mangle]
pub extern "C" fn lease_lock_try_acquire(
    lock: *mut LeaseLock,
    out_guard: *mut *mut LeaseGuard,
) -> LeaseStatus {
    catch_status("lease_lock_try_acquire", || {
        // SAFETY: the C contract: out_guard is NULL or writable; lock is NULL or a live lock.
        let out = unsafe { Out::new(out_guard, "out_guard") }?;
        let lock = unsafe { handle::borrow(lock, "lock") }?;
        out.set(lock.lock.try_acquire()?);
        Ok(())
    })
}

/// Takes the lease like lease_lock_try_acquire, waiting up to timeout_ms milliseconds while
/// another process holds it. The calling thread sleeps until the lease may have changed hands:
/// the holder released it, its process ended, or its lease ran out (max_backoff_ms bounds how
/// late it notices what nothing announces). A timeout of 0 tries once.
///
/// Blocks the calling thread: do not call it from a callback (use lease_lock_acquire_async or
/// lease_lock_try_acquire there). On LEASE_OK, *out_guard is a new guard that the caller releases
/// with lease_guard_release. Any other thread.
///
/// Returns:
/// - LEASE_OK: the lease is held; *out_guard is set.
/// - LEASE_TIMEOUT: another process held the lease (or the database's write lock) throughout.
/// - LEASE_INVALID_ARGUMENT: lock or out_guard is NULL.
/// - LEASE_DATABASE: SQLite failed.
/// - LEASE_MISUSE: as for lease_lock_try_acquire.
/// - LEASE_SUSPENDED: the process is suspended (lease_suspend), before or during the wait (a
///   suspension ends the wait at once).
#[no_mangle]
pub extern "C" fn lease_lock_acquire(
    lock: *mut LeaseLock,
    timeout_ms: u32,
    out_guard: *mut *mut LeaseGuard,
) -> LeaseStatus {
    catch_status("lease_lock_acquire", || {
        // SAFETY: the C contract: out_guard is NULL or writable; lock is NULL or a live lock.
        let out = unsafe { Out::new(out_guard, "out_guard") }?;
        let lock = unsafe { handle::borrow(lock, "lock") }?;
        out.set(lock.lock.acquire(Duration::from_millis(timeout_ms.into()))?);
        Ok(())
    })
}

/// Starts taking the lease like lease_lock_acquire, but returns at once: callback is called
/// exactly once, on the library's thread ("liblease"), with the guard or the failure. See
/// LeaseAcquireCallback. No thread waits meanwhile; lease_lock_cancel_acquire ends the wait early.
///
/// context is passed to callback unchanged, and names this acquisition to
/// lease_lock_cancel_acquire; it may be NULL. The caller keeps whatever it points at valid until
/// the callback has run; since the callback runs exactly once (when this returns LEASE_OK), it
/// can free its context itself, and there is no destroy function. The lock may be freed before
/// that; the acquisition goes on. Any thread.
///
/// Returns:
/// - LEASE_OK: the acquisition started; callback will be called.
/// - LEASE_INVALID_ARGUMENT: lock or callback is NULL.
/// - LEASE_MISUSE: the lock was made before fork() and this is the child, or the library's
///   thread could not be started.
///
/// On any status but LEASE_OK, callback is never called.
#[no_mangle]
pub extern "C" fn lease_lock_acquire_async(
    lock: *mut LeaseLock,
    timeout_ms: u32,
    callback: LeaseAcquireCallback,
    context: *mut c_void,
) -> LeaseStatus {
    catch_status("lease_lock_acquire_async", || {
        // SAFETY: the C contract: lock is NULL or a live lock.
        let handle = unsafe { handle::borrow(lock, "lock") }?;
        let callback = callback.ok_or_else(|| Error::InvalidArgument("callback is NULL".into()))?;
        let id = handle.next_id.fetch_add(1, Ordering::Relaxed);
        let pending = handle.pending.clone();
        let name = context.addr();
        let context = Context::new(context);
        let done = move |result: crate::Result<crate::Guard>| {
            // Unlisted first: from now on, cancelling it does nothing.
            pending.locked().retain(|pending| pending.id != id);
            let (status, guard) = match result {
                Ok(guard) => (LeaseStatus::LEASE_OK, handle::into_handle::<LeaseGuard>(guard)),
                // Recorded on this thread, where the callback can read it.
                Err(error) => (status::failed("lease_lock_acquire_async", &error), std::ptr::null_mut()),
            };
            // SAFETY: the caller's callback, with its context, on the thread the contract names.
            unsafe { callback(context.get(), status, guard) }
        };
        // Held until the acquisition is listed, so that its end (on the library's thread) cannot
        // come before its listing and leave it listed for ever.
        let mut listed = handle.pending();
        let acquisition = handle.lock.acquire_async(Duration::from_millis(timeout_ms.into()), done)?;
        listed.push(Pending { id, context: name, acquisition });
        Ok(())
    })
}

/// Cancels the asynchronous acquisitions started through lock with this context (see
/// lease_lock_acquire_async) that are still waiting. Returns at once; each of their callbacks is
/// then called soon, on the library's thread, with LEASE_CANCELLED, unless the acquisition took
/// the lease (or failed) first, in which case its callback gets that outcome. Either way each
/// callback runs exactly once. Acquisitions that have ended, and contexts that name none, are
/// ignored. Any thread, callbacks included.
///
/// Returns:
/// - LEASE_OK: the matching acquisitions (if any) are being cancelled.
/// - LEASE_INVALID_ARGUMENT: lock is NULL.
/// - LEASE_MISUSE: the lock was made before fork() and this is the child.
#[no_mangle]
pub extern "C" fn lease_lock_cancel_acquire(lock: *mut LeaseLock, context: *mut c_void) -> LeaseStatus {
    catch_status("lease_lock_cancel_acquire", || {
        // SAFETY: the C contract: lock is NULL or a live lock.
        let handle = unsafe { handle::borrow(lock, "lock") }?;
        // In a forked child the list is the parent's, and its mutex may have been held by a
        // parent thread at the fork: do not touch it.
        handle.lock.ensure_usable()?;
        let name = context.addr();
        for pending in handle.pending().iter().filter(|pending| pending.context == name) {
            pending.acquisition.cancel()?;
        }
        Ok(())
    })
}

/// Sets the function called when a lease held through this lock is lost (see LeaseLostCallback),
/// replacing any previous one; a NULL callback removes it. The callback is called once per lost
/// hold, on the library's thread, for every lock through which a guard of that hold was taken.
///
/// context is passed to callback unchanged; it may be NULL. destroy, which may be NULL, is called
/// exactly once with context when the library no longer needs it (see LeaseDestroyCallback):
/// after this callback is replaced or removed, or the lock freed, once no call of it is running.
/// When this function (or lease_lock_free) returns, the previous callback is not running and
/// will not be called again, and its destroy has run; the one exception is a call made from
/// inside that very callback, which is allowed and returns at once (the previous destroy then
/// runs when the callback returns). With a NULL callback, context and destroy are not used. On
/// any status but LEASE_OK nothing changes and destroy is not called: context stays the
/// caller's. Any thread.
///
/// Returns:
/// - LEASE_OK: the callback is set (or removed).
/// - LEASE_INVALID_ARGUMENT: lock is NULL.
/// - LEASE_MISUSE: the lock was made before fork() and this is the child.
#[no_mangle]
pub extern "C" fn lease_lock_set_lost_callback(
    lock: *mut LeaseLock,
    callback: LeaseLostCallback,
    context: *mut c_void,
    destroy: LeaseDestroyCallback,
) -> LeaseStatus {
    catch_status("lease_lock_set_lost_callback", || {
        // SAFETY: the C contract: lock is NULL or a live lock.
        let lock = &unsafe { handle::borrow(lock, "lock") }?.lock;
        // Checked before the context is taken, so that a refusal leaves it the caller's.
        lock.ensure_usable()?;
        let callback = callback.map(|callback| -> Box<dyn Fn(&str) + Send + Sync> {
            let context = OwnedContext::new(context, destroy);
            Box::new(move |key: &str| {
                // A key came from C as a C string, so it has no NUL inside.
                let key = CString::new(key).unwrap_or_default();
                // SAFETY: the caller's callback, with its context, on the thread the contract names.
                unsafe { callback(context.get(), key.as_ptr()) }
            })
        });
        lock.set_lost_callback(callback)
    })
}

/// Frees a lock. Guards taken through it stay valid and keep their lease until released. Its
/// lost callback is removed first (see lease_lock_set_lost_callback: when this returns, the
/// callback is not running and will not run, and its destroy has run). NULL is a no-op. In a
/// forked child it frees the handle without calling the parent's destroy. Any thread, but no
/// other thread may be using this lock handle.
#[no_mangle]
pub extern "C" fn lease_lock_free(lock: *mut LeaseLock) {
    catch_value("lease_lock_free", (), || {
        // SAFETY: the C contract: lock is NULL or a live lock that the caller gives up.
        drop(unsafe { handle::take(lock) });
        Ok(())
    })
}
