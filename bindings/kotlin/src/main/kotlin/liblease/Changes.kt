package liblease

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.withContext
import java.util.concurrent.atomic.AtomicReference

/**
 * The flow of [LeaseDatabase.changes]: each collection observes through [observe] while it runs and
 * closes its observer when it ends, however it ends. The native calls, which open and close an
 * SQLite connection, run on Dispatchers.IO; the emissions in the collector's context.
 */
internal fun changeFlow(observe: ((Set<String>?) -> Unit) -> LeaseObserver): Flow<Set<String>?> = flow {
    val pending = PendingChanges()
    var observer: LeaseObserver? = null
    try {
        // Assigned inside the block: withContext throws when the collector was cancelled meanwhile,
        // and the observer made by then must still be closed below.
        withContext(Dispatchers.IO) { observer = observe(pending::add) }
        while (true) emit(pending.next())
    } finally {
        observer?.let { withContext(NonCancellable + Dispatchers.IO) { it.close() } }
    }
}

/**
 * What the library told a collector that has not emitted it yet, merged: the library's thread adds
 * and never waits; the collector takes everything at once. So a slow collector gets one set, the
 * union of every change since it last took, and no change is ever lost or waits for it.
 */
internal class PendingChanges {
    private val pending = AtomicReference<Pending>(Pending.None)

    // Says that something may be pending; conflated, so sending never waits or fails. A signal
    // whose changes an earlier take already took finds None, and the collector waits again.
    private val signal = Channel<Unit>(Channel.CONFLATED)

    /** On the library's thread: merges [tables] (null: unknown) into what is pending. */
    fun add(tables: Set<String>?) {
        pending.getAndUpdate { it.merge(tables) }
        signal.trySend(Unit)
    }

    /** Waits for changes, and takes all that are pending: the tables, or null when unknown. */
    suspend fun next(): Set<String>? {
        while (true) {
            signal.receive()
            when (val taken = pending.getAndSet(Pending.None)) {
                Pending.None -> continue
                Pending.Unknown -> return null
                is Pending.Tables -> return taken.names
            }
        }
    }

    private sealed interface Pending {
        fun merge(tables: Set<String>?): Pending

        data object None : Pending {
            override fun merge(tables: Set<String>?) = if (tables == null) Unknown else Tables(tables)
        }

        /** A writer outside liblease committed: anything may have changed, so nothing more is news. */
        data object Unknown : Pending {
            override fun merge(tables: Set<String>?) = this
        }

        class Tables(val names: Set<String>) : Pending {
            override fun merge(tables: Set<String>?) = if (tables == null) Unknown else Tables(names + tables)
        }
    }
}
