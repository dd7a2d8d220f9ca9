import Foundation
import Lease
import XCTest

final class DatabaseTests: XCTestCase {
    private var db: LeaseDatabase!

    override func setUpWithError() throws {
        db = try LeaseDatabase(path: TestFiles.db())
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v ANY) STRICT")
    }

    override func tearDown() {
        db = nil
        eventually("every guard is released") { libraryIsIdle() }
        super.tearDown()
    }

    private func count() throws -> Int64 {
        try XCTUnwrap(try db.queryFirst("SELECT count(*) FROM t")?[0].int64)
    }

    func testValuesOfEveryKindGoInAsParametersAndComeBackAsSwiftValues() throws {
        let blob = Data([0, 1, 2, 255])
        let values: [SQLValue] = [42, -3.5, "héllo ✓", "a\0b", "", .blob(blob), .blob(Data()), nil, true, SQLValue(7)]
        for (index, value) in values.enumerated() {
            XCTAssertEqual(try db.execute("INSERT INTO t VALUES (?, ?)", SQLValue(index), value), 1)
        }
        let rows = try db.query("SELECT v FROM t ORDER BY id")
        XCTAssertEqual(rows.map { $0[0] }, [42, -3.5, "héllo ✓", "a\0b", "", .blob(blob), .blob(Data()), nil, 1, 7])
        XCTAssertEqual(rows[0][0].int64, 42)
        XCTAssertEqual(rows[1][0].double, -3.5)
        XCTAssertEqual(rows[3][0].string, "a\0b", "TEXT may hold NUL")
        XCTAssertEqual(rows[4][0].string, "", "empty TEXT is not NULL")
        XCTAssertEqual(rows[6][0].data, Data(), "an empty BLOB is not NULL")
        XCTAssertTrue(rows[7][0].isNull)
        XCTAssertNil(rows[0][0].string)

        let row = try XCTUnwrap(try db.queryFirst("SELECT ?, ?, ?, ?, ?", 1, 2.0, "three", .blob(Data([4])), nil))
        XCTAssertEqual(row, [1, 2.0, "three", .blob(Data([4])), .null])
    }

    func testForEachRowStreamsQueryFirstStopsAfterOneAQueryOfNothingIsEmpty() throws {
        for n in 0..<5 { try db.execute("INSERT INTO t (v) VALUES (?)", SQLValue(n)) }
        var seen: [Int64] = []
        try db.forEachRow("SELECT v FROM t WHERE v >= ? ORDER BY v", parameters: [2]) { seen.append($0[0].int64!) }
        XCTAssertEqual(seen, [2, 3, 4])
        XCTAssertEqual(try db.queryFirst("SELECT v FROM t ORDER BY v")?[0], 0)
        XCTAssertNil(try db.queryFirst("SELECT v FROM t WHERE v > 100"))
        XCTAssertEqual(try db.query("SELECT v FROM t WHERE v > 100"), [])
    }

    func testBadSqlAndBadParametersAreTheRightErrorsWithTheLibrarysMessage() throws {
        assertLeaseError(Status.database, containing: "no such table", try db.execute("INSERT INTO nowhere VALUES (1)"))
        assertLeaseError(Status.database, try db.execute("SELEC 1"))
        try db.execute("INSERT INTO t VALUES (1, 1)")
        assertLeaseError(Status.database, containing: "UNIQUE", try db.execute("INSERT INTO t VALUES (1, 1)"))
        assertLeaseError(Status.invalidArgument, containing: "lease_db_execute", try db.execute("INSERT INTO t VALUES (?, ?)", 1))
        assertLeaseError(Status.invalidArgument, try db.execute("INSERT INTO t VALUES (2, 2); INSERT INTO t VALUES (3, 3)"))
        assertLeaseError(Status.invalidArgument, try db.execute("BEGIN"))
        assertLeaseError(Status.invalidArgument, containing: "lease_db_query", try db.query("DELETE FROM t"))
        assertLeaseError(Status.invalidArgument, try db.execute("SELECT 1\0"))
        XCTAssertEqual(try count(), 1, "nothing of the failures was written")
    }

    func testOpeningWhatCannotBeSharedIsADatabaseErrorAnEmptyPathAnInvalidArgument() {
        assertLeaseError(Status.database, try LeaseDatabase(path: ":memory:"))
        assertLeaseError(Status.invalidArgument, try LeaseDatabase(path: ""))
        assertLeaseError(Status.database, try LeaseDatabase(path: TestFiles.path("missing/dir/x.db")))
    }

    func testATransactionCommitsRollsBackAndRollsBackWhenDroppedOrWhenItsBodyThrows() throws {
        try db.transaction { tx in
            XCTAssertEqual(try tx.execute("INSERT INTO t (v) VALUES (?)", "committed"), 1)
            XCTAssertEqual(try tx.queryFirst("SELECT v FROM t")?[0], "committed", "sees its own writes")
            XCTAssertEqual(try count(), 0, "others see nothing before the commit")
        }
        XCTAssertEqual(try count(), 1)

        do {
            let tx = try db.begin()
            try tx.execute("INSERT INTO t (v) VALUES ('dropped')")
        } // its last reference rolls it back
        try db.begin().rollback()
        struct Failure: Error {}
        XCTAssertThrowsError(try db.transaction { tx in
            try tx.execute("INSERT INTO t (v) VALUES ('thrown')")
            throw Failure()
        }) { XCTAssertTrue($0 is Failure) }
        XCTAssertEqual(try count(), 1)

        let tx = try db.begin()
        try tx.commit()
        tx.rollback()
        XCTAssertFalse(tx.isOpen)
        XCTAssertEqual(assertLeaseError(Status.misuse, try tx.commit())?.message, "lease_tx_commit: the transaction has ended")
        assertLeaseError(Status.misuse, try tx.execute("SELECT 1"))
    }

    func testAFailedStatementLeavesTheTransactionOpenAndSqlThatEndsItIsMisuse() throws {
        let tx = try db.begin()
        try tx.execute("INSERT INTO t VALUES (1, 'kept')")
        assertLeaseError(Status.database, try tx.execute("INSERT INTO t VALUES (1, 'duplicate')"))
        try tx.commit()
        XCTAssertEqual(try count(), 1)

        let ended = try db.begin()
        assertLeaseError(Status.misuse, try ended.execute("COMMIT"))
        assertLeaseError(Status.misuse, try ended.execute("INSERT INTO t VALUES (2, 'late')"))
        assertLeaseError(Status.misuse, try ended.commit())
    }

    func testAChunkedTransactionCommitsWhenItsChunkIsDueAndRollingBackUndoesTheCurrentChunkOnly() throws {
        let tx = try db.beginChunked(chunk: 0.02)
        try tx.execute("INSERT INTO t (v) VALUES ('chunk 1')")
        usleep(30_000)
        XCTAssertTrue(try tx.maybeCommit(), "the chunk lasted its period")
        XCTAssertEqual(try count(), 1, "a committed chunk is visible at once")
        try tx.execute("INSERT INTO t (v) VALUES ('chunk 2')")
        XCTAssertFalse(try tx.maybeCommit(), "not due yet")
        tx.rollback()
        XCTAssertEqual(try db.query("SELECT v FROM t").map { $0[0] }, ["chunk 1"])

        let plain = try db.begin()
        XCTAssertFalse(try plain.maybeCommit(), "a plain transaction never commits here")
        plain.rollback()
        try db.beginChunked().commit() // LeaseDatabase.defaultChunk: LEASE_DEFAULT_CHUNK_MS
        XCTAssertEqual(LeaseDatabase.defaultChunk, 1)
        // The library refuses a chunk that lasts no time (0 no longer means its default).
        assertLeaseError(Status.invalidArgument, containing: "lease_db_begin_chunked", try db.beginChunked(chunk: 0))
        assertLeaseError(Status.invalidArgument, containing: "lease_db_begin_chunked", try db.beginChunked(chunk: 0.0004))
    }

    func testAFencedTransactionWritesWhileTheLeaseIsHeldAndNeedsTheLeaseInTheSameFile() throws {
        let path = TestFiles.db("fenced")
        let shared = try LeaseDatabase(path: path)
        let leaseGuard = try LeaseStore(path: path).lock("sync", label: "app").acquireBlocking(timeout: 1)
        try shared.execute("CREATE TABLE work (what TEXT)")
        let tx = try shared.beginFenced(leaseGuard)
        try tx.execute("INSERT INTO work VALUES ('under the lease')")
        try tx.commit()
        XCTAssertEqual(try shared.query("SELECT * FROM work").count, 1)
        // This test's db is another file: the guard cannot fence it.
        assertLeaseError(Status.invalidArgument, containing: "lease_db_begin_fenced", try db.beginFenced(leaseGuard))
        leaseGuard.release()
        assertLeaseError(Status.misuse, try shared.beginFenced(leaseGuard)) // released

        let memoryGuard = try XCTUnwrap(try LeaseStore.inMemory().lock("sync", label: "app").tryAcquire())
        assertLeaseError(Status.invalidArgument, try shared.beginFenced(memoryGuard))
        memoryGuard.release()
    }

    func testAnErrorThrownByARowBodyStopsTheQueryAndReachesTheCaller() throws {
        for n in 0..<3 { try db.execute("INSERT INTO t (v) VALUES (?)", SQLValue(n)) }
        struct Stop: Error {}
        var calls = 0
        XCTAssertThrowsError(try db.forEachRow("SELECT v FROM t") { _ in
            calls += 1
            throw Stop()
        }) { XCTAssertTrue($0 is Stop) }
        XCTAssertEqual(calls, 1)
        XCTAssertEqual(try count(), 3, "the handle still works")
    }

    func testARowBodyMayUseLibleaseButNotQueryItsOwnHandle() throws {
        try db.execute("INSERT INTO t (v) VALUES (1)")
        try db.forEachRow("SELECT v FROM t") { _ in
            try db.execute("INSERT INTO t (v) VALUES ('written from a row body')")
        }
        XCTAssertEqual(try count(), 2)
        try db.forEachRow("SELECT v FROM t") { _ in
            assertLeaseError(Status.misuse, try db.query("SELECT 1"))
        }
        let tx = try db.begin()
        try tx.execute("INSERT INTO t (v) VALUES ('in the transaction')")
        try tx.forEachRow("SELECT v FROM t LIMIT 1") { _ in
            assertLeaseError(Status.misuse, containing: "lease_tx_execute", try tx.execute("SELECT 1"))
        }
        XCTAssertTrue(tx.isOpen, "a refused call leaves the transaction open")
        try tx.commit()
        XCTAssertEqual(try count(), 3)
    }

    func testCommitOrRollbackFromTheTransactionsOwnRowBodyEndsItWhenTheQueryReturns() throws {
        try db.execute("INSERT INTO t (v) VALUES ('before')")
        let committed = try db.begin()
        try committed.execute("INSERT INTO t (v) VALUES ('not committed')")
        try committed.forEachRow("SELECT v FROM t LIMIT 1") { _ in
            assertLeaseError(Status.misuse, containing: "lease_tx_commit", try committed.commit())
        }
        XCTAssertFalse(committed.isOpen, "commit consumes the transaction on every path")
        assertLeaseError(Status.misuse, try committed.commit())
        XCTAssertEqual(try count(), 1, "nothing was committed: the library rolled it back when the query returned")
        // A single try: BUSY if the transaction still held the write lock.
        try db.setBusyTimeout(0)
        try db.execute("INSERT INTO t (v) VALUES ('the write lock is free')")

        let rolledBack = try db.begin()
        try rolledBack.execute("INSERT INTO t (v) VALUES ('rolled back')")
        try rolledBack.forEachRow("SELECT v FROM t LIMIT 1") { _ in rolledBack.rollback() }
        XCTAssertFalse(rolledBack.isOpen)
        try db.execute("INSERT INTO t (v) VALUES ('free again')")
        XCTAssertEqual(try db.query("SELECT v FROM t ORDER BY id").map { $0[0] }, ["before", "the write lock is free", "free again"])
    }

    func testAWriteThatCannotGetItsTurnWithinTheBusyTimeoutIsBusy() throws {
        let open = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let database = db!
        Thread.detachNewThread {
            let tx = try! database.begin()
            try! tx.execute("INSERT INTO t (v) VALUES ('held')")
            open.signal()
            _ = done.wait(timeout: .now() + 10)
            try! tx.commit()
            finished.signal()
        }
        XCTAssertEqual(open.wait(timeout: .now() + 5), .success)
        try db.setBusyTimeout(0)
        assertLeaseError(Status.busy, containing: "lease_db_execute", try db.execute("INSERT INTO t (v) VALUES ('late')"))
        try db.setBusyTimeout(0.05)
        assertLeaseError(Status.busy, try db.begin())
        XCTAssertEqual(try count(), 0, "reads are not held up by the open transaction")
        done.signal()
        XCTAssertEqual(finished.wait(timeout: .now() + 5), .success)
        try db.setBusyTimeout(5)
        XCTAssertEqual(try db.execute("INSERT INTO t (v) VALUES ('now')"), 1)
        XCTAssertEqual(try count(), 2)
    }

    func testThreadsWritingAtOnceAllGetInAndATransactionMayMoveBetweenThreads() throws {
        let database = db!
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for i in 0..<50 {
                if i % 2 == 0 {
                    try! database.execute("INSERT INTO t (v) VALUES (?)", SQLValue("\(thread)-\(i)"))
                } else {
                    _ = try! database.transaction { tx in try tx.execute("INSERT INTO t (v) VALUES (?)", SQLValue("\(thread)-\(i)")) }
                }
            }
        }
        XCTAssertEqual(try count(), 200)

        let tx = try db.begin()
        try tx.execute("INSERT INTO t (v) VALUES ('moved')")
        let committed = DispatchSemaphore(value: 0)
        let handoff = TransactionHandoff(tx) // this thread does not touch tx again
        Thread.detachNewThread {
            try! handoff.take()!.commit()
            committed.signal()
        }
        XCTAssertEqual(committed.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(try count(), 201)
    }

    func testATransactionOutlivesItsDatabaseHandle() throws {
        var other: LeaseDatabase? = try LeaseDatabase(path: TestFiles.db())
        try other?.execute("CREATE TABLE u (x)")
        let tx = try XCTUnwrap(try other?.begin())
        other = nil
        try tx.execute("INSERT INTO u VALUES (1)")
        try tx.commit()
        XCTAssertFalse(tx.isOpen)
    }
}

/// Hands a transaction to another thread, as the header allows (one thread at a time): the thread
/// that takes it owns it, and the one that gave it must not use it any more. `Sendable` because
/// the handoff itself is thread-safe (`transaction` is touched only under `lock`) and `take()`
/// gives the transaction to one taker only.
final class TransactionHandoff: @unchecked Sendable {
    private let lock = NSLock()
    private var transaction: LeaseTransaction?

    init(_ transaction: LeaseTransaction) { self.transaction = transaction }

    func take() -> LeaseTransaction? {
        lock.lock()
        defer { lock.unlock() }
        let taken = transaction
        transaction = nil
        return taken
    }
}
