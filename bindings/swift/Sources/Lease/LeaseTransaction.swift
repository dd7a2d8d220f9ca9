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
///
/// The transaction a migration step is given (`LeaseDatabase.migrate(to:timeout:step:)`) is not
/// the step's to end: `migrate` commits it when the step returns. Its `commit()` throws
/// `LeaseError.misuse` and leaves it open; its `rollback()` rolls the step back (and `migrate`
/// throws); once the step has returned, its calls throw `LeaseError.misuse`.
public final class LeaseTransaction {
    /// The native transaction, and who may end it. Each case says what this object may do with
    /// the pointer; none is ever touched once the state has left it.
    private enum State {
        /// Ours, until `commit()` or `rollback()` hands it to the library, which frees it whatever
        /// it returns (rolling it back when it is not committed); the last reference rolls back.
        case owned(OpaquePointer)
        /// Lent by `lease_db_migrate` to a migration step, which the library commits or rolls back
        /// when the step returns (it refuses to end it before). So it is never ended nor freed
        /// here: `commit()` throws, `rollback()` only marks it, and `endLoan()` lets go of it before
        /// the step returns to the library.
        case lent(OpaquePointer)
        /// Lent, and `rollback()` was called: the step is rolled back when it returns.
        case lentRolledBack
        /// Ended by `commit()` or `rollback()`, or lent and given back: the library has it.
        case ended
    }

    private var state: State

    init(pointer: OpaquePointer) {
        state = .owned(pointer)
    }

    /// A view of the transaction `lease_db_migrate` lends a step, to be given back with `endLoan()`.
    init(lent pointer: OpaquePointer) {
        state = .lent(pointer)
    }

    /// Lets go of a lent transaction as its step returns to the library, which takes it back: the
    /// view never reaches it again, wherever the step kept it. Returns whether the step called
    /// `rollback()`.
    func endLoan() -> Bool {
        defer { state = .ended }
        if case .lentRolledBack = state { return true }
        return false
    }

    deinit {
        if case .owned(let pointer) = state {
            lease_tx_rollback(pointer)
        }
    }

    /// Whether neither `commit()` nor `rollback()` has been called yet. (A transaction that SQL or
    /// a failed `maybeCommit()` ended in the library counts as open until one of them frees it. A
    /// migration step's is open until the step calls `rollback()` or returns.)
    public var isOpen: Bool {
        switch state {
        case .owned, .lent: return true
        case .lentRolledBack, .ended: return false
        }
    }

    private func use<Result>(_ function: String, _ body: (OpaquePointer) throws -> Result) throws -> Result {
        let current: OpaquePointer
        switch state {
        case .owned(let pointer), .lent(let pointer):
            current = pointer
        case .lentRolledBack:
            throw LeaseError.misuse("\(function): the migration step rolled its transaction back (rollback())")
        case .ended:
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
    /// A migration step's transaction is not committed here: `migrate(to:timeout:step:)` commits
    /// it when the step returns.
    ///
    /// - Throws: `LeaseError.database` when the commit failed; `LeaseError.misuse` when the
    ///   transaction had ended already, when called from a row callback of its own query, or on a
    ///   migration step's transaction (which stays open: the step may go on).
    public func commit() throws {
        switch state {
        case .owned(let current):
            // lease_tx_commit consumes the transaction on every path: from here on it is the
            // library's.
            state = .ended
            try throwIfFailed(lease_tx_commit(current))
        case .lent:
            throw LeaseError.misuse(
                "lease_tx_commit: this transaction belongs to LeaseDatabase.migrate, which commits it when "
                    + "the step returns; return from the step instead (throw to roll the step back)")
        case .lentRolledBack, .ended:
            throw LeaseError.misuse("lease_tx_commit: the transaction has ended")
        }
    }

    /// Rolls back (a chunked transaction: its current chunk only) and ends the transaction.
    /// Idempotent. Called from a row callback of this transaction's own query, it ends the
    /// transaction too: the library rolls it back when that query returns.
    ///
    /// On a migration step's transaction it rolls the step back when the step returns, and
    /// `migrate(to:timeout:step:)` then throws `LeaseError.misuse` (the file is not at its target);
    /// the step's later calls on it throw `LeaseError.misuse`. Throwing from the step is the way to
    /// roll a step back.
    public func rollback() {
        switch state {
        case .owned(let current):
            // lease_tx_rollback consumes the transaction on every path, as lease_tx_commit does.
            state = .ended
            lease_tx_rollback(current)
        case .lent:
            // Not ours to end: the library rolls it back when the step returns a failure.
            state = .lentRolledBack
        case .lentRolledBack, .ended:
            return
        }
    }
}

@available(*, unavailable)
extension LeaseTransaction: Sendable {}
