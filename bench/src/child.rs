//! The other processes of a scenario: this same binary re-executed with the hidden `worker`
//! subcommand. Commands go to a worker's stdin and it answers one line per event on stdout; the
//! parent waits for each line with a time limit. Dropping a `Worker` kills and reaps it, so no
//! error path leaves a process behind (and each worker also dies with its parent; see
//! `worker::main`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::Result;

/// A running worker process.
pub struct Worker {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Worker {
    /// Starts `lease-bench worker <mode> key=value...`. `name` is for error messages.
    pub fn spawn(name: &str, mode: &str, args: &[(&str, String)]) -> Result<Worker> {
        Worker::spawn_with_env(name, mode, args, &[])
    }

    /// Like [`Worker::spawn`], with `env` added to the worker's environment.
    pub fn spawn_with_env(
        name: &str,
        mode: &str,
        args: &[(&str, String)],
        env: &[(&str, &str)],
    ) -> Result<Worker> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let mut command = Command::new(exe);
        command.arg(crate::worker::SUBCOMMAND).arg(mode);
        command.arg(format!("parent={}", std::process::id()));
        for (key, value) in args {
            command.arg(format!("{key}={value}"));
        }
        let mut child = command
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start worker {name}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        // Ends when the worker's stdout closes, that is when it exits.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Worker { name: name.to_owned(), child, stdin, lines })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| format!("worker {}: stdin closed", self.name))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("worker {}: cannot send '{line}': {e}", self.name).into())
    }

    /// Waits up to `timeout` for the next line, which must start with the word `event`; returns
    /// the words after it. A line `error <message>` from the worker is returned as the error.
    pub fn expect(&mut self, event: &str, timeout: Duration) -> Result<Vec<String>> {
        let line = match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                return Err(
                    format!("worker {}: no '{event}' within {} ms", self.name, timeout.as_millis()).into()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.try_wait().ok().flatten();
                return Err(format!("worker {} exited before '{event}' ({status:?})", self.name).into());
            }
        };
        let mut words = line.split_whitespace().map(str::to_owned);
        match words.next().as_deref() {
            Some(word) if word == event => Ok(words.collect()),
            Some("error") => {
                Err(format!("worker {}: {}", self.name, words.collect::<Vec<_>>().join(" ")).into())
            }
            _ => Err(format!("worker {}: expected '{event}', got '{line}'", self.name).into()),
        }
    }

    /// Sends `signal` (SIGKILL, SIGSTOP, SIGCONT...) to the worker.
    pub fn signal(&self, signal: libc::c_int) -> Result<()> {
        // SAFETY: kill has no memory preconditions; the pid is our own child's, not yet reaped
        // (reaping happens only in `wait_exit` and `drop`, which consume or end the worker).
        if unsafe { libc::kill(self.pid() as libc::pid_t, signal) } != 0 {
            return Err(
                format!("cannot signal worker {}: {}", self.name, std::io::Error::last_os_error()).into()
            );
        }
        Ok(())
    }

    /// Closes the worker's stdin (its cue to exit) and waits up to `timeout` for it to exit.
    pub fn finish(mut self, timeout: Duration) -> Result<()> {
        self.stdin = None;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("worker {} ended with {status}", self.name).into())
                };
            }
            if Instant::now() >= deadline {
                return Err(
                    format!("worker {} did not exit within {} ms", self.name, timeout.as_millis()).into()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // SIGKILL ends even a stopped process; waiting then reaps it at once.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs workers that wait for `go <end>` and then answer `result key=value...`: waits for each
/// one's `ready` (started from `spawn(index)`), tells all of them the same end, `duration` from
/// now, and returns their results in order, each awaited up to `limit`; then lets them exit.
pub fn run_to_deadline(
    count: usize,
    spawn: impl Fn(usize) -> Result<Worker>,
    duration: Duration,
    limit: Duration,
) -> Result<Vec<std::collections::HashMap<String, f64>>> {
    let mut workers = Vec::with_capacity(count);
    for index in 0..count {
        let mut worker = spawn(index)?;
        worker.expect("ready", Duration::from_secs(15))?;
        workers.push(worker);
    }
    let end = crate::clock::now_ns() + duration.as_nanos() as u64;
    for worker in &mut workers {
        worker.send(&format!("go {end}"))?;
    }
    let mut results = Vec::with_capacity(count);
    for worker in &mut workers {
        results.push(crate::worker::parse_fields(&worker.expect("result", limit)?)?);
    }
    for worker in workers {
        worker.finish(Duration::from_secs(5))?;
    }
    Ok(results)
}
