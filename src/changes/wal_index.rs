//! The count of commits that SQLite keeps in the WAL index, read from the `-shm` file.
//!
//! The WAL index (the `-shm` file of a database in WAL mode) begins with its header, written
//! twice (two copies of 48 bytes, the second written first) in the machine's byte order. Its
//! third word, `iChange`, is incremented by every transaction that commits to the WAL, whoever
//! the writer: SQLite documents the format in "WAL-mode File Format" (walformat.html), and
//! bumps the counter only when it commits (a checkpoint or a restart of the WAL leaves it).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The header's size, and the copy's offsets and fields within it.
const COPY: usize = 48;
const I_VERSION: usize = 0;
const I_CHANGE: usize = 8;
const IS_INIT: usize = 12;
/// The only WAL-index version there is (SQLite 3.7.0 and later).
const VERSION: u32 = 3_007_000;

/// A `-shm` file, open to read its header.
#[derive(Debug)]
pub(super) struct WalIndex(File);

impl WalIndex {
    /// Opens the WAL index of the database at `database`; `None` where there is none to read
    /// (SQLite keeps it in memory with `locking_mode=EXCLUSIVE`).
    pub(super) fn open(database: &Path) -> Option<WalIndex> {
        let mut path = database.as_os_str().to_owned();
        path.push("-shm");
        File::open(path).ok().map(WalIndex)
    }

    /// The count of commits, or `None` while the header is being written (its two copies
    /// differ) or is not one this code knows.
    pub(super) fn commits(&self) -> Option<u32> {
        let mut header = [0; 2 * COPY];
        self.0.read_exact_at(&mut header, 0).ok()?;
        let (first, second) = header.split_at(COPY);
        let word = |at: usize| u32::from_ne_bytes(first[at..at + 4].try_into().expect("four bytes"));
        let valid = first == second && first[IS_INIT] == 1 && word(I_VERSION) == VERSION;
        valid.then(|| word(I_CHANGE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_goes_up_by_one_per_commit_and_not_for_a_checkpoint_or_a_transaction_that_wrote_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counted.db");
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection.pragma_update(None, "journal_mode", "wal").unwrap();
        connection.execute_batch("CREATE TABLE t (x)").unwrap();
        let index = WalIndex::open(&path).expect("a -shm file");
        let before = index.commits().expect("a valid header");
        for x in 0..5 {
            connection.execute("INSERT INTO t VALUES (?1)", [x]).unwrap();
        }
        assert_eq!(index.commits(), Some(before + 5));
        connection.execute_batch("BEGIN IMMEDIATE; SELECT * FROM t; COMMIT").unwrap();
        connection.execute("UPDATE t SET x = 0 WHERE x < 0", []).unwrap();
        connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())).unwrap();
        assert_eq!(index.commits(), Some(before + 5), "nothing was committed to the WAL");
        connection.execute("INSERT INTO t VALUES (9)", []).unwrap();
        assert_eq!(index.commits(), Some(before + 6), "counted after the WAL restarted");
    }
}
