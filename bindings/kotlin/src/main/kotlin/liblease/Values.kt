package liblease

import com.sun.jna.Memory
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.Structure

/**
 * `LeaseValue`, the C layout of one SQL value. Only its layout is used: values are written and
 * read at these offsets directly, which is much cheaper than a JNA Structure per value.
 */
@Structure.FieldOrder("kind", "integer", "real", "data", "len")
internal class NativeValue : Structure() {
    @JvmField var kind: Int = 0
    @JvmField var integer: Long = 0
    @JvmField var real: Double = 0.0
    @JvmField var data: Pointer? = null
    @JvmField var len: SizeT = SizeT()

    private fun offsetOf(field: String) = fieldOffset(field).toLong()

    companion object Layout {
        const val NULL = 0
        const val INTEGER = 1
        const val REAL = 2
        const val TEXT = 3
        const val BLOB = 4

        private val sample = NativeValue()
        val SIZE = sample.size().toLong()
        val KIND = sample.offsetOf("kind")
        val INTEGER_AT = sample.offsetOf("integer")
        val REAL_AT = sample.offsetOf("real")
        val DATA = sample.offsetOf("data")
        val LEN = sample.offsetOf("len")

        fun Pointer.getSize(offset: Long): Long =
            if (Native.SIZE_T_SIZE == 8) getLong(offset) else getInt(offset).toUInt().toLong()

        fun Pointer.setSize(offset: Long, value: Long) =
            if (Native.SIZE_T_SIZE == 8) setLong(offset, value) else setInt(offset, value.toInt())
    }
}

/**
 * Statement parameters as an array of `LeaseValue` in native memory, for the length of one call.
 *
 * Kotlin values map to SQL ones: null is NULL; Long, Int, Short, Byte and Boolean (1 or 0) are
 * INTEGER; Double and Float are REAL; String is TEXT; ByteArray is BLOB.
 */
internal class NativeParams(params: Array<out Any?>, function: String) : AutoCloseable {
    private val values: Memory?
    private val bytes: Memory?
    val count = SizeT(params.size.toLong())

    /** The array to pass (NULL when there are no parameters). */
    val pointer: Pointer?
        get() = values

    init {
        val encoded = params.mapIndexed { i, value ->
            when (value) {
                null, is Long, is Int, is Short, is Byte, is Boolean, is Double, is Float -> null
                is String -> value.toByteArray(Charsets.UTF_8)
                is ByteArray -> value
                else -> throw LeaseException.InvalidArgument(
                    "$function: params[$i] is a ${value.javaClass.name}; " +
                        "use Long, Int, Double, String, ByteArray, Boolean or null",
                )
            }
        }
        val total = encoded.sumOf { it?.size?.toLong() ?: 0L }
        bytes = if (total > 0) Memory(total) else null
        values = if (params.isNotEmpty()) Memory(NativeValue.SIZE * params.size) else null
        var at = 0L
        params.forEachIndexed { i, value ->
            val slot = values!!.share(i * NativeValue.SIZE, NativeValue.SIZE)
            slot.clear(NativeValue.SIZE)
            val kind = when (value) {
                null -> NativeValue.NULL
                is Long, is Int, is Short, is Byte -> {
                    slot.setLong(NativeValue.INTEGER_AT, (value as Number).toLong())
                    NativeValue.INTEGER
                }
                is Boolean -> {
                    slot.setLong(NativeValue.INTEGER_AT, if (value) 1 else 0)
                    NativeValue.INTEGER
                }
                is Double, is Float -> {
                    slot.setDouble(NativeValue.REAL_AT, (value as Number).toDouble())
                    NativeValue.REAL
                }
                else -> {
                    val data = encoded[i]!!
                    if (data.isNotEmpty()) {
                        bytes!!.write(at, data, 0, data.size)
                        slot.setPointer(NativeValue.DATA, bytes.share(at))
                        at += data.size
                    }
                    with(NativeValue) { slot.setSize(LEN, data.size.toLong()) }
                    if (value is String) NativeValue.TEXT else NativeValue.BLOB
                }
            }
            slot.setInt(NativeValue.KIND, kind)
        }
    }

    /** Frees the native memory now rather than when it is collected. */
    override fun close() {
        values?.close()
        bytes?.close()
    }
}

/**
 * One result row, copied out of the library: each column is null, a Long, a Double, a String or a
 * ByteArray, as SQLite stored it (a TEXT that is not valid UTF-8 arrives as a ByteArray).
 */
class Row internal constructor(private val columns: Array<Any?>) {
    val size: Int
        get() = columns.size

    operator fun get(index: Int): Any? = columns[index]

    fun isNull(index: Int): Boolean = columns[index] == null

    fun getLong(index: Int): Long = column<Long>(index)
    fun getDouble(index: Int): Double = columns[index].let { if (it is Long) it.toDouble() else column<Double>(index) }
    fun getString(index: Int): String = column<String>(index)
    fun getBytes(index: Int): ByteArray = column<ByteArray>(index)

    fun toList(): List<Any?> = columns.toList()

    override fun toString() = columns.joinToString(prefix = "Row(", postfix = ")") {
        if (it is ByteArray) "ByteArray(${it.size})" else it.toString()
    }

    private inline fun <reified T> column(index: Int): T = when (val value = columns[index]) {
        is T -> value
        else -> throw IllegalStateException(
            "column $index is ${value?.javaClass?.simpleName ?: "NULL"}, not ${T::class.java.simpleName}",
        )
    }

    internal companion object {
        /** Copies [count] `LeaseValue`s at [columns]: they are valid only during the callback. */
        fun read(columns: Pointer?, count: Long): Row = Row(
            Array(count.toInt()) { i ->
                val value = columns!!.share(i * NativeValue.SIZE)
                when (value.getInt(NativeValue.KIND)) {
                    NativeValue.INTEGER -> value.getLong(NativeValue.INTEGER_AT)
                    NativeValue.REAL -> value.getDouble(NativeValue.REAL_AT)
                    NativeValue.TEXT -> String(bytesOf(value), Charsets.UTF_8)
                    NativeValue.BLOB -> bytesOf(value)
                    else -> null
                }
            },
        )

        private fun bytesOf(value: Pointer): ByteArray {
            val len = with(NativeValue) { value.getSize(LEN) }
            return if (len == 0L) ByteArray(0) else value.getPointer(NativeValue.DATA).getByteArray(0, len.toInt())
        }
    }
}

/**
 * Where the rows of one query go. The row callback below is one object for every query; the
 * query's context number finds its sink.
 */
internal class RowSink(private val onRow: (Row) -> Boolean) {
    /** What onRow threw: it must not unwind into C, so the query stops and it is rethrown after. */
    var failure: Throwable? = null

    fun accept(columns: Pointer?, count: Long): Int = try {
        if (onRow(Row.read(columns, count))) 0 else 1
    } catch (error: Throwable) {
        failure = error
        1
    }

    companion object {
        val sinks = ContextTable<RowSink>()

        /** `LeaseRowCallback`; runs on the querying thread, during the query. */
        val callback = RowCallback { context, columns, count ->
            sinks[context]?.accept(columns, count.toLong()) ?: 1
        }

        /** Runs [query] with a context that leads the row callback to [onRow]. */
        inline fun run(noinline onRow: (Row) -> Boolean, query: (Pointer) -> Int) {
            val sink = RowSink(onRow)
            val context = sinks.add(sink)
            try {
                val status = query(context)
                sink.failure?.let { throw it }
                checkStatus(status)
            } finally {
                sinks.remove(context)
            }
        }
    }
}

/**
 * The SQL calls of a handle that runs statements, a database or a transaction: they marshal the
 * SQL, the parameters and the rows, so that the handle's class says only which native functions it
 * calls. [nativeExecute] and [nativeQuery] are `lease_<handle>_execute` and `lease_<handle>_query`,
 * named by [executeName] and [queryName] in error messages.
 */
internal class Statements(
    private val handle: NativeHandle,
    private val executeName: String,
    private val nativeExecute: (Pointer, ByteArray, Pointer?, SizeT, LongArray) -> Int,
    private val queryName: String,
    private val nativeQuery: (Pointer, ByteArray, Pointer?, SizeT, RowCallback, Pointer?) -> Int,
) {
    fun execute(sql: String, params: Array<out Any?>): Long {
        val cSql = sql.toCString("sql", executeName)
        val changes = LongArray(1)
        NativeParams(params, executeName).use { values ->
            handle.use { pointer ->
                checkStatus(nativeExecute(pointer, cSql, values.pointer, values.count, changes))
            }
        }
        return changes[0]
    }

    fun query(sql: String, params: Array<out Any?>): List<Row> {
        val rows = ArrayList<Row>()
        forEachRow(sql, params) { rows.add(it) }
        return rows
    }

    fun queryFirst(sql: String, params: Array<out Any?>): Row? {
        var first: Row? = null
        rows(sql, params) { row ->
            first = row
            false
        }
        return first
    }

    fun forEachRow(sql: String, params: Array<out Any?>, action: (Row) -> Unit) = rows(sql, params) { row ->
        action(row)
        true
    }

    private fun rows(sql: String, params: Array<out Any?>, onRow: (Row) -> Boolean) {
        val cSql = sql.toCString("sql", queryName)
        NativeParams(params, queryName).use { values ->
            handle.use { pointer ->
                RowSink.run(onRow) { context ->
                    nativeQuery(pointer, cSql, values.pointer, values.count, RowSink.callback, context)
                }
            }
        }
    }
}
