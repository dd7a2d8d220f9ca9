import Foundation
import Lease
import XCTest

final class StoreTests: XCTestCase {
    func testAStoreOpensAFileCreatingIt() throws {
        let path = TestFiles.db()
        _ = try LeaseStore(path: path)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        _ = try LeaseStore(url: URL(fileURLWithPath: path))
    }

    func testAnEmptyPathIsAnInvalidArgumentWithTheLibrarysMessage() {
        let error = assertLeaseError(Status.invalidArgument, containing: "lease_store_open", try LeaseStore(path: ""))
        XCTAssertTrue(error?.description.hasPrefix("LEASE_INVALID_ARGUMENT") ?? false)
    }

    func testANulInsideAStringIsRefusedBeforeItReachesC() {
        let error = assertLeaseError(Status.invalidArgument, try LeaseStore(path: TestFiles.db() + "\0tail"))
        XCTAssertEqual(error?.message, "lease_store_open: path contains a NUL character")
    }

    func testAFileThatIsNotADatabaseIsADatabaseErrorNamingTheFile() throws {
        let path = TestFiles.path("notes.txt")
        try String(repeating: "these are not the bytes of a database ", count: 200)
            .write(toFile: path, atomically: true, encoding: .utf8)
        assertLeaseError(Status.database, containing: "notes.txt", try LeaseStore(path: path))
    }

    func testADirectoryThatDoesNotExistIsADatabaseError() {
        assertLeaseError(Status.database, try LeaseStore(path: TestFiles.path("no/such/dir/x.db")))
    }

    func testALockKeepsWorkingAfterItsStoreIsFreed() throws {
        let lock = try LeaseStore(path: TestFiles.db()).lock("sync", label: "app")
        let leaseGuard = try XCTUnwrap(try lock.tryAcquire())
        try leaseGuard.check()
        leaseGuard.release()
    }
}
