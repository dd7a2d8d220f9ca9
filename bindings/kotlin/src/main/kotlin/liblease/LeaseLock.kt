package liblease

import com.sun.jna.Pointer
import com.sun.jna.ptr.PointerByReference
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlin.coroutines.resumeWithException
import kotlin.time.Duration

/**
 * A named lease in a store, made by [LeaseStore.lock]. Thread-safe.
 *
 * Exclusion is between processes: within this process the lock is re-entrant, so while the process
 * holds the lease every acquisition of the same key succeeds at once, on any thread. The lease is
 * held while any of the process's guards of it is open.
 *
 * Close it when done (`use {}`); guards taken through it stay valid. One that is forgotten is closed
 * once it has been garbage-collected, even when its lost listener refers to it.
 */
class LeaseLock internal constructor(pointer: Pointer, val key: String) : AutoCloseable {
    // The one strong reference to this lock's listeners: the library's contexts reach them weakly.
    private val lostListeners = LostListeners()
    private val handle = NativeHandle(pointer, "LeaseLock", LeaseNative::lease_lock_free)
    private val cleanup = HandleCleaner.register(this, handle)

    /**
     * Takes the lease if it is free, has run out or is held by this process; null if another process
     * holds it. Never waits.
     *
     * @throws LeaseException.Suspended while the process is suspended ([LeaseLibrary.suspend]):
     *   trying again does not help until [LeaseLibrary.resume].
     */
    fun tryAcquire(): LeaseGuard? {
        val out = PointerByReference()
        handle.use { lock ->
            val status = LeaseNative.lease_lock_try_acquire(lock, out)
            if (status == LeaseStatus.BUSY) return null
            checkStatus(status)
        }
        return LeaseGuard(out.value)
    }

    /**
     * Takes the lease, blocking the calling thread up to [timeout] while another process holds it;
     * a zero timeout makes one attempt that never waits. Not on a coroutine dispatcher's thread (use
     * [acquire]) nor in a callback of the library.
     *
     * @throws LeaseException.Timeout when another process held it throughout.
     * @throws LeaseException.Suspended while the process is suspended ([LeaseLibrary.suspend]), or
     *   within milliseconds of a suspension during the wait.
     */
    fun acquireBlocking(timeout: Duration): LeaseGuard {
        val timeoutMs = timeout.toMillisArgument()
        val out = PointerByReference()
        handle.use { lock -> checkStatus(LeaseNative.lease_lock_acquire(lock, timeoutMs, out)) }
        return LeaseGuard(out.value)
    }

    /**
     * Takes the lease, suspending up to [timeout] while another process holds it (zero: one
     * attempt); no thread waits meanwhile. The guard is created on the library's thread and handed
     * to the coroutine through its dispatcher (avoid Dispatchers.Unconfined, which would run your
     * code on that thread).
     *
     * Cancelling the coroutine cancels the acquisition. If the lease was taken at that very moment,
     * the guard is released, never leaked. A coroutine that is cancelled already gets a
     * CancellationException without any attempt.
     *
     * @throws LeaseException.Timeout when another process held it throughout.
     * @throws LeaseException.Suspended while the process is suspended ([LeaseLibrary.suspend]): a
     *   coroutine waiting here when the process is suspended resumes with it within milliseconds.
     */
    suspend fun acquire(timeout: Duration): LeaseGuard {
        // The library makes its first attempt before it looks at a cancellation: a free lease
        // would be taken and given back at once, two writes of the lease row for nothing.
        currentCoroutineContext().ensureActive()
        val timeoutMs = timeout.toMillisArgument()
        return suspendCancellableCoroutine { continuation ->
            val context = Acquisitions.pending.add { status, guard, detail ->
                if (status == LeaseStatus.OK && guard != null) {
                    // When the coroutine was cancelled meanwhile, the guard is released instead.
                    continuation.resume(LeaseGuard(guard)) { _, unwanted, _ -> unwanted.close() }
                } else {
                    // LEASE_CANCELLED comes only after our own cancellation; resuming a cancelled
                    // continuation does nothing.
                    continuation.resumeWithException(LeaseException.of(status, detail))
                }
            }
            try {
                handle.use { lock ->
                    checkStatus(LeaseNative.lease_lock_acquire_async(lock, timeoutMs, Acquisitions.callback, context))
                }
            } catch (error: Throwable) {
                Acquisitions.pending.remove(context) // it will never be called back
                throw error
            }
            continuation.invokeOnCancellation { cancelAcquisition(context) }
        }
    }

    private fun cancelAcquisition(context: Pointer) {
        // A lock closed meanwhile cannot cancel: the acquisition goes on, and a guard that arrives
        // for a cancelled coroutine is released (above).
        val lock = try {
            handle.enter()
        } catch (_: IllegalStateException) {
            return
        }
        try {
            // Whatever it returns, the callback runs once: with LEASE_CANCELLED, or with the guard
            // or failure it already had.
            LeaseNative.lease_lock_cancel_acquire(lock, context)
        } finally {
            handle.exit()
        }
    }

    /**
     * Sets the function called when a lease held through this lock is lost (another process may be
     * doing the work it protects), replacing any previous one; null removes it. It is called once per
     * lost hold, with the lock's key, on the library's thread: it must return promptly and must not
     * wait for a lease. When this returns, the previous listener is not running and will not be
     * called again, and the library no longer refers to it; called from inside that listener, this
     * returns at once and the previous listener is let go when it returns. Any thread, listeners
     * included.
     *
     * The lock holds the listener; the library reaches it only through the lock, weakly. So a
     * listener may refer to its own lock without keeping it from being collected, but a lock that
     * is no longer reachable no longer calls its listener, even while guards taken through it are
     * held: keep the lock (and close it) for as long as the listener should hear.
     */
    fun setLostListener(listener: ((key: String) -> Unit)?) {
        handle.use { lock ->
            // No Kotlin lock may be held across this call: it waits for a running listener, which
            // may itself be calling this.
            val context = listener?.let(lostListeners::add)
            val status = if (context == null) {
                LeaseNative.lease_lock_set_lost_callback(lock, null, null, null)
            } else {
                LeaseNative.lease_lock_set_lost_callback(lock, LostListeners.callback, context, LostListeners.destroy)
            }
            if (status != LeaseStatus.OK) {
                val error = LeaseException.last(status)
                LostListeners.release(context) // refused: the library never took it
                throw error
            }
        }
    }

    /** Frees the lock (at once, or when calls running on other threads return). Idempotent. */
    override fun close() = cleanup()

    val isClosed: Boolean
        get() = handle.isClosed

    override fun toString() = "LeaseLock($key)"
}
