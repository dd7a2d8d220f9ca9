package liblease

import com.sun.jna.Native
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import java.lang.ref.WeakReference
import java.util.concurrent.ConcurrentLinkedQueue
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/**
 * The process's log listener, with what really logs: acquisitions and releases (INFO), a lease lost
 * because renewals could not write (WARN, from the library's thread), a holder killed in another
 * process. The listener is process-wide: each test looks only at the messages naming its own file,
 * and turns logging off afterwards.
 */
class LogTest {
    /** A message as a listener heard it, with the thread it ran on. */
    private data class Heard(val level: LeaseLogLevel, val message: String, val thread: String)

    /** What listeners made by [listener] heard, in order. */
    private class Recorder {
        val heard = ConcurrentLinkedQueue<Heard>()

        /** A new listener that records here: a new object each time, since it captures [heard]. */
        fun listener(): (LeaseLogLevel, String) -> Unit = { level, message ->
            heard.add(Heard(level, message, Thread.currentThread().name))
        }

        /** The messages heard that name [db]. */
        fun about(db: String): List<Heard> = heard.filter { it.message.startsWith(db) }

        /** The first message naming [db] that [matches], once heard; fails after 20 s. */
        fun await(db: String, matches: (String) -> Boolean): Heard {
            var found: Heard? = null
            eventually("a message about $db that matches", timeoutMs = 20_000) {
                found = about(db).firstOrNull { matches(it.message) }
                found != null
            }
            return found!!
        }
    }

    @AfterEach
    fun loggingOff() = LeaseLibrary.setLogListener(LeaseLogLevel.ERROR, null)

    @Test
    fun `at INFO an acquisition and a release are logged, naming the file and the key, inside the calls`() {
        val db = TestFiles.db()
        val heard = Recorder()
        LeaseLibrary.setLogListener(LeaseLogLevel.INFO, heard.listener())
        acquireAndRelease(db, "sync")

        val acquired = heard.await(db) { "acquired by" in it }
        assertEquals(LeaseLogLevel.INFO, acquired.level)
        assertTrue(acquired.message.startsWith("$db: 'sync': acquired by 'app' after waiting "), acquired.message)
        assertEquals(Thread.currentThread().name, acquired.thread, "on the thread that acquired")
        val released = heard.await(db) { "released" in it }
        assertEquals(Heard(LeaseLogLevel.INFO, "$db: 'sync': released", Thread.currentThread().name), released)
    }

    @Test
    fun `at INFO a lost lease's warning, more severe, arrives too, from the library's thread`() {
        val db = TestFiles.db()
        val heard = Recorder()
        LeaseLibrary.setLogListener(LeaseLogLevel.INFO, heard.listener())
        loseALease(db, heard)
        val acquired = heard.about(db).filter { "'sync': acquired by 'app'" in it.message }
        assertEquals(listOf(LeaseLogLevel.INFO), acquired.map { it.level }, "${heard.heard}")
    }

    @Test
    fun `at WARN a lost lease's warning arrives, acquisitions and releases are not logged`() {
        val db = TestFiles.db()
        val heard = Recorder()
        LeaseLibrary.setLogListener(LeaseLogLevel.WARN, heard.listener())
        acquireAndRelease(db, "sync")
        // The release logs inside its call (the INFO test shows it): had it been heard, it would be
        // recorded by now, before the warning that comes next.
        loseALease(db, heard)
        val about = heard.about(db)
        assertEquals(emptyList(), about.filter { it.level > LeaseLogLevel.WARN || "acquired by" in it.message || "released" in it.message })
    }

    @Test
    fun `a holder killed with SIGKILL - the acquisition logs that it took over from the child's label and pid`() {
        val db = TestFiles.db()
        val heard = Recorder()
        LeaseLibrary.setLogListener(LeaseLogLevel.INFO, heard.listener())
        Child.start("hold", db, "sync", "60000").use { child ->
            child.readNumber("held")
            LeaseStore.open(db).use { store ->
                store.lock("sync", "app").use { lock ->
                    assertNull(lock.tryAcquire())
                    child.kill()
                    // Long before the child's 60 s lease runs out: the holder is known to be dead.
                    lock.acquireBlocking(30.seconds).close()
                }
            }
            val acquired = heard.await(db) { "acquired by 'app'" in it }
            assertContains(acquired.message, "generation 2, dirty, taken over from 'child' (pid ${child.pid}), whose process ended")
        }
    }

    @Test
    fun `a replaced listener hears no more and is let go, and a null one turns logging off`() {
        val db = TestFiles.db()
        val first = Recorder()
        val firstListener = setListenerKeptOnlyByTheLibrary(first)
        acquireAndRelease(db, "one")
        first.await(db) { "'one': released" in it }

        val second = Recorder()
        val secondListener = setListenerKeptOnlyByTheLibrary(second)
        eventually("the replaced listener is garbage (its destroy ran)", timeoutMs = 20_000) {
            System.gc()
            firstListener.get() == null
        }
        acquireAndRelease(db, "two")
        second.await(db) { "'two': released" in it }
        assertEquals(emptyList(), first.about(db).filter { "'two'" in it.message }, "the replaced listener heard nothing more")

        LeaseLibrary.setLogListener(LeaseLogLevel.DEBUG, null)
        eventually("the removed listener is garbage (its destroy ran)", timeoutMs = 20_000) {
            System.gc()
            secondListener.get() == null
        }
        acquireAndRelease(db, "three") // logs inside its calls, if anything does
        assertEquals(emptyList(), second.about(db).filter { "'three'" in it.message }, "logging is off")
        assertTrue(secondListener.get() == null)
    }

    @Test
    fun `a listener that throws does not break the call that logged, and its exception is dropped`() {
        val db = TestFiles.db()
        val heard = ConcurrentLinkedQueue<String>()
        val escaped = ConcurrentLinkedQueue<Throwable>()
        val jnaHandler = Native.getCallbackExceptionHandler()
        val uncaughtHandler = Thread.getDefaultUncaughtExceptionHandler()
        // Where an exception would go if the binding let it out: JNA's handler, or the thread's.
        Native.setCallbackExceptionHandler { _, error -> escaped.add(error) }
        Thread.setDefaultUncaughtExceptionHandler { _, error -> escaped.add(error) }
        try {
            LeaseLibrary.setLogListener(LeaseLogLevel.INFO) { _, message ->
                if (message.startsWith(db)) {
                    heard.add(message)
                    throw IllegalStateException("a listener that fails: $message")
                }
            }
            LeaseStore.open(db).use { store ->
                store.lock("sync", "app").use { lock ->
                    val guard = assertNotNull(lock.tryAcquire(), "the acquisition that logged succeeded")
                    assertTrue(guard.isHeld)
                    guard.close()
                    lock.acquireBlocking(1.seconds).use { again ->
                        again.check()
                        assertEquals(LeaseStatus.BUSY, Child.probe(db, "sync"), "held for real")
                    }
                    assertEquals(LeaseStatus.OK, Child.probe(db, "sync"), "released for real")
                }
            }
            LeaseLibrary.setLogListener(LeaseLogLevel.ERROR, null)
        } finally {
            Native.setCallbackExceptionHandler(jnaHandler)
            Thread.setDefaultUncaughtExceptionHandler(uncaughtHandler)
        }
        assertEquals(2, heard.count { "acquired by" in it }, "$heard")
        assertEquals(2, heard.count { it.endsWith("released") }, "$heard")
        assertEquals(emptyList(), escaped.toList(), "nothing escaped the listener")
    }

    /** Sets a new listener of [into] at INFO that nothing but the library refers to; returns it, weakly. */
    private fun setListenerKeptOnlyByTheLibrary(into: Recorder): WeakReference<Any> {
        val listener = into.listener()
        LeaseLibrary.setLogListener(LeaseLogLevel.INFO, listener)
        return WeakReference(listener)
    }

    private fun acquireAndRelease(db: String, key: String) {
        LeaseStore.open(db).use { store ->
            store.lock(key, "app").use { lock -> assertNotNull(lock.tryAcquire()).close() }
        }
    }

    /**
     * Takes [db]'s lease "sync" and keeps its renewals from writing (a transaction of this process
     * holds the database's write lock) until it runs out and the library's thread finds it lost;
     * checks that [heard] hears the warning, from that thread.
     */
    private fun loseALease(db: String, heard: Recorder) {
        LeaseDatabase.open(db).use { database ->
            LeaseStore.open(db).use { store ->
                store.lock("sync", "app", LockOptions(lease = 1000.milliseconds, renewEvery = 250.milliseconds)).use { lock ->
                    lock.acquireBlocking(1.seconds).use { guard ->
                        database.begin().use { tx ->
                            val lost = heard.await(db) { "'sync': the lease is lost" in it }
                            assertEquals(LeaseLogLevel.WARN, lost.level)
                            assertEquals("liblease", lost.thread)
                            tx.rollback()
                        }
                        assertFalse(guard.isHeld)
                    }
                }
            }
        }
    }
}
