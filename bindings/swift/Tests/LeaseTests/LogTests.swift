import Foundation
import Lease
import XCTest
#if canImport(os)
import os
#endif

/// The library's log (`LeaseLibrary.setLogHandler`), with a child process for the holder that is
/// killed.
///
/// The handler is process-wide: each test sets its own and `tearDown` turns logging off, relying
/// on XCTest running the tests of a process one at a time (see SuspensionTests). What an earlier
/// test left running (a release finishing on the library's thread) may still be logged, so each
/// test looks only for messages naming its own file.
final class LogTests: XCTestCase {
    override func tearDown() {
        XCTAssertNoThrow(try LeaseLibrary.setLogHandler(nil))
        eventually("every guard is released") { libraryIsIdle() }
        super.tearDown()
    }

    func testAtInfoAnAcquisitionAndAReleaseAreLoggedNamingTheFileAndTheKey() throws {
        let db = TestFiles.db()
        let heard = HeardMessages()
        try LeaseLibrary.setLogHandler(level: .info) { level, message in heard.add(level, message) }
        let lock = try LeaseStore(path: db).lock("sync", label: "app")
        try XCTUnwrap(try lock.tryAcquire()).release()
        // The release may finish on the library's thread, when the database was busy.
        eventually("the release is logged") { !heard.said(.info, db, "'sync': released").isEmpty }
        let acquired = heard.said(.info, db, "'sync': acquired by 'app'", "generation 1", "dirty")
        XCTAssertEqual(acquired.count, 1, "\(heard.all)")
        XCTAssertEqual(heard.said(.info, db, "'sync': released").count, 1, "\(heard.all)")
    }

    func testAtWarningAnAcquisitionAndAReleaseAreNotLogged() throws {
        let db = TestFiles.db()
        let heard = HeardMessages()
        try LeaseLibrary.setLogHandler(level: .warning) { level, message in heard.add(level, message) }
        let lock = try LeaseStore(path: db).lock("sync", label: "app")
        try XCTUnwrap(try lock.tryAcquire()).release()
        XCTAssertEqual(try Child.probe(db, "sync"), 0, "another process can take it: it was given back")
        XCTAssertEqual(heard.mentioning(db), [], "\(heard.all)")
        XCTAssertTrue(heard.all.allSatisfy { $0.level == .error || $0.level == .warning }, "\(heard.all)")
    }

    func testNilTurnsLoggingOffAndReleasesTheHandler() throws {
        let db = TestFiles.db()
        let heard = HeardMessages()
        let released = LineQueue()
        try LeaseLibrary.setLogHandler(level: .info) { [token = ReleaseToken(released)] level, message in
            withExtendedLifetime(token) { heard.add(level, message) }
        }
        XCTAssertNil(released.take(timeout: 0), "the library keeps the handler")
        try LeaseLibrary.setLogHandler(nil)
        // At once, unless a call of the handler was running on another thread: then as it returns.
        XCTAssertEqual(released.take(timeout: 5), "released")
        let lock = try LeaseStore(path: db).lock("sync", label: "app")
        try XCTUnwrap(try lock.tryAcquire()).release()
        XCTAssertEqual(try Child.probe(db, "sync"), 0, "another process can take it: it was given back")
        XCTAssertEqual(heard.mentioning(db), [], "\(heard.all)")
    }

    func testAReplacedHandlerIsReleasedAndTheNewOneHearsTheMessages() throws {
        let db = TestFiles.db()
        let first = HeardMessages()
        let second = HeardMessages()
        let released = LineQueue()
        try LeaseLibrary.setLogHandler(level: .info) { [token = ReleaseToken(released)] level, message in
            withExtendedLifetime(token) { first.add(level, message) }
        }
        try LeaseLibrary.setLogHandler(level: .info) { level, message in second.add(level, message) }
        XCTAssertEqual(released.take(timeout: 5), "released")
        let lock = try LeaseStore(path: db).lock("sync", label: "app")
        try XCTUnwrap(try lock.tryAcquire()).release()
        XCTAssertEqual(second.said(.info, db, "'sync': acquired by 'app'").count, 1, "\(second.all)")
        XCTAssertEqual(first.mentioning(db), [], "\(first.all)")
    }

    func testTakingOverFromAKilledHolderNamesItsLabelAndPid() throws {
        let db = TestFiles.db()
        #if os(Linux) || os(Android)
        // liblease sees in /proc that the holder's process ended, and takes over at once: with a
        // lease of a minute, only that explains the acquisition below succeeding within its 10 s.
        let (leaseMs, why) = ("60000", "whose process ended")
        #else
        // Elsewhere liblease cannot tell whether a holder lives (it reads /proc): the lease runs out.
        let (leaseMs, why) = ("2000", "whose lease ran out")
        #endif
        let child = try Child("hold", db, "sync", leaseMs) // as 'child-holder'
        _ = child.readNumber("held")
        let pid = child.pid
        child.killHard()
        let heard = HeardMessages()
        try LeaseLibrary.setLogHandler(level: .info) { level, message in heard.add(level, message) }
        let lock = try LeaseStore(path: db).lock("sync", label: "app")
        // The acquisition is logged on this thread before acquireBlocking returns.
        try lock.acquireBlocking(timeout: 10).release()
        let from = "taken over from 'child-holder' (pid \(pid)), \(why)"
        let acquired = heard.said(.info, db, "'sync': acquired by 'app'", "dirty", from)
        XCTAssertEqual(acquired.count, 1, "\(heard.all)")
    }

    #if canImport(os)
    func testEachLevelHasItsOSLogTypeAndTheUnifiedLogTakesTheMessages() throws {
        XCTAssertEqual(LeaseLogLevel.error.osLogType, .error)
        XCTAssertEqual(LeaseLogLevel.warning.osLogType, .default)
        XCTAssertEqual(LeaseLogLevel.info.osLogType, .info)
        XCTAssertEqual(LeaseLogLevel.debug.osLogType, .debug)
        // What reaches the system is not read back here: this shows that the handler is set, called
        // (an acquisition and a release log at .info) and removed (tearDown) without trouble.
        try LeaseLibrary.logToOSLog(level: .debug, subsystem: "liblease.tests")
        let lock = try LeaseStore(path: TestFiles.db()).lock("sync", label: "app")
        try XCTUnwrap(try lock.tryAcquire()).release()
    }
    #endif
}

/// What a log handler heard, from any thread. `Sendable` because it is thread-safe: `heard` is
/// touched only under `lock`.
final class HeardMessages: @unchecked Sendable {
    struct Message {
        let level: LeaseLogLevel
        let text: String
    }

    private let lock = NSLock()
    private var heard: [Message] = []

    func add(_ level: LeaseLogLevel, _ text: String) {
        lock.lock()
        heard.append(Message(level: level, text: text))
        lock.unlock()
    }

    var all: [Message] {
        lock.lock()
        defer { lock.unlock() }
        return heard
    }

    /// The texts heard at `level` that contain every one of `words`.
    func said(_ level: LeaseLogLevel, _ words: String...) -> [String] {
        all.filter { message in message.level == level && words.allSatisfy { message.text.contains($0) } }
            .map { $0.text }
    }

    /// The texts heard at any level that contain `word`.
    func mentioning(_ word: String) -> [String] {
        all.map { $0.text }.filter { $0.contains(word) }
    }
}
