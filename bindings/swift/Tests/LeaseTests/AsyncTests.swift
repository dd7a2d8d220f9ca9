#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif
import Foundation
import Lease
import XCTest

/// The async acquire: built on lease_lock_acquire_async, cancelled by lease_lock_cancel_acquire.
final class AsyncTests: XCTestCase {
    override func tearDown() {
        eventually("every guard is released and every acquisition called back") { libraryIsIdle() }
        super.tearDown()
    }

    func testAcquireSuspendsAndResumesWithTheGuard() async throws {
        let lock = try LeaseStore(path: TestFiles.db()).lock("sync", label: "app")
        let leaseGuard = try await lock.acquire(timeout: 1)
        try leaseGuard.check()
        XCTAssertTrue(leaseGuard.isDirty)
        let again = try await lock.acquire(timeout: 1) // re-entrant, as the blocking one
        XCTAssertEqual(again.generation, leaseGuard.generation)
        again.release()
        leaseGuard.release()
    }

    func testAWaitingTaskTakesTheLeaseWhenTheOtherProcessReleasesIt() async throws {
        let db = TestFiles.db()
        let child = try Child("hold", db, "sync", "6000")
        let theirs = child.readNumber("held")
        let lock = try LeaseStore(path: db).lock("sync", label: "app")
        let waiting = Task { try await lock.acquire(timeout: 10) }
        try await Task.sleep(nanoseconds: 100_000_000)
        child.order("release")
        let leaseGuard = try await waiting.value
        XCTAssertTrue(leaseGuard.isDirty)
        XCTAssertGreaterThan(leaseGuard.generation, theirs)
        leaseGuard.release()
    }

    func testTheOtherProcessHoldingItThroughoutIsATimeout() async throws {
        let db = TestFiles.db()
        let child = try Child("hold", db, "sync", "6000")
        _ = child.readNumber("held")
        let lock = try LeaseStore(path: db).lock("sync", label: "app")
        do {
            _ = try await lock.acquire(timeout: 0.2)
            XCTFail("acquired a lease another process holds")
        } catch let error as LeaseError {
            XCTAssertEqual(error.status, Status.timeout)
            XCTAssertFalse(error.message.isEmpty, "the message is read on the callback's thread")
        }
        child.order("release")
    }

    func testATaskCancelledWhileWaitingCancelsTheAcquisitionAndHoldsNothing() async throws {
        let db = TestFiles.db()
        let child = try Child("hold", db, "sync", "6000")
        _ = child.readNumber("held")
        let lock = try LeaseStore(path: db).lock("sync", label: "app")

        let waiting = Task { try await lock.acquire(timeout: 30) }
        try await Task.sleep(nanoseconds: 200_000_000)
        let cancelled = Date()
        waiting.cancel()
        do {
            _ = try await waiting.value
            XCTFail("a cancelled acquisition returned a guard")
        } catch {
            XCTAssertTrue(error is CancellationError, "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(cancelled), 1, "not the acquisition's 30 s")
        // The native acquisition was called back (with LEASE_CANCELLED) long before 30 s.
        eventually("the acquisition ended") { libraryIsIdle() }

        // Cancelled before it even started.
        let early = Task { () -> LeaseGuard in
            _ = withUnsafeCurrentTask { $0?.cancel() }
            return try await lock.acquire(timeout: 30)
        }
        do {
            _ = try await early.value
            XCTFail("a cancelled acquisition returned a guard")
        } catch {
            XCTAssertTrue(error is CancellationError, "\(error)")
        }
        eventually("the acquisition ended") { libraryIsIdle() }

        child.order("release")
        XCTAssertEqual(child.read(), "released")
        XCTAssertEqual(try Child.probe(db, "sync"), 0, "nobody holds it: no acquisition of ours leaked")
    }

    func testAcquireInATaskCancelledAlreadyThrowsAndWritesNothing() async throws {
        let db = TestFiles.db()
        // Another process held the lease last: taking it here would start a new generation.
        let child = try Child("hold", db, "sync", "6000")
        let theirs = child.readNumber("held")
        child.order("release")
        XCTAssertEqual(child.read(), "released")
        XCTAssertEqual(child.exitStatus(), 0)
        let database = try LeaseDatabase(path: db)
        let row = "SELECT generation, label, expires_ms FROM liblease_lease WHERE key = ?"
        let before = try XCTUnwrap(try database.queryFirst(row, "sync"))
        XCTAssertEqual(before[0].int64, Int64(theirs))

        let lock = try LeaseStore(path: db).lock("sync", label: "app")
        let cancelled = Task { () -> LeaseGuard in
            _ = withUnsafeCurrentTask { $0?.cancel() }
            return try await lock.acquire(timeout: 5)
        }
        do {
            _ = try await cancelled.value
            XCTFail("a cancelled task acquired the lease")
        } catch {
            XCTAssertTrue(error is CancellationError, "\(error)")
        }
        XCTAssertEqual(try database.queryFirst(row, "sync"), before, "the same generation, label and expiry: no write")
    }

    func testCancellationRacingWithTheGuardsArrivalNeverLeaksAGuard() async throws {
        let lock = try LeaseStore(path: TestFiles.db()).lock("sync", label: "app")
        let acquired = Counter()
        for i in 0..<300 {
            let task = Task.detached {
                let leaseGuard = try await lock.acquire(timeout: 5)
                acquired.add()
                leaseGuard.release()
            }
            // Cancel at a different moment each time: before the acquisition starts, while it
            // waits, as the guard arrives, after the task has it.
            usleep(useconds_t((i % 30) * 20))
            task.cancel()
            _ = try? await task.value
        }
        eventually("every guard is released") { libraryIsIdle() }
        print("cancellation race: \(acquired.value) of 300 tasks got the guard before being cancelled")
    }
}
