package liblease

import com.sun.jna.Callback
import com.sun.jna.CallbackThreadInitializer
import com.sun.jna.IntegerType
import com.sun.jna.Native
import com.sun.jna.NativeLibrary
import com.sun.jna.Pointer
import com.sun.jna.Structure
import com.sun.jna.ptr.PointerByReference
import java.io.IOException

/**
 * The C functions of include/lease.h, bound by JNA direct mapping.
 *
 * Direct mapping (`Native.register` on `external` functions) rather than interface mapping
 * (`Native.load` of a `Library` interface): a call goes straight to a JNI stub instead of through a
 * `java.lang.reflect.Proxy` and an `Object[]` of boxed arguments, which matters for calls made in
 * loops (try-acquire, per-row callbacks). Its restrictions do not bite here: no varargs in the
 * header, and arrays of structures are passed as one block of native memory.
 *
 * Type choices: `LeaseStatus` and `uint32_t` are `Int`; `uint64_t` is `Long`; C `bool` results are
 * `Byte` (JNA's `boolean` is a 32-bit int, but a C `bool` fills one byte of the return register);
 * strings go in as NUL-terminated UTF-8 `ByteArray`s and come out as `Pointer`s decoded as UTF-8,
 * so that nothing depends on the platform's default charset.
 */
internal object LeaseNative {
    /** The liblease these functions are bound to: see [loadLibrary]. */
    val library: NativeLibrary = loadLibrary()

    init {
        Native.register(LeaseNative::class.java, library)
    }

    @JvmStatic external fun lease_status_str(status: Int): Pointer
    @JvmStatic external fun lease_last_error_message(): Pointer
    @JvmStatic external fun lease_version(): Pointer
    @JvmStatic external fun lease_shutdown(): Int
    @JvmStatic external fun lease_suspend(timeoutMs: Int): Int
    @JvmStatic external fun lease_resume()
    @JvmStatic external fun lease_is_suspended(): Byte
    @JvmStatic external fun lease_set_log_callback(
        maxLevel: Int,
        callback: LogCallback?,
        context: Pointer?,
        destroy: DestroyCallback?,
    ): Int

    @JvmStatic external fun lease_store_open(path: ByteArray, outStore: PointerByReference): Int
    @JvmStatic external fun lease_store_open_memory(outStore: PointerByReference): Int
    @JvmStatic external fun lease_store_free(store: Pointer)

    @JvmStatic external fun lease_lock_options_init(options: NativeLockOptions, size: SizeT): Int
    @JvmStatic external fun lease_lock_new(
        store: Pointer,
        key: ByteArray,
        label: ByteArray,
        options: NativeLockOptions?,
        outLock: PointerByReference,
    ): Int
    @JvmStatic external fun lease_lock_try_acquire(lock: Pointer, outGuard: PointerByReference): Int
    @JvmStatic external fun lease_lock_acquire(lock: Pointer, timeoutMs: Int, outGuard: PointerByReference): Int
    @JvmStatic external fun lease_lock_acquire_async(lock: Pointer, timeoutMs: Int, callback: AcquireCallback, context: Pointer?): Int
    @JvmStatic external fun lease_lock_cancel_acquire(lock: Pointer, context: Pointer?): Int
    @JvmStatic external fun lease_lock_set_lost_callback(
        lock: Pointer,
        callback: LostCallback?,
        context: Pointer?,
        destroy: DestroyCallback?,
    ): Int
    @JvmStatic external fun lease_lock_free(lock: Pointer)

    @JvmStatic external fun lease_guard_generation(guard: Pointer): Long
    @JvmStatic external fun lease_guard_is_dirty(guard: Pointer): Byte
    @JvmStatic external fun lease_guard_check(guard: Pointer): Int
    @JvmStatic external fun lease_guard_release(guard: Pointer)

    @JvmStatic external fun lease_db_open(path: ByteArray, outDb: PointerByReference): Int
    @JvmStatic external fun lease_db_set_busy_timeout(db: Pointer, timeoutMs: Int): Int
    @JvmStatic external fun lease_db_execute(db: Pointer, sql: ByteArray, params: Pointer?, nParams: SizeT, outChanges: LongArray): Int
    @JvmStatic external fun lease_db_query(db: Pointer, sql: ByteArray, params: Pointer?, nParams: SizeT, onRow: RowCallback, context: Pointer?): Int
    @JvmStatic external fun lease_db_begin(db: Pointer, outTx: PointerByReference): Int
    @JvmStatic external fun lease_db_begin_chunked(db: Pointer, chunkMs: Int, outTx: PointerByReference): Int
    @JvmStatic external fun lease_db_begin_fenced(db: Pointer, guard: Pointer, outTx: PointerByReference): Int
    @JvmStatic external fun lease_db_observe(
        db: Pointer,
        callback: ChangeCallback,
        context: Pointer?,
        destroy: DestroyCallback?,
        outObserver: PointerByReference,
    ): Int
    @JvmStatic external fun lease_observer_free(observer: Pointer)
    @JvmStatic external fun lease_db_migrate(db: Pointer, targetVersion: Int, step: MigrationStepCallback, context: Pointer?, timeoutMs: Int): Int
    @JvmStatic external fun lease_db_free(db: Pointer)

    @JvmStatic external fun lease_tx_execute(tx: Pointer, sql: ByteArray, params: Pointer?, nParams: SizeT, outChanges: LongArray): Int
    @JvmStatic external fun lease_tx_query(tx: Pointer, sql: ByteArray, params: Pointer?, nParams: SizeT, onRow: RowCallback, context: Pointer?): Int
    @JvmStatic external fun lease_tx_maybe_commit(tx: Pointer, outCommitted: ByteArray): Int
    @JvmStatic external fun lease_tx_commit(tx: Pointer): Int
    @JvmStatic external fun lease_tx_rollback(tx: Pointer)
}

/**
 * Finds liblease, the first of:
 * 1. `-Dliblease.library=NAME-OR-PATH`, a library of one's own choosing;
 * 2. the library that the binding's jar carries for this platform, as a resource under JNA's
 *    prefix (`linux-x86-64/liblease.so`, `darwin-aarch64/liblease.dylib`,
 *    `win32-x86-64/lease.dll`), which JNA extracts to a temporary file: the build that the
 *    binding was packaged and tested with, whatever other liblease the system has;
 * 3. "lease" by name: in jna.library.path, then the system's library path (on Android, the APK's
 *    jniLibs, where an AAR puts it).
 */
private fun loadLibrary(): NativeLibrary {
    System.getProperty("liblease.library")?.let { return NativeLibrary.getInstance(it) }
    val bundled = try {
        Native.extractFromResourcePath("lease", LeaseNative::class.java.classLoader)
    } catch (_: IOException) {
        null // no resource for this platform
    }
    return NativeLibrary.getInstance(bundled?.absolutePath ?: "lease")
}

/** `size_t`: 8 bytes on 64-bit platforms, 4 on 32-bit Android. */
internal class SizeT(value: Long = 0) : IntegerType(Native.SIZE_T_SIZE, value, true) {
    override fun toByte() = toInt().toByte()
    override fun toShort() = toInt().toShort()
}

/**
 * `LeaseLockOptions`: its own size, then three `uint32_t` milliseconds. [defaults] is the only way
 * to make one, so that the size is always the one lease_lock_options_init recorded.
 */
@Structure.FieldOrder("size", "lease_ms", "renew_every_ms", "max_backoff_ms")
internal class NativeLockOptions private constructor() : Structure() {
    @JvmField var size: Int = 0
    @JvmField var lease_ms: Int = 0
    @JvmField var renew_every_ms: Int = 0
    @JvmField var max_backoff_ms: Int = 0

    companion object {
        /** The library's defaults, with the size of the struct as this binding knows it. */
        fun defaults(): NativeLockOptions = NativeLockOptions().also {
            checkStatus(LeaseNative.lease_lock_options_init(it, SizeT(it.size().toLong())))
        }
    }
}

/** `LeaseAcquireCallback`. */
internal fun interface AcquireCallback : Callback {
    fun invoke(context: Pointer?, status: Int, guard: Pointer?)
}

/** `LeaseLostCallback`. */
internal fun interface LostCallback : Callback {
    fun invoke(context: Pointer?, key: Pointer?)
}

/**
 * `LeaseLogCallback`, on whichever thread the event happened: [message] is valid only during the
 * call.
 */
internal fun interface LogCallback : Callback {
    fun invoke(context: Pointer?, level: Int, message: Pointer?)
}

/** `LeaseDestroyCallback`: the library no longer needs a context. */
internal fun interface DestroyCallback : Callback {
    fun invoke(context: Pointer?)
}

/** `LeaseRowCallback`, on the thread that called the query. */
internal fun interface RowCallback : Callback {
    fun invoke(context: Pointer?, columns: Pointer?, count: SizeT): Int
}

/**
 * `LeaseChangeCallback`, on the library's thread: [tables] points at [count] NUL-terminated names,
 * valid only during the call, or is NULL when the tables are not known.
 */
internal fun interface ChangeCallback : Callback {
    fun invoke(context: Pointer?, tables: Pointer?, count: SizeT)
}

/** `LeaseMigrationStep`, on the thread that called lease_db_migrate: returns a `LeaseStatus`. */
internal fun interface MigrationStepCallback : Callback {
    fun invoke(context: Pointer?, tx: Pointer?, version: Int): Int
}

/** Decodes a NUL-terminated UTF-8 string owned by the library. */
internal fun Pointer.utf8(): String = getString(0, "UTF-8")

/**
 * Encodes a string for the library: UTF-8 and a terminating NUL. A NUL inside would silently cut
 * the string short in C, so it is refused here, the way the library refuses a malformed string.
 */
internal fun String.toCString(what: String, function: String): ByteArray {
    if (indexOf('\u0000') >= 0) {
        throw LeaseException.InvalidArgument("$function: $what contains a NUL character")
    }
    val bytes = toByteArray(Charsets.UTF_8)
    return bytes.copyOf(bytes.size + 1)
}

/**
 * How JNA runs Kotlin code on the library's thread. The callbacks that liblease calls from its own
 * code run on its one thread, "liblease"; JNA attaches it to the JVM on its first callback and,
 * with detach = false, keeps it attached (instead of attaching and detaching around every call)
 * until the thread ends. Daemon, so that it never keeps the JVM from exiting. A callback called on
 * a thread of the JVM's, inside one of its calls into liblease (a query's rows, a log message),
 * runs on that thread as it is: JNA applies this only to the threads it attaches.
 */
internal fun <T : Callback> T.onLibraryThread(): T {
    Native.setCallbackThreadInitializer(this, CallbackThreadInitializer(true, false, "liblease"))
    return this
}
