package liblease

import com.sun.jna.Pointer

/**
 * An open write transaction, begun by [LeaseDatabase.begin], [LeaseDatabase.beginChunked] or
 * [LeaseDatabase.beginFenced], or lent to a migration step by [LeaseDatabase.migrate]. Not
 * thread-safe: one thread at a time may use it (it may move between threads).
 *
 * End it with [commit] or [rollback], which end it whatever their outcome: afterwards it is closed,
 * and the library's transaction is never touched again. [close] rolls back a transaction that was
 * not committed, so `db.begin().use { tx -> ...; tx.commit() }` rolls back when the block throws;
 * so does the Cleaner, for one that was forgotten (which also keeps other writers out until then:
 * don't).
 *
 * A migration step's transaction belongs to [LeaseDatabase.migrate], which commits it when the step
 * returns and rolls it back when the step throws: its [commit], [rollback] and [close] throw
 * [LeaseException.Misuse] and leave it open (the step may go on), and once the step has returned
 * every call on it throws [IllegalStateException].
 *
 * Suspending the process ([LeaseLibrary.suspend]) rolls back a transaction that is open (a chunked
 * one: its current chunk): its next call, [commit] included, throws [LeaseException.Suspended], and
 * any later one [LeaseException.Misuse]. Close it as usual.
 */
class LeaseTransaction private constructor(pointer: Pointer, private val name: String, lent: Boolean) : AutoCloseable {
    internal constructor(pointer: Pointer, name: String) : this(pointer, name, lent = false)

    // A lent transaction is the library's to end: this object never frees it, whatever is called.
    private val handle = NativeHandle(pointer, name, if (lent) { _ -> } else LeaseNative::lease_tx_rollback)
    private val ending: Ending = if (lent) Ending.Lent else Ending.Owned(HandleCleaner.register(this, handle))
    private val statements = Statements(
        handle,
        "lease_tx_execute", LeaseNative::lease_tx_execute,
        "lease_tx_query", LeaseNative::lease_tx_query,
    )

    /** Who ends the library's transaction. */
    private sealed interface Ending {
        /**
         * This object: [commit] consumes the handle; [rollback], [close] and the Cleaner roll it back.
         * [cleanup] runs the Cleaner's action now (and unregisters it).
         */
        class Owned(val cleanup: () -> Unit) : Ending

        /**
         * lease_db_migrate, which lent it for one step: the handle is revoked (never freed) before
         * the step returns to the library, which then commits or rolls it back.
         */
        data object Lent : Ending
    }

    /** Runs one statement in the transaction; returns SQLite's count of changed rows. */
    fun execute(sql: String, vararg params: Any?): Long = statements.execute(sql, params)

    /** Runs one statement in the transaction, seeing its own writes, and returns its rows. */
    fun query(sql: String, vararg params: Any?): List<Row> = statements.query(sql, params)

    /** The first row of a statement in the transaction, or null; the rest are not read. */
    fun queryFirst(sql: String, vararg params: Any?): Row? = statements.queryFirst(sql, params)

    /** Hands each row to [action] as it is read; [action] must not use this transaction. */
    fun forEachRow(sql: String, vararg params: Any?, action: (Row) -> Unit) = statements.forEachRow(sql, params, action)

    /**
     * For a chunked transaction: commits the chunk and begins the next one if the chunk is due, and
     * says whether it did. Call it after every small piece of work; when nothing is due it costs next
     * to nothing. A plain or fenced transaction is never committed here (false).
     *
     * @throws LeaseException.Busy or [LeaseException.Database] when the next chunk could not begin
     *   (or the chunk could not be committed): the transaction has ended; close it.
     * @throws LeaseException.Suspended when the process was suspended: the current chunk was rolled
     *   back and the transaction has ended; close it.
     */
    fun maybeCommit(): Boolean {
        val committed = ByteArray(1)
        handle.use { tx -> checkStatus(LeaseNative.lease_tx_maybe_commit(tx, committed)) }
        return committed[0] != 0.toByte()
    }

    /**
     * Commits the transaction (a chunked one: its current chunk) and ends it, whatever the outcome:
     * if the commit fails, everything since the transaction (or chunk) began is rolled back. Called
     * while another call on the transaction runs (from a row action of its own query, say), it
     * commits nothing, and the transaction is rolled back when that call returns, as
     * lease_tx_commit does. Either way the transaction is closed when this returns or throws.
     *
     * @throws LeaseException.Database when the commit failed.
     * @throws LeaseException.Suspended when the process was suspended since the transaction (or
     *   chunk) began: it was rolled back then, and nothing was committed now.
     * @throws LeaseException.Misuse when the transaction had already ended by itself, or another
     *   call on it was running; or, leaving it open, when it is a migration step's, which
     *   [LeaseDatabase.migrate] commits when the step returns.
     */
    fun commit() {
        val cleanup = owned("lease_tx_commit")
        val tx = handle.take()
        cleanup() // the handle is closed already: this only unregisters the Cleaner
        if (tx == null) {
            throw LeaseException.Misuse(
                "lease_tx_commit: another call on this transaction is running (on another thread, or " +
                    "from its row action): nothing was committed, and the transaction is rolled back " +
                    "when that call returns",
            )
        }
        checkStatus(LeaseNative.lease_tx_commit(tx))
    }

    /**
     * Rolls back (a chunked transaction: its current chunk only) and ends the transaction; while
     * another call on it runs, when that call returns.
     *
     * @throws LeaseException.Misuse on a migration step's transaction: throw from the step instead.
     */
    fun rollback() = owned("lease_tx_rollback")()

    /**
     * Rolls the transaction back unless it was committed or rolled back already. Idempotent.
     *
     * @throws LeaseException.Misuse on a migration step's transaction, which is not this object's to
     *   end (so `use {}` does not fit it).
     */
    override fun close() = owned("lease_tx_rollback")()

    /**
     * The Cleaner's action of a transaction this object ends; for one lent to a migration step,
     * throws: [IllegalStateException] once the step has returned, else [LeaseException.Misuse].
     */
    private fun owned(function: String): () -> Unit = when (val ending = ending) {
        is Ending.Owned -> ending.cleanup
        Ending.Lent -> {
            check(!handle.isClosed) { "$name is closed: its migration step has returned" }
            throw LeaseException.Misuse(
                "$function: $name belongs to LeaseDatabase.migrate, which commits it when the step " +
                    "returns: return from the step instead (throw to roll the step back)",
            )
        }
    }

    /** The end of a lent transaction's step: see [NativeHandle.revoke]. */
    internal fun revoke() = handle.revoke()

    /**
     * Whether the transaction was committed or rolled back (by this object); for a migration step's,
     * whether the step has returned.
     */
    val isClosed: Boolean
        get() = handle.isClosed

    override fun toString() = name

    internal companion object {
        /** A view of the transaction lease_db_migrate lends to the step to [version]. */
        fun lent(pointer: Pointer, version: Int) =
            LeaseTransaction(pointer, "LeaseTransaction (migration to version $version)", lent = true)
    }
}
