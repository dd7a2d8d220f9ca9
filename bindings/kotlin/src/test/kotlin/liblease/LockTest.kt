package liblease

import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import java.lang.ref.WeakReference
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlin.time.Duration
import kotlin.time.Duration.Companion.days
import kotlin.time.Duration.Companion.hours
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

class LockTest {
    @AfterEach
    fun nothingLeftHeld() = eventually("every guard is released") { libraryIsIdle() }

    @Test
    fun `the default options are the library's`() {
        assertEquals(LockOptions(10.seconds, 5.seconds, 250.milliseconds), LockOptions())
    }

    @Test
    fun `zero, contradictory and too long options are invalid arguments`() {
        val bad = listOf(
            LockOptions(lease = Duration.ZERO),
            LockOptions(renewEvery = Duration.ZERO),
            LockOptions(maxBackoff = Duration.ZERO),
            LockOptions(lease = 2.seconds, renewEvery = 1001.milliseconds), // renewal too late
            LockOptions(lease = 1.days + 1.milliseconds),
            LockOptions(lease = (-1).seconds),
        )
        LeaseStore.openInMemory().use { store ->
            for (options in bad) {
                val error = assertFailsWith<LeaseException.InvalidArgument>(options.toString()) {
                    store.lock("k", "me", options)
                }
                assertContains(error.detail, "lease_lock_new")
            }
            store.lock("k", "me", LockOptions(lease = 1.days, renewEvery = 12.hours)).close()
        }
    }

    @Test
    fun `an empty key is an invalid argument`() {
        LeaseStore.openInMemory().use { store ->
            val error = assertFailsWith<LeaseException.InvalidArgument> { store.lock("", "me") }
            assertContains(error.detail, "lease_lock_new")
            assertFailsWith<LeaseException.InvalidArgument> { store.lock("a\u0000b", "me") }
            assertFailsWith<LeaseException.InvalidArgument> { store.lock("k", "a\u0000b") }
        }
    }

    @Test
    fun `try-acquire, re-entrance, dirtiness, generation, check and release`() {
        LeaseStore.open(TestFiles.db()).use { store ->
            val lock = store.lock("sync", "app")
            val other = store.lock("sync", "app-again")
            lock.use {
                val first = assertNotNull(lock.tryAcquire())
                assertTrue(first.isDirty, "the first acquisition in a process is dirty")
                assertTrue(first.generation > 0)
                first.check()
                assertTrue(first.isHeld)

                // Re-entrant: any lock of the same key in this process gets it at once, clean.
                val second = assertNotNull(other.tryAcquire())
                assertFalse(second.isDirty)
                assertEquals(first.generation, second.generation)
                val third = other.acquireBlocking(Duration.ZERO)
                assertEquals(first.generation, third.generation)
                val generation = first.generation
                first.release()
                second.close()
                third.close()

                // Nobody else took it since: the next hold is clean, in the same generation.
                lock.acquireBlocking(1.seconds).use { again ->
                    assertFalse(again.isDirty)
                    assertEquals(generation, again.generation)
                }
            }
            other.close()
        }
    }

    @Test
    fun `different keys are different leases`() {
        LeaseStore.open(TestFiles.db()).use { store ->
            store.lock("a", "app").use { a ->
                store.lock("b", "app").use { b ->
                    a.tryAcquire()!!.use { ga -> b.tryAcquire()!!.use { gb -> assertTrue(ga.isHeld && gb.isHeld) } }
                }
            }
        }
    }

    @Test
    fun `closed locks and guards throw IllegalStateException, and close twice harmlessly`() {
        LeaseStore.openInMemory().use { store ->
            val lock = store.lock("k", "me")
            val guard = lock.tryAcquire()!!
            lock.close()
            lock.close()
            assertTrue(lock.isClosed)
            assertEquals("LeaseLock is closed", assertFailsWith<IllegalStateException> { lock.tryAcquire() }.message)
            assertFailsWith<IllegalStateException> { lock.acquireBlocking(1.seconds) }
            assertFailsWith<IllegalStateException> { lock.setLostListener {} }

            // The guard outlives its lock.
            guard.check()
            guard.close()
            guard.close()
            guard.release()
            assertTrue(guard.isClosed)
            assertEquals("LeaseGuard is closed", assertFailsWith<IllegalStateException> { guard.generation }.message)
            assertFailsWith<IllegalStateException> { guard.isDirty }
            assertFailsWith<IllegalStateException> { guard.check() }
            assertFailsWith<IllegalStateException> { guard.isHeld }
        }
    }

    @Test
    fun `the label names this process in the lease row`() {
        val path = TestFiles.db()
        LeaseStore.open(path).use { store ->
            store.lock("sync", label = "share-extension").use { lock ->
                lock.tryAcquire()!!.use {
                    LeaseDatabase.open(path).use { db ->
                        val row = db.queryFirst("SELECT label FROM liblease_lease WHERE key = ?", "sync")!!
                        assertEquals("share-extension", row.getString(0))
                    }
                }
            }
            val error = assertFailsWith<LeaseException.InvalidArgument> { store.lock("k", label = "a\u0000b") }
            assertContains(error.detail, "lease_lock_new: label contains a NUL character")
        }
    }

    @Test
    fun `a replaced or removed lost listener is let go, and the current one is kept until the lock is closed`() {
        LeaseStore.openInMemory().use { store ->
            val lock = store.lock("k", "me")
            val first = setNewListener(lock)
            val second = setNewListener(lock)
            assertTrue(isCollected(first), "replaced: the library's destroy callback let it go")
            assertFalse(isCollected(second), "the current listener is kept while the library may call it")
            lock.setLostListener(null)
            assertTrue(isCollected(second), "removed")
            val third = setNewListener(lock)
            lock.close()
            assertTrue(isCollected(third), "its lock closed")
        }
    }

    /** Sets a new listener and keeps only a weak reference to it. */
    private fun setNewListener(lock: LeaseLock): WeakReference<(String) -> Unit> {
        val heard = mutableListOf<String>()
        val listener: (String) -> Unit = { key -> heard.add(key) } // captures: a new object each time
        lock.setLostListener(listener)
        return WeakReference(listener)
    }

    @Test
    fun `lost listeners can be set, replaced and removed`() {
        LeaseStore.openInMemory().use { store ->
            store.lock("k", "me").use { lock ->
                lock.setLostListener { }
                lock.setLostListener { }
                lock.setLostListener(null)
                lock.setLostListener(null)
                lock.setLostListener { }
            }
        }
    }
}
