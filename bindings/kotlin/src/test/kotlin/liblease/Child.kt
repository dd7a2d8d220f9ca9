package liblease

import java.io.File
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread
import kotlin.test.fail

/** A running [ChildMain]: a second JVM that uses the same liblease. */
class Child private constructor(private val process: Process) : AutoCloseable {
    private val lines = LinkedBlockingQueue<String>()

    init {
        thread(isDaemon = true, name = "child-${process.pid()}-stdout") {
            process.inputStream.bufferedReader().forEachLine(lines::add)
        }
    }

    val pid: Long
        get() = process.pid()

    /** The next line the child reports; fails after [timeoutMs]. */
    fun read(timeoutMs: Long = 15_000): String =
        lines.poll(timeoutMs, TimeUnit.MILLISECONDS) ?: fail("no line from child $pid within $timeoutMs ms")

    /** Reads a line "WORD NUMBER" and returns NUMBER. */
    fun readNumber(word: String): Long {
        val line = read()
        val parts = line.split(" ")
        if (parts.size != 2 || parts[0] != word) fail("child $pid said \"$line\", expected \"$word N\"")
        return parts[1].toLong()
    }

    fun order(line: String) {
        process.outputStream.write("$line\n".toByteArray())
        process.outputStream.flush()
    }

    /** Kills the child with SIGKILL. */
    fun kill() {
        process.destroyForcibly()
        process.waitFor()
    }

    /** Waits for the child to exit and returns its exit code. */
    fun exitCode(timeoutMs: Long = 15_000): Int {
        if (!process.waitFor(timeoutMs, TimeUnit.MILLISECONDS)) {
            process.destroyForcibly()
            fail("child $pid did not exit")
        }
        return process.exitValue()
    }

    override fun close() {
        if (process.isAlive) process.destroyForcibly().waitFor()
    }

    companion object {
        /** Starts `ChildMain args...` in a new JVM with the same classpath, and so the same liblease. */
        fun start(vararg args: String): Child {
            val java = File(System.getProperty("java.home"), "bin/java").path
            val command = listOf(
                java,
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto",
                "-cp", System.getProperty("java.class.path"),
                ChildMain::class.java.name,
            ) + args
            val process = ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start()
            return Child(process)
        }

        /** What another process's try-acquire of [key] in [db] gives: LeaseStatus.OK or BUSY. */
        fun probe(db: String, key: String): Int = start("probe", db, key).use { child ->
            val status = child.readNumber("status").toInt()
            if (child.exitCode() != 0) fail("the probe failed")
            status
        }
    }
}
