import CLease
import Foundation
#if canImport(os)
import os
#endif

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
    /// Where the unified logging system exists (Apple platforms),
    /// `logToOSLog(level:subsystem:category:)` sends the messages there; elsewhere (Linux) this
    /// closure is the way: to standard error, a file, or a logging library of your own.
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
    /// `acquireBlocking`, no database call (they wait for other writers), no `suspend(timeout:)`.
    /// A message liblease would log from inside the handler is dropped. Hand anything slow to a
    /// queue of your own.
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

#if canImport(os)
extension LeaseLogLevel {
    /// The unified logging system's type for this level: `.error` for `error`, `.default` (that
    /// of `Logger.notice(_:)`) for `warning`, `.info` for `info` and `.debug` for `debug`.
    ///
    /// A warning is something the library copes with, not a failure, so it is not `.error` (which
    /// `Logger.warning(_:)` would give it): filtering on errors shows liblease's failures alone.
    /// `.default` is still written to the log store, as errors are; what the system keeps of
    /// `.info` and `.debug` messages is its configuration's choice.
    public var osLogType: OSLogType {
        switch self {
        case .error: return .error
        case .warning: return .default
        case .info: return .info
        case .debug: return .debug
        }
    }
}

extension LeaseLibrary {
    /// Sends liblease's log messages at `level` and more severe to the unified logging system,
    /// through an `os.Logger` of `subsystem` and `category`, each with its level's `osLogType`.
    /// It is `setLogHandler(level:_:)` with a handler of its own: it replaces the handler set
    /// before, and `setLogHandler(nil)` turns it off. What is said there holds here too
    /// (process-wide, any thread); its handler returns quickly, as logging to the system does not
    /// wait for the system's log store.
    ///
    /// ```swift
    /// try LeaseLibrary.logToOSLog(level: .info, subsystem: "com.example.notes")
    /// ```
    ///
    /// Privacy: the message is logged as private, the unified logging system's default for a
    /// string. It names the database file by its path, which holds the user's account name on
    /// macOS (`/Users/<name>/Library/Group Containers/...`) and the container's identifier on
    /// iOS, and the lease's key and label, which are the app's to choose: liblease cannot vouch
    /// that none of them is personal. So without a debugger attached or a logging profile
    /// installed, Console and a sysdiagnose show `<private>` in its place; the level, subsystem,
    /// category, time and process remain. An app that knows its keys and labels say nothing
    /// personal, and accepts the path in its logs, logs the text publicly with a handler of its
    /// own:
    ///
    /// ```swift
    /// try LeaseLibrary.setLogHandler(level: .info) { level, message in
    ///     Logger(subsystem: "com.example.notes", category: "liblease")
    ///         .log(level: level.osLogType, "\(message, privacy: .public)")
    /// }
    /// ```
    ///
    /// Elsewhere (Linux) there is no unified logging system, and no such function: give
    /// `setLogHandler(level:_:)` a closure that writes where the program logs.
    ///
    /// - Parameters:
    ///   - level: the most verbose level wanted (`.info` unless given). The system's own filtering
    ///     comes after: a `.debug` message is formatted even when the system discards it.
    ///   - subsystem: the app's subsystem, usually its bundle identifier.
    ///   - category: the category, "liblease" unless given.
    /// - Throws: as `setLogHandler(level:_:)`.
    @available(iOS 14, macOS 11, tvOS 14, watchOS 7, *)
    public static func logToOSLog(
        level: LeaseLogLevel = .info, subsystem: String, category: String = "liblease"
    ) throws {
        let sink = OSLogSink(Logger(subsystem: subsystem, category: category))
        try setLogHandler(level: level) { messageLevel, message in sink.log(messageLevel, message) }
    }
}

/// An `os.Logger` for a handler that runs on several threads at once. `Sendable` by assertion:
/// `Logger` is an immutable wrapper of an `os_log_t`, which may be used from any thread, but SDKs
/// before it was marked `Sendable` would refuse to let a `@Sendable` closure capture it.
@available(iOS 14, macOS 11, tvOS 14, watchOS 7, *)
private final class OSLogSink: @unchecked Sendable {
    private let logger: Logger

    init(_ logger: Logger) {
        self.logger = logger
    }

    func log(_ level: LeaseLogLevel, _ message: String) {
        // Private: see logToOSLog. (The privacy must be a literal: the os module builds the
        // message's format at compile time.)
        logger.log(level: level.osLogType, "\(message, privacy: .private)")
    }
}
#endif
