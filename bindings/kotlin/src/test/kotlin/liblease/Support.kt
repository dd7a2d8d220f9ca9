package liblease

import java.lang.ref.WeakReference
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.fail

/**
 * Files for the tests: one directory for the whole run, deleted when the JVM exits, never before.
 *
 * Deleting a test's database while the JVM runs would let the next test's new file get the same
 * inode, and liblease knows a file by its device and inode: this process would take the new file's
 * lease (generation 1 again) for one it had held before, and the first guard would not be dirty.
 */
object TestFiles {
    val dir: Path = Files.createTempDirectory("liblease-kotlin-test").also { dir ->
        Runtime.getRuntime().addShutdownHook(Thread { dir.toFile().deleteRecursively() })
    }
    private val next = AtomicInteger()

    /** A new path in [dir], not yet a file. */
    fun path(name: String): Path = dir.resolve("${next.incrementAndGet()}-$name")

    /** A new database path. */
    fun db(name: String = "test"): String = path("$name.db").toString()
}

/** Retries [condition] until it holds, for up to [timeoutMs]. */
fun eventually(what: String, timeoutMs: Long = 5_000, condition: () -> Boolean) {
    val deadline = System.nanoTime() + timeoutMs * 1_000_000
    while (!condition()) {
        if (System.nanoTime() > deadline) fail("not within $timeoutMs ms: $what")
        Thread.sleep(10)
    }
}

/** Whether the library's thread can be stopped: no guard held, no acquisition pending. */
fun libraryIsIdle(): Boolean = try {
    LeaseLibrary.shutdown()
    true
} catch (_: LeaseException.Misuse) {
    false
}

/** Milliseconds that [block] took. */
inline fun millisOf(block: () -> Unit): Long {
    val start = System.nanoTime()
    block()
    return (System.nanoTime() - start) / 1_000_000
}

/**
 * Whether [reference]'s object is garbage within a few collections. False means that something
 * still reaches it strongly (a System.gc() that does nothing would make true ones false, never the
 * other way round).
 */
fun isCollected(reference: WeakReference<*>): Boolean {
    repeat(20) {
        if (reference.get() == null) return true
        System.gc()
        Thread.sleep(10)
    }
    return reference.get() == null
}
