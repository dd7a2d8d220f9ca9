import CLease

/// Proof that this process holds a lease, made by a `LeaseLock`'s acquisitions. Thread-safe (the
/// header allows a guard to be used and released on any thread), so `Sendable`.
///
/// Releasing it (`release()`, or its last reference going away) gives the lease back at once when
/// it is this process's last guard of the lease, so that a waiting process takes over.
public final class LeaseGuard: @unchecked Sendable {
    /// A number that increases every time a different process takes the lease.
    public let generation: UInt64

    /// True when another process may have held the lease since this process last held it, so that
    /// what this process cached under the lease is stale. The first acquisition in a process is
    /// dirty, and so is the first after a lost lease.
    public let isDirty: Bool

    let handle: SharedHandle

    init(pointer: OpaquePointer) {
        // Both are fixed for a guard: read once, they stay readable after release.
        generation = lease_guard_generation(pointer)
        isDirty = lease_guard_is_dirty(pointer)
        handle = SharedHandle(pointer, name: "guard") { lease_guard_release($0) }
    }

    /// Throws `LeaseError.lost` if the lease is no longer known to be held; call it before acting on
    /// the lease (before committing the work it protects) when time may have passed. It reads no
    /// database. Once lost, a guard stays lost: release it and acquire again.
    ///
    /// - Throws: `LeaseError.lost`; `LeaseError.misuse` after `release()`.
    public func check() throws {
        try handle.use("lease_guard_check") { pointer in
            try throwIfFailed(lease_guard_check(pointer))
        }
    }

    /// Whether the lease is still known to be held: `check()` without the error (false after
    /// `release()`).
    public var isHeld: Bool {
        (try? check()) != nil
    }

    /// Whether `release()` was called.
    public var isReleased: Bool { handle.isClosed }

    /// Releases the guard now rather than with its last reference. Idempotent; later calls on it
    /// throw `LeaseError.misuse`.
    public func release() {
        handle.close()
    }
}
