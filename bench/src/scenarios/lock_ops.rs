//! Scenarios 1 and 2: the cost of one acquisition and release, uncontended, through the C ABI.
//!
//! 1. Each acquisition takes the lease from the store (the process holds nothing before it), and
//!    each release gives it back: beside the floor, liblease's own lease statement on a bare
//!    rusqlite connection.
//! 2. Re-entrant: the process already holds the lease (an outer guard), so an acquisition joins
//!    that hold without touching the database.

use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr;

use lease::ffi::{
    lease_guard_is_dirty, lease_guard_release, lease_last_error_message, lease_lock_free, lease_lock_new,
    lease_lock_try_acquire, lease_store_free, lease_store_open, LeaseGuard, LeaseLock, LeaseStatus,
    LeaseStore,
};

use super::{scenario_dir, temp_dir};
use crate::baselines::lease_statement::BareLeaseTable;
use crate::clock::now_ns;
use crate::plot::Plot;
use crate::report::{distribution, Section, Side};
use crate::stats::Stat;
use crate::{Config, Result};

const KEY: &str = "bench";
const STATS: [Stat; 3] = [Stat::Mean, Stat::P50, Stat::P99];

pub fn uncontended(config: &Config, _plots: &mut Vec<Plot>) -> Section {
    let (ops, warmup) = (config.pick(20_000, 500), config.pick(1_000, 50));
    let mut section = Section::new(1, "uncontended acquire + release (C ABI)");
    section.parameter("operations", ops);
    section.parameter("warmup_operations", warmup);
    let Some(dir) = scenario_dir(&mut section, "uncontended") else { return section };
    let in_dir = |name: &str| dir.path().join(name);
    let liblease = Side::of(through_c_abi(&in_dir("ffi.db"), warmup, ops, false));
    let take_only = Side::of(bare_statements(&in_dir("take.db"), warmup, ops, false));
    let take_release = Side::of(bare_statements(&in_dir("both.db"), warmup, ops, true));
    let (liblease, take_only, take_release) =
        (liblease.summary(), take_only.summary(), take_release.summary());
    section.figures.extend(distribution(
        "the lease UPSERT alone, bare rusqlite",
        "acquire + release per op",
        "µs",
        &liblease,
        Some(&take_only),
        &STATS,
    ));
    section.figures.extend(distribution(
        "lease UPSERT + release UPDATE, bare rusqlite",
        "acquire + release per op",
        "µs",
        &liblease,
        Some(&take_release),
        &STATS,
    ));
    section.note(format!(
        "liblease: lease_lock_try_acquire + lease_guard_release through the C ABI on a file \
         database, the lease taken from the store and given back on every op; each op timed alone \
         ({ops} ops after {warmup} warm-up ops; a clock reading costs about {:.0} ns).",
        timer_cost_ns()
    ));
    section.note(
        "baselines: liblease's own SQL (copied from src/store/lease_table.rs) on a bare rusqlite \
         connection with the store's settings (WAL, synchronous=NORMAL, cached statements): the take \
         UPSERT alone, and the take UPSERT followed by the release UPDATE.",
    );
    section
}

pub fn reentrant(config: &Config, _plots: &mut Vec<Plot>) -> Section {
    let (ops, warmup) = (config.pick(200_000, 5_000), config.pick(10_000, 500));
    let mut section = Section::new(2, "re-entrant acquire + release (C ABI)");
    section.parameter("operations", ops);
    section.parameter("warmup_operations", warmup);
    let liblease = Side::of(
        temp_dir("reentrant").and_then(|dir| through_c_abi(&dir.path().join("ffi.db"), warmup, ops, true)),
    )
    .summary();
    section.figures.extend(distribution("", "acquire + release per op", "µs", &liblease, None, &STATS));
    section.note(format!(
        "liblease: while an outer guard holds the lease, lease_lock_try_acquire + lease_guard_release \
         through the C ABI (no database access); each op timed alone ({ops} ops after {warmup} \
         warm-up ops; a clock reading costs about {:.0} ns).",
        timer_cost_ns()
    ));
    section.note("no baseline: the predecessor's description has no re-entrant acquisition.");
    section
}

/// Per-op times in µs of acquire + release through the C ABI; `reentrant` holds an outer guard
/// throughout.
fn through_c_abi(path: &Path, warmup: usize, ops: usize, reentrant: bool) -> Result<Vec<f64>> {
    let handles = CLock::open(path)?;
    let outer = if reentrant { Some(handles.try_acquire()?) } else { None };
    let mut samples = Vec::with_capacity(ops);
    for op in 0..warmup + ops {
        let started = now_ns();
        let guard = handles.try_acquire()?;
        if outer.is_some() && lease_guard_is_dirty(guard.0) {
            return Err("a re-entrant guard is dirty: it was not a re-entrant acquisition".into());
        }
        drop(guard); // lease_guard_release
        let ended = now_ns();
        if op >= warmup {
            samples.push((ended - started) as f64 / 1e3);
        }
    }
    drop(outer);
    Ok(samples)
}

/// Per-op times in µs of the bare statements.
fn bare_statements(path: &Path, warmup: usize, ops: usize, release: bool) -> Result<Vec<f64>> {
    let mut table = BareLeaseTable::open(path)?;
    let mut samples = Vec::with_capacity(ops);
    for op in 0..warmup + ops {
        let started = now_ns();
        table.take(KEY)?;
        if release {
            table.release(KEY)?;
        }
        let ended = now_ns();
        if op >= warmup {
            samples.push((ended - started) as f64 / 1e3);
        }
    }
    Ok(samples)
}

/// The mean cost of one clock reading, in ns.
fn timer_cost_ns() -> f64 {
    const READINGS: u64 = 100_000;
    let started = now_ns();
    for _ in 0..READINGS {
        std::hint::black_box(now_ns());
    }
    (now_ns() - started) as f64 / READINGS as f64
}

/// A store and a lock made through the C ABI, freed on drop.
struct CLock {
    store: *mut LeaseStore,
    lock: *mut LeaseLock,
}

/// A guard from the C ABI, released on drop.
struct CGuard(*mut LeaseGuard);

impl CLock {
    fn open(path: &Path) -> Result<CLock> {
        let path = CString::new(path.to_str().ok_or("the temporary path is not UTF-8")?)?;
        let key = CString::new(KEY)?;
        let mut handles = CLock { store: ptr::null_mut(), lock: ptr::null_mut() };
        check(lease_store_open(path.as_ptr(), &mut handles.store), "lease_store_open")?;
        check(
            lease_lock_new(
                handles.store,
                key.as_ptr(),
                c"lease-bench".as_ptr(),
                ptr::null(),
                &mut handles.lock,
            ),
            "lease_lock_new",
        )?;
        Ok(handles)
    }

    fn try_acquire(&self) -> Result<CGuard> {
        let mut guard = ptr::null_mut();
        check(lease_lock_try_acquire(self.lock, &mut guard), "lease_lock_try_acquire")?;
        Ok(CGuard(guard))
    }
}

impl Drop for CLock {
    fn drop(&mut self) {
        lease_lock_free(self.lock);
        lease_store_free(self.store);
    }
}

impl Drop for CGuard {
    fn drop(&mut self) {
        lease_guard_release(self.0);
    }
}

fn check(status: LeaseStatus, function: &str) -> Result<()> {
    if status == LeaseStatus::LEASE_OK {
        return Ok(());
    }
    let message = lease_last_error_message();
    let message = if message.is_null() {
        String::new()
    } else {
        // SAFETY: the message is a NUL-terminated string valid until this thread's next call.
        unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
    };
    Err(format!("{function}: {status:?}: {message}").into())
}
