//! Is a lease's holder still alive? Used only to take over from a crashed holder sooner than its
//! lease would run out; exclusion never rests on it.
//!
//! A holder is named by its pid, the time it started (so that a reused pid is told apart), and
//! its PID namespace (pids of two namespaces cannot be compared). A waiter judges a holder dead
//! only when all three are comparable and the process with that pid is gone, started at another
//! time, or is a zombie. Otherwise the answer is "unknown" and the lease's expiry decides.
//!
//! Linux and Android read `/proc`. On other platforms liveness is always unknown: Apple's
//! sandbox gives an app extension no sight of the app's process, so there the lease's expiry is
//! the only failover.

/// Who this process is, as written into the lease row of every lease it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub pid: u32,
    /// The process's start time in clock ticks after boot (`/proc/<pid>/stat`, field 22); 0 when
    /// unknown.
    pub started: u64,
    /// The PID namespace, as `device:inode` of `/proc/self/ns/pid`; empty when unknown.
    pub pid_namespace: String,
}

impl Identity {
    /// This process's identity.
    pub(crate) fn of_this_process() -> Identity {
        let pid = std::process::id();
        Identity {
            pid,
            started: start_time(pid).unwrap_or(0),
            pid_namespace: pid_namespace().unwrap_or_default(),
        }
    }

    /// True only when the process this identity names has certainly ended, as seen from a
    /// process whose identity is `me`.
    pub(crate) fn is_certainly_dead(&self, me: &Identity) -> bool {
        self.is_judged_by(me) && start_time(self.pid) != Some(self.started)
    }

    /// Whether a process whose identity is `me` can judge this one's liveness at all.
    fn is_judged_by(&self, me: &Identity) -> bool {
        self.pid != 0
            && self.started != 0
            && !self.pid_namespace.is_empty()
            && self.pid_namespace == me.pid_namespace
    }
}

/// The last holder a lock found alive, with a pidfd on its process (Linux 5.3 and later).
///
/// A waiter judges the holder at every look, and a look comes with every wake-up: reading
/// `/proc/<pid>/stat` each time (an open, a read of text the kernel formats, a close) was a fifth
/// of the CPU of 32 processes contending for one key. A pidfd opened before the start time was
/// checked refers to that very process (a pid reused before it was opened shows another start
/// time), and it becomes readable once the whole process has ended: so the same holder is judged
/// again with one `poll`, and its pidfd also serves the waiter's wake-up ([`KnownAlive::pidfd`]).
pub(crate) struct KnownAlive {
    known: std::sync::Mutex<Option<Verified>>,
    /// False with the portable wake-ups (`LIBLEASE_WAKEUPS=portable`), which run as Apple
    /// platforms do, with no pidfd: then every judgement reads `/proc`.
    pidfds: bool,
}

struct Verified {
    pid: u32,
    started: u64,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pidfd: std::os::fd::OwnedFd,
}

impl KnownAlive {
    pub(crate) fn new() -> KnownAlive {
        KnownAlive::using_pidfds(crate::wakeups::native())
    }

    pub(crate) fn using_pidfds(pidfds: bool) -> KnownAlive {
        KnownAlive { known: std::sync::Mutex::new(None), pidfds }
    }

    /// As [`Identity::is_certainly_dead`], remembering a holder found alive.
    pub(crate) fn is_certainly_dead(&self, holder: &Identity, me: &Identity) -> bool {
        use crate::sync::MutexExt;
        if !holder.is_judged_by(me) {
            return false;
        }
        let mut known = self.known.locked();
        if let Some(verified) = known.as_ref().filter(|known| known.names(holder)) {
            if !verified.has_ended() {
                return false;
            }
            *known = None;
            return true;
        }
        let verified = if self.pidfds { Verified::open(holder) } else { None };
        let dead = start_time(holder.pid) != Some(holder.started);
        if !dead {
            *known = verified;
        }
        dead
    }

    /// A descriptor that becomes readable when `holder`'s process ends: a copy of the one kept
    /// since [`KnownAlive::is_certainly_dead`] last found it alive.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn pidfd(&self, holder: &Identity) -> Option<std::os::fd::OwnedFd> {
        use crate::sync::MutexExt;
        let known = self.known.locked();
        known.as_ref().filter(|known| known.names(holder))?.pidfd.try_clone().ok()
    }
}

impl Verified {
    fn names(&self, holder: &Identity) -> bool {
        self.pid == holder.pid && self.started == holder.started
    }

    /// A pidfd on the process with `holder`'s pid, whoever it is: the caller checks the start
    /// time after this.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn open(holder: &Identity) -> Option<Verified> {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, holder.pid as libc::pid_t, 0) };
        // SAFETY: the kernel just returned this descriptor to us alone.
        let pidfd = (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })?;
        Some(Verified { pid: holder.pid, started: holder.started, pidfd })
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn open(_holder: &Identity) -> Option<Verified> {
        None
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn has_ended(&self) -> bool {
        has_ended(&self.pidfd)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn has_ended(&self) -> bool {
        true
    }
}

/// True once every thread of the process behind `pidfd` has ended: a pidfd becomes readable
/// then, and stays so.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn has_ended(pidfd: &std::os::fd::OwnedFd) -> bool {
    use std::os::fd::AsRawFd;
    let mut polled = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd; zero timeout.
    unsafe { libc::poll(&mut polled, 1, 0) > 0 }
}

/// True when no process has the pid `pid` (in this PID namespace): `kill(pid, 0)` says so. A
/// process this one may not signal (another app's, in a sandbox) is not gone.
pub(crate) fn is_gone(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: signal 0 checks for the process and sends nothing.
    unsafe { libc::kill(pid, 0) != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) }
}

/// The start time of a live (not zombie) process, or `None` when there is no such process.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself hold spaces or parentheses:
    // the fields after it start after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?;
    // `/proc/<pid>/stat` describes the main thread. It reads as a zombie both when the process
    // has ended and when only its main thread has (pthread_exit in main) while other threads,
    // perhaps the one holding the lease, still run: then those threads are still listed.
    let ended = matches!(state, "X" | "x") || (state == "Z" && !has_other_threads(pid));
    if ended {
        return None;
    }
    // Field 3 was the state; field 22 is the start time.
    fields.nth(18)?.parse().ok()
}

/// True when the process lists a thread besides its main one in `/proc/<pid>/task`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn has_other_threads(pid: u32) -> bool {
    let main = pid.to_string();
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| tasks.filter_map(|task| task.ok()).any(|task| task.file_name() != main.as_str()))
        .unwrap_or(false)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn start_time(_pid: u32) -> Option<u64> {
    None
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn pid_namespace() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let namespace = std::fs::metadata("/proc/self/ns/pid").ok()?;
    Some(format!("{}:{}", namespace.dev(), namespace.ino()))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn pid_namespace() -> Option<String> {
    None
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_fully_named() {
        let me = Identity::of_this_process();
        assert!(me.started > 0 && !me.pid_namespace.is_empty());
        assert!(!me.is_certainly_dead(&me));
    }

    #[test]
    fn an_exited_process_is_dead_and_a_reused_pid_is_not_its_holder() {
        let me = Identity::of_this_process();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let started = start_time(pid);
        child.wait().unwrap();
        let gone = Identity { pid, started: started.unwrap_or(1), pid_namespace: me.pid_namespace.clone() };
        assert!(gone.is_certainly_dead(&me));
        // Our own pid with another start time: the holder that had this pid is gone.
        let reused = Identity { started: me.started + 1, ..me.clone() };
        assert!(reused.is_certainly_dead(&me));
    }

    #[test]
    fn a_zombie_is_dead() {
        let me = Identity::of_this_process();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let started = start_time(pid).unwrap_or(1);
        // Not reaped yet: a zombie once it has exited.
        let zombie = Identity { pid, started, pid_namespace: me.pid_namespace.clone() };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !zombie.is_certainly_dead(&me) {
            assert!(std::time::Instant::now() < deadline, "the exited child never looked dead");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child.wait().unwrap();
    }

    #[test]
    fn a_process_whose_main_thread_ended_is_alive_while_other_threads_run() {
        // SAFETY: the child only calls async-signal-safe functions and thread primitives of libc
        // before it ends with _exit; the parent only waits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            extern "C" fn linger(_: *mut libc::c_void) -> *mut libc::c_void {
                unsafe {
                    libc::sleep(30);
                    libc::_exit(0)
                }
            }
            unsafe {
                let mut thread = std::mem::zeroed();
                libc::pthread_create(&mut thread, std::ptr::null(), linger, std::ptr::null_mut());
                // The raw exit system call ends this thread only (pthread_exit would unwind
                // through Rust frames, which aborts).
                libc::syscall(libc::SYS_exit, 0);
            }
        }
        let me = Identity::of_this_process();
        let started = start_time(pid as u32).unwrap();
        let holder = Identity { pid: pid as u32, started, pid_namespace: me.pid_namespace.clone() };
        // Wait until the main thread has ended: the process then reads as a zombie.
        let stat = || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !stat()[stat().rfind(')').unwrap() + 1..].trim_start().starts_with('Z') {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!holder.is_certainly_dead(&me), "its other thread still runs");
        let known = KnownAlive::using_pidfds(true);
        assert!(!known.is_certainly_dead(&holder, &me));
        assert!(!known.is_certainly_dead(&holder, &me), "nor by its pidfd");
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }

    #[test]
    fn a_holder_known_alive_is_known_dead_once_it_ends_and_its_pidfd_tells_so() {
        for pidfds in [true, false] {
            let me = Identity::of_this_process();
            let mut child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
            let pid = child.id();
            let started = start_time(pid).unwrap();
            let holder = Identity { pid, started, pid_namespace: me.pid_namespace.clone() };
            let known = KnownAlive::using_pidfds(pidfds);
            assert!(!known.is_certainly_dead(&holder, &me));
            assert!(!known.is_certainly_dead(&holder, &me), "judged again from what is known");
            let pidfd = known.pidfd(&holder);
            assert_eq!(pidfd.is_some(), pidfds, "a pidfd on the holder found alive, if pidfds are used");
            let other = Identity { started: holder.started + 1, ..holder.clone() };
            assert!(known.pidfd(&other).is_none(), "another identity on the same pid is not known");
            child.kill().unwrap();
            // Not reaped: a zombie, which is dead too.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !known.is_certainly_dead(&holder, &me) {
                assert!(std::time::Instant::now() < deadline, "the killed holder never looked dead");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            if let Some(pidfd) = pidfd {
                assert!(has_ended(&pidfd), "the copy of the pidfd is readable");
            }
            child.wait().unwrap();
            assert!(known.is_certainly_dead(&holder, &me), "and dead once reaped");
        }
    }

    #[test]
    fn holders_in_other_namespaces_or_unnamed_are_never_judged() {
        let me = Identity::of_this_process();
        let elsewhere = Identity { pid: 999_999, started: 5, pid_namespace: "0:1".into() };
        assert!(!elsewhere.is_certainly_dead(&me));
        let unnamed = Identity { pid: 999_999, started: 0, pid_namespace: me.pid_namespace.clone() };
        assert!(!unnamed.is_certainly_dead(&me));
        let known = KnownAlive::new();
        assert!(!known.is_certainly_dead(&elsewhere, &me) && !known.is_certainly_dead(&unnamed, &me));
    }
}
