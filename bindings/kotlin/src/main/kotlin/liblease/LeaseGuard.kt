package liblease

import com.sun.jna.Pointer

/**
 * Proof that this process holds a lease, made by a [LeaseLock]'s acquisitions. Thread-safe: it may
 * be used and closed on any thread.
 *
 * Closing it releases it: when it is this process's last guard of the lease, the lease is given
 * back at once, so that a waiting process takes over. A guard that is forgotten is released once
 * it has been garbage-collected, which may be much later: close guards (`use {}`).
 */
class LeaseGuard internal constructor(pointer: Pointer) : AutoCloseable {
    private val handle = NativeHandle(pointer, "LeaseGuard", LeaseNative::lease_guard_release)
    private val cleanup = HandleCleaner.register(this, handle)

    /** A number that increases every time a different process takes the lease. */
    val generation: Long
        get() = handle.use(LeaseNative::lease_guard_generation)

    /**
     * True when another process may have held the lease since this process last held it, so that
     * what this process cached under the lease is stale. The first acquisition in a process is
     * dirty, and so is the first after a lost lease.
     */
    val isDirty: Boolean
        get() = handle.use(LeaseNative::lease_guard_is_dirty) != 0.toByte()

    /**
     * Throws [LeaseException.Lost] if the lease is no longer known to be held (it ran out, or the
     * process was suspended: [LeaseLibrary.suspend]); call it before acting on the lease (before
     * committing the work it protects) when time may have passed. It reads no database. Once lost,
     * a guard stays lost: close it and acquire again.
     */
    fun check() {
        handle.use { guard -> checkStatus(LeaseNative.lease_guard_check(guard)) }
    }

    /** Whether the lease is still known to be held: [check] without the exception. */
    val isHeld: Boolean
        get() = handle.use { guard ->
            when (val status = LeaseNative.lease_guard_check(guard)) {
                LeaseStatus.OK -> true
                LeaseStatus.LOST -> false
                else -> throw LeaseException.last(status)
            }
        }

    /** Releases the guard; the same as [close]. */
    fun release() = close()

    /** Releases the guard (at once, or when calls running on other threads return). Idempotent. */
    override fun close() = cleanup()

    val isClosed: Boolean
        get() = handle.isClosed

    internal inline fun <T> usePointer(block: (Pointer) -> T): T = handle.use(block)
}
