//! What wakes an observer to look: with the system's wake-ups (Linux and Android, see
//! [`wakeups`](crate::wakeups)), inotify on the board's bell, the WAL and the database file
//! itself; with the portable ones, a timer.

use std::path::Path;
use std::time::Duration;

/// How often an observer looks where it cannot be woken (the portable wake-ups, or inotify
/// unavailable).
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// What happened since the last wait.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Woken {
    /// A liblease writer committed: look now.
    pub(super) bell: bool,
    /// Someone wrote to the WAL: a commit may follow, which another writer would not announce.
    pub(super) wal: bool,
    /// The database file was deleted, renamed or replaced.
    pub(super) moved: bool,
}

impl Woken {
    const ALL: Woken = Woken { bell: true, wal: true, moved: true };
}

/// The portable wake-up: a timer, after which the observer looks at everything.
async fn timer() -> Woken {
    tokio::time::sleep(POLL).await;
    Woken::ALL
}

pub(super) use imp::Waker;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;

    use tokio::io::unix::AsyncFd;

    use super::*;

    /// An inotify instance with its watches, made on the caller's thread; it joins the
    /// library's runtime on the first wait.
    pub(crate) struct Waker {
        fd: Option<OwnedFd>,
        registered: Option<AsyncFd<OwnedFd>>,
        bell: Option<i32>,
        wal: Option<i32>,
        database: Option<i32>,
    }

    impl Waker {
        /// Watches the bell at `bell` (if the file has a board), the WAL and the database file.
        /// Without inotify (or its watches) the waker falls back to the timer.
        pub(crate) fn new(database: &Path, bell: Option<&Path>) -> Waker {
            let fd = if crate::wakeups::native() {
                // SAFETY: a plain system call; the descriptor is owned below.
                unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) }
            } else {
                -1 // the portable wake-ups: the timer below
            };
            if fd < 0 {
                return Waker { fd: None, registered: None, bell: None, wal: None, database: None };
            }
            // SAFETY: a new descriptor nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let watch = |path: &Path, mask: u32| -> Option<i32> {
                let path = CString::new(path.as_os_str().as_bytes()).ok()?;
                // SAFETY: a live inotify descriptor and a C string.
                let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) };
                (wd >= 0).then_some(wd)
            };
            let mut wal = database.as_os_str().to_owned();
            wal.push("-wal");
            Waker {
                bell: bell.and_then(|bell| watch(bell, libc::IN_MODIFY)),
                wal: watch(Path::new(&wal), libc::IN_MODIFY),
                database: watch(database, libc::IN_ATTRIB | libc::IN_MOVE_SELF | libc::IN_DELETE_SELF),
                fd: Some(fd),
                registered: None,
            }
        }

        /// Waits for something to happen, on the library's runtime.
        pub(crate) async fn wait(&mut self) -> Woken {
            if self.registered.is_none() {
                let fd = self.fd.take();
                // Without the WAL's watch a commit of another writer would go unseen: poll.
                self.registered = fd.filter(|_| self.wal.is_some()).and_then(|fd| {
                    // SAFETY: an owned descriptor, which the AsyncFd owns until it is dropped.
                    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.ok()
                });
            }
            let Some(registered) = &self.registered else {
                return timer().await;
            };
            loop {
                let Ok(mut ready) = registered.readable().await else {
                    return timer().await;
                };
                let mut buffer = [0u8; 4096];
                match ready.try_io(|fd| {
                    // SAFETY: reads into a buffer of the given length.
                    let read =
                        unsafe { libc::read(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
                    if read < 0 {
                        Err(std::io::Error::last_os_error())
                    } else {
                        Ok(read as usize)
                    }
                }) {
                    Ok(Ok(read)) => return self.parse(&buffer[..read]),
                    Ok(Err(_)) => return Woken::ALL,
                    Err(_would_block) => continue,
                }
            }
        }

        /// The events read, each a `struct inotify_event` followed by its name.
        fn parse(&self, mut events: &[u8]) -> Woken {
            let mut woken = Woken::default();
            const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
            while events.len() >= HEADER {
                // SAFETY: a whole header is there; read unaligned, since the buffer is bytes.
                let event = unsafe { events.as_ptr().cast::<libc::inotify_event>().read_unaligned() };
                if event.mask & libc::IN_Q_OVERFLOW != 0 {
                    return Woken::ALL;
                }
                let wd = Some(event.wd);
                woken.bell |= wd == self.bell;
                woken.wal |= wd == self.wal;
                woken.moved |= wd == self.database;
                events = events.get(HEADER + event.len as usize..).unwrap_or_default();
            }
            woken
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    use super::*;

    /// A timer: the observer looks every [`POLL`].
    pub(crate) struct Waker;

    impl Waker {
        pub(crate) fn new(_database: &Path, _bell: Option<&Path>) -> Waker {
            Waker
        }

        pub(crate) async fn wait(&mut self) -> Woken {
            timer().await
        }
    }
}
