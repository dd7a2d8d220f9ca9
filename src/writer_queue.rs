//! The writer queue: writers of one database file in one process take SQLite's write lock in
//! the order they asked for it.
//!
//! SQLite does not queue writers: a writer that finds the file locked polls with growing sleeps,
//! and whoever polls at the right moment wins, so a writer that keeps coming back starves the
//! others. Here every write of the process (a transaction, a single statement, the lock's own
//! take, renew and release) first joins this queue. Only the writer at the head may try for
//! SQLite's lock, and only once the previous writer of this process has finished; the head
//! leaves the queue as soon as it holds SQLite's lock, so the next writer becomes head at once.
//! A waiting writer therefore gets the database next in its process, however many others come.
//!
//! The head still polls while *another process* holds the write lock (SQLITE_BUSY), with short
//! bounded pauses; it keeps its place meanwhile.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The longest pause of the head between two tries while another process writes.
const MAX_BUSY_PAUSE: Duration = Duration::from_millis(4);

#[derive(Debug, Default)]
pub(crate) struct WriterQueue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct QueueState {
    /// Tickets of the writers waiting, oldest first.
    waiting: VecDeque<u64>,
    next_ticket: u64,
    /// True from the moment a writer of this process holds SQLite's write lock until it ends.
    writing: bool,
}

/// This process's write turn on the file: held from taking SQLite's write lock until the write
/// ends. Dropping it lets the next writer in.
#[derive(Debug)]
pub(crate) struct WriteTurn {
    queue: Arc<WriterQueue>,
}

impl WriterQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True while some writer of this process waits for the file.
    pub(crate) fn has_waiters(&self) -> bool {
        !self.lock().waiting.is_empty()
    }

    /// Waits for this caller's turn, then calls `start` (which must take SQLite's write lock:
    /// `BEGIN IMMEDIATE`, or a single writing statement) until it is not `Error::Busy`. Gives up with
    /// `Error::Busy` at `deadline`; `None` means one try, with no waiting at all.
    pub(crate) fn enter<T>(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        mut start: impl FnMut() -> Result<T>,
    ) -> Result<(WriteTurn, T)> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push_back(ticket);
        let mut pause = Duration::from_micros(250);
        loop {
            while state.waiting.front() != Some(&ticket) || state.writing {
                let now = Instant::now();
                let Some(deadline) = deadline.filter(|deadline| now < *deadline) else {
                    self.leave(&mut state, ticket);
                    return Err(Error::Busy(
                        "another writer of this process has the database (waited in its writer queue)".into(),
                    ));
                };
                state = self.changed.wait_timeout(state, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
            }
            // Head of the queue and nobody of this process writing: later arrivals queue behind
            // us, so the mutex need not be held while SQLite is asked.
            drop(state);
            let started = start();
            state = self.lock();
            match started {
                Ok(value) => {
                    state.writing = true;
                    self.leave(&mut state, ticket);
                    return Ok((WriteTurn { queue: self.clone() }, value));
                }
                Err(Error::Busy(message)) => {
                    let now = Instant::now();
                    match deadline.filter(|deadline| now < *deadline) {
                        Some(deadline) => {
                            drop(state);
                            std::thread::sleep(pause.min(deadline - now));
                            pause = (pause * 2).min(MAX_BUSY_PAUSE);
                            state = self.lock();
                        }
                        None => {
                            self.leave(&mut state, ticket);
                            return Err(Error::Busy(format!(
                                "{message} (another process holds the write lock)"
                            )));
                        }
                    }
                }
                Err(e) => {
                    self.leave(&mut state, ticket);
                    return Err(e);
                }
            }
        }
    }

    fn leave(&self, state: &mut QueueState, ticket: u64) {
        state.waiting.retain(|&waiting| waiting != ticket);
        self.changed.notify_all();
    }
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.writing = false;
        self.queue.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_get_in_first_come_first_served() {
        let queue = Arc::new(WriterQueue::default());
        let (first, ()) = queue.enter(None, || Ok(())).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for writer in 0..5 {
            let (writer_queue, order) = (queue.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                let deadline = Some(Instant::now() + Duration::from_secs(30));
                let (turn, ()) = writer_queue.enter(deadline, || Ok(())).unwrap();
                order.lock().unwrap().push(writer);
                drop(turn);
            }));
            // Each writer is queued before the next one starts.
            while queue.lock().waiting.len() < writer + 1 {
                std::thread::yield_now();
            }
        }
        assert!(queue.has_waiters());
        drop(first);
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        assert!(!queue.has_waiters());
    }

    #[test]
    fn a_writer_that_gives_up_leaves_the_queue() {
        let queue = Arc::new(WriterQueue::default());
        let (turn, ()) = queue.enter(None, || Ok(())).unwrap();
        assert!(matches!(queue.enter(None, || Ok(())), Err(Error::Busy(_))));
        let soon = Some(Instant::now() + Duration::from_millis(20));
        assert!(matches!(queue.enter(soon, || Ok(())), Err(Error::Busy(_))));
        assert!(!queue.has_waiters());
        drop(turn);
        queue.enter(None, || Ok(())).unwrap();
    }
}
