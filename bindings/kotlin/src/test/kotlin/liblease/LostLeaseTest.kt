package liblease

import org.junit.jupiter.api.Test
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicReference
import kotlin.concurrent.thread
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/**
 * Leases lost for real: a child process stops this JVM (SIGSTOP) for longer than the lease, takes
 * the lease, and continues us (SIGCONT), as a suspended iOS app or Android process would be; or,
 * more cheaply, this process's renewals cannot write the database until the lease has run out.
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

    @Test
    fun `a listener that sets the lost listener while another thread sets it too - both return, one listener is left`() {
        val db = TestFiles.db()
        val heard = LinkedBlockingQueue<String>()
        LeaseDatabase.open(db).use { database ->
            LeaseStore.open(db).use { store ->
                store.lock("sync", "app", LockOptions(lease = 1000.milliseconds, renewEvery = 250.milliseconds)).use { lock ->
                    val setter = AtomicReference<Thread>()
                    lock.setLostListener {
                        heard.add("first")
                        // The other thread's call waits for this listener to return: set the
                        // listener from here only once it is waiting, which is when a Kotlin lock
                        // held across that call would deadlock.
                        eventually("the other thread waits in setLostListener") {
                            setter.get()?.isInNative("lease_lock_set_lost_callback") == true
                        }
                        lock.setLostListener { heard.add("set from inside") }
                        heard.add("first returns")
                    }
                    repeat(3) { System.gc() } // the lock keeps its listener, whoever else does not

                    lock.acquireBlocking(1.seconds).use { guard ->
                        starveRenewals(database) {
                            assertEquals("first", heard.poll(10, TimeUnit.SECONDS))
                            val other = thread(name = "other setter", isDaemon = true) {
                                lock.setLostListener { heard.add("set from another thread") }
                            }
                            setter.set(other)
                            other.join(10_000)
                            assertFalse(other.isAlive, "setLostListener deadlocked")
                        }
                        assertEquals("first returns", heard.poll(10, TimeUnit.SECONDS))
                        assertFalse(guard.isHeld)
                    }

                    // Exactly one of the two is left: whichever of the two calls came last.
                    lock.acquireBlocking(1.seconds).use { again ->
                        assertTrue(again.isDirty, "a fresh hold")
                        starveRenewals(database) {
                            val last = heard.poll(10, TimeUnit.SECONDS)
                            assertTrue(last == "set from inside" || last == "set from another thread", "heard $last")
                        }
                    }
                }
                // Closed: no listener is running or will run, so everything heard is in the queue.
                assertEquals(emptyList(), heard.toList())
            }
        }
    }

    /**
     * Runs [block] while a transaction of this process keeps the lock's renewals from writing the
     * database, so that a lease held meanwhile runs out and is lost; [block] waits for that.
     */
    private fun starveRenewals(database: LeaseDatabase, block: () -> Unit) {
        database.begin().use { tx ->
            block()
            tx.rollback()
        }
    }

    /** Whether this thread is inside the native function [name] (its top Java frame). */
    private fun Thread.isInNative(name: String): Boolean =
        stackTrace.firstOrNull()?.let { it.isNativeMethod && it.methodName == name } == true
}
