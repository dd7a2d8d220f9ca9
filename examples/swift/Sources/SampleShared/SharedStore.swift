import Foundation
import Lease

/// The database an app and its extensions share, and the work they do under the lease "sync".
///
/// Every process opens its own `SharedStore` on the same file: handles are per process. The
/// database is the App Group container's `shared.db`; liblease keeps its lease table in it, beside
/// the application's tables, so that writes can be fenced by the lease.
public final class SharedStore: Sendable {
    /// The App Group that the app and the extension both list in their entitlements
    /// (com.apple.security.application-groups). Replace it with yours.
    public static let appGroup = "group.com.example.lease-sample"

    public let database: LeaseDatabase
    /// The lease for work only one process may do at a time: syncing with a server, say.
    public let sync: LeaseLock
    /// Which process this is, for the journal and the lease table.
    public let label: String

    /// Opens the shared database at `url` for the process named `label` ("app", "share-extension").
    public init(url: URL, label: String, options: LockOptions = .default) throws {
        self.label = label
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

    #if canImport(Darwin)
    /// The shared database in the App Group container: the one place both processes can reach.
    public static func inAppGroup(label: String) throws -> SharedStore {
        guard let container = FileManager.default.containerURL(forSecurityApplicationGroupIdentifier: appGroup) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "App Group \(appGroup) is not in the entitlements"])
        }
        return try SharedStore(url: container.appendingPathComponent("shared.db"), label: label)
    }
    #endif

    /// Saves an item the user shared: a short write through the writer queue, no lease needed.
    /// Any process, any time; it waits only for its turn among writers.
    public func save(_ text: String) throws {
        try database.execute("INSERT INTO items (text, source) VALUES (?, ?)", .text(text), .text(label))
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
        defer { lease.release() }
        // When the lease is dirty, another process held "sync" since this one last did: whatever
        // this process cached under it is stale and must be reloaded (this sample caches nothing).
        //
        // ... talk to the server here; then, before writing the outcome, make sure the lease was
        // not lost meanwhile (the process may have been suspended). The fenced transaction checks
        // again inside the write, where it cannot be wrong.
        try lease.check()
        let transaction = try database.beginFenced(lease)
        let synced = try transaction.execute("UPDATE items SET synced = 1 WHERE synced = 0")
        try transaction.execute(
            "INSERT INTO journal (who, what, generation) VALUES (?, ?, ?)",
            .text(label), .text("synced \(synced) items"), .integer(Int64(lease.generation)))
        try transaction.commit()
        return SyncTurn(generation: lease.generation, wasDirty: lease.isDirty, synced: synced)
    }

    /// A long job that must not keep the other process's writes out: imports `count` rows in a
    /// chunked transaction, which commits about every second, and within milliseconds when
    /// another writer waits. Each batch is recorded with its rows, so that an import cut short
    /// (the extension is killed) keeps whole batches only, and can resume.
    public func importRows(_ count: Int, batch: Int = 50, after each: (Int) -> Void = { _ in }) throws {
        let transaction = try database.beginChunked()
        var done = 0
        while done < count {
            for n in done..<min(done + batch, count) {
                try transaction.execute("INSERT INTO items (text, source, synced) VALUES (?, ?, 1)",
                                        .text("imported \(n)"), .text(label))
            }
            done = min(done + batch, count)
            _ = try transaction.maybeCommit()
            each(done)
        }
        try transaction.commit()
    }

    /// The journal: who did what, in which generation of the lease.
    public func journal() throws -> [String] {
        try database.query("SELECT who, what, generation FROM journal ORDER BY rowid").map { row in
            "\(row[0].string ?? "?"): \(row[1].string ?? "?") in generation \(row[2].int64 ?? 0)"
        }
    }

    public func count(source: String) throws -> Int64 {
        try database.queryFirst("SELECT count(*) FROM items WHERE source = ?", .text(source))?[0].int64 ?? 0
    }
}
