//! Fuzz targets for liblease's C ABI, as plain functions of the input's bytes.
//!
//! - [`abi_sequence`]: sequences of calls of every exported function, on several handles and
//!   threads, with suspensions of the process, checked against `include/lease.h` after every
//!   call.
//! - [`values`]: SQL values and parameters, valid and not, and their round trip.
//!
//! `fuzz_targets/` wraps each in libFuzzer; `tests/corpus.rs` replays the committed corpus
//! through the same functions on stable Rust, one after another in one process: each input
//! begins with lease_resume, so that none runs suspended by an earlier one. A broken promise of
//! the header panics.

mod callbacks;
mod contract;
mod files;
mod params;
mod rows;
mod sequence;
mod suspension;
mod values;

use std::sync::{Mutex, MutexGuard};

/// Inputs run one at a time: they share liblease's one thread, which each input stops at its
/// end (and tests may run on several threads).
static ONE_INPUT: Mutex<()> = Mutex::new(());

/// Runs one `abi_sequence` input; panics when liblease breaks a promise of its header.
pub fn abi_sequence(data: &[u8]) {
    let _one = locked(&ONE_INPUT);
    suspension::start_input();
    sequence::run(data);
}

/// Runs one `values` input; panics when liblease breaks a promise of its header.
pub fn values(data: &[u8]) {
    let _one = locked(&ONE_INPUT);
    suspension::start_input();
    values::run(data);
}

/// Locks a mutex, whether or not an earlier input panicked while holding it.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
