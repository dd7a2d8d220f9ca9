package liblease

import org.junit.jupiter.api.Test
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

    private fun forget(lock: LeaseLock) {
        lock.tryAcquire()!!.check()
    }
}
