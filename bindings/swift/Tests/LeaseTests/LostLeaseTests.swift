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
        try lock.setLostHandler { key in lost.put("\(key) on \(currentThreadName())") }
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
}
