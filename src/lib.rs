//! liblease: several processes sharing one SQLite database safely.
//!
//! - [`Lock`]: a cross-process leased lock kept in a table of the shared database.
//! - [`Store`]: a connection to that database, holding the lease table.
//! - [`clock`]: the boot clock leases are timed by; [`runtime`]: the library's one thread.
//! - [`ffi`]: the C ABI, a thin layer over the above, described by `include/lease.h`.

pub mod clock;
mod error;
pub mod ffi;
mod fork_local;
mod lock;
mod process;
pub mod runtime;
mod store;

pub use clock::{BootClock, Clock, ManualClock};
pub use error::{Error, Result};
pub use lock::{Guard, Lock, LockOptions};
pub use process::Process;
pub use store::{LeaseRow, Store, StoreOptions};
