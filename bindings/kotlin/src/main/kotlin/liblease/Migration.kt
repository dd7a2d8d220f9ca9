package liblease

import com.sun.jna.Pointer

/**
 * One run of lease_db_migrate from Kotlin: the step, and what it threw.
 *
 * The library calls the step on the thread that called lease_db_migrate, with a transaction it
 * lends; [LeaseTransaction.lent] wraps it, and the wrapper is revoked before the step returns to
 * the library, so no call through it can reach the transaction after the library took it back.
 * Nothing may escape the callback: JNA would report the exception and return 0, LEASE_OK, and the
 * library would commit the step's half-done work.
 */
internal class Migration(private val step: (LeaseTransaction, Int) -> Unit) {
    /** What the step threw, to be rethrown from migrate. Set and read on the migrating thread. */
    var failure: Throwable? = null
        private set

    private fun run(tx: Pointer, version: Int): Int {
        val view = LeaseTransaction.lent(tx, version)
        return try {
            step(view, version)
            LeaseStatus.OK
        } catch (error: Throwable) {
            failure = error
            statusOf(error)
        } finally {
            view.revoke()
        }
    }

    companion object {
        val running = ContextTable<Migration>()

        /** `LeaseMigrationStep`, on the migrating thread. */
        val callback = MigrationStepCallback { context, tx, version ->
            try {
                val migration = running[context]
                if (migration == null || tx == null) LeaseStatus.INVALID_ARGUMENT else migration.run(tx, version)
            } catch (error: Throwable) {
                // Only the wrapping itself could throw here (out of memory, say): roll back.
                running[context]?.failure = error
                LeaseStatus.DATABASE
            }
        }

        /**
         * The status the step returns for [error]: a [LeaseException]'s own, so that the library's
         * message says it; LEASE_DATABASE for anything else (and for a status the library does not
         * know, which it would refuse). Any status but LEASE_OK rolls the step back; migrate
         * rethrows [error] itself, whatever the status.
         */
        private fun statusOf(error: Throwable): Int =
            (error as? LeaseException)?.status?.takeIf { it in LeaseStatus.BUSY..LeaseStatus.SUSPENDED }
                ?: LeaseStatus.DATABASE
    }
}
