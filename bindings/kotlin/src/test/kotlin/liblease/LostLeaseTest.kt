package liblease

import org.junit.jupiter.api.Test
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/**
 * A lease lost for real: a child process stops this JVM (SIGSTOP) for longer than the lease,
 * takes the lease, and continues us (SIGCONT), as a suspended iOS app or Android process would be.
 */
class LostLeaseTest {
    @Test
    fun `a lease lost while this process was stopped`() {
        val db = TestFiles.db()
        val lost = LinkedBlockingQueue<Pair<String, String>>()
        LeaseStore.open(db).use { store ->
            store.lock("sync", "victim", LockOptions(lease = 1000.milliseconds, renewEvery = 250.milliseconds)).use { lock ->
                lock.setLostListener { key -> lost.add(key to Thread.currentThread().name) }
                val guard = lock.acquireBlocking(1.seconds)
                val ours = guard.generation

                Child.start("steal", db, "sync", ProcessHandle.current().pid().toString(), "2500").use { thief ->
                    val theirs = thief.readNumber("stole")
                    assertTrue(theirs > ours)

                    // Continued: the guard knows at once, before the library's thread has looked.
                    val error = assertFailsWith<LeaseException.Lost> { guard.check() }
                    assertContains(error.detail, "lease_guard_check")
                    assertFalse(guard.isHeld)
                    assertEquals("sync" to "liblease", lost.poll(5, TimeUnit.SECONDS), "the lost listener, on the library's thread")
                    assertNull(lock.tryAcquire(), "the thief holds it now")
                    guard.close() // harmless: it gives back nothing
                    assertNull(lock.tryAcquire())

                    thief.order("release")
                    assertEquals("released", thief.read())
                    assertEquals(0, thief.exitCode())
                }

                // The next hold is a fresh one: dirty, in a newer generation.
                lock.acquireBlocking(5.seconds).use { again ->
                    assertTrue(again.isDirty)
                    assertTrue(again.generation > ours)
                }
                Thread.sleep(200)
                assertTrue(lost.isEmpty(), "called once")
            }
        }
    }
}
