//! liblease: a cross-process leased lock and cooperative transactions over one shared SQLite
//! database.
//!
//! Several processes open the same SQLite database file: an iOS app and its extensions, the
//! processes of one Android app, a desktop app and its helper. Some work must be done by one of
//! them at a time (a sync, a key upload, a migration). A LeaseLock names such work by a key; the
//! process that holds the key's lease is the only one doing it. A lease lasts a limited time and
//! the library renews it in the background while it is held. A waiting process takes over at
//! once when the holder releases the lease; when the holder crashes or is killed, as soon as its
//! process is known to be gone (Linux and Android can tell), else when its lease runs out; when
//! the holder is suspended, when its lease runs out.
//!
//! The processes also write the database, and SQLite lets one writer in at a time without
//! queueing the others: a writer that finds the file locked polls with growing sleeps, so a
//! writer that keeps coming back can starve the rest. A LeaseDb writes through a writer queue
//! instead. Every write of a process to a file (a transaction, a single statement, and the lock's
//! own renewals) waits its turn first come, first served; between processes that use liblease,
//! the writer that has waited longest goes next. A long job uses a chunked transaction, which
//! commits in short chunks and lets a waiting writer in within milliseconds. A fenced
//! transaction writes only while a lease is held, so that a holder suspended past its lease
//! cannot write over the work of the process that took the lease after it.
//!
//! HANDLES
//!
//!   LeaseStore  a connection to a database file that holds the lease table (lease_store_open).
//!               The table normally lives in the application's own database file.
//!   LeaseLock   a named lease in a store (lease_lock_new).
//!   LeaseGuard  proof that this process holds a lease (lease_lock_acquire and friends).
//!   LeaseDb     a connection to a database file for the application's own SQL (lease_db_open),
//!               normally the same file as the store's.
//!   LeaseTx     a write transaction on a LeaseDb: plain, chunked or fenced (lease_db_begin and
//!               its siblings).
//!   LeaseObserver  a callback told after commits to a database file (lease_db_observe).
//!
//! Each handle is freed by its own function: lease_store_free, lease_lock_free,
//! lease_guard_release, lease_db_free and lease_observer_free; a transaction is ended and freed by
//! lease_tx_commit or lease_tx_rollback. Each of them but lease_tx_commit accepts NULL. Handles may be freed in any
//! order: a lock keeps what it needs of its store alive, a guard keeps its lease, and a
//! transaction keeps its database's connection.
//!
//! Exclusion is between processes. Within one process the lock is re-entrant: while the process
//! holds a lease, every acquisition of the same key in the same database file succeeds at once,
//! whichever thread and whichever LeaseLock asks. The lease is held while any of the process's
//! guards of it is alive, and is given back when the last one is released, so a waiting process
//! takes over at once: the lease row is released, or, when another process waits for the lease,
//! the release is said on the board beside the database and that process takes the lease over in
//! its own write (the release is written into the database 50 ms later if nobody took it).
//!
//! Every time a different process takes a lease its generation increases. A guard is "dirty" when
//! another process may have held the lease since this process last held it: whatever this process
//! cached under the lease is then stale. The first acquisition in a process is dirty.
//!
//! A lease is lost when this process was suspended (or its renewals failed) past the lease's
//! expiry: another process may have taken it meanwhile. A lost guard's lease_guard_check returns
//! LEASE_LOST, the lock's lost callback (lease_lock_set_lost_callback) is called once, and the
//! next acquisition is a fresh, dirty one. Leases are timed by a clock shared by every process
//! of one boot that keeps counting while the machine sleeps and ignores changes of the wall
//! clock; a reboot expires every lease.
//!
//! KNOWING WHAT CHANGED
//!
//! An observer (lease_db_observe) is called after every commit to the file by any process, with
//! the tables that changed, or with none when a writer that does not use liblease committed.
//! LeaseDb writers record what each transaction changed in the file itself, in the table
//! liblease_change, inside that transaction: a process stopped or suspended while others wrote
//! is told everything once it runs again. Schema migrations of the application's own
//! (lease_db_migrate) run each step once across the processes that open the file together.
//!
//! CONVENTIONS
//!
//! Every function that can fail returns a LeaseStatus. LEASE_OK is zero; on any other status,
//! lease_last_error_message() says what went wrong, naming the function. Outputs (the out_*
//! arguments) are written only when the function returns LEASE_OK. Strings passed in are
//! NUL-terminated UTF-8 and are not kept after the call returns; SQL values travel as LeaseValue.
//! A NULL pointer where a handle, a string, a callback or an output is required, a string that
//! is not UTF-8, and an out-of-range value all return LEASE_INVALID_ARGUMENT. No Rust panic
//! crosses into C: an internal error returns LEASE_PANIC, or a harmless default from functions
//! that return no status.
//!
//! Durations are uint32_t milliseconds, and 0 means zero everywhere. A time limit of 0 (the
//! timeout_ms of an acquisition, a LeaseDb's busy timeout) makes one attempt that never waits.
//! A length of time that must pass (a lock option, a chunk's period) cannot be 0: it is
//! LEASE_INVALID_ARGUMENT. UINT32_MAX is not special: it is about 49.7 days.
//!
//! A callback whose context outlives the call that gives it (a lock's lost callback, say) comes
//! with an optional LeaseDestroyCallback, which the library calls exactly once when it no longer
//! needs the context; a language binding can release the object behind the context there. A
//! callback that is called exactly once (an asynchronous acquisition's) needs none.
//!
//! THREADS
//!
//! Every function may be called from any thread, and every handle but LeaseTx may be used by
//! several threads at once, except that a handle must not be freed while another thread still
//! uses it. A LeaseTx is used by one thread at a time (it may move between threads). The library
//! has one background thread, named "liblease". It starts the first time this process holds a
//! lease, asks for an asynchronous acquisition or observes a database (merely opening a store or
//! a database starts nothing); it renews held leases, watches for commits, and runs the locks'
//! and the observers' callbacks. These must return promptly and must not wait for a lease
//! (lease_lock_acquire with a timeout, say): while one runs, renewals of this process's leases
//! wait. Row callbacks (LeaseRowCallback) and migration steps (LeaseMigrationStep) run on the
//! thread that called, during its call. lease_shutdown() stops and joins the thread when nothing
//! needs it, so that a host can unload the library.
//!
//! ONE SQLITE PER PROCESS
//!
//! liblease is built with SQLite inside it (the default; its symbols stay private to
//! liblease.so) or against the platform's libsqlite3 (the system-sqlite build). Two copies of
//! SQLite in one process do not see each other's locks on the same file: if this process also
//! opens the shared database through another SQLite (GRDB, Core Data, CPython's sqlite3, Room),
//! build liblease against that same SQLite (on iOS and macOS the system's, which GRDB and Core
//! Data use), or keep the other SQLite's users of the file in other processes. On Android the
//! framework's SQLite cannot be linked from the NDK: use the bundled build there. The system
//! SQLite must be 3.35 or later; an older one makes every open fail with LEASE_DATABASE, saying
//! both versions.
//!
//! SIGNALS AND FILES
//!
//! liblease keeps nothing beside the database but SQLite's -wal and -shm files and its own
//! <database>-liblease (4 KiB, mapped into memory, never locked). Its SQLite connections use a
//! VFS of its own, named "liblease": SQLite's default one, with the -shm file's mappings guarded.
//! Another program that truncates the -shm or the -liblease file under a mapped process would
//! kill that process with SIGBUS (SQLite alone dies so); liblease installs a SIGBUS handler the
//! first time it maps such a file, which turns a fault inside its own mappings into an I/O error
//! of the connections involved (LEASE_DATABASE, saying that the -shm file was truncated: close
//! every handle of the database and open it again), and hands every other SIGBUS to the handler
//! installed before it, or to the default action.
//!
//! FORK
//!
//! A handle made before fork() belongs to the parent. In the child every call on it returns
//! LEASE_MISUSE, and freeing it there touches nothing of the parent's (it leaks a little memory
//! instead). To use liblease in a child, exec a program that opens its own store and database. A
//! forked child that does not exec must not open a store or a database on a file its parent has
//! open either: SQLite keeps per-process bookkeeping of the locks on each open file, and a
//! forked child inherits the parent's, so its new connection would not be locked correctly.

// The exports are C entry points: they take C's pointers, whose contract the header states, and
// cannot be `unsafe fn` to C. Each dereference is in a helper of `handle` with its own contract.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

// Shared machinery: pointers from C, callers' contexts, the panic boundary, statuses and the
// last error.
mod context;
mod handle;
mod panic;
mod status;

// The C face, one file per handle, in the order the header presents them (the comments keep
// rustfmt from sorting them).
// The library as a whole.
mod library;
// LeaseStore.
mod store;
// LeaseLock, its options and its callbacks.
mod lock;
// LeaseGuard.
mod guard;
// LeaseValue and LeaseRowCallback: SQL values in and out, for LeaseDb and LeaseTx.
mod value;
// LeaseDb.
mod db;
// LeaseTx.
mod tx;
// LeaseObserver.
mod observe;
// lease_db_migrate.
mod migrate;

pub use context::*;
pub use db::*;
pub use guard::*;
pub use library::*;
pub use lock::*;
pub use migrate::*;
pub use observe::*;
pub use status::*;
pub use store::*;
pub use tx::*;
pub use value::*;
