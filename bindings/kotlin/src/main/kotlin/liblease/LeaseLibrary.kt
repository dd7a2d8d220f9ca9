package liblease

import kotlin.time.Duration

/** The library as a whole. */
object LeaseLibrary {
    /** The version of lease.h this binding was written against. */
    const val HEADER_VERSION = "0.2.0"

    /** The version of the liblease actually loaded, such as "0.2.0". */
    val version: String
        get() = LeaseNative.lease_version().utf8()

    /**
     * Stops the library's background thread ("liblease") and waits for it to end; a later call that
     * needs it starts it again. Call it before unloading the library, or at the end of a program
     * checked for leaks. Not from a callback.
     *
     * @throws LeaseException.Misuse while a guard is still held, an observer is open (a
     *   [LeaseDatabase.observe] not closed, a [LeaseDatabase.changes] collection running) or an
     *   asynchronous acquisition has not been called back yet (the thread keeps running).
     */
    fun shutdown() = checkStatus(LeaseNative.lease_shutdown())

    /**
     * Suspends liblease in this process, for an app that its system is about to freeze or suspend
     * (Android freezes cached processes; iOS suspends an app soon after it goes to the background).
     * A frozen process that held a lease would make every other process wait for the lease to run
     * out, and one frozen while it held SQLite's write lock would keep every other writer of the
     * file out. Call it when the app goes to the background (on Android, at `ProcessLifecycleOwner`'s
     * ON_STOP), and [resume] when it comes back. At once:
     *
     * - Every lease the process holds is given back to its database, so that a process waiting for
     *   it takes over within milliseconds. Their guards are lost: [LeaseGuard.check] throws
     *   [LeaseException.Lost], each lock's lost listener runs once, and the first acquisition after
     *   [resume] is dirty. Close those guards as usual.
     * - Every write throws [LeaseException.Suspended] until [resume]: acquisitions of every kind (an
     *   [LeaseLock.acquireBlocking] that is waiting throws it within milliseconds, and a coroutine
     *   suspended in [LeaseLock.acquire] resumes with it), [LeaseDatabase.execute] of a statement
     *   that writes, and [LeaseDatabase.begin] and its siblings.
     * - A transaction that was open is rolled back (a statement it is running is interrupted): its
     *   next call throws [LeaseException.Suspended] (and any later one [LeaseException.Misuse]);
     *   close it as usual, which `use {}` does. What the chunks of a chunked transaction committed
     *   stays committed.
     * - Reads go on: [LeaseDatabase.query] and its siblings, and [LeaseDatabase.execute] of a
     *   read-only statement.
     *
     * It returns once nothing of liblease's in this process holds a write lock, so that the process
     * may be frozen. Calling it again while suspended is harmless: it finds nothing left to stop.
     *
     * Process-wide: it suspends every store, lock, database and transaction of the process, whoever
     * opened them. Any thread, but not from a callback of the library (a lost listener, or the row
     * action of a query).
     *
     * @param timeout how long to wait for running statements and transactions to end; zero looks
     *   once and waits for nothing.
     * @throws LeaseException.Timeout when a statement or transaction did not end within [timeout]
     *   (a transaction whose query is still in its row action, say); the message names the database.
     *   The process is suspended all the same: call it again to wait longer.
     */
    fun suspend(timeout: Duration) = checkStatus(LeaseNative.lease_suspend(timeout.toMillisArgument()))

    /**
     * Ends a suspension ([suspend]): writes and acquisitions work again. Leases given back at the
     * suspension must be acquired again, and the first acquisition of each is dirty (reload what was
     * cached under it). Does nothing when the process is not suspended. Process-wide; any thread.
     */
    fun resume() = LeaseNative.lease_resume()

    /** True between [suspend] and [resume], whichever threads called them. */
    val isSuspended: Boolean
        get() = LeaseNative.lease_is_suspended() != 0.toByte()
}
