import Foundation
import Lease
import XCTest

/// Schema migrations (`LeaseDatabase.migrate(to:timeout:step:)`): several OS processes migrating
/// one file at once (LeaseTestChild's `migrate`), and what a step may and may not do.
final class MigrationTests: XCTestCase {
    override func tearDown() {
        eventually("the library is idle") { libraryIsIdle() }
        super.tearDown()
    }

    func testSeveralProcessesMigratingAFreshFileAtOnceRunEachStepOnce() throws {
        let path = TestFiles.db("fresh")
        let database = try LeaseDatabase(path: path) // a new, empty file, at version 0
        let migrators = try (0..<4).map { _ in try Child("migrate", path, "3") }
        for migrator in migrators {
            XCTAssertEqual(migrator.read(), "ready")
        }
        for migrator in migrators {
            migrator.order("go")
        }
        for migrator in migrators {
            XCTAssertEqual(migrator.read(timeout: 60), "migrated 3", "child \(migrator.pid)")
            XCTAssertEqual(migrator.exitStatus(), 0)
        }
        let steps = try database.query("SELECT version, pid FROM step_log ORDER BY version")
        XCTAssertEqual(steps.map { $0[0] }, [1, 2, 3], "each step ran once, in one process or another")
        let pids = Set(migrators.map { Int64($0.pid) })
        XCTAssertTrue(steps.allSatisfy { pids.contains($0[1].int64 ?? 0) }, "run by the migrators: \(steps)")
        XCTAssertEqual(try userVersion(database), 3)
        XCTAssertEqual(try database.execute("INSERT INTO items (name, done) VALUES ('the schema is there', 1)"), 1)
    }

    func testAStepThatThrowsIsRolledBackAndItsErrorRethrown() throws {
        let database = try LeaseDatabase(path: TestFiles.db())
        struct Refused: Error {
            let version: UInt32
        }
        var calls: [UInt32] = []
        do {
            try database.migrate(to: 3) { tx, version in
                calls.append(version)
                try tx.execute("CREATE TABLE t\(version) (x)")
                if version == 2 {
                    throw Refused(version: version)
                }
            }
            XCTFail("the failing step's error did not reach the caller")
        } catch let error as Refused {
            XCTAssertEqual(error.version, 2, "the step's own error, as it threw it")
        }
        XCTAssertEqual(calls, [1, 2])
        XCTAssertEqual(try userVersion(database), 1, "the version stays where the last good step left it")
        XCTAssertEqual(try tables(database), ["t1"], "nothing of the failed step stays")

        // A LeaseError from a statement of the step is rethrown as it is too, not as the step's
        // status: its message names the statement's function.
        assertLeaseError(Status.database, containing: "lease_tx_execute", try database.migrate(to: 3) { tx, _ in
            try tx.execute("CREATE TABLE (")
        })
        XCTAssertEqual(try userVersion(database), 1)

        // The next call runs the failed step again.
        calls = []
        try database.migrate(to: 3) { tx, version in
            calls.append(version)
            try tx.execute("CREATE TABLE t\(version) (x)")
        }
        XCTAssertEqual(calls, [2, 3])
        XCTAssertEqual(try userVersion(database), 3)
        XCTAssertEqual(try tables(database), ["t1", "t2", "t3"])
    }

    func testAFileOfANewerVersionIsRefusedAndNoStepIsCalled() throws {
        let database = try LeaseDatabase(path: TestFiles.db())
        try database.migrate(to: 3) { _, _ in }
        assertLeaseError(Status.database, containing: "version 3", try database.migrate(to: 2) { _, version in
            XCTFail("step \(version) called on a file of a newer version")
        })
        XCTAssertEqual(try userVersion(database), 3, "left as it was")
    }

    func testAFileAtItsTargetCallsNoStep() throws {
        let database = try LeaseDatabase(path: TestFiles.db())
        var calls: [UInt32] = []
        try database.migrate(to: 2) { _, version in calls.append(version) }
        XCTAssertEqual(calls, [1, 2])
        try database.migrate(to: 2) { _, version in calls.append(version) }
        XCTAssertEqual(calls, [1, 2], "no step for a file at its target")
        XCTAssertEqual(try userVersion(database), 2)

        // A new file is at version 0.
        try LeaseDatabase(path: TestFiles.db()).migrate(to: 0) { _, version in calls.append(version) }
        XCTAssertEqual(calls, [1, 2])
    }

    func testCommitInsideAStepThrowsAndTheStepStillCommitsWhenItReturns() throws {
        let database = try LeaseDatabase(path: TestFiles.db())
        var kept: LeaseTransaction?
        try database.migrate(to: 1) { tx, _ in
            XCTAssertEqual(try tx.queryFirst("PRAGMA user_version")?[0].int64, 0, "set when the step commits")
            try tx.execute("CREATE TABLE items (x)")
            assertLeaseError(Status.misuse, containing: "lease_tx_commit", try tx.commit())
            XCTAssertTrue(tx.isOpen, "a refused commit leaves it open")
            try tx.execute("INSERT INTO items VALUES (1)")
            kept = tx
        }
        XCTAssertEqual(try userVersion(database), 1)
        XCTAssertEqual(try database.query("SELECT x FROM items"), [[1]], "the step committed when it returned")

        // Kept past its step, the transaction reaches the library no more: it was taken back.
        let tx = try XCTUnwrap(kept)
        XCTAssertFalse(tx.isOpen)
        assertLeaseError(Status.misuse, containing: "has ended", try tx.execute("INSERT INTO items VALUES (2)"))
        assertLeaseError(Status.misuse, containing: "has ended", try tx.commit())
        tx.rollback() // frees nothing, nor does its last reference
        XCTAssertEqual(try database.execute("INSERT INTO items VALUES (3)"), 1, "the write lock is free")
    }

    func testRollbackInsideAStepRollsTheStepBackAndMigrateThrows() throws {
        let database = try LeaseDatabase(path: TestFiles.db())
        assertLeaseError(Status.misuse, containing: "rollback()", try database.migrate(to: 2) { tx, version in
            try tx.execute("CREATE TABLE t\(version) (x)")
            if version == 2 {
                tx.rollback()
                XCTAssertFalse(tx.isOpen)
                assertLeaseError(Status.misuse, try tx.execute("INSERT INTO t2 VALUES (1)"))
                tx.rollback() // idempotent
            }
        })
        XCTAssertEqual(try userVersion(database), 1)
        XCTAssertEqual(try tables(database), ["t1"], "step 2 was rolled back")
    }
}

/// The file's `PRAGMA user_version`.
private func userVersion(_ database: LeaseDatabase) throws -> Int64? {
    try database.queryFirst("PRAGMA user_version")?[0].int64
}

/// The tables the migrations of these tests make (t1, t2...), by name.
private func tables(_ database: LeaseDatabase) throws -> [SQLValue] {
    try database.query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name GLOB 't[0-9]*' ORDER BY name")
        .map { $0[0] }
}
