package liblease

import com.sun.jna.Platform
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.condition.EnabledOnOs
import org.junit.jupiter.api.condition.OS
import java.io.File
import java.net.JarURLConnection
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertNotEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail

/**
 * The suite runs against the jar that `mvn verify` packaged: Failsafe puts that jar, not
 * target/classes, on the classpath, and sets no jna.library.path. These tests show that the liblease
 * every test uses is the one the jar carries, extracted by JNA, and not the build it was copied from
 * (liblease.dir) nor any other liblease of the system.
 */
class BundledLibraryTest {
    private val resource = "${Platform.RESOURCE_PREFIX}/${System.mapLibraryName("lease")}"

    /** The jar that the binding's classes were loaded from. */
    private val bindingJar: File
        get() = File(LeaseNative::class.java.protectionDomain.codeSource.location.toURI())

    @Test
    fun `the binding's classes come from the packaged jar`() {
        assertTrue(bindingJar.isFile && bindingJar.name.endsWith(".jar"), "$bindingJar")
    }

    @Test
    fun `that jar carries liblease under JNA's prefix for this platform`() {
        val url = LeaseNative::class.java.classLoader.getResource(resource) ?: fail("no $resource on the classpath")
        assertEquals("jar", url.protocol, "$url")
        assertEquals(bindingJar.canonicalFile, File((url.openConnection() as JarURLConnection).jarFileURL.toURI()).canonicalFile)
    }

    @Test
    fun `the library loaded is the jar's, extracted by JNA, and not the one it was packaged from`() {
        assertNull(System.getProperty("jna.library.path"), "the tests must not point JNA at a directory")
        assertNull(System.getProperty("liblease.library"))
        val loaded = LeaseNative.library.file.canonicalFile
        val packaged = File(System.getProperty("liblease.packaged.dir"), System.mapLibraryName("lease")).canonicalFile
        assertNotEquals(packaged.parentFile, loaded.parentFile, "loaded $loaded")
        assertTrue(loaded.name.startsWith("jna"), "not a file that JNA extracted: $loaded")
        val bytes = LeaseNative::class.java.classLoader.getResourceAsStream(resource)!!.use { it.readBytes() }
        assertContentEquals(bytes, loaded.readBytes(), "$loaded is not the jar's $resource")
        assertContentEquals(packaged.readBytes(), bytes, "the jar's $resource is not $packaged")
        assertEquals(LeaseLibrary.HEADER_VERSION, LeaseLibrary.version)
    }

    @Test
    @EnabledOnOs(OS.LINUX)
    fun `the process maps the extracted file, and no file named liblease`() {
        LeaseLibrary.version // loaded
        val files = File("/proc/self/maps").readLines().mapNotNull { it.trim().split(Regex("\\s+"), limit = 6).getOrNull(5) }.toSet()
        assertTrue(LeaseNative.library.file.canonicalPath in files, "${LeaseNative.library.file} is not mapped")
        assertEquals(emptyList(), files.filter { File(it).name.startsWith("liblease") })
    }
}
