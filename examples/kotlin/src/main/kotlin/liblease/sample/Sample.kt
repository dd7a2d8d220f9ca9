/*
 * liblease Kotlin sample: an app and its extension, two processes, share one database file and
 * take turns at work that only one process may do at a time, guarded by the lock "sync".
 *
 *   mvn -q -f examples/kotlin/pom.xml compile exec:exec      (or: Sample [database-file])
 *
 * The app starts the extension as a second JVM.
 *
 *   Act 1: they take turns at "sync"; each records its turn in a transaction fenced by its lease.
 *          The app waits in a coroutine (no thread blocked), the extension on a thread.
 *   Act 2: the extension runs a long import in a chunked transaction while it holds "sync"; the
 *          app's short writes still get in within milliseconds. Then the app kills the extension
 *          (SIGKILL) and takes over: every chunk the import committed is there, and no part of one.
 */
package liblease.sample

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import liblease.LeaseDatabase
import liblease.LeaseGuard
import liblease.LeaseLibrary
import liblease.LeaseLock
import liblease.LeaseStore
import liblease.LockOptions
import java.io.File
import kotlin.concurrent.thread
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

private const val TURNS = 3
private const val ROWS_PER_BATCH = 50

/** A short lease makes a takeover quick to watch (the default is 6 s). */
private val options = LockOptions(lease = 2.seconds, renewEvery = 500.milliseconds)

private var me = "app"
private var started = System.currentTimeMillis()

/** Prints one timestamped line: "[  1.234 s] extension  ..." */
private fun say(text: String) {
    val ms = System.currentTimeMillis() - started
    println("[%3d.%03d s] %-10s %s".format(ms / 1000, ms % 1000, me, text))
    System.out.flush()
}

private fun describe(guard: LeaseGuard) = "generation ${guard.generation}, " +
    if (guard.isDirty) "dirty (another process may have held it: reload caches)" else "clean (nobody else held it since our last turn)"

/** The work the lease protects: a moment of work, then its record, written only under the lease. */
private fun work(db: LeaseDatabase, guard: LeaseGuard, what: String) {
    say("$what...")
    Thread.sleep(300)
    db.beginFenced(guard).use { tx ->
        tx.execute("INSERT INTO journal (who, what, generation) VALUES (?, ?, ?)", me, what, guard.generation)
        tx.commit()
    }
}

fun main(args: Array<String>) {
    val path = args.getOrElse(0) { "kotlin-sample.db" }
    if (args.getOrNull(1) == "--extension") {
        me = "extension"
        started = args[2].toLong()
        extension(path)
    } else {
        app(path)
    }
}

private fun app(path: String) = runBlocking {
    println("liblease ${LeaseLibrary.version}: an app and an extension share $path")
    LeaseDatabase.open(path).use { db ->
        db.execute("CREATE TABLE IF NOT EXISTS journal (who TEXT, what TEXT, generation INTEGER)")
        db.execute("CREATE TABLE IF NOT EXISTS import (n INTEGER)")
        db.execute("DELETE FROM journal")
        db.execute("DELETE FROM import")
        val extension = Extension.start(path)

        LeaseStore.open(path).use { store ->
            store.lock("sync", label = me, options = options).use { lock ->
                lock.setLostListener { key -> say("lost '$key': another process may be doing the work") }
                repeat(TURNS) {
                    val guard = take(lock)
                    withContext(Dispatchers.IO) { work(db, guard, "syncing") }
                    guard.release()
                    say("released 'sync'")
                    delay(100) // let the other process in
                }

                say("--- act 2: the extension will import while it holds 'sync', and be killed ---")
                extension.order("go")
                extension.awaitSignal("holding")
                say("tries 'sync' without waiting: " + (lock.tryAcquire()?.also { it.close() }?.let { "got it?!" } ?: "busy, the extension holds it"))
                withContext(Dispatchers.IO) {
                    repeat(4) {
                        val ms = measure { db.execute("INSERT INTO journal (who, what) VALUES (?, ?)", me, "a short write") }
                        say("a short write beside the import got in after $ms ms")
                        Thread.sleep(150)
                    }
                }
                extension.kill()
                val killed = System.currentTimeMillis()
                say("killed the extension (SIGKILL) while it held 'sync' in the middle of its import")
                val guard = take(lock)
                say("took over ${System.currentTimeMillis() - killed} ms after the kill (the lease lasts ${options.lease})")
                val rows = db.queryFirst("SELECT count(*) FROM import")!!.getLong(0)
                say("the import committed $rows rows before it died: " +
                    if (rows % ROWS_PER_BATCH == 0L) "whole batches of $ROWS_PER_BATCH only" else "a partial batch!")
                withContext(Dispatchers.IO) { work(db, guard, "syncing") }
                guard.release()
                say("released 'sync'")
            }
        }

        say("the journal, written only under the lease:")
        db.forEachRow("SELECT who, what, generation FROM journal WHERE generation IS NOT NULL ORDER BY rowid") { row ->
            say("  ${row.getString(0)}: ${row.getString(1)} in generation ${row.getLong(2)}")
        }
    }
    LeaseLibrary.shutdown() // stop the library's thread: nothing is left
    say("done")
}

/** Waits for the lease in a coroutine and says what it found. */
private suspend fun take(lock: LeaseLock): LeaseGuard {
    val asked = System.currentTimeMillis()
    val guard = lock.acquire(30.seconds)
    say("holds 'sync' after waiting ${System.currentTimeMillis() - asked} ms: ${describe(guard)}")
    return guard
}

/** The extension: takes turns on a thread, then imports while holding the lease until it is killed. */
private fun extension(path: String) {
    LeaseDatabase.open(path).use { db ->
        LeaseStore.open(path).use { store ->
            store.lock("sync", label = me, options = options).use { lock ->
                repeat(TURNS) {
                    val asked = System.currentTimeMillis()
                    lock.acquireBlocking(30.seconds).use { guard ->
                        say("holds 'sync' after waiting ${System.currentTimeMillis() - asked} ms: ${describe(guard)}")
                        work(db, guard, "uploading keys")
                    }
                    say("released 'sync'")
                    Thread.sleep(100)
                }

                readlnOrNull() // "go"
                val guard = lock.acquireBlocking(30.seconds)
                say("holds 'sync': starts a long import in a chunked transaction")
                Extension.signal("holding")
                val tx = db.beginChunked()
                var n = 0L
                var chunks = 0
                while (true) { // until the app kills us
                    repeat(ROWS_PER_BATCH) { tx.execute("INSERT INTO import (n) VALUES (?)", n++) }
                    if (tx.maybeCommit()) {
                        chunks++
                        if (chunks % 10 == 1) say("import: $n rows, $chunks chunks committed")
                    }
                    guard.check() // stop if the lease was lost
                    Thread.sleep(1)
                }
            }
        }
    }
}

/** The extension's process, seen from the app: its lines are printed, "@word" lines are signals. */
private class Extension(private val process: Process) {
    private val signals = java.util.concurrent.LinkedBlockingQueue<String>()

    init {
        thread(isDaemon = true) {
            process.inputStream.bufferedReader().forEachLine { line ->
                if (line.startsWith("@")) signals.add(line.substring(1)) else println(line)
            }
        }
    }

    fun order(line: String) {
        process.outputStream.write("$line\n".toByteArray())
        process.outputStream.flush()
    }

    fun awaitSignal(word: String) {
        val got = signals.poll(30, java.util.concurrent.TimeUnit.SECONDS)
        check(got == word) { "the extension did not say $word (got $got)" }
    }

    fun kill() {
        process.destroyForcibly().waitFor()
    }

    companion object {
        fun start(path: String): Extension {
            val java = File(System.getProperty("java.home"), "bin/java").path
            val command = listOf(
                java,
                "-Djna.library.path=" + System.getProperty("jna.library.path", ""),
                "-cp", System.getProperty("java.class.path"),
                "liblease.sample.SampleKt", path, "--extension", started.toString(),
            )
            return Extension(ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start())
        }

        /** Tells the app something, on the extension's side. */
        fun signal(word: String) {
            println("@$word")
            System.out.flush()
        }
    }
}

private inline fun measure(block: () -> Unit): Long {
    val start = System.nanoTime()
    block()
    return (System.nanoTime() - start) / 1_000_000
}
