//! The C face of a transaction: `LeaseTx`.

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::handle::{self, Boxed, Castable};
use super::panic::{catch_status, catch_value};
use super::status::LeaseStatus;
use super::value::{self, LeaseRowCallback, LeaseValue};
use crate::sync::MutexExt;
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

/// What a `LeaseTx` points at.
///
/// Every call on a transaction is a [`TxCall`], and two never overlap: a call that comes while
/// another runs (on another thread, or from that call's own row callback) is refused rather than
/// queued, so a callback that calls back into its own transaction fails instead of deadlocking.
/// Commit and rollback consume the handle on every path: one that comes while a call runs marks
/// the handle, and that call rolls the transaction back and frees it when it returns.
pub(crate) struct TxHandle {
    /// Only ever locked by the one call running, so never waited for.
    tx: Mutex<Transaction>,
    /// [`RUNNING`] while a call runs, and [`ENDED`] once commit or rollback came during one;
    /// [`LENT`] for a transaction the library lends to C and ends itself. Atomic rather than a
    /// mutex, so that a forked child never waits for a parent's thread.
    calls: AtomicU8,
}

const RUNNING: u8 = 1;
const ENDED: u8 = 2;
const LENT: u8 = 4;

impl TxHandle {
    pub(crate) fn new(tx: Transaction) -> TxHandle {
        TxHandle { tx: Mutex::new(tx), calls: AtomicU8::new(0) }
    }

    /// A handle on a transaction that the library lends to C for the length of a callback (a
    /// migration step) and then takes back with [`reclaim`]: lease_tx_commit and
    /// lease_tx_rollback refuse it.
    pub(crate) fn lent(tx: Transaction) -> TxHandle {
        TxHandle { tx: Mutex::new(tx), calls: AtomicU8::new(LENT) }
    }
}

/// Takes back a transaction lent with [`TxHandle::lent`] once the callback returned. A call on
/// it still running (the callback gave the handle to another thread) keeps it: that call rolls
/// it back and frees it when it returns, and this fails with `Misuse`.
///
/// # Safety
/// `tx` is a live handle made from [`TxHandle::lent`], not taken back before.
pub(crate) unsafe fn reclaim(tx: *mut LeaseTx) -> Result<Transaction> {
    // SAFETY: by the caller's promise.
    let handle = unsafe { handle::borrow(tx, "tx") }?;
    if handle.calls.fetch_or(ENDED, Ordering::AcqRel) & RUNNING != 0 {
        return Err(Error::Misuse(
            "the callback returned while a call on its transaction was still running on another \
             thread; the transaction is rolled back"
                .into(),
        ));
    }
    // SAFETY: by the caller's promise, and no call runs on it.
    let handle = unsafe { handle::take(tx) }.expect("checked non-NULL above");
    Ok(handle.tx.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// One call on a transaction, from its start to its return.
struct TxCall {
    handle: *mut LeaseTx,
}

impl TxCall {
    /// # Safety
    /// `tx` is NULL or a live transaction, not freed by anyone but this call's end.
    unsafe fn enter(tx: *mut LeaseTx) -> Result<TxCall> {
        // SAFETY: by the caller's promise.
        let handle = unsafe { handle::borrow(tx, "tx") }?;
        let calls = &handle.calls;
        let free = |calls: u8| calls & (RUNNING | ENDED) == 0;
        if calls
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| free(now).then_some(now | RUNNING))
            .is_err()
        {
            return Err(Error::Misuse(
                "another call on this transaction is running (on another thread, or from its row \
                 callback); a LeaseTx is used by one thread at a time"
                    .into(),
            ));
        }
        Ok(TxCall { handle: tx })
    }

    fn handle(&self) -> &TxHandle {
        // SAFETY: `enter` checked the handle, and nothing frees it while this call runs.
        unsafe { &*self.handle.cast::<TxHandle>() }
    }

    fn transaction(&self) -> MutexGuard<'_, Transaction> {
        self.handle().tx.locked()
    }
}

impl Drop for TxCall {
    fn drop(&mut self) {
        if self.handle().calls.fetch_and(!RUNNING, Ordering::AcqRel) & ENDED != 0 {
            // SAFETY: commit or rollback gave the handle up to this call, the last to use it.
            // Dropping the transaction rolls it back.
            drop(unsafe { handle::take(self.handle) });
        }
    }
}

/// Takes the handle back from C to end it. While a call on it runs, marks it instead (that call
/// frees it) and fails with `Misuse`.
///
/// # Safety
/// `tx` is NULL or a live transaction that the caller gives up.
unsafe fn take_to_end(tx: *mut LeaseTx) -> Result<Box<TxHandle>> {
    // SAFETY: by the caller's promise.
    let handle = unsafe { handle::borrow(tx, "tx") }?;
    if handle.calls.load(Ordering::Acquire) & LENT != 0 {
        return Err(Error::Misuse(
            "this transaction belongs to lease_db_migrate, which commits it when the step returns; \
             return from the step instead (a status other than LEASE_OK rolls it back)"
                .into(),
        ));
    }
    if handle.calls.fetch_or(ENDED, Ordering::AcqRel) & RUNNING != 0 {
        return Err(Error::Misuse(
            "another call on this transaction is running (on another thread, or from its row \
             callback): nothing was committed, and the transaction is rolled back and freed when \
             that call returns"
                .into(),
        ));
    }
    // SAFETY: by the caller's promise, and no call runs on it.
    Ok(unsafe { handle::take(tx) }.expect("checked non-NULL above"))
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
/// - LEASE_SUSPENDED: the process was suspended (lease_suspend), which rolled the transaction
///   (or its current chunk) back: it has ended, and later calls return LEASE_MISUSE.
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
        let call = unsafe { TxCall::enter(tx) }?;
        unsafe {
            value::execute(sql, params, n_params, out_changes, |sql, params| {
                call.transaction().execute(sql, params)
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
/// - LEASE_DATABASE, LEASE_MISUSE, LEASE_SUSPENDED: as for lease_tx_execute.
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
        let call = unsafe { TxCall::enter(tx) }?;
        unsafe {
            value::query(sql, params, n_params, on_row, context, |sql, params, sink| {
                call.transaction().query(sql, params, |row| sink.deliver(row))
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
/// - LEASE_SUSPENDED: the process was suspended (lease_suspend): the current chunk was rolled
///   back (earlier chunks stay committed), or was committed and the next could not begin. The
///   transaction has ended, as for LEASE_BUSY.
#[no_mangle]
pub extern "C" fn lease_tx_maybe_commit(tx: *mut LeaseTx, out_committed: *mut bool) -> LeaseStatus {
    catch_status("lease_tx_maybe_commit", || {
        // SAFETY: the C contract: tx is NULL or a live transaction; out_committed is NULL or
        // writable.
        let call = unsafe { TxCall::enter(tx) }?;
        let committed = call.transaction().maybe_commit()?;
        if let Some(out) = unsafe { out_committed.as_mut() } {
            *out = committed;
        }
        Ok(())
    })
}

/// Commits the transaction (a chunked one: its current chunk), ends it, and frees tx. tx is
/// consumed whatever the outcome: if the commit fails, the transaction is rolled back, so the
/// connection is never left inside a transaction and the next writer gets in at once. Called
/// while another call on tx is running (on another thread, or from tx's own row callback), it
/// commits nothing and returns LEASE_MISUSE, and tx is rolled back and freed as soon as that
/// call returns. Either way, do not use tx again. Any thread.
///
/// Returns:
/// - LEASE_OK: committed.
/// - LEASE_INVALID_ARGUMENT: tx is NULL.
/// - LEASE_DATABASE: the commit failed (a deferred foreign key, a full disk...): everything since
///   the transaction (or the chunk) began was rolled back. SQLite's message says why.
/// - LEASE_MISUSE: nothing was committed now: the transaction had already ended (see
///   lease_tx_execute and lease_tx_maybe_commit); another call on tx was running (see above);
///   or tx was begun before fork() and this is the child (the parent's transaction is
///   untouched).
/// - LEASE_SUSPENDED: nothing was committed now: the process was suspended (lease_suspend),
///   which rolled the transaction (or its current chunk) back.
#[no_mangle]
pub extern "C" fn lease_tx_commit(tx: *mut LeaseTx) -> LeaseStatus {
    catch_status("lease_tx_commit", || {
        // SAFETY: the C contract: tx is NULL or a live transaction that the caller gives up.
        let handle = unsafe { take_to_end(tx) }?;
        handle.tx.into_inner().unwrap_or_else(|p| p.into_inner()).commit()
    })
}

/// Rolls the transaction back (a chunked one: its current chunk only; chunks committed by
/// lease_tx_maybe_commit stay), ends it, and frees tx. Also the way to free a transaction that
/// has ended by itself. Called while another call on tx is running, it rolls back and frees tx
/// when that call returns, as lease_tx_commit does (and records a message for
/// lease_last_error_message). Either way, do not use tx again. NULL is a no-op. In a forked
/// child it frees tx without touching the parent's transaction. Any thread.
#[no_mangle]
pub extern "C" fn lease_tx_rollback(tx: *mut LeaseTx) {
    catch_value("lease_tx_rollback", (), || {
        if tx.is_null() {
            return Ok(());
        }
        // SAFETY: the C contract: tx is a live transaction that the caller gives up.
        let handle = unsafe { take_to_end(tx) }?;
        handle.tx.into_inner().unwrap_or_else(|p| p.into_inner()).rollback();
        Ok(())
    })
}
