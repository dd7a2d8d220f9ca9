//! `lease`: looks at a liblease database from outside. `lease status` shows its leases and the
//! writers waiting (`lease watch`, again at each change), `lease release` breaks a stuck lease,
//! `lease check` checks the file and the files beside it. Reading never makes, writes or locks
//! anything for writing (see `lease::inspect`); only `release` writes.

mod check;
mod human;
mod release;
mod status;
mod watch;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Every exit status, as `--help` and cli/README.md list them.
const EXIT_STATUS: &str = "\
Exit status:
  0  done; check found no problem; release broke the lease, or found it free already
  1  check found something wrong; release refused (a holder that is or may be alive, without
     --force), or the lease changed hands while it was being released
  2  the command line was not understood
  3  the database could not be opened, read or written (missing, unreadable, not a database)
  4  release: the database has no lease of that key";

/// What a command ended with, as its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Ok = 0,
    /// `check` found something wrong, or `release` refused.
    Wrong = 1,
    /// The database could not be opened, read or written.
    Unreadable = 3,
    NoSuchLease = 4,
}

/// A command's report, for stdout, and its exit status.
struct Report {
    text: String,
    exit: Exit,
}

/// Why a command stopped: one line for stderr, after `lease: `.
struct Failure {
    exit: Exit,
    message: String,
}

impl Failure {
    fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure { exit, message: message.into() }
    }

    /// The database at `path` could not be opened, read or written.
    fn unreadable(path: &std::path::Path) -> impl FnOnce(lease::Error) -> Failure + '_ {
        move |error| {
            Failure::new(Exit::Unreadable, format!("{}: {}", path.display(), lease::inspect::reason(&error)))
        }
    }
}

#[derive(Parser)]
#[command(
    name = "lease",
    version = lease::inspect::LIBRARY_VERSION,
    about = "Looks at the leases, the waiting writers and the files of a database shared through liblease.",
    after_help = EXIT_STATUS
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Shows every lease, the writers waiting, the WAL's size and the schema version.
    ///
    /// For each lease in the database: its key and label, its holder's pid, whether that process
    /// is alive (yes, no, or unknown: another PID namespace or boot, or a row that names no
    /// process), whether the lease is held, ran out or is free, when it runs out, and its
    /// generation. Then the writers of other processes waiting on the board for SQLite's write
    /// lock. A SQLite database without a lease table shows no leases.
    ///
    /// Opens the database read-only: makes, writes and locks nothing, posts nothing on the board.
    #[command(after_help = STATUS_EXIT)]
    Status {
        /// The database file.
        db: PathBuf,
        /// One JSON object instead of the table: `leases` (each with key, label, pid, alive
        /// true/false/null, held, state, held_for_ms, expires_in_ms, generation, holder), `writers`, `board`,
        /// `wal_bytes`, `schema_version`.
        #[arg(long)]
        json: bool,
    },
    /// Breaks a stuck lease, as a waiter takes over from a crashed holder.
    ///
    /// The lease is then free, its generation one higher, and its old holder loses it: at its
    /// next renewal, and at once in a fenced transaction. A lease whose holder is dead, or that
    /// ran out, is broken without asking; one that a live holder keeps (or a holder whose
    /// liveness cannot be told), only with --force.
    #[command(after_help = RELEASE_EXIT)]
    Release {
        /// The database file.
        db: PathBuf,
        /// The lease's key.
        key: String,
        /// Break it even though its holder is (or may be) alive; prints a warning.
        #[arg(long)]
        force: bool,
    },
    /// Shows the status, again whenever it changes, until interrupted.
    ///
    /// What `lease status` shows, shown again when the database may have changed: woken by its
    /// commits (a lease taken, renewed or released; any write), through inotify on Linux and
    /// Android, and at least every --every, so that the times shown stay true. Reads as `status`
    /// does: makes, writes and locks nothing.
    #[command(after_help = STATUS_EXIT)]
    Watch {
        /// The database file.
        db: PathBuf,
        /// The longest time between two frames, in seconds.
        #[arg(long, default_value_t = 1.0, value_parser = positive_seconds)]
        every: f64,
        /// Stop after this many frames (for scripts and tests).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Checks the database and the files beside it.
    ///
    /// SQLite's integrity check, the lease table's schema version, the board, and the files
    /// beside the database (-wal, -shm, -journal, -liblease: present or not, sizes, modes): one
    /// line per finding, `ok:`, `warning:` or `problem:`. Opens the database read-only.
    #[command(after_help = CHECK_EXIT)]
    Check {
        /// The database file.
        db: PathBuf,
    },
}

const STATUS_EXIT: &str = "\
Exit status:
  0  shown
  2  the command line was not understood
  3  the database could not be read (missing, unreadable, not a SQLite database)";

const RELEASE_EXIT: &str = "\
Exit status:
  0  broken, or free already
  1  refused: a holder that is or may be alive, without --force; or the lease changed hands
     while it was being released
  2  the command line was not understood
  3  the database could not be read or written
  4  the database has no lease of that key";

const CHECK_EXIT: &str = "\
Exit status:
  0  no problem found (warnings may have been)
  1  a problem found
  2  the command line was not understood
  3  the database could not be opened (missing, unreadable)";

fn main() -> ExitCode {
    // A bug is reported in one line like any other failure, without a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string().replace('\n', " ");
        let _ = writeln!(std::io::stderr(), "lease: internal error: {message}");
    }));
    let cli = Cli::parse();
    let ran = match cli.command {
        Command::Status { db, json } => status::run(&db, json),
        Command::Release { db, key, force } => release::run(&db, &key, force),
        Command::Check { db } => check::run(&db),
        Command::Watch { db, every, count } => {
            watch::run(&db, std::time::Duration::from_secs_f64(every), count)
        }
    };
    let exit = match ran {
        Ok(report) => match std::io::stdout().lock().write_all(report.text.as_bytes()) {
            // A reader that stopped early (`| head`) wanted no more.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                warn(format!("cannot write the report: {e}"));
                Exit::Unreadable
            }
            _ => report.exit,
        },
        Err(failure) => {
            warn(failure.message);
            failure.exit
        }
    };
    ExitCode::from(exit as u8)
}

/// A number of seconds above zero, and not absurdly large.
fn positive_seconds(text: &str) -> Result<f64, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("not a number of seconds: {text}"))?;
    if seconds > 0.0 && seconds <= 86_400.0 {
        Ok(seconds)
    } else {
        Err("a number of seconds above 0, at most a day".into())
    }
}

/// One line on stderr, after `lease: `.
fn warn(line: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "lease: {line}");
}
