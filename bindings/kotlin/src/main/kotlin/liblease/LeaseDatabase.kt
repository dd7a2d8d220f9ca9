package liblease

import com.sun.jna.Pointer
import com.sun.jna.ptr.PointerByReference
import kotlinx.coroutines.flow.Flow
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

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
 * [changes] and [observe] tell what other processes (and this one) commit to the file; [migrate]
 * brings the application's schema to its version once across the processes that open it together.
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
     * acquisition), nor migrate. An exception it throws goes to the thread's uncaught-exception
     * handler, and the observer goes on.
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

    /**
     * Brings the file's schema to version [target], its `PRAGMA user_version` being the version: for
     * each version from the current one + 1 up to [target], calls [step] with a write transaction of
     * its own and the version it brings the file to; the library commits the transaction, with
     * user_version set to that version, when [step] returns, and rolls it back when [step] throws.
     *
     * Each transaction reads the version again under SQLite's write lock, so every step runs exactly
     * once across all the processes (and threads) that migrate the file at the same time: the others
     * wait, up to [timeout] in all, and return once the file is at [target]. A process killed in
     * the middle of a step leaves the version before it, and the next caller runs the step. A file
     * already at [target] is not written and [step] is not called.
     *
     * [step] runs on this thread, before this returns. It runs its SQL with [LeaseTransaction.execute]
     * and the transaction's queries, and must not:
     * - commit, roll back or close the transaction: [migrate] does (those throw
     *   [LeaseException.Misuse], leaving the transaction open; `tx.use {}` does not fit it);
     * - keep it past its return: later calls throw [IllegalStateException] (a call still running on
     *   another thread when the step returns is waited for);
     * - write to the file otherwise (this handle's [execute] or [begin], another handle's, a nested
     *   migrate): that waits for the step's own transaction, and fails with [LeaseException.Busy]
     *   after the busy timeout. Reads through [query] are fine, but see only what is committed.
     * - run SQL that ends the transaction (COMMIT) or that SQLite refuses inside one (`PRAGMA
     *   journal_mode`, `VACUUM`).
     *
     * Not on the library's thread (a listener of [observe], a lost listener). Blocks.
     *
     * @param target the version this program's schema is at; at least 0.
     * @param timeout how long to wait, in all, for the write lock (held by another process's step,
     *   or by other writers) before [LeaseException.Timeout]; [DEFAULT_MIGRATION_TIMEOUT] by default.
     * @throws Throwable whatever [step] threw, as it was thrown, after its step was rolled back: the
     *   file stays at the version before it. The library's account is added to it as a suppressed
     *   [LeaseException], whose message names both versions ("migrating to version 2 (the file stays
     *   at 1)"). A [LeaseException] from the step is passed to the library as its status; anything
     *   else as LEASE_DATABASE.
     * @throws LeaseException.Database when the file's version is above [target] (a newer program
     *   migrated it: an old process still running after an update); the message says both. Or SQLite
     *   failed (committing the step, say).
     * @throws LeaseException.Timeout when the file did not reach [target] within [timeout].
     * @throws LeaseException.Suspended while the process is suspended ([LeaseLibrary.suspend]).
     * @throws LeaseException.Misuse when the step ended its transaction with SQL (COMMIT).
     * @throws LeaseException.InvalidArgument when [target] is negative.
     */
    fun migrate(target: Int, timeout: Duration = DEFAULT_MIGRATION_TIMEOUT, step: (tx: LeaseTransaction, version: Int) -> Unit) {
        if (target < 0) throw LeaseException.InvalidArgument("lease_db_migrate: the target version $target is negative")
        val timeoutMs = timeout.toMillisArgument()
        val migration = Migration(step)
        val context = Migration.running.add(migration)
        try {
            val status = handle.use { db -> LeaseNative.lease_db_migrate(db, target, Migration.callback, context, timeoutMs) }
            migration.failure?.let { thrown ->
                if (status != LeaseStatus.OK) thrown.addSuppressed(LeaseException.last(status))
                throw thrown
            }
            checkStatus(status)
        } finally {
            Migration.running.remove(context)
        }
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
         * How long [migrate] waits for the write lock by default: long enough for another process's
         * migration of an application's schema; pass a longer one for steps that rewrite much data.
         */
        val DEFAULT_MIGRATION_TIMEOUT: Duration = 30.seconds

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
