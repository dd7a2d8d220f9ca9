import CLease
import Foundation

/// A connection to a database file that holds liblease's lease table: normally the application's
/// own database, shared by its processes (for an app and its extensions, a file in the App Group
/// container). Thread-safe. Freed with its last reference; locks made from it keep working.
public final class LeaseStore: @unchecked Sendable {
    let pointer: OpaquePointer

    private init(pointer: OpaquePointer) {
        self.pointer = pointer
    }

    /// Opens the SQLite database at `path`, creating it if needed, switches it to WAL mode and
    /// creates or migrates the lease table in it.
    ///
    /// - Throws: `LeaseError.database` when SQLite cannot open the file or it is not a database;
    ///   `LeaseError.invalidArgument` for an empty path.
    public convenience init(path: String) throws {
        var out: OpaquePointer?
        try withCheckedCString(path, "path", in: "lease_store_open") { cPath in
            try throwIfFailed(lease_store_open(cPath, &out))
        }
        self.init(pointer: out!)
    }

    /// Opens the SQLite database at a file URL (see `init(path:)`).
    public convenience init(url: URL) throws {
        try self.init(path: url.path)
    }

    /// Opens a private in-memory store, shared with nobody: for tests and single-process use.
    public static func inMemory() throws -> LeaseStore {
        var out: OpaquePointer?
        try throwIfFailed(lease_store_open_memory(&out))
        return LeaseStore(pointer: out!)
    }

    /// Makes a lock on `key`. Every process that uses the same key in the same database file
    /// contends for the same lease; within this process the lock is re-entrant. `holder` labels
    /// this process in the lease table for diagnostics ("app", "share-extension").
    ///
    /// - Throws: `LeaseError.invalidArgument` for an empty key or invalid options.
    public func lock(_ key: String, holder: String, options: LockOptions = .default) throws -> LeaseLock {
        var native = options.native
        var out: OpaquePointer?
        try withCheckedCString(key, "key", in: "lease_lock_new") { cKey in
            try withCheckedCString(holder, "holder", in: "lease_lock_new") { cHolder in
                try withExtendedLifetime(self) {
                    try throwIfFailed(lease_lock_new(pointer, cKey, cHolder, &native, &out))
                }
            }
        }
        return LeaseLock(pointer: out!, key: key)
    }

    deinit {
        lease_store_free(pointer)
    }
}

/// The timing of a lock, in seconds; `LockOptions.default` is liblease's (a 6 s lease renewed
/// every 2 s, waiters pausing at most 50 ms). Each value must be at least a millisecond,
/// `renewEvery` at most half of `lease`, and `lease` at most a day: the library refuses others
/// with `LeaseError.invalidArgument` when the lock is made.
public struct LockOptions: Sendable, Equatable {
    /// How long a lease lasts without renewal: the longest another process waits for it after this
    /// one crashed, was killed or was suspended while holding it.
    public var lease: TimeInterval
    /// How often the library's thread renews a held lease.
    public var renewEvery: TimeInterval
    /// The longest pause between two attempts of a waiting acquisition.
    public var maxBackoff: TimeInterval

    public init(
        lease: TimeInterval = LockOptions.default.lease,
        renewEvery: TimeInterval = LockOptions.default.renewEvery,
        maxBackoff: TimeInterval = LockOptions.default.maxBackoff
    ) {
        self.lease = lease
        self.renewEvery = renewEvery
        self.maxBackoff = maxBackoff
    }

    /// liblease's defaults.
    public static var `default`: LockOptions {
        let native = lease_lock_options_default()
        return LockOptions(
            lease: TimeInterval(native.lease_ms) / 1000,
            renewEvery: TimeInterval(native.renew_every_ms) / 1000,
            maxBackoff: TimeInterval(native.max_backoff_ms) / 1000
        )
    }

    var native: LeaseLockOptions {
        LeaseLockOptions(
            lease_ms: milliseconds(lease),
            renew_every_ms: milliseconds(renewEvery),
            max_backoff_ms: milliseconds(maxBackoff)
        )
    }
}
