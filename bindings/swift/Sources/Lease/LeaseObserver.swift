import CLease
import Foundation

/// An observer of a database file, made by `LeaseDatabase.observe(_:)`: its handler is called after
/// every commit to the file, by any process, until it is cancelled.
///
/// ```swift
/// let observer = try database.observe { tables in
///     // On the library's thread: hand the work on, and return.
///     Task { @MainActor in model.reload(tables) }
/// }
/// // ...
/// observer.cancel()
/// ```
///
/// `cancel()`, or the observer's last reference going away, stops it (`lease_observer_free`):
/// once that returns, the handler is not running, will not be called again, and has been released.
/// The one exception is a cancellation from inside the handler itself, which returns at once; the
/// handler is released when that call returns.
///
/// `Sendable`: its one property is a thread-safe handle, so any thread may cancel it.
public final class LeaseObserver: Sendable {
    let handle: SharedHandle

    init(pointer: OpaquePointer) {
        handle = SharedHandle(pointer, name: "observer") { lease_observer_free($0) }
    }

    /// Stops the observer now rather than with its last reference. Idempotent; any thread, the
    /// handler included.
    public func cancel() {
        handle.close()
    }

    /// Whether `cancel()` was called.
    public var isCancelled: Bool { handle.isClosed }
}

extension LeaseDatabase {
    /// Calls `onChange` after every commit to this database's file, by any connection of any
    /// process (this one's included, and writers that do not use liblease), once the commit is
    /// visible to readers, until the returned observer is cancelled or goes away.
    ///
    /// `onChange` is given the names of the tables that changed, or nil when they are not known:
    /// a writer that does not use liblease committed (plain SQLite, or a statement that names no
    /// table, such as `PRAGMA user_version = 2`), and anything may have changed. liblease's own
    /// tables are never named, and a commit that changed only them (a lease's renewal) calls
    /// nobody. Calls may be coalesced (one call for several commits, naming every table they
    /// changed) but are never dropped: after the last commit there is always a call that comes
    /// after it, even when this process was stopped or suspended meanwhile.
    ///
    /// Threads: `onChange` runs on the library's thread ("liblease"), one call at a time. It must
    /// return promptly: it must not wait for a lease (`acquireBlocking`), and should not write
    /// (a write waits for other writers); a read (`query`) is allowed. While it runs, the other
    /// callbacks of the process and the renewals of its leases wait. Hand real work to a task or
    /// a queue, or use `changes()`, whose handler only hands the change over.
    ///
    /// Ownership: the library keeps `onChange` until the observer stops, then releases it. A
    /// handler that captures its own observer strongly keeps it alive until `cancel()`. The
    /// observer does not keep this database handle alive, nor needs it: it goes on after the
    /// handle is freed.
    ///
    /// - Throws: `LeaseError.database` when the observer's connection cannot be opened, or the
    ///   file was deleted, renamed or replaced since this handle opened it; `LeaseError.misuse` in
    ///   a forked child.
    public func observe(_ onChange: @escaping @Sendable (Set<String>?) -> Void) throws -> LeaseObserver {
        // One reference for the library, which gives it back through releaseChangeHandler exactly
        // once, when it no longer needs the box.
        let box = Unmanaged.passRetained(ChangeHandlerBox(onChange))
        var out: OpaquePointer?
        let status = withExtendedLifetime(self) {
            lease_db_observe(pointer, changeCallback, box.toOpaque(), releaseChangeHandler, &out)
        }
        if status != LEASE_OK {
            let error = LeaseError.last(status)
            // Refused: the library kept nothing and will not call releaseChangeHandler.
            box.release()
            throw error
        }
        return LeaseObserver(pointer: out!)
    }

    /// The changes to this database's file, as an asynchronous sequence: each element is the set
    /// of tables changed by commits of any process since the element before it, or nil when they
    /// are not known (see `observe(_:)`).
    ///
    /// ```swift
    /// for await tables in try database.changes() {
    ///     if tables?.contains("items") ?? true { try await reloadItems() }
    /// }
    /// ```
    ///
    /// The database is observed from this call on, so a commit made after it returns is seen
    /// even when the iteration begins later. The observer is stopped (`lease_observer_free`) when
    /// the stream terminates: when the task iterating it is cancelled, when the loop is left and
    /// the stream and its iterator are gone, or when the stream is dropped without ever being
    /// iterated.
    ///
    /// A consumer that falls behind is not sent one element per commit, nor does it miss any: the
    /// stream keeps one element waiting, and each change that arrives while one waits is merged
    /// into it (the union of their tables; nil, "anything", absorbs everything). So memory stays
    /// bounded, and after the last commit an element always comes that covers it. Rarely (when
    /// the consumer takes an element at the very moment another change is merged), an element
    /// names again a table that the element just before it named; a table is never left out.
    ///
    /// One task iterates the stream; the library's thread only hands it elements, and never
    /// waits for the consumer.
    ///
    /// - Throws: as `observe(_:)`.
    public func changes() throws -> AsyncStream<Set<String>?> {
        let (stream, continuation) = AsyncStream<Set<String>?>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let feed = ChangeFeed(continuation)
        let observer = try observe { feed.send($0) }
        // The handler runs once, on the thread that terminates the stream, outside the stream's
        // lock: cancel() waits for a running call of feed.send, which never waits for anything.
        continuation.onTermination = { _ in observer.cancel() }
        return stream
    }
}

/// What `changes()` yields into: a stream whose buffer holds one element, where a new change
/// replaces the element the consumer has not taken yet and the two are merged.
///
/// Why nothing is lost: with `.bufferingNewest(1)`, `yield` either hands the change to the
/// consumer (or into the empty buffer), or puts it in the buffer in place of the element waiting
/// there and gives that one back as `.dropped`, atomically under the stream's own lock. A dropped
/// element never reached the consumer, so `send` yields the union of it and the new change, which
/// replaces the new change alone; should the consumer take the new change between the two
/// yields, the union follows it. `lock` makes each `send` one step: the library's thread calls an
/// observer's handler one call at a time anyway, but two overlapping sends could drop each
/// other's unions.
///
/// `Sendable` because it is thread-safe: the continuation is, and `send` runs under `lock`.
private final class ChangeFeed: @unchecked Sendable {
    private let lock = NSLock()
    private let continuation: AsyncStream<Set<String>?>.Continuation

    init(_ continuation: AsyncStream<Set<String>?>.Continuation) {
        self.continuation = continuation
    }

    func send(_ change: Set<String>?) {
        lock.lock()
        defer { lock.unlock() }
        guard case .dropped(let missed) = continuation.yield(change) else { return }
        continuation.yield(merged(missed, change))
    }

    /// Both changes in one: the union of their tables, or nil (unknown) if either is.
    private func merged(_ earlier: Set<String>?, _ later: Set<String>?) -> Set<String>? {
        guard let earlier, let later else { return nil }
        return earlier.union(later)
    }
}

/// The change handler, boxed so that its address can be the callback's context. Immutable, so
/// `Sendable`: made on the observing thread, called on the library's, released on either.
private final class ChangeHandlerBox: Sendable {
    let handler: @Sendable (Set<String>?) -> Void

    init(_ handler: @escaping @Sendable (Set<String>?) -> Void) {
        self.handler = handler
    }
}

/// `LeaseChangeCallback`, on the library's thread.
private func changeCallback(
    context: UnsafeMutableRawPointer?, tables: UnsafePointer<UnsafePointer<CChar>?>?, count: Int
) {
    guard let context else { return }
    let box = Unmanaged<ChangeHandlerBox>.fromOpaque(context).takeUnretainedValue()
    box.handler(changedTables(tables, count))
}

/// The tables a change callback was given, copied (they are valid only during the call): nil when
/// the library passed none, which means unknown (an empty list would be an empty set).
private func changedTables(_ tables: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int) -> Set<String>? {
    guard let tables else { return nil }
    var names = Set<String>(minimumCapacity: count)
    for index in 0..<count {
        if let name = tables[index] {
            names.insert(String(cString: name))
        }
    }
    return names
}

/// `LeaseDestroyCallback` of the change callback: gives back the reference `observe(_:)` gave the
/// library. Called exactly once per box, when the library no longer needs it.
private func releaseChangeHandler(context: UnsafeMutableRawPointer?) {
    guard let context else { return }
    Unmanaged<ChangeHandlerBox>.fromOpaque(context).release()
}
