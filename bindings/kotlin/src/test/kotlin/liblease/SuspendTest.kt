package liblease

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.parallel.Isolated
import java.util.concurrent.CountDownLatch
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertTrue
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/**
 * Suspending this process (LeaseLibrary.suspend), as an app going to the background does, with a
 * real second process waiting for its lease.
 *
 * A suspension is process-wide: while one of these tests runs, no other test of this JVM may write.
 * JUnit runs test classes one at a time unless parallel execution is turned on (the pom leaves it
 * off); @Isolated keeps this class alone even if it is. Every test resumes afterwards.
 */
@Isolated
@Timeout(120)
class SuspendTest {
    @AfterEach
    fun resumeAndRelease() {
        LeaseLibrary.resume()
        eventually("every guard is released and every acquisition called back") { libraryIsIdle() }
    }

    @Test
    fun `suspending hands the lease to a waiting process, refuses writes, allows reads, and resume lets writes in again`(): Unit = runBlocking {
        val db = TestFiles.db()
        val lost = LinkedBlockingQueue<String>()
        LeaseDatabase.open(db).use { database ->
            database.execute("CREATE TABLE work (who TEXT)")
            database.execute("INSERT INTO work (who) VALUES ('before')")
            LeaseStore.open(db).use { store ->
                store.lock("sync", "app", LONG).use { sync ->
                    store.lock("cache", "app", LONG).use { cache ->
                        sync.setLostListener { key -> lost.add(key) }
                        cache.setLostListener { key -> lost.add(key) }
                        val guard = sync.acquireBlocking(5.seconds)
                        val ours = guard.generation
                        cache.acquireBlocking(5.seconds).close() // this process has held "cache": its next guard is clean
                        val cached = cache.acquireBlocking(5.seconds)
                        assertFalse(cached.isDirty)

                        val theirs = Child.start("wait", db, "sync", "other").use { child ->
                            child.readNumber("holding")
                            assertEquals("waiting", child.read(), "the child waits for our lease")
                            val other = store.lock("other", "app", LONG)
                            val waiting = async(Dispatchers.Default) { runCatching { other.acquire(50.seconds) } }
                            delay(300)
                            assertTrue(waiting.isActive, "waits for the child's lease")
                            val tx = database.begin()
                            tx.execute("INSERT INTO work (who) VALUES ('open transaction')")

                            val suspended = System.nanoTime()
                            LeaseLibrary.suspend(5.seconds)
                            assertTrue(LeaseLibrary.isSuspended)

                            // Given back: the lease lasts 60 s, so only a release lets the child in now.
                            val taken = child.readNumber("took")
                            val tookMs = (System.nanoTime() - suspended) / 1_000_000
                            assertTrue(taken > ours)
                            assertTrue(tookMs < 15_000, "the child took the 60 s lease $tookMs ms after the suspension")
                            println("suspension: the other process took the 60 s lease $tookMs ms after suspend() began")

                            // Our guards are lost, and each listener heard once.
                            assertFailsWith<LeaseException.Lost> { guard.check() }
                            assertFalse(guard.isHeld)
                            assertFalse(cached.isHeld)
                            assertEquals(setOf("sync", "cache"), setOf(lost.poll(5, TimeUnit.SECONDS), lost.poll(5, TimeUnit.SECONDS)))

                            // Every write is refused; reads go on.
                            val write = assertFailsWith<LeaseException.Suspended> {
                                database.execute("INSERT INTO work (who) VALUES ('while suspended')")
                            }
                            assertEquals(LeaseStatus.SUSPENDED, write.status)
                            assertContains(write.detail, "lease_db_execute")
                            assertFailsWith<LeaseException.Suspended> { database.begin() }
                            assertFailsWith<LeaseException.Suspended> { database.beginChunked() }
                            assertFailsWith<LeaseException.Suspended>("not null: the lease is not busy") { sync.tryAcquire() }
                            assertFailsWith<LeaseException.Suspended> { cache.acquireBlocking(1.seconds) }
                            assertEquals(1L, database.queryFirst("SELECT count(*) FROM work")!!.getLong(0), "the open transaction's row is not there")
                            assertEquals(0L, database.execute("SELECT count(*) FROM work"), "a read-only statement runs")

                            // The open transaction was rolled back: its next call says so, and it closes cleanly.
                            assertFailsWith<LeaseException.Suspended> { tx.execute("INSERT INTO work (who) VALUES ('too late')") }
                            assertFalse(tx.isClosed)
                            tx.close()
                            assertTrue(tx.isClosed)

                            // The coroutine waiting for the child's lease resumed with Suspended.
                            val outcome = withTimeout(5.seconds) { waiting.await() }
                            outcome.getOrNull()?.close()
                            assertIs<LeaseException.Suspended>(outcome.exceptionOrNull())
                            other.close()

                            guard.close()
                            cached.close()
                            LeaseLibrary.resume()
                            assertFalse(LeaseLibrary.isSuspended)
                            child.order("release")
                            assertEquals("released", child.read())
                            assertEquals(0, child.exitCode())
                            taken
                        }

                        // Resumed: leases are taken afresh, dirty, and writes work again.
                        sync.acquireBlocking(5.seconds).use { again ->
                            assertTrue(again.isDirty)
                            assertTrue(again.generation > theirs)
                        }
                        cache.acquireBlocking(5.seconds).use { again -> assertTrue(again.isDirty, "given back at the suspension") }
                        assertEquals(1L, database.execute("INSERT INTO work (who) VALUES ('after')"))
                        database.transaction { tx -> tx.execute("INSERT INTO work (who) VALUES ('after, in a transaction')") }
                        Thread.sleep(200)
                        assertEquals(emptyList(), lost.toList(), "each listener ran once")
                    }
                }
            }
            assertEquals(
                listOf("before", "after", "after, in a transaction"),
                database.query("SELECT who FROM work ORDER BY rowid").map { it.getString(0) },
            )
        }
    }

    @Test
    fun `suspending twice is harmless, and resuming a process that is not suspended does nothing`() {
        LeaseDatabase.open(TestFiles.db()).use { database ->
            LeaseLibrary.resume()
            assertFalse(LeaseLibrary.isSuspended)
            database.execute("CREATE TABLE t (n INTEGER)")

            LeaseLibrary.suspend(1.seconds)
            LeaseLibrary.suspend(Duration.ZERO) // nothing left to stop: no timeout even without waiting
            assertTrue(LeaseLibrary.isSuspended)
            assertFailsWith<LeaseException.Suspended> { database.execute("INSERT INTO t VALUES (1)") }

            LeaseLibrary.resume()
            LeaseLibrary.resume()
            assertFalse(LeaseLibrary.isSuspended)
            assertEquals(1L, database.execute("INSERT INTO t VALUES (1)"))
        }
    }

    @Test
    fun `a statement that outlasts the suspension's timeout is a timeout, and the process is suspended all the same`() {
        val path = TestFiles.db()
        LeaseDatabase.open(path).use { database ->
            database.execute("CREATE TABLE t (n INTEGER)")
            database.execute("INSERT INTO t VALUES (1)")
            val tx = database.begin()
            tx.execute("INSERT INTO t VALUES (2)")
            val inRowAction = CountDownLatch(1)
            val letGo = CountDownLatch(1)
            // A row action runs inside the statement: the suspension can interrupt the statement
            // only once the action returns.
            val querying = thread(name = "querying") {
                runCatching {
                    tx.forEachRow("SELECT n FROM t") {
                        inRowAction.countDown()
                        letGo.await()
                    }
                }
            }
            try {
                assertTrue(inRowAction.await(5, TimeUnit.SECONDS))
                val error = assertFailsWith<LeaseException.Timeout> { LeaseLibrary.suspend(100.milliseconds) }
                assertContains(error.detail, "lease_suspend")
                assertContains(error.detail, path, message = "names the database")
                assertTrue(LeaseLibrary.isSuspended, "suspended all the same")
                assertEquals(listOf(1L), database.query("SELECT n FROM t").map { it.getLong(0) }, "reads are not held up")
                // (Not a write through `database` here: while suspended, lease_db_execute waits for the
                // connection this statement holds, with no busy timeout, instead of refusing at once.)
            } finally {
                letGo.countDown()
                querying.join(10_000)
            }
            assertFalse(querying.isAlive)

            LeaseLibrary.suspend(5.seconds) // again, with time: the statement has ended
            assertFailsWith<LeaseException.Suspended> { tx.commit() }
            assertTrue(tx.isClosed, "commit ends it whatever the outcome")
            tx.close()
            LeaseLibrary.resume()
            assertEquals(listOf(1L), database.query("SELECT n FROM t").map { it.getLong(0) }, "the transaction was rolled back")
            assertEquals(1L, database.execute("INSERT INTO t VALUES (3)"))
        }
    }

    private companion object {
        /** Long enough that only a release explains another process taking over. */
        val LONG = LockOptions(lease = 60.seconds, renewEvery = 15.seconds)
    }
}
