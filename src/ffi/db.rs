//! The C face of a database: `LeaseDb`.

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::guard::LeaseGuard;
use super::handle::{self, Boxed, Castable, Out};
use super::panic::{catch_status, catch_value};
use super::status::LeaseStatus;
use super::tx::{LeaseTx, TxHandle};
use super::value::{self, LeaseRowCallback, LeaseValue};
use crate::{ChunkOptions, Database, Error};

/// A connection to a shared SQLite database file, for the application's own reads and writes.
/// Opaque; made by lease_db_open, freed by lease_db_free. Thread-safe.
pub struct LeaseDb {
    _private: [u8; 0],
}

impl Castable for LeaseDb {
    type Ownership = Boxed;
    type RustType = DbHandle;
}

/// What a `LeaseDb` points at.
pub(crate) struct DbHandle {
    db: Database,
    /// The thread whose row callback this handle's query is running (see [`thread_token`]), or
    /// 0. A query of the same handle from that callback would wait for itself for ever.
    delivering_to: AtomicUsize,
}

impl DbHandle {
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }
}

thread_local! {
    static TOKEN: u8 = const { 0 };
}

/// A number that names the calling thread while it lives, never 0: the address of a
/// thread-local.
fn thread_token() -> usize {
    TOKEN.with(|token| std::ptr::from_ref(token).addr())
}

/// Opens the SQLite database file at path (creating it if needed) and switches it to WAL mode,
/// which lets readers and a writer work at once and is required for sharing between processes.
/// path is normally the file the processes' lease stores use too, so that transactions can be
/// fenced by their leases (lease_db_begin_fenced).
///
/// Every handle of the same file in a process (whatever path spelling names it) writes through
/// one writer queue; see the header's introduction. Writes wait for the database up to the
/// handle's busy timeout, 5000 ms unless lease_db_set_busy_timeout changes it. Opening starts no
/// thread.
///
/// On LEASE_OK, *out_db is a new handle that the caller frees with lease_db_free. Any thread.
///
/// Returns:
/// - LEASE_OK: *out_db is set.
/// - LEASE_INVALID_ARGUMENT: path or out_db is NULL, or path is empty or not UTF-8.
/// - LEASE_BUSY: another connection kept the database locked while it was being switched to WAL
///   mode.
/// - LEASE_DATABASE: SQLite could not open the file, or it is not a database, or it cannot be
///   switched to WAL mode (":memory:", say: an in-memory database cannot be shared).
/// - LEASE_SUSPENDED: the process is suspended (lease_suspend) and the file is not in WAL mode yet:
///   switching it would write. Nothing was written. A file in WAL mode opens while suspended.
#[no_mangle]
pub extern "C" fn lease_db_open(path: *const c_char, out_db: *mut *mut LeaseDb) -> LeaseStatus {
    catch_status("lease_db_open", || {
        // SAFETY: the C contract: out_db is NULL or writable, path is NULL or a C string.
        let out = unsafe { Out::new(out_db, "out_db") }?;
        let path = unsafe { handle::str_arg(path, "path") }?;
        out.set(DbHandle { db: Database::open(path)?, delivering_to: AtomicUsize::new(0) });
        Ok(())
    })
}

/// Sets how long a write through db (lease_db_execute, lease_db_begin and its siblings, and each
/// new chunk of a chunked transaction begun later) may wait for the database: for its turn among
/// this process's writers, then for the write lock of other processes. Past it, the call returns
/// LEASE_BUSY. 0 means a single try that never waits. The default is 5000 ms. Takes effect for
/// the next write; other handles of the same file keep their own. Any thread.
///
/// Returns:
/// - LEASE_OK: the timeout is set.
/// - LEASE_INVALID_ARGUMENT: db is NULL.
/// - LEASE_MISUSE: db was opened before fork() and this is the child.
#[no_mangle]
pub extern "C" fn lease_db_set_busy_timeout(db: *mut LeaseDb, timeout_ms: u32) -> LeaseStatus {
    catch_status("lease_db_set_busy_timeout", || {
        // SAFETY: the C contract: db is NULL or a live handle.
        let handle = unsafe { handle::borrow(db, "db") }?;
        handle.db.set_busy_timeout(Duration::from_millis(timeout_ms.into()))
    })
}

/// Runs one SQL statement on its own, outside any transaction, as a write: it waits for its turn
/// in the writer queue, takes SQLite's write lock when it starts, and commits when it ends. Use
/// it for single writes, schema changes and connection settings (PRAGMA foreign_keys = ON, say,
/// which SQLite ignores inside a transaction); it applies to db's connection only. Rows the
/// statement returns are ignored (see lease_db_query).
///
/// sql is one statement, with a ? (or ?NNN, :name...) placeholder per parameter. params points at
/// n_params values bound to them in order (see LeaseValue); it may be NULL when n_params is 0.
/// Nothing is kept after the call. If out_changes is not NULL, *out_changes is set to the number
/// of rows the statement inserted, updated or deleted, not counting those of triggers; 0 for any
/// other statement.
///
/// Blocks up to the busy timeout. Any thread, but a thread that has a transaction open on the
/// same file must not call it: it would wait for that transaction, which cannot end meanwhile.
///
/// Returns:
/// - LEASE_OK: the statement ran; *out_changes is set.
/// - LEASE_INVALID_ARGUMENT: db or sql is NULL; sql is not UTF-8, holds more than one statement,
///   or begins a transaction (use lease_db_begin); params is NULL while n_params is not 0; a
///   parameter is invalid (see LeaseValue: the message names it, as params[i]); or n_params is
///   not the statement's number of parameters. Nothing was run.
/// - LEASE_BUSY: other writers kept the database for the whole busy timeout. Nothing was run.
/// - LEASE_DATABASE: SQLite refused the SQL or failed while running it (a syntax error, a
///   constraint, a read-only or full database...): its message says why, and nothing of the
///   statement was kept. Or db's path no longer names the file db opened (it was deleted,
///   renamed or replaced since): nothing was run, since it would have gone into a file nobody
///   else sees; open the database again.
/// - LEASE_MISUSE: db was opened before fork() and this is the child.
/// - LEASE_SUSPENDED: the process is suspended (lease_suspend) and sql writes. Nothing was run. A
///   read-only statement still runs (it then waits for another thread's transaction on db only
///   up to the busy timeout, and fails with LEASE_BUSY after it).
#[no_mangle]
pub extern "C" fn lease_db_execute(
    db: *mut LeaseDb,
    sql: *const c_char,
    params: *const LeaseValue,
    n_params: usize,
    out_changes: *mut u64,
) -> LeaseStatus {
    catch_status("lease_db_execute", || {
        // SAFETY: the C contract: db is NULL or a live handle; sql is NULL or a C string; params
        // holds n_params values; out_changes is NULL or writable.
        let handle = unsafe { handle::borrow(db, "db") }?;
        unsafe {
            value::execute(sql, params, n_params, out_changes, |sql, params| handle.db.execute(sql, params))
        }
    })
}

/// Runs one read-only SQL statement (a SELECT, say) outside any transaction and hands each
/// result row to on_row, in order, until it returns non-zero or the rows end (see
/// LeaseRowCallback); context is passed to on_row unchanged and may be NULL. It sees what is
/// committed, never waits for writers, and is not held up by a transaction open on db: reads use
/// a second connection of their own. Reads through one handle run one at a time; open more
/// handles to read in parallel.
///
/// sql, params and n_params are as for lease_db_execute. on_row runs on the calling thread,
/// before this returns. Any thread.
///
/// Returns:
/// - LEASE_OK: every row was handed over, or on_row stopped the query.
/// - LEASE_INVALID_ARGUMENT: db, sql or on_row is NULL; the statement writes (use
///   lease_db_execute or a transaction); or sql or a parameter is invalid as for
///   lease_db_execute. No row was handed over.
/// - LEASE_BUSY: rarely: another connection was recovering the database (after a crash) or
///   changing its journal for the whole busy timeout.
/// - LEASE_DATABASE: SQLite refused the SQL or failed while reading; rows handed over before the
///   failure stay handed over.
/// - LEASE_MISUSE: called from on_row of a query on the same handle; or db was opened before
///   fork() and this is the child.
#[no_mangle]
pub extern "C" fn lease_db_query(
    db: *mut LeaseDb,
    sql: *const c_char,
    params: *const LeaseValue,
    n_params: usize,
    on_row: LeaseRowCallback,
    context: *mut c_void,
) -> LeaseStatus {
    catch_status("lease_db_query", || {
        // SAFETY: the C contract: db is NULL or a live handle; sql is NULL or a C string; params
        // holds n_params values.
        let handle = unsafe { handle::borrow(db, "db") }?;
        unsafe {
            value::query(sql, params, n_params, on_row, context, |sql, params, sink| {
                let me = thread_token();
                // Only this thread ever stores its own token, so reading it back means we are
                // inside one of our own callbacks.
                if handle.delivering_to.load(Ordering::Relaxed) == me {
                    return Err(Error::Misuse(
                        "called from a row callback of a query on the same handle".into(),
                    ));
                }
                handle.db.query(sql, params, |row| {
                    handle.delivering_to.store(me, Ordering::Relaxed);
                    let go_on = sink.deliver(row);
                    handle.delivering_to.store(0, Ordering::Relaxed);
                    go_on
                })
            })
        }
    })
}

/// Begins a write transaction: waits for its turn in the writer queue (up to db's busy timeout),
/// then takes SQLite's write lock (BEGIN IMMEDIATE), which it holds until it ends. Run its
/// statements with lease_tx_execute and lease_tx_query, and end it with lease_tx_commit or
/// lease_tx_rollback. Other writers of the file wait meanwhile, so keep it short, or use
/// lease_db_begin_chunked for a long job. Readers are not held up (WAL).
///
/// On LEASE_OK, *out_tx is a new transaction, to be ended (and freed) by lease_tx_commit or
/// lease_tx_rollback. It keeps what it needs of db, which may be freed first. Blocks up to the
/// busy timeout. Any thread, but not one that has a transaction open on the same file already
/// (it would wait for that one, which cannot end meanwhile).
///
/// Returns:
/// - LEASE_OK: the transaction is open; *out_tx is set.
/// - LEASE_INVALID_ARGUMENT: db or out_tx is NULL.
/// - LEASE_BUSY: other writers kept the database for the whole busy timeout.
/// - LEASE_DATABASE: SQLite failed to begin, or db's file was deleted, renamed or replaced since
///   it was opened (as for lease_db_execute).
/// - LEASE_MISUSE: db was opened before fork() and this is the child.
/// - LEASE_SUSPENDED: the process is suspended (lease_suspend). No transaction was begun.
#[no_mangle]
pub extern "C" fn lease_db_begin(db: *mut LeaseDb, out_tx: *mut *mut LeaseTx) -> LeaseStatus {
    catch_status("lease_db_begin", || {
        // SAFETY: the C contract: out_tx is NULL or writable; db is NULL or a live handle.
        let out = unsafe { Out::new(out_tx, "out_tx") }?;
        let handle = unsafe { handle::borrow(db, "db") }?;
        out.set(TxHandle::new(handle.db.begin()?));
        Ok(())
    })
}

/// Begins a chunked transaction, for a long job (a sync, a migration) that writes a lot without
/// keeping other writers out. It is a transaction like lease_db_begin's, that the job cuts into
/// chunks by calling lease_tx_maybe_commit after every small piece of work: each call commits
/// the chunk and begins the next one when the chunk is due, letting waiting writers in between.
///
/// A chunk is due once it has lasted chunk_ms milliseconds (above 0; LEASE_DEFAULT_CHUNK_MS,
/// 1000, suits most jobs), or once it has lasted 4 ms (or chunk_ms, if less) while another
/// writer that uses liblease waits for the file, in this process or another. After a chunk that
/// lasted its whole chunk_ms, the job leaves SQLite's write lock free for 100 ms or a tenth of
/// chunk_ms, whichever is less (less still if another connection commits meanwhile), so that
/// writers using plain SQLite, which liblease cannot see waiting, get in too. See
/// lease_tx_maybe_commit for what this bounds.
///
/// On LEASE_OK, *out_tx is a new transaction, as for lease_db_begin. Any thread, as for
/// lease_db_begin.
///
/// Returns as lease_db_begin does, and LEASE_INVALID_ARGUMENT when chunk_ms is 0.
#[no_mangle]
pub extern "C" fn lease_db_begin_chunked(
    db: *mut LeaseDb,
    chunk_ms: u32,
    out_tx: *mut *mut LeaseTx,
) -> LeaseStatus {
    catch_status("lease_db_begin_chunked", || {
        // SAFETY: the C contract: out_tx is NULL or writable; db is NULL or a live handle.
        let out = unsafe { Out::new(out_tx, "out_tx") }?;
        let handle = unsafe { handle::borrow(db, "db") }?;
        if chunk_ms == 0 {
            return Err(Error::InvalidArgument(
                "chunk_ms is 0; a chunk must last some time (LEASE_DEFAULT_CHUNK_MS is 1000)".into(),
            ));
        }
        out.set(TxHandle::new(handle.db.begin_chunked(chunk_options(chunk_ms))?));
        Ok(())
    })
}

/// The period of lease_db_begin_chunked's chunks that suits most jobs, in milliseconds.
pub const LEASE_DEFAULT_CHUNK_MS: u32 = 1000;

/// The chunks of lease_db_begin_chunked: the core's defaults, shortened with the period.
fn chunk_options(chunk_ms: u32) -> ChunkOptions {
    let defaults = ChunkOptions::DEFAULT;
    let period = Duration::from_millis(chunk_ms.into());
    ChunkOptions { period, slice: defaults.slice.min(period), gap: defaults.gap.min(period / 10) }
}

/// Begins a write transaction fenced by guard: after taking SQLite's write lock, and before
/// anything is written, it checks in the database that guard's lease is still held by this
/// process with guard's generation. If so, the transaction is open as for lease_db_begin; since
/// taking a lease is itself a write, no other process can take the lease before this transaction
/// ends, so everything it writes is written under the lease. If not (this process was suspended
/// past the lease, say, and another process has taken it), nothing is written and LEASE_LOST is
/// returned, so a holder that was away can never write over the new holder's work.
///
/// guard's lock must keep its leases in this same database file (its store opened on the file
/// db names, under any path spelling). guard is only read; it stays the caller's. On LEASE_OK,
/// *out_tx is a new transaction, as for lease_db_begin. Any thread, as for lease_db_begin.
///
/// Returns:
/// - LEASE_OK: the lease is held; the transaction is open; *out_tx is set.
/// - LEASE_LOST: the lease is no longer held with guard's generation (it ran out, another
///   process took it, or guard was lost already). Nothing was written; guard is lost for good
///   (release it and acquire again).
/// - LEASE_INVALID_ARGUMENT: db, guard or out_tx is NULL, or guard's store is another database
///   file (or an in-memory store).
/// - LEASE_BUSY, LEASE_DATABASE, LEASE_SUSPENDED: as for lease_db_begin.
/// - LEASE_MISUSE: db was opened, or guard taken, before fork() and this is the child.
#[no_mangle]
pub extern "C" fn lease_db_begin_fenced(
    db: *mut LeaseDb,
    guard: *const LeaseGuard,
    out_tx: *mut *mut LeaseTx,
) -> LeaseStatus {
    catch_status("lease_db_begin_fenced", || {
        // SAFETY: the C contract: out_tx is NULL or writable; db and guard are NULL or live.
        let out = unsafe { Out::new(out_tx, "out_tx") }?;
        let handle = unsafe { handle::borrow(db, "db") }?;
        let guard = unsafe { handle::borrow(guard, "guard") }?;
        // Fails fast, before waiting for a turn, when the guard is known lost.
        guard.check()?;
        out.set(TxHandle::new(handle.db.begin_fenced(guard)?));
        Ok(())
    })
}

/// Frees a database handle. Transactions begun through it stay usable until they end: they keep
/// its connection open. NULL is a no-op. Any thread, but no other thread may be using this handle
/// (nor may a row callback of its query free it). In a forked child it frees the handle without
/// touching the parent's connection.
#[no_mangle]
pub extern "C" fn lease_db_free(db: *mut LeaseDb) {
    catch_value("lease_db_free", (), || {
        // SAFETY: the C contract: db is NULL or a live handle that the caller gives up.
        drop(unsafe { handle::take(db) });
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_their_slice_and_gap_within_the_period() {
        assert_eq!(chunk_options(LEASE_DEFAULT_CHUNK_MS), ChunkOptions::DEFAULT);
        for ms in [1, 2, 3, 40, 999, 1001, u32::MAX] {
            let options = chunk_options(ms);
            assert_eq!(options.period, Duration::from_millis(ms.into()));
            options.validate().unwrap();
        }
        assert_eq!(chunk_options(200).gap, Duration::from_millis(20));
        assert_eq!(chunk_options(2).slice, Duration::from_millis(2));
    }
}
