//! Fair writers across real processes (issue 5), with real signals. The test binary runs itself
//! again as each child process (see `child_process`, and `tests/support`): a writer of short
//! write transactions, through liblease or through plain SQLite, a long chunked job, or a lease
//! holder.
//!
//! Every write inserts a row naming its writer and the CLOCK_MONOTONIC time it was made at.
//! SQLite's write lock puts the rows in commit order, so shares and orders are read from the
//! database itself. Nothing here asserts a duration: the waits that the children measure are
//! printed (run with `--nocapture` to see them), never judged.

#![cfg(unix)]

mod support;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use lease::{ChunkOptions, Database, DatabaseOptions, Error, Lock, LockOptions, Store, Value};
use support::child::{say, Child, PATIENCE};
use support::monotonic_ns;

/// How long writers run side by side when shares are measured (longer if they made too few
/// commits for a share to mean anything).
const SIDE_BY_SIDE: Duration = Duration::from_secs(2);
const FEWEST_COMMITS: usize = 60;

const INSERT: &str = "INSERT INTO written (writer, t) VALUES (?, ?)";

// ---------------------------------------------------------------------------------------------
// The child processes.

/// Run as a child by the tests below; does nothing in a normal test run.
#[test]
#[ignore = "not a test: the other process of the tests below, which run it with --ignored"]
fn child_process() {
    support::child::run_role(&[("writer", writer), ("job", job), ("holder", holder), ("releaser", releaser)]);
}

/// Runs write transactions back to back (each: begin, insert one row, `hold_us` of work inside
/// the transaction, commit; then a pause of `pause_us`) on `threads` threads, each with its own
/// connection, from `GO` until `STOP` or until each thread tried `count` of them.
///
/// `autocheckpoint=<pages>` sets SQLite's `wal_autocheckpoint` on each connection.
///
/// `plain=1` writes through plain SQLite, as an app that does not use liblease does: `BEGIN
/// IMMEDIATE` with SQLite's busy handler waiting up to `busy_ms`. Otherwise through liblease's
/// `Database`, whose busy timeout is then `busy_ms` (default: liblease's 5 s).
///
/// Says `READY` once connected, `STARTED <t>` when `GO` came, `FIRST` after its first commit,
/// `BUSY <error>` for each transaction that gave up waiting, and at the end
/// `DONE commits=<n> busy=<n> max_wait_us=<n> p99_wait_us=<n>`, the waits being those to begin.
fn writer(args: &[String]) {
    let (spec, control) = (Spec::parse(args), Control::listen());
    let path = &spec.path;
    let name = spec.text("name");
    let hold = Duration::from_micros(spec.number("hold_us", 0));
    let pause = Duration::from_micros(spec.number("pause_us", 0));
    let count = spec.number("count", u64::MAX);
    let busy_timeout = spec.number("busy_ms", 5000);
    let plain = spec.number("plain", 0) == 1;
    let mut connections: Vec<Connection> = (0..spec.number("threads", 1))
        .map(|_| Connection::open(path, plain, Duration::from_millis(busy_timeout)))
        .collect();
    if let Some(pages) = spec.options.get("autocheckpoint") {
        connections.iter_mut().for_each(|connection| connection.set_autocheckpoint(pages));
    }
    say("READY");
    control.wait_for_go();
    say(format!("STARTED {}", monotonic_ns()));
    let first = AtomicBool::new(false);
    let stats = std::thread::scope(|scope| {
        let threads: Vec<_> = connections
            .into_iter()
            .map(|mut connection| {
                let first = &first;
                scope.spawn(move || {
                    let mut stats = Stats::default();
                    while stats.commits + stats.busy < count && !control.stopped() {
                        match connection.write(name, hold) {
                            Ok(waited) => {
                                stats.commits += 1;
                                stats.waits.push(waited);
                                if !first.swap(true, Ordering::Relaxed) {
                                    say("FIRST");
                                }
                            }
                            Err(busy) => {
                                stats.busy += 1;
                                say(format!("BUSY {busy}"));
                            }
                        }
                        if !pause.is_zero() {
                            std::thread::sleep(pause);
                        }
                    }
                    stats
                })
            })
            .collect();
        threads.into_iter().map(|thread| thread.join().expect("a writer thread panicked")).fold(
            Stats::default(),
            |mut all, stats| {
                all.commits += stats.commits;
                all.busy += stats.busy;
                all.waits.extend(stats.waits);
                all
            },
        )
    });
    say(stats.done());
}

/// A long job in one chunked transaction of period `period_ms` (slice and gap: the defaults).
/// From `GO` it inserts a row after each `work_us` of work and calls `maybe_commit`, until
/// `STOP`; then it commits. Says `READY`, `STARTED` once it holds the write lock with its first
/// row written, and `DONE chunks=<chunks that maybe_commit committed> rows=<rows>`.
fn job(args: &[String]) {
    let (spec, control) = (Spec::parse(args), Control::listen());
    let db = Database::open(&spec.path).unwrap_or_else(|e| panic!("the job opens the database: {e}"));
    let chunk = ChunkOptions {
        period: Duration::from_millis(spec.number("period_ms", 1000)),
        ..ChunkOptions::DEFAULT
    };
    let work = Duration::from_micros(spec.number("work_us", 500));
    say("READY");
    control.wait_for_go();
    let mut tx = db.begin_chunked(chunk).unwrap_or_else(|e| panic!("the job begins: {e}"));
    let insert = |tx: &mut lease::Transaction| {
        let t = Value::Integer(monotonic_ns() as i64);
        tx.execute(INSERT, &[Value::Text("job"), t]).unwrap_or_else(|e| panic!("the job inserts: {e}"));
    };
    insert(&mut tx);
    let (mut rows, mut chunks) = (1u64, 0u64);
    say("STARTED");
    while !control.stopped() {
        std::thread::sleep(work);
        insert(&mut tx);
        rows += 1;
        if tx.maybe_commit().unwrap_or_else(|e| panic!("the job's chunk after {rows} rows: {e}")) {
            chunks += 1;
        }
    }
    tx.commit().unwrap_or_else(|e| panic!("the job's last commit: {e}"));
    say(format!("DONE chunks={chunks} rows={rows}"));
}

/// Holds a lease on `sync` for `hold_ms` from `GO`, with a lease of `lease_ms` renewed every
/// `renew_ms`, checking it every 20 ms; then gives it back. Says `READY` once the store is open
/// (its table made), `HELD` once it holds the lease, and `DONE checks=<n>`; a lost lease ends the
/// child with the reason on stderr.
fn holder(args: &[String]) {
    let (spec, control) = (Spec::parse(args), Control::listen());
    let store = Store::open(&spec.path).unwrap_or_else(|e| panic!("the holder opens the store: {e}"));
    let millis = |key: &str, default: u64| Duration::from_millis(spec.number(key, default));
    let options = LockOptions {
        lease: millis("lease_ms", 1000),
        renew_every: millis("renew_ms", 250),
        max_backoff: Duration::from_millis(20),
    };
    let lock = Lock::new(&store, "sync", spec.text("name"), options).expect("the lock is made");
    say("READY");
    control.wait_for_go();
    let guard = lock.acquire(PATIENCE).unwrap_or_else(|e| panic!("the holder takes the lease: {e}"));
    say("HELD");
    let until = Instant::now() + millis("hold_ms", 3000);
    let mut checks = 0;
    while Instant::now() < until {
        guard.check().unwrap_or_else(|e| panic!("the lease was lost after {checks} checks: {e}"));
        checks += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    guard.release().unwrap_or_else(|e| panic!("the holder gives the lease back: {e}"));
    say(format!("DONE checks={checks}"));
}

/// For each `ROUND`: takes the lease on `sync` (a lease of an hour, so that only a release frees
/// it), writes a row `releasing`, gives the lease back and at once runs a chunked job (of
/// `work_us` per row, the default period) for 50 ms; says `ROUND <t>` when done, `t` being the
/// monotonic time at which it called release. Says `READY` first.
fn releaser(args: &[String]) {
    let spec = Spec::parse(args);
    let store = Store::open(&spec.path).unwrap_or_else(|e| panic!("the releaser opens the store: {e}"));
    let db = Database::open(&spec.path).unwrap_or_else(|e| panic!("the releaser opens the database: {e}"));
    let hour = LockOptions {
        lease: Duration::from_secs(3600),
        renew_every: Duration::from_secs(1800),
        max_backoff: Duration::from_millis(20),
    };
    let lock = Lock::new(&store, "sync", "releaser", hour).unwrap();
    let pause = Duration::from_micros(spec.number("work_us", 50));
    say("READY");
    for command in std::io::stdin().lines() {
        assert_eq!(command.unwrap(), "ROUND");
        let guard = lock.acquire(PATIENCE).unwrap();
        db.execute(INSERT, &[Value::Text("releasing"), Value::Integer(monotonic_ns() as i64)]).unwrap();
        let called = monotonic_ns();
        guard.release().unwrap_or_else(|e| panic!("the releaser gives the lease back: {e}"));
        let mut tx = db.begin_chunked(ChunkOptions::DEFAULT).unwrap();
        let until = Instant::now() + Duration::from_millis(50);
        while Instant::now() < until {
            work(pause);
            let t = Value::Integer(monotonic_ns() as i64);
            tx.execute(INSERT, &[Value::Text("releaser"), t]).unwrap();
            tx.maybe_commit().unwrap();
        }
        tx.commit().unwrap();
        say(format!("ROUND {called}"));
    }
}

/// A writer's connection: liblease's, or plain SQLite's as an app that does not use liblease.
enum Connection {
    Lease(Database),
    Plain(rusqlite::Connection),
}

impl Connection {
    fn open(path: &Path, plain: bool, busy_timeout: Duration) -> Connection {
        if plain {
            let connection = rusqlite::Connection::open(path).expect("a plain connection opens");
            // The pragma rather than rusqlite's busy_timeout, which needs SQLite 3.44 (the
            // system-SQLite build links an older one).
            let ms = i64::try_from(busy_timeout.as_millis()).expect("a busy timeout in range");
            connection.pragma_update(None, "busy_timeout", ms).expect("the busy timeout is set");
            Connection::Plain(connection)
        } else {
            let options = DatabaseOptions { busy_timeout, ..DatabaseOptions::default() };
            Connection::Lease(Database::open_with(path, options).expect("the database opens"))
        }
    }

    fn set_autocheckpoint(&mut self, pages: &str) {
        let sql = format!("PRAGMA wal_autocheckpoint = {pages}");
        match self {
            Connection::Lease(db) => drop(db.execute(&sql, &[]).expect("wal_autocheckpoint is set")),
            Connection::Plain(connection) => {
                connection.execute_batch(&sql).expect("wal_autocheckpoint is set")
            }
        }
    }

    /// One write transaction. Returns how long it waited to begin, or the busy error with which
    /// it gave up; any other failure ends the child.
    fn write(&mut self, writer: &str, hold: Duration) -> Result<Duration, String> {
        let asked = Instant::now();
        match self {
            Connection::Lease(db) => {
                let mut tx = match db.begin() {
                    Ok(tx) => tx,
                    Err(Error::Busy(why)) => return Err(why),
                    Err(e) => panic!("{writer}: begin: {e}"),
                };
                let waited = asked.elapsed();
                let t = Value::Integer(monotonic_ns() as i64);
                tx.execute(INSERT, &[Value::Text(writer), t]).unwrap_or_else(|e| panic!("{writer}: {e}"));
                work(hold);
                tx.commit().unwrap_or_else(|e| panic!("{writer}: commit: {e}"));
                Ok(waited)
            }
            Connection::Plain(connection) => {
                if let Err(e) = connection.execute_batch("BEGIN IMMEDIATE") {
                    let busy = matches!(
                        e.sqlite_error_code(),
                        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                    );
                    assert!(busy, "{writer}: BEGIN IMMEDIATE: {e}");
                    return Err(e.to_string());
                }
                let waited = asked.elapsed();
                connection
                    .execute(INSERT, rusqlite::params![writer, monotonic_ns() as i64])
                    .unwrap_or_else(|e| panic!("{writer}: {e}"));
                work(hold);
                connection.execute_batch("COMMIT").unwrap_or_else(|e| panic!("{writer}: COMMIT: {e}"));
                Ok(waited)
            }
        }
    }
}

/// Work inside a transaction: the time it takes, without using a core of this small machine.
fn work(time: Duration) {
    if !time.is_zero() {
        std::thread::sleep(time);
    }
}

#[derive(Default)]
struct Stats {
    commits: u64,
    busy: u64,
    waits: Vec<Duration>,
}

impl Stats {
    fn done(mut self) -> String {
        self.waits.sort();
        let at = |fraction: f64| {
            let index = ((self.waits.len() as f64 * fraction).ceil() as usize).saturating_sub(1);
            self.waits.get(index).map_or(0, Duration::as_micros)
        };
        format!(
            "DONE commits={} busy={} max_wait_us={} p99_wait_us={}",
            self.commits,
            self.busy,
            at(1.0),
            at(0.99)
        )
    }
}

/// A child's database and its options: its arguments are `<database> name=<name> key=value ...`.
struct Spec {
    path: PathBuf,
    options: BTreeMap<String, String>,
}

impl Spec {
    fn parse(args: &[String]) -> Spec {
        let [path, options @ ..] = args else { panic!("expected <database> key=value ..., got {args:?}") };
        let options = options
            .iter()
            .map(|word| {
                let (key, value) =
                    word.split_once('=').unwrap_or_else(|| panic!("'{word}' is not key=value"));
                (key.to_owned(), value.to_owned())
            })
            .collect();
        Spec { path: PathBuf::from(path), options }
    }

    fn text(&self, key: &str) -> &str {
        self.options.get(key).unwrap_or_else(|| panic!("no {key} in the child's options"))
    }

    fn number(&self, key: &str, default: u64) -> u64 {
        self.options
            .get(key)
            .map_or(default, |value| value.parse().unwrap_or_else(|e| panic!("{key}={value}: {e}")))
    }
}

/// The test's commands, read from the child's stdin: `GO` starts the work; `STOP`, or the end of
/// input (the test is gone), ends it.
#[derive(Default)]
struct Control {
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Control {
    fn listen() -> &'static Control {
        let control: &'static Control = Box::leak(Box::default());
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                match line.as_deref().map(str::trim) {
                    Ok("GO") => control.set(false),
                    Ok("STOP") => control.set(true),
                    Ok(other) => eprintln!("ignoring the unknown command '{other}'"),
                    Err(_) => break,
                }
            }
            control.set(true);
        });
        control
    }

    fn set(&self, stop: bool) {
        let mut state = self.state.lock().unwrap();
        *state = (true, state.1 || stop);
        self.changed.notify_all();
    }

    fn wait_for_go(&self) {
        let state = self.state.lock().unwrap();
        drop(self.changed.wait_while(state, |(go, _)| !*go).unwrap());
    }

    fn stopped(&self) -> bool {
        self.state.lock().unwrap().1
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn three_processes_writing_back_to_back_each_get_a_fair_share() {
    let run = side_by_side(&[
        ("first", "writer hold_us=1000"),
        ("second", "writer hold_us=1000"),
        ("third", "writer hold_us=1000"),
    ]);
    eprintln!("liblease, three processes of 1 ms transactions back to back:\n{run}");
    for name in ["first", "second", "third"] {
        assert_eq!(run.done[name].busy, 0, "'{name}' gave up waiting with Busy\n{run}");
        assert!(run.share(name) >= 0.20, "'{name}' got less than a fifth of the commits\n{run}");
    }
}

#[test]
fn a_process_with_four_writer_threads_does_not_crowd_out_a_process_with_one() {
    // Turns go to processes, not to threads: the lone writer gets about half, not a fifth.
    let run = side_by_side(&[("crowd", "writer threads=4 hold_us=1000"), ("lone", "writer hold_us=1000")]);
    eprintln!("liblease, four writer threads in one process beside one in another:\n{run}");
    assert_eq!(run.done["crowd"].busy + run.done["lone"].busy, 0, "a writer gave up with Busy\n{run}");
    assert!(run.share("lone") >= 0.30, "the lone process got less than 30% of the commits\n{run}");
}

#[test]
fn a_writer_killed_while_waiting_for_its_turn_does_not_hold_up_the_others() {
    let scratch = Scratch::new();
    let (holder, mut victim, mut survivors) = queue_behind_a_holder(&scratch);
    victim.signal(libc::SIGKILL);
    let status = victim.wait();
    assert!(!status.success(), "the victim was killed, yet exited with {status}");
    let killed_at = monotonic_ns();
    holder.commit().expect("the holder commits");

    // The victim's notice was the oldest on the board; dead, it must not keep the turn.
    scratch.wait_for_writes(&["second", "third"], killed_at, 10);
    for survivor in &mut survivors {
        let done = survivor.stop();
        assert_eq!(done.busy, 0, "'{}' gave up waiting with Busy", survivor.name());
        eprintln!("'{}' after the kill: {done:?}", survivor.name());
    }
    let writes = scratch.writes();
    assert!(!writes.iter().any(|w| w.writer == "victim"), "the victim wrote before it was killed");
}

#[test]
fn a_writer_stopped_while_waiting_for_its_turn_does_not_hold_up_the_others() {
    let scratch = Scratch::new();
    let (holder, mut victim, mut survivors) = queue_behind_a_holder(&scratch);
    let stopped_at = monotonic_ns();
    victim.signal(libc::SIGSTOP);
    // A stop reaches the threads of a process one after the other: only once all have stopped
    // can the victim not take the write lock that the holder gives up.
    victim.wait_until_stopped();
    holder.commit().expect("the holder commits");
    scratch.wait_for_writes(&["second", "third"], stopped_at, 10);

    // Continued, the victim gets in too, and the others go on.
    let continued_at = monotonic_ns();
    victim.signal(libc::SIGCONT);
    victim.expect("FIRST");
    scratch.wait_for_writes(&["victim", "second", "third"], continued_at, 5);
    for child in survivors.iter_mut().chain([&mut victim]) {
        let done = child.stop();
        assert_eq!(done.busy, 0, "'{}' gave up waiting with Busy", child.name());
        eprintln!("'{}' around the stop: {done:?}", child.name());
    }
    let writes = scratch.writes();
    let early = writes.iter().filter(|w| w.writer == "victim" && w.t < continued_at).count();
    assert_eq!(early, 0, "the victim wrote while it was stopped");
}

#[test]
fn short_writers_of_other_processes_get_in_beside_a_job_with_an_hour_long_period() {
    let scratch = Scratch::new();
    let mut job = scratch.spawn("job", "job period_ms=3600000 work_us=500");
    job.start();
    job.expect("STARTED");
    // The job holds SQLite's write lock and will not commit on its own for an hour: only its
    // slice, cut short because writers of other processes wait on the board, lets them in.
    let mut writers = ["second", "third"].map(|name| scratch.spawn(name, "writer count=20 pause_us=1000"));
    writers.iter_mut().for_each(Child::start);
    for writer in &mut writers {
        let done = writer.done();
        writer.finish();
        eprintln!("'{}' beside the job: {done:?}", writer.name());
        assert_eq!(done.busy, 0, "'{}' gave up waiting with Busy", writer.name());
        assert_eq!(done.commits, 20, "'{}' made another number of commits", writer.name());
    }
    let job_done = job.stop();
    eprintln!("the job: {job_done:?}");

    let writes = scratch.writes();
    assert_eq!(writes.iter().filter(|w| w.writer == "job").count() as u64, job_done.rows);
    assert_got_in_between_chunks(&writes, job_done.chunks);
}

#[test]
fn a_plain_sqlite_writer_is_never_starved_by_a_chunked_job() {
    let scratch = Scratch::new();
    let mut job = scratch.spawn("job", "job period_ms=200 work_us=1000");
    job.start();
    job.expect("STARTED");
    // Plain SQLite cannot be seen waiting: it gets in during the gap after each full chunk.
    // It pauses between writes, so that each write has to find a gap of its own.
    let mut plain = scratch.spawn("plain", "writer plain=1 busy_ms=1000 count=10 pause_us=50000");
    plain.start();
    let done = plain.done();
    plain.finish();
    let job_done = job.stop();
    eprintln!(
        "a plain writer (busy timeout 1 s) beside a job of 200 ms chunks: {done:?}; the job: {job_done:?}"
    );
    assert_eq!(done.busy, 0, "the plain writer was starved into 'database is locked'");
    assert_eq!(done.commits, 10);

    let writes = scratch.writes();
    assert_eq!(writes.iter().filter(|w| w.writer == "job").count() as u64, job_done.rows);
    assert_got_in_between_chunks(&writes, job_done.chunks);
}

#[test]
fn a_lease_is_taken_and_kept_beside_a_job_of_another_process_with_an_hour_long_period() {
    let scratch = Scratch::new();
    // The holder makes the lease table before the job holds the write lock.
    let mut holder = scratch.spawn("holder", "holder lease_ms=1000 renew_ms=250 hold_ms=3000");
    holder.expect("READY");
    let mut job = scratch.spawn("job", "job period_ms=3600000 work_us=500");
    job.start();
    job.expect("STARTED");
    // Taking the lease is a write, and so is each renewal and the release: they wait on the
    // board, where the job sees them. Held for three lease lengths, the lease is kept only if
    // renewals got in.
    holder.send("GO");
    holder.expect("HELD");
    let done = holder.done();
    holder.finish();
    let job_done = job.stop();
    eprintln!("a lease held beside the job: {done:?}; the job: {job_done:?}");
    assert!(job_done.chunks >= 3, "the job let the take, the renewals and the release in");
}

#[test]
fn a_released_lease_goes_back_in_its_turn_however_busy_the_file_and_its_own_process() {
    const ROUNDS: usize = 30;
    let scratch = Scratch::new();
    let mut releaser = scratch.spawn("releaser", "releaser");
    releaser.expect("READY");
    // Each release is recorded, in commit order, by the update that gives the lease back.
    let raw = rusqlite::Connection::open(scratch.path()).unwrap();
    raw.execute_batch(
        "CREATE TRIGGER released AFTER UPDATE OF expires_ms ON liblease_lease
         WHEN NEW.key = 'sync' AND NEW.expires_ms = 0
         BEGIN INSERT INTO written (writer, t) VALUES ('released', 0); END;",
    )
    .unwrap();
    drop(raw);
    // Three other processes write back to back, 10 ms each; each round, the releaser gives the
    // lease back and goes straight on with a chunked job of its own.
    let mut writers: Vec<Child> = (0..3)
        .map(|i| scratch.spawn(&format!("writer-{i}"), "writer autocheckpoint=0 hold_us=10000"))
        .collect();
    writers.iter_mut().for_each(Child::start);
    for writer in &mut writers {
        writer.expect("FIRST");
    }
    let called: Vec<u64> = (0..ROUNDS)
        .map(|_| {
            releaser.send("ROUND");
            let line = releaser.expect("ROUND");
            line.split_whitespace().nth(1).and_then(|t| t.parse().ok()).expect("ROUND <t>")
        })
        .collect();
    let deadline = Instant::now() + PATIENCE;
    let writes = loop {
        let writes = scratch.writes();
        if writes.iter().filter(|w| w.writer == "released").count() == ROUNDS {
            break writes;
        }
        assert!(Instant::now() < deadline, "a lease was never given back");
        std::thread::sleep(Duration::from_millis(20));
    };
    for writer in &mut writers {
        writer.stop();
    }
    releaser.finish();
    // Each release in its turn: behind the writers already waiting when it was called (one per
    // other process), not behind round after round of them. Each writer holds the database for
    // 10 ms, so three of them waiting keep a release out for longer than one stay of the
    // library's thread in the queue (20 ms): a give-back that began again at the back at each
    // stay was never let in, and its lease (of an hour) was never given back. Counted are the
    // other processes' commits of rows written after the release was called and before it.
    let mut worst = 0;
    let mut round = 0;
    let mut from = None;
    for (index, write) in writes.iter().enumerate() {
        match write.writer.as_str() {
            "releasing" => from = Some(index),
            "released" => {
                let start = from.take().expect("a release comes after its call");
                let others = writes[start + 1..index]
                    .iter()
                    .filter(|w| w.writer.starts_with("writer") && w.t > called[round])
                    .count();
                worst = worst.max(others);
                round += 1;
            }
            _ => {}
        }
    }
    eprintln!("the most commits of other processes between a release call and its release: {worst}");
    assert!(worst <= 9, "a release waited behind {worst} commits of other processes");
}

#[test]
fn the_board_beside_the_database_is_no_more_open_than_the_database() {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    for mode in [0o600, 0o640] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.db");
        std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        make_table(&path);
        let mut writer = spawn(&path, "writer", "writer count=1");
        writer.start();
        assert_eq!(writer.done().commits, 1);
        writer.finish();
        let board = std::fs::metadata(board_path(&path)).expect("the board is made").permissions().mode();
        assert_eq!(board & 0o777 & !mode, 0, "a database of mode {mode:o} has a board of mode {board:o}");
        assert_eq!(board & 0o600, 0o600, "its owner reads and writes the board (mode {board:o})");
    }
}

#[test]
fn a_foreign_board_file_costs_only_fairness() {
    // A file of the board's name and size that is not a board (another version's, say): it is
    // neither used nor changed, and writers of two processes still get in.
    let foreign: Vec<u8> = b"NOTOURS!".iter().copied().cycle().take(4096).collect();
    let scratch = Scratch::with_board(&foreign);
    let mut writers = ["first", "second"].map(|name| scratch.spawn(name, "writer count=30 pause_us=1000"));
    writers.iter_mut().for_each(Child::start);
    for writer in &mut writers {
        let done = writer.done();
        writer.finish();
        assert_eq!((done.commits, done.busy), (30, 0), "'{}' did not write everything", writer.name());
    }
    assert_eq!(scratch.writes().len(), 60);
    let board = std::fs::read(board_path(&scratch.path())).unwrap();
    assert!(board == foreign, "the foreign file was changed");
}

#[test]
fn a_store_is_first_opened_beside_a_job_of_another_process_with_an_hour_long_period() {
    let scratch = Scratch::new();
    let mut job = scratch.spawn("job", "job period_ms=3600000 work_us=500");
    job.start();
    job.expect("STARTED");
    // The database has no lease table yet: opening the store writes it.
    let opened = Store::open(scratch.path());
    let job_done = job.stop();
    eprintln!("the job beside Store::open: {job_done:?}");
    opened.expect("the store opens beside the job");
}

#[test]
fn a_job_in_a_process_that_knew_the_database_under_another_name_lets_other_processes_in() {
    let dir = tempfile::Builder::new().prefix("liblease-fairness-").tempdir().unwrap();
    let (old, new) = (dir.path().join("old.db"), dir.path().join("new.db"));
    make_table(&old);
    drop(Database::open(&old).expect("the database opens under its old name"));
    std::fs::rename(&old, &new).unwrap();

    // This process runs a job with an hour-long period on the file, now named `new.db`.
    let db = Database::open(&new).expect("the database opens under its new name");
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_the_job = StopOnDrop(stop.clone());
    let (started, job_started) = mpsc::channel();
    let job = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let chunk = ChunkOptions { period: Duration::from_secs(3600), ..ChunkOptions::DEFAULT };
            let mut tx = db.begin_chunked(chunk).expect("the job begins");
            let _ = started.send(());
            let mut chunks = 0;
            while !stop.load(Ordering::Relaxed) {
                let t = Value::Integer(monotonic_ns() as i64);
                tx.execute(INSERT, &[Value::Text("job"), t]).expect("the job inserts");
                std::thread::sleep(Duration::from_micros(500));
                chunks += u64::from(tx.maybe_commit().expect("the job's chunk"));
            }
            tx.commit().expect("the job's last commit");
            chunks
        }
    });
    job_started.recv_timeout(PATIENCE).expect("the job began");
    let mut writer = spawn(&new, "writer", "writer count=3 busy_ms=2000");
    writer.start();
    let done = writer.done();
    writer.finish();
    stop.store(true, Ordering::Relaxed);
    let chunks = job.join().expect("the job ran");
    eprintln!("a writer beside the job of a process that knew the file as old.db: {done:?}; {chunks} chunks");
    assert_eq!(done.busy, 0, "the writer of another process was kept out until it gave up");
}

/// Sets the flag when dropped, however the test ends.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------------
// Scenes and their reading.

/// Writers of the given names and roles, started together, writing side by side for
/// `SIDE_BY_SIDE` (and until they made `FEWEST_COMMITS`). Shares count the writes made while all
/// of them ran.
///
/// Their connections do not checkpoint: SQLite runs an automatic checkpoint inside the commit of
/// whichever writer takes the WAL past 1000 pages, and its fsyncs, on this machine's shared disk,
/// can keep that writer away for hundreds of milliseconds. Shares would then measure the disk.
fn side_by_side(writers: &[(&str, &str)]) -> Run {
    let scratch = Scratch::new();
    let mut children: Vec<Child> =
        writers.iter().map(|(name, role)| scratch.spawn(name, &format!("{role} autocheckpoint=0"))).collect();
    children.iter_mut().for_each(Child::start);
    let from = children.iter_mut().map(|child| number(&child.expect("STARTED"), 1)).max().unwrap();
    std::thread::sleep(SIDE_BY_SIDE);
    let deadline = Instant::now() + PATIENCE;
    while count_between(&scratch.writes(), from, monotonic_ns()).values().sum::<usize>() < FEWEST_COMMITS {
        assert!(Instant::now() < deadline, "fewer than {FEWEST_COMMITS} commits in {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let to = monotonic_ns();
    let done = children.iter_mut().map(|child| (child.name().to_owned(), child.stop())).collect();
    let writes = scratch.writes();
    let window: Vec<Written> = writes.into_iter().filter(|w| from <= w.t && w.t <= to).collect();
    Run { counts: count_between(&window, from, to), done, longest_runs: longest_runs(&window) }
}

/// What `side_by_side` saw.
struct Run {
    counts: BTreeMap<String, usize>,
    done: BTreeMap<String, Done>,
    /// For each writer, its longest series of commits with no other writer's in between.
    longest_runs: BTreeMap<String, usize>,
}

impl Run {
    fn share(&self, name: &str) -> f64 {
        let total: usize = self.counts.values().sum();
        self.counts.get(name).copied().unwrap_or(0) as f64 / total.max(1) as f64
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total: usize = self.counts.values().sum();
        writeln!(f, "  {total} commits while all ran")?;
        for (name, done) in &self.done {
            writeln!(
                f,
                "  {name}: {} commits ({:.1}%), longest series {}, longest wait to begin {:.1} ms, p99 {:.1} ms, {} busy",
                self.counts.get(name).copied().unwrap_or(0),
                100.0 * self.share(name),
                self.longest_runs.get(name).copied().unwrap_or(0),
                done.max_wait_us as f64 / 1000.0,
                done.p99_wait_us as f64 / 1000.0,
                done.busy
            )?;
        }
        Ok(())
    }
}

/// The test process holds a write transaction; a writer named `victim` (with a long busy
/// timeout) then asks to write and waits first in line, its notice on the board; then two
/// writers, `second` and `third`, queue behind it. Returns the holder's transaction, the victim
/// and the two others, all waiting.
fn queue_behind_a_holder(scratch: &Scratch) -> (lease::Transaction, Child, [Child; 2]) {
    let holder = scratch.db.begin().expect("the test holds the write lock");
    let mut victim = scratch.spawn("victim", "writer busy_ms=60000");
    victim.start();
    scratch.wait_until_queued(&[&victim]);
    // Patient too: what shows that the victim holds nobody up is their writes coming (see
    // `wait_for_writes`), not a busy timeout that a machine slowed by a sanitizer can pass while
    // they only queue (ASan did, at 5 s).
    let mut others = ["second", "third"].map(|name| scratch.spawn(name, "writer busy_ms=60000"));
    others.iter_mut().for_each(Child::start);
    scratch.wait_until_queued(&[&victim, &others[0], &others[1]]);
    (holder, victim, others)
}

/// A database in a temporary directory, with the table every child writes to. Kept for a look
/// when the test fails.
struct Scratch {
    dir: Option<tempfile::TempDir>,
    db: Database,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch::make(None)
    }

    /// With a file of `contents` where the board goes, before anything opens the database.
    fn with_board(contents: &[u8]) -> Scratch {
        Scratch::make(Some(contents))
    }

    fn make(board: Option<&[u8]>) -> Scratch {
        let dir = tempfile::Builder::new().prefix("liblease-fairness-").tempdir().unwrap();
        let path = dir.path().join("shared.db");
        if let Some(board) = board {
            std::fs::write(board_path(&path), board).unwrap();
        }
        make_table(&path);
        let db = Database::open(&path).expect("the test opens the database");
        Scratch { dir: Some(dir), db }
    }

    fn path(&self) -> PathBuf {
        self.db.path().to_path_buf()
    }

    fn spawn(&self, name: &str, role: &str) -> Child {
        spawn(&self.path(), name, role)
    }

    /// Every write, in commit order.
    fn writes(&self) -> Vec<Written> {
        let mut writes = Vec::new();
        self.db
            .query("SELECT writer, t FROM written ORDER BY id", &[], |row| {
                let (Value::Text(writer), Value::Integer(t)) = (&row[0], &row[1]) else {
                    panic!("a row of another shape: {row:?}")
                };
                writes.push(Written { writer: (*writer).to_owned(), t: *t as u64 });
                true
            })
            .expect("the writes are read");
        writes
    }

    /// Waits until each of `names` has made at least `at_least` writes after `after`.
    fn wait_for_writes(&self, names: &[&str], after: u64, at_least: usize) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let writes = self.writes();
            let counts = count_between(&writes, after, u64::MAX);
            if names.iter().all(|name| counts.get(*name).copied().unwrap_or(0) >= at_least) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not each of {names:?} made {at_least} writes in {PATIENCE:?}: {counts:?}; all writes: {}",
                runs(&writes)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until each child has a notice on the database's writer board: its head writer waits
    /// for its turn there.
    ///
    /// The board's layout is `src/writer_board.rs`'s: a 64-byte header that starts with the magic
    /// number, then 63 slots of 32 bytes, each `since` (u64, 0 when free), `alive` (u64) and `pid`
    /// (u32), in native byte order. Reading it tells the test that a process waits there, where
    /// it would otherwise sleep and hope.
    fn wait_until_queued(&self, children: &[&Child]) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let board = std::fs::read(board_path(&self.path())).expect("the board is read");
            let word = |at: usize| u64::from_ne_bytes(board[at..at + 8].try_into().unwrap());
            assert_eq!(word(0).to_be_bytes(), *b"LEASEBD1", "the board's magic number");
            let queued: Vec<u32> = (0..63)
                .map(|slot| 64 + 32 * slot)
                .filter(|&slot| word(slot) != 0)
                .map(|slot| u32::from_ne_bytes(board[slot + 16..slot + 20].try_into().unwrap()))
                .collect();
            if children.iter().all(|child| queued.contains(&child.pid())) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not each of {:?} posted a notice on the board in {PATIENCE:?}; the pids posted: {queued:?}",
                children.iter().map(|child| (child.name(), child.pid())).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let dir = self.dir.take().expect("dropped once").keep();
            eprintln!("the database is kept in {}", dir.display());
        }
    }
}

/// Makes the database, in WAL mode, with the table every child writes to, through plain SQLite.
fn make_table(path: &Path) {
    let connection = rusqlite::Connection::open(path).expect("the database opens");
    let mode: String =
        connection.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0)).expect("WAL mode");
    assert_eq!(mode, "wal");
    connection
        .execute_batch(
            "CREATE TABLE written (id INTEGER PRIMARY KEY, writer TEXT NOT NULL, t INTEGER NOT NULL)",
        )
        .expect("the table is made");
}

fn board_path(database: &Path) -> PathBuf {
    let mut path = OsString::from(database);
    path.push("-liblease");
    PathBuf::from(path)
}

/// The job wrote first and last, so it ran all along; the others' writes come in groups between
/// its rows, and before each group the job had committed a chunk.
fn assert_got_in_between_chunks(writes: &[Written], chunks: u64) {
    let summary = runs(writes);
    let (first, last) = (writes.first().expect("writes"), writes.last().expect("writes"));
    assert!(
        first.writer == "job" && last.writer == "job",
        "the job ran before and after the others: {summary}"
    );
    let groups = writes.windows(2).filter(|pair| pair[0].writer == "job" && pair[1].writer != "job").count();
    assert!(
        (1..=chunks as usize).contains(&groups),
        "{groups} groups of other writes between {chunks} chunks of the job: {summary}"
    );
}

/// One row of the `written` table.
#[derive(Debug, Clone)]
struct Written {
    writer: String,
    t: u64,
}

/// How many writes each writer made between `from` and `to`.
fn count_between(writes: &[Written], from: u64, to: u64) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for write in writes.iter().filter(|w| from <= w.t && w.t <= to) {
        *counts.entry(write.writer.clone()).or_default() += 1;
    }
    counts
}

fn longest_runs(writes: &[Written]) -> BTreeMap<String, usize> {
    let mut longest = BTreeMap::new();
    for run in writes.chunk_by(|a, b| a.writer == b.writer) {
        let entry = longest.entry(run[0].writer.clone()).or_default();
        *entry = run.len().max(*entry);
    }
    longest
}

/// The writes in order, each series by one writer shortened to `name×count`, for diagnostics.
fn runs(writes: &[Written]) -> String {
    let runs: Vec<String> = writes
        .chunk_by(|a, b| a.writer == b.writer)
        .map(|run| format!("{}×{}", run[0].writer, run.len()))
        .collect();
    runs.join(" ")
}

/// A child's `DONE` line.
#[derive(Debug, Default)]
struct Done {
    commits: u64,
    busy: u64,
    max_wait_us: u64,
    p99_wait_us: u64,
    chunks: u64,
    rows: u64,
    checks: u64,
}

impl Done {
    fn parse(line: &str) -> Done {
        let mut done = Done::default();
        for word in line.split_whitespace().skip(1) {
            let (key, value) = word.split_once('=').unwrap_or_else(|| panic!("{line:?}"));
            let value = value.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
            match key {
                "commits" => done.commits = value,
                "busy" => done.busy = value,
                "max_wait_us" => done.max_wait_us = value,
                "p99_wait_us" => done.p99_wait_us = value,
                "chunks" => done.chunks = value,
                "rows" => done.rows = value,
                "checks" => done.checks = value,
                _ => panic!("unknown {key} in {line:?}"),
            }
        }
        done
    }
}

/// A child of these tests: `role` is `<role> key=value ...`, `name` its name, also given to it
/// as `name=<name>`.
fn spawn(path: &Path, name: &str, role: &str) -> Child {
    let mut words = role.split_whitespace();
    let role = words.next().expect("a role");
    let path = path.to_str().expect("a UTF-8 path").to_owned();
    let args: Vec<String> =
        [path, format!("name={name}")].into_iter().chain(words.map(String::from)).collect();
    Child::spawn(name, role, &args)
}

/// The script every child here follows beside what `Child` knows: it says `READY` once
/// connected, starts on `GO`, and on `STOP` (or the end of its input) ends its work and says
/// `DONE ...`.
trait Script {
    /// Waits until the child is connected, then lets it start.
    fn start(&mut self);
    /// Waits for the child's `DONE`.
    fn done(&mut self) -> Done;
    /// Tells the child to stop, and waits for its `DONE` and its exit.
    fn stop(&mut self) -> Done;
}

impl Script for Child {
    fn start(&mut self) {
        self.expect("READY");
        self.send("GO");
    }

    fn done(&mut self) -> Done {
        Done::parse(&self.expect("DONE"))
    }

    fn stop(&mut self) -> Done {
        self.send("STOP");
        let done = self.done();
        self.finish();
        done
    }
}

/// The `index`th word of `line`, a number.
fn number(line: &str, index: usize) -> u64 {
    let word = line.split(' ').nth(index).unwrap_or_else(|| panic!("no word {index} in {line:?}"));
    word.parse().unwrap_or_else(|e| panic!("word {index} of {line:?}: {e}"))
}
