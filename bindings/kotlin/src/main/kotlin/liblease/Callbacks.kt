package liblease

import com.sun.jna.Pointer
import java.lang.ref.WeakReference
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
 * The lost listeners of one lock that the library may still call, by context.
 *
 * The lock owns this object, which keeps its listeners reachable for as long as the lock is. The
 * contexts given to the library lead here only through weak references: a listener that refers to
 * its own lock (one that takes the lease again, say) must not make the lock reachable from the
 * static table, or the lock could never be collected, and its Cleaner never free it. Once the lock
 * is unreachable its listeners are no longer called, as they would not be once the Cleaner freed it.
 *
 * A listener is added before its context is given to lease_lock_set_lost_callback, and removed
 * when the library's destroy callback says it no longer needs the context, or at once when the
 * library refused it ([release]).
 */
internal class LostListeners {
    private val listeners = ConcurrentHashMap<Long, (String) -> Unit>()

    /** A new context for lease_lock_set_lost_callback, which leads [callback] to [listener]. */
    fun add(listener: (String) -> Unit): Pointer {
        val context = contexts.add(WeakReference(this))
        listeners[Pointer.nativeValue(context)] = listener
        return context
    }

    companion object {
        private val contexts = ContextTable<WeakReference<LostListeners>>()

        /** Forgets [context]'s listener. Calls nothing of liblease, as a destroy callback must not. */
        fun release(context: Pointer?) {
            val owner = contexts.remove(context)?.get() ?: return
            owner.listeners.remove(Pointer.nativeValue(context))
        }

        /** `LeaseLostCallback`, on the library's thread. */
        val callback = LostCallback { context, key ->
            val listener = contexts[context]?.get()?.listeners?.get(Pointer.nativeValue(context))
            if (listener != null && key != null) {
                try {
                    listener(key.utf8())
                } catch (error: Throwable) {
                    reportUncaught(error)
                }
            }
        }.onLibraryThread()

        /**
         * `LeaseDestroyCallback`: on the thread that replaced the listener or freed the lock, or on
         * the library's thread right after the listener's last call returned.
         */
        val destroy = DestroyCallback(::release).onLibraryThread()
    }
}
