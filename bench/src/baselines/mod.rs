//! What people use today, written here from its description so that liblease can be measured
//! beside it in the same run, on the same machine and the same kind of database file.
//!
//! - [`lease_statement`]: the floor of an acquisition: liblease's own lease statement alone on a
//!   bare rusqlite connection;
//! - [`predecessor_lock`]: the predecessor's lock (matrix-rust-sdk's cross-process lock, from
//!   its description in issues 4 and 5): a wall-clock lease renewed by a heartbeat thread,
//!   waiters polling with a growing backoff.

pub mod lease_statement;
pub mod predecessor_lock;
