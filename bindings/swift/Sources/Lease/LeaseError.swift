import CLease
import Foundation

/// A call into liblease failed: which status it returned, and the library's message
/// (`lease_last_error_message()`, read on the failing thread), which names the function.
public enum LeaseError: Error, Equatable, Sendable {
    /// Another process holds the lease, or other writers kept the database's write lock.
    case busy(String)
    /// The lease stayed held by another process for the whole time limit.
    case timeout(String)
    /// The lease was lost: another process may hold it now. Release the guard and acquire again.
    /// A fenced transaction refuses to begin with it.
    case lost(String)
    /// A malformed argument: an empty key, zero or contradictory options, bad SQL parameters...
    case invalidArgument(String)
    /// SQLite failed; the message is SQLite's, with the file's path.
    case database(String)
    /// The call is not allowed now: a handle used in a forked child, a released guard, an ended
    /// transaction, shutdown while a guard is held...
    case misuse(String)
    /// A bug in liblease.
    case panic(String)
    /// An asynchronous acquisition was cancelled. (`acquire(timeout:)` throws `CancellationError`.)
    case cancelled(String)
    /// The process is suspended (`LeaseLibrary.suspend(timeout:)`): nothing that writes runs until
    /// `LeaseLibrary.resume()`: no acquisition, no writing statement, no transaction. Reads still
    /// work. A transaction that was open when the process was suspended was rolled back, and its
    /// next call throws this (later ones `misuse`); roll it back to free it.
    case suspended(String)
    /// A status this binding does not know (a newer library): an error all the same.
    case unknown(status: UInt32, message: String)

    /// The error for a status number and message.
    public init(status: UInt32, message: String) {
        switch status {
        case LEASE_BUSY.code: self = .busy(message)
        case LEASE_TIMEOUT.code: self = .timeout(message)
        case LEASE_LOST.code: self = .lost(message)
        case LEASE_INVALID_ARGUMENT.code: self = .invalidArgument(message)
        case LEASE_DATABASE.code: self = .database(message)
        case LEASE_MISUSE.code: self = .misuse(message)
        case LEASE_PANIC.code: self = .panic(message)
        case LEASE_CANCELLED.code: self = .cancelled(message)
        case LEASE_SUSPENDED.code: self = .suspended(message)
        default: self = .unknown(status: status, message: message)
        }
    }

    /// The `LeaseStatus` number.
    public var status: UInt32 {
        switch self {
        case .busy: return LEASE_BUSY.code
        case .timeout: return LEASE_TIMEOUT.code
        case .lost: return LEASE_LOST.code
        case .invalidArgument: return LEASE_INVALID_ARGUMENT.code
        case .database: return LEASE_DATABASE.code
        case .misuse: return LEASE_MISUSE.code
        case .panic: return LEASE_PANIC.code
        case .cancelled: return LEASE_CANCELLED.code
        case .suspended: return LEASE_SUSPENDED.code
        case .unknown(let status, _): return status
        }
    }

    /// The library's message, naming the function that failed.
    public var message: String {
        switch self {
        case .busy(let message), .timeout(let message), .lost(let message), .invalidArgument(let message),
             .database(let message), .misuse(let message), .panic(let message), .cancelled(let message),
             .suspended(let message):
            return message
        case .unknown(_, let message):
            return message
        }
    }

    /// The error for a status just returned on this thread, with this thread's message.
    static func last(_ status: LeaseStatus) -> LeaseError {
        LeaseError(status: status.code, message: String(cString: lease_last_error_message()))
    }
}

extension LeaseError: CustomStringConvertible, LocalizedError {
    /// Such as "LEASE_BUSY (held by another process): lease_lock_try_acquire: ...".
    public var description: String { "\(LeaseLibrary.describe(status: status)): \(message)" }

    public var errorDescription: String? { description }
}

extension LeaseStatus {
    /// The status as its stable number.
    var code: UInt32 { UInt32(truncatingIfNeeded: rawValue) }
}

/// Throws the error for `status` unless it is `LEASE_OK`. Call it right after the native call, on
/// the same thread, so that the message is that call's.
func throwIfFailed(_ status: LeaseStatus) throws {
    if status != LEASE_OK {
        throw LeaseError.last(status)
    }
}
