#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif
import Foundation
import Lease
import XCTest

/// A lease lost for real: a child process stops this process (SIGSTOP) for longer than the lease,
/// takes the lease and writes under it, and continues us (SIGCONT), as a suspended iOS app would be.
final class LostLeaseTests: XCTestCase {
    func testALeaseLostWhileThisProcessWasStopped() throws {
        let db = TestFiles.db()
        let database = try LeaseDatabase(path: db)
        try database.execute("CREATE TABLE work (who TEXT)")
        let lock = try LeaseStore(path: db).lock("sync", label: "victim", options: LockOptions(lease: 1, renewEvery: 0.25))
        let lost = LineQueue()
        try lock.setLostHandler { itsLock in lost.put("\(itsLock.key) on \(currentThreadName())") }
        let leaseGuard = try lock.acquireBlocking(timeout: 1)
        let ours = leaseGuard.generation
        try database.transaction { _ in } // an empty one, to see that it works
        let before = try database.beginFenced(leaseGuard)
        try before.execute("INSERT INTO work (who) VALUES ('victim before')")
        try before.commit()

        let thief = try Child("steal", db, "sync", String(getpid()), "2500")
        let theirs = thief.readNumber("stole")
        XCTAssertGreaterThan(theirs, ours)

        // Continued: the guard knows at once, before the library's thread has looked.
        assertLeaseError(Status.lost, containing: "lease_guard_check", try leaseGuard.check())
        XCTAssertFalse(leaseGuard.isHeld)
        XCTAssertEqual(lost.take(timeout: 5), "sync on liblease", "the lost handler, on the library's thread")

        // A write fenced by the lost guard is refused, and writes nothing.
        assertLeaseError(Status.lost, containing: "lease_db_begin_fenced", try database.beginFenced(leaseGuard))
        XCTAssertNil(try lock.tryAcquire(), "the thief holds it now")
        leaseGuard.release() // harmless: it gives back nothing

        thief.order("release")
        XCTAssertEqual(thief.read(), "released")
        XCTAssertEqual(thief.exitStatus(), 0)

        // The next hold is a fresh one: dirty, in a newer generation.
        let again = try lock.acquireBlocking(timeout: 5)
        XCTAssertTrue(again.isDirty)
        XCTAssertGreaterThan(again.generation, theirs)
        again.release()
        XCTAssertNil(lost.take(timeout: 0.2), "called once")

        let writers = try database.query("SELECT who FROM work ORDER BY rowid").map { $0[0].string }
        XCTAssertEqual(writers, ["victim before", "thief"], "only the holders' writes, in order")
        eventually("every guard is released") { libraryIsIdle() }
    }

    /// A lost handler that replaces itself while another thread is replacing it too. The other
    /// thread's call waits for the running handler, so the handler's own call must not wait for the
    /// other thread: it did while setLostHandler held a Swift lock around the native call.
    func testAHandlerThatReplacesItselfWhileAnotherThreadReplacesItDoesNotDeadlock() throws {
        let db = TestFiles.db()
        try LeaseDatabase(path: db).execute("CREATE TABLE work (who TEXT)") // the thief writes a row
        let lock = try LeaseStore(path: db).lock("sync", label: "victim", options: LockOptions(lease: 1, renewEvery: 0.25))
        let events = LineQueue()
        let otherThreadCalls = DispatchSemaphore(value: 0)
        try lock.setLostHandler { itsLock in
            events.put("handler running")
            // Until the other thread is inside setLostHandler, waiting for this call to return.
            _ = otherThreadCalls.wait(timeout: .now() + 10)
            usleep(200_000)
            do {
                try itsLock.setLostHandler { _ in events.put("the handler's replacement called") }
                events.put("the handler's call returned")
            } catch {
                events.put("the handler's call failed: \(error)")
            }
        }
        let leaseGuard = try lock.acquireBlocking(timeout: 1)
        let thief = try Child("steal", db, "sync", String(getpid()), "2500")
        _ = thief.readNumber("stole")
        XCTAssertEqual(events.take(timeout: 5), "handler running")

        let otherThreadReturned = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            otherThreadCalls.signal()
            do {
                try lock.setLostHandler { _ in events.put("the other thread's replacement called") }
            } catch {
                events.put("the other thread's call failed: \(error)")
            }
            otherThreadReturned.signal()
        }
        XCTAssertEqual(events.take(timeout: 10), "the handler's call returned", "at once, from inside the handler")
        XCTAssertEqual(otherThreadReturned.wait(timeout: .now() + 10), .success, "once the handler had returned")
        XCTAssertNil(events.take(timeout: 0.2), "neither replacement is called: the lease was lost once")

        leaseGuard.release()
        thief.order("release")
        XCTAssertEqual(thief.read(), "released")
        XCTAssertEqual(thief.exitStatus(), 0)
        eventually("every guard is released") { libraryIsIdle() }
    }
}
