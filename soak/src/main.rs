//! lease-soak: liblease under kills and stops, for minutes, checked without trusting it.
//!
//! `lease-soak [--minutes N] [--seconds N] [--processes 8] [--dir DIR] [--seed S]` runs one
//! driver and N worker processes (this binary again, with the hidden `worker` subcommand) over
//! one database file, for 10 minutes unless told otherwise. The workers take a short lease (800
//! ms, renewed every 200 ms) and write in fenced, plain and chunked transactions, logging each
//! fact to a log of their own; the driver SIGKILLs them (and starts new ones), and SIGSTOPs and
//! SIGCONTs them, past the lease or briefly. At the end the checks read the logs and the
//! database, print the figures, and the program exits 1 if any check failed (0 if all passed,
//! 2 if it could not run).
//!
//! - `worker`: what a worker does and logs; `event`: the log's lines, written and read;
//! - `driver`: the processes and the signals, and what it records of each stop;
//! - `check`: the checks, and why each is sound; `schema`: the tables;
//! - `rng`, `time`: the seeded choices, and the clock every process shares.
//!
//! Linux: the driver reads `/proc` to see that a stopped worker's threads have all stopped.
//! `--unsafe-writes` (not in the usage) makes workers write without the fence after a stop, a
//! planted bug for the soak's own test, which expects the checks to fail.

mod check;
mod driver;
mod event;
mod rng;
mod schema;
mod time;
mod worker;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lease::{Database, Store};

use driver::Plan;

/// The lease of every worker; it is renewed every quarter of it.
const LEASE: Duration = Duration::from_millis(800);

const USAGE: &str = "\
usage: lease-soak [--minutes N] [--seconds N] [--processes N] [--dir DIR] [--seed S]

Runs N worker processes (default 8) over one database for the given time (default 10 minutes),
killing, stopping and continuing them at random, then checks mutual exclusion, fencing and every
committed row from the workers' logs and the database. Exits 1 if a check failed.

  --minutes N, --seconds N   how long to run (added together)
  --processes N              how many workers at a time (at least 2)
  --dir DIR                  where the database and the logs go (kept); by default a new
                             temporary directory, removed if every check passed
  --seed S                   the seed of every random choice (printed at the start)";

struct Options {
    plan: Plan,
    dir: Option<PathBuf>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(worker::SUBCOMMAND) {
        let result = worker::WorkerConfig::from_args(&args[1..]).and_then(worker::run);
        if let Err(message) = result {
            eprintln!("lease-soak worker: {message}");
            std::process::exit(1);
        }
        return;
    }
    let options = match parse_args(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    match run(&options) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(message) => {
            eprintln!("lease-soak: {message}");
            std::process::exit(2);
        }
    }
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut seconds = None::<u64>;
    let mut options = Options {
        plan: Plan {
            duration: Duration::ZERO,
            processes: 8,
            lease: LEASE,
            seed: time::monotonic_ns() ^ u64::from(std::process::id()).rotate_left(32),
            unsafe_writes: false,
        },
        dir: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = || -> Result<u64, String> {
            let value = args.next().ok_or_else(|| format!("{arg} needs a number"))?;
            value.parse().map_err(|_| format!("{arg}: '{value}' is not a number"))
        };
        match arg.as_str() {
            "--minutes" => *seconds.get_or_insert(0) += number()? * 60,
            "--seconds" => *seconds.get_or_insert(0) += number()?,
            "--processes" => options.plan.processes = number()? as usize,
            "--seed" => options.plan.seed = number()?,
            "--dir" => options.dir = Some(args.next().ok_or("--dir needs a directory")?.into()),
            "--unsafe-writes" => options.plan.unsafe_writes = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    if options.plan.processes < 2 {
        return Err("--processes: at least 2, or nothing contends".into());
    }
    options.plan.duration = Duration::from_secs(seconds.unwrap_or(10 * 60));
    if options.plan.duration.is_zero() {
        return Err("the run must last at least a second".into());
    }
    Ok(options)
}

/// Runs the soak and its checks; returns whether every check passed.
fn run(options: &Options) -> Result<bool, String> {
    let plan = &options.plan;
    let dir = match &options.dir {
        Some(dir) => dir.clone(),
        None => {
            std::env::temp_dir().join(format!("lease-soak-{}-{}", std::process::id(), time::monotonic_ns()))
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?.next().is_some() {
        return Err(format!("{} is not empty: a run's logs would mix with another's", dir.display()));
    }
    println!(
        "lease-soak: {} processes for {} s, lease {} ms renewed every {} ms, seed {}{}",
        plan.processes,
        plan.duration.as_secs(),
        plan.lease.as_millis(),
        (plan.lease / 4).as_millis(),
        plan.seed,
        if plan.unsafe_writes { ", UNSAFE WRITES (a planted bug)" } else { "" }
    );
    println!("lease-soak: the database and the logs are in {}", dir.display());
    let path = dir.join("soak.db");
    let (database, store) = create(&path)?;
    let record = driver::run(plan, &dir, &path, &store)?;
    let passed = check::report(plan, &record, &database)?;
    if passed && options.dir.is_none() {
        drop((database, store));
        std::fs::remove_dir_all(&dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    } else {
        println!("lease-soak: kept {}", dir.display());
    }
    Ok(passed)
}

/// Creates the database, its lease table and the soak's tables, before any worker opens it
/// (processes opening a fresh file at the same moment would race to switch it to WAL).
fn create(path: &Path) -> Result<(Database, Store), String> {
    let database = Database::open(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let store = Store::open(path).map_err(|e| format!("open the lease table: {e}"))?;
    for sql in schema::CREATE {
        database.execute(sql, &[]).map_err(|e| format!("create the tables: {e}"))?;
    }
    Ok((database, store))
}
