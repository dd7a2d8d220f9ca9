//! Counting the frames appended to a database's WAL, from the header of its wal-index (the
//! `-shm` file that every connection maps).
//!
//! The header (SQLite's `WalIndexHdr`, native byte order, written twice so that a reader can
//! tell a torn copy) holds `mxFrame`, the number of valid frames in the WAL, and the WAL's salts,
//! which change whenever the WAL restarts from its beginning after a checkpoint. Sampling it often
//! and adding up the growth (or, after a restart, the new count) gives the frames written. Each
//! frame is one database page plus a 24-byte frame header, so frames times (page size + 24) is
//! the WAL bytes written; the WAL file's size would not tell, since a restarted WAL reuses it.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::Result;

const HEADER_LEN: usize = 48;
/// `WALINDEX_MAX_VERSION` of every SQLite since 3.7.0.
const WAL_INDEX_VERSION: u32 = 3_007_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    max_frame: u32,
    salts: [u32; 2],
    page_size: u32,
}

/// Frames written to one database's WAL since the counter started.
pub struct WalCounter {
    shm: PathBuf,
    last: Header,
    frames: u64,
}

impl WalCounter {
    /// Starts counting from the current state of `database`'s WAL (a connection must have it
    /// open in WAL mode).
    pub fn start(database: &Path) -> Result<WalCounter> {
        let mut shm = database.as_os_str().to_owned();
        shm.push("-shm");
        let shm = PathBuf::from(shm);
        let last = read_header(&shm)?;
        Ok(WalCounter { shm, last, frames: 0 })
    }

    /// Reads the header again and adds what was appended since the last sample. Sample more
    /// often than the WAL can restart twice (every few milliseconds is plenty for the heartbeat).
    pub fn sample(&mut self) -> Result<()> {
        let now = read_header(&self.shm)?;
        if now.salts == self.last.salts {
            self.frames += u64::from(now.max_frame.saturating_sub(self.last.max_frame));
        } else {
            // The WAL restarted: everything in it now was written since.
            self.frames += u64::from(now.max_frame);
        }
        self.last = now;
        Ok(())
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes of WAL written: each frame is a page and a 24-byte frame header.
    pub fn bytes(&self) -> u64 {
        self.frames * (u64::from(self.last.page_size) + 24)
    }
}

fn read_header(shm: &Path) -> Result<Header> {
    // A writer updates the two copies one after the other; retry until they agree.
    for _ in 0..100 {
        let mut bytes = [0u8; 2 * HEADER_LEN];
        std::fs::File::open(shm)
            .and_then(|mut file| file.read_exact(&mut bytes))
            .map_err(|e| format!("cannot read the wal-index {}: {e}", shm.display()))?;
        let (first, second) = bytes.split_at(HEADER_LEN);
        if first != second {
            std::thread::yield_now();
            continue;
        }
        let u32_at =
            |offset: usize| u32::from_ne_bytes(first[offset..offset + 4].try_into().expect("4 bytes"));
        let u16_at =
            |offset: usize| u16::from_ne_bytes(first[offset..offset + 2].try_into().expect("2 bytes"));
        if u32_at(0) != WAL_INDEX_VERSION || first[12] != 1 {
            return Err(format!("{} is not an initialised wal-index", shm.display()).into());
        }
        // A page size of 65536 is stored as 1.
        let page_size = match u16_at(14) {
            1 => 65_536,
            size => u32::from(size),
        };
        return Ok(Header { max_frame: u32_at(16), salts: [u32_at(32), u32_at(36)], page_size });
    }
    Err(format!("the wal-index header of {} kept changing", shm.display()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_frames_of_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("count.db");
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection.pragma_update(None, "journal_mode", "wal").unwrap();
        connection.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let mut counter = WalCounter::start(&path).unwrap();
        for x in 0..10 {
            connection.execute("INSERT INTO t VALUES (?1)", [x]).unwrap();
            counter.sample().unwrap();
        }
        // Each commit of one small row appends the table's single page.
        assert_eq!(counter.frames(), 10);
        assert_eq!(counter.bytes(), 10 * (4096 + 24));
        // A checkpoint and restart are followed.
        connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        connection.execute("INSERT INTO t VALUES (1)", []).unwrap();
        counter.sample().unwrap();
        assert_eq!(counter.frames(), 11);
    }
}
