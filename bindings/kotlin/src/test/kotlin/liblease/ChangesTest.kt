package liblease

import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlin.test.assertEquals
import kotlin.test.assertTrue

/** LeaseDatabase.observe(): commits made by child processes (ChildMain's write role), told in this JVM. */
class ChangesTest {
    private val path: String = TestFiles.db("changes")
    private val db: LeaseDatabase = LeaseDatabase.open(path).apply {
        execute("CREATE TABLE a (x)")
        execute("CREATE TABLE b (x)")
        execute("CREATE TABLE c (x)")
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
}
