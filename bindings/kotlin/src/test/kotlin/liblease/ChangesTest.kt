package liblease

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * LeaseDatabase.changes() and observe(): commits made by child processes (ChildMain's write,
 * transaction and burst roles), told in this JVM.
 */
class ChangesTest {
    private val path: String = TestFiles.db("changes")
    private val db: LeaseDatabase = LeaseDatabase.open(path).apply {
        execute("CREATE TABLE a (x)")
        execute("CREATE TABLE b (x)")
        execute("CREATE TABLE c (x)")
        execute("CREATE TABLE burst (n INTEGER)")
    }

    @AfterEach
    fun closeAll() {
        db.close()
        eventually("every observer is freed") { libraryIsIdle() }
    }

    /** Runs a child process to its end: it commits, reports one line, and exits. */
    private fun commitInChild(role: String, vararg args: String) = Child.start(role, path, *args).use { child ->
        child.read()
        assertEquals(0, child.exitCode(), "the child $role")
    }

    /** Collects [changes] into a channel on another thread; returns once the observer is in place. */
    private fun CoroutineScope.collect(emissions: Channel<Set<String>?>): Job {
        val job = launch(Dispatchers.Default) { db.changes().collect { emissions.send(it) } }
        // The observer in place keeps the library's thread from shutting down.
        eventually("the collection observes the file") { !libraryIsIdle() }
        return job
    }

    @Test
    fun `a commit in another process reaches a changes collector with the tables it changed`() = runBlocking {
        val emissions = Channel<Set<String>?>(Channel.UNLIMITED)
        val collector = collect(emissions)
        commitInChild("transaction", "INSERT INTO a VALUES (1)", "INSERT INTO b VALUES (2)")
        assertEquals(setOf("a", "b"), withTimeout(10_000) { emissions.receive() }, "one commit, its two tables")
        commitInChild("write", "UPDATE c SET x = 1") // changes no row: the table was written all the same
        assertEquals(setOf("c"), withTimeout(10_000) { emissions.receive() })
        collector.cancelAndJoin()
    }

    @Test
    fun `after a burst of 1000 commits in another process an emission comes that sees the last`() = runBlocking {
        val seen = Channel<Pair<Set<String>?, Long>>(Channel.UNLIMITED)
        val threads = mutableSetOf<String>()
        val collector = launch(Dispatchers.Default) {
            db.changes().collect { tables ->
                threads.add(Thread.currentThread().name)
                seen.send(tables to db.queryFirst("SELECT count(*) FROM burst")!!.getLong(0))
                delay(20) // a slow collector: the library's calls come while it is busy
            }
        }
        eventually("the collection observes the file") { !libraryIsIdle() }
        Child.start("burst", path, "1000").use { child ->
            assertEquals(1000L, child.readNumber("done"))
            assertEquals(0, child.exitCode())
        }
        val emissions = mutableListOf<Pair<Set<String>?, Long>>()
        withTimeout(15_000) {
            while (emissions.lastOrNull()?.second != 1000L) emissions.add(seen.receive())
        }
        collector.cancelAndJoin()
        assertEquals(listOf(setOf("burst")), emissions.map { it.first }.distinct(), "every emission names the table")
        assertTrue(emissions.size < 1000, "merged while the collector was busy: ${emissions.size} emissions")
        assertFalse(threads.any { it.startsWith("liblease") }, "emitted in the collector's context, not on $threads")
        println("changes burst: ${emissions.size} emissions for 1000 commits")
    }

    @Test
    fun `a write that names no table, PRAGMA user_version through execute, arrives as null`() = runBlocking {
        val emissions = Channel<Set<String>?>(Channel.UNLIMITED)
        val collector = collect(emissions)
        commitInChild("write", "PRAGMA user_version = 7")
        assertNull(withTimeout(10_000) { emissions.receive() }, "tables unknown")
        assertEquals(7L, db.queryFirst("PRAGMA user_version")!!.getLong(0))
        collector.cancelAndJoin()
    }

    @Test
    fun `the observer lives while the collection does - shutdown is refused then, and allowed once it ends however it ends`() = runBlocking {
        val collector = launch(Dispatchers.Default) { db.changes().collect {} }
        eventually("the collection observes the file") { !libraryIsIdle() }
        assertContains(assertFailsWith<LeaseException.Misuse> { LeaseLibrary.shutdown() }.detail, "lease_shutdown")
        collector.cancelAndJoin()
        LeaseLibrary.shutdown() // the cancelled collection freed its observer before it ended

        // Ended by the collector, after one emission: first().
        val first = async(Dispatchers.Default) { db.changes().first() }
        eventually("the collection observes the file") { !libraryIsIdle() }
        commitInChild("write", "INSERT INTO a VALUES (1)")
        // {a}, or null: liblease often tells an observer opened soon after another one on the same
        // file was freed that the first commit's tables are unknown (then {a} in a second call).
        val emitted = withTimeout(10_000) { first.await() }
        assertTrue(emitted == null || emitted == setOf("a"), "emitted $emitted")
        LeaseLibrary.shutdown()

        // Ended by an exception of the collector's.
        val failing = async(Dispatchers.Default) {
            runCatching { db.changes().collect { error("the collector failed") } }.exceptionOrNull()
        }
        eventually("the collection observes the file") { !libraryIsIdle() }
        commitInChild("write", "INSERT INTO b VALUES (1)")
        assertEquals("the collector failed", withTimeout(10_000) { failing.await() }?.message)
        LeaseLibrary.shutdown()
    }

    @Test
    fun `a listener runs on the library's thread, and close waits for its running call`() {
        val entered = CountDownLatch(1)
        val finished = AtomicBoolean(false)
        val calls = AtomicInteger()
        val thread = AtomicReference<String>()
        val observer = db.observe {
            calls.incrementAndGet()
            thread.set(Thread.currentThread().name)
            entered.countDown()
            Thread.sleep(500)
            finished.set(true)
        }
        commitInChild("write", "INSERT INTO a VALUES (1)")
        assertTrue(entered.await(10, TimeUnit.SECONDS), "the listener was called")
        val closing = millisOf { observer.close() }
        assertTrue(finished.get(), "close returned after $closing ms, while the listener was still running")
        assertTrue(observer.isClosed)
        assertEquals("liblease", thread.get().substringBefore(" @"))
        assertTrue(libraryIsIdle(), "freed, destroy callback and all")

        commitInChild("write", "INSERT INTO a VALUES (2)")
        Thread.sleep(200)
        assertEquals(1, calls.get(), "not called after close")
        observer.close() // idempotent
    }

    @Test
    fun `a listener may close its own observer, which returns at once, and it is called no more`() {
        val observer = AtomicReference<LeaseObserver>()
        val closedInside = CountDownLatch(1)
        val calls = AtomicInteger()
        observer.set(
            db.observe {
                calls.incrementAndGet()
                observer.get().close() // cannot wait for itself
                closedInside.countDown()
            },
        )
        commitInChild("write", "INSERT INTO a VALUES (1)")
        assertTrue(closedInside.await(10, TimeUnit.SECONDS), "close from inside the listener returned")
        observer.get().close() // from another thread: waits for the listener's return, which has come
        assertTrue(libraryIsIdle())
        commitInChild("write", "INSERT INTO a VALUES (2)")
        Thread.sleep(200)
        assertEquals(1, calls.get())
    }

    @Test
    fun `a slow collector gets the union of what it missed, and an unknown change absorbs every set`() = runBlocking {
        // The library's calls arrive on its own thread, at moments a test cannot see from outside:
        // so the merging is shown on the buffer itself, with the calls made by hand.
        val pending = PendingChanges()
        pending.add(setOf("a"))
        pending.add(setOf("b"))
        assertEquals(setOf("a", "b"), pending.next(), "the union")
        pending.add(setOf("a"))
        pending.add(null)
        pending.add(setOf("c"))
        assertNull(pending.next(), "null: anything may have changed")
        val waiting = async { pending.next() }
        delay(50)
        assertTrue(waiting.isActive, "nothing pending: the collector waits")
        pending.add(setOf("d"))
        assertEquals(setOf("d"), withTimeout(1_000) { waiting.await() }, "after a null, sets again")
    }
}
