//! What the fuzzer knows of the process's suspension (lease_suspend and lease_resume), for the
//! checks that depend on it.
//!
//! The header allows LEASE_SUSPENDED only while the process is suspended, or from a transaction
//! that a suspension rolled back; and while the process is suspended it refuses every write and
//! gives every lease up. So each check takes a [`Mark`] before its call and asks it afterwards
//! whether the process may have been suspended meanwhile (LEASE_SUSPENDED is then allowed),
//! was suspended throughout (only what the header says of a suspended process is then allowed),
//! or went through a whole lease_suspend since (a guard taken before is then lost).
//!
//! Two threads of a parallel step may suspend and resume at once: the order in which the calls
//! set the flag is then unknown, and so is the state until the next call that overlaps none of
//! the other kind.

use std::sync::Mutex;

use lease::ffi::{self, LeaseStatus};

use crate::locked;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Resumed,
    Suspended,
    /// A call is running, or a lease_suspend and a lease_resume ran at once.
    Unknown,
}

struct Known {
    state: State,
    suspends_started: u64,
    suspends_returned: u64,
    resumes_started: u64,
    suspends_running: u32,
    resumes_running: u32,
    /// A lease_suspend and a lease_resume ran at once since the last time none ran.
    mixed: bool,
}

static KNOWN: Mutex<Known> = Mutex::new(Known {
    state: State::Resumed,
    suspends_started: 0,
    suspends_returned: 0,
    resumes_started: 0,
    suspends_running: 0,
    resumes_running: 0,
    mixed: false,
});

/// A moment, as the suspension goes: taken before a call, and asked after it.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    state: State,
    suspends_started: u64,
    resumes_started: u64,
}

/// Now.
pub fn mark() -> Mark {
    let known = locked(&KNOWN);
    Mark {
        state: known.state,
        suspends_started: known.suspends_started,
        resumes_started: known.resumes_started,
    }
}

impl Mark {
    /// True when the process may have been suspended at some moment from the mark until now.
    pub fn may_have_suspended(&self) -> bool {
        self.state != State::Resumed || locked(&KNOWN).suspends_started != self.suspends_started
    }

    /// True when the process was suspended from the mark until now.
    pub fn suspended_throughout(&self) -> bool {
        self.state == State::Suspended && locked(&KNOWN).resumes_started == self.resumes_started
    }

    /// True when a lease_suspend that began after the mark has returned: what the process held
    /// at the mark (a lease, an open transaction) has been given up. (More calls returned than
    /// had started at the mark, so one of them started after it.)
    pub fn suspension_completed(&self) -> bool {
        locked(&KNOWN).suspends_returned > self.suspends_started
    }

    /// The statuses a call that began at the mark and just returned may return: `usual` when the
    /// process cannot have been suspended meanwhile, `suspended` when it was throughout, and
    /// either in between.
    pub fn allowed(&self, usual: &[LeaseStatus], suspended: &[LeaseStatus]) -> Vec<LeaseStatus> {
        if self.suspended_throughout() {
            suspended.to_vec()
        } else if self.may_have_suspended() {
            either(usual, suspended)
        } else {
            usual.to_vec()
        }
    }
}

/// The statuses of either list.
pub fn either(one: &[LeaseStatus], other: &[LeaseStatus]) -> Vec<LeaseStatus> {
    let mut either = one.to_vec();
    either.extend(other.iter().filter(|status| !one.contains(status)));
    either
}

/// A call of lease_suspend (`suspend`) or lease_resume, counted while it runs.
pub struct Call {
    suspend: bool,
}

impl Call {
    pub fn start(suspend: bool) -> Call {
        let mut known = locked(&KNOWN);
        if suspend {
            known.suspends_started += 1;
            known.suspends_running += 1;
        } else {
            known.resumes_started += 1;
            known.resumes_running += 1;
        }
        known.mixed |= known.suspends_running > 0 && known.resumes_running > 0;
        known.state = State::Unknown;
        Call { suspend }
    }

    /// Counts the call as returned; returns whether no call of the other kind ran meanwhile.
    pub fn end(self) -> bool {
        let mut known = locked(&KNOWN);
        let clean = !known.mixed;
        if self.suspend {
            known.suspends_returned += 1;
            known.suspends_running -= 1;
        } else {
            known.resumes_running -= 1;
        }
        if known.suspends_running + known.resumes_running == 0 {
            known.state = match (known.mixed, self.suspend) {
                (true, _) => State::Unknown,
                (false, true) => State::Suspended,
                (false, false) => State::Resumed,
            };
            known.mixed = false;
        }
        clean
    }
}

/// Starts an input resumed, whatever an earlier one left (one that failed while the process was
/// suspended, say): every input runs in the same process.
pub fn start_input() {
    {
        let mut known = locked(&KNOWN);
        // Every thread of an earlier input has been joined: none of its calls still runs.
        known.suspends_running = 0;
        known.resumes_running = 0;
        known.mixed = false;
    }
    let call = Call::start(false);
    ffi::lease_resume();
    let _ = call.end();
}
