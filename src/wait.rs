//! Waiting for a lease to change hands, without polling the database where something can say
//! when to look.
//!
//! A waiter sleeps until one of these happens, or its timeout (the polling fallback) passes.
//! With the system's wake-ups (Linux and Android, see [`wakeups`](crate::wakeups)):
//! - a liblease writer committed: it rings the board's bell once its commit is visible (see
//!   [`WriterBoard::ring`](crate::writer_board::WriterBoard::ring); inotify on the bell). Only
//!   where the file has no board of this process's does the waiter watch the WAL instead, which
//!   every commit appends to, but before the commit is visible and several times per commit;
//!   the lease row is written by liblease alone, so the bell is the one event a release makes;
//! - the holder's process ends (Linux 5.3+: a pidfd becomes readable when the process exits);
//! - this process is suspended (an eventfd of `suspension`, readable while it is).
//!
//! With the portable ones (Apple platforms, or `LIBLEASE_WAKEUPS=portable`), the waiter looks,
//! between short sleeps ([`tick`](crate::wakeups::tick): 1 ms at first, longer as it keeps
//! waiting), at memory and one system call: the board's wake word, which every liblease writer
//! bumps once its write has ended; whether the holder's pid still names a process; whether this
//! process was suspended. None of it reads the database.
//!
//! A wake-up only means "look again": the waiter reads the lease row and tries to take the lease
//! in the database, where exclusion is decided. A missed or unavailable wake-up costs latency,
//! never correctness.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::liveness::{self, Identity, KnownAlive};
use crate::wakeups;
use crate::writer_board::WriterBoard;

/// One waiter's wake-up sources. Made when an acquisition first has to wait; kept by its lock
/// for the next one.
pub(crate) struct ChangeWait {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    native: Option<linux::Sources>,
    portable: Portable,
}

impl ChangeWait {
    /// Wake-ups for changes to the database at `path` (`None`: an in-memory store, where only
    /// the timeout applies), whose writers bump the wake word of `board`.
    pub(crate) fn new(path: Option<&Path>, board: Option<Arc<WriterBoard>>) -> ChangeWait {
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = path;
        let seen = board.as_ref().map(|board| board.wake_word());
        ChangeWait {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            native: wakeups::native().then(|| linux::Sources::new(path, board.is_some())),
            portable: Portable { board, seen, holder: None, since: Instant::now() },
        }
    }

    /// True when every wake-up comes once the change it tells of is visible to a reader: the
    /// board's bell or wake word, which liblease writers move after their commit, rather than
    /// the WAL, which a commit writes before it is visible. A look after such a wake-up finds the
    /// change, so the waiter need not look again soon in case it came too early.
    pub(crate) fn wakes_once_visible(&self) -> bool {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(native) = &self.native {
            return native.rung;
        }
        self.portable.board.is_some()
    }

    /// A new acquisition begins to wait on these sources (made for an earlier one, perhaps).
    pub(crate) fn begin(&mut self) {
        self.portable.since = Instant::now();
    }

    /// Also wake when the process named by `holder` ends; `known` is where the look that named
    /// it found it alive, and holds a pidfd on it.
    pub(crate) fn watch_holder(&mut self, holder: &Identity, me: &Identity, known: &KnownAlive) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(native) = &mut self.native {
            return native.watch_holder(holder, me, known);
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = known;
        self.portable.holder = (holder.pid != 0 && holder.pid != me.pid).then_some(holder.pid);
    }

    /// Blocks until a wake-up or `timeout`. Returns true when woken by an event.
    pub(crate) fn wait(&mut self, timeout: Duration) -> bool {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(native) = &mut self.native {
            return native.wait(timeout);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if self.portable.woken() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(self.portable.tick()));
        }
    }

    /// Like [`ChangeWait::wait`], on the library's runtime, without blocking its thread.
    pub(crate) async fn wait_async(&mut self, timeout: Duration) -> bool {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(native) = &mut self.native {
            return native.wait_async(timeout).await;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.portable.woken() {
                return true;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            tokio::time::sleep(left.min(self.portable.tick())).await;
        }
    }
}

/// What a portable waiter looks at between its short sleeps.
struct Portable {
    board: Option<Arc<WriterBoard>>,
    /// The board's wake word when last looked at.
    seen: Option<u32>,
    /// The pid of the holder's process, while it may still run.
    holder: Option<u32>,
    /// Since when the acquisition waits, which sets how often it looks.
    since: Instant,
}

impl Portable {
    fn tick(&self) -> Duration {
        wakeups::tick(self.since.elapsed())
    }

    /// True when something moved since the last look: a write ended, the holder's process is
    /// gone, or this process was suspended (the look then ends the acquisition).
    fn woken(&mut self) -> bool {
        if crate::suspension::is_suspended() {
            return true;
        }
        if let Some(board) = &self.board {
            let word = board.wake_word();
            if self.seen.replace(word) != Some(word) {
                return true;
            }
        }
        if self.holder.is_some_and(liveness::is_gone) {
            self.holder = None;
            return true;
        }
        false
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::Path;
    use std::task::Poll;
    use std::time::Duration;

    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    use crate::liveness::{self, Identity, KnownAlive};

    pub(super) struct Sources {
        wal: Option<OwnedFd>,
        /// `wal` watches the board's bell alone (see [`watch_wal`]).
        pub(super) rung: bool,
        holder: Option<(u32, OwnedFd)>,
        /// This waiter's own duplicate of the suspension's eventfd: the asynchronous waits
        /// register their descriptors with one reactor, which takes each descriptor once.
        suspended: Option<OwnedFd>,
    }

    impl Sources {
        pub(super) fn new(path: Option<&Path>, has_board: bool) -> Sources {
            let suspended = crate::suspension::wake_fd().and_then(|fd| {
                // SAFETY: duplicates a descriptor that lives for the process's life.
                let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
                // SAFETY: the kernel just returned this descriptor to us alone.
                (copy >= 0).then(|| unsafe { OwnedFd::from_raw_fd(copy) })
            });
            let (wal, rung) = path.and_then(|path| watch_wal(path, has_board)).unzip();
            Sources { wal, rung: rung.unwrap_or(false), holder: None, suspended }
        }

        pub(super) fn watch_holder(&mut self, holder: &Identity, me: &Identity, known: &KnownAlive) {
            if self.holder.as_ref().is_some_and(|(pid, _)| *pid == holder.pid) {
                return;
            }
            // No pidfd when the holder could not be judged (another PID namespace, this process,
            // or a kernel without pidfds): then only the lease's expiry tells of its end.
            let watched = holder.pid != me.pid;
            self.holder = known.pidfd(holder).filter(|_| watched).map(|fd| (holder.pid, fd));
        }

        fn fds(&self) -> Vec<RawFd> {
            self.wal
                .iter()
                .map(AsRawFd::as_raw_fd)
                .chain(self.holder.iter().map(|(_, fd)| fd.as_raw_fd()))
                .chain(self.suspended.iter().map(AsRawFd::as_raw_fd))
                .collect()
        }

        pub(super) fn wait(&mut self, timeout: Duration) -> bool {
            let mut polled: Vec<libc::pollfd> = self
                .fds()
                .into_iter()
                .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
                .collect();
            let timeout = libc::timespec {
                tv_sec: timeout.as_secs() as libc::time_t,
                tv_nsec: timeout.subsec_nanos() as libc::c_long,
            };
            // SAFETY: `polled` is a valid array of its length; `timeout` a valid timespec; a null
            // signal mask leaves the mask alone.
            let ready = unsafe {
                libc::ppoll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, &timeout, std::ptr::null())
            };
            if ready <= 0 {
                return false; // timed out, or interrupted by a signal: look again either way
            }
            self.drain();
            true
        }

        /// Waits on the runtime's reactor: the descriptors are registered with it for this wait
        /// only, so the blocking and the asynchronous waits share one set of sources.
        pub(super) async fn wait_async(&mut self, timeout: Duration) -> bool {
            // SAFETY: each descriptor is an owned, open inotify or pidfd descriptor, moved into
            // the AsyncFd and taken back out with `into_inner` (or dropped with it).
            let register = |fd: OwnedFd| unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
            let wal = self.wal.take().map(register).transpose();
            let holder = self.holder.take().map(|(pid, fd)| register(fd).map(|fd| (pid, fd))).transpose();
            let suspended = self.suspended.take().map(register).transpose();
            let (Ok(wal), Ok(holder), Ok(suspended)) = (wal, holder, suspended) else {
                // No reactor to register with: sleep instead; this waiter then polls.
                tokio::time::sleep(timeout).await;
                return false;
            };
            let ready = std::future::poll_fn(|cx| {
                // Poll both, so that each registers its interest in this task's waker.
                let wal_ready = wal.as_ref().is_some_and(|fd| fd.poll_read_ready(cx).is_ready());
                let holder_ready = holder.as_ref().is_some_and(|(_, fd)| fd.poll_read_ready(cx).is_ready());
                let suspended_ready = suspended.as_ref().is_some_and(|fd| fd.poll_read_ready(cx).is_ready());
                if wal_ready || holder_ready || suspended_ready {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            });
            let woken = tokio::time::timeout(timeout, ready).await.is_ok();
            self.wal = wal.map(AsyncFd::into_inner);
            self.holder = holder.map(|(pid, fd)| (pid, fd.into_inner()));
            self.suspended = suspended.map(AsyncFd::into_inner);
            if woken {
                self.drain();
            }
            woken
        }

        fn drain(&mut self) {
            if let Some(wal) = &self.wal {
                let mut events = [0u8; 4096];
                // SAFETY: reads into a buffer we own; the descriptor is non-blocking.
                while unsafe { libc::read(wal.as_raw_fd(), events.as_mut_ptr().cast(), events.len()) } > 0 {}
            }
            // A pidfd stays readable once its process has ended: stop watching it, so that the
            // next wait is not woken again by the same death.
            if self.holder.as_ref().is_some_and(|(_, fd)| liveness::has_ended(fd)) {
                self.holder = None;
            }
        }
    }

    /// An inotify descriptor that becomes readable when the bell of the database's board is
    /// rung, and, unless this process maps the board (`has_board`), when `<database>-wal` is
    /// written; and whether it watches the bell alone.
    fn watch_wal(database: &Path, has_board: bool) -> Option<(OwnedFd, bool)> {
        let mut wal = database.as_os_str().as_bytes().to_vec();
        wal.extend_from_slice(b"-wal");
        let wal = CString::new(wal).ok()?;
        let bell = CString::new(crate::writer_board::path_of(database).into_os_string().into_vec()).ok()?;
        // SAFETY: plain syscalls with valid arguments; the descriptor is owned below.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: the kernel just returned this descriptor to us alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: `wal` is NUL-terminated.
        let add = |path: &CString, mask: u32| {
            // SAFETY: a live inotify descriptor and a NUL-terminated path.
            unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) >= 0 }
        };
        // The bell is rung once a liblease writer's commit is visible. The WAL is written by
        // every writer, but before its commit is visible (and several times in one commit): a
        // waiter whose file has a board (`has_board`: the lease row is written by liblease
        // alone) does not watch it, so that it wakes once, to a visible commit.
        let bell_watched = add(&bell, libc::IN_MODIFY);
        let rung = has_board && bell_watched;
        let wal_watched = !rung && add(&wal, libc::IN_MODIFY);
        if !wal_watched && !rung {
            // No WAL yet (nobody has the database open): its making, in the directory, wakes too.
            let directory = database.parent().filter(|parent| !parent.as_os_str().is_empty());
            let directory = CString::new(directory.unwrap_or(Path::new(".")).as_os_str().as_bytes()).ok()?;
            add(&directory, libc::IN_CREATE | libc::IN_MOVED_TO);
        }
        (wal_watched || bell_watched).then_some((fd, rung))
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(30);

    /// The system's wake-ups, whatever the switch says.
    fn native(path: Option<&Path>) -> ChangeWait {
        ChangeWait {
            native: Some(linux::Sources::new(path, false)),
            portable: Portable { board: None, seen: None, holder: None, since: Instant::now() },
        }
    }

    /// The portable wake-ups, whatever the switch says.
    fn portable(board: Option<Arc<WriterBoard>>) -> ChangeWait {
        let seen = board.as_ref().map(|board| board.wake_word());
        ChangeWait { native: None, portable: Portable { board, seen, holder: None, since: Instant::now() } }
    }

    fn wal_database(dir: &tempfile::TempDir) -> (std::path::PathBuf, rusqlite::Connection) {
        let path = dir.path().join("wake.db");
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "wal").unwrap();
        writer.execute_batch("CREATE TABLE t (x)").unwrap();
        (path, writer)
    }

    /// A process that the test ends; its identity as a holder.
    fn holder_process() -> (std::process::Child, Identity, Identity) {
        let child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let me = Identity::of_this_process();
        let started = liveness::start_time(child.id()).unwrap();
        let holder = Identity { pid: child.id(), started, pid_namespace: me.pid_namespace.clone() };
        (child, holder, me)
    }

    #[test]
    fn a_commit_by_another_connection_wakes_the_waiter() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = wal_database(&dir);
        let mut wait = native(Some(&path));
        let commit = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            writer.execute_batch("INSERT INTO t VALUES (1)").unwrap();
        });
        assert!(wait.wait(LONG), "woken by the commit, not by the timeout");
        commit.join().unwrap();
        // A commit writes the WAL more than once; once it is over and its events are consumed,
        // nothing wakes the waiter.
        wait.wait(Duration::from_millis(10));
        assert!(!wait.wait(Duration::from_millis(10)), "events were drained");
    }

    #[test]
    fn the_end_of_the_holders_process_wakes_the_waiter() {
        let (mut child, holder, me) = holder_process();
        let mut wait = native(None);
        // As a waiter does: a look finds the holder alive, then the wait watches it.
        let known = KnownAlive::using_pidfds(true);
        assert!(!known.is_certainly_dead(&holder, &me));
        wait.watch_holder(&holder, &me, &known);
        child.kill().unwrap();
        assert!(wait.wait(LONG), "woken by the death, not by the timeout");
        child.wait().unwrap();
        assert!(!wait.wait(Duration::from_millis(10)), "a death wakes once");
    }

    #[test]
    fn the_asynchronous_wait_is_woken_too() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = wal_database(&dir);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let commit = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            writer.execute_batch("INSERT INTO t VALUES (1)").unwrap();
        });
        let woken = runtime.block_on(async { native(Some(&path)).wait_async(LONG).await });
        assert!(woken);
        commit.join().unwrap();
    }

    #[test]
    fn a_portable_waiter_is_woken_when_another_mapping_of_the_board_ends_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _writer) = wal_database(&dir);
        // Two mappings of one board, as two processes have.
        let (mine, theirs) = (WriterBoard::open(&path).unwrap(), WriterBoard::open(&path).unwrap());
        let mut wait = portable(Some(Arc::new(mine)));
        assert!(!wait.wait(Duration::from_millis(20)), "nothing happened: the timeout ends the wait");
        let write = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            theirs.wake_all();
        });
        assert!(wait.wait(LONG), "woken by the word, not by the timeout");
        write.join().unwrap();
        assert!(!wait.wait(Duration::from_millis(10)), "one write wakes once");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let theirs = WriterBoard::open(&path).unwrap();
        let write = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            theirs.wake_all();
        });
        assert!(runtime.block_on(wait.wait_async(LONG)), "the asynchronous wait is woken too");
        write.join().unwrap();
    }

    #[test]
    fn a_portable_waiter_is_woken_when_the_holders_process_is_gone() {
        let (mut child, holder, me) = holder_process();
        let mut wait = portable(None);
        wait.watch_holder(&holder, &me, &KnownAlive::new());
        assert!(!wait.wait(Duration::from_millis(20)), "the holder runs");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(wait.wait(LONG), "woken by the death, not by the timeout");
        assert!(!wait.wait(Duration::from_millis(10)), "a death wakes once");
    }
}
