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
    fun `a lease lost while this process was stopped - the guard knows, the listener hears, a fenced transaction is refused`() {
        val db = TestFiles.db()
        val lost = LinkedBlockingQueue<Pair<String, String>>()
        val database = LeaseDatabase.open(db)
        database.execute("CREATE TABLE work (who TEXT)")
        LeaseStore.open(db).use { store ->
            store.lock("sync", "victim", LockOptions(lease = 1000.milliseconds, renewEvery = 250.milliseconds)).use { lock ->
                lock.setLostListener { key -> lost.add(key to Thread.currentThread().name) }
                val guard = lock.acquireBlocking(1.seconds)
                val ours = guard.generation
                database.beginFenced(guard).use { tx ->
                    tx.execute("INSERT INTO work (who) VALUES ('victim before')")
                    tx.commit()
                }

                Child.start("steal", db, "sync", ProcessHandle.current().pid().toString(), "2500").use { thief ->
                    val theirs = thief.readNumber("stole")
                    assertTrue(theirs > ours)

                    // Continued: the guard knows at once, before the library's thread has looked.
                    val error = assertFailsWith<LeaseException.Lost> { guard.check() }
                    assertContains(error.detail, "lease_guard_check")
                    assertFalse(guard.isHeld)
                    assertEquals("sync" to "liblease", lost.poll(5, TimeUnit.SECONDS), "the lost listener, on the library's thread")

                    // A write fenced by the lost guard is refused, and writes nothing.
                    val refused = assertFailsWith<LeaseException.Lost> { database.beginFenced(guard) }
                    assertContains(refused.detail, "lease_db_begin_fenced")
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
        assertEquals(
            listOf("victim before", "thief"),
            database.query("SELECT who FROM work ORDER BY rowid").map { it.getString(0) },
            "only the holders' writes, in order",
        )
        database.close()
    }
}
