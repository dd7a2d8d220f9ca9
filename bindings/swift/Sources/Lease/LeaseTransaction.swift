import CLease

/// An open write transaction, begun by `LeaseDatabase.begin()`, `beginChunked(chunk:)` or
/// `beginFenced(_:)`. Not `Sendable`: the header allows one thread at a time to use it (it may
/// move between threads, but two calls on it must not overlap).
///
/// End it with `commit()` or `rollback()`; either ends it whatever happens, and later calls throw
/// `LeaseError.misuse`. One that is neither committed nor rolled back is rolled back when its last
/// reference goes away (which also keeps other writers out until then).
///
/// A suspension of the process (`LeaseLibrary.suspend(timeout:)`) rolls an open transaction back
/// (a chunked one: its current chunk): its next call throws `LeaseError.suspended`, later ones
/// `LeaseError.misuse`; `rollback()` frees it.
public final class LeaseTransaction {
    /// The native transaction, and who may end it. Each case says what this object may do with
    /// the pointer; none is ever touched once the state has left it.
    private enum State {
        /// Ours, until `commit()` or `rollback()` hands it to the library, which frees it whatever
        /// it returns (rolling it back when it is not committed); the last reference rolls back.
        case owned(OpaquePointer)
        /// Ended by `commit()` or `rollback()`: the library has it.
        case ended
    }

    private var state: State

    init(pointer: OpaquePointer) {
        state = .owned(pointer)
    }

    deinit {
        if case .owned(let pointer) = state {
            lease_tx_rollback(pointer)
        }
    }

    /// Whether neither `commit()` nor `rollback()` has been called yet. (A transaction that SQL or
    /// a failed `maybeCommit()` ended in the library counts as open until one of them frees it.)
    public var isOpen: Bool {
        if case .owned = state { return true }
        return false
    }

    private func use<Result>(_ function: String, _ body: (OpaquePointer) throws -> Result) throws -> Result {
        guard case .owned(let current) = state else {
            throw LeaseError.misuse("\(function): the transaction has ended")
        }
        // A call from a row callback of this transaction's own query reaches the library, which
        // refuses it (LEASE_MISUSE) while the query runs.
        return try withExtendedLifetime(self) { try body(current) }
    }

    /// Runs one statement in the transaction; returns SQLite's count of changed rows.
    @discardableResult
    public func execute(_ sql: String, _ parameters: SQLValue...) throws -> Int {
        try execute(sql, parameters: parameters)
    }

    @discardableResult
    public func execute(_ sql: String, parameters: [SQLValue]) throws -> Int {
        try runExecute("lease_tx_execute", sql, parameters) { cSql, values, count, changes in
            try use("lease_tx_execute") { tx in lease_tx_execute(tx, cSql, values, count, changes) }
        }
    }

    /// Runs one statement in the transaction, seeing its own writes, and returns its rows.
    public func query(_ sql: String, _ parameters: SQLValue...) throws -> [[SQLValue]] {
        try query(sql, parameters: parameters)
    }

    public func query(_ sql: String, parameters: [SQLValue]) throws -> [[SQLValue]] {
        try allRows(rows, sql, parameters)
    }

    /// The first row of a statement in the transaction, or nil; the rest are not read.
    public func queryFirst(_ sql: String, _ parameters: SQLValue...) throws -> [SQLValue]? {
        try firstRow(rows, sql, parameters)
    }

    /// Hands each row to `body` as it is read; `body` must not use this transaction.
    public func forEachRow(_ sql: String, parameters: [SQLValue] = [], _ body: ([SQLValue]) throws -> Void) throws {
        try eachRow(rows, sql, parameters, body)
    }

    private func rows(_ sql: String, _ parameters: [SQLValue], _ onRow: ([SQLValue]) throws -> Bool) throws {
        try use("lease_tx_query") { tx in
            try runQuery("lease_tx_query", sql, parameters, onRow: onRow) { cSql, values, count, callback, context in
                lease_tx_query(tx, cSql, values, count, callback, context)
            }
        }
    }

    /// For a chunked transaction: commits the chunk and begins the next one if the chunk is due,
    /// and says whether it did. Call it after every small piece of work; when nothing is due it
    /// costs next to nothing. A plain or fenced transaction is never committed here (false).
    ///
    /// - Throws: `LeaseError.busy` or `.database` when the next chunk could not begin (or the chunk
    ///   could not be committed): the transaction has ended; roll it back (or let it go) to free it.
    public func maybeCommit() throws -> Bool {
        var committed = false
        try use("lease_tx_maybe_commit") { tx in
            try throwIfFailed(lease_tx_maybe_commit(tx, &committed))
        }
        return committed
    }

    /// Commits the transaction (a chunked one: its current chunk) and ends it, whatever the
    /// outcome: if the commit fails, everything since the transaction (or chunk) began is rolled
    /// back. Called from a row callback of this transaction's own query, it commits nothing,
    /// throws `LeaseError.misuse`, and the transaction is rolled back when that query returns.
    ///
    /// - Throws: `LeaseError.database` when the commit failed; `LeaseError.misuse` when the
    ///   transaction had ended already, or when called from a row callback of its own query.
    public func commit() throws {
        guard case .owned(let current) = state else {
            throw LeaseError.misuse("lease_tx_commit: the transaction has ended")
        }
        // lease_tx_commit consumes the transaction on every path: from here on it is the library's.
        state = .ended
        try throwIfFailed(lease_tx_commit(current))
    }

    /// Rolls back (a chunked transaction: its current chunk only) and ends the transaction.
    /// Idempotent. Called from a row callback of this transaction's own query, it ends the
    /// transaction too: the library rolls it back when that query returns.
    public func rollback() {
        guard case .owned(let current) = state else { return }
        // lease_tx_rollback consumes the transaction on every path, as lease_tx_commit does.
        state = .ended
        lease_tx_rollback(current)
    }
}

@available(*, unavailable)
extension LeaseTransaction: Sendable {}
