package liblease

/** The numbers of `LeaseStatus` in lease.h. They are stable; new ones may be added. */
object LeaseStatus {
    const val OK = 0
    const val BUSY = 1
    const val TIMEOUT = 2
    const val LOST = 3
    const val INVALID_ARGUMENT = 4
    const val DATABASE = 5
    const val MISUSE = 6
    const val PANIC = 7
    const val CANCELLED = 8
    const val SUSPENDED = 9

    /** The library's own description of a status, such as "LEASE_BUSY (held by another process)". */
    fun describe(status: Int): String = LeaseNative.lease_status_str(status).utf8()
}

/**
 * A call into liblease failed. [status] is the `LeaseStatus` number and [detail] the library's
 * message (`lease_last_error_message()`, which names the function); [message] has both.
 *
 * A closed handle is not a status: using one throws [IllegalStateException].
 */
sealed class LeaseException(val status: Int, val detail: String) :
    Exception("${LeaseStatus.describe(status)}: $detail") {

    /** Another process holds the lease, or another connection holds the database's write lock. */
    class Busy(detail: String) : LeaseException(LeaseStatus.BUSY, detail)

    /** The lease stayed held by another process for the whole time limit. */
    class Timeout(detail: String) : LeaseException(LeaseStatus.TIMEOUT, detail)

    /** The lease was lost: another process may hold it now. Release the guard and acquire again. */
    class Lost(detail: String) : LeaseException(LeaseStatus.LOST, detail)

    /** A malformed argument (an empty key, zero or contradictory options...). Nothing was done. */
    class InvalidArgument(detail: String) : LeaseException(LeaseStatus.INVALID_ARGUMENT, detail)

    /** SQLite failed; the detail is SQLite's message, with the file's path. */
    class Database(detail: String) : LeaseException(LeaseStatus.DATABASE, detail)

    /** The call is not allowed now (a handle used in a forked child, shutdown while busy...). */
    class Misuse(detail: String) : LeaseException(LeaseStatus.MISUSE, detail)

    /** A bug in liblease. */
    class Panic(detail: String) : LeaseException(LeaseStatus.PANIC, detail)

    /** An asynchronous acquisition was cancelled before it took the lease. */
    class Cancelled(detail: String) : LeaseException(LeaseStatus.CANCELLED, detail)

    /**
     * The process is suspended ([LeaseLibrary.suspend]): nothing that writes runs until
     * [LeaseLibrary.resume]: no acquisition, no write statement, no new transaction, no call on a
     * transaction that was open (which was rolled back: close it). Reads still work.
     */
    class Suspended(detail: String) : LeaseException(LeaseStatus.SUSPENDED, detail)

    /** A status this binding does not know (a newer library): an error all the same. */
    class Unknown(status: Int, detail: String) : LeaseException(status, detail)

    internal companion object {
        fun of(status: Int, detail: String): LeaseException = when (status) {
            LeaseStatus.BUSY -> Busy(detail)
            LeaseStatus.TIMEOUT -> Timeout(detail)
            LeaseStatus.LOST -> Lost(detail)
            LeaseStatus.INVALID_ARGUMENT -> InvalidArgument(detail)
            LeaseStatus.DATABASE -> Database(detail)
            LeaseStatus.MISUSE -> Misuse(detail)
            LeaseStatus.PANIC -> Panic(detail)
            LeaseStatus.CANCELLED -> Cancelled(detail)
            LeaseStatus.SUSPENDED -> Suspended(detail)
            else -> Unknown(status, detail)
        }

        /** The exception for a status just returned on this thread, with this thread's message. */
        fun last(status: Int): LeaseException = of(status, LeaseNative.lease_last_error_message().utf8())
    }
}

/** Throws the exception for [status] unless it is `LEASE_OK`. Call it right after the native call. */
internal fun checkStatus(status: Int) {
    if (status != LeaseStatus.OK) throw LeaseException.last(status)
}
