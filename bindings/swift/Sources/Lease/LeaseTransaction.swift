import CLease

/// An open write transaction, begun by `LeaseDatabase.begin()`, `beginChunked(chunk:)` or
/// `beginFenced(_:)`. Not `Sendable`: the header allows one thread at a time to use it.
///
/// End it with `commit()` or `rollback()`. One that is neither committed nor rolled back is rolled
/// back when its last reference goes away (which also keeps other writers out until then).
public final class LeaseTransaction {
    private var pointer: OpaquePointer?
    /// Calls on it that are running (one, or two from inside a row callback of its own query).
    private var calls = 0

    init(pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        if let pointer {
            lease_tx_rollback(pointer)
        }
    }

    /// Whether the transaction is still open here (neither committed nor rolled back).
    public var isOpen: Bool { pointer != nil }

    private func use<Result>(_ function: String, _ body: (OpaquePointer) throws -> Result) throws -> Result {
        guard let current = pointer else {
            throw LeaseError.misuse("\(function): the transaction has ended")
        }
        calls += 1
        defer { calls -= 1 }
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
    ///   could not be committed): the transaction has ended; roll it back to free it.
    public func maybeCommit() throws -> Bool {
        var committed = false
        try use("lease_tx_maybe_commit") { tx in
            try throwIfFailed(lease_tx_maybe_commit(tx, &committed))
        }
        return committed
    }

    /// Commits the transaction (a chunked one: its current chunk) and ends it, whatever the
    /// outcome: if the commit fails, everything since the transaction (or chunk) began is rolled
    /// back.
    ///
    /// - Throws: `LeaseError.database` when the commit failed; `LeaseError.misuse` when the
    ///   transaction had ended already, or when called from a row callback of its own query.
    public func commit() throws {
        guard let current = pointer else {
            throw LeaseError.misuse("lease_tx_commit: the transaction has ended")
        }
        guard calls == 0 else {
            throw LeaseError.misuse("lease_tx_commit: a call on the transaction is still running")
        }
        pointer = nil
        try throwIfFailed(lease_tx_commit(current))
    }

    /// Rolls back (a chunked transaction: its current chunk only) and ends the transaction.
    /// Idempotent; does nothing when called from a row callback of its own query.
    public func rollback() {
        guard let current = pointer, calls == 0 else { return }
        pointer = nil
        lease_tx_rollback(current)
    }
}

@available(*, unavailable)
extension LeaseTransaction: Sendable {}
