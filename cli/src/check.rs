//! `lease check`: is the database sound, and are the files beside it what liblease and SQLite
//! expect? One line per finding; a problem makes the exit status 1. Reads only.

use std::fmt::Write as _;
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use lease::inspect::{self, Board, ReadOnlyDatabase, BOARD_SIZE};

use crate::human::writers_waiting;
use crate::{Exit, Failure, Report};

/// SQLite's WAL index grows by regions of this size.
const SHM_REGION: u64 = 32 * 1024;
/// A WAL file begins with a header of this many bytes, whose first four are one of two magics.
const WAL_HEADER: u64 = 32;
const WAL_MAGICS: [u32; 2] = [0x377f_0682, 0x377f_0683];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    /// Unusual, and worth knowing, but nothing is broken.
    Warning,
    Problem,
}

/// The findings so far, in order.
#[derive(Default)]
struct Findings {
    lines: String,
    worst: Option<Level>,
}

impl Findings {
    fn add(&mut self, level: Level, subject: &str, text: impl std::fmt::Display) {
        let word = match level {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Problem => "problem",
        };
        let _ = writeln!(self.lines, "{word}: {subject}: {text}");
        self.worst = self.worst.max(Some(level));
    }
}

pub fn run(db: &Path) -> Result<Report, Failure> {
    let database = ReadOnlyDatabase::open(db).map_err(Failure::unreadable(db))?;
    let metadata = std::fs::metadata(db)
        .map_err(|e| Failure::new(Exit::Unreadable, format!("{}: {e}", db.display())))?;
    let mut findings = Findings::default();
    let name = db.display().to_string();
    check_database_file(&mut findings, db, &name, &metadata);
    match database.integrity_check() {
        Ok(problems) if problems.is_empty() => findings.add(Level::Ok, "integrity_check", "ok"),
        Ok(problems) => {
            for problem in problems {
                findings.add(Level::Problem, "integrity_check", problem);
            }
        }
        Err(e) => {
            findings.add(Level::Problem, "integrity_check", format!("cannot run: {}", inspect::reason(&e)))
        }
    }
    check_schema(&mut findings, &database);
    check_side_files(&mut findings, db, &metadata);
    let exit = if findings.worst == Some(Level::Problem) { Exit::Wrong } else { Exit::Ok };
    Ok(Report { text: findings.lines, exit })
}

/// The file itself: a SQLite database's header, and a whole number of its pages.
fn check_database_file(findings: &mut Findings, db: &Path, name: &str, metadata: &Metadata) {
    let len = metadata.len();
    let mut header = [0u8; 100];
    let read = std::fs::File::open(db).and_then(|mut file| file.read(&mut header));
    let described = format!("{len} bytes, {}", mode_and_owner(metadata));
    match read {
        Err(e) => findings.add(Level::Problem, name, format!("{described}; cannot read its header: {e}")),
        // SQLite makes an empty file a database on its first write.
        Ok(0) => findings.add(Level::Ok, name, format!("{described}, empty")),
        Ok(n) if n < header.len() || &header[..16] != b"SQLite format 3\0" => findings.add(
            Level::Problem,
            name,
            format!("{described}; not a SQLite database (its header is another program's)"),
        ),
        Ok(_) => {
            // Bytes 16-17: the page size, big-endian; 1 means 65536.
            let page_size = match u16::from_be_bytes([header[16], header[17]]) {
                1 => 65_536,
                size => u64::from(size),
            };
            if page_size < 512 || len % page_size != 0 {
                findings.add(
                    Level::Problem,
                    name,
                    format!("{described}; not a whole number of its {page_size}-byte pages: truncated, or damaged"),
                );
            } else {
                let pages = len / page_size;
                let plural = if pages == 1 { "" } else { "s" };
                findings.add(
                    Level::Ok,
                    name,
                    format!("{described}, {pages} page{plural} of {page_size} bytes"),
                );
            }
        }
    }
}

fn check_schema(findings: &mut Findings, database: &ReadOnlyDatabase) {
    let known = inspect::SCHEMA_VERSION;
    match database.schema_version() {
        Err(e) => findings.add(Level::Problem, "schema", format!("cannot be read: {}", inspect::reason(&e))),
        Ok(0) => {
            findings.add(Level::Warning, "schema", "no lease table: liblease has not opened this database")
        }
        Ok(v) if v > known => findings.add(
            Level::Problem,
            "schema",
            format!("version {v}, newer than this build understands ({known}): upgrade lease and liblease"),
        ),
        Ok(v) if v < known => findings.add(
            Level::Ok,
            "schema",
            format!(
                "version {v}, older than this build's ({known}): the next process to open it migrates it"
            ),
        ),
        Ok(v) => findings.add(Level::Ok, "schema", format!("version {v}, this build's")),
    }
}

/// The -wal, -shm, -journal and -liblease files: present or not, their sizes, and modes and
/// owners like the database's (SQLite and liblease make them so; another one may lock a
/// process out).
fn check_side_files(findings: &mut Findings, db: &Path, database: &Metadata) {
    let wal = side(db, "-wal");
    let shm = side(db, "-shm");
    match &wal.metadata {
        None => findings.add(Level::Ok, &wal.name, "none: no process has the database open in WAL mode"),
        Some(metadata) => {
            let len = metadata.len();
            let magic = read_u32(&wal.path);
            let (level, text) = if len == 0 {
                (Level::Ok, "empty".to_owned())
            } else if len < WAL_HEADER {
                (Level::Problem, "shorter than a WAL's header: truncated, or not SQLite's".to_owned())
            } else if !magic.is_some_and(|magic| WAL_MAGICS.contains(&magic)) {
                (Level::Problem, "not a WAL (its header is another program's)".to_owned())
            } else {
                (Level::Ok, "a WAL".to_owned())
            };
            findings.add(level, &wal.name, format!("{len} bytes, {}, {text}", mode_and_owner(metadata)));
            if shm.metadata.is_none() {
                findings.add(
                    Level::Warning,
                    &wal.name,
                    "no -shm beside it: the next process to open the database for writing rebuilds it",
                );
            }
            same_mode_and_owner(findings, &wal, database);
        }
    }
    match &shm.metadata {
        None => findings.add(Level::Ok, &shm.name, "none"),
        Some(metadata) if metadata.len() % SHM_REGION != 0 => findings.add(
            Level::Problem,
            &shm.name,
            format!(
                "{} bytes, not a whole number of 32 KiB regions: truncated under the processes that \
                 use it (their reads and writes fail until they open the database again), or not SQLite's",
                metadata.len()
            ),
        ),
        Some(metadata) => {
            let note = if wal.metadata.is_none() { ", left by the last process (harmless)" } else { "" };
            findings.add(
                Level::Ok,
                &shm.name,
                format!("{} bytes, {}{note}", metadata.len(), mode_and_owner(metadata)),
            );
            same_mode_and_owner(findings, &shm, database);
        }
    }
    let journal = side(db, "-journal");
    if let Some(metadata) = &journal.metadata {
        findings.add(
            Level::Warning,
            &journal.name,
            format!(
                "{} bytes: a rollback journal, from a write outside WAL mode (or one that crashed); \
                 the next writer rolls it back",
                metadata.len()
            ),
        );
    }
    let board = side(db, "-liblease");
    match (inspect::read_board(db), &board.metadata) {
        (Ok(Board::Missing), _) | (_, None) => {
            findings.add(Level::Ok, &board.name, "none yet: the first process that writes through liblease makes it")
        }
        (Ok(Board::Short(len)), _) => findings.add(
            Level::Problem,
            &board.name,
            format!(
                "{len} bytes, shorter than a board ({BOARD_SIZE}): truncated, or not liblease's; processes go \
                 without fair turns at the write lock until it is deleted and they open the database again"
            ),
        ),
        (Ok(Board::Foreign), _) => findings.add(
            Level::Problem,
            &board.name,
            "not a liblease board (another program's file): processes go without fair turns at the write lock",
        ),
        (Ok(Board::Board(writers)), Some(metadata)) => {
            findings.add(
                Level::Ok,
                &board.name,
                format!("a board, {}, {}", mode_and_owner(metadata), writers_waiting(writers.len())),
            );
            same_mode_and_owner(findings, &board, database);
        }
        (Err(e), _) => findings.add(Level::Problem, &board.name, format!("cannot be read: {e}")),
    }
}

/// A file beside the database.
struct Side {
    name: String,
    path: std::path::PathBuf,
    /// `None` when there is no such file.
    metadata: Option<Metadata>,
}

fn side(db: &Path, suffix: &str) -> Side {
    let path = inspect::side_file(db, suffix);
    Side { name: path.display().to_string(), metadata: std::fs::metadata(&path).ok(), path }
}

fn same_mode_and_owner(findings: &mut Findings, side: &Side, database: &Metadata) {
    let Some(metadata) = &side.metadata else { return };
    // Read and write bits only: liblease makes the board without execute bits.
    if metadata.mode() & 0o666 != database.mode() & 0o666 {
        findings.add(
            Level::Warning,
            &side.name,
            format!(
                "mode {:04o}, not the database's {:04o}: a process that may use the database may be refused this file",
                metadata.mode() & 0o7777,
                database.mode() & 0o7777
            ),
        );
    }
    if metadata.uid() != database.uid() {
        findings.add(
            Level::Warning,
            &side.name,
            format!(
                "owned by uid {}, the database by uid {}: a process that may use the database may be refused this file",
                metadata.uid(),
                database.uid()
            ),
        );
    }
}

fn mode_and_owner(metadata: &Metadata) -> String {
    format!("mode {:04o}, uid {}", metadata.mode() & 0o7777, metadata.uid())
}

/// The file's first four bytes, big-endian.
fn read_u32(path: &Path) -> Option<u32> {
    let mut bytes = [0u8; 4];
    std::fs::File::open(path).and_then(|mut file| file.read_exact(&mut bytes)).ok()?;
    Some(u32::from_be_bytes(bytes))
}
