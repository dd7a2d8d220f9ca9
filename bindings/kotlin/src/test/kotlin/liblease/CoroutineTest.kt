package liblease

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.async
import kotlinx.coroutines.cancel
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.joinAll
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertSame
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/** The suspending acquire: built on lease_lock_acquire_async, cancelled by lease_lock_cancel_acquire. */
class CoroutineTest {
    @AfterEach
    fun nothingLeftHeld() = eventually("every guard is released and every acquisition called back") { libraryIsIdle() }

    @Test
    fun `acquire suspends and resumes with the guard`() = runBlocking {
        LeaseStore.open(TestFiles.db()).use { store ->
            store.lock("sync", "app").use { lock ->
                lock.acquire(1.seconds).use { guard ->
                    guard.check()
                    assertTrue(guard.isDirty)
                    // Re-entrant, as the blocking one.
                    lock.acquire(1.seconds).use { again -> assertEquals(guard.generation, again.generation) }
                }
            }
        }
    }

    @Test
    fun `acquire on a closed lock throws IllegalStateException`() = runBlocking {
        val lock = LeaseStore.openInMemory().use { it.lock("k", "me") }
        lock.close()
        assertFailsWith<IllegalStateException> { lock.acquire(1.seconds) }
        Unit
    }

    @Test
    fun `acquire in a coroutine that is cancelled already throws at once and writes nothing`() = runBlocking {
        val path = TestFiles.db()
        LeaseDatabase.open(path).use { db ->
            LeaseStore.open(path).use { store ->
                // Another lock of this process held the key: the lease row exists, and is free.
                store.lock("sync", "before").use { it.tryAcquire()!!.close() }
                val row = "SELECT * FROM liblease_lease WHERE key = 'sync'"
                val before = db.queryFirst(row)!!.toList()
                val version = db.queryFirst("PRAGMA data_version")!!.getLong(0)

                store.lock("sync", "app").use { lock ->
                    val attempt = async {
                        cancel()
                        lock.acquire(1.seconds)
                    }
                    assertFailsWith<CancellationException> { attempt.await() }
                    eventually("no acquisition is pending") { libraryIsIdle() }
                }
                assertEquals(before, db.queryFirst(row)!!.toList(), "the lease row, generation and expiry included")
                assertEquals(version, db.queryFirst("PRAGMA data_version")!!.getLong(0), "no connection wrote the file")
            }
        }
    }

    @Test
    fun `a waiting coroutine takes the lease when the other process releases it`() = runBlocking {
        val db = TestFiles.db()
        Child.start("hold", db, "sync", "6000").use { child ->
            val theirs = child.readNumber("held")
            LeaseStore.open(db).use { store ->
                store.lock("sync", "app").use { lock ->
                    val waiting = async { lock.acquire(10.seconds) }
                    delay(100)
                    assertTrue(waiting.isActive)
                    child.order("release")
                    waiting.await().use { guard ->
                        assertTrue(guard.isDirty)
                        assertTrue(guard.generation > theirs)
                    }
                }
            }
        }
    }

    @Test
    fun `the other process holding it throughout is a timeout, called back on the library's one thread`() = runBlocking {
        val db = TestFiles.db()
        Child.start("hold", db, "sync", "6000").use { child ->
            child.readNumber("held")
            LeaseStore.open(db).use { store ->
                store.lock("sync", "app").use { lock ->
                    val error = assertFailsWith<LeaseException.Timeout> { lock.acquire(200.milliseconds) }
                    assertEquals(LeaseStatus.TIMEOUT, error.status)
                    assertTrue(error.detail.isNotEmpty(), "the message is read on the callback's thread")

                    // Unconfined: the coroutine resumes right inside the library's callback, which
                    // comes after the wait, so the code after the failure runs on that thread.
                    val threads = (1..3).map {
                        withContext(Dispatchers.Unconfined) {
                            assertFailsWith<LeaseException.Timeout> { lock.acquire(20.milliseconds) }
                            Thread.currentThread()
                        }
                    }
                    // (Coroutine debug mode, on under -ea, appends " @coroutine#N" while a coroutine runs.)
                    assertEquals("liblease", threads.first().name.substringBefore(" @"))
                    assertTrue(threads.first().isDaemon)
                    threads.forEach { assertSame(threads.first(), it, "one Java thread, attached once, not per call") }
                }
            }
            child.order("release")
        }
    }

    @Test
    fun `a coroutine cancelled while waiting cancels the acquisition and holds nothing`() = runBlocking {
        val db = TestFiles.db()
        Child.start("hold", db, "sync", "6000").use { child ->
            child.readNumber("held")
            LeaseStore.open(db).use { store ->
                store.lock("sync", "app").use { lock ->
                    val waiting = launch { lock.acquire(30.seconds).close() }
                    delay(200)
                    val cancelling = System.nanoTime()
                    waiting.cancelAndJoin()
                    val cancelMs = (System.nanoTime() - cancelling) / 1_000_000
                    assertTrue(waiting.isCancelled)
                    assertTrue(cancelMs < 1_000, "cancelling took $cancelMs ms, not the acquisition's 30 s")
                    // The native acquisition was called back (with LEASE_CANCELLED) long before 30 s.
                    eventually("the acquisition ended") { libraryIsIdle() }

                    val timedOut = async {
                        assertFailsWith<TimeoutCancellationException> { withTimeout(200) { lock.acquire(30.seconds) } }
                    }
                    timedOut.await()
                    eventually("the acquisition ended") { libraryIsIdle() }
                }
            }
            child.order("release")
            assertEquals("released", child.read())
        }
        // Nobody holds it: neither the child nor a leaked acquisition of ours.
        assertEquals(LeaseStatus.OK, Child.probe(db, "sync"))
    }

    @Test
    fun `cancellation racing with the guard's arrival never leaks a guard`() = runBlocking {
        LeaseStore.open(TestFiles.db()).use { store ->
            store.lock("sync", "app").use { lock ->
                val acquired = AtomicInteger()
                val jobs = (0 until 300).map { i ->
                    val job = launch(Dispatchers.Default) { lock.acquire(5.seconds).use { acquired.incrementAndGet() } }
                    // Cancel at a different moment each time: before the acquisition starts, while
                    // it waits, as the guard arrives, after the coroutine has it.
                    val until = System.nanoTime() + (i % 30) * 20_000L
                    while (System.nanoTime() < until) Thread.onSpinWait()
                    job.cancel()
                    job
                }
                jobs.joinAll()
                // None holds the lease now, and every acquisition has been called back.
                eventually("every guard is released") { libraryIsIdle() }
                println("cancellation race: ${acquired.get()} of 300 coroutines got the guard before being cancelled")
            }
        }
    }
}
