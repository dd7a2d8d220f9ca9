package liblease

import com.sun.jna.Pointer

/**
 * One native handle and the rule that keeps it safe: it is freed exactly once, and never while a
 * native call on it is running.
 *
 * Every call on the handle goes through [use], which counts the calls in flight. [close] marks the
 * handle closed at once (later calls throw [IllegalStateException]) and frees it when no call is in
 * flight; otherwise the last call to return frees it. So closing never waits, even from inside a
 * callback of a call on the same handle, and a blocking call on another thread ends normally.
 *
 * This object must not reference the Kotlin wrapper that owns it: it is the Cleaner's action, and
 * the wrapper could never become unreachable if it did.
 */
internal class NativeHandle(
    pointer: Pointer,
    private val type: String,
    private val free: (Pointer) -> Unit,
) : Runnable {
    private var pointer: Pointer? = pointer
    private var calls = 0
    private var closed = false

    val isClosed: Boolean
        get() = synchronized(this) { closed }

    inline fun <T> use(block: (Pointer) -> T): T {
        val pointer = enter()
        try {
            return block(pointer)
        } finally {
            exit()
        }
    }

    fun enter(): Pointer = synchronized(this) {
        check(!closed) { "$type is closed" }
        calls++
        pointer!!
    }

    fun exit() {
        val last = synchronized(this) {
            calls--
            if (calls == 0 && closed) {
                wakeRevoker()
                pointer.also { pointer = null }
            } else {
                null
            }
        }
        last?.let(free)
    }

    /** Closes the handle: frees it now, or when the last call in flight returns. Idempotent. */
    fun close() {
        val now = synchronized(this) {
            if (closed) return
            closeLocked()
        }
        now?.let(free)
    }

    /**
     * Closes the handle and hands its pointer to a function that consumes it instead of the free
     * function (lease_tx_commit). Null when a call on it is running (on another thread, or the one
     * whose row callback this is): the handle is closed all the same, and the last call in flight
     * frees it, as after [close]. The pointer is not handed over then, because another thread may
     * be just about to pass it to the library, which would be after the consuming function freed it.
     */
    fun take(): Pointer? = synchronized(this) {
        check(!closed) { "$type is closed" }
        closeLocked()
    }

    /**
     * Closes a handle that the library lent for the length of a callback (a migration step's
     * transaction) before the callback returns it: later calls throw [IllegalStateException], and
     * this waits for the calls in flight (made from other threads) to return, so that no call
     * reaches the library after it took the handle back. Its free function is not called: the
     * library ends the handle itself. Must not be called while this thread has a call on it in flight.
     */
    fun revoke() = synchronized(this) {
        closed = true
        var interrupted = false
        while (calls > 0) {
            try {
                waitForExit()
            } catch (_: InterruptedException) {
                interrupted = true // the wait is what keeps the library's handle safe: finish it
            }
        }
        pointer = null
        if (interrupted) Thread.currentThread().interrupt()
    }

    @Suppress("PLATFORM_CLASS_MAPPED_TO_KOTLIN")
    private fun waitForExit() = (this as Object).wait()

    @Suppress("PLATFORM_CLASS_MAPPED_TO_KOTLIN")
    private fun wakeRevoker() = (this as Object).notifyAll()

    /** Marks the handle closed; returns its pointer if no call is in flight, for the caller to end. */
    private fun closeLocked(): Pointer? {
        closed = true
        return if (calls == 0) pointer.also { pointer = null } else null
    }

    /** The Cleaner's action, for a wrapper that was never closed. */
    override fun run() = close()
}

/**
 * Frees the handle of a wrapper that became unreachable without being closed.
 *
 * java.lang.ref.Cleaner where it exists (the JVM; Android from API 33); elsewhere JNA's own cleaner,
 * which works the same way. Each class is loaded only when chosen, so an old Android never sees a
 * reference to java.lang.ref.Cleaner.
 */
internal object HandleCleaner {
    private val chosen: (Any, Runnable) -> () -> Unit =
        if (hasJdkCleaner()) JdkCleaner::register else JnaCleaner::register

    /** Runs [action] once [owner] is unreachable; the returned function runs it now instead. */
    fun register(owner: Any, action: Runnable): () -> Unit = chosen(owner, action)

    private fun hasJdkCleaner() = try {
        Class.forName("java.lang.ref.Cleaner")
        true
    } catch (_: ClassNotFoundException) {
        false
    }
}

private object JdkCleaner {
    private val cleaner = java.lang.ref.Cleaner.create { task ->
        Thread(task, "liblease-cleaner").apply { isDaemon = true }
    }

    fun register(owner: Any, action: Runnable): () -> Unit = cleaner.register(owner, action)::clean
}

private object JnaCleaner {
    fun register(owner: Any, action: Runnable): () -> Unit =
        com.sun.jna.internal.Cleaner.getCleaner().register(owner, action)::clean
}
