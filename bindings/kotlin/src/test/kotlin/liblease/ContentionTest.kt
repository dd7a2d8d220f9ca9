package liblease

import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import java.util.concurrent.CountDownLatch
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/** Two JVM threads, and a second OS process, contending for one lock. */
class ContentionTest {
    @AfterEach
    fun nothingLeftHeld() = eventually("every guard is released") { libraryIsIdle() }

    @Test
    fun `two threads of one process share the lease, which is held until both release`() {
        val db = TestFiles.db()
        LeaseStore.open(db).use { store ->
            store.lock("sync", "app").use { lock ->
                val bothHold = CyclicBarrier(2)
                val released = CountDownLatch(1)
                val generations = IntArray(2).map { 0L }.toMutableList()
                val pool = Executors.newFixedThreadPool(2)
                val futures = (0..1).map { i ->
                    pool.submit {
                        lock.acquireBlocking(5.seconds).use { guard ->
                            generations[i] = guard.generation
                            bothHold.await(5, TimeUnit.SECONDS) // re-entrant: no thread waits for the other
                            if (i == 0) released.await() else Unit
                        }
                    }
                }
                futures[1].get(10, TimeUnit.SECONDS) // thread 1 released; thread 0 still holds
                assertEquals(generations[0], generations[1])
                assertEquals(LeaseStatus.BUSY, Child.probe(db, "sync"), "another process must not get it")
                released.countDown()
                futures[0].get(10, TimeUnit.SECONDS)
                pool.shutdown()
                assertEquals(LeaseStatus.OK, Child.probe(db, "sync"), "released by both: free for others")
            }
        }
    }

    @Test
    fun `many threads acquiring, checking and closing at once`() {
        LeaseStore.open(TestFiles.db()).use { store ->
            store.lock("sync", "app").use { lock ->
                val pool = Executors.newFixedThreadPool(8)
                val acquired = AtomicInteger()
                val tasks = (0 until 8).map {
                    pool.submit {
                        repeat(200) {
                            val guard = if (it % 2 == 0) lock.tryAcquire() else lock.acquireBlocking(1.seconds)
                            guard!!.use { g ->
                                g.check()
                                acquired.incrementAndGet()
                            }
                        }
                    }
                }
                tasks.forEach { it.get(30, TimeUnit.SECONDS) }
                pool.shutdown()
                assertEquals(8 * 200, acquired.get())
            }
        }
    }

    @Test
    fun `another process holds the lease - try-acquire is null, a blocking acquire times out, then takes it once released`() {
        val db = TestFiles.db()
        Child.start("hold", db, "sync", "6000").use { child ->
            val theirs = child.readNumber("held")
            LeaseStore.open(db).use { store ->
                store.lock("sync", "app").use { lock ->
                    assertNull(lock.tryAcquire())
                    val timeout = assertFailsWith<LeaseException.Timeout> { lock.acquireBlocking(200.milliseconds) }
                    assertContains(timeout.detail, "lease_lock_acquire")
                    assertFailsWith<LeaseException.Timeout>("zero: one attempt") { lock.acquireBlocking(Duration.ZERO) }

                    val waiter = Executors.newSingleThreadExecutor()
                    val taken = waiter.submit<LeaseGuard> { lock.acquireBlocking(10.seconds) }
                    Thread.sleep(100)
                    child.order("release")
                    assertEquals("released", child.read())
                    taken.get(10, TimeUnit.SECONDS).use { guard ->
                        assertTrue(guard.isDirty, "another process held it")
                        assertTrue(guard.generation > theirs)
                    }
                    waiter.shutdown()
                }
            }
            assertEquals(0, child.exitCode())
        }
    }

    @Test
    fun `a holder killed with SIGKILL is taken over`() {
        val db = TestFiles.db()
        Child.start("hold", db, "sync", "2000").use { child ->
            child.readNumber("held")
            LeaseStore.open(db).use { store ->
                store.lock("sync", "app").use { lock ->
                    assertNull(lock.tryAcquire())
                    child.kill()
                    // On Linux a provably dead holder is taken over at once; elsewhere at expiry.
                    val tookMs = millisOf { lock.acquireBlocking(10.seconds).close() }
                    assertTrue(tookMs < 2_500, "took $tookMs ms")
                }
            }
        }
    }

    @Test
    fun `closing a lock while another thread waits in it frees it only when the wait ends`() {
        val db = TestFiles.db()
        Child.start("hold", db, "sync", "6000").use { child ->
            child.readNumber("held")
            LeaseStore.open(db).use { store ->
                val lock = store.lock("sync", "app")
                val waiter = Executors.newSingleThreadExecutor()
                val taken = waiter.submit<LeaseGuard> { lock.acquireBlocking(10.seconds) }
                Thread.sleep(200) // the waiter is inside lease_lock_acquire
                assertTrue(millisOf { lock.close() } < 500, "close does not wait for the call")
                assertFailsWith<IllegalStateException> { lock.tryAcquire() }
                child.order("release")
                taken.get(10, TimeUnit.SECONDS).use { guard -> guard.check() } // the call ended normally
                waiter.shutdown()
            }
        }
    }
}
