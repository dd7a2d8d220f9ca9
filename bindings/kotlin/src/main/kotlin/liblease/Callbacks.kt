package liblease

import com.sun.jna.Pointer
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong

/**
 * Kotlin objects that native code refers to by a number, passed as a callback's `void *context`.
 *
 * The callbacks given to liblease are a few objects made once (below) and kept for the life of the
 * class, so JNA's native trampolines can never be collected while the library may call them. What
 * differs between calls (which coroutine to resume, which listener to call) is looked up here by
 * the context number instead, so no Kotlin object's address ever reaches native code.
 */
internal class ContextTable<T : Any> {
    private val next = AtomicLong(1)
    private val entries = ConcurrentHashMap<Long, T>()

    fun add(value: T): Pointer {
        val id = next.getAndIncrement()
        entries[id] = value
        return Pointer(id)
    }

    operator fun get(context: Pointer?): T? = context?.let { entries[Pointer.nativeValue(it)] }

    fun remove(context: Pointer?): T? = context?.let { entries.remove(Pointer.nativeValue(it)) }
}

/** Reports an exception thrown by user code in a callback, which must not unwind into C. */
internal fun reportUncaught(error: Throwable) {
    val thread = Thread.currentThread()
    thread.uncaughtExceptionHandler?.uncaughtException(thread, error) ?: error.printStackTrace()
}

/** How an asynchronous acquisition ends: the status, the new guard on success, else the message. */
internal fun interface AcquireOutcome {
    fun complete(status: Int, guard: Pointer?, detail: String)
}

internal object Acquisitions {
    val pending = ContextTable<AcquireOutcome>()

    /** `LeaseAcquireCallback`, on the library's thread. */
    val callback = AcquireCallback { context, status, guard ->
        // The message must be read here: it belongs to this thread, and only until its next call.
        val detail = if (status == LeaseStatus.OK) "" else LeaseNative.lease_last_error_message().utf8()
        val outcome = pending.remove(context)
        if (outcome == null) {
            // Never happens (each context is called back once); a guard must not leak even so.
            guard?.let(LeaseNative::lease_guard_release)
        } else {
            try {
                outcome.complete(status, guard, detail)
            } catch (error: Throwable) {
                reportUncaught(error)
            }
        }
    }.onLibraryThread()
}

/**
 * The lost listeners that the library may still call, by context. An entry is added before it is
 * given to lease_lock_set_lost_callback and removed by [destroy], once the library says it no longer
 * needs it (or at once, when the library refused it).
 */
internal object LostListeners {
    val listeners = ContextTable<(String) -> Unit>()

    /** `LeaseLostCallback`, on the library's thread. */
    val callback = LostCallback { context, key ->
        val listener = listeners[context]
        if (listener != null && key != null) {
            try {
                listener(key.utf8())
            } catch (error: Throwable) {
                reportUncaught(error)
            }
        }
    }.onLibraryThread()

    /**
     * `LeaseDestroyCallback`: on the thread that replaced the listener or freed the lock, or on the
     * library's thread right after the listener's last call returned. It must not call liblease.
     */
    val destroy = DestroyCallback { context -> listeners.remove(context) }.onLibraryThread()
}
