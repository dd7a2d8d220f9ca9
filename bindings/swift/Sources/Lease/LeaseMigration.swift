import CLease
import Foundation

extension LeaseDatabase {
    /// Brings the file's schema to version `target`, its `PRAGMA user_version` being the version:
    /// for each version from the file's current one + 1 up to `target`, calls `step` with a write
    /// transaction of its own and that version, and commits the transaction, which also sets
    /// `user_version` to the version, when `step` returns.
    ///
    /// ```swift
    /// try database.migrate(to: 2) { tx, version in
    ///     switch version {
    ///     case 1: try tx.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    ///     case 2: try tx.execute("ALTER TABLE items ADD COLUMN done INTEGER NOT NULL DEFAULT 0")
    ///     default: preconditionFailure("no step to version \(version)")
    ///     }
    /// }
    /// ```
    ///
    /// Every process of the app may call it as it opens the file, and each step runs exactly once
    /// across them all: each transaction reads the version again under SQLite's write lock, so
    /// whichever process gets there first runs the step and the others find it done. The others
    /// wait meanwhile, up to `timeout` in all, and return once the file is at `target`. A process
    /// killed in the middle of a step leaves the version before it, and the next caller runs the
    /// step. A file at `target` already is not written, and `step` is not called.
    ///
    /// The step runs on this thread, during this call, and uses only the transaction it is given
    /// (`execute`, `query`, ...): a write through this handle or another one of the file would
    /// wait for the step's own transaction. The transaction is `migrate`'s to end: its `commit()`
    /// throws `LeaseError.misuse` (and leaves it open), its `rollback()` rolls the step back (and
    /// `migrate` throws `LeaseError.misuse`), and once the step has returned its calls throw
    /// `LeaseError.misuse`, wherever the step kept it.
    ///
    /// A step that throws is rolled back, the file stays at the version before it (the steps
    /// before it stay committed), and `migrate` rethrows that very error, whatever its type, as
    /// `transaction(_:)` does: the step knows its version, and can say it in its error.
    ///
    /// Blocks up to `timeout`: keep it off the main thread and off Swift concurrency's cooperative
    /// pool when another process may be migrating or writing the file.
    ///
    /// - Parameters:
    ///   - target: The version the file ends at: the number of the program's last step.
    ///   - timeout: How long to wait in all for other processes' steps and other writers, in
    ///     seconds; 30 unless given.
    ///   - step: Brings the file from `version - 1` to `version`, in the transaction.
    /// - Throws: What `step` threw. `LeaseError.database` when the file's version is above
    ///   `target` (a newer program migrated it: an old extension still running after an update,
    ///   say), nothing written, or when SQLite fails (a commit, say); `LeaseError.timeout` when
    ///   the file did not reach `target` within `timeout`; `LeaseError.suspended` while the
    ///   process is suspended; `LeaseError.misuse` when the step called `rollback()`, or ended the
    ///   transaction with SQL (`COMMIT`), and in a forked child.
    public func migrate(
        to target: UInt32, timeout: TimeInterval = 30, step: (LeaseTransaction, UInt32) throws -> Void
    ) throws {
        // The step escapes only into `run`, which lives for this call; lease_db_migrate calls
        // migrationStep on this thread before it returns.
        try withoutActuallyEscaping(step) { step in
            let run = MigrationRun(step)
            let status = withExtendedLifetime(self) {
                withExtendedLifetime(run) {
                    lease_db_migrate(
                        pointer, target, migrationStep, Unmanaged.passUnretained(run).toOpaque(),
                        milliseconds(timeout))
                }
            }
            if let failure = run.failure {
                throw failure
            }
            try throwIfFailed(status)
        }
    }
}

/// One call of `migrate`: the caller's step, and what failed in it, which must not unwind into C:
/// the C step returns a failure instead, and `migrate` throws it once `lease_db_migrate` returns.
/// Not `Sendable`: only the migrating thread touches it.
private final class MigrationRun {
    let step: (LeaseTransaction, UInt32) throws -> Void
    var failure: Error?

    init(_ step: @escaping (LeaseTransaction, UInt32) throws -> Void) {
        self.step = step
    }
}

/// `LeaseMigrationStep`, on the thread that called `migrate`, during `lease_db_migrate`.
private func migrationStep(context: UnsafeMutableRawPointer?, tx: OpaquePointer?, version: UInt32) -> LeaseStatus {
    guard let context, let tx else { return LEASE_INVALID_ARGUMENT }
    let run = Unmanaged<MigrationRun>.fromOpaque(context).takeUnretainedValue()
    let transaction = LeaseTransaction(lent: tx)
    do {
        try run.step(transaction, version)
    } catch {
        run.failure = error
    }
    // The library takes the transaction back when this returns.
    let rolledBack = transaction.endLoan()
    if run.failure != nil {
        // Any status but LEASE_OK rolls the step back; migrate throws the step's own error, so
        // which one does not matter.
        return LEASE_DATABASE
    }
    if rolledBack {
        run.failure = LeaseError.misuse(
            "lease_db_migrate: the step to version \(version) called rollback(), which rolled it back, "
                + "so the file stays at the version before it; throw from the step to roll it back")
        return LEASE_MISUSE
    }
    return LEASE_OK
}
