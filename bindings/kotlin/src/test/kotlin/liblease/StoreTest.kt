package liblease

import org.junit.jupiter.api.Test
import java.io.File
import kotlin.io.path.writeText
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue

class StoreTest {
    @Test
    fun `a store opens a file, creating it`() {
        val path = TestFiles.db()
        LeaseStore.open(path).use { store -> assertFalse(store.isClosed) }
        assertTrue(File(path).exists())
    }

    @Test
    fun `an empty path is an invalid argument, with the library's message`() {
        val error = assertFailsWith<LeaseException.InvalidArgument> { LeaseStore.open("") }
        assertEquals(LeaseStatus.INVALID_ARGUMENT, error.status)
        assertContains(error.detail, "lease_store_open")
        assertContains(error.message!!, "LEASE_INVALID_ARGUMENT")
    }

    @Test
    fun `a NUL inside a string is refused before it reaches C`() {
        val error = assertFailsWith<LeaseException.InvalidArgument> { LeaseStore.open("${TestFiles.db()}\u0000tail") }
        assertContains(error.detail, "lease_store_open: path contains a NUL character")
    }

    @Test
    fun `a file that is not a database is a database error naming the file`() {
        val notADatabase = TestFiles.path("notes.txt")
        notADatabase.writeText("these are not the bytes of a database ".repeat(200))
        val error = assertFailsWith<LeaseException.Database> { LeaseStore.open(notADatabase.toString()) }
        assertContains(error.detail, "notes.txt")
    }

    @Test
    fun `a directory that does not exist is a database error`() {
        val error = assertFailsWith<LeaseException.Database> { LeaseStore.open(TestFiles.path("no/such/dir/x.db").toString()) }
        assertContains(error.detail, "x.db")
    }

    @Test
    fun `closing twice is harmless and a call after close throws IllegalStateException`() {
        val store = LeaseStore.openInMemory()
        store.close()
        store.close()
        assertTrue(store.isClosed)
        val error = assertFailsWith<IllegalStateException> { store.lock("k", "me") }
        assertEquals("LeaseStore is closed", error.message)
    }

    @Test
    fun `a lock keeps working after its store is closed`() {
        val lock = LeaseStore.open(TestFiles.db()).use { it.lock("sync", "app") }
        lock.use { lock.tryAcquire()!!.use { guard -> guard.check() } }
    }
}
