package liblease

import com.sun.jna.Pointer
import com.sun.jna.ptr.PointerByReference
import kotlinx.coroutines.flow.Flow
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds

/**
 * A connection to a shared SQLite database file (WAL mode) for the application's own SQL,
 * normally the file its lease stores use too. Thread-safe.
 *
 * Every write of this process to the file goes through one writer queue, first come, first served,
 * and takes turns fairly with the other processes that use liblease: [execute] for one statement,
 * [begin] for a transaction, [beginChunked] for a long job, [beginFenced] for writes that must
 * happen only while a lease is held. Reads ([query]) use a connection of their own and never wait
 * for writers. While the process is suspended ([LeaseLibrary.suspend]) every write throws
 * [LeaseException.Suspended] and reads go on.
 *
 * [changes] and [observe] tell what other processes (and this one) commit to the file.
 *
 * Calls block (up to the busy timeout, 5 s by default, for writes): on Android and in coroutines,
 * make them from a background thread or `Dispatchers.IO`. A thread that has a transaction open on
 * the file must not write through another handle or begin another transaction on the same file:
 * it would wait for its own transaction.
 *
 * Close it when done (`use {}`); transactions begun through it stay usable. One that is forgotten
 * is closed once it has been garbage-collected.
 */
class LeaseDatabase private constructor(pointer: Pointer) : AutoCloseable {
    private val handle = NativeHandle(pointer, "LeaseDatabase", LeaseNative::lease_db_free)
    private val cleanup = HandleCleaner.register(this, handle)
    private val statements = Statements(
        handle,
        "lease_db_execute", LeaseNative::lease_db_execute,
        "lease_db_query", LeaseNative::lease_db_query,
    )

    /**
     * Sets how long a write through this handle may wait for the database (its turn among this
     * process's writers, then other processes' write lock) before [LeaseException.Busy]. Zero means
     * a single try. Other handles of the same file keep their own.
     */
    fun setBusyTimeout(timeout: Duration) {
        val timeoutMs = timeout.toMillisArgument()
        handle.use { db -> checkStatus(LeaseNative.lease_db_set_busy_timeout(db, timeoutMs)) }
    }

    /**
     * Runs one statement on its own, as a write through the queue, and returns SQLite's count of
     * changed rows. [params] bind to the statement's placeholders in order (see [Row] for the types).
     *
     * @throws LeaseException.InvalidArgument for several statements, a transaction statement, or the
     *   wrong number of parameters.
     * @throws LeaseException.Database when SQLite refuses the SQL or a constraint fails.
     * @throws LeaseException.Busy when other writers kept the database for the whole busy timeout.
     * @throws LeaseException.Suspended when the statement writes and the process is suspended
     *   ([LeaseLibrary.suspend]); a read-only statement still runs.
     */
    fun execute(sql: String, vararg params: Any?): Long = statements.execute(sql, params)

    /**
     * Runs one read-only statement outside any transaction and returns its rows. It sees what is
     * committed and never waits for writers.
     *
     * @throws LeaseException.InvalidArgument when the statement writes.
     */
    fun query(sql: String, vararg params: Any?): List<Row> = statements.query(sql, params)

    /** The first row of a read-only statement, or null; the rest are not read. */
    fun queryFirst(sql: String, vararg params: Any?): Row? = statements.queryFirst(sql, params)

    /** Hands each row of a read-only statement to [action] as it is read, on this thread. */
    fun forEachRow(sql: String, vararg params: Any?, action: (Row) -> Unit) = statements.forEachRow(sql, params, action)

    /**
     * Begins a write transaction: waits for its turn, then holds SQLite's write lock until it is
     * committed or rolled back. Keep it short, or use [beginChunked].
     *
     * @throws LeaseException.Busy when other writers kept the database for the whole busy timeout.
     * @throws LeaseException.Suspended while the process is suspended ([LeaseLibrary.suspend]).
     */
    fun begin(): LeaseTransaction = begin("LeaseTransaction") { db, out -> LeaseNative.lease_db_begin(db, out) }

    /**
     * Begins a chunked transaction for a long job: call [LeaseTransaction.maybeCommit] after every
     * small piece of work, and it commits the chunk and begins the next one when the chunk has
     * lasted [chunk], or within milliseconds when another writer waits. Rolling back undoes the
     * current chunk only.
     *
     * @throws LeaseException.InvalidArgument when [chunk] is under a millisecond.
     * @throws LeaseException.Suspended while the process is suspended ([LeaseLibrary.suspend]).
     */
    fun beginChunked(chunk: Duration = DEFAULT_CHUNK): LeaseTransaction {
        val chunkMs = chunk.toMillisArgument()
        return begin("LeaseTransaction (chunked)") { db, out -> LeaseNative.lease_db_begin_chunked(db, chunkMs, out) }
    }

    /**
     * Begins a write transaction fenced by [guard]: it opens only if the guard's lease is still held
     * by this process in the guard's generation, checked inside the transaction, so that a holder
     * that was suspended past its lease can never write over the new holder's work. The guard's
     * lock must keep its leases in this same database file.
     *
     * @throws LeaseException.Lost when the lease is gone; nothing was written, and the guard is lost
     *   for good.
     * @throws LeaseException.InvalidArgument when the guard's store is another file.
     * @throws LeaseException.Suspended while the process is suspended ([LeaseLibrary.suspend]).
     */
    fun beginFenced(guard: LeaseGuard): LeaseTransaction = guard.usePointer { g ->
        begin("LeaseTransaction (fenced)") { db, out -> LeaseNative.lease_db_begin_fenced(db, g, out) }
    }

    /**
     * Runs [block] in a write transaction and commits it; rolls it back if [block] throws.
     */
    inline fun <T> transaction(block: (LeaseTransaction) -> T): T = begin().use { tx ->
        val result = block(tx)
        tx.commit()
        result
    }

    /**
     * The tables changed by commits to the file, by any connection of any process: a cold flow.
     * Each collection observes the file (lease_db_observe) while it runs, and frees its observer
     * (lease_observer_free) when it ends, normally, by an exception or by cancellation; observing and
     * freeing run on Dispatchers.IO, so collecting on the main thread is fine.
     *
     * Each emission is a set of table names, or null when they are not known: a writer that does not
     * use liblease (the sqlite3 shell, another SQLite library) committed, and anything may have
     * changed; a write that names no table (`PRAGMA user_version = N` through [execute]) arrives as
     * null too, and liblease may say null whenever it cannot tell. So take null to mean "reload
     * everything". liblease's own tables are never named, and a commit that changed only them (a
     * lease's renewal) emits nothing.
     *
     * Nothing is dropped, and the library's thread never waits for the collector: changes are
     * merged while the collector is busy, and the next emission is their union (or null, if any of
     * them was unknown: null absorbs every set). So after any commit there is always an emission that
     * comes after it, even for a collector slower than the writers, or a process that was stopped
     * meanwhile; but one emission may stand for many commits, and a collector that wants the state
     * reads it then. The flow keeps no buffer of its own beyond that one merged value: `buffer()`,
     * `conflate()` or a slow `flowOn` upstream are not needed, and `buffer` would only queue sets
     * that could have been merged.
     *
     * Emissions come in the collector's context; the library's thread only wakes it. Avoid
     * Dispatchers.Unconfined, which would run the collector on that thread, holding up the leases'
     * renewals. Nothing is emitted when the collection starts: a commit made while it is starting
     * may be missed, one made after its observer is in place is not (use [observe], which returns
     * once the observer is in place, to read a state and follow it with no gap).
     *
     * @throws LeaseException.Database (from the collection) when the observer's connection cannot be
     *   opened, or the file was deleted, renamed or replaced since this handle opened it.
     * @throws IllegalStateException (from the collection) when this handle is closed when it starts;
     *   a collection already running goes on after close.
     */
    fun changes(): Flow<Set<String>?> = changeFlow(::observe)

    /**
     * Calls [listener] after every commit to the file, by any connection of any process, with the
     * tables changed, or null when they are not known: a writer that does not use liblease (the
     * sqlite3 shell, another SQLite library) committed, and anything may have changed; a write that
     * names no table (`PRAGMA user_version = N` through [execute]) is told so too, and liblease may
     * say null whenever it cannot tell: take it to mean "reload everything". liblease's own tables
     * are never named, and a commit that changed only them (a lease's renewal) calls nobody. Returns
     * once the observer is in place, so a commit after it returns is told. [changes] is the same as a
     * flow. Calls may be coalesced
     * (one call for several commits, naming every table they changed), never dropped: after the last
     * commit there is always a call that comes after it.
     *
     * [listener] runs on the library's thread ("liblease"), one call at a time. It must return
     * promptly and must not block: the leases' renewals and other callbacks wait meanwhile. It may
     * read the database (this handle's [query], or another's), but must not wait for anything that
     * needs the library's thread (no [LeaseLock.acquireBlocking], no `runBlocking` on an
     * acquisition). An exception it throws goes to the thread's uncaught-exception handler, and the
     * observer goes on.
     *
     * The observer keeps [listener] until it is closed (see [LeaseObserver]): close it. This handle
     * may be closed first; the observer goes on.
     *
     * @throws LeaseException.Database when the observer's connection cannot be opened, or the file
     *   was deleted, renamed or replaced since this handle opened it.
     * @throws LeaseException.Misuse when the library's thread could not be started.
     */
    fun observe(listener: (tables: Set<String>?) -> Unit): LeaseObserver {
        val subscription = Subscription(listener)
        val context = Subscription.subscriptions.add(subscription)
        val out = PointerByReference()
        try {
            handle.use { db ->
                checkStatus(LeaseNative.lease_db_observe(db, Subscription.callback, context, Subscription.destroy, out))
            }
        } catch (error: Throwable) {
            Subscription.subscriptions.remove(context) // refused: the library never took it
            throw error
        }
        return LeaseObserver(out.value, subscription)
    }

    private inline fun begin(name: String, start: (Pointer, PointerByReference) -> Int): LeaseTransaction {
        val out = PointerByReference()
        handle.use { db -> checkStatus(start(db, out)) }
        return LeaseTransaction(out.value, name)
    }

    /** Frees the handle (at once, or when calls running on other threads return). Idempotent. */
    override fun close() = cleanup()

    val isClosed: Boolean
        get() = handle.isClosed

    companion object {
        /** The chunk that suits most jobs ([beginChunked]'s default): `LEASE_DEFAULT_CHUNK_MS`. */
        val DEFAULT_CHUNK: Duration = 1000.milliseconds

        /**
         * Opens the SQLite database at [path], creating it if needed, and switches it to WAL mode.
         *
         * @throws LeaseException.Database when SQLite cannot open it, or it cannot be shared (":memory:").
         */
        fun open(path: String): LeaseDatabase {
            val cPath = path.toCString("path", "lease_db_open")
            val out = PointerByReference()
            checkStatus(LeaseNative.lease_db_open(cPath, out))
            return LeaseDatabase(out.value)
        }
    }
}
