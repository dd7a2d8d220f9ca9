import CLease
import Foundation

/// Calls `body` with `string` as NUL-terminated UTF-8. A NUL inside the string would silently cut
/// it short in C, so it is refused the way the library refuses a malformed string.
func withCheckedCString<Result>(
    _ string: String, _ what: String, in function: String,
    _ body: (UnsafePointer<CChar>) throws -> Result
) throws -> Result {
    if string.utf8.contains(0) {
        throw LeaseError.invalidArgument("\(function): \(what) contains a NUL character")
    }
    return try string.withCString(body)
}

/// A duration in seconds as the library's `uint32_t` milliseconds: negative ones (and NaN) become
/// 0, and longer ones than the type holds (about 49 days) its largest value; the library judges
/// what it accepts.
func milliseconds(_ seconds: TimeInterval) -> UInt32 {
    guard seconds.isFinite else { return seconds > 0 ? .max : 0 }
    let ms = (seconds * 1000).rounded()
    if ms <= 0 { return 0 }
    if ms >= Double(UInt32.max) { return .max }
    return UInt32(ms)
}

extension NSLock {
    /// Runs `body` holding the lock.
    func synchronized<Result>(_ body: () throws -> Result) rethrows -> Result {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A native handle that may be freed early (a guard's `release()`) while other threads may still be
/// calling through it: it is freed exactly once, and never while a call on it is running.
///
/// Every call goes through `use`, which counts the calls in flight. `close` marks the handle closed
/// at once (later calls throw `LeaseError.misuse`) and frees it when no call is in flight; otherwise
/// the last call to return frees it. So closing never waits.
///
/// `Sendable` because it is thread-safe: `pointer`, `calls` and `closing` are read and written
/// only under `lock`, and the rest is immutable.
final class SharedHandle: @unchecked Sendable {
    private let lock = NSLock()
    private var pointer: OpaquePointer?
    private var calls = 0
    private var closing = false // closed while calls were running: the last one frees
    private let name: String
    private let freeHandle: @Sendable (OpaquePointer) -> Void

    init(_ pointer: OpaquePointer, name: String, free freeHandle: @escaping @Sendable (OpaquePointer) -> Void) {
        self.pointer = pointer
        self.name = name
        self.freeHandle = freeHandle
    }

    var isClosed: Bool { lock.synchronized { pointer == nil } }

    func use<Result>(_ function: String, _ body: (OpaquePointer) throws -> Result) throws -> Result {
        let live: OpaquePointer? = lock.synchronized {
            if pointer != nil { calls += 1 }
            return pointer
        }
        guard let current = live else {
            throw LeaseError.misuse("\(function): the \(name) was released")
        }
        defer { exit(current) }
        return try body(current)
    }

    private func exit(_ current: OpaquePointer) {
        let last: Bool = lock.synchronized {
            calls -= 1
            return calls == 0 && closing
        }
        if last {
            freeHandle(current)
        }
    }

    /// Frees the handle now, or when the last call in flight returns. Idempotent.
    func close() {
        let now: OpaquePointer? = lock.synchronized {
            guard let current = pointer else { return nil }
            pointer = nil
            if calls > 0 {
                closing = true
                return nil
            }
            return current
        }
        if let now {
            freeHandle(now)
        }
    }

    deinit {
        // The owner is gone, so no call can be running.
        if let pointer {
            freeHandle(pointer)
        }
    }
}
