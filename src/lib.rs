//! liblease: several processes sharing one SQLite database safely.
//!
//! - [`Lock`]: a cross-process leased lock kept in a table of the shared database.
//! - [`Store`]: a connection to that database, holding the lease table.
//! - [`Database`] and [`Transaction`]: the application's writes, queued fairly, chunked for long
//!   jobs, and fenced by a lease.
//! - [`clock`]: the boot clock leases are timed by; [`runtime`]: the library's one thread.
//! - [`lifecycle`]: suspending the process (an app going to the background) and resuming it.
//! - [`ffi`]: the C ABI, a thin layer over the above, described by `include/lease.h`.

#[cfg(all(feature = "bundled", feature = "system-sqlite"))]
compile_error!(
    "the features `bundled` (a default) and `system-sqlite` exclude each other: build with \
     `--no-default-features --features system-sqlite` to link the platform's SQLite"
);
#[cfg(not(any(feature = "bundled", feature = "system-sqlite")))]
compile_error!("choose a SQLite: the default feature `bundled`, or `system-sqlite`");

mod callback;
mod changes;
pub mod clock;
mod db;
mod error;
pub mod ffi;
mod file;
mod fork;
mod fork_local;
mod holder;
pub mod inspect;
pub mod lifecycle;
mod liveness;
mod lock;
pub mod log;
pub mod runtime;
mod sigbus;
mod store;
mod suspension;
mod sync;
mod vfs;
mod wait;
mod wakeups;
mod writer_board;
mod writer_queue;

pub use changes::{ChangeCallback, Observer};
pub use clock::{BootClock, Clock, ManualClock};
pub use db::{ChunkOptions, Database, DatabaseOptions, Transaction, Value};
pub use error::{Error, Result};
pub use holder::Holder;
pub use lock::{Guard, Lock, LockOptions, LostCallback, PendingAcquire};
pub use store::{LeaseRow, Store, StoreOptions};

/// The lease table's own SQL, so that the benchmark measures liblease's real statements on a
/// bare connection (its floor). Not part of the API.
#[doc(hidden)]
pub mod sql {
    pub use crate::store::lease_table::{RELEASE, TAKE};

    /// Creates the lease table on a bare connection, as a store does.
    pub fn create_lease_table(connection: &rusqlite::Connection) -> crate::Result<()> {
        crate::store::create_lease_table(connection)
    }
}
