package liblease

import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import kotlin.test.assertContains
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertSame
import kotlin.test.assertTrue
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

class DatabaseTest {
    private val db = LeaseDatabase.open(TestFiles.db()).apply {
        execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v ANY) STRICT")
    }

    @AfterEach
    fun closeAll() {
        db.close()
        eventually("every guard is released") { libraryIsIdle() }
    }

    private fun count() = db.queryFirst("SELECT count(*) FROM t")!!.getLong(0)

    @Test
    fun `values of every kind go in as parameters and come back as Kotlin types`() {
        val blob = byteArrayOf(0, 1, 2, -1)
        val values = listOf<Any?>(42L, 7, -3.5, "héllo ✓", "a\u0000b", "", blob, ByteArray(0), null, true, 2.5f)
        values.forEachIndexed { i, value -> assertEquals(1L, db.execute("INSERT INTO t VALUES (?, ?)", i, value)) }

        val rows = db.query("SELECT v FROM t ORDER BY id")
        assertEquals(values.size, rows.size)
        assertEquals(42L, rows[0].getLong(0))
        assertEquals(7L, rows[1][0], "an Int is an INTEGER")
        assertEquals(-3.5, rows[2].getDouble(0))
        assertEquals("héllo ✓", rows[3].getString(0))
        assertEquals("a\u0000b", rows[4].getString(0), "TEXT may hold NUL")
        assertEquals("", rows[5].getString(0), "empty TEXT is not NULL")
        assertContentEquals(blob, rows[6].getBytes(0))
        assertContentEquals(ByteArray(0), rows[7].getBytes(0), "an empty BLOB is not NULL")
        assertTrue(rows[8].isNull(0))
        assertEquals(1L, rows[9].getLong(0))
        assertEquals(2.5, rows[10].getDouble(0))

        val row = db.queryFirst("SELECT ?, ?, ?, ?, ?", 1L, 2.0, "three", byteArrayOf(4), null)!!
        assertEquals(5, row.size)
        assertEquals(listOf(1L, 2.0, "three"), row.toList().take(3))
        assertFailsWith<IllegalStateException> { row.getString(0) }.also { assertContains(it.message!!, "Long") }
    }

    @Test
    fun `forEachRow streams rows, queryFirst stops after one, a query of nothing is empty`() {
        repeat(5) { db.execute("INSERT INTO t (v) VALUES (?)", it) }
        val seen = mutableListOf<Long>()
        db.forEachRow("SELECT v FROM t WHERE v >= ? ORDER BY v", 2) { seen.add(it.getLong(0)) }
        assertEquals(listOf(2L, 3L, 4L), seen)
        assertEquals(0L, db.queryFirst("SELECT v FROM t ORDER BY v")!!.getLong(0))
        assertNull(db.queryFirst("SELECT v FROM t WHERE v > 100"))
        assertEquals(emptyList(), db.query("SELECT v FROM t WHERE v > 100"))
    }

    @Test
    fun `bad SQL and bad parameters are the right exceptions with the library's message`() {
        assertContains(
            assertFailsWith<LeaseException.Database> { db.execute("INSERT INTO nowhere VALUES (1)") }.detail,
            "no such table",
        )
        assertFailsWith<LeaseException.Database> { db.execute("SELEC 1") }
        db.execute("INSERT INTO t VALUES (1, 1)")
        assertContains(
            assertFailsWith<LeaseException.Database> { db.execute("INSERT INTO t VALUES (1, 1)") }.detail,
            "UNIQUE",
        )
        val wrongCount = assertFailsWith<LeaseException.InvalidArgument> { db.execute("INSERT INTO t VALUES (?, ?)", 1) }
        assertContains(wrongCount.detail, "lease_db_execute")
        assertFailsWith<LeaseException.InvalidArgument> { db.execute("INSERT INTO t VALUES (2, 2); INSERT INTO t VALUES (3, 3)") }
        assertFailsWith<LeaseException.InvalidArgument> { db.execute("BEGIN") }
        assertContains(
            assertFailsWith<LeaseException.InvalidArgument> { db.query("DELETE FROM t") }.detail,
            "lease_db_query",
        )
        val badType = assertFailsWith<LeaseException.InvalidArgument> { db.execute("INSERT INTO t VALUES (?, ?)", 5, Any()) }
        assertContains(badType.detail, "lease_db_execute: params[1] is a java.lang.Object")
        assertFailsWith<LeaseException.InvalidArgument> { db.execute("SELECT 1\u0000") }
        assertEquals(1L, count(), "nothing of the failures was written")
    }

    @Test
    fun `opening what cannot be shared is a database error, an empty path an invalid argument`() {
        assertFailsWith<LeaseException.Database> { LeaseDatabase.open(":memory:") }
        assertFailsWith<LeaseException.InvalidArgument> { LeaseDatabase.open("") }
        assertFailsWith<LeaseException.Database> { LeaseDatabase.open(TestFiles.path("missing/dir/x.db").toString()) }
    }

    @Test
    fun `a transaction commits, rolls back, and rolls back when closed or when its block throws`() {
        db.transaction { tx ->
            assertEquals(1L, tx.execute("INSERT INTO t (v) VALUES (?)", "committed"))
            assertEquals("committed", tx.queryFirst("SELECT v FROM t")!!.getString(0), "sees its own writes")
            assertEquals(0L, count(), "others see nothing before the commit")
        }
        assertEquals(1L, count())

        db.begin().use { tx -> tx.execute("INSERT INTO t (v) VALUES ('closed')") }
        db.begin().rollback()
        assertFailsWith<IllegalStateException> {
            db.transaction { tx ->
                tx.execute("INSERT INTO t (v) VALUES ('thrown')")
                error("the block failed")
            }
        }
        assertEquals(1L, count())

        val tx = db.begin()
        tx.commit()
        tx.close()
        tx.rollback()
        assertTrue(tx.isClosed)
        assertEquals("LeaseTransaction is closed", assertFailsWith<IllegalStateException> { tx.commit() }.message)
        assertFailsWith<IllegalStateException> { tx.execute("SELECT 1") }
    }

    @Test
    fun `a failed statement leaves the transaction open, and SQL that ends it is misuse`() {
        db.begin().use { tx ->
            tx.execute("INSERT INTO t VALUES (1, 'kept')")
            assertFailsWith<LeaseException.Database> { tx.execute("INSERT INTO t VALUES (1, 'duplicate')") }
            tx.commit()
        }
        assertEquals(1L, count())
        db.begin().use { tx ->
            assertFailsWith<LeaseException.Misuse> { tx.execute("COMMIT") }
            assertFailsWith<LeaseException.Misuse> { tx.execute("INSERT INTO t VALUES (2, 'late')") }
            assertFailsWith<LeaseException.Misuse> { tx.commit() }
        }
    }

    @Test
    fun `a commit that fails ends the transaction all the same`() {
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("CREATE TABLE child (parent INTEGER REFERENCES t (id) DEFERRABLE INITIALLY DEFERRED)")
        val tx = db.begin()
        tx.execute("INSERT INTO child VALUES (42)") // no such parent: refused only at the commit
        assertContains(assertFailsWith<LeaseException.Database> { tx.commit() }.detail, "FOREIGN KEY")
        assertTrue(tx.isClosed)
        tx.close() // touches nothing: the library freed it
        assertEquals(1L, db.execute("INSERT INTO t (v) VALUES ('the write lock is free')"))
        assertEquals(0L, db.queryFirst("SELECT count(*) FROM child")!!.getLong(0), "rolled back")
    }

    @Test
    fun `a chunked transaction commits when its chunk is due, and rolling back undoes the current chunk only`() {
        db.beginChunked(20.milliseconds).use { tx ->
            tx.execute("INSERT INTO t (v) VALUES ('chunk 1')")
            Thread.sleep(30)
            assertTrue(tx.maybeCommit(), "the chunk lasted its period")
            assertEquals(1L, count(), "a committed chunk is visible at once")
            tx.execute("INSERT INTO t (v) VALUES ('chunk 2')")
            assertFalse(tx.maybeCommit(), "not due yet")
            tx.rollback()
        }
        assertEquals(listOf("chunk 1"), db.query("SELECT v FROM t").map { it.getString(0) })
        db.begin().use { tx -> assertFalse(tx.maybeCommit(), "a plain transaction never commits here") }
        db.beginChunked().use { it.commit() } // LEASE_DEFAULT_CHUNK_MS: 0 is no default any more
        val zero = assertFailsWith<LeaseException.InvalidArgument> { db.beginChunked(Duration.ZERO) }
        assertContains(zero.detail, "lease_db_begin_chunked")
    }

    @Test
    fun `a fenced transaction writes while the lease is held, and needs the lease in the same file`() {
        val path = TestFiles.db("fenced")
        LeaseDatabase.open(path).use { shared ->
            LeaseStore.open(path).use { store ->
                store.lock("sync", "app").use { lock ->
                    lock.acquireBlocking(1.seconds).use { guard ->
                        shared.execute("CREATE TABLE work (what TEXT)")
                        shared.beginFenced(guard).use { tx ->
                            tx.execute("INSERT INTO work VALUES ('under the lease')")
                            tx.commit()
                        }
                        assertEquals(1, shared.query("SELECT * FROM work").size)
                        // This test's db is another file: the guard cannot fence it.
                        assertContains(
                            assertFailsWith<LeaseException.InvalidArgument> { db.beginFenced(guard) }.detail,
                            "lease_db_begin_fenced",
                        )
                    }
                }
            }
            LeaseStore.openInMemory().use { memory ->
                memory.lock("sync", "app").use { lock ->
                    lock.tryAcquire()!!.use { guard -> assertFailsWith<LeaseException.InvalidArgument> { shared.beginFenced(guard) } }
                }
            }
        }
    }

    @Test
    fun `an exception thrown by a row action stops the query and reaches the caller`() {
        repeat(3) { db.execute("INSERT INTO t (v) VALUES (?)", it) }
        var calls = 0
        val error = assertFailsWith<IllegalArgumentException> {
            db.forEachRow("SELECT v FROM t") {
                calls++
                throw IllegalArgumentException("from the row action")
            }
        }
        assertEquals("from the row action", error.message)
        assertEquals(1, calls)
        assertEquals(3L, count(), "the handle still works")
    }

    @Test
    fun `a row action may use liblease, but not query its own handle, and closing there is deferred`() {
        db.execute("INSERT INTO t (v) VALUES (1)")
        db.forEachRow("SELECT v FROM t") {
            db.execute("INSERT INTO t (v) VALUES ('written from a row action')")
        }
        assertEquals(2L, count())
        db.forEachRow("SELECT v FROM t") {
            assertFailsWith<LeaseException.Misuse> { db.query("SELECT 1") }
        }
        db.begin().use { tx ->
            tx.execute("INSERT INTO t (v) VALUES ('never committed')")
            tx.forEachRow("SELECT v FROM t LIMIT 1") {
                assertFailsWith<LeaseException.Misuse> { tx.execute("SELECT 1") }
                val early = assertFailsWith<LeaseException.Misuse> { tx.commit() }
                assertContains(early.detail, "lease_tx_commit: another call on this transaction is running")
                assertTrue(tx.isClosed, "a commit ends the transaction, whatever happens")
            }
            assertFailsWith<IllegalStateException> { tx.commit() }
        }
        assertEquals(2L, count(), "rolled back when the query returned")
        db.execute("INSERT INTO t (v) VALUES ('the write lock is free')") // would wait 5 s for the transaction
        val other = LeaseDatabase.open(TestFiles.db())
        other.execute("CREATE TABLE u (x)")
        other.execute("INSERT INTO u VALUES (1), (2)")
        var rows = 0
        other.forEachRow("SELECT x FROM u") {
            rows++
            other.close() // frees the handle only when the query returns
        }
        assertEquals(2, rows)
        assertTrue(other.isClosed)
        assertFailsWith<IllegalStateException> { other.query("SELECT 1") }
    }

    @Test
    fun `a write that cannot get its turn within the busy timeout is busy`() {
        val holder = Executors.newSingleThreadExecutor()
        val open = CountDownLatch(1)
        val done = CountDownLatch(1)
        val holding = holder.submit {
            db.begin().use { tx ->
                tx.execute("INSERT INTO t (v) VALUES ('held')")
                open.countDown()
                done.await(10, TimeUnit.SECONDS)
                tx.commit()
            }
        }
        assertTrue(open.await(5, TimeUnit.SECONDS))
        db.setBusyTimeout(Duration.ZERO)
        assertContains(assertFailsWith<LeaseException.Busy> { db.execute("INSERT INTO t (v) VALUES ('late')") }.detail, "lease_db_execute")
        db.setBusyTimeout(50.milliseconds)
        assertFailsWith<LeaseException.Busy> { db.begin() }
        assertEquals(0L, count(), "reads are not held up by the open transaction")
        done.countDown()
        holding.get(5, TimeUnit.SECONDS)
        holder.shutdown()
        db.setBusyTimeout(5.seconds)
        assertEquals(1L, db.execute("INSERT INTO t (v) VALUES ('now')"))
        assertEquals(2L, count())
    }

    @Test
    fun `threads writing at once through the queue all get in, and a transaction may move between threads`() {
        val pool = Executors.newFixedThreadPool(4)
        val jobs = (0 until 4).map { thread ->
            pool.submit {
                repeat(50) { i ->
                    if (i % 2 == 0) {
                        db.execute("INSERT INTO t (v) VALUES (?)", "$thread-$i")
                    } else {
                        db.transaction { tx -> tx.execute("INSERT INTO t (v) VALUES (?)", "$thread-$i") }
                    }
                }
            }
        }
        jobs.forEach { it.get(30, TimeUnit.SECONDS) }
        assertEquals(200L, count())

        val tx = db.begin()
        tx.execute("INSERT INTO t (v) VALUES ('moved')")
        pool.submit { tx.commit() }.get(5, TimeUnit.SECONDS)
        pool.shutdown()
        assertEquals(201L, count())
    }

    @Test
    fun `closed databases throw IllegalStateException, and a transaction outlives its database`() {
        val other = LeaseDatabase.open(TestFiles.db())
        other.execute("CREATE TABLE u (x)")
        val tx = other.begin()
        other.close()
        other.close()
        assertEquals("LeaseDatabase is closed", assertFailsWith<IllegalStateException> { other.execute("SELECT 1") }.message)
        assertFailsWith<IllegalStateException> { other.begin() }
        tx.execute("INSERT INTO u VALUES (1)")
        tx.commit()
        assertSame(true, tx.isClosed)
    }
}
