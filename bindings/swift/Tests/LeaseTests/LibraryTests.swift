import Lease
import XCTest

final class LibraryTests: XCTestCase {
    func testTheLoadedLibraryIsTheHeadersVersion() {
        XCTAssertEqual(LeaseLibrary.version, LeaseLibrary.headerVersion)
    }

    func testEveryStatusHasTheLibrarysDescriptionUnknownOnesToo() {
        let names = [
            "LEASE_OK", "LEASE_BUSY", "LEASE_TIMEOUT", "LEASE_LOST", "LEASE_INVALID_ARGUMENT",
            "LEASE_DATABASE", "LEASE_MISUSE", "LEASE_PANIC", "LEASE_CANCELLED", "LEASE_SUSPENDED",
        ]
        for (status, name) in names.enumerated() {
            XCTAssertTrue(LeaseLibrary.describe(status: UInt32(status)).hasPrefix(name))
        }
        XCTAssertEqual(LeaseLibrary.describe(status: 100), "unknown LeaseStatus")
        XCTAssertEqual(LeaseLibrary.describe(status: .max), "unknown LeaseStatus")
    }

    func testStatusesBecomeTheMatchingErrorCarryingStatusAndMessage() {
        let expected: [(UInt32, LeaseError)] = [
            (1, .busy("m")), (2, .timeout("m")), (3, .lost("m")), (4, .invalidArgument("m")),
            (5, .database("m")), (6, .misuse("m")), (7, .panic("m")), (8, .cancelled("m")),
            (9, .suspended("m")), (42, .unknown(status: 42, message: "m")),
        ]
        for (status, error) in expected {
            let made = LeaseError(status: status, message: "m")
            XCTAssertEqual(made, error)
            XCTAssertEqual(made.status, status)
            XCTAssertEqual(made.message, "m")
            XCTAssertEqual(made.description, "\(LeaseLibrary.describe(status: status)): m")
        }
    }

    func testShutdownStopsAnIdleLibraryAndALaterCallStartsItAgain() throws {
        try LeaseLibrary.shutdown()
        try LeaseLibrary.shutdown() // nothing running: does nothing
        let lock = try LeaseStore.inMemory().lock("k", label: "me")
        let leaseGuard = try XCTUnwrap(try lock.tryAcquire())
        XCTAssertTrue(leaseGuard.isHeld)
        assertLeaseError(Status.misuse, try LeaseLibrary.shutdown()) // a guard is held
        leaseGuard.release()
        eventually("the library is idle again") { libraryIsIdle() }
    }
}
