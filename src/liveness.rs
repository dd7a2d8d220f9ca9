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
        let comparable = self.pid != 0
            && self.started != 0
            && !self.pid_namespace.is_empty()
            && self.pid_namespace == me.pid_namespace;
        comparable && start_time(self.pid) != Some(self.started)
    }
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
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }

    #[test]
    fn holders_in_other_namespaces_or_unnamed_are_never_judged() {
        let me = Identity::of_this_process();
        let elsewhere = Identity { pid: 999_999, started: 5, pid_namespace: "0:1".into() };
        assert!(!elsewhere.is_certainly_dead(&me));
        let unnamed = Identity { pid: 999_999, started: 0, pid_namespace: me.pid_namespace.clone() };
        assert!(!unnamed.is_certainly_dead(&me));
    }
}
