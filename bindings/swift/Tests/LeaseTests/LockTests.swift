import Lease
import XCTest

final class LockTests: XCTestCase {
    override func tearDown() {
        eventually("every guard is released") { libraryIsIdle() }
        super.tearDown()
    }

    func testTheDefaultOptionsAreTheLibrarys() {
        XCTAssertEqual(LockOptions.default, LockOptions(lease: 10, renewEvery: 5, maxBackoff: 0.25))
        XCTAssertEqual(LockOptions(), LockOptions.default)
    }

    func testZeroContradictoryAndTooLongOptionsAreInvalidArguments() throws {
        let store = try LeaseStore.inMemory()
        let bad = [
            LockOptions(lease: 0),
            LockOptions(renewEvery: 0),
            LockOptions(maxBackoff: 0),
            LockOptions(lease: 2, renewEvery: 1.001), // the renewal would come too late
            LockOptions(lease: 86_400.001),
            LockOptions(lease: -1),
            LockOptions(lease: .nan),
        ]
        for options in bad {
            assertLeaseError(Status.invalidArgument, containing: "lease_lock_new", try store.lock("k", label: "me", options: options))
        }
        _ = try store.lock("k", label: "me", options: LockOptions(lease: 86_400, renewEvery: 43_200))
    }

    func testAnEmptyKeyIsAnInvalidArgument() throws {
        let store = try LeaseStore.inMemory()
        assertLeaseError(Status.invalidArgument, containing: "lease_lock_new", try store.lock("", label: "me"))
        assertLeaseError(Status.invalidArgument, try store.lock("a\0b", label: "me"))
        assertLeaseError(Status.invalidArgument, try store.lock("k", label: "a\0b"))
    }

    func testTryAcquireReentranceDirtinessGenerationCheckAndRelease() throws {
        let store = try LeaseStore(path: TestFiles.db())
        let lock = try store.lock("sync", label: "app")
        let other = try store.lock("sync", label: "app-again")
        XCTAssertEqual(lock.key, "sync")

        let first = try XCTUnwrap(try lock.tryAcquire())
        XCTAssertTrue(first.isDirty, "the first acquisition in a process is dirty")
        XCTAssertGreaterThan(first.generation, 0)
        try first.check()
        XCTAssertTrue(first.isHeld)

        // Re-entrant: any lock of the same key in this process gets it at once, clean.
        let second = try XCTUnwrap(try other.tryAcquire())
        XCTAssertFalse(second.isDirty)
        XCTAssertEqual(second.generation, first.generation)
        let third = try other.acquireBlocking(timeout: 0)
        XCTAssertEqual(third.generation, first.generation)
        first.release()
        second.release()
        third.release()

        // Nobody else took it since: the next hold is clean, in the same generation.
        let again = try lock.acquireBlocking(timeout: 1)
        XCTAssertFalse(again.isDirty)
        XCTAssertEqual(again.generation, first.generation)
        again.release()
    }

    func testAReleasedGuardIsMisuseAndReleasingTwiceIsHarmless() throws {
        let lock = try LeaseStore.inMemory().lock("k", label: "me")
        let leaseGuard = try XCTUnwrap(try lock.tryAcquire())
        let generation = leaseGuard.generation
        leaseGuard.release()
        leaseGuard.release()
        XCTAssertTrue(leaseGuard.isReleased)
        XCTAssertFalse(leaseGuard.isHeld)
        XCTAssertEqual(leaseGuard.generation, generation, "still readable")
        let error = assertLeaseError(Status.misuse, try leaseGuard.check())
        XCTAssertEqual(error?.message, "lease_guard_check: the guard was released")
    }

    func testAGuardOutlivesItsLockAndIsReleasedWithItsLastReference() throws {
        var lock: LeaseLock? = try LeaseStore(path: TestFiles.db()).lock("sync", label: "app")
        var leaseGuard: LeaseGuard? = try lock?.tryAcquire()
        lock = nil
        try leaseGuard?.check()
        XCTAssertFalse(libraryIsIdle(), "the guard holds the lease")
        leaseGuard = nil // deinit releases it
        eventually("the guard's lease is given back") { libraryIsIdle() }
    }

    func testLostHandlersCanBeSetReplacedAndRemoved() throws {
        let lock = try LeaseStore.inMemory().lock("k", label: "me")
        try lock.setLostHandler { _ in }
        try lock.setLostHandler { _ in }
        try lock.setLostHandler(nil)
        try lock.setLostHandler(nil)
        try lock.setLostHandler { _ in }
    }

    func testAReplacedOrRemovedLostHandlerIsReleasedAtOnceAndTheLastOneWithItsLock() throws {
        let released = LineQueue()
        var lock: LeaseLock? = try LeaseStore.inMemory().lock("k", label: "me")
        try lock?.setLostHandler(Canary("first", released).handler)
        XCTAssertNil(released.take(timeout: 0), "kept while it is the lock's handler")
        try lock?.setLostHandler(Canary("second", released).handler)
        XCTAssertEqual(released.take(timeout: 0), "first", "released by the time setLostHandler returns")
        try lock?.setLostHandler(nil)
        XCTAssertEqual(released.take(timeout: 0), "second")
        try lock?.setLostHandler(Canary("third", released).handler)
        lock = nil
        XCTAssertEqual(released.take(timeout: 0), "third", "released when the lock is freed")
    }

    func testAHandlerThatUsesTheLockItIsGivenDoesNotKeepTheLockAlive() throws {
        var lock: LeaseLock? = try LeaseStore.inMemory().lock("k", label: "me")
        weak var weakLock: LeaseLock? = lock
        try lock?.setLostHandler { itsLock in _ = itsLock.key }
        lock = nil
        XCTAssertNil(weakLock, "the handler, which the library keeps, holds its lock only weakly")
    }

    func testDifferentKeysAreDifferentLeases() throws {
        let store = try LeaseStore(path: TestFiles.db())
        let a = try XCTUnwrap(try store.lock("a", label: "app").tryAcquire())
        let b = try XCTUnwrap(try store.lock("b", label: "app").tryAcquire())
        XCTAssertTrue(a.isHeld && b.isHeld)
        a.release()
        b.release()
    }
}

/// Says when it is released: a lost handler that holds one shows when the library lets it go.
final class Canary: Sendable {
    private let name: String
    private let released: LineQueue

    init(_ name: String, _ released: LineQueue) {
        self.name = name
        self.released = released
    }

    deinit {
        released.put(name)
    }

    /// A lost handler that holds this canary, and nothing else.
    var handler: @Sendable (LeaseLock) -> Void {
        { _ in self.touch() }
    }

    private func touch() {}
}
