package liblease

import com.sun.jna.ptr.PointerByReference

/**
 * A connection to a database file that holds liblease's lease table: normally the application's
 * own database, shared by its processes. Thread-safe.
 *
 * Close it when done (`use {}`); locks made from it keep working after it is closed. One that is
 * forgotten is closed once it has been garbage-collected.
 */
class LeaseStore private constructor(pointer: com.sun.jna.Pointer) : AutoCloseable {
    private val handle = NativeHandle(pointer, "LeaseStore", LeaseNative::lease_store_free)
    private val cleanup = HandleCleaner.register(this, handle)

    /**
     * Makes a lock on [key]. Every process that uses the same key in the same database file
     * contends for the same lease; within this process the lock is re-entrant. [label] names this
     * process ("app", "share-extension") beside the lease, for diagnostics only: processes are told
     * apart by an id of their own, so two processes with the same label still exclude each other.
     * Nothing is acquired yet, and nothing is written.
     *
     * @throws LeaseException.InvalidArgument for an empty key or invalid options.
     */
    fun lock(key: String, label: String, options: LockOptions = LockOptions()): LeaseLock {
        val cKey = key.toCString("key", "lease_lock_new")
        val cLabel = label.toCString("label", "lease_lock_new")
        val out = PointerByReference()
        handle.use { store ->
            checkStatus(LeaseNative.lease_lock_new(store, cKey, cLabel, options.toNative(), out))
        }
        return LeaseLock(out.value, key)
    }

    /** Frees the connection (at once, or when calls running on other threads return). Idempotent. */
    override fun close() = cleanup()

    val isClosed: Boolean
        get() = handle.isClosed

    companion object {
        /**
         * Opens the SQLite database at [path], creating it if needed, switches it to WAL mode and
         * creates or migrates the lease table in it.
         *
         * @throws LeaseException.Database when SQLite cannot open the file or it is not a database.
         * @throws LeaseException.InvalidArgument for an empty path.
         * @throws LeaseException.Suspended while the process is suspended ([LeaseLibrary.suspend]), when
         *   the lease table must be created (in a new file, say).
         */
        fun open(path: String): LeaseStore {
            val cPath = path.toCString("path", "lease_store_open")
            val out = PointerByReference()
            checkStatus(LeaseNative.lease_store_open(cPath, out))
            return LeaseStore(out.value)
        }

        /**
         * Opens a private in-memory store, shared with nobody: for tests and single-process use.
         *
         * @throws LeaseException.Suspended while the process is suspended ([LeaseLibrary.suspend]).
         */
        fun openInMemory(): LeaseStore {
            val out = PointerByReference()
            checkStatus(LeaseNative.lease_store_open_memory(out))
            return LeaseStore(out.value)
        }
    }
}
