import Dispatch
import Foundation
import Lease

/// The database an app and its extensions share, and the work they do under the lease "sync".
///
/// Every process opens its own `SharedStore` on the same file: handles are per process. The
/// database is the App Group container's `shared.db`; liblease keeps its lease table in it, beside
/// the application's tables, so that writes can be fenced by the lease.
///
/// The async methods may be called from anywhere, the main actor included: their database work,
/// which blocks (a write waits for its turn up to the busy timeout, 5 s), runs on the store's own
/// serial queue, and waiting for the lease blocks no thread at all. `Sendable`: every property is
/// immutable and `Sendable`.
public final class SharedStore: Sendable {
    /// The App Group that the app and the extension both list in their entitlements
    /// (com.apple.security.application-groups). Replace it with yours.
    public static let appGroup = "group.com.example.lease-sample"

    public let database: LeaseDatabase
    /// The lease for work only one process may do at a time: syncing with a server, say.
    public let sync: LeaseLock
    /// Which process this is, for the journal and the lease table.
    public let label: String
    /// Where this store's blocking calls run, one at a time.
    private let queue: DispatchQueue

    /// Where stores are opened.
    private static let opening = DispatchQueue(label: "SharedStore.open")

    /// Opens the shared database at `url` for the process named `label` ("app", "share-extension").
    /// Blocks (the schema is created through the writer queue): call it on a thread of your own, or
    /// use `open(url:label:options:)`.
    public init(url: URL, label: String, options: LockOptions = .default) throws {
        self.label = label
        queue = DispatchQueue(label: "SharedStore \(label)")
        database = try LeaseDatabase(url: url)
        try database.execute("""
            CREATE TABLE IF NOT EXISTS items (
                id INTEGER PRIMARY KEY, text TEXT NOT NULL, source TEXT NOT NULL, synced INTEGER NOT NULL DEFAULT 0
            )
            """)
        try database.execute("""
            CREATE TABLE IF NOT EXISTS journal (who TEXT NOT NULL, what TEXT NOT NULL, generation INTEGER)
            """)
        sync = try LeaseStore(url: url).lock("sync", label: label, options: options)
    }

    /// Opens the shared database at `url` (see `init(url:label:options:)`) off the caller's thread.
    public static func open(url: URL, label: String, options: LockOptions = .default) async throws -> SharedStore {
        try await awaitBlocking(on: opening) { try SharedStore(url: url, label: label, options: options) }
    }

    #if canImport(Darwin)
    /// The shared database in the App Group container: the one place both processes can reach.
    public static func inAppGroup(label: String) async throws -> SharedStore {
        guard let container = FileManager.default.containerURL(forSecurityApplicationGroupIdentifier: appGroup) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "App Group \(appGroup) is not in the entitlements"])
        }
        return try await SharedStore.open(url: container.appendingPathComponent("shared.db"), label: label)
    }
    #endif

    /// Calls `handler` with the lease's key when this process loses "sync" while holding it (it
    /// suspended liblease on going to the background, or was suspended past the lease): once per
    /// lost hold, on the library's thread, where it must return at once. Replaces any previous
    /// handler (see `LeaseLock.setLostHandler`).
    public func onSyncLost(_ handler: @escaping @Sendable (String) -> Void) throws {
        // The handler is given its lock: capturing `self` or `sync` instead would keep the lock
        // alive for ever, since the library keeps the handler as long as the lock lives.
        try sync.setLostHandler { lock in handler(lock.key) }
    }

    /// Saves an item the user shared: a short write through the writer queue, no lease needed.
    /// Any process, any time; it waits only for its turn among writers.
    public func save(_ text: String) async throws {
        try await awaitBlocking(on: queue) {
            _ = try self.database.execute("INSERT INTO items (text, source) VALUES (?, ?)", .text(text), .text(self.label))
        }
    }

    /// What one turn at "sync" found and did.
    public struct SyncTurn: Sendable {
        /// The lease's generation during the turn.
        public let generation: UInt64
        /// Whether another process may have held "sync" since this one last did.
        public let wasDirty: Bool
        /// How many items the turn marked synced.
        public let synced: Int
    }

    /// The work only one process may do at a time: takes "sync" (waiting up to `timeout` seconds
    /// without blocking a thread), marks the unsynced items synced, and records the turn, writing
    /// only while the lease is held.
    public func syncOnce(timeout: TimeInterval = 10) async throws -> SyncTurn {
        let lease = try await sync.acquire(timeout: timeout)
        defer { lease.release() } // never waits: a busy database gets the lease back in the background
        // When the lease is dirty, another process held "sync" since this one last did: whatever
        // this process cached under it is stale and must be reloaded (this sample caches nothing).
        //
        // ... talk to the server here; then, before writing the outcome, make sure the lease was
        // not lost meanwhile (the process may have been suspended). The fenced transaction checks
        // again inside the write, where it cannot be wrong.
        try lease.check()
        return try await awaitBlocking(on: queue) {
            let transaction = try self.database.beginFenced(lease)
            let synced = try transaction.execute("UPDATE items SET synced = 1 WHERE synced = 0")
            try transaction.execute(
                "INSERT INTO journal (who, what, generation) VALUES (?, ?, ?)",
                .text(self.label), .text("synced \(synced) items"), .integer(Int64(lease.generation)))
            try transaction.commit()
            return SyncTurn(generation: lease.generation, wasDirty: lease.isDirty, synced: synced)
        }
    }

    /// A long job that must not keep the other process's writes out: imports `count` rows in a
    /// chunked transaction, which commits about every second, and within milliseconds when
    /// another writer waits. Each batch is recorded with its rows, so that an import cut short
    /// (the extension is killed) keeps whole batches only, and can resume. `progress` is called
    /// after each batch, on the store's queue.
    public func importRows(_ count: Int, batch: Int = 50, progress: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        try await awaitBlocking(on: queue) {
            let transaction = try self.database.beginChunked()
            var done = 0
            while done < count {
                for n in done..<min(done + batch, count) {
                    try transaction.execute("INSERT INTO items (text, source, synced) VALUES (?, ?, 1)",
                                            .text("imported \(n)"), .text(self.label))
                }
                done = min(done + batch, count)
                _ = try transaction.maybeCommit()
                progress(done)
            }
            try transaction.commit()
        }
    }

    /// The journal: who did what, in which generation of the lease.
    public func journal() async throws -> [String] {
        try await awaitBlocking(on: queue) {
            try self.database.query("SELECT who, what, generation FROM journal ORDER BY rowid").map { row in
                "\(row[0].string ?? "?"): \(row[1].string ?? "?") in generation \(row[2].int64 ?? 0)"
            }
        }
    }

    /// How many items the process named `source` saved or imported.
    public func count(source: String) async throws -> Int64 {
        try await awaitBlocking(on: queue) {
            try self.database.queryFirst("SELECT count(*) FROM items WHERE source = ?", .text(source))?[0].int64 ?? 0
        }
    }
}
