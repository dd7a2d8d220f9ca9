#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif
import Foundation
import Lease
import XCTest

/// Two threads, and a second OS process, contending for one lock.
final class ConcurrencyTests: XCTestCase {
    override func tearDown() {
        eventually("every guard is released") { libraryIsIdle() }
        super.tearDown()
    }

    func testTwoThreadsOfOneProcessShareTheLeaseWhichIsHeldUntilBothRelease() throws {
        let db = TestFiles.db()
        let lock = try LeaseStore(path: db).lock("sync", label: "app")
        let bothHold = DispatchGroup()
        let firstMayRelease = DispatchSemaphore(value: 0)
        let secondReleased = DispatchSemaphore(value: 0)
        let firstReleased = DispatchSemaphore(value: 0)
        let generations = GenerationBox()
        bothHold.enter()
        bothHold.enter()

        Thread.detachNewThread {
            let leaseGuard = try! lock.acquireBlocking(timeout: 5)
            generations.set(0, leaseGuard.generation)
            bothHold.leave()
            firstMayRelease.wait()
            leaseGuard.release()
            firstReleased.signal()
        }
        Thread.detachNewThread {
            let leaseGuard = try! lock.acquireBlocking(timeout: 5) // re-entrant: no waiting for the first
            generations.set(1, leaseGuard.generation)
            bothHold.leave()
            leaseGuard.release()
            secondReleased.signal()
        }
        XCTAssertEqual(bothHold.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(secondReleased.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(generations.get(0), generations.get(1))
        XCTAssertEqual(try Child.probe(db, "sync"), 1, "another process must not get it while one thread holds it")
        firstMayRelease.signal()
        XCTAssertEqual(firstReleased.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(try Child.probe(db, "sync"), 0, "released by both: free for others")
    }

    func testManyThreadsAcquiringCheckingAndReleasingAtOnce() throws {
        let lock = try LeaseStore(path: TestFiles.db()).lock("sync", label: "app")
        let acquired = Counter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for i in 0..<200 {
                let leaseGuard: LeaseGuard
                if i % 2 == 0 {
                    leaseGuard = try! lock.tryAcquire()!
                } else {
                    leaseGuard = try! lock.acquireBlocking(timeout: 1)
                }
                try! leaseGuard.check()
                acquired.add()
                if i % 3 == 0 { leaseGuard.release() } // else its last reference releases it
            }
        }
        XCTAssertEqual(acquired.value, 8 * 200)
    }

    func testAnotherProcessHoldsTheLeaseThenReleasesIt() throws {
        let db = TestFiles.db()
        let child = try Child("hold", db, "sync", "6000")
        let theirs = child.readNumber("held")
        let lock = try LeaseStore(path: db).lock("sync", label: "app")
        XCTAssertNil(try lock.tryAcquire())
        assertLeaseError(Status.timeout, containing: "lease_lock_acquire", try lock.acquireBlocking(timeout: 0.2))

        let taken = GuardBox()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            taken.set(try? lock.acquireBlocking(timeout: 10))
            done.signal()
        }
        usleep(100_000)
        child.order("release")
        XCTAssertEqual(child.read(), "released")
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        let leaseGuard = try XCTUnwrap(taken.get())
        XCTAssertTrue(leaseGuard.isDirty, "another process held it")
        XCTAssertGreaterThan(leaseGuard.generation, theirs)
        leaseGuard.release()
        XCTAssertEqual(child.exitStatus(), 0)
    }

    func testAHolderKilledWithSIGKILLIsTakenOver() throws {
        let db = TestFiles.db()
        let child = try Child("hold", db, "sync", "2000")
        _ = child.readNumber("held")
        let lock = try LeaseStore(path: db).lock("sync", label: "app")
        XCTAssertNil(try lock.tryAcquire())
        child.killHard()
        // On Linux a provably dead holder is taken over at once; elsewhere at expiry.
        let took = try secondsOf { try lock.acquireBlocking(timeout: 10).release() }
        XCTAssertLessThan(took, 2.5)
    }
}

/// Small boxes for the tests' threads: `Sendable` because each touches its state only under its
/// `lock`.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

final class GenerationBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: UInt64] = [:]
    func set(_ index: Int, _ value: UInt64) { lock.lock(); values[index] = value; lock.unlock() }
    func get(_ index: Int) -> UInt64? { lock.lock(); defer { lock.unlock() }; return values[index] }
}

final class GuardBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: LeaseGuard?
    func set(_ value: LeaseGuard?) { lock.lock(); self.value = value; lock.unlock() }
    func get() -> LeaseGuard? { lock.lock(); defer { lock.unlock() }; return value }
}
