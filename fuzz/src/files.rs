//! The files of one input: a fresh temporary directory with three database files, other
//! spellings of their paths, and paths that cannot be opened.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use arbitrary::Arbitrary;
use tempfile::TempDir;

use crate::contract::c_string;

/// How many database files an input shares between its handles.
pub const DATABASES: usize = 3;

/// A path argument, as the fuzzer picks it.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum PathArg {
    Null,
    Database {
        index: u8,
        spelling: Spelling,
    },
    /// A database's path, then a NUL and more bytes: C sees the path alone.
    EndsAtNul {
        index: u8,
    },
    Empty,
    NotUtf8,
    NotADatabase,
    Directory,
    MissingDirectory,
    /// ":memory:", which cannot be switched to WAL mode.
    Memory,
}

/// Other names of one database file.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Spelling {
    Plain,
    DoubleSlash,
    Dot,
    Symlink,
}

/// Which file a handle is on, for the checks that depend on it (a fenced transaction's guard
/// must be on its database's file). Each in-memory store is a file of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileTag {
    Database(usize),
    Memory(u32),
}

/// What opening a path must do, by the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opens {
    /// LEASE_INVALID_ARGUMENT: NULL, empty or not UTF-8.
    Invalid,
    /// LEASE_DATABASE: SQLite cannot open it, or it is not a database, or not WAL-capable.
    Fails,
    /// LEASE_OK, on this database file.
    File(usize),
}

pub struct Files {
    dir: TempDir,
}

impl Files {
    /// A fresh directory (under $TMPDIR) with the files every [`PathArg`] names but the
    /// databases.
    pub fn new() -> Files {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("junk.db"), "this is not an SQLite database\n".repeat(64))
            .expect("a junk file");
        for index in 0..DATABASES {
            std::os::unix::fs::symlink(database_name(index), dir.path().join(format!("link{index}.db")))
                .expect("a symlink");
        }
        Files { dir }
    }

    /// Makes every database file a copy of `bytes`.
    pub fn write_databases(&self, bytes: &[u8]) {
        for index in 0..DATABASES {
            std::fs::write(self.database(index), bytes).expect("a database file");
        }
    }

    /// The plain path of database `index`.
    pub fn database(&self, index: usize) -> PathBuf {
        self.dir.path().join(database_name(index))
    }

    /// The C string for `arg` (`None` for NULL), and what opening it must do.
    pub fn c_path(&self, arg: PathArg) -> (Option<Vec<u8>>, Opens) {
        let dir = self.dir.path();
        let bytes = |path: &Path| c_string(path.as_os_str().as_bytes());
        match arg {
            PathArg::Null => (None, Opens::Invalid),
            PathArg::Database { index, spelling } => {
                let index = usize::from(index) % DATABASES;
                let name = database_name(index);
                let path = match spelling {
                    Spelling::Plain => dir.join(name),
                    Spelling::DoubleSlash => PathBuf::from(format!("{}//{name}", dir.display())),
                    Spelling::Dot => dir.join(".").join(name),
                    Spelling::Symlink => dir.join(format!("link{index}.db")),
                };
                (Some(bytes(&path)), Opens::File(index))
            }
            PathArg::EndsAtNul { index } => {
                let index = usize::from(index) % DATABASES;
                let mut path = bytes(&self.database(index));
                path.extend_from_slice(b"-ignored\0");
                (Some(path), Opens::File(index))
            }
            PathArg::Empty => (Some(c_string(b"")), Opens::Invalid),
            PathArg::NotUtf8 => {
                let mut path = dir.as_os_str().as_bytes().to_vec();
                path.extend_from_slice(b"/\xff\xfe.db");
                (Some(c_string(&path)), Opens::Invalid)
            }
            PathArg::NotADatabase => (Some(bytes(&dir.join("junk.db"))), Opens::Fails),
            PathArg::Directory => (Some(bytes(dir)), Opens::Fails),
            PathArg::MissingDirectory => (Some(bytes(&dir.join("missing/x.db"))), Opens::Fails),
            PathArg::Memory => (Some(c_string(b":memory:")), Opens::Fails),
        }
    }
}

fn database_name(index: usize) -> String {
    format!("db{index}.db")
}
