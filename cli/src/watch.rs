//! `lease watch`: `lease status`, shown again whenever the database may have changed (woken by
//! its commits, not polled), and at least every `--every` so that the times shown stay true.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use lease::inspect::CommitWait;

use crate::{status, Exit, Failure, Report};

/// Shows the status, then again after each change, `count` times in all (`None`: until
/// interrupted). Each frame replaces the last on a terminal; elsewhere frames follow one another,
/// each after a line of its own.
pub fn run(db: &Path, every: Duration, count: Option<u64>) -> Result<Report, Failure> {
    // Watched before the first look: a commit in between is not missed.
    let mut wait = CommitWait::new(db);
    let terminal = std::io::stdout().is_terminal();
    let mut shown = 0u64;
    loop {
        // The first look must succeed (a database that is not there is not watched); a later
        // one may find the database busy for a moment (a process opening it, recovering it):
        // that is shown, and the watch goes on.
        let frame = match status::run(db, false) {
            Ok(frame) => frame.text,
            Err(failure) if shown > 0 => format!("lease: {}\n", failure.message),
            Err(failure) => return Err(failure),
        };
        let mut out = std::io::stdout().lock();
        let written = if terminal {
            // Home, clear the screen, then the frame.
            write!(out, "\x1b[H\x1b[2J{frame}")
        } else {
            write!(out, "--- lease watch: {} ---\n{frame}", db.display())
        };
        match written.and_then(|()| out.flush()) {
            Ok(()) => {}
            // A reader that stopped (`| head`) wanted no more.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(Failure::new(Exit::Unreadable, format!("cannot write the status: {e}"))),
        }
        shown += 1;
        if count.is_some_and(|count| shown >= count) {
            break;
        }
        wait.wait(every);
    }
    Ok(Report { text: String::new(), exit: Exit::Ok })
}
