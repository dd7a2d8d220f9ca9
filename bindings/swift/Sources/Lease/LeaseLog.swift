import CLease
import Foundation

/// How severe one of liblease's log messages is (`LeaseLibrary.setLogHandler(level:_:)`). A
/// handler set at a level is given that level's messages and the more severe ones: `error` is the
/// most severe, `debug` the most verbose. The raw values are the header's `LEASE_LOG_ERROR` ...
/// `LEASE_LOG_DEBUG`.
public enum LeaseLogLevel: UInt32, Sendable {
    /// Something failed: a renewal, giving a lease back.
    case error = 1
    /// Something went wrong that the library copes with: a lease lost, a renewal that came late, a
    /// transaction that waited over a second, a second SQLite in the process, a board file that is
    /// not liblease's.
    case warning
    /// What the locks do: a lease acquired (after how long, its generation, dirty or clean, taken
    /// over from whom and why), released.
    case info
    /// Wake-ups, renewals, checkpoints: many messages, for chasing a problem.
    case debug
}

extension LeaseLibrary {
    /// Gives liblease's log messages at `level` and more severe to `handler`, replacing the
    /// handler set before; nil turns logging off, which is the default (no message is even
    /// formatted then).
    ///
    /// ```swift
    /// try LeaseLibrary.setLogHandler(level: .info) { level, message in
    ///     FileHandle.standardError.write(Data("liblease \(level): \(message)\n".utf8))
    /// }
    /// ```
    ///
    /// A message is English text for people, not to be parsed, naming the database file's path
    /// and the lease's key: "/data/app.db: 'sync': acquired by 'app' after waiting 3 ms:
    /// generation 7, dirty, taken over from 'share-extension' (pid 812), whose process ended".
    ///
    /// Process-wide: one handler for every store, lock and database of the process; the last call
    /// wins. Any thread may call this, the handler too (a handler that replaces itself is released
    /// once that call of it returns).
    ///
    /// Threads: the handler runs on the thread where the event happened: the caller's, during one
    /// of its calls (`acquireBlocking` logs its acquisition on its thread, before it returns), or
    /// the library's own ("liblease"), and on several threads at once; hence `@Sendable`. It must
    /// return soon and must not block: the call that logged waits for it, and on the library's
    /// thread so do the renewals of every lease of the process, which a slow handler can make
    /// late, then lost. Nor may it call into liblease in a way that could wait: no
    /// `acquireBlocking` or `acquire(timeout:)`, no database call (they wait for other writers),
    /// no `suspend(timeout:)`. A message liblease would log from inside the handler is dropped.
    /// Hand anything slow to a queue of your own.
    ///
    /// Ownership: the library keeps the handler until it is replaced or removed, then releases it
    /// once no call of it is running: at once, or right after the last call that was still running
    /// returns, on that call's thread. So a previous handler may still be finishing a call on
    /// another thread when this returns. The handler should not hold the last reference to a
    /// liblease object (a store, lock, guard or database): it could then be freed on a thread that
    /// is in the middle of a call into liblease.
    ///
    /// - Parameters:
    ///   - level: the most verbose level wanted (`.info` unless given): `.warning` gives warnings
    ///     and errors. `.debug` formats a message at every renewal and wake-up.
    ///   - handler: called with each message and its level; nil turns logging off (`level` is
    ///     then ignored).
    /// - Throws: `LeaseError.panic` on a bug in liblease; nothing changes then.
    public static func setLogHandler(
        level: LeaseLogLevel = .info, _ handler: (@Sendable (LeaseLogLevel, String) -> Void)?
    ) throws {
        guard let handler else {
            try throwIfFailed(lease_set_log_callback(level.rawValue, nil, nil, nil))
            return
        }
        // One reference for the library, which gives it back through releaseLogHandler exactly
        // once, when the handler can no longer be called. No Swift lock around the call: two
        // threads setting handlers at once both return, and the library destroys the one it
        // replaced like any other.
        let box = Unmanaged.passRetained(LogHandlerBox(handler))
        let status = lease_set_log_callback(level.rawValue, logCallback, box.toOpaque(), releaseLogHandler)
        if status != LEASE_OK {
            let error = LeaseError.last(status)
            // Refused: the library kept nothing and will not call releaseLogHandler.
            box.release()
            throw error
        }
    }
}

/// The log handler, boxed so that its address can be the callback's context. Immutable, so
/// `Sendable`: made on the setting thread, called on any thread (several at once), released on
/// whichever thread the library says.
private final class LogHandlerBox: Sendable {
    let handler: @Sendable (LeaseLogLevel, String) -> Void

    init(_ handler: @escaping @Sendable (LeaseLogLevel, String) -> Void) {
        self.handler = handler
    }
}

/// `LeaseLogCallback`, on the thread where the event happened.
private func logCallback(context: UnsafeMutableRawPointer?, rawLevel: UInt32, message: UnsafePointer<CChar>?) {
    // The library sends only levels up to the one asked for, all of which LeaseLogLevel has.
    guard let context, let message, let level = LeaseLogLevel(rawValue: rawLevel) else { return }
    let box = Unmanaged<LogHandlerBox>.fromOpaque(context).takeUnretainedValue()
    // The text is valid only during the call: copied here.
    box.handler(level, String(cString: message))
}

/// `LeaseDestroyCallback` of the log callback: gives back the reference `setLogHandler` gave the
/// library. Called exactly once per box, when no call of its handler is running or will run.
private func releaseLogHandler(context: UnsafeMutableRawPointer?) {
    guard let context else { return }
    Unmanaged<LogHandlerBox>.fromOpaque(context).release()
}
