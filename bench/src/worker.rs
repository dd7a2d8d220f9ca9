//! The hidden `worker` subcommand: the other processes of the multi-process scenarios.
//!
//! `lease-bench worker <mode> parent=<pid> key=value...`. A worker answers on stdout, one line
//! per event (`<event> <words>...`, or `error <message>` before exiting with status 1), takes
//! commands on stdin where its mode has any, and exits when its stdin closes or its parent dies.
//! Timestamps are nanoseconds of `CLOCK_MONOTONIC` (see `clock`), comparable across processes.
//!
//! Modes:
//! - `handover kind= db= key=`: `acquire N` answers `waiting N` just before waiting and
//!   `acquired N <t>` just after holding; `release N <hold_ms>` holds `hold_ms` more, then
//!   answers `released N <t> <t_done>` with the times taken just before releasing and when the
//!   release call returned.
//! - `hold kind= db= key= lease_ms= renew_ms= backoff_ms=`: takes the lease, answers
//!   `holding <t>`, then sits idle; `check` answers `check <held|lost|believes-held>`.
//! - `wait kind= db= key= timeout_ms= lease_ms= renew_ms= backoff_ms=`: answers `waiting`,
//!   waits for the lease, answers `acquired <t>`, releases and exits.
//! - `writer design= db= id= txn_ms=`: answers `ready`; `go <end_t>` runs short transactions
//!   back to back until `end_t`, then answers `result key=value...`.
//! - `footprint kind= db= hold_ms=`: measures its own resident and anonymous memory and threads
//!   before and after opening a store, taking a lock, holding it, and writing and reading a row
//!   through a database; answers `footprint key=value...`.
//! - `suspend db= key= lease_ms=`: holds the lease and runs a chunked import on a thread, rows
//!   back to back; answers `ready` once the import runs; `suspend` suspends the process
//!   (`lease::lifecycle::suspend`) and answers `suspended <t_called> <t_returned> <outcome>`.
//! - `commit db=`: `commit N` inserts row N into table `changes` (through liblease) and answers
//!   `committed N <t>` with the time the commit returned.
//! - `observe db=`: observes the database (`Database::observe`), answers `ready`, then for each
//!   call `changed <t> <max>`: the time the callback began, and the largest N it then reads.
//! - `contend kind= db= key= hold_ms=`: answers `ready`; `go <end_t>` loops until `end_t`:
//!   acquire (10 s timeout), hold `hold_ms`, release; then answers `result acquisitions=
//!   failures= cpu_s=`, the CPU time of the whole process over the loop.
//! - `poll db= every_ms=`: the same with plain SQLite, looking at `PRAGMA data_version` every
//!   `every_ms`.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use lease::LockOptions;

use crate::clock::now_ns;
use crate::contender::{self, LockKind};
use crate::procfs;
use crate::stats::Summary;
use crate::writers::{run_short, Design, Writers};
use crate::Result;

pub const SUBCOMMAND: &str = "worker";

/// How long a worker waits for a lease unless told otherwise.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a worker; returns the process's exit status.
pub fn main(args: &[String]) -> i32 {
    let Some((mode, rest)) = args.split_first() else {
        println!("error no worker mode");
        return 2;
    };
    let result = Args::parse(rest).and_then(|args| {
        die_with_parent(&args)?;
        match mode.as_str() {
            "handover" => handover(&args),
            "hold" => hold(&args),
            "wait" => wait(&args),
            "writer" => writer(&args),
            "footprint" => footprint(&args),
            "suspend" => suspend(&args),
            "commit" => commit(&args),
            "observe" => observe(&args),
            "poll" => poll(&args),
            "contend" => contend(&args),
            other => Err(format!("no worker mode '{other}'").into()),
        }
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            // One line: the parent reads lines.
            println!("error {}", e.to_string().replace('\n', " "));
            1
        }
    }
}

/// `key=value` arguments.
struct Args(HashMap<String, String>);

impl Args {
    fn parse(args: &[String]) -> Result<Args> {
        let mut map = HashMap::new();
        for arg in args {
            let (key, value) = arg.split_once('=').ok_or_else(|| format!("not key=value: {arg}"))?;
            map.insert(key.to_owned(), value.to_owned());
        }
        Ok(Args(map))
    }

    fn text(&self, key: &str) -> Result<&str> {
        self.0.get(key).map(String::as_str).ok_or_else(|| format!("missing argument {key}=").into())
    }

    fn number(&self, key: &str) -> Result<u64> {
        Ok(self.text(key)?.parse().map_err(|e| format!("{key}: {e}"))?)
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        Ok(self.text(key)?.into())
    }

    fn kind(&self) -> Result<LockKind> {
        LockKind::parse(self.text("kind")?)
    }

    /// liblease's lock options, the defaults where not given.
    fn lock_options(&self) -> Result<LockOptions> {
        let ms = |key: &str, default: Duration| -> Result<Duration> {
            match self.0.get(key) {
                Some(_) => Ok(Duration::from_millis(self.number(key)?)),
                None => Ok(default),
            }
        };
        let default = LockOptions::DEFAULT;
        Ok(LockOptions {
            lease: ms("lease_ms", default.lease)?,
            renew_every: ms("renew_ms", default.renew_every)?,
            max_backoff: ms("backoff_ms", default.max_backoff)?,
        })
    }
}

/// Makes sure a worker never outlives the benchmark: on Linux the kernel kills it when its
/// parent dies; elsewhere the modes end on their own (stdin closing, bounded waits).
fn die_with_parent(args: &Args) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        let parent: u32 = args.number("parent")? as u32;
        // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number; getppid cannot fail.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        // The parent may have died before the line above.
        if unsafe { libc::getppid() } as u32 != parent {
            return Err("the benchmark that started this worker is gone".into());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = args;
    Ok(())
}

/// The next command from stdin, split into words; `None` when stdin closes.
fn next_command(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> Option<Vec<String>> {
    let line = lines.next()?.ok()?;
    Some(line.split_whitespace().map(str::to_owned).collect())
}

fn handover(args: &Args) -> Result<()> {
    let mut lock = contender::open(args.kind()?, &args.path("db")?, args.text("key")?, args.lock_options()?)?;
    println!("ready");
    let mut lines = std::io::stdin().lock().lines();
    while let Some(command) = next_command(&mut lines) {
        match command.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["acquire", seq] => {
                println!("waiting {seq}");
                lock.acquire(ACQUIRE_TIMEOUT)?;
                println!("acquired {seq} {}", now_ns());
            }
            ["release", seq, hold_ms] => {
                std::thread::sleep(Duration::from_millis(hold_ms.parse()?));
                let released = now_ns();
                lock.release()?;
                println!("released {seq} {released} {}", now_ns());
            }
            other => return Err(format!("unknown command {other:?}").into()),
        }
    }
    Ok(())
}

fn hold(args: &Args) -> Result<()> {
    let mut lock = contender::open(args.kind()?, &args.path("db")?, args.text("key")?, args.lock_options()?)?;
    lock.acquire(ACQUIRE_TIMEOUT)?;
    println!("holding {}", now_ns());
    // Idle: blocked on stdin, so that the heartbeat is all this process does.
    let mut lines = std::io::stdin().lock().lines();
    while let Some(command) = next_command(&mut lines) {
        match command.first().map(String::as_str) {
            Some("check") => println!("check {}", lock.check()),
            other => return Err(format!("unknown command {other:?}").into()),
        }
    }
    Ok(())
}

fn wait(args: &Args) -> Result<()> {
    let mut lock = contender::open(args.kind()?, &args.path("db")?, args.text("key")?, args.lock_options()?)?;
    println!("waiting");
    lock.acquire(Duration::from_millis(args.number("timeout_ms")?))?;
    println!("acquired {}", now_ns());
    lock.release()
}

fn contend(args: &Args) -> Result<()> {
    let mut lock = contender::open(args.kind()?, &args.path("db")?, args.text("key")?, args.lock_options()?)?;
    let hold = Duration::from_millis(args.number("hold_ms")?);
    println!("ready");
    let mut lines = std::io::stdin().lock().lines();
    let end = match next_command(&mut lines).as_deref() {
        Some([go, end]) if go == "go" => end.parse::<u64>()?,
        other => return Err(format!("expected 'go <end>', got {other:?}").into()),
    };
    let me = std::process::id();
    let cpu_before = procfs::cpu_seconds(me)?;
    let (mut acquisitions, mut failures) = (0u64, 0u64);
    while now_ns() < end {
        if lock.acquire(ACQUIRE_TIMEOUT).is_err() {
            failures += 1;
            continue;
        }
        acquisitions += 1;
        std::thread::sleep(hold);
        lock.release()?;
    }
    let cpu = procfs::cpu_seconds(me)? - cpu_before;
    println!("result acquisitions={acquisitions} failures={failures} cpu_s={cpu}");
    Ok(())
}

fn writer(args: &Args) -> Result<()> {
    let design = Design::parse(args.text("design")?)?;
    let id = args.number("id")? as i64;
    let txn = Duration::from_millis(args.number("txn_ms")?);
    let mut writer = Writers::new(design, &args.path("db")?).short()?;
    println!("ready");
    let mut lines = std::io::stdin().lock().lines();
    let end = match next_command(&mut lines).as_deref() {
        Some([go, end]) if go == "go" => end.parse::<u64>()?,
        other => return Err(format!("expected 'go <end>', got {other:?}").into()),
    };
    let run = run_short(writer.as_mut(), id, txn, end)?;
    let summary = Summary::of(&run.waits).ok_or("no transaction was attempted")?;
    println!(
        "result commits={} failures={} waits={} p50_ms={} p99_ms={} max_ms={}",
        run.commits, run.failures, summary.n, summary.p50, summary.p99, summary.max
    );
    Ok(())
}

fn footprint(args: &Args) -> Result<()> {
    let pid = std::process::id();
    let sample = || -> Result<[u64; 3]> {
        Ok([procfs::rss_kib(pid)?, procfs::anon_kib(pid)?, procfs::threads(pid)? as u64])
    };
    let path = args.path("db")?;
    let hold_for = Duration::from_millis(args.number("hold_ms")?);
    let start = sample()?;
    // Each side: open, take the lock, hold it, then write a row and read it back.
    let (opened, locked, held, used) = match args.kind()? {
        LockKind::Liblease => {
            let store = lease::Store::open(&path)?;
            let opened = sample()?;
            let lock = lease::Lock::new(&store, "footprint", "lease-bench", LockOptions::DEFAULT)?;
            let guard = lock.try_acquire()?;
            let locked = sample()?;
            std::thread::sleep(hold_for);
            let held = sample()?;
            let db = lease::Database::open(&path)?;
            db.execute("CREATE TABLE note (text TEXT)", &[])?;
            db.execute("INSERT INTO note VALUES ('footprint')", &[])?;
            let mut rows = 0;
            db.query("SELECT text FROM note", &[], |_| {
                rows += 1;
                true
            })?;
            if rows != 1 {
                return Err(format!("read {rows} rows back, not 1").into());
            }
            let used = sample()?;
            guard.release()?;
            (opened, locked, held, used)
        }
        LockKind::Predecessor => {
            let mut lock =
                crate::baselines::predecessor_lock::PredecessorLock::open(&path, "footprint", "bench")?;
            let opened = sample()?;
            lock.acquire(Duration::ZERO)?;
            let locked = sample()?;
            std::thread::sleep(hold_for);
            let held = sample()?;
            let connection = rusqlite::Connection::open(&path)?;
            connection
                .execute_batch("CREATE TABLE note (text TEXT); INSERT INTO note VALUES ('footprint')")?;
            let text: String = connection.query_row("SELECT text FROM note", [], |row| row.get(0))?;
            if text != "footprint" {
                return Err("read back another row".into());
            }
            let used = sample()?;
            lock.release()?;
            (opened, locked, held, used)
        }
    };
    let mut fields = Vec::new();
    for (step, sample) in
        [("start", start), ("open", opened), ("lock", locked), ("held", held), ("used", used)]
    {
        fields
            .push(format!("rss_{step}={} anon_{step}={} threads_{step}={}", sample[0], sample[1], sample[2]));
    }
    println!("footprint {}", fields.join(" "));
    Ok(())
}

fn suspend(args: &Args) -> Result<()> {
    let path = args.path("db")?;
    let store = lease::Store::open(&path)?;
    let db = lease::Database::open(&path)?;
    db.execute("CREATE TABLE IF NOT EXISTS import (n INTEGER)", &[])?;
    let guard =
        lease::Lock::new(&store, args.text("key")?, "lease-bench", args.lock_options()?)?.try_acquire()?;
    let (running, import_runs) = std::sync::mpsc::channel();
    let import = std::thread::spawn(move || {
        let mut tx = match db.begin_chunked(lease::ChunkOptions::DEFAULT) {
            Ok(tx) => tx,
            Err(_) => return,
        };
        let _ = running.send(());
        // Until the suspension ends it (LEASE_SUSPENDED).
        for n in 0i64.. {
            let step = tx.execute("INSERT INTO import (n) VALUES (?)", &[lease::Value::Integer(n)]);
            if step.and_then(|_| tx.maybe_commit()).is_err() {
                break;
            }
        }
        tx.rollback();
    });
    import_runs.recv().map_err(|_| "the import did not begin")?;
    println!("ready");
    let mut lines = std::io::stdin().lock().lines();
    while let Some(command) = next_command(&mut lines) {
        match command.first().map(String::as_str) {
            Some("suspend") => {
                let called = now_ns();
                let outcome = lease::lifecycle::suspend(Duration::from_secs(5));
                let returned = now_ns();
                println!("suspended {called} {returned} {}", if outcome.is_ok() { "ok" } else { "error" });
            }
            other => return Err(format!("unknown command {other:?}").into()),
        }
    }
    import.join().map_err(|_| "the import panicked")?;
    drop(guard);
    lease::lifecycle::resume();
    Ok(())
}

fn commit(args: &Args) -> Result<()> {
    let db = lease::Database::open(args.path("db")?)?;
    let mut lines = std::io::stdin().lock().lines();
    while let Some(command) = next_command(&mut lines) {
        let [word, n] = command.as_slice() else { return Err(format!("unknown command {command:?}").into()) };
        if word != "commit" {
            return Err(format!("unknown command {word}").into());
        }
        db.execute("INSERT INTO changes (n) VALUES (?)", &[lease::Value::Integer(n.parse()?)])?;
        println!("committed {n} {}", now_ns());
    }
    Ok(())
}

/// The largest N in `changes`, read on `connection`.
fn largest(connection: &rusqlite::Connection) -> i64 {
    connection.query_row("SELECT coalesce(max(n), -1) FROM changes", [], |row| row.get(0)).unwrap_or(-1)
}

fn observe(args: &Args) -> Result<()> {
    let path = args.path("db")?;
    let db = lease::Database::open(&path)?;
    let reader = std::sync::Mutex::new(rusqlite::Connection::open(&path)?);
    let _observer = db.observe(Box::new(move |_| {
        let t = now_ns();
        let max = reader.lock().map(|reader| largest(&reader)).unwrap_or(-1);
        println!("changed {t} {max}");
    }))?;
    println!("ready");
    for _ in std::io::stdin().lock().lines() {}
    Ok(())
}

fn poll(args: &Args) -> Result<()> {
    let connection = rusqlite::Connection::open(args.path("db")?)?;
    let every = Duration::from_millis(args.number("every_ms")?);
    let data_version =
        |c: &rusqlite::Connection| c.query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0));
    let mut seen = data_version(&connection)?;
    // Until the parent closes stdin.
    let (closed, stdin_closed) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        for _ in std::io::stdin().lock().lines() {}
        let _ = closed.send(());
    });
    println!("ready");
    while stdin_closed.recv_timeout(every).is_err() {
        let now = data_version(&connection)?;
        if now != seen {
            seen = now;
            println!("changed {} {}", now_ns(), largest(&connection));
        }
    }
    Ok(())
}

/// Reads `key=value` words (a `result` or `footprint` answer) as numbers.
pub fn parse_fields(words: &[String]) -> Result<HashMap<String, f64>> {
    words
        .iter()
        .map(|word| {
            let (key, value) = word.split_once('=').ok_or_else(|| format!("not key=value: {word}"))?;
            Ok((key.to_owned(), value.parse::<f64>().map_err(|e| format!("{key}: {e}"))?))
        })
        .collect()
}
