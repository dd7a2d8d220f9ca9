#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif
import Foundation
import Lease
import XCTest

/// Suspending this process (`LeaseLibrary.suspend`), as an app going to the background does, with
/// a child process playing the other process of the App Group.
///
/// A suspension is process-wide: while one of these tests has the process suspended, no other
/// test may write. XCTest runs the tests of a process one at a time (swift-corelibs-xctest's
/// suites run their tests one after another, an async test included: the suite waits for it),
/// and `swift test --parallel` runs them in separate processes. Each test ends resumed, whatever
/// happens (`tearDown`).
final class SuspensionTests: XCTestCase {
    override func setUp() {
        super.setUp()
        XCTAssertFalse(LeaseLibrary.isSuspended, "an earlier test left the process suspended")
    }

    override func tearDown() {
        LeaseLibrary.resume()
        eventually("every guard is released and every acquisition called back") { libraryIsIdle() }
        super.tearDown()
    }

    func testASuspendedProcessHandsItsLeaseOverAtOnceAndWritesNothingUntilItResumes() async throws {
        let db = TestFiles.db()
        let database = try LeaseDatabase(path: db)
        try database.execute("CREATE TABLE work (who TEXT)")
        let store = try LeaseStore(path: db)
        // A minute: only the suspension handing the lease back explains the child taking it soon.
        let minute = LockOptions(lease: 60, renewEvery: 15)
        let sync = try store.lock("sync", label: "app", options: minute)
        let lost = LineQueue()
        try sync.setLostHandler { itsLock in lost.put(itsLock.key) }
        let leaseGuard = try await sync.acquire(timeout: 5)
        let ours = leaseGuard.generation

        // The child holds "other" and waits for "sync"; this process waits for "other".
        let child = try Child("wait", db, "other", "sync", "60000")
        _ = child.readNumber("held")
        let other = try store.lock("other", label: "app", options: minute)
        let waiting = Task { try await other.acquire(timeout: 30) }
        // A transaction open across the suspension, with a row in it.
        let transaction = try database.begin()
        try transaction.execute("INSERT INTO work (who) VALUES ('rolled back')")
        try await Task.sleep(nanoseconds: 300_000_000) // both acquisitions are waiting by now

        let suspended = Date()
        try LeaseLibrary.suspend(timeout: 10)
        XCTAssertTrue(LeaseLibrary.isSuspended)

        // The acquisition waiting here ends at once, with the suspension's error.
        do {
            let taken = try await waiting.value
            taken.release()
            XCTFail("an acquisition succeeded while the process was suspended")
        } catch let error as LeaseError {
            XCTAssertEqual(error.status, Status.suspended, "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(suspended), 5, "promptly, not after the acquisition's 30 s")

        // The child took "sync" at once: its one-minute lease was handed back.
        let theirs = child.readNumber("took")
        XCTAssertLessThan(Date().timeIntervalSince(suspended), 10, "well before the lease could run out")
        XCTAssertGreaterThan(theirs, ours)

        // Here, meanwhile: the guard is lost, and the lock's lost handler ran.
        assertLeaseError(Status.lost, containing: "lease_guard_check", try leaseGuard.check())
        XCTAssertFalse(leaseGuard.isHeld)
        XCTAssertEqual(lost.take(timeout: 5), "sync", "the lost handler")
        // Writes, transactions and acquisitions are refused; reads work.
        assertLeaseError(Status.suspended, containing: "lease_db_execute",
                         try database.execute("INSERT INTO work (who) VALUES ('suspended')"))
        assertLeaseError(Status.suspended, containing: "lease_db_begin", try database.begin())
        assertLeaseError(Status.suspended, containing: "lease_lock_try_acquire", try sync.tryAcquire())
        assertLeaseError(Status.suspended, containing: "lease_lock_acquire", try sync.acquireBlocking(timeout: 1))
        XCTAssertEqual(try database.queryFirst("SELECT count(*) FROM work")?[0].int64, 0,
                       "a read works, and the open transaction's row is not there")
        XCTAssertTrue(LeaseLibrary.isSuspended)
        // The transaction open at the suspension was rolled back: its next call says so, and it can
        // still be rolled back (which frees it).
        assertLeaseError(Status.suspended, containing: "lease_tx_execute",
                         try transaction.execute("INSERT INTO work (who) VALUES ('after the suspension')"))
        transaction.rollback()
        XCTAssertFalse(transaction.isOpen)

        // Resumed: once the child gives "sync" back, this process takes it afresh, and writes.
        LeaseLibrary.resume()
        XCTAssertFalse(LeaseLibrary.isSuspended)
        leaseGuard.release() // harmless: the suspension gave the lease back already
        child.order("release")
        XCTAssertEqual(child.read(), "released")
        XCTAssertEqual(child.exitStatus(), 0)
        let again = try await sync.acquire(timeout: 10)
        XCTAssertTrue(again.isDirty, "another process held it since")
        XCTAssertGreaterThan(again.generation, theirs)
        XCTAssertEqual(try database.execute("INSERT INTO work (who) VALUES ('resumed')"), 1)
        let fenced = try database.beginFenced(again)
        try fenced.execute("INSERT INTO work (who) VALUES ('resumed, fenced')")
        try fenced.commit()
        again.release()
        XCTAssertNil(lost.take(timeout: 0.2), "the lost handler ran once")

        let writers = try database.query("SELECT who FROM work ORDER BY rowid").map { $0[0].string }
        XCTAssertEqual(writers, ["resumed", "resumed, fenced"], "nothing written while suspended")
    }

    func testSuspendingTwiceIsHarmlessAndResumingWithoutASuspensionDoesNothing() throws {
        let database = try LeaseDatabase(path: TestFiles.db())
        LeaseLibrary.resume() // not suspended: nothing to end
        XCTAssertFalse(LeaseLibrary.isSuspended)
        try database.execute("CREATE TABLE t (x INTEGER)")

        try LeaseLibrary.suspend(timeout: 5)
        try LeaseLibrary.suspend(timeout: 0) // suspended already: finds nothing to stop
        XCTAssertTrue(LeaseLibrary.isSuspended)
        assertLeaseError(Status.suspended, try database.execute("INSERT INTO t VALUES (1)"))

        LeaseLibrary.resume() // one resume ends both
        XCTAssertFalse(LeaseLibrary.isSuspended)
        XCTAssertEqual(try database.execute("INSERT INTO t VALUES (1)"), 1)
        LeaseLibrary.resume() // not suspended any more: nothing to end
        XCTAssertFalse(LeaseLibrary.isSuspended)
        XCTAssertEqual(try database.execute("INSERT INTO t VALUES (2)"), 1)
        XCTAssertEqual(try database.query("SELECT x FROM t ORDER BY x"), [[1], [2]])
    }

    /// A statement that keeps running (its row callback takes half a second) outlasts a
    /// suspension's timeout: the suspension throws timeout, the process is suspended all the same,
    /// and a second suspension waits for the statement, which is interrupted.
    func testASuspensionThatCannotStopAStatementInTimeThrowsTimeoutAndTheProcessStaysSuspended() throws {
        let database = try LeaseDatabase(path: TestFiles.db())
        try database.execute("CREATE TABLE t (x INTEGER)")
        try database.execute("INSERT INTO t VALUES (1)")
        let inRow = DispatchSemaphore(value: 0)
        let outcome = LineQueue()
        Thread.detachNewThread {
            do {
                let transaction = try database.begin()
                do {
                    try transaction.forEachRow("SELECT x FROM t") { _ in
                        inRow.signal()
                        usleep(500_000)
                    }
                    outcome.put("the query ended")
                } catch let error as LeaseError {
                    outcome.put("the query threw \(error.status)")
                }
                transaction.rollback()
            } catch {
                outcome.put("\(error)")
            }
        }
        XCTAssertEqual(inRow.wait(timeout: .now() + 5), .success)
        assertLeaseError(Status.timeout, containing: "lease_suspend", try LeaseLibrary.suspend(timeout: 0.05))
        XCTAssertTrue(LeaseLibrary.isSuspended, "suspended all the same")
        try LeaseLibrary.suspend(timeout: 10) // waits for the row callback to return
        XCTAssertEqual(outcome.take(timeout: 5), "the query threw \(Status.database)", "the statement was interrupted")
        XCTAssertEqual(try database.queryFirst("SELECT count(*) FROM t")?[0].int64, 1, "what was committed stays")
    }
}
