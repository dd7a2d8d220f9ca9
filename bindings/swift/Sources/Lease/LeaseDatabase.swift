import CLease
import Foundation

/// A connection to a shared SQLite database file (WAL mode) for the application's own SQL,
/// normally the file its lease stores use too. Freed with its last reference; transactions begun
/// through it stay usable.
///
/// Thread-safe, so `Sendable`: the header allows several threads to use a `LeaseDb` at once, and
/// the Swift side holds nothing but the handle.
///
/// Every write of this process to the file goes through one writer queue, first come, first
/// served, and takes turns fairly with the other processes that use liblease: `execute` for one
/// statement, `begin()` for a transaction, `beginChunked(chunk:)` for a long job,
/// `beginFenced(_:)` for writes that must happen only while a lease is held. Reads (`query`) use a
/// connection of their own and never wait for writers. `changes()` (or `observe(_:)`) tells what
/// any process committed to the file; `migrate(to:timeout:step:)` brings the schema to the
/// program's version, each step run once across the processes.
///
/// Calls block (up to the busy timeout, 5 s by default, for writes): keep them off the main thread
/// and off Swift concurrency's cooperative pool, on a dispatch queue or a thread of your own.
/// A thread that has a transaction open on the file must not write through another handle or
/// begin another transaction on the same file: it would wait for its own transaction.
///
/// While the process is suspended (`LeaseLibrary.suspend(timeout:)`) every write throws
/// `LeaseError.suspended`: `execute` of a statement that writes, and `begin()` and its siblings.
/// Reads work.
public final class LeaseDatabase: @unchecked Sendable {
    let pointer: OpaquePointer

    /// Opens the SQLite database at `path`, creating it if needed, and switches it to WAL mode.
    ///
    /// - Throws: `LeaseError.database` when SQLite cannot open it, or it cannot be shared
    ///   (":memory:"); `LeaseError.invalidArgument` for an empty path.
    public init(path: String) throws {
        var out: OpaquePointer?
        try withCheckedCString(path, "path", in: "lease_db_open") { cPath in
            try throwIfFailed(lease_db_open(cPath, &out))
        }
        pointer = out!
    }

    /// Opens the SQLite database at a file URL (see `init(path:)`).
    public convenience init(url: URL) throws {
        try self.init(path: url.path)
    }

    deinit {
        lease_db_free(pointer)
    }

    /// Sets how long a write through this handle may wait for the database (its turn among this
    /// process's writers, then other processes' write lock) before `LeaseError.busy`. Zero means a
    /// single try. Other handles of the same file keep their own.
    public func setBusyTimeout(_ timeout: TimeInterval) throws {
        try withExtendedLifetime(self) {
            try throwIfFailed(lease_db_set_busy_timeout(pointer, milliseconds(timeout)))
        }
    }

    /// Runs one statement on its own, as a write through the queue, and returns SQLite's count of
    /// changed rows. The parameters bind to the statement's placeholders in order.
    ///
    /// - Throws: `LeaseError.invalidArgument` for several statements, a transaction statement or
    ///   the wrong number of parameters; `LeaseError.database` when SQLite refuses the SQL or a
    ///   constraint fails; `LeaseError.busy` when other writers kept the database for the whole
    ///   busy timeout.
    @discardableResult
    public func execute(_ sql: String, _ parameters: SQLValue...) throws -> Int {
        try execute(sql, parameters: parameters)
    }

    @discardableResult
    public func execute(_ sql: String, parameters: [SQLValue]) throws -> Int {
        try runExecute("lease_db_execute", sql, parameters) { cSql, values, count, changes in
            withExtendedLifetime(self) { lease_db_execute(pointer, cSql, values, count, changes) }
        }
    }

    /// Runs one read-only statement outside any transaction and returns its rows. It sees what is
    /// committed and never waits for writers.
    ///
    /// - Throws: `LeaseError.invalidArgument` when the statement writes.
    public func query(_ sql: String, _ parameters: SQLValue...) throws -> [[SQLValue]] {
        try query(sql, parameters: parameters)
    }

    public func query(_ sql: String, parameters: [SQLValue]) throws -> [[SQLValue]] {
        try allRows(rows, sql, parameters)
    }

    /// The first row of a read-only statement, or nil; the rest are not read.
    public func queryFirst(_ sql: String, _ parameters: SQLValue...) throws -> [SQLValue]? {
        try firstRow(rows, sql, parameters)
    }

    /// Hands each row of a read-only statement to `body` as it is read, on this thread. `body` may
    /// use liblease, but not query this same handle.
    public func forEachRow(_ sql: String, parameters: [SQLValue] = [], _ body: ([SQLValue]) throws -> Void) throws {
        try eachRow(rows, sql, parameters, body)
    }

    private func rows(_ sql: String, _ parameters: [SQLValue], _ onRow: ([SQLValue]) throws -> Bool) throws {
        try withExtendedLifetime(self) {
            try runQuery("lease_db_query", sql, parameters, onRow: onRow) { cSql, values, count, callback, context in
                lease_db_query(pointer, cSql, values, count, callback, context)
            }
        }
    }

    /// Begins a write transaction: waits for its turn, then holds SQLite's write lock until it is
    /// committed or rolled back. Keep it short, or use `beginChunked(chunk:)`.
    public func begin() throws -> LeaseTransaction {
        try begin { lease_db_begin(pointer, $0) }
    }

    /// The chunk period that suits most jobs: liblease's `LEASE_DEFAULT_CHUNK_MS`, 1 s.
    public static let defaultChunk: TimeInterval = TimeInterval(LEASE_DEFAULT_CHUNK_MS) / 1000

    /// Begins a chunked transaction for a long job: call `maybeCommit()` after every small piece of
    /// work, and it commits the chunk and begins the next one when the chunk has lasted `chunk`
    /// seconds, or within milliseconds when another writer waits. Rolling back undoes the current
    /// chunk only.
    ///
    /// - Throws: `LeaseError.invalidArgument` when `chunk` rounds to 0 ms (the library refuses a
    ///   chunk that lasts no time); otherwise as `begin()`.
    public func beginChunked(chunk: TimeInterval = LeaseDatabase.defaultChunk) throws -> LeaseTransaction {
        try begin { lease_db_begin_chunked(pointer, milliseconds(chunk), $0) }
    }

    /// Begins a write transaction fenced by `leaseGuard`: it opens only if the guard's lease is
    /// still held by this process in the guard's generation, checked inside the transaction, so
    /// that a holder that was suspended past its lease can never write over the new holder's
    /// work. The guard's lock must keep its leases in this same database file.
    ///
    /// - Throws: `LeaseError.lost` when the lease is gone (nothing was written, and the guard is
    ///   lost for good); `LeaseError.invalidArgument` when the guard's store is another file.
    public func beginFenced(_ leaseGuard: LeaseGuard) throws -> LeaseTransaction {
        try leaseGuard.handle.use("lease_db_begin_fenced") { guardPointer in
            try begin { lease_db_begin_fenced(pointer, guardPointer, $0) }
        }
    }

    /// Runs `body` in a write transaction and commits it; rolls it back if `body` throws.
    public func transaction<Result>(_ body: (LeaseTransaction) throws -> Result) throws -> Result {
        let transaction = try begin()
        let result: Result
        do {
            result = try body(transaction)
        } catch {
            transaction.rollback()
            throw error
        }
        try transaction.commit()
        return result
    }

    private func begin(_ start: (UnsafeMutablePointer<OpaquePointer?>) -> LeaseStatus) throws -> LeaseTransaction {
        var out: OpaquePointer?
        try withExtendedLifetime(self) {
            try throwIfFailed(start(&out))
        }
        return LeaseTransaction(pointer: out!)
    }
}
