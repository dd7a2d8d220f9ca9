package liblease

import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertTimeoutPreemptively
import org.junit.jupiter.api.Test
import java.time.Duration
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertSame
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds

/** LeaseDatabase.migrate, over lease_db_migrate; several migrating processes are ChildMain's migrate role. */
class MigrateTest {
    private val path: String = TestFiles.db("migrate")
    private val db: LeaseDatabase = LeaseDatabase.open(path)

    @AfterEach
    fun closeAll() {
        db.close()
    }

    private fun version() = db.queryFirst("PRAGMA user_version")!!.getLong(0)

    private fun tables() = db.query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'liblease%' ORDER BY name")
        .map { it.getString(0) }

    @Test
    fun `four processes migrating a fresh file at once run each step once, and all succeed`() {
        val children = (1..4).map { Child.start("migrate", path, "3", "200") }
        try {
            children.forEach { assertEquals("ready", it.read()) }
            children.forEach { it.order("go") }
            children.forEach { assertEquals(3L, it.readNumber("migrated")) }
            children.forEach { assertEquals(0, it.exitCode()) }
        } finally {
            children.forEach(Child::close)
        }
        assertEquals(3L, version())
        val steps = db.query("SELECT version, pid FROM migration_steps ORDER BY version")
        assertEquals(listOf(1L, 2L, 3L), steps.map { it.getLong(0) }, "each step once")
        val pids = children.map { it.pid }.toSet()
        assertTrue(steps.all { it.getLong(1) in pids }, "run by the children: $steps")
    }

    @Test
    fun `a step that throws is rolled back, and its exception is rethrown naming the version`() {
        val failure = IllegalStateException("step 2 failed")
        val thrown = assertFailsWith<IllegalStateException> {
            db.migrate(3) { tx, version ->
                tx.execute("CREATE TABLE t$version (x)")
                if (version == 2) throw failure
            }
        }
        assertSame(failure, thrown, "the step's own exception")
        assertEquals("step 2 failed", thrown.message)
        val account = assertIs<LeaseException>(thrown.suppressed.single())
        assertContains(account.detail, "migrating to version 2 (the file stays at 1)")
        assertEquals(1L, version())
        assertEquals(listOf("t1"), tables(), "step 2's table was rolled back")

        // A LeaseException of the step is the status the step returns; the next run starts at 2.
        val sql = assertFailsWith<LeaseException.Database> {
            db.migrate(3) { tx, version -> tx.execute(if (version == 3) "CREAT TABLE t3 (x)" else "CREATE TABLE t$version (x)") }
        }
        assertContains(sql.detail, "syntax error")
        assertIs<LeaseException.Database>(sql.suppressed.single())
        assertContains((sql.suppressed.single() as LeaseException).detail, "migrating to version 3 (the file stays at 2)")
        assertEquals(2L, version())
        assertEquals(listOf("t1", "t2"), tables())

        val steps = mutableListOf<Int>()
        db.migrate(3) { tx, version ->
            steps.add(version)
            tx.execute("CREATE TABLE t$version (x)")
        }
        assertEquals(listOf(3), steps)
        assertEquals(3L, version())
    }

    @Test
    fun `a file migrated by a newer program is refused, naming both versions`() {
        Child.start("migrate", path, "5", "0").use { newer ->
            assertEquals("ready", newer.read())
            newer.order("go")
            assertEquals(5L, newer.readNumber("migrated"))
            assertEquals(0, newer.exitCode())
        }
        var called = false
        val error = assertFailsWith<LeaseException.Database> { db.migrate(3) { _, _ -> called = true } }
        assertContains(error.detail, "version 5")
        assertContains(error.detail, "3")
        assertFalse(called)
        assertEquals(5L, version())
    }

    @Test
    fun `a file at the target calls no step and is not written`() {
        db.migrate(2) { tx, version -> tx.execute("CREATE TABLE t$version (x)") }
        assertEquals(2L, version())
        val before = db.queryFirst("PRAGMA data_version")!!.getLong(0)
        var called = false
        db.migrate(2) { _, _ -> called = true }
        assertFalse(called, "no step for a file at its target")
        assertEquals(before, db.queryFirst("PRAGMA data_version")!!.getLong(0), "no connection wrote the file")
        assertEquals(listOf("t1", "t2"), tables())
    }

    @Test
    fun `the step's transaction is migrate's - ending it throws and leaves it open, the migration completes, and it dies with the step`() {
        var kept: LeaseTransaction? = null
        db.migrate(1, timeout = 10.seconds) { tx, _ ->
            tx.execute("CREATE TABLE t (x)")
            val commit = assertFailsWith<LeaseException.Misuse> { tx.commit() }
            assertContains(commit.detail, "lease_tx_commit")
            assertContains(commit.detail, "LeaseDatabase.migrate")
            assertFailsWith<LeaseException.Misuse> { tx.rollback() }
            assertFailsWith<LeaseException.Misuse> { tx.close() }
            assertFalse(tx.isClosed)
            tx.execute("INSERT INTO t VALUES ('after the attempts')") // still open
            kept = tx
        }
        assertEquals(1L, version())
        assertEquals(listOf("after the attempts"), db.query("SELECT x FROM t").map { it.getString(0) })

        val tx = kept!!
        assertTrue(tx.isClosed, "the step returned")
        assertContains(assertFailsWith<IllegalStateException> { tx.execute("SELECT 1") }.message!!, "is closed")
        assertFailsWith<IllegalStateException> { tx.commit() }
        assertFailsWith<IllegalStateException> { tx.close() }
        repeat(3) { System.gc() } // no Cleaner of its own frees the library's transaction again
        db.execute("INSERT INTO t VALUES ('the write lock is free')")
    }

    @Test
    fun `a negative target is an invalid argument`() {
        // Passed on as a uint32_t, -1 would make the library migrate towards version 4294967295.
        assertTimeoutPreemptively(Duration.ofSeconds(10)) {
            assertFailsWith<LeaseException.InvalidArgument> { db.migrate(-1) { _, _ -> } }
        }
        assertEquals(0L, version())
    }
}
