//! The soak's tables, one per kind of write, and the statements that fill them. The `id` of each
//! table is its rows' commit order: every transaction holds SQLite's write lock from its first
//! statement, so transactions commit one after another, and a row's rowid is one more than the
//! largest committed before it (rows are never deleted).

/// The lease the workers contend for.
pub const KEY: &str = "soak";

pub const CREATE: [&str; 3] = [
    // One row per fenced transaction: the hold it was written in, as the worker numbers it, the
    // generation of the hold's guard, and `t`, read inside the transaction.
    "CREATE TABLE IF NOT EXISTS fenced_row (
         id INTEGER PRIMARY KEY, worker TEXT NOT NULL, hold INTEGER NOT NULL,
         generation INTEGER NOT NULL, seq INTEGER NOT NULL, t INTEGER NOT NULL)",
    // A plain transaction's rows `0..rows`, each naming how many its transaction has.
    "CREATE TABLE IF NOT EXISTS plain_row (
         id INTEGER PRIMARY KEY, worker TEXT NOT NULL, tx INTEGER NOT NULL,
         rows INTEGER NOT NULL, seq INTEGER NOT NULL)",
    // A chunked job's rows, numbered through the job, each tagged with its chunk.
    "CREATE TABLE IF NOT EXISTS chunk_row (
         id INTEGER PRIMARY KEY, worker TEXT NOT NULL, job INTEGER NOT NULL,
         chunk INTEGER NOT NULL, seq INTEGER NOT NULL)",
];

pub const INSERT_FENCED: &str =
    "INSERT INTO fenced_row (worker, hold, generation, seq, t) VALUES (?, ?, ?, ?, ?)";
pub const INSERT_PLAIN: &str = "INSERT INTO plain_row (worker, tx, rows, seq) VALUES (?, ?, ?, ?)";
pub const INSERT_CHUNK: &str = "INSERT INTO chunk_row (worker, job, chunk, seq) VALUES (?, ?, ?, ?)";
