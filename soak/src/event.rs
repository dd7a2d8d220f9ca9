//! A worker's log: what it did, one event per line, in a file of its own.
//!
//! The worker appends each line with one `write` to a file opened for appending, so a worker
//! killed at any moment leaves whole lines (a line cut short would lack its newline, and the
//! reader leaves such a line out). Each line is written after the fact it reports (only `W`
//! announces what comes next): a check line after the check succeeded, a commit line after
//! `commit` (or `maybe_commit`) returned `Ok`. So a line proves its fact; a missing line proves
//! nothing (the worker may have been killed in between), and a line may come late (the worker
//! may have been stopped in between).
//!
//! Times are [`monotonic_ns`](crate::time::monotonic_ns). Holds, plain transactions and chunked
//! jobs are numbered from 1 in each worker; sequence numbers and chunks from 0.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// What a worker logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `W <hold>`: about to wait for the lease, for hold `hold`.
    Waiting { hold: u64 },
    /// `T <hold>`: the wait timed out; there is no hold `hold`.
    TimedOut { hold: u64 },
    /// `A <hold> <generation> <dirty> <t>`: took the lease; `t` read once `acquire` returned.
    Acquired { hold: u64, generation: u64, dirty: bool, t: u64 },
    /// `C <hold> <t>`: a guard check succeeded that began after `t`, so the lease was this
    /// worker's at `t`.
    Checked { hold: u64, t: u64 },
    /// `L <hold> <check|begin>`: the lease was found lost, by a guard check or by a fenced begin.
    /// The hold ends.
    Lost { hold: u64, by: LostBy },
    /// `F <hold> <seq> <t>`: committed the fenced row `seq` of the hold, inserted at `t` (read
    /// inside the transaction).
    Fenced { hold: u64, seq: u64, t: u64 },
    /// `R <hold> <t>`: gave the lease back (`release` returned at `t`); the hold ends.
    Released { hold: u64, t: u64 },
    /// `P <tx> <rows>`: committed plain transaction `tx`, its rows `0..rows`.
    Plain { tx: u64, rows: u64 },
    /// `K <job> <chunk> <first> <last>`: committed chunk `chunk` of job `job`, its rows
    /// `first..=last` (numbered through the job).
    Chunk { job: u64, chunk: u64, first: u64, last: u64 },
    /// `E <what> <message>`: a write or release that failed in a way the worker goes on after
    /// (busy, timed out); nothing of it is claimed committed.
    Failed { what: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostBy {
    Check,
    Begin,
}

impl Event {
    /// The hold a hold's event belongs to.
    pub fn hold(&self) -> Option<u64> {
        match *self {
            Event::Waiting { hold }
            | Event::TimedOut { hold }
            | Event::Acquired { hold, .. }
            | Event::Checked { hold, .. }
            | Event::Lost { hold, .. }
            | Event::Fenced { hold, .. }
            | Event::Released { hold, .. } => Some(hold),
            Event::Plain { .. } | Event::Chunk { .. } | Event::Failed { .. } => None,
        }
    }

    /// Whether the hold has ended with this event (or never began).
    pub fn ends_hold(&self) -> bool {
        matches!(self, Event::TimedOut { .. } | Event::Lost { .. } | Event::Released { .. })
    }

    fn parse(line: &str) -> Result<Event, String> {
        let mut words = line.split(' ');
        let kind = words.next().unwrap_or_default();
        if kind == "E" {
            let what = words.next().ok_or("an E line without its context")?.to_owned();
            return Ok(Event::Failed { what, message: words.collect::<Vec<_>>().join(" ") });
        }
        let numbers: Vec<u64> = words
            .map(|word| word.parse().map_err(|_| format!("'{word}' is not a number")))
            .collect::<Result<_, _>>()?;
        let event = match (kind, numbers.as_slice()) {
            ("W", &[hold]) => Event::Waiting { hold },
            ("T", &[hold]) => Event::TimedOut { hold },
            ("A", &[hold, generation, dirty, t]) => {
                Event::Acquired { hold, generation, dirty: dirty == 1, t }
            }
            ("C", &[hold, t]) => Event::Checked { hold, t },
            ("L", &[hold, 0]) => Event::Lost { hold, by: LostBy::Check },
            ("L", &[hold, 1]) => Event::Lost { hold, by: LostBy::Begin },
            ("F", &[hold, seq, t]) => Event::Fenced { hold, seq, t },
            ("R", &[hold, t]) => Event::Released { hold, t },
            ("P", &[tx, rows]) => Event::Plain { tx, rows },
            ("K", &[job, chunk, first, last]) => Event::Chunk { job, chunk, first, last },
            _ => return Err("not an event".into()),
        };
        Ok(event)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Waiting { hold } => write!(f, "W {hold}"),
            Event::TimedOut { hold } => write!(f, "T {hold}"),
            Event::Acquired { hold, generation, dirty, t } => {
                write!(f, "A {hold} {generation} {} {t}", u8::from(*dirty))
            }
            Event::Checked { hold, t } => write!(f, "C {hold} {t}"),
            Event::Lost { hold, by } => write!(f, "L {hold} {}", u8::from(*by == LostBy::Begin)),
            Event::Fenced { hold, seq, t } => write!(f, "F {hold} {seq} {t}"),
            Event::Released { hold, t } => write!(f, "R {hold} {t}"),
            Event::Plain { tx, rows } => write!(f, "P {tx} {rows}"),
            Event::Chunk { job, chunk, first, last } => write!(f, "K {job} {chunk} {first} {last}"),
            Event::Failed { what, message } => write!(f, "E {what} {message}"),
        }
    }
}

/// A worker's log, open for appending.
pub struct EventLog(File);

impl EventLog {
    pub fn open(path: &Path) -> Result<EventLog, String> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        Ok(EventLog(file))
    }

    /// Appends one line, in one `write`.
    pub fn write(&mut self, event: &Event) -> Result<(), String> {
        // One line never holds a newline of its own: a message's are made spaces.
        let mut line = event.to_string().replace(['\n', '\r'], " ");
        line.push('\n');
        let written = self.0.write(line.as_bytes()).map_err(|e| format!("write to the log: {e}"))?;
        if written != line.len() {
            return Err(format!("the log took {written} of {} bytes of a line", line.len()));
        }
        Ok(())
    }
}

/// The events of a log, each with the offset of its line in the file. A last line without its
/// newline (its worker was killed while writing it) is left out.
pub fn read(path: &Path) -> Result<Vec<(u64, Event)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut events = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some(content) = line.strip_suffix('\n') {
            let event = Event::parse(content)
                .map_err(|e| format!("{} at byte {offset}: {content:?}: {e}", path.display()))?;
            events.push((offset, event));
        }
        offset += line.len() as u64;
    }
    Ok(events)
}
