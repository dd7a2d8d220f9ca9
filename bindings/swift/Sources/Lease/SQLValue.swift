import CLease
import Foundation

/// One SQL value: a statement's parameter or a column of a result row. Literals work as
/// parameters: `try db.execute("INSERT INTO t VALUES (?, ?, ?)", 1, "two", nil)`.
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    /// UTF-8 text; it may hold NUL characters.
    case text(String)
    case blob(Data)

    /// The value as an integer, if it is one.
    public var int64: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The value as a double, if it is a real or an integer.
    public var double: Double? {
        switch self {
        case .real(let value): return value
        case .integer(let value): return Double(value)
        default: return nil
        }
    }

    /// The value as text, if it is text.
    public var string: String? {
        if case .text(let value) = self { return value }
        return nil
    }

    /// The value as bytes, if it is a blob.
    public var data: Data? {
        if case .blob(let value) = self { return value }
        return nil
    }

    public var isNull: Bool { self == .null }
}

extension SQLValue: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral
{
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .real(value) }
    public init(stringLiteral value: String) { self = .text(value) }
    /// true is 1 and false is 0, as SQLite stores booleans.
    public init(booleanLiteral value: Bool) { self = .integer(value ? 1 : 0) }
    public init(nilLiteral: ()) { self = .null }
}

extension SQLValue {
    public init(_ value: Int) { self = .integer(Int64(value)) }
    public init(_ value: Int64) { self = .integer(value) }
    public init(_ value: Double) { self = .real(value) }
    public init(_ value: String) { self = .text(value) }
    public init(_ value: Data) { self = .blob(value) }
    public init(_ value: Bool) { self = .integer(value ? 1 : 0) }

    /// Copies a column handed to a row callback: its data is valid only during the callback.
    init(column value: LeaseValue) {
        switch value.kind {
        case UInt32(LEASE_VALUE_INTEGER):
            self = .integer(value.integer)
        case UInt32(LEASE_VALUE_REAL):
            self = .real(value.real)
        case UInt32(LEASE_VALUE_TEXT):
            self = .text(String(decoding: UnsafeBufferPointer(start: value.data, count: value.len), as: UTF8.self))
        case UInt32(LEASE_VALUE_BLOB):
            self = .blob(value.len == 0 ? Data() : Data(bytes: value.data, count: value.len))
        default:
            self = .null
        }
    }
}

/// Calls `body` with `parameters` as an array of `LeaseValue` (and its count), whose text and blob
/// bytes stay valid for the call.
func withNativeValues<Result>(
    _ parameters: [SQLValue],
    _ body: (UnsafePointer<LeaseValue>?, Int) throws -> Result
) throws -> Result {
    // Every text and blob, end to end in one buffer; each value points into it.
    var bytes: [UInt8] = []
    for parameter in parameters {
        switch parameter {
        case .text(let text): bytes.append(contentsOf: text.utf8)
        case .blob(let data): bytes.append(contentsOf: data)
        default: break
        }
    }
    return try bytes.withUnsafeBufferPointer { buffer -> Result in
        var values: [LeaseValue] = []
        values.reserveCapacity(parameters.count)
        var offset = 0
        func slice(_ count: Int) -> UnsafePointer<UInt8>? {
            defer { offset += count }
            return count == 0 ? nil : buffer.baseAddress! + offset
        }
        for parameter in parameters {
            var value = LeaseValue()
            switch parameter {
            case .null:
                value.kind = UInt32(LEASE_VALUE_NULL)
            case .integer(let integer):
                value.kind = UInt32(LEASE_VALUE_INTEGER)
                value.integer = integer
            case .real(let real):
                value.kind = UInt32(LEASE_VALUE_REAL)
                value.real = real
            case .text(let text):
                let count = text.utf8.count
                value.kind = UInt32(LEASE_VALUE_TEXT)
                value.data = slice(count)
                value.len = count
            case .blob(let data):
                value.kind = UInt32(LEASE_VALUE_BLOB)
                value.data = slice(data.count)
                value.len = data.count
            }
            values.append(value)
        }
        return try values.withUnsafeBufferPointer { array in
            try body(array.baseAddress, array.count)
        }
    }
}

/// Where the rows of one query go: the row callback finds it through its context.
final class RowSink {
    let onRow: ([SQLValue]) throws -> Bool
    /// What onRow threw: it must not unwind into C, so the query stops and it is rethrown after.
    var failure: Error?

    init(_ onRow: @escaping ([SQLValue]) throws -> Bool) {
        self.onRow = onRow
    }
}

/// `LeaseRowCallback`, on the querying thread during the query.
private func rowCallback(context: UnsafeMutableRawPointer?, columns: UnsafePointer<LeaseValue>?, count: Int) -> Int32 {
    guard let context else { return 1 }
    let sink = Unmanaged<RowSink>.fromOpaque(context).takeUnretainedValue()
    var row: [SQLValue] = []
    row.reserveCapacity(count)
    if let columns {
        for index in 0..<count {
            row.append(SQLValue(column: columns[index]))
        }
    }
    do {
        return try sink.onRow(row) ? 0 : 1
    } catch {
        sink.failure = error
        return 1
    }
}

/// The signature of `lease_db_query` and `lease_tx_query` past their handle.
typealias QueryFunction = (
    UnsafePointer<CChar>, UnsafePointer<LeaseValue>?, Int, LeaseRowCallback, UnsafeMutableRawPointer
) -> LeaseStatus

/// Runs a query, handing each row to `onRow` until it returns false.
func runQuery(
    _ function: String, _ sql: String, _ parameters: [SQLValue],
    onRow: ([SQLValue]) throws -> Bool,
    query: QueryFunction
) throws {
    try withoutActuallyEscaping(onRow) { onRow in
        let sink = RowSink(onRow)
        try withCheckedCString(sql, "sql", in: function) { cSql in
            try withNativeValues(parameters) { values, count in
                let status = withExtendedLifetime(sink) {
                    query(cSql, values, count, rowCallback, Unmanaged.passUnretained(sink).toOpaque())
                }
                if let failure = sink.failure {
                    throw failure
                }
                try throwIfFailed(status)
            }
        }
    }
}

/// The signature of `lease_db_execute` and `lease_tx_execute` past their handle; it throws when the
/// handle cannot be used.
typealias ExecuteFunction = (
    UnsafePointer<CChar>, UnsafePointer<LeaseValue>?, Int, UnsafeMutablePointer<UInt64>
) throws -> LeaseStatus

/// Runs one statement and returns SQLite's count of changed rows.
func runExecute(_ function: String, _ sql: String, _ parameters: [SQLValue], execute: ExecuteFunction) throws -> Int {
    var changes: UInt64 = 0
    try withCheckedCString(sql, "sql", in: function) { cSql in
        try withNativeValues(parameters) { values, count in
            try throwIfFailed(execute(cSql, values, count, &changes))
        }
    }
    return Int(clamping: changes)
}

/// A handle's way of running a query: it hands each row to its last argument until that returns
/// false (`rows` of `LeaseDatabase` and of `LeaseTransaction`).
typealias RowsFunction = (String, [SQLValue], ([SQLValue]) throws -> Bool) throws -> Void

/// Every row of a query.
func allRows(_ rows: RowsFunction, _ sql: String, _ parameters: [SQLValue]) throws -> [[SQLValue]] {
    var all: [[SQLValue]] = []
    try eachRow(rows, sql, parameters) { all.append($0) }
    return all
}

/// The first row of a query, or nil; the rest are not read.
func firstRow(_ rows: RowsFunction, _ sql: String, _ parameters: [SQLValue]) throws -> [SQLValue]? {
    var first: [SQLValue]?
    try rows(sql, parameters) { row in
        first = row
        return false
    }
    return first
}

/// Hands each row of a query to `body` as it is read.
func eachRow(
    _ rows: RowsFunction, _ sql: String, _ parameters: [SQLValue], _ body: ([SQLValue]) throws -> Void
) throws {
    try rows(sql, parameters) { row in
        try body(row)
        return true
    }
}
