//! The checks, made after the run from the workers' logs, the driver's record and the database;
//! the lock itself is never asked. Each log line proves its fact (see `event`), so:
//!
//! - **Mutual exclusion.** A `C <hold> <t>` line says that liblease told the worker the lease
//!   was its own at `t`. Within a hold every check from the first to the last succeeded (a lost
//!   hold is lost for good), so liblease claims the lease for the worker from its first checked
//!   time to its last. Two such intervals of different processes must never meet (one instant
//!   in common counts); different incarnations of one worker are different processes. A check
//!   that succeeds after its hold was lost or given back is a failure too.
//! - **A stopped holder sees the loss before it writes.** For each stop in which the worker held
//!   the lease (see `driver`) and another worker took it before the continue, the stopped
//!   worker's log after the stop (after `Stop::log_offset`) must show the loss as the first
//!   thing it did in that hold after the stop: no check and no fenced commit first (one whose
//!   time is before the stop happened before it, and was logged late), unless it was giving the
//!   lease back and so did nothing more. The lease was taken only after it ran out by the lease
//!   clock, and the holder's own clock kept running while it was stopped, so its first check
//!   must fail, and so must its fenced begin. And no fenced row of that hold may have been
//!   written after the driver saw the take: such a row's `t`, read inside its transaction,
//!   would be later than the driver's time, so its transaction took SQLite's write lock after
//!   the take committed (had it taken the lock before, the take could only have committed after
//!   the row's transaction ended, after `t`, and the driver, which saw the take after it
//!   committed, would have read a time past `t`).
//! - **Fenced rows in commit order.** The generation grows whenever the lease changes holder,
//!   and each generation belongs to one holder. Fenced rows are written under their lease, so in
//!   commit order (rowid, see `schema`) their generations never decrease and each generation's
//!   rows are one process's. A holder that wrote after its lease passed to another breaks this
//!   as soon as that other worker wrote a fenced row.
//! - **Every committed row is there.** Every row a worker logged committed (fenced, plain, and
//!   every chunk `maybe_commit` or `commit` reported) is in the database, and a reported chunk
//!   has exactly its rows. No transaction is partial: a plain transaction's rows are all there
//!   (each row names how many its transaction has); a job's rows, by sequence number, are
//!   `0..n` with no hole and its chunks `0..=m` in order, so a chunk of which only some rows
//!   were kept would leave a hole before the next chunk. (The last chunk of a job whose worker
//!   was killed before it could log the commit has no known length: that it is whole cannot be
//!   told, only that nothing is missing before it.)
//! - `PRAGMA integrity_check` answers `ok`.
//! - The run made progress: some worker took the lease, and some rows were committed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use lease::{Database, Value};

use crate::driver::{Plan, Record, Stop};
use crate::event::{self, Event, LostBy};

/// How many failures are printed in full.
const SHOWN: usize = 40;

/// Checks the run and prints its figures; returns whether every check passed.
pub fn report(plan: &Plan, record: &Record, database: &Database) -> Result<bool, String> {
    let mut failures = record.failures.clone();
    let logs: Vec<WorkerLog> = record
        .incarnations
        .iter()
        .map(|incarnation| {
            let events = if incarnation.log.exists() { event::read(&incarnation.log)? } else { Vec::new() };
            Ok(WorkerLog { label: incarnation.label.clone(), events })
        })
        .collect::<Result<_, String>>()?;
    let rows = Rows::read(database)?;

    let holds = holds(&logs, &mut failures);
    let overlaps = overlaps(&holds, &mut failures);
    let stops = stops(plan, record, &logs, &rows, &mut failures);
    let out_of_order = fenced_order(&rows, &mut failures);
    let committed = committed(&logs, &rows, &mut failures);
    let partial = partial(&rows, &mut failures);
    let integrity = integrity(database)?;
    if integrity != "ok" {
        failures.push(format!("PRAGMA integrity_check: {integrity}"));
    }

    let count = |wanted: fn(&Event) -> bool| -> usize {
        logs.iter().flat_map(|log| &log.events).filter(|(_, event)| wanted(event)).count()
    };
    let acquisitions = count(|e| matches!(e, Event::Acquired { .. }));
    let timeouts = count(|e| matches!(e, Event::TimedOut { .. }));
    let lost_by_check = count(|e| matches!(e, Event::Lost { by: LostBy::Check, .. }));
    let lost_by_begin = count(|e| matches!(e, Event::Lost { by: LostBy::Begin, .. }));
    let failed_writes = count(|e| matches!(e, Event::Failed { .. }));
    if acquisitions == 0 {
        failures.push("no worker ever took the lease".into());
    }
    if committed.fenced + committed.plain + committed.chunk == 0 {
        failures.push("no worker committed anything".into());
    }

    let figure = |name: &str, value: String| println!("{:<28}{value}", format!("{name}:"));
    println!();
    figure("run time", format!("{:.1} s", record.elapsed.as_secs_f64()));
    figure("processes", format!("{} ({} started over the run)", plan.processes, record.incarnations.len()));
    figure("acquisitions", format!("{acquisitions} ({timeouts} waits timed out)"));
    figure("kills", format!("{} ({} of the lease's holder)", record.kills, record.holder_kills));
    figure(
        "stops",
        format!(
            "{} ({} past the lease; {} of a holder, {} of them replaced while stopped)",
            record.stops.len(),
            stops.past_lease,
            stops.holding,
            stops.replaced
        ),
    );
    figure(
        "released, still in table",
        format!(
            "{} stops found the stopped worker's lease in the table after its release() returned \
             (up to {:.0} ms after)",
            stops.released,
            ms(stops.released_longest)
        ),
    );
    figure("overlaps", overlaps.to_string());
    figure(
        "lost detections",
        format!(
            "{} ({lost_by_check} by a check, {lost_by_begin} by a fenced begin)",
            lost_by_check + lost_by_begin
        ),
    );
    figure(
        "stopped holders' loss",
        format!(
            "{} of {} saw LEASE_LOST before writing ({} were giving the lease back, and wrote nothing)",
            stops.saw_loss, stops.replaced, stops.gave_back
        ),
    );
    figure(
        "rows after a replacement",
        format!("{} fenced rows of a replaced hold written after the take", stops.late_rows),
    );
    figure("fenced rows out of order", out_of_order.to_string());
    figure(
        "rows committed",
        format!(
            "fenced {}, plain {} (in {} transactions), chunk {} (in {} chunks)",
            committed.fenced,
            committed.plain,
            committed.plain_transactions,
            committed.chunk,
            committed.chunks
        ),
    );
    figure(
        "rows found",
        format!(
            "fenced {}, plain {}, chunk {} ({} committed but not logged: their worker was killed first)",
            rows.fenced.len(),
            rows.plain.values().map(Vec::len).sum::<usize>(),
            rows.chunk.values().map(Vec::len).sum::<usize>(),
            committed.unlogged
        ),
    );
    figure("committed rows missing", committed.missing.to_string());
    figure("partial transactions", partial.to_string());
    figure("integrity_check", integrity);
    figure("failed writes (busy)", failed_writes.to_string());

    println!();
    for failure in failures.iter().take(SHOWN) {
        println!("FAILED: {failure}");
    }
    if failures.len() > SHOWN {
        println!("... and {} more failures", failures.len() - SHOWN);
    }
    println!("result: {}", if failures.is_empty() { "PASS" } else { "FAIL" });
    Ok(failures.is_empty())
}

struct WorkerLog {
    label: String,
    events: Vec<(u64, Event)>,
}

/// A hold that some check of succeeded: its worker and its checked interval.
struct CheckedHold<'a> {
    worker: &'a str,
    number: u64,
    first: u64,
    last: u64,
}

/// The checked interval of every hold; a check after its hold ended is a failure.
fn holds<'a>(logs: &'a [WorkerLog], failures: &mut Vec<String>) -> Vec<CheckedHold<'a>> {
    let mut holds = Vec::new();
    for log in logs {
        let mut current: Option<CheckedHold> = None;
        let mut ended = true;
        for (_, event) in &log.events {
            match *event {
                Event::Acquired { hold, .. } => {
                    holds.extend(current.take());
                    current =
                        Some(CheckedHold { worker: &log.label, number: hold, first: u64::MAX, last: 0 });
                    ended = false;
                }
                Event::Checked { hold, t } => match current.as_mut() {
                    Some(current) if current.number == hold && !ended => {
                        current.first = current.first.min(t);
                        current.last = current.last.max(t);
                    }
                    _ => failures.push(format!(
                        "{}: a check of hold {hold} succeeded outside the hold (at {t})",
                        log.label
                    )),
                },
                ref other if other.ends_hold() => ended = true,
                _ => {}
            }
        }
        holds.extend(current);
    }
    holds.retain(|hold| hold.first <= hold.last);
    holds
}

/// The pairs of holds of different processes whose checked intervals meet.
fn overlaps(holds: &[CheckedHold], failures: &mut Vec<String>) -> usize {
    let mut spans: Vec<&CheckedHold> = holds.iter().collect();
    spans.sort_by_key(|hold| hold.first);
    let mut found = 0;
    for (i, hold) in spans.iter().enumerate() {
        for other in spans[i + 1..].iter().take_while(|other| other.first <= hold.last) {
            if other.worker != hold.worker {
                found += 1;
                failures.push(format!(
                    "overlap: {} hold {} checked over [{}, {}] meets {} hold {} checked over [{}, {}]",
                    hold.worker,
                    hold.number,
                    hold.first,
                    hold.last,
                    other.worker,
                    other.number,
                    other.first,
                    other.last
                ));
            }
        }
    }
    found
}

#[derive(Default)]
struct StopFigures {
    past_lease: usize,
    holding: usize,
    replaced: usize,
    saw_loss: usize,
    gave_back: usize,
    late_rows: usize,
    /// Stops that found the stopped worker's lease in the table after its `release` returned,
    /// and the longest time since it returned.
    released: usize,
    released_longest: u64,
}

fn stops(
    plan: &Plan,
    record: &Record,
    logs: &[WorkerLog],
    rows: &Rows,
    failures: &mut Vec<String>,
) -> StopFigures {
    let mut figures = StopFigures::default();
    let lease = u64::try_from(plan.lease.as_nanos()).expect("a lease fits u64 nanoseconds");
    for stop in &record.stops {
        if stop.continued_at - stop.stopped_at > lease {
            figures.past_lease += 1;
        }
        let Some(log) = logs.iter().find(|log| log.label == stop.label) else { continue };
        let hold = match at_stop(stop, log) {
            AtStop::Holding(hold) => hold,
            AtStop::Released { t } => {
                figures.released += 1;
                figures.released_longest = figures.released_longest.max(stop.stopped_at - t);
                continue;
            }
            AtStop::NotHolding => continue,
        };
        figures.holding += 1;
        let Some(taken) = &stop.taken else { continue };
        figures.replaced += 1;
        let story = format!(
            "{} hold {hold}, stopped for {:.0} ms, taken by {} {:.0} ms into the stop",
            stop.label,
            ms(stop.continued_at - stop.stopped_at),
            taken.by,
            ms(taken.at - stop.stopped_at)
        );
        // After the continue: the hold's events, less its acquisition (logged late if the stop
        // came inside `acquire`) and any check or commit that happened before the stop (read
        // its time, then stopped before logging it). A commit before the stop is no harm: its
        // transaction had ended by then, or the take could not have committed during the stop.
        let after =
            log.events.iter().filter(|(offset, _)| *offset >= stop.log_offset).map(|(_, event)| event);
        let first = after.filter(|event| event.hold() == Some(hold)).find(|event| match event {
            Event::Acquired { .. } => false,
            Event::Checked { t, .. } | Event::Fenced { t, .. } => *t > stop.stopped_at,
            _ => true,
        });
        match first {
            Some(Event::Lost { .. }) => figures.saw_loss += 1,
            // Stopped inside `release`: it let go without writing, and had no check to make.
            Some(Event::Released { .. }) => figures.gave_back += 1,
            Some(other) => failures.push(format!(
                "stopped holder: {story}: after the continue it logged '{other}' before any loss"
            )),
            None => failures.push(format!("stopped holder: {story}: it logged no loss after the continue")),
        }
        let late: Vec<&FencedRow> = rows
            .fenced
            .iter()
            .filter(|row| row.worker == stop.label && row.hold == hold && row.t > taken.at)
            .collect();
        if !late.is_empty() {
            figures.late_rows += late.len();
            failures.push(format!(
                "stopped holder: {story}: {} fenced row(s) of the hold written after the take (the first at {:.1} ms after it)",
                late.len(),
                ms(late[0].t - taken.at)
            ));
        }
    }
    figures
}

/// What a stopped worker had of the lease, by the lease row read after the stop and its log up
/// to the stop.
enum AtStop {
    /// The row did not name it with a lease not run out, or its log shows no hold under way.
    NotHolding,
    /// The row named it, and its log shows this hold under way. A hold whose acquisition was
    /// not logged before the stop is that hold only if its acquisition, logged after, has the
    /// row's generation; otherwise the row was the lease of an earlier hold, not yet given back,
    /// and the worker was waiting for the next one (another worker took the lease meanwhile, so
    /// the next has a newer generation).
    Holding(u64),
    /// The row named it, yet its last hold's `release` had returned, at `t`: the lease was given
    /// back, but not yet in the table (liblease gives it back in the background when the
    /// database is busy).
    Released { t: u64 },
}

fn at_stop(stop: &Stop, log: &WorkerLog) -> AtStop {
    let Some(row) = stop.held.as_ref() else { return AtStop::NotHolding };
    let (before, after): (Vec<_>, Vec<_>) =
        log.events.iter().partition(|(offset, _)| *offset < stop.log_offset);
    let Some((_, last)) = before.iter().rev().find(|(_, event)| event.hold().is_some()) else {
        return AtStop::NotHolding;
    };
    let hold = match *last {
        Event::Released { t, .. } => return AtStop::Released { t },
        ref ended if ended.ends_hold() => return AtStop::NotHolding,
        ref under_way => under_way.hold().expect("a hold's event"),
    };
    let acquired = |event: &Event| matches!(*event, Event::Acquired { hold: h, .. } if h == hold);
    if before.iter().any(|(_, event)| acquired(event)) {
        return AtStop::Holding(hold);
    }
    match after.iter().find(|(_, event)| acquired(event)) {
        Some((_, Event::Acquired { generation, .. })) if *generation == row.generation => {
            AtStop::Holding(hold)
        }
        _ => AtStop::NotHolding,
    }
}

/// Fenced rows in commit order whose generation goes back, or whose generation has another
/// writer.
fn fenced_order(rows: &Rows, failures: &mut Vec<String>) -> usize {
    let mut found = 0;
    let mut owners: HashMap<u64, &str> = HashMap::new();
    // The row of the highest generation committed so far.
    let mut highest: Option<&FencedRow> = None;
    for row in &rows.fenced {
        match highest {
            Some(high) if high.generation > row.generation => {
                found += 1;
                failures.push(format!(
                    "fenced order: row {} ({} hold {} generation {}) committed after row {} of generation {}",
                    row.id, row.worker, row.hold, row.generation, high.id, high.generation
                ));
            }
            _ => highest = Some(row),
        }
        let owner = *owners.entry(row.generation).or_insert(&row.worker);
        if owner != row.worker {
            found += 1;
            failures.push(format!(
                "fenced order: row {} of generation {} written by {}, a generation that {} held",
                row.id, row.generation, row.worker, owner
            ));
        }
    }
    found
}

#[derive(Default)]
struct Committed {
    fenced: usize,
    plain: usize,
    plain_transactions: usize,
    chunk: usize,
    chunks: usize,
    missing: usize,
    /// Rows found that no log reported committed.
    unlogged: usize,
}

/// Every row a log reported committed is in the database.
fn committed(logs: &[WorkerLog], rows: &Rows, failures: &mut Vec<String>) -> Committed {
    let mut committed = Committed::default();
    let fenced: HashMap<(&str, u64, u64), &FencedRow> =
        rows.fenced.iter().map(|row| ((row.worker.as_str(), row.hold, row.seq), row)).collect();
    let mut missing = |what: String| {
        failures.push(format!("missing: {what}"));
    };
    for log in logs {
        let label = log.label.as_str();
        for (_, event) in &log.events {
            match *event {
                Event::Fenced { hold, seq, t } => {
                    committed.fenced += 1;
                    match fenced.get(&(label, hold, seq)) {
                        Some(row) if row.t == t => {}
                        Some(row) => {
                            committed.missing += 1;
                            missing(format!(
                                "{label} fenced row {hold}/{seq} reads t {} instead of {t}",
                                row.t
                            ));
                        }
                        None => {
                            committed.missing += 1;
                            missing(format!("{label} fenced row {hold}/{seq}"));
                        }
                    }
                }
                Event::Plain { tx, rows: count } => {
                    committed.plain += count as usize;
                    committed.plain_transactions += 1;
                    let found = rows.plain.get(&(label.to_owned(), tx)).map_or(0, Vec::len);
                    if found != count as usize {
                        committed.missing += count as usize - found.min(count as usize);
                        missing(format!("{label} plain transaction {tx}: {found} of its {count} rows"));
                    }
                }
                Event::Chunk { job, chunk, first, last } => {
                    committed.chunk += (last - first + 1) as usize;
                    committed.chunks += 1;
                    let job_rows = rows.chunk.get(&(label.to_owned(), job)).map_or(&[][..], Vec::as_slice);
                    let seqs: Vec<u64> =
                        job_rows.iter().filter(|row| row.chunk == chunk).map(|row| row.seq).collect();
                    if seqs != (first..=last).collect::<Vec<_>>() {
                        committed.missing += (first..=last).filter(|seq| !seqs.contains(seq)).count();
                        missing(format!(
                            "{label} job {job} chunk {chunk}: rows {first}..={last} committed, found {} rows ({:?}..{:?})",
                            seqs.len(),
                            seqs.first(),
                            seqs.last()
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    let found = rows.fenced.len()
        + rows.plain.values().map(Vec::len).sum::<usize>()
        + rows.chunk.values().map(Vec::len).sum::<usize>();
    let logged = committed.fenced + committed.plain + committed.chunk;
    committed.unlogged = (found + committed.missing).saturating_sub(logged);
    committed
}

/// Transactions of which only some rows are in the database.
fn partial(rows: &Rows, failures: &mut Vec<String>) -> usize {
    let mut found = 0;
    for ((worker, tx), seqs) in &rows.plain {
        let mut seqs: Vec<(u64, u64)> = seqs.clone();
        seqs.sort_unstable();
        let whole =
            seqs.iter().enumerate().all(|(i, &(seq, count))| seq == i as u64 && count == seqs.len() as u64);
        if !whole {
            found += 1;
            failures.push(format!(
                "partial: {worker} plain transaction {tx} has rows {seqs:?} (seq, of how many)"
            ));
        }
    }
    for ((worker, job), job_rows) in &rows.chunk {
        let mut expected_chunk = 0;
        for (i, row) in job_rows.iter().enumerate() {
            if row.chunk == expected_chunk + 1 {
                expected_chunk += 1;
            }
            if row.seq != i as u64 || row.chunk != expected_chunk {
                found += 1;
                failures.push(format!(
                    "partial: {worker} job {job}: its row {i} in sequence order is row {} of chunk {}, \
                     where row {i} of chunk {expected_chunk} or {} belongs",
                    row.seq,
                    row.chunk,
                    expected_chunk + 1
                ));
                break;
            }
        }
    }
    found
}

fn integrity(database: &Database) -> Result<String, String> {
    let mut answers = Vec::new();
    database
        .query("PRAGMA integrity_check", &[], |row| {
            answers.push(match row.first() {
                Some(Value::Text(text)) => (*text).to_owned(),
                other => format!("{other:?}"),
            });
            true
        })
        .map_err(|e| format!("PRAGMA integrity_check: {e}"))?;
    Ok(answers.join("; "))
}

struct FencedRow {
    id: u64,
    worker: String,
    hold: u64,
    generation: u64,
    seq: u64,
    t: u64,
}

struct ChunkRow {
    seq: u64,
    chunk: u64,
}

/// The database's rows, read once the workers have exited.
struct Rows {
    /// In commit order.
    fenced: Vec<FencedRow>,
    /// (seq, rows) of each plain transaction, by worker and transaction.
    plain: BTreeMap<(String, u64), Vec<(u64, u64)>>,
    /// Each job's rows in sequence order, by worker and job.
    chunk: BTreeMap<(String, u64), Vec<ChunkRow>>,
}

impl Rows {
    fn read(database: &Database) -> Result<Rows, String> {
        let mut rows = Rows { fenced: Vec::new(), plain: BTreeMap::new(), chunk: BTreeMap::new() };
        select(
            database,
            "SELECT worker, id, hold, generation, seq, t FROM fenced_row ORDER BY id",
            |worker, n| {
                rows.fenced.push(FencedRow {
                    id: n[0],
                    worker,
                    hold: n[1],
                    generation: n[2],
                    seq: n[3],
                    t: n[4],
                });
            },
        )?;
        select(database, "SELECT worker, tx, rows, seq FROM plain_row", |worker, n| {
            rows.plain.entry((worker, n[0])).or_default().push((n[2], n[1]));
        })?;
        select(
            database,
            "SELECT worker, job, chunk, seq FROM chunk_row ORDER BY worker, job, seq",
            |worker, n| {
                rows.chunk.entry((worker, n[0])).or_default().push(ChunkRow { chunk: n[1], seq: n[2] });
            },
        )?;
        Ok(rows)
    }
}

/// Runs a query whose first column is a worker's label and whose others are numbers.
fn select(database: &Database, sql: &str, mut each: impl FnMut(String, &[u64])) -> Result<(), String> {
    let mut bad = None;
    let mut numbers = Vec::new();
    database
        .query(sql, &[], |row| {
            numbers.clear();
            let Some(Value::Text(worker)) = row.first() else {
                bad = Some(format!("{row:?}"));
                return false;
            };
            for value in &row[1..] {
                match value {
                    Value::Integer(n) if *n >= 0 => numbers.push(*n as u64),
                    other => {
                        bad = Some(format!("{other:?} in {row:?}"));
                        return false;
                    }
                }
            }
            each((*worker).to_owned(), &numbers);
            true
        })
        .map_err(|e| format!("{sql}: {e}"))?;
    match bad {
        Some(row) => Err(format!("{sql}: an unexpected row {row}")),
        None => Ok(()),
    }
}

fn ms(nanos: u64) -> f64 {
    Duration::from_nanos(nanos).as_secs_f64() * 1e3
}
