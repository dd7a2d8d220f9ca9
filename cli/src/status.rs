//! `lease status`: the leases of a database, the writers waiting on its board, its WAL's size
//! and its lease table's schema version, read without taking part (see `lease::inspect`).

use std::path::Path;

use lease::inspect::{self, Board, Lease, LeaseState, Liveness, ReadOnlyDatabase, WaitingWriter};
use lease::BootClock;
use serde_json::{json, Value};

use crate::human::{duration_ms, table, writers_waiting};
use crate::{Exit, Failure, Report};

/// What `status` shows, read once.
struct Status {
    schema_version: i64,
    leases: Vec<Lease>,
    board: std::io::Result<Board>,
    wal_bytes: Option<u64>,
}

pub fn run(db: &Path, json: bool) -> Result<Report, Failure> {
    let status = read(db)?;
    let text = if json { as_json(db, &status) } else { as_text(db, &status) };
    Ok(Report { text, exit: Exit::Ok })
}

fn read(db: &Path) -> Result<Status, Failure> {
    let clock = BootClock::system().map_err(Failure::unreadable(db))?;
    let database = ReadOnlyDatabase::open(db).map_err(Failure::unreadable(db))?;
    let schema_version = database.schema_version().map_err(Failure::unreadable(db))?;
    let leases = database.leases(&*clock).map_err(Failure::unreadable(db))?;
    Ok(Status {
        schema_version,
        leases,
        board: inspect::read_board(db),
        wal_bytes: std::fs::metadata(inspect::side_file(db, "-wal")).ok().map(|m| m.len()),
    })
}

fn as_text(db: &Path, status: &Status) -> String {
    let schema = match status.schema_version {
        0 => "none: no lease table (liblease has not opened this database)".to_owned(),
        v if v > inspect::SCHEMA_VERSION => {
            format!(
                "{v}, newer than this lease's ({}): some of each lease may not be shown",
                inspect::SCHEMA_VERSION
            )
        }
        v => v.to_string(),
    };
    let wal = match status.wal_bytes {
        Some(bytes) => format!("{bytes} bytes"),
        None => "none".to_owned(),
    };
    let board = match &status.board {
        Ok(Board::Missing) => "none yet".to_owned(),
        Ok(Board::Short(len)) => format!("{len} bytes, too short to be a board (see `lease check`)"),
        Ok(Board::Foreign) => "not a liblease board (see `lease check`)".to_owned(),
        Ok(Board::Board(writers)) => writers_waiting(writers.len()),
        Err(e) => format!("unreadable: {e}"),
    };
    let mut text = table(&[
        vec!["database".into(), db.display().to_string()],
        vec!["schema".into(), schema],
        vec!["wal".into(), wal],
        vec!["board".into(), board],
    ]);
    text.push('\n');
    if status.leases.is_empty() {
        text.push_str("no leases\n");
    } else {
        let header = ["KEY", "LABEL", "PID", "ALIVE", "STATE", "HELD FOR", "EXPIRES", "GENERATION"];
        let mut rows = vec![header.map(String::from).to_vec()];
        rows.extend(status.leases.iter().map(|lease| {
            vec![
                lease.key.clone(),
                lease.row.label.clone(),
                pid(lease.row.pid),
                alive(lease.holder).to_owned(),
                state(lease.state).to_owned(),
                lease.held_for_ms.map_or_else(|| "-".into(), duration_ms),
                expires(lease),
                lease.row.generation.to_string(),
            ]
        }));
        text.push_str(&table(&rows));
    }
    if let Ok(Board::Board(writers)) = &status.board {
        if !writers.is_empty() {
            text.push_str("\nwriters waiting\n");
            let mut rows = vec![vec!["SLOT".into(), "PID".into(), "WAITING".into()]];
            rows.extend(writers.iter().map(|writer| {
                vec![writer.slot.to_string(), pid(writer.pid), duration_ms(writer.waiting.as_millis() as u64)]
            }));
            text.push_str(&table(&rows));
        }
    }
    text
}

fn pid(pid: u32) -> String {
    if pid == 0 {
        "-".into()
    } else {
        pid.to_string()
    }
}

fn alive(liveness: Liveness) -> &'static str {
    match liveness {
        Liveness::Alive => "yes",
        Liveness::Dead => "no",
        Liveness::Unknown => "unknown",
    }
}

fn state(state: LeaseState) -> &'static str {
    match state {
        LeaseState::Held => "held",
        LeaseState::Expired => "expired",
        LeaseState::Released => "free",
    }
}

/// When the lease runs out, or since when it has been out.
fn expires(lease: &Lease) -> String {
    match (lease.state, lease.expires_in_ms) {
        (LeaseState::Released, _) => "-".into(),
        (_, None) => "earlier boot".into(),
        (_, Some(ms)) if ms > 0 => format!("in {}", duration_ms(ms as u64)),
        (_, Some(ms)) => format!("{} ago", duration_ms(ms.unsigned_abs())),
    }
}

fn as_json(db: &Path, status: &Status) -> String {
    let leases: Vec<Value> = status
        .leases
        .iter()
        .map(|lease| {
            json!({
                "key": lease.key,
                "label": lease.row.label,
                "pid": lease.row.pid,
                "alive": match lease.holder {
                    Liveness::Alive => Some(true),
                    Liveness::Dead => Some(false),
                    Liveness::Unknown => None,
                },
                "held": lease.state == LeaseState::Held,
                "state": state(lease.state),
                "held_for_ms": lease.held_for_ms,
                "expires_in_ms": lease.expires_in_ms,
                "generation": lease.row.generation,
                "holder": lease.row.holder_id,
            })
        })
        .collect();
    let writer = |writer: &WaitingWriter| json!({ "slot": writer.slot, "pid": writer.pid, "waiting_ms": writer.waiting.as_millis() as u64 });
    let (board, writers): (Value, Vec<Value>) = match &status.board {
        Ok(Board::Missing) => (json!({ "state": "missing" }), Vec::new()),
        Ok(Board::Short(len)) => (json!({ "state": "short", "bytes": len }), Vec::new()),
        Ok(Board::Foreign) => (json!({ "state": "foreign" }), Vec::new()),
        Ok(Board::Board(waiting)) => (json!({ "state": "ok" }), waiting.iter().map(writer).collect()),
        Err(e) => (json!({ "state": "unreadable", "error": e.to_string() }), Vec::new()),
    };
    let status = json!({
        "database": db.display().to_string(),
        // 0: no lease table.
        "schema_version": status.schema_version,
        "wal_bytes": status.wal_bytes,
        "board": board,
        "leases": leases,
        "writers": writers,
    });
    let mut text = serde_json::to_string_pretty(&status).expect("a JSON value always serializes");
    text.push('\n');
    text
}
