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
//! Between processes, the head takes its turn on the file's [`WriterBoard`]: it tries for
//! SQLite's lock only when no writer of another process has waited longer, and sleeps until a
//! write ends rather than polling. A writer that does not use liblease is still met with short
//! bounded pauses (SQLITE_BUSY); the head keeps its place meanwhile.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::suspension;
use crate::sync::MutexExt;
use crate::writer_board::{self, Notice, WaitingSince, WriterBoard, REFRESH};

/// The longest pause of the head between two tries while another process writes.
const MAX_BUSY_PAUSE: Duration = Duration::from_millis(4);

/// The WAL size, in pages, past which a writer checkpoints once its turn has ended (SQLite's
/// own automatic checkpoint would do it inside the commit, with every queued writer waiting).
const CHECKPOINT_PAGES: u32 = 1000;

#[derive(Debug, Default)]
pub(crate) struct WriterQueue {
    state: Mutex<QueueState>,
    changed: Condvar,
    /// Turns between processes; `None` for an in-memory database or where the board file
    /// cannot be had.
    board: Option<Arc<WriterBoard>>,
    /// The WAL's size after the last commit of a connection of this process, in pages.
    wal_pages: Arc<AtomicU32>,
}

#[derive(Debug, Default)]
struct QueueState {
    /// Tickets of the writers waiting, oldest first.
    waiting: VecDeque<u64>,
    next_ticket: u64,
    /// True from the moment a writer of this process holds SQLite's write lock until it ends.
    writing: bool,
}

/// A writer's place in the queue, kept across several stays (see [`WriterQueue::take_place`]);
/// leaves the queue when dropped.
#[derive(Debug)]
pub(crate) struct Place {
    queue: Arc<WriterQueue>,
    ticket: u64,
    /// Since when the writer waits, for its notice on the board.
    since: WaitingSince,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        self.queue.leave(&mut state, self.ticket);
    }
}

/// Who enters the queue: a writer, refused while the process is suspended, or the suspension
/// itself, giving the process's leases back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Write,
    Suspending,
}

impl Entry {
    fn may_go_on(self) -> Result<()> {
        match self {
            Entry::Write => suspension::check(),
            Entry::Suspending => Ok(()),
        }
    }
}

/// This process's write turn on the file: held from taking SQLite's write lock until the write
/// ends. Dropping it lets the next writer in.
#[derive(Debug)]
pub(crate) struct WriteTurn {
    queue: Arc<WriterQueue>,
}

impl WriterQueue {
    pub(crate) fn new(board: Option<WriterBoard>) -> WriterQueue {
        WriterQueue { board: board.map(Arc::new), ..WriterQueue::default() }
    }

    /// Makes `connection` report the WAL's size after each commit instead of checkpointing
    /// inside the commit (a WAL hook replaces SQLite's automatic checkpoint); writers then call
    /// [`WriterQueue::checkpoint_if_due`] once their turn has ended.
    ///
    /// The hook is set through SQLite's own `sqlite3_wal_hook`, not rusqlite's, which keeps its
    /// closures with `sqlite3_set_clientdata` (SQLite 3.44 and later; the system SQLite of Debian
    /// 12 and of current Apple systems is older). It points at this queue's counter: the
    /// connection must be closed before the queue goes, which its owner's field order ensures
    /// (a handle's connection is declared before its `OpenFile`, which keeps the queue).
    pub(crate) fn watch_wal(&self, connection: &mut Connection) -> rusqlite::Result<()> {
        unsafe extern "C" fn report(
            pages: *mut std::ffi::c_void,
            _db: *mut rusqlite::ffi::sqlite3,
            _name: *const std::ffi::c_char,
            count: std::ffi::c_int,
        ) -> std::ffi::c_int {
            // SAFETY: the counter outlives the connection (see above).
            unsafe { (*pages.cast::<AtomicU32>()).store(count.max(0) as u32, Ordering::Relaxed) };
            rusqlite::ffi::SQLITE_OK
        }
        let pages = Arc::as_ptr(&self.wal_pages).cast_mut().cast();
        // SAFETY: a live connection's handle; the callback and its argument stay valid for as
        // long as the connection is open. The previous hook's argument (none) is returned.
        unsafe { rusqlite::ffi::sqlite3_wal_hook(connection.handle(), Some(report), pages) };
        Ok(())
    }

    /// Checkpoints on `connection` if the WAL has grown past its limit. Called after a write
    /// turn has ended, so that no other writer waits for it.
    pub(crate) fn checkpoint_if_due(&self, connection: &Connection) {
        if self.take_checkpoint() {
            checkpoint(connection);
        }
    }

    /// True, once, when the WAL has grown past its limit: the caller then checkpoints.
    pub(crate) fn take_checkpoint(&self) -> bool {
        self.wal_pages.load(Ordering::Relaxed) >= CHECKPOINT_PAGES
            && self.wal_pages.swap(0, Ordering::Relaxed) > 0
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.locked()
    }

    /// True while another writer waits for the file: of this process, or of another one that
    /// writes through liblease.
    pub(crate) fn has_waiters(&self) -> bool {
        !self.lock().waiting.is_empty() || self.board.as_ref().is_some_and(|board| board.others_waiting(None))
    }

    /// Waits for this caller's turn, then calls `start` (which must take SQLite's write lock:
    /// `BEGIN IMMEDIATE`, or a single writing statement) until it is not `Error::Busy`. Gives up
    /// with `Error::Busy` at `deadline`; `None` means one try, with no waiting at all. While the
    /// process is suspended it stops waiting, with `Error::Suspended` (and `start` itself checks
    /// again, under its connection's mutex).
    pub(crate) fn enter<T>(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        start: impl FnMut() -> Result<T>,
    ) -> Result<(WriteTurn, T)> {
        self.enter_as(Entry::Write, deadline, None, start)
    }

    /// A place at the back of the queue, for a writer that waits in several stays (one on the
    /// library's thread, which must not be held up for long): it keeps its place between them,
    /// in this process's queue and on the board, so that each stay does not begin again at the
    /// back.
    pub(crate) fn take_place(self: &Arc<Self>) -> Place {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push_back(ticket);
        Place { queue: self.clone(), ticket, since: writer_board::waiting_since() }
    }

    /// Like [`WriterQueue::enter`], from `place`: waits there until `deadline` (`None`: not at
    /// all). On `Error::Busy` the place is kept, for another stay.
    pub(crate) fn enter_at<T>(
        self: &Arc<Self>,
        place: &Place,
        deadline: Option<Instant>,
        start: impl FnMut() -> Result<T>,
    ) -> Result<(WriteTurn, T)> {
        debug_assert!(Arc::ptr_eq(self, &place.queue), "a place in this queue");
        self.enter_as(Entry::Write, deadline, Some(place), start)
    }

    /// Like [`WriterQueue::enter`], for the suspension's own writes (giving the process's leases
    /// back), which go on while the process is suspended.
    pub(crate) fn enter_suspending<T>(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        start: impl FnMut() -> Result<T>,
    ) -> Result<(WriteTurn, T)> {
        self.enter_as(Entry::Suspending, deadline, None, start)
    }

    /// Enters the queue (at `place`, or at the back), waits for its turn, and starts.
    fn enter_as<T>(
        self: &Arc<Self>,
        entry: Entry,
        deadline: Option<Instant>,
        place: Option<&Place>,
        mut start: impl FnMut() -> Result<T>,
    ) -> Result<(WriteTurn, T)> {
        entry.may_go_on()?;
        let mut state = self.lock();
        let ticket = match place {
            Some(place) => place.ticket,
            None => {
                let ticket = state.next_ticket;
                state.next_ticket += 1;
                state.waiting.push_back(ticket);
                ticket
            }
        };
        // A writer's own ticket leaves with it; a place is left when it got in (or is dropped).
        let leave_unless_kept = |queue: &WriterQueue, state: &mut QueueState| {
            if place.is_none() {
                queue.leave(state, ticket);
            }
        };
        while state.waiting.front() != Some(&ticket) || state.writing {
            if let Err(suspended) = entry.may_go_on() {
                leave_unless_kept(self, &mut state);
                return Err(suspended);
            }
            let Some(left) = time_left(deadline) else {
                leave_unless_kept(self, &mut state);
                return Err(Error::Busy(
                    "another writer of this process has the database (waited in its writer queue)".into(),
                ));
            };
            state = self.changed.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        // Head of the queue with nobody of this process writing: later arrivals queue behind us,
        // so the mutex need not be held while we take our turn between processes.
        drop(state);
        let started = self.start_in_turn(entry, place.map(|place| place.since), deadline, &mut start);
        let mut state = self.lock();
        if started.is_ok() {
            state.writing = true;
            self.leave(&mut state, ticket);
        } else {
            leave_unless_kept(self, &mut state);
        }
        started.map(|value| (WriteTurn { queue: self.clone() }, value))
    }

    /// As the head of this process's queue: waits for this process's turn on the board, then
    /// calls `start` until SQLite lets it in.
    fn start_in_turn<T>(
        &self,
        entry: Entry,
        since: Option<WaitingSince>,
        deadline: Option<Instant>,
        start: &mut impl FnMut() -> Result<T>,
    ) -> Result<T> {
        let board = self.board.as_deref();
        // Only a writer that may wait posts a notice: a single try must not hold others back. Its
        // wait between processes begins now, when it heads this process's queue (a process whose
        // writers queued long among themselves gets no head start over the others).
        let since = since.unwrap_or_else(writer_board::waiting_since);
        let notice = board.filter(|_| deadline.is_some()).and_then(|board| board.post(since));
        let started = self.start_when_free(entry, board, notice, deadline, start);
        if let (Some(board), Some(notice)) = (board, notice) {
            board.withdraw(notice);
        }
        started
    }

    fn start_when_free<T>(
        &self,
        entry: Entry,
        board: Option<&WriterBoard>,
        notice: Option<Notice>,
        deadline: Option<Instant>,
        start: &mut impl FnMut() -> Result<T>,
    ) -> Result<T> {
        let mut pause = Duration::from_micros(250);
        loop {
            entry.may_go_on()?;
            let seen = board.map(WriterBoard::wake_word);
            if let (Some(board), Some(notice), Some(seen)) = (board, notice, seen) {
                if !board.has_turn(notice) {
                    // A writer of another process has waited longer: sleep until a write ends.
                    let Some(left) = time_left(deadline) else {
                        return Err(Error::Busy("writers of other processes have waited longer".into()));
                    };
                    board.sleep(seen, left.min(REFRESH));
                    board.refresh(notice);
                    continue;
                }
            }
            match start() {
                Err(Error::Busy(message)) => {
                    let Some(left) = time_left(deadline) else {
                        return Err(Error::Busy(format!("{message} (another process holds the write lock)")));
                    };
                    // The writer in the way ends with a wake if it uses liblease; otherwise the
                    // pause bounds the wait.
                    match (board, seen) {
                        (Some(board), Some(seen)) => board.sleep(seen, pause.min(left)),
                        _ => std::thread::sleep(pause.min(left)),
                    }
                    pause = (pause * 2).min(MAX_BUSY_PAUSE);
                    if let (Some(board), Some(notice)) = (board, notice) {
                        board.refresh(notice);
                    }
                }
                other => return other,
            }
        }
    }

    /// A writer of this process committed: rings the board's bell for the file's observers
    /// (see [`WriterBoard::ring`]).
    pub(crate) fn committed(&self) {
        if let Some(board) = &self.board {
            board.ring();
        }
    }

    /// True when writers of this file take turns on a board (and ring its bell).
    pub(crate) fn has_board(&self) -> bool {
        self.board.is_some()
    }

    /// The file's board, whose wake word moves on whenever a liblease write ends.
    pub(crate) fn board(&self) -> Option<&Arc<WriterBoard>> {
        self.board.as_ref()
    }

    /// True when a process may be observing the file, so that its writers must record what they
    /// change: some process says so on the board, or there is no board to say it.
    pub(crate) fn is_observed(&self) -> bool {
        self.board.as_ref().is_none_or(|board| board.is_observed())
    }

    /// Says on the board that this process observes the file (see
    /// [`WriterBoard::register_observer`]); `None` without a board.
    pub(crate) fn register_observer(&self) -> Option<writer_board::ObserverRegistration> {
        self.board.as_ref().map(WriterBoard::register_observer)
    }

    /// Wakes every writer waiting in this queue, and every lease waiter of this process asleep
    /// on the board, so that each looks again (at a suspension).
    pub(crate) fn wake_waiters(&self) {
        let _state = self.lock();
        self.changed.notify_all();
        drop(_state);
        if let Some(board) = &self.board {
            board.wake_all();
            board.wake_lease_waiters_of_this_process();
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
        drop(state);
        if let Some(board) = &self.queue.board {
            board.wake_all();
        }
    }
}

/// A PASSIVE checkpoint: it waits for nobody. One that cannot run now (another process is
/// checkpointing, say) is simply left to the next writer past the limit.
pub(crate) fn checkpoint(connection: &Connection) {
    // A checkpoint writes the database file: not while the process is suspended.
    if suspension::is_suspended() {
        return;
    }
    let _ = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
}

/// The time left before `deadline`; `None` once it has passed, or when there is no deadline
/// (a single try).
fn time_left(deadline: Option<Instant>) -> Option<Duration> {
    let now = Instant::now();
    deadline.filter(|deadline| now < *deadline).map(|deadline| deadline - now)
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
