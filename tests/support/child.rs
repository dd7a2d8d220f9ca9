//! Child processes for tests: the test binary runs itself again, as another OS process, in a
//! role that the test file defines.
//!
//! The child runs one ignored test, `child_process`, with `--exact child_process --ignored
//! --nocapture --test-threads=1`; the role and its arguments are in its environment. Each test
//! file that runs children has that test, and lists its roles in it:
//!
//! ```text
//! #[test]
//! #[ignore = "not a test: the other process of the tests in this file, which run it with --ignored"]
//! fn child_process() {
//!     support::child::run_role(&[("holder", holder), ("writer", writer)]);
//! }
//!
//! fn holder(args: &[String]) { ... say("HELD"); ... }
//! ```
//!
//! It is ignored so that a normal run does not count it as a test that passed; with no role in
//! the environment (`cargo test -- --ignored`) it does nothing.
//!
//! Parent and child talk in lines:
//! - The child says things with [`say`]: one line on stdout that begins with [`SAYS`], flushed at
//!   once. Its stdout also carries the test harness's own words (`running 1 test`, `test
//!   child_process ... ok`, on the same line as the child's first words); the parent passes over
//!   whatever does not carry the prefix.
//! - The parent sends commands with [`Child::send`], one line each on the child's stdin, and
//!   closes it with [`Child::finish`], which means "finish and exit". What the commands are is
//!   the role's business.
//! - [`Child::expect`] waits for the next line whose first word is given, passing over others;
//!   past [`PATIENCE`] it fails the test with everything the child said.
//! - The child's stderr (its panics) is kept, and shown with what it said when the test fails.
//!
//! A role fails by panicking: the child's test fails, the child exits with an error, and the
//! parent's `finish` asserts that it exited successfully. Dropping a [`Child`] kills it with
//! SIGKILL (which ends a stopped process too) and reaps it, whether the test passed or panicked,
//! so that no test leaves a process behind.

use std::fmt::Display;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The child's role, in its environment.
const ROLE: &str = "LEASE_TEST_CHILD_ROLE";
/// The role's arguments, in the child's environment, separated by [`SEPARATOR`].
const ARGS: &str = "LEASE_TEST_CHILD_ARGS";
/// The ASCII unit separator, which no argument of a test contains.
const SEPARATOR: char = '\u{1f}';
/// Begins each line that a child says to its parent.
pub const SAYS: &str = "@@ ";
/// The longest a parent waits for a child's line or exit; reached only when something is wrong.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A role: its name, and the function that plays it, given the arguments.
pub type Role = (&'static str, fn(&[String]));

/// In a child, plays the role that the parent named, one of `roles`; in a normal test run,
/// does nothing.
pub fn run_role(roles: &[Role]) {
    let Ok(role) = std::env::var(ROLE) else { return };
    let args = std::env::var(ARGS).expect("the parent passed the role's arguments");
    let args: Vec<String> =
        if args.is_empty() { Vec::new() } else { args.split(SEPARATOR).map(String::from).collect() };
    let Some(&(_, play)) = roles.iter().find(|(name, _)| *name == role) else {
        let names: Vec<&str> = roles.iter().map(|(name, _)| *name).collect();
        panic!("unknown role '{role}'; this test binary's roles are {names:?}");
    };
    play(&args);
}

/// In a child, says one line to the parent, flushed at once. Lines said by several threads do
/// not mix.
pub fn say(line: impl Display) {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{SAYS}{line}")
        .and_then(|()| stdout.flush())
        .expect("the parent reads the child's stdout");
}

/// A child process, seen from the parent.
pub struct Child {
    /// What the test calls the child, in its messages.
    name: String,
    process: std::process::Child,
    /// Closed by `finish`.
    stdin: Option<ChildStdin>,
    /// The lines the child said, without the prefix, from a thread that reads its stdout; they
    /// end when its stdout closes.
    lines: Receiver<String>,
    /// Every line taken from `lines`, for the story of a failed test.
    heard: Vec<String>,
    /// The thread that keeps the child's stderr, until it closes.
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Child {
    /// Starts this test binary again as a child that plays `role` with `args`. `name` is what
    /// the test's messages call it.
    pub fn spawn(name: &str, role: &str, args: &[impl AsRef<str>]) -> Child {
        Child::spawn_with_env(name, role, args, &[])
    }

    /// Like [`Child::spawn`], with `env` added to the child's environment.
    pub fn spawn_with_env(name: &str, role: &str, args: &[impl AsRef<str>], env: &[(&str, &str)]) -> Child {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        assert!(
            !args.iter().any(|arg| arg.contains(SEPARATOR)),
            "an argument of '{name}' holds the separator"
        );
        let exe = std::env::current_exe().expect("the test binary's path is known");
        let mut process = Command::new(exe)
            .args(["--exact", "child_process", "--ignored", "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .env(ARGS, args.join(&SEPARATOR.to_string()))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("'{name}' does not start: {e}"));
        let stdout = process.stdout.take().expect("stdout is piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The harness's `test child_process ... ` comes before the first line.
                let Some(at) = line.find(SAYS) else { continue };
                if send.send(line[at + SAYS.len()..].to_owned()).is_err() {
                    return;
                }
            }
        });
        let mut stderr = process.stderr.take().expect("stderr is piped");
        let stderr = std::thread::spawn(move || {
            let mut kept = Vec::new();
            let _ = stderr.read_to_end(&mut kept);
            kept
        });
        let stdin = process.stdin.take();
        Child { name: name.to_owned(), process, stdin, lines, heard: Vec::new(), stderr: Some(stderr) }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Sends one command line to the child.
    #[track_caller]
    pub fn send(&mut self, command: &str) {
        let Some(stdin) = self.stdin.as_mut() else { panic!("the input of '{}' is closed", self.name) };
        if let Err(e) = writeln!(stdin, "{command}") {
            panic!("'{}' reads no more commands: {e}", self.name);
        }
    }

    /// Waits for the next line the child says, whatever it is.
    #[track_caller]
    pub fn next_line(&mut self) -> String {
        self.wait_for(|_| true, "another line")
    }

    /// Waits for a line whose first word is `word`, passing over the others; returns it.
    #[track_caller]
    pub fn expect(&mut self, word: &str) -> String {
        self.wait_for(|line| line.split_whitespace().next() == Some(word), word)
    }

    #[track_caller]
    fn wait_for(&mut self, wanted: impl Fn(&str) -> bool, what: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.heard.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("'{}' said no {what} in {PATIENCE:?}; it said {:?}", self.name, self.heard)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("'{}' ended without saying {what}; it said {:?}", self.name, self.heard)
                }
            }
        }
    }

    /// Every line the child said that the test has taken so far (read, passed over by
    /// [`Child::expect`], or drained).
    pub fn heard(&self) -> &[String] {
        &self.heard
    }

    /// The lines the child said that the test has not read, without waiting.
    pub fn drain(&mut self) -> Vec<String> {
        let unread: Vec<String> = self.lines.try_iter().collect();
        self.heard.extend(unread.iter().cloned());
        unread
    }

    /// Sends the child a signal.
    #[track_caller]
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).expect("a pid fits pid_t");
        // SAFETY: signals a child process this test owns and has not reaped.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "signal {signal} to '{}': {}", self.name, std::io::Error::last_os_error());
    }

    /// Waits until every thread of the child has stopped (after a SIGSTOP).
    #[track_caller]
    pub fn wait_until_stopped(&self) {
        let pid = libc::pid_t::try_from(self.pid()).expect("a pid fits pid_t");
        let mut status = 0;
        // SAFETY: waits for a state change of our own child, which is not reaped yet; a stop
        // leaves it unreaped.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) };
        assert_eq!(rc, pid, "waitpid on '{}': {}", self.name, std::io::Error::last_os_error());
        assert!(libc::WIFSTOPPED(status), "'{}' ended instead of stopping: status {status:#x}", self.name);
    }

    /// Waits for the child to exit (after a SIGKILL, say), and reaps it.
    #[track_caller]
    pub fn wait(&mut self) -> ExitStatus {
        match self.process.wait() {
            Ok(status) => status,
            Err(e) => panic!("'{}' is not reaped: {e}", self.name),
        }
    }

    /// Closes the child's input, so that it finishes, and waits for it to exit successfully.
    /// Returns the lines it said that the test has not read.
    #[track_caller]
    pub fn finish(&mut self) -> Vec<String> {
        drop(self.stdin.take());
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.process.try_wait().expect("the child's status reads") {
                break status;
            }
            assert!(Instant::now() < deadline, "'{}' did not exit in {PATIENCE:?}", self.name);
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "'{}' failed: {status}", self.name);
        self.rest()
    }

    /// For a child that has exited (and been reaped): every line it said that the test has not
    /// read, once its stdout has closed.
    #[track_caller]
    pub fn rest(&mut self) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        let mut unread = Vec::new();
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => unread.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the stdout of '{}' stayed open after it exited", self.name)
                }
            }
        }
        self.heard.extend(unread.iter().cloned());
        unread
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Both calls do nothing once the child is reaped.
        let _ = self.process.kill();
        let _ = self.process.wait();
        if std::thread::panicking() {
            // Dead, the child has closed its stdout and stderr: the readers end.
            while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
                self.heard.push(line);
            }
            let stderr = self.stderr.take().and_then(|reader| reader.join().ok()).unwrap_or_default();
            eprintln!(
                "'{}' (pid {}) said {:?}; its stderr:\n{}",
                self.name,
                self.process.id(),
                self.heard,
                String::from_utf8_lossy(&stderr)
            );
        }
    }
}
