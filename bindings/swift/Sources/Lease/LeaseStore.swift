import CLease
import Foundation

/// A connection to a database file that holds liblease's lease table: normally the application's
/// own database, shared by its processes (for an app and its extensions, a file in the App Group
/// container). Freed with its last reference; locks made from it keep working.
///
/// Thread-safe, so `Sendable`: the header allows several threads to use a `LeaseStore` at once,
/// and the Swift side holds nothing but the handle.
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
    /// contends for the same lease; within this process the lock is re-entrant. `label` names this
    /// process beside the lease, for diagnostics ("app", "share-extension"): processes are told
    /// apart by an id of their own, so two processes with the same label still exclude each other.
    ///
    /// - Throws: `LeaseError.invalidArgument` for an empty key or invalid options.
    public func lock(_ key: String, label: String, options: LockOptions = .default) throws -> LeaseLock {
        var native = options.native
        var out: OpaquePointer?
        try withCheckedCString(key, "key", in: "lease_lock_new") { cKey in
            try withCheckedCString(label, "label", in: "lease_lock_new") { cLabel in
                try withExtendedLifetime(self) {
                    try throwIfFailed(lease_lock_new(pointer, cKey, cLabel, &native, &out))
                }
            }
        }
        return LeaseLock(pointer: out!, key: key)
    }

    deinit {
        lease_store_free(pointer)
    }
}

/// The timing of a lock, in seconds; `LockOptions.default` is liblease's (a 10 s lease renewed
/// every 5 s, waiters looking again at least every 250 ms). Each value is rounded to whole milliseconds and must
/// be at least one, `renewEvery` at most half of `lease`, and `lease` at most a day: the library
/// refuses others with `LeaseError.invalidArgument` when the lock is made.
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
        let native = nativeDefaults()
        return LockOptions(
            lease: TimeInterval(native.lease_ms) / 1000,
            renewEvery: TimeInterval(native.renew_every_ms) / 1000,
            maxBackoff: TimeInterval(native.max_backoff_ms) / 1000
        )
    }

    /// The options as `lease_lock_new` reads them: set up by `lease_lock_options_init`, which also
    /// records the size of the struct this binding was built with, then given these values.
    var native: LeaseLockOptions {
        var native = LockOptions.nativeDefaults()
        native.lease_ms = milliseconds(lease)
        native.renew_every_ms = milliseconds(renewEvery)
        native.max_backoff_ms = milliseconds(maxBackoff)
        return native
    }

    /// liblease's defaults, from `lease_lock_options_init`.
    private static func nativeDefaults() -> LeaseLockOptions {
        var native = LeaseLockOptions()
        let status = lease_lock_options_init(&native, MemoryLayout<LeaseLockOptions>.size)
        // It fails only for a NULL pointer or a size smaller than any LeaseLockOptions: neither
        // can happen here.
        precondition(status == LEASE_OK, "lease_lock_options_init: \(String(cString: lease_last_error_message()))")
        return native
    }
}
