//! The `abi_sequence` target: a sequence of C ABI calls on a few handles, in any order, checked
//! against the header after every call.
//!
//! The input decodes into steps. Each step is one call (or a pause), or two lists of calls run
//! at once on two new threads. Handles live in small slot tables and are named by an index into
//! them, so a call may get NULL (an empty slot), a handle of the right type but not the one
//! that would make sense, or one whose end state the header describes (an ended transaction, a
//! lost guard). A handle is never used after it was freed: that is the caller's undefined
//! behaviour, not a finding.
//!
//! During a parallel step the main thread's stores, locks, guards and databases are shared by
//! both threads (the header: every handle but LeaseTx may be used by several threads at once)
//! but freed by neither; what a thread makes is its own, and the main thread takes it back when
//! the step ends. The transactions go to the first thread alone (a LeaseTx is used by one thread
//! at a time).
//!
//! Every duration is short (acquisitions, busy timeouts and pauses up to 10 ms, lease_suspend's
//! timeout up to 200 ms) so that an input runs in well under a second, even one that waits for
//! itself: a thread with an open transaction may write outside it, which waits for the
//! transaction until the busy timeout.
//!
//! Any step may suspend the process or resume it, on either thread of a parallel step; the
//! checks then follow what the header says of a suspension (see `crate::suspension`).
//!
//! At the end the process is resumed, everything is ended and freed, every asynchronous
//! acquisition has called back, and lease_shutdown must return LEASE_OK.

mod actor;
mod databases;
mod handles;
mod library;
mod locks;
mod ops;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use lease::ffi;

use crate::callbacks::{self, AsyncRecord, GuardInfo, LostRecord};
use crate::contract::{self, c_string, out_slot, written};
use crate::files::{FileTag, Files, DATABASES};
use crate::locked;
use actor::Actor;
use locks::DEFAULT_OPTIONS;
use ops::Step;

use lease::ffi::LeaseStatus::LEASE_OK as OK;

/// Steps per input.
const MAX_STEPS: usize = 48;
/// The calls of each thread of a parallel step.
const MAX_PARALLEL_OPS: usize = 12;

/// Runs one input: its steps, then the end of everything.
pub fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let mut steps = Vec::new();
    while steps.len() < MAX_STEPS && !input.is_empty() {
        match Step::arbitrary(&mut input) {
            Ok(step) => steps.push(step),
            Err(_) => break,
        }
    }
    contract::adopt_last_error();
    callbacks::forget_acquisitions();
    let input = Input::new();
    let mut main = Actor::new(&input, None, Vec::new());
    for step in &steps {
        match step {
            Step::Op(op) => main.run(op),
            Step::Parallel(first, second) => main.parallel(first, second),
        }
        contract::assert_kept(step);
    }
    main.finish();
    contract::assert_kept(&"the end of the input");
}

/// What the threads of one input share besides handles: its files and its callbacks' records.
struct Input {
    files: Files,
    async_records: Mutex<Vec<Arc<AsyncRecord>>>,
    lost_records: Mutex<Vec<Arc<LostRecord>>>,
    next_memory: AtomicU32,
    /// Files that SQL may have written (dropped the lease table, say): opening a store there may
    /// then fail, and leases kept there may be lost.
    touched: [AtomicBool; DATABASES],
    /// The shortest lease_ms of the locks made on each lease (file and key).
    shortest_lease: Mutex<BTreeMap<(FileTag, Vec<u8>), u32>>,
}

impl Input {
    /// A fresh directory whose databases already have their lease table: creating it later,
    /// while a transaction of this process holds the file, would wait seconds.
    fn new() -> Input {
        let files = Files::new();
        files.write_databases(with_lease_table());
        Input {
            files,
            async_records: Mutex::default(),
            lost_records: Mutex::default(),
            next_memory: AtomicU32::new(0),
            touched: Default::default(),
            shortest_lease: Mutex::default(),
        }
    }

    /// True when `guard`'s lease cannot have been lost yet: it was not seen lost, no SQL wrote
    /// its file, every lock on it has a lease of the default length or more, which an input
    /// does not outlast (its renewals always have time to get in), and the process cannot have
    /// been suspended since its acquisition began.
    fn surely_held(&self, guard: &GuardInfo) -> bool {
        let untouched = match guard.file {
            FileTag::Database(index) => !self.touched[index].load(Ordering::SeqCst),
            FileTag::Memory(_) => true,
        };
        let shortest = locked(&self.shortest_lease).get(&(guard.file, guard.key.clone())).copied();
        !guard.lost.load(Ordering::SeqCst)
            && untouched
            && shortest.is_some_and(|ms| ms >= DEFAULT_OPTIONS[0])
            && !guard.before.may_have_suspended()
    }
}

/// The bytes of a database file that holds liblease's lease table and nothing else, made once:
/// each input's databases start as copies, which takes microseconds where making the table takes
/// milliseconds.
fn with_lease_table() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let files = Files::new();
        let path = files.database(0);
        let c_path = c_string(path.as_os_str().as_encoded_bytes());
        let mut store = out_slot();
        let status = contract::status("lease_store_open", &[OK], || {
            ffi::lease_store_open(c_path.as_ptr().cast(), &mut store)
        });
        let store = written("lease_store_open", status, store).expect("a new database opens");
        // Closing the last connection folds the WAL into the file, which stays in WAL mode.
        contract::quiet("lease_store_free", || ffi::lease_store_free(store));
        std::fs::read(&path).expect("the database just made")
    })
}
