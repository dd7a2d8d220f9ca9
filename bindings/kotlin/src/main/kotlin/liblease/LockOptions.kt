package liblease

import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds

/**
 * The timing of a lock; the defaults are liblease's (a 10 s lease renewed every 5 s, waiters
 * looking again at least every 250 ms). Every value must be at least a millisecond, [renewEvery] at most half of
 * [lease], and [lease] at most a day: the library refuses others with
 * [LeaseException.InvalidArgument] when the lock is made.
 *
 * @property lease how long a lease lasts without renewal: the longest another process waits for
 *   it after this one crashed, was killed or was suspended while holding it.
 * @property renewEvery how often the library's thread renews a held lease.
 * @property maxBackoff the longest pause between two attempts of a waiting acquisition.
 */
data class LockOptions(
    val lease: Duration = Defaults.lease,
    val renewEvery: Duration = Defaults.renewEvery,
    val maxBackoff: Duration = Defaults.maxBackoff,
) {
    internal fun toNative() = NativeLockOptions.defaults().also {
        it.lease_ms = lease.toMillisArgument()
        it.renew_every_ms = renewEvery.toMillisArgument()
        it.max_backoff_ms = maxBackoff.toMillisArgument()
    }

    private object Defaults {
        private val native = NativeLockOptions.defaults()
        val lease = native.lease_ms.toUInt().toLong().milliseconds
        val renewEvery = native.renew_every_ms.toUInt().toLong().milliseconds
        val maxBackoff = native.max_backoff_ms.toUInt().toLong().milliseconds
    }
}

/**
 * A duration as the library's `uint32_t` milliseconds: negative ones become 0 and longer ones than
 * the type holds (about 49 days) its largest value; the library judges what it accepts.
 */
internal fun Duration.toMillisArgument(): Int =
    inWholeMilliseconds.coerceIn(0L, UInt.MAX_VALUE.toLong()).toUInt().toInt()
