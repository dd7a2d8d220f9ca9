//! The calls on stores, locks and guards, and what the header says of each.

use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use lease::ffi::{self, LeaseLockOptions, LeaseStatus};

use super::actor::Actor;
use super::handles::{free_lock, free_store, put, put_free, release_guard, Lock, Store};
use super::ops::{AsyncContext, CancelContext, Options, OptionsSize, Ref, Text};
use crate::callbacks::{self, AsyncRecord, GuardInfo, LostRecord, NULL_CONTEXT};
use crate::contract::{self, c_ptr, c_text, out_slot, violation, written};
use crate::files::{FileTag, Opens, PathArg};
use crate::locked;
use crate::suspension;

use LeaseStatus::{
    LEASE_BUSY as BUSY, LEASE_DATABASE as DATABASE, LEASE_INVALID_ARGUMENT as INVALID, LEASE_LOST as LOST,
    LEASE_OK as OK, LEASE_SUSPENDED as SUSPENDED, LEASE_TIMEOUT as TIMEOUT,
};

/// LeaseLockOptions as the fuzzer lays it out: the four fields, then bytes that a later version
/// might define.
const OPTIONS_WORDS: usize = 16;

/// What lease_lock_options_init leaves in the bytes it must not write.
const UNWRITTEN: u32 = 0xa5a5_a5a5;

/// lease_lock_options_init's defaults: the Rust API's, which the header promises it fills in.
pub(super) const DEFAULT_OPTIONS: [u32; 3] = [
    lease::LockOptions::DEFAULT.lease.as_millis() as u32,
    lease::LockOptions::DEFAULT.renew_every.as_millis() as u32,
    lease::LockOptions::DEFAULT.max_backoff.as_millis() as u32,
];

/// A context that names no acquisition, for lease_lock_cancel_acquire.
static NO_ACQUISITION: u8 = 0;

impl Actor<'_> {
    pub(super) fn store_open(&mut self, path: PathArg, null_out: bool, slot: u8) {
        let (path, opens) = self.input.files.c_path(path);
        let (usual, suspended) = self.open_statuses(opens, null_out);
        let mut out = out_slot();
        let out_ptr = if null_out { null_mut() } else { &mut out };
        let mark = suspension::mark();
        let status = contract::status_after(
            "lease_store_open",
            || ffi::lease_store_open(c_ptr(&path), out_ptr),
            || mark.allowed(usual, suspended),
        );
        if null_out {
            return;
        }
        match (written("lease_store_open", status, out), opens) {
            (Some(ptr), Opens::File(index)) => {
                free_store(put(&mut self.own.stores, slot, Store { ptr, file: FileTag::Database(index) }))
            }
            (Some(ptr), _) => contract::quiet("lease_store_free", || ffi::lease_store_free(ptr)),
            (None, _) => {}
        }
    }

    pub(super) fn store_open_memory(&mut self, null_out: bool, slot: u8) {
        let mut out = out_slot();
        let out_ptr = if null_out { null_mut() } else { &mut out };
        let allowed = if null_out { INVALID } else { OK };
        let status =
            contract::status("lease_store_open_memory", &[allowed], || ffi::lease_store_open_memory(out_ptr));
        if null_out {
            return;
        }
        if let Some(ptr) = written("lease_store_open_memory", status, out) {
            let file = FileTag::Memory(self.input.next_memory.fetch_add(1, Ordering::SeqCst));
            free_store(put(&mut self.own.stores, slot, Store { ptr, file }));
        }
    }

    pub(super) fn lock_new(
        &mut self,
        store: Ref,
        key: &Text,
        label: &Text,
        options: &Options,
        null_out: bool,
        slot: u8,
    ) {
        let store = self.store(store);
        let (key, label) = (key.c_string(), label.c_string());
        let (options, options_valid) = lay_out_options(options);
        let text_valid = |text: &Option<Vec<u8>>, may_be_empty: bool| {
            text.as_ref().is_some_and(|text| {
                let text = c_text(text);
                std::str::from_utf8(text).is_ok() && (may_be_empty || !text.is_empty())
            })
        };
        let valid = !null_out
            && store.is_some()
            && text_valid(&key, false)
            && text_valid(&label, true)
            && options_valid;
        let mut out = out_slot();
        let out_ptr = if null_out { null_mut() } else { &mut out };
        let store_ptr = store.map_or(null_mut(), |store| store.ptr);
        let options_ptr = options.as_ref().map_or(std::ptr::null(), |options| options.as_ptr().cast());
        let status = contract::status("lease_lock_new", &[if valid { OK } else { INVALID }], || {
            ffi::lease_lock_new(store_ptr, c_ptr(&key), c_ptr(&label), options_ptr, out_ptr)
        });
        if null_out {
            return;
        }
        let (Some(ptr), Some(store)) = (written("lease_lock_new", status, out), store) else { return };
        let key = c_text(key.as_deref().unwrap_or_default()).to_vec();
        let lease_ms = options.map_or(DEFAULT_OPTIONS[0], |options| options[1]);
        locked(&self.input.shortest_lease)
            .entry((store.file, key.clone()))
            .and_modify(|shortest| *shortest = lease_ms.min(*shortest))
            .or_insert(lease_ms);
        let lock = Lock { ptr, file: store.file, key, lost: Mutex::default() };
        free_lock(put(&mut self.own.locks, slot, lock));
    }

    /// lease_lock_try_acquire (no timeout) or lease_lock_acquire.
    pub(super) fn acquire(&mut self, lock: Ref, timeout_ms: Option<u8>, null_out: bool, slot: u8) {
        let lock = self.lock(lock);
        let mut out = out_slot();
        let out_ptr = if null_out { null_mut() } else { &mut out };
        let lock_ptr = lock.map_or(null_mut(), |lock| lock.ptr);
        let valid = !null_out && lock.is_some();
        let began = lock.filter(|_| valid).map(|lock| callbacks::acquiring(lock.file, &lock.key, false));
        let mark = began.map_or_else(suspension::mark, |began| began.mark);
        // While this process holds the lease, acquiring it again joins that hold at once.
        let held = lock.and_then(|lock| self.held(lock.file, &lock.key));
        // While suspended (the second list), every acquisition is refused.
        let (usual, suspended): (&[LeaseStatus], &[LeaseStatus]) = match (valid, held, timeout_ms) {
            (false, ..) => (&[INVALID], &[INVALID]),
            (true, Some(_), _) => (&[OK], &[SUSPENDED]),
            (true, None, None) => (&[OK, BUSY, DATABASE], &[SUSPENDED]),
            (true, None, Some(_)) => (&[OK, TIMEOUT, DATABASE], &[SUSPENDED]),
        };
        let function = if timeout_ms.is_some() { "lease_lock_acquire" } else { "lease_lock_try_acquire" };
        let status = contract::status_after(
            function,
            || match timeout_ms {
                None => ffi::lease_lock_try_acquire(lock_ptr, out_ptr),
                Some(timeout_ms) => ffi::lease_lock_acquire(lock_ptr, timeout_ms.into(), out_ptr),
            },
            || mark.allowed(usual, suspended),
        );
        let (Some(lock), Some(began)) = (lock, began) else {
            // Not valid: nothing was acquired, and out_guard was NULL or must be left alone.
            if !null_out {
                written(function, status, out);
            }
            return;
        };
        let (file, key) = (lock.file, lock.key.clone());
        if let Some(ptr) = written(function, status, out) {
            let guard = GuardInfo::new(ptr, file, &key, &began);
            // A suspension meanwhile may have ended the hold before this acquisition came.
            let joined = held.filter(|_| !began.mark.may_have_suspended());
            if let Some(generation) =
                joined.filter(|generation| guard.dirty || guard.generation != *generation)
            {
                violation(format!("{function} joined a hold of generation {generation} but got {guard:?}"));
            }
            release_guard(put(&mut self.own.guards, slot, guard));
        }
        callbacks::acquired(Some((file, &key)));
    }

    /// The generation of a hold of this lease that this thread sees and that is surely still
    /// held (see [`Input::surely_held`]).
    fn held(&self, file: FileTag, key: &[u8]) -> Option<u64> {
        let shared = self.shared.map_or(&[][..], |shared| &shared.guards[..]);
        shared
            .iter()
            .chain(&self.own.guards)
            .flatten()
            .find(|guard| guard.file == file && guard.key == key && self.input.surely_held(guard))
            .map(|guard| guard.generation)
    }

    pub(super) fn acquire_async(
        &mut self,
        lock: Ref,
        timeout_ms: u8,
        null_callback: bool,
        context: &AsyncContext,
    ) {
        let lock = self.lock(lock);
        let record: Arc<AsyncRecord> = match (context, lock) {
            (AsyncContext::Null, _) | (_, None) => {
                return self.acquire_async_with(lock, timeout_ms, null_callback, &NULL_CONTEXT)
            }
            (AsyncContext::Reuse(index), Some(lock)) => {
                let records = locked(&self.input.async_records);
                let same: Vec<_> = records
                    .iter()
                    .filter(|record| record.lease.as_ref() == Some(&(lock.file, lock.key.clone())))
                    .cloned()
                    .collect();
                drop(records);
                match same.get(usize::from(*index) % same.len().max(1)) {
                    Some(record) => record.clone(),
                    None => self.new_async_record(lock, false),
                }
            }
            (AsyncContext::New { keep }, Some(lock)) => self.new_async_record(lock, *keep),
        };
        self.acquire_async_with(lock, timeout_ms, null_callback, &record);
    }

    fn new_async_record(&self, lock: &Lock, keep: bool) -> Arc<AsyncRecord> {
        let record = Arc::new(AsyncRecord::new(lock.file, &lock.key, keep));
        locked(&self.input.async_records).push(record.clone());
        record
    }

    fn acquire_async_with(
        &self,
        lock: Option<&Lock>,
        timeout_ms: u8,
        null_callback: bool,
        record: &AsyncRecord,
    ) {
        let valid = lock.is_some() && !null_callback;
        let lock_ptr = lock.map_or(null_mut(), |lock| lock.ptr);
        let callback = (!null_callback).then_some(callbacks::on_acquired as _);
        let lock = lock.filter(|_| valid);
        // Counted first: the callback may run before the call returns.
        if let Some(lock) = lock {
            record.starting(lock.file, &lock.key);
        }
        // Even while suspended it starts: the callback says LEASE_SUSPENDED.
        let status =
            contract::status("lease_lock_acquire_async", &[if valid { OK } else { INVALID }], || {
                ffi::lease_lock_acquire_async(lock_ptr, timeout_ms.into(), callback, record.context())
            });
        if let (Some(lock), true) = (lock, status != OK) {
            record.not_started(lock.file, &lock.key);
        }
    }

    pub(super) fn cancel_acquire(&self, lock: Ref, context: &CancelContext) {
        let lock_ptr = self.lock(lock).map_or(null_mut(), |lock| lock.ptr);
        let context = match context {
            CancelContext::Null => null_mut(),
            CancelContext::Record(index) => {
                let records = locked(&self.input.async_records);
                records
                    .get(usize::from(*index) % records.len().max(1))
                    .map_or(null_mut(), |record| record.context())
            }
            CancelContext::Unknown => std::ptr::from_ref(&NO_ACQUISITION).cast_mut().cast::<c_void>(),
        };
        let allowed = if lock_ptr.is_null() { INVALID } else { OK };
        contract::status("lease_lock_cancel_acquire", &[allowed], || {
            ffi::lease_lock_cancel_acquire(lock_ptr, context)
        });
    }

    pub(super) fn collect_async(&mut self) {
        let records = locked(&self.input.async_records).clone();
        for record in records {
            let kept = std::mem::take(&mut *locked(&record.kept));
            for guard in kept {
                release_guard(put_free(&mut self.own.guards, guard));
            }
        }
    }

    pub(super) fn set_lost_callback(&self, lock: Ref, callback: bool, destroy: bool) {
        let lock = self.lock(lock);
        let record = Arc::new(LostRecord::new(lock.map_or(&[][..], |lock| &lock.key)));
        locked(&self.input.lost_records).push(record.clone());
        let lock_ptr = lock.map_or(null_mut(), |lock| lock.ptr);
        let status = contract::status(
            "lease_lock_set_lost_callback",
            &[if lock.is_some() { OK } else { INVALID }],
            || {
                ffi::lease_lock_set_lost_callback(
                    lock_ptr,
                    callback.then_some(callbacks::on_lost as _),
                    record.context(),
                    destroy.then_some(callbacks::on_destroy as _),
                )
            },
        );
        let Some(lock) = lock.filter(|_| status == OK) else {
            return record.check_destroyed("after a failed lease_lock_set_lost_callback");
        };
        // With a NULL callback, context and destroy are not used.
        record.owns_context.store(callback && destroy, Ordering::SeqCst);
        let mut installed = locked(&lock.lost);
        if self.alone() {
            // The previous callback is not running, will not run again, and its destroy has run.
            for previous in installed.drain(..) {
                previous.retired.store(true, Ordering::SeqCst);
                previous.check_destroyed("after lease_lock_set_lost_callback replaced it");
            }
        }
        if callback {
            installed.push(record);
        }
    }

    pub(super) fn guard_check(&self, guard: Ref) {
        let info = self.guard(guard);
        let allowed: &[LeaseStatus] = match info {
            None => &[INVALID],
            // Said before, or a suspension has given up every lease since the guard was made.
            Some(info) if info.surely_lost() => &[LOST],
            Some(info) if self.input.surely_held(info) => &[OK],
            Some(_) => &[OK, LOST],
        };
        let ptr = info.map_or(null_mut(), |info| info.ptr);
        let status = contract::status("lease_guard_check", allowed, || ffi::lease_guard_check(ptr));
        if let (LOST, Some(info)) = (status, info) {
            info.lost.store(true, Ordering::SeqCst);
        }
    }
}

/// The options laid out as a caller's header of some size would: `None` for NULL. Returns
/// whether the header says lease_lock_new must accept them.
fn lay_out_options(options: &Options) -> (Option<[u32; OPTIONS_WORDS]>, bool) {
    let Options::Given { size, lease_ms, renew_every_ms, max_backoff_ms, tail } = options else {
        return (None, true);
    };
    let size = usize::from(*size) % (OPTIONS_WORDS * 4 + 1);
    let mut words = [0u32; OPTIONS_WORDS];
    words[0] = size as u32;
    words[1] = lease_ms.get();
    words[2] = renew_every_ms.get();
    words[3] = max_backoff_ms.get();
    let known = size_of::<LeaseLockOptions>();
    // Byte `at` of the struct is in word at / 4, little-endian (as on every machine liblease
    // builds for).
    for (index, byte) in tail.iter().take(OPTIONS_WORDS * 4 - known).enumerate() {
        let at = known + index;
        words[at / 4] |= u32::from(*byte) << (8 * (at % 4));
    }
    let tail_is_zero = (known..size.max(known)).all(|at| (words[at / 4] >> (8 * (at % 4))) & 0xff == 0);
    let (lease, renew, backoff) = (u64::from(words[1]), u64::from(words[2]), u64::from(words[3]));
    let valid = size >= known
        && tail_is_zero
        && lease > 0
        && renew > 0
        && backoff > 0
        && 2 * renew <= lease
        && lease <= 86_400_000;
    (Some(words), valid)
}

/// lease_lock_options_init: the defaults in the size given, nothing written past it.
pub(super) fn options_init(size: &OptionsSize) {
    let size = match size {
        OptionsSize::Buffer(size) => size,
        OptionsSize::Null(size) => {
            contract::status("lease_lock_options_init", &[INVALID], || {
                ffi::lease_lock_options_init(null_mut(), *size as usize)
            });
            return;
        }
    };
    let size = usize::from(*size) % (OPTIONS_WORDS * 4 + 1);
    let known = size_of::<LeaseLockOptions>();
    let mut words = [UNWRITTEN; OPTIONS_WORDS + 1];
    let allowed = if size < known { INVALID } else { OK };
    let status = contract::status("lease_lock_options_init", &[allowed], || {
        ffi::lease_lock_options_init(words.as_mut_ptr().cast(), size)
    });
    let byte = |at: usize| (words[at / 4] >> (8 * (at % 4))) as u8;
    let untouched_from = if status == OK { size } else { 0 };
    if (untouched_from..words.len() * 4).any(|at| byte(at) != UNWRITTEN as u8) {
        violation(format!("lease_lock_options_init({size}) wrote past what it may: {words:x?}"));
    }
    if status == OK {
        let defaults = [size as u32, DEFAULT_OPTIONS[0], DEFAULT_OPTIONS[1], DEFAULT_OPTIONS[2]];
        if words[..4] != defaults || (known..size).any(|at| byte(at) != 0) {
            violation(format!("lease_lock_options_init({size}) gave {words:x?}, not the defaults"));
        }
    }
}
