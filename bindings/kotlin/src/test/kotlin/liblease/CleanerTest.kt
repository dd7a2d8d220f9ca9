package liblease

import org.junit.jupiter.api.Test
import java.lang.ref.WeakReference
import kotlin.test.assertTrue

class CleanerTest {
    @Test
    fun `a forgotten guard is released once garbage-collected`() {
        LeaseStore.open(TestFiles.db()).use { store ->
            store.lock("sync", "app").use { lock ->
                forget(lock)
                // A held guard keeps the library's thread busy (shutdown is refused) ...
                assertTrue(!libraryIsIdle())
                // ... until the Cleaner has released the forgotten one.
                eventually("the forgotten guard is released") {
                    System.gc()
                    libraryIsIdle()
                }
            }
        }
    }

    @Test
    fun `forgotten stores and locks are freed without harm`() {
        repeat(50) {
            val store = LeaseStore.open(TestFiles.db())
            store.lock("k$it", "app")
        }
        repeat(5) {
            System.gc()
            Thread.sleep(20)
        }
        LeaseStore.open(TestFiles.db()).use { it.lock("k0", "app").use { lock -> lock.tryAcquire()!!.close() } }
    }

    @Test
    fun `a lost listener that refers to its own lock does not keep the lock reachable`() {
        LeaseStore.open(TestFiles.db()).use { store ->
            assertTrue(isCollected(forgetLockWithListenerOfItself(store)), "the lock is garbage, for its Cleaner to free")
        }
    }

    private fun forgetLockWithListenerOfItself(store: LeaseStore): WeakReference<LeaseLock> {
        val lock = store.lock("sync", "app")
        lock.setLostListener { lock.tryAcquire()?.close() } // a listener that takes the lease again
        return WeakReference(lock)
    }

    private fun forget(lock: LeaseLock) {
        lock.tryAcquire()!!.check()
    }
}
