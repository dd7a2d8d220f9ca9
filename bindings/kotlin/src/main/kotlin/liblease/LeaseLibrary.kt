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
     * Sets the process's log listener: liblease's messages at [level] and more severe ones
     * ([LeaseLogLevel.ERROR] is the most severe, [LeaseLogLevel.DEBUG] the most verbose) are given
     * to [listener], with their level and English text naming the database file and the lease's
     * key, for people (do not parse it). It replaces the listener set before; null turns logging off
     * (the default; [level] is then ignored), and with logging off no message is even formatted.
     * Process-wide: every store, lock and database of the process logs to it.
     *
     * Threads: the listener runs on the thread where the event happened, and on several threads at
     * once: the caller's, inside the call that logged (an acquisition, a release, a transaction that
     * waited), or the library's own thread, "liblease" (a lost lease, a late renewal, renewals and
     * checkpoints). So it must be thread-safe, return soon and never block: it delays the work that
     * logged. It must not call back into liblease in a way that could wait: no
     * [LeaseLock.acquireBlocking] with a timeout, no [LeaseDatabase] call. A message that liblease
     * would log from inside the listener is dropped. Hand the message to a logger and return.
     *
     * An exception thrown by the listener is caught and dropped, with the message: it never reaches
     * the call that logged, native code, or an uncaught-exception handler (which would often end the
     * process, for a log line). Catch inside the listener what must not go unnoticed.
     *
     * The listener set here is kept until it is replaced: nothing else need refer to it. The one it
     * replaces is not waited for: a call of it that had begun on another thread may still be running
     * when this returns. Once the last such call has returned, it is never called again and neither
     * the library nor the binding refers to it any more. Any thread, the listener included.
     */
    fun setLogListener(level: LeaseLogLevel, listener: ((level: LeaseLogLevel, message: String) -> Unit)?) =
        LogListeners.set(level, listener)

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
