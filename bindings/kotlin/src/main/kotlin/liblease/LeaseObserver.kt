package liblease

import com.sun.jna.Pointer
import java.util.concurrent.CountDownLatch

/**
 * A listener told after commits to a database file, made by [LeaseDatabase.observe]; [close] stops
 * it. Thread-safe.
 *
 * The observer is the subscription itself: it is not freed by the garbage collector, and goes on
 * calling its listener until it is closed, even when nothing refers to it any more (so a listener
 * never stops at a moment the collector chooses). Close it, or use [LeaseDatabase.changes], whose
 * collection closes its own. While one is open, [LeaseLibrary.shutdown] throws
 * [LeaseException.Misuse].
 */
class LeaseObserver internal constructor(pointer: Pointer, private val subscription: Subscription) : AutoCloseable {
    private val handle = NativeHandle(pointer, "LeaseObserver", LeaseNative::lease_observer_free)

    /**
     * Stops the observer (lease_observer_free). When it returns, the listener is not running and will
     * not be called again: a call running on the library's thread is waited for. The exception is a
     * close from inside the listener itself, which returns at once (the listener is let go when it
     * returns). Idempotent; any thread.
     */
    override fun close() {
        handle.close() // the first close frees it; later ones find it freed
        // A close from another thread, or a second close while the first one waits, waits for the
        // listener's last call, which the library ends with the destroy callback.
        if (!subscription.isCallingOn(Thread.currentThread())) subscription.awaitReleased()
    }

    val isClosed: Boolean
        get() = handle.isClosed
}

/**
 * One listener that the library may call, until its destroy callback says it no longer will.
 *
 * Reached from the static table strongly: the library's context must lead to the listener for as
 * long as the library may call it, whether or not anything else refers to the observer (a
 * `changes()` collector's channel and coroutine are reachable only through here while it waits).
 */
internal class Subscription(private val listener: (Set<String>?) -> Unit) {
    /** The thread running the listener now, if any: the library's. */
    @Volatile private var caller: Thread? = null
    private val released = CountDownLatch(1)

    fun isCallingOn(thread: Thread) = caller === thread

    fun awaitReleased() = released.await()

    private fun call(tables: Set<String>?) {
        caller = Thread.currentThread()
        try {
            listener(tables)
        } catch (error: Throwable) {
            reportUncaught(error)
        } finally {
            caller = null
        }
    }

    companion object {
        val subscriptions = ContextTable<Subscription>()

        /** `LeaseChangeCallback`, on the library's thread. */
        val callback = ChangeCallback { context, tables, count ->
            subscriptions[context]?.call(tables?.let { names(it, count.toInt()) })
        }.onLibraryThread()

        /**
         * `LeaseDestroyCallback`: on the thread that freed the observer, or on the library's thread
         * right after the listener's last call returned.
         */
        val destroy = DestroyCallback { context -> subscriptions.remove(context)?.released?.countDown() }.onLibraryThread()

        /** Copies the [count] names at [tables]: they are valid only during the callback. */
        private fun names(tables: Pointer, count: Int): Set<String> =
            if (count == 0) emptySet() else tables.getPointerArray(0, count).mapTo(LinkedHashSet(count)) { it.utf8() }
    }
}
