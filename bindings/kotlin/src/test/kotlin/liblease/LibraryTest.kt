package liblease

import org.junit.jupiter.api.Test
import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertTrue
import kotlin.test.fail

class LibraryTest {
    @Test
    fun `the loaded library is the version of the header the binding was written for`() {
        assertEquals(LeaseLibrary.HEADER_VERSION, LeaseLibrary.version)
    }

    @Test
    fun `the constants copied from lease_h are the header's`() {
        val header = File(System.getProperty("liblease.header")).readText()
        fun define(name: String) = Regex("""#define $name (\S+)""").find(header)?.groupValues?.get(1) ?: fail("no $name")
        assertEquals("\"${LeaseLibrary.HEADER_VERSION}\"", define("LEASE_VERSION_STRING"))
        assertEquals(LeaseDatabase.DEFAULT_CHUNK.inWholeMilliseconds.toString(), define("LEASE_DEFAULT_CHUNK_MS"))
    }

    @Test
    fun `every status of lease_h has its constant here and an exception of its own`() {
        val header = File(System.getProperty("liblease.header")).readText()
        val enum = Regex("""typedef enum LeaseStatus \{(.*?)\} LeaseStatus;""", RegexOption.DOT_MATCHES_ALL)
            .find(header)?.groupValues?.get(1) ?: fail("no enum LeaseStatus in lease.h")
        val statuses = Regex("""LEASE_([A-Z_]+) = (\d+),""").findAll(enum).map { it.groupValues[1] to it.groupValues[2].toInt() }.toList()
        assertTrue(statuses.size > 9, "read ${statuses.size} statuses")
        for ((name, number) in statuses) {
            val constant = try {
                LeaseStatus::class.java.getField(name).getInt(null)
            } catch (_: NoSuchFieldException) {
                fail("LeaseStatus has no $name")
            }
            assertEquals(number, constant, "LeaseStatus.$name")
            if (number != LeaseStatus.OK) {
                // LEASE_INVALID_ARGUMENT is LeaseException.InvalidArgument, and so on.
                val type = name.lowercase().split('_').joinToString("") { it.replaceFirstChar(Char::uppercase) }
                assertEquals(type, LeaseException.of(number, "").javaClass.simpleName, "the exception of LEASE_$name")
            }
        }
    }

    @Test
    fun `the log levels are the header's LEASE_LOG constants, all of them`() {
        val header = File(System.getProperty("liblease.header")).readText()
        val defines = Regex("""#define LEASE_LOG_([A-Z]+) (\d+)""").findAll(header)
            .associate { it.groupValues[1] to it.groupValues[2].toInt() }
        assertEquals(defines, LeaseLogLevel.entries.associate { it.name to it.number })
        for ((name, number) in defines) assertEquals(LeaseLogLevel.valueOf(name), LeaseLogLevel.of(number))
    }

    @Test
    fun `every status has the library's description, unknown ones too`() {
        val names = listOf(
            "LEASE_OK", "LEASE_BUSY", "LEASE_TIMEOUT", "LEASE_LOST", "LEASE_INVALID_ARGUMENT",
            "LEASE_DATABASE", "LEASE_MISUSE", "LEASE_PANIC", "LEASE_CANCELLED", "LEASE_SUSPENDED",
        )
        names.forEachIndexed { status, name ->
            assertTrue(LeaseStatus.describe(status).startsWith(name), LeaseStatus.describe(status))
        }
        assertEquals("unknown LeaseStatus", LeaseStatus.describe(100))
        assertEquals("unknown LeaseStatus", LeaseStatus.describe(-1)) // 0xffffffff
    }

    @Test
    fun `statuses become the matching exception, carrying status and message`() {
        val expected = mapOf(
            LeaseStatus.BUSY to LeaseException.Busy::class,
            LeaseStatus.TIMEOUT to LeaseException.Timeout::class,
            LeaseStatus.LOST to LeaseException.Lost::class,
            LeaseStatus.INVALID_ARGUMENT to LeaseException.InvalidArgument::class,
            LeaseStatus.DATABASE to LeaseException.Database::class,
            LeaseStatus.MISUSE to LeaseException.Misuse::class,
            LeaseStatus.PANIC to LeaseException.Panic::class,
            LeaseStatus.CANCELLED to LeaseException.Cancelled::class,
            LeaseStatus.SUSPENDED to LeaseException.Suspended::class,
            42 to LeaseException.Unknown::class,
        )
        for ((status, type) in expected) {
            val error = LeaseException.of(status, "lease_something: what happened")
            assertEquals(type, error::class)
            assertEquals(status, error.status)
            assertEquals("lease_something: what happened", error.detail)
            assertEquals("${LeaseStatus.describe(status)}: lease_something: what happened", error.message)
        }
        assertIs<LeaseException.Unknown>(LeaseException.of(42, ""))
    }

    @Test
    fun `shutdown stops an idle library and a later call starts it again`() {
        LeaseLibrary.shutdown()
        LeaseLibrary.shutdown() // nothing running: does nothing
        LeaseStore.openInMemory().use { store ->
            store.lock("k", "me").use { lock ->
                lock.tryAcquire()!!.use { assertTrue(it.isHeld) }
            }
        }
        eventually("the library is idle again") { libraryIsIdle() }
    }
}
