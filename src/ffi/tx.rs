//! The C face of a transaction: `LeaseTx`.

use std::ffi::{c_char, c_void};
use std::sync::{Mutex, MutexGuard, TryLockError};

use super::handle::{self, Boxed, Castable};
use super::panic::{catch_status, catch_value};
use super::status::LeaseStatus;
use super::value::{self, LeaseRowCallback, LeaseValue};
use crate::{Error, Result, Transaction};

/// An open write transaction. Opaque; made by lease_db_begin, lease_db_begin_chunked or
/// lease_db_begin_fenced; ended and freed by lease_tx_commit or lease_tx_rollback. Used by one
/// thread at a time: it may move between threads, but two calls on it must not overlap.
pub struct LeaseTx {
    _private: [u8; 0],
}

impl Castable for LeaseTx {
    type Ownership = Boxed;
    type RustType = TxHandle;
}

/// What a `LeaseTx` points at. The mutex is never waited for: a call that finds it taken is a
/// call that overlaps another on the same transaction, which the contract forbids; it is refused
/// rather than queued, so that a row callback calling back into its own transaction fails
/// instead of deadlocking.
pub(crate) struct TxHandle {
    tx: Mutex<Transaction>,
}

impl TxHandle {
    pub(crate) fn new(tx: Transaction) -> TxHandle {
        TxHandle { tx: Mutex::new(tx) }
    }

    fn using(&self) -> Result<MutexGuard<'_, Transaction>> {
        match self.tx.try_lock() {
            Ok(tx) => Ok(tx),
            Err(TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => Err(Error::Misuse(
                "another call on this transaction is running (on another thread, or from its row \
                 callback); a LeaseTx is used by one thread at a time"
                    .into(),
            )),
        }
    }
}

/// Runs one SQL statement in the transaction. sql, params, n_params and out_changes are as for
/// lease_db_execute; rows the statement returns are ignored (see lease_tx_query).
///
/// A statement that fails leaves the transaction open, with everything before it, except when
/// SQLite itself ends the transaction on such a failure (a full disk, say): then the
/// transaction has been rolled back, the error says so, and later calls return LEASE_MISUSE.
/// SQL that ends the transaction (COMMIT, ROLLBACK, END) is not the way to end it: it returns
/// LEASE_MISUSE after it ran, and so do later calls; end it with lease_tx_commit or
/// lease_tx_rollback. Any thread, one call on tx at a time.
///
/// Returns:
/// - LEASE_OK: the statement ran; *out_changes is set.
/// - LEASE_INVALID_ARGUMENT: tx or sql is NULL, or sql or a parameter is invalid as for
///   lease_db_execute. Nothing was run.
/// - LEASE_DATABASE: SQLite refused the SQL or failed while running it; its message says why.
/// - LEASE_MISUSE: the transaction has ended (see above), another call on tx is running, or tx
///   was begun before fork() and this is the child.
#[no_mangle]
pub extern "C" fn lease_tx_execute(
    tx: *mut LeaseTx,
    sql: *const c_char,
    params: *const LeaseValue,
    n_params: usize,
    out_changes: *mut u64,
) -> LeaseStatus {
    catch_status("lease_tx_execute", || {
        // SAFETY: the C contract: tx is NULL or a live transaction; sql is NULL or a C string;
        // params holds n_params values; out_changes is NULL or writable.
        let handle = unsafe { handle::borrow(tx, "tx") }?;
        unsafe {
            value::execute(sql, params, n_params, out_changes, |sql, params| {
                handle.using()?.execute(sql, params)
            })
        }
    })
}

/// Runs one SQL statement in the transaction, seeing the transaction's own writes, and hands
/// each result row to on_row until it returns non-zero or the rows end (see LeaseRowCallback).
/// sql, params, n_params, on_row and context are as for lease_db_query, except that the
/// statement may also write. Failures leave the transaction as lease_tx_execute says. Any
/// thread, one call on tx at a time; on_row runs on the calling thread, before this returns, and
/// must not call functions on tx.
///
/// Returns:
/// - LEASE_OK: every row was handed over, or on_row stopped the query.
/// - LEASE_INVALID_ARGUMENT: tx, sql or on_row is NULL, or sql or a parameter is invalid as for
///   lease_db_execute. No row was handed over.
/// - LEASE_DATABASE, LEASE_MISUSE: as for lease_tx_execute.
#[no_mangle]
pub extern "C" fn lease_tx_query(
    tx: *mut LeaseTx,
    sql: *const c_char,
    params: *const LeaseValue,
    n_params: usize,
    on_row: LeaseRowCallback,
    context: *mut c_void,
) -> LeaseStatus {
    catch_status("lease_tx_query", || {
        // SAFETY: the C contract: tx is NULL or a live transaction; sql is NULL or a C string;
        // params holds n_params values.
        let handle = unsafe { handle::borrow(tx, "tx") }?;
        unsafe {
            value::query(sql, params, n_params, on_row, context, |sql, params, sink| {
                handle.using()?.query(sql, params, |row| sink.deliver(row))
            })
        }
    })
}

/// For a chunked transaction (lease_db_begin_chunked): commits the current chunk and begins the
/// next one, through the writer queue, if the chunk is due; then *out_committed (when not NULL)
/// says whether it did. A plain or fenced transaction is never committed here: *out_committed
/// is false.
///
/// A chunk is due once it has lasted the transaction's chunk_ms, or, while another writer that
/// uses liblease (of this process or another) waits for the file, once it has lasted 4 ms (or
/// chunk_ms, if less). The job decides how often this is checked: the bounds hold between calls.
/// So, when the job calls this at least every T milliseconds, the chunk ends within about
/// 4 ms + T of a liblease writer starting to wait, and that writer gets the database then
/// (after any writers queued before it); and no chunk holds the write lock longer than about
/// chunk_ms + T. After a chunk that lasted its whole chunk_ms, this call leaves the write lock
/// free for the gap lease_db_begin_chunked describes before it begins the next chunk, so that
/// plain-SQLite writers get in. Call it after every small piece of work (every row, or every
/// few): a call that finds nothing due costs next to nothing.
///
/// What a chunk commits stays committed: lease_tx_rollback, or a failed lease_tx_commit, undoes
/// only the current chunk, and another process sees each chunk as soon as it is committed. A
/// job must therefore be correct when stopped between any two chunks (by a crash, say), for
/// instance by recording its progress in the same chunks as its work.
///
/// Blocks while it begins the next chunk (up to the database handle's busy timeout). Any thread,
/// one call on tx at a time.
///
/// Returns:
/// - LEASE_OK: *out_committed (if not NULL) is set; the transaction is open.
/// - LEASE_INVALID_ARGUMENT: tx is NULL.
/// - LEASE_BUSY: the chunk was committed, but the next could not begin within the busy timeout:
///   the transaction has ended (later calls return LEASE_MISUSE); end it with lease_tx_commit or
///   lease_tx_rollback, which then only free it.
/// - LEASE_DATABASE: committing the chunk failed, and it was rolled back; or it was committed and
///   the next could not begin. Either way the transaction has ended, as for LEASE_BUSY.
/// - LEASE_MISUSE: the transaction has ended, another call on tx is running, or tx was begun
///   before fork() and this is the child.
#[no_mangle]
pub extern "C" fn lease_tx_maybe_commit(tx: *mut LeaseTx, out_committed: *mut bool) -> LeaseStatus {
    catch_status("lease_tx_maybe_commit", || {
        // SAFETY: the C contract: tx is NULL or a live transaction; out_committed is NULL or
        // writable.
        let handle = unsafe { handle::borrow(tx, "tx") }?;
        let committed = handle.using()?.maybe_commit()?;
        if let Some(out) = unsafe { out_committed.as_mut() } {
            *out = committed;
        }
        Ok(())
    })
}

/// Commits the transaction (a chunked one: its current chunk), ends it, and frees tx. tx is
/// consumed whatever the outcome: if the commit fails, the transaction is rolled back, so the
/// connection is never left inside a transaction and the next writer gets in at once. The one
/// exception is misuse: called while another call on tx is running (from tx's own row callback,
/// say), it returns LEASE_MISUSE and does nothing, since freeing tx would pull it from under
/// that call. Any thread, one call on tx at a time.
///
/// Returns:
/// - LEASE_OK: committed.
/// - LEASE_INVALID_ARGUMENT: tx is NULL.
/// - LEASE_DATABASE: the commit failed (a deferred foreign key, a full disk...): everything since
///   the transaction (or the chunk) began was rolled back. SQLite's message says why.
/// - LEASE_MISUSE: the transaction had already ended (see lease_tx_execute and
///   lease_tx_maybe_commit: nothing was committed now), or tx was begun before fork() and this is
///   the child (tx is freed, and the parent's transaction is untouched); or, without freeing tx,
///   another call on tx is running.
#[no_mangle]
pub extern "C" fn lease_tx_commit(tx: *mut LeaseTx) -> LeaseStatus {
    catch_status("lease_tx_commit", || {
        // SAFETY: the C contract: tx is NULL or a live transaction that the caller gives up.
        drop(unsafe { handle::borrow(tx, "tx") }?.using()?);
        let handle =
            unsafe { handle::take(tx) }.ok_or_else(|| Error::InvalidArgument("tx is NULL".into()))?;
        handle.tx.into_inner().unwrap_or_else(|p| p.into_inner()).commit()
    })
}

/// Rolls the transaction back (a chunked one: its current chunk only; chunks committed by
/// lease_tx_maybe_commit stay), ends it, and frees tx. Also the way to free a transaction that
/// has ended by itself. NULL is a no-op. Any thread, one call on tx at a time. Misuse, as for lease_tx_commit,
/// does nothing but record the message for lease_last_error_message. In a forked child it frees
/// tx without touching the parent's transaction.
#[no_mangle]
pub extern "C" fn lease_tx_rollback(tx: *mut LeaseTx) {
    catch_value("lease_tx_rollback", (), || {
        // SAFETY: the C contract: tx is NULL or a live transaction that the caller gives up.
        let Ok(handle) = (unsafe { handle::borrow(tx, "tx") }) else { return Ok(()) };
        drop(handle.using()?);
        if let Some(handle) = unsafe { handle::take(tx) } {
            handle.tx.into_inner().unwrap_or_else(|p| p.into_inner()).rollback();
        }
        Ok(())
    })
}
