import Foundation
import Lease
import XCTest

/// Knowing what changed: `LeaseDatabase.changes()` and `observe(_:)`, with the writes made by
/// another OS process (LeaseTestChild's `write`) unless the test says otherwise.
///
/// The streams are iterated in detached tasks, and the tests (synchronous, on XCTest's thread)
/// wait for what those tasks report, so that no test blocks a thread the tasks need.
final class ChangesTests: XCTestCase {
    private var path: String!
    private var database: LeaseDatabase!

    override func setUpWithError() throws {
        path = TestFiles.db("changes")
        database = try LeaseDatabase(path: path)
        for table in ["a", "b", "c"] {
            try database.execute("CREATE TABLE \(table) (x)")
        }
    }

    override func tearDown() {
        database = nil
        eventually("every observer is freed") { libraryIsIdle() }
        super.tearDown()
    }

    func testACommitInAnotherProcessReachesTheStreamWithTheTablesItChanged() throws {
        let told = LineQueue()
        let iterating = try iterate(database.changes(), into: told)
        defer { iterating.cancel() }
        let writer = try Child("write", path)
        writer.order("tx a b")
        XCTAssertEqual(writer.read(), "done")
        XCTAssertEqual(told.take(timeout: 10), "a,b", "one commit: its two tables, and none of liblease's")
        writer.order("tx c")
        XCTAssertEqual(writer.read(), "done")
        XCTAssertEqual(told.take(timeout: 10), "c")
        writer.order("end")
        XCTAssertEqual(writer.exitStatus(), 0)
    }

    func testAWriteThatNamesNoTableIsAChangeOfUnknownTables() throws {
        let told = LineQueue()
        let iterating = try iterate(database.changes(), into: told)
        defer { iterating.cancel() }
        let writer = try Child("write", path)
        // Recorded by no one: the observer sees a commit it has no record of.
        writer.order("sql PRAGMA user_version = 7")
        XCTAssertEqual(writer.read(), "done")
        XCTAssertEqual(told.take(timeout: 10), "unknown")
        writer.order("end")
        XCTAssertEqual(writer.exitStatus(), 0)
    }

    func testAfterABurstOfCommitsAnElementComesThatCoversTheLast() throws {
        let told = LineQueue()
        let iterating = try iterate(database.changes(), into: told)
        defer { iterating.cancel() }
        let writer = try Child("write", path)
        writer.order("burst a 300")
        XCTAssertEqual(writer.read(timeout: 60), "done")
        writer.order("tx b") // the last commit
        XCTAssertEqual(writer.read(), "done")
        var elements = 0
        while true {
            guard let element = told.take(timeout: 10) else {
                XCTFail("no element named b, the last commit's table, after \(elements) elements")
                break
            }
            elements += 1
            XCTAssertTrue(["a", "b", "a,b"].contains(element), "only the tables written: \(element)")
            if element.contains("b") { break }
        }
        XCTAssertLessThanOrEqual(elements, 301, "never more elements than commits")
        writer.order("end")
        XCTAssertEqual(writer.exitStatus(), 0)
    }

    /// The stream is iterated only once every commit has been announced: the commits, one per
    /// table, all wait in its one-element buffer, merged. (Had the buffer kept only the newest
    /// change, a and b would be lost.)
    func testAConsumerThatFallsBehindIsToldEveryTableInMergedElements() throws {
        let changes = try database.changes()
        // A witness on the same file: once it has been told of c, so has the stream (almost
        // surely; if not, the elements come later, and the test still holds).
        let witnessed = LineQueue()
        let witness = try database.observe { witnessed.put(text(of: $0)) }
        defer { witness.cancel() }
        let writer = try Child("write", path)
        writer.order("burst a 100")
        XCTAssertEqual(writer.read(timeout: 30), "done")
        writer.order("tx b")
        XCTAssertEqual(writer.read(), "done")
        writer.order("tx c")
        XCTAssertEqual(writer.read(), "done")
        var seen: Set<String> = []
        while !seen.contains("c"), let element = witnessed.take(timeout: 10) {
            seen.formUnion(element.split(separator: ",").map { String($0) })
        }
        XCTAssertEqual(seen, ["a", "b", "c"], "the witness was told every table")

        let told = LineQueue()
        let iterating = iterate(changes, into: told)
        defer { iterating.cancel() }
        var tables: Set<String> = []
        var elements = 0
        while tables != ["a", "b", "c"], let element = told.take(timeout: 10) {
            XCTAssertNotEqual(element, "unknown", "every writer was liblease's")
            tables.formUnion(element.split(separator: ",").map { String($0) })
            elements += 1
        }
        XCTAssertEqual(tables, ["a", "b", "c"], "every table, though the consumer came late")
        XCTAssertLessThanOrEqual(elements, 3, "the waiting changes were merged, not queued one per commit")
        writer.order("end")
        XCTAssertEqual(writer.exitStatus(), 0)
    }

    func testCancellingTheIteratingTaskStopsTheObserver() throws {
        let changes = try database.changes()
        let told = LineQueue()
        let iterating = iterate(changes, into: told)
        try database.execute("INSERT INTO a VALUES (1)") // this process's own commits are told too
        XCTAssertEqual(told.take(timeout: 10), "a")
        assertLeaseError(Status.misuse, try LeaseLibrary.shutdown()) // the observer keeps the library's thread

        iterating.cancel()
        XCTAssertEqual(told.take(timeout: 10), "ended", "the loop ended")
        // The stream itself is still referenced: the cancellation stopped the observer.
        eventually("the observer is freed") { libraryIsIdle() }
        withExtendedLifetime(changes) {}
    }

    func testDroppingTheIteratorOrTheStreamNeverIteratedStopsTheObserver() throws {
        // As leaving a `for await` loop does: the iterator, which holds the stream, goes away.
        let told = LineQueue()
        let database = self.database!
        Task.detached {
            var iterator = try database.changes().makeAsyncIterator()
            told.put("observing")
            guard let change = await iterator.next() else {
                told.put("ended")
                return
            }
            told.put(text(of: change))
        }
        XCTAssertEqual(told.take(timeout: 10), "observing")
        try database.execute("INSERT INTO b VALUES (1)")
        XCTAssertEqual(told.take(timeout: 10), "b")
        eventually("the observer is freed with its iterator") { libraryIsIdle() }

        _ = try database.changes()
        eventually("the observer is freed with its stream") { libraryIsIdle() }
    }

    func testAnObserversHandlerRunsOnTheLibrarysThreadUntilCancelledAndIsThenReleased() throws {
        let told = LineQueue()
        let released = LineQueue()
        let observer = try database.observe { [token = ReleaseToken(released)] change in
            withExtendedLifetime(token) {
                told.put("\(text(of: change)) on \(currentThreadName())")
            }
        }
        let writer = try Child("write", path)
        writer.order("tx b")
        XCTAssertEqual(writer.read(), "done")
        XCTAssertEqual(told.take(timeout: 10), "b on liblease")
        assertLeaseError(Status.misuse, try LeaseLibrary.shutdown()) // the observer keeps the library's thread

        observer.cancel()
        XCTAssertTrue(observer.isCancelled)
        XCTAssertEqual(released.take(timeout: 0), "released", "the handler is released when cancel() returns")
        eventually("the observer is freed") { libraryIsIdle() }
        writer.order("tx c")
        XCTAssertEqual(writer.read(), "done")
        XCTAssertNil(told.take(timeout: 0.3), "not called after cancel()")
        observer.cancel() // idempotent
        writer.order("end")
        XCTAssertEqual(writer.exitStatus(), 0)
    }

    func testAnObserverStopsWithItsLastReference() throws {
        var observer: LeaseObserver? = try database.observe { _ in }
        XCTAssertEqual(observer?.isCancelled, false)
        assertLeaseError(Status.misuse, try LeaseLibrary.shutdown())
        observer = nil
        eventually("the observer is freed") { libraryIsIdle() }
    }
}

/// Iterates `changes` in a detached task, putting each element into `told` as `text(of:)` has
/// it, and "ended" when the stream ends.
private func iterate(_ changes: AsyncStream<Set<String>?>, into told: LineQueue) -> Task<Void, Never> {
    Task.detached {
        for await change in changes {
            told.put(text(of: change))
        }
        told.put("ended")
    }
}

/// A change as the tests compare it: its tables sorted and joined by commas, or "unknown".
private func text(of change: Set<String>?) -> String {
    guard let change else { return "unknown" }
    return change.sorted().joined(separator: ",")
}
