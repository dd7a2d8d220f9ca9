import CLease
import Foundation

/// A named lease in a store, made by `LeaseStore.lock(_:label:options:)`.
///
/// Thread-safe, so `Sendable`: it is immutable on the Swift side (its key and the native handle),
/// and the header allows a `LeaseLock` to be used by several threads at once.
///
/// Exclusion is between processes: within this process the lock is re-entrant, so while the
/// process holds the lease every acquisition of the same key succeeds at once, on any thread. The
/// lease is held while any of the process's guards of it is alive. Freed with its last reference;
/// guards taken through it stay valid.
///
/// While the process is suspended (`LeaseLibrary.suspend(timeout:)`) every acquisition throws
/// `LeaseError.suspended`, and one that was waiting ends with it at once.
public final class LeaseLock: @unchecked Sendable {
    /// The lock's key.
    public let key: String

    let pointer: OpaquePointer

    init(pointer: OpaquePointer, key: String) {
        self.pointer = pointer
        self.key = key
    }

    /// Takes the lease if it is free, has run out or is held by this process; nil if another
    /// process holds it. Never waits.
    public func tryAcquire() throws -> LeaseGuard? {
        var out: OpaquePointer?
        let status = withExtendedLifetime(self) { lease_lock_try_acquire(pointer, &out) }
        if status == LEASE_BUSY {
            return nil
        }
        try throwIfFailed(status)
        return LeaseGuard(pointer: out!)
    }

    /// Takes the lease, blocking the calling thread up to `timeout` seconds while another process
    /// holds it. Not on the main thread nor in Swift concurrency's threads: use `acquire(timeout:)`.
    ///
    /// - Throws: `LeaseError.timeout` when another process held it throughout.
    public func acquireBlocking(timeout: TimeInterval) throws -> LeaseGuard {
        var out: OpaquePointer?
        try withExtendedLifetime(self) {
            try throwIfFailed(lease_lock_acquire(pointer, milliseconds(timeout), &out))
        }
        return LeaseGuard(pointer: out!)
    }

    /// Takes the lease, suspending up to `timeout` seconds while another process holds it; no
    /// thread waits meanwhile (it is built on `lease_lock_acquire_async`).
    ///
    /// Cancelling the task cancels the acquisition (`lease_lock_cancel_acquire`) and throws
    /// `CancellationError`. If the lease was taken at that very moment, the guard is released,
    /// never leaked. A task that is cancelled already throws at once, without touching the
    /// database.
    ///
    /// - Throws: `LeaseError.timeout` when another process held it throughout; `CancellationError`.
    public func acquire(timeout: TimeInterval) async throws -> LeaseGuard {
        // Starting an acquisition only to cancel it could still take the lease and give it back:
        // a write, and a new generation for every other process, for nothing.
        try Task.checkCancellation()
        let pending = PendingAcquisition()
        // One reference for the library, given back by the callback (or below, if none will come).
        let context = Unmanaged.passRetained(pending).toOpaque()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<LeaseGuard, Error>) in
                pending.begin(continuation)
                let status = withExtendedLifetime(self) {
                    lease_lock_acquire_async(pointer, milliseconds(timeout), acquireCallback, context)
                }
                if status != LEASE_OK {
                    let error = LeaseError.last(status)
                    Unmanaged<PendingAcquisition>.fromOpaque(context).release()
                    pending.fail(error)
                } else if pending.markStarted() {
                    // The task was cancelled before the acquisition had started.
                    cancel(context)
                }
            }
        } onCancel: {
            if pending.markCancelled() {
                self.cancel(Unmanaged.passUnretained(pending).toOpaque())
            }
        }
    }

    private func cancel(_ context: UnsafeMutableRawPointer) {
        // Whatever it returns, the callback runs once: with LEASE_CANCELLED, or with the guard or
        // failure it already had.
        _ = withExtendedLifetime(self) { lease_lock_cancel_acquire(pointer, context) }
    }

    /// Sets the function called when a lease held through this lock is lost (another process may
    /// be doing the work it protects), replacing any previous one; nil removes it.
    ///
    /// Threads: the handler is called once per lost hold, on the library's thread ("liblease"). It
    /// must return promptly and must not wait (no `acquireBlocking`, no blocking database call):
    /// hand real work to a queue or a task. It may call `setLostHandler` on its lock, which then
    /// returns at once. Called from anywhere else, this returns once the previous handler is not
    /// running, will not be called again, and has been released.
    ///
    /// Ownership: the handler is given its lock, so that it need not capture it. The library keeps
    /// the handler, and the handler's box only a weak reference to the lock: once the lock's last
    /// reference is gone the handler is not called any more. The handler is released when it is
    /// replaced or removed, or the lock freed: on the thread that did so, or on the library's
    /// thread right after a call of it that was still running. A handler that captures its own
    /// lock strongly keeps the lock, and so itself, alive until `setLostHandler(nil)`. Nor should
    /// it hold the last reference to other liblease objects (guards, databases, locks): releasing
    /// the handler would free them inside the library's destroy callback, which must not call
    /// into liblease.
    ///
    /// - Throws: `LeaseError.misuse` in a forked child (nothing changes then).
    public func setLostHandler(_ handler: (@Sendable (LeaseLock) -> Void)?) throws {
        guard let handler else {
            try withExtendedLifetime(self) {
                try throwIfFailed(lease_lock_set_lost_callback(pointer, nil, nil, nil))
            }
            return
        }
        // One reference for the library, which gives it back through releaseLostHandler exactly
        // when it no longer needs the box. No Swift lock is held around the call: it waits for a
        // running call of the previous handler, which may itself be calling setLostHandler.
        let box = Unmanaged.passRetained(LostHandlerBox(handler, lock: self))
        let status = withExtendedLifetime(self) {
            lease_lock_set_lost_callback(pointer, lostCallback, box.toOpaque(), releaseLostHandler)
        }
        if status != LEASE_OK {
            let error = LeaseError.last(status)
            // Refused: the library kept nothing, so the reference is still ours to give back.
            box.release()
            throw error
        }
    }

    deinit {
        // Removes the lost callback first: afterwards it is not running, will not run, and its
        // box has been released (releaseLostHandler), unless this runs inside the callback itself,
        // in which case the library releases the box right after the callback returns.
        lease_lock_free(pointer)
    }
}

/// The lost handler, boxed so that its address can be the callback's context. Written once, in
/// `init`, and only read afterwards (on the library's thread); the weak reference is safe to load
/// from any thread.
private final class LostHandlerBox {
    let handler: @Sendable (LeaseLock) -> Void
    /// Weak, so that the library's reference to the box never keeps the lock alive.
    weak var lock: LeaseLock?

    init(_ handler: @escaping @Sendable (LeaseLock) -> Void, lock: LeaseLock) {
        self.handler = handler
        self.lock = lock
    }
}

/// `LeaseLostCallback`, on the library's thread.
private func lostCallback(context: UnsafeMutableRawPointer?, key: UnsafePointer<CChar>?) {
    guard let context else { return }
    let box = Unmanaged<LostHandlerBox>.fromOpaque(context).takeUnretainedValue()
    // Nil once the lock's last reference is gone: its deinit is removing this callback.
    guard let lock = box.lock else { return }
    // If this turns out to be the lock's last reference, the lock is freed right here, inside its
    // own callback, which the library allows (lease_lock_free then does not wait for the callback).
    box.handler(lock)
}

/// `LeaseDestroyCallback` of the lost callback: gives back the reference `setLostHandler` gave the
/// library. Called exactly once per box, when the library no longer needs it.
private func releaseLostHandler(context: UnsafeMutableRawPointer?) {
    guard let context else { return }
    Unmanaged<LostHandlerBox>.fromOpaque(context).release()
}

/// One asynchronous acquisition: the continuation to resume, and whether the task was cancelled
/// before or after the native acquisition started, so that exactly one of them cancels it.
/// `Sendable` because it is thread-safe: its state is touched only under `lock`.
private final class PendingAcquisition: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<LeaseGuard, Error>?
    private var started = false
    private var cancelled = false

    func begin(_ continuation: CheckedContinuation<LeaseGuard, Error>) {
        lock.synchronized { self.continuation = continuation }
    }

    /// The acquisition started; true if the task was cancelled already, so it must be cancelled now.
    func markStarted() -> Bool {
        lock.synchronized {
            started = true
            return cancelled
        }
    }

    /// The task was cancelled; true if the acquisition has started, so it can be cancelled now.
    func markCancelled() -> Bool {
        lock.synchronized {
            cancelled = true
            return started
        }
    }

    private func take() -> (CheckedContinuation<LeaseGuard, Error>?, Bool) {
        lock.synchronized {
            let taken = continuation
            continuation = nil
            return (taken, cancelled)
        }
    }

    func fail(_ error: Error) {
        take().0?.resume(throwing: error)
    }

    /// The library's callback: resumes the task with the guard or the failure.
    func complete(status: LeaseStatus, guardPointer: OpaquePointer?, message: String) {
        let (taken, wasCancelled) = take()
        guard let continuation = taken else {
            // Never happens (each acquisition is called back once); a guard must not leak even so.
            if let guardPointer { lease_guard_release(guardPointer) }
            return
        }
        if status == LEASE_OK, let guardPointer {
            if wasCancelled {
                lease_guard_release(guardPointer)
                continuation.resume(throwing: CancellationError())
            } else {
                continuation.resume(returning: LeaseGuard(pointer: guardPointer))
            }
        } else if status == LEASE_CANCELLED {
            continuation.resume(throwing: CancellationError())
        } else {
            continuation.resume(throwing: LeaseError(status: status.code, message: message))
        }
    }
}

/// `LeaseAcquireCallback`, on the library's thread.
private func acquireCallback(context: UnsafeMutableRawPointer?, status: LeaseStatus, guardPointer: OpaquePointer?) {
    // The message must be read here: it belongs to this thread, and only until its next call.
    let message = status == LEASE_OK ? "" : String(cString: lease_last_error_message())
    guard let context else {
        if let guardPointer { lease_guard_release(guardPointer) }
        return
    }
    let pending = Unmanaged<PendingAcquisition>.fromOpaque(context).takeRetainedValue()
    pending.complete(status: status, guardPointer: guardPointer, message: message)
}
