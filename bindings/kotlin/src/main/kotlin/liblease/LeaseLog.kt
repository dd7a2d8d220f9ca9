package liblease

/**
 * How severe one of liblease's log messages is ([LeaseLibrary.setLogListener]). A listener set at
 * a level hears that level and the more severe ones: [ERROR] is the most severe, [DEBUG] the most
 * verbose.
 */
enum class LeaseLogLevel(internal val number: Int) {
    /** Something failed: a renewal, giving a lease back. */
    ERROR(1),

    /**
     * Something went wrong that the library copes with: a lease lost, a renewal that came late, a
     * transaction that waited over a second, a second SQLite in the process, a board file that is
     * not liblease's.
     */
    WARN(2),

    /**
     * What the locks do: a lease acquired (after how long, its generation, dirty or clean, taken
     * over from whom and why), released.
     */
    INFO(3),

    /** Wake-ups, renewals, checkpoints. */
    DEBUG(4),
    ;

    internal companion object {
        /** The level of a number from the library (`LEASE_LOG_*`); null for one not known here. */
        fun of(number: Int): LeaseLogLevel? = entries.firstOrNull { it.number == number }
    }
}

/**
 * The log listeners that the library may still call, by context: the one set now, and one that it
 * replaced while a call of it was still running.
 *
 * Reached from this static table strongly, for as long as the library may call them: the listener
 * is process-wide, and nothing else need refer to it. Each is added before its context is given to
 * lease_set_log_callback, and removed by the destroy callback, which the library calls once the
 * listener has been replaced and no call of it is running (or at once, by [set], when the library
 * refused it). No Kotlin lock is held around the native call, so two threads that set listeners at
 * once both return; the library keeps whichever came last and destroys the other like any
 * replaced one.
 */
internal object LogListeners {
    private val listeners = ContextTable<(LeaseLogLevel, String) -> Unit>()

    fun set(level: LeaseLogLevel, listener: ((LeaseLogLevel, String) -> Unit)?) {
        val context = listener?.let(listeners::add)
        val status = if (context == null) {
            LeaseNative.lease_set_log_callback(level.number, null, null, null)
        } else {
            LeaseNative.lease_set_log_callback(level.number, callback, context, destroy)
        }
        if (status != LeaseStatus.OK) {
            val error = LeaseException.last(status)
            listeners.remove(context) // refused: the library never took it
            throw error
        }
    }

    /** `LeaseLogCallback`: on the thread of the call that logged, or on the library's thread. */
    private val callback = LogCallback { context, level, message ->
        val listener = listeners[context]
        // The library gives only the levels asked for and more severe ones, all of them known here.
        val known = LeaseLogLevel.of(level)
        if (listener != null && known != null && message != null) {
            try {
                listener(known, message.utf8())
            } catch (_: Throwable) {
                // Dropped, as documented: a log line is not worth failing (or crashing) the call
                // that logged, and an uncaught-exception handler would often end the process.
            }
        }
    }.onLibraryThread()

    /**
     * `LeaseDestroyCallback`: on the thread that replaced the listener, or on the thread whose call
     * of the listener was the last one running then, right after it returned.
     */
    private val destroy = DestroyCallback { context -> listeners.remove(context) }.onLibraryThread()
}
