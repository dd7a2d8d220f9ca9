//! What people use today, written here from its description so that liblease can be measured
//! beside it in the same run, on the same machine and the same kind of database file.
//!
//! - [`lease_statement`]: the floor of an acquisition: liblease's own lease statement alone on a
//!   bare rusqlite connection;
//! - [`predecessor_lock`]: the predecessor's lock (matrix-rust-sdk's cross-process lock, from
//!   its description in issues 4 and 5): a wall-clock lease renewed by a heartbeat thread,
//!   waiters polling with a growing backoff;
//! - [`plain_sqlite`]: writers on plain SQLite connections, with a busy timeout and no queue;
//! - [`app_services`]: the application-services writer design (from its description in issue
//!   3): a mutex per process held until `BEGIN IMMEDIATE` returns, long jobs committing every
//!   second.

pub mod app_services;
pub mod lease_statement;
pub mod plain_sqlite;
pub mod predecessor_lock;
