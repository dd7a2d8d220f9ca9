import CLease
import Foundation

/// The library as a whole.
public enum LeaseLibrary {
    /// The version of lease.h this binding was built against.
    public static let headerVersion: String = LEASE_VERSION_STRING

    /// The version of the liblease actually loaded, such as "0.2.0".
    public static var version: String { String(cString: lease_version()) }

    /// The library's description of a status number, such as "LEASE_BUSY (held by another process)".
    public static func describe(status: UInt32) -> String { String(cString: lease_status_str(status)) }

    /// Stops the library's background thread ("liblease") and waits for it to end; a later call
    /// that needs it starts it again. Call it before unloading the library, or at the end of a
    /// program checked for leaks; not from a callback.
    ///
    /// - Throws: `LeaseError.misuse` while a guard is still held, an observer is not cancelled
    ///   (`LeaseObserver.cancel()`, or a `changes()` stream still iterated or kept), or an
    ///   asynchronous acquisition has not been called back yet (the thread keeps running).
    public static func shutdown() throws {
        try throwIfFailed(lease_shutdown())
    }

    /// Suspends liblease in this process, for an app about to be suspended by its system: iOS
    /// suspends an app soon after it goes to the background, and kills it if it then holds a write
    /// lock on a database in a shared container. Call it when the app goes to the background (an
    /// app can let `LeaseLifecycle` do it, an extension `LeaseExtensionLifecycle`), and
    /// `resume()` when it comes back.
    ///
    /// At once, every lease this process holds is handed back to its database, so that a process
    /// waiting for it takes over within milliseconds rather than when the lease runs out. Its
    /// guards are lost (`LeaseGuard.check()` throws `LeaseError.lost`), each lock's lost handler
    /// runs once, and the first acquisition after `resume()` is dirty. From then on everything
    /// that writes throws `LeaseError.suspended`: acquisitions of every kind (one that is waiting,
    /// `acquire(timeout:)` included, ends with it within milliseconds), writing statements,
    /// `begin()` and its siblings. A statement running now is interrupted, and a transaction that
    /// is open is rolled back: its next call throws `LeaseError.suspended`, and `rollback()` frees
    /// it as usual. What a chunked transaction committed stays committed. Reads (`query`, and
    /// `execute` of a read-only statement) still work.
    ///
    /// Returns once no connection of this process holds a write lock or a write transaction, or
    /// after `timeout` seconds (0: look once, wait for nothing): it blocks the calling thread
    /// meanwhile, so keep it off the main thread unless the timeout is short. Calling it again
    /// while suspended is harmless (it finds nothing more to stop, or waits again).
    ///
    /// Process-wide: it suspends every store, lock and database of the process. Any thread, but
    /// not from a callback of the library: not from a lost handler, nor from the body of a query
    /// (`forEachRow`).
    ///
    /// - Throws: `LeaseError.timeout` when a statement or transaction did not end within
    ///   `timeout` (the message names the database). The process is suspended all the same; call
    ///   again to wait longer.
    public static func suspend(timeout: TimeInterval) throws {
        try throwIfFailed(lease_suspend(milliseconds(timeout)))
    }

    /// Ends a suspension (`suspend(timeout:)`): writes and acquisitions work again. Leases handed
    /// back at the suspension must be acquired again, and the first acquisition of each is dirty.
    /// Does nothing when the process is not suspended; one call ends any number of `suspend`
    /// calls. Process-wide; any thread; never blocks.
    public static func resume() {
        lease_resume()
    }

    /// Whether the process is suspended: true between `suspend(timeout:)` and `resume()`.
    public static var isSuspended: Bool { lease_is_suspended() }
}
