#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif
import Foundation
import Lease
import XCTest

/// Files for the tests: one directory for the whole run, never emptied while it runs.
///
/// Deleting a test's database while the process runs would let the next test's new file get the
/// same inode, and liblease knows a file by its device and inode: this process would take the new
/// file's lease (generation 1 again) for one it had held before, and the first guard would not be
/// dirty.
enum TestFiles {
    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("liblease-swift-test-\(getpid())-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// A new path in the directory, not yet a file.
    static func path(_ name: String) -> String {
        directory.appendingPathComponent("\(UUID().uuidString)-\(name)").path
    }

    /// A new database path.
    static func db(_ name: String = "test") -> String { path("\(name).db") }
}

/// Whether the library's thread can be stopped: no guard held, no acquisition pending.
func libraryIsIdle() -> Bool {
    do {
        try LeaseLibrary.shutdown()
        return true
    } catch {
        return false
    }
}

/// Retries `condition` until it holds, for up to `timeout` seconds.
func eventually(_ what: String, timeout: TimeInterval = 5, file: StaticString = #filePath, line: UInt = #line,
                _ condition: () -> Bool) {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while !condition() {
        if Date() > deadline {
            XCTFail("not within \(timeout) s: \(what)", file: file, line: line)
            return
        }
        usleep(10_000)
    }
}

/// Seconds that `body` took.
func secondsOf(_ body: () throws -> Void) rethrows -> TimeInterval {
    let start = Date()
    try body()
    return Date().timeIntervalSince(start)
}

/// The name of the calling thread, as the OS knows it.
func currentThreadName() -> String {
    #if canImport(Darwin)
    var name = [CChar](repeating: 0, count: 64)
    pthread_getname_np(pthread_self(), &name, name.count)
    return name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    #else
    // Glibc does not export pthread_getname_np to Swift; the kernel shows the name in procfs,
    // followed by a newline.
    let fd = open("/proc/thread-self/comm", O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { _ = close(fd) }
    var bytes = [UInt8](repeating: 0, count: 64)
    let count = bytes.withUnsafeMutableBytes { buffer in read(fd, buffer.baseAddress, buffer.count) }
    guard count > 0 else { return "" }
    return String(decoding: bytes[0..<count], as: UTF8.self).trimmingCharacters(in: .newlines)
    #endif
}

/// The status numbers, as the binding maps them (LibraryTests checks the mapping).
enum Status {
    static let busy = LeaseError.busy("").status
    static let timeout = LeaseError.timeout("").status
    static let lost = LeaseError.lost("").status
    static let invalidArgument = LeaseError.invalidArgument("").status
    static let database = LeaseError.database("").status
    static let misuse = LeaseError.misuse("").status
    static let suspended = LeaseError.suspended("").status
}

/// Asserts that `body` throws a `LeaseError` with `status` (and a message containing `text`), and
/// returns it.
@discardableResult
func assertLeaseError<T>(_ status: UInt32, containing text: String? = nil, _ body: @autoclosure () throws -> T,
                         file: StaticString = #filePath, line: UInt = #line) -> LeaseError? {
    do {
        _ = try body()
        XCTFail("no error thrown; expected \(LeaseLibrary.describe(status: status))", file: file, line: line)
    } catch let error as LeaseError {
        XCTAssertEqual(error.status, status, "unexpected \(error)", file: file, line: line)
        if let text {
            XCTAssertTrue(error.message.contains(text), "\"\(error.message)\" lacks \"\(text)\"", file: file, line: line)
        }
        return error
    } catch {
        XCTFail("not a LeaseError: \(error)", file: file, line: line)
    }
    return nil
}

/// Lines one thread reads and another waits for. `Sendable` because it is thread-safe: `lines` and
/// `ended` are touched only under `condition`.
final class LineQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var lines: [String] = []
    private var ended = false

    func put(_ line: String) {
        condition.lock()
        lines.append(line)
        condition.broadcast()
        condition.unlock()
    }

    func end() {
        condition.lock()
        ended = true
        condition.broadcast()
        condition.unlock()
    }

    func take(timeout: TimeInterval) -> String? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while lines.isEmpty && !ended {
            if !condition.wait(until: deadline) { break }
        }
        return lines.isEmpty ? nil : lines.removeFirst()
    }
}

/// Says "released" when it is freed: captured by a handler, it tells when the handler is released.
/// `Sendable`: its one property is.
final class ReleaseToken: Sendable {
    private let released: LineQueue

    init(_ released: LineQueue) {
        self.released = released
    }

    deinit {
        released.put("released")
    }
}

/// A running LeaseTestChild: another OS process that uses the same liblease. Not `Sendable`: one
/// test uses it, on one thread at a time; its reading thread shares only `lines`.
final class Child {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let lines = LineQueue()

    /// Where the LeaseTestChild executable is: $LEASE_TEST_CHILD (set by run-tests.sh), else beside
    /// the tests.
    static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["LEASE_TEST_CHILD"] {
            return URL(fileURLWithPath: path)
        }
        #if os(Linux)
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        #else
        let directory = Bundle(for: Child.self).bundleURL.deletingLastPathComponent()
        #endif
        return directory.appendingPathComponent("LeaseTestChild")
    }

    init(_ arguments: String...) throws {
        process.executableURL = Child.executable
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let reading = output.fileHandleForReading
        let lines = self.lines
        Thread.detachNewThread {
            var buffer: [UInt8] = []
            while true {
                let chunk = reading.availableData // blocks; empty at the end
                if chunk.isEmpty { break }
                buffer.append(contentsOf: chunk)
                while let newline = buffer.firstIndex(of: 10) {
                    lines.put(String(decoding: buffer[0..<newline], as: UTF8.self))
                    buffer.removeFirst(newline + 1)
                }
            }
            lines.end()
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    var pid: pid_t { process.processIdentifier }

    /// The next line the child reports.
    func read(timeout: TimeInterval = 15, file: StaticString = #filePath, line: UInt = #line) -> String {
        guard let text = lines.take(timeout: timeout) else {
            XCTFail("no line from child \(pid) within \(timeout) s", file: file, line: line)
            return ""
        }
        return text
    }

    /// Reads a line "WORD NUMBER" and returns NUMBER.
    func readNumber(_ word: String, file: StaticString = #filePath, line: UInt = #line) -> UInt64 {
        let text = read(file: file, line: line)
        let parts = text.split(separator: " ")
        guard parts.count == 2, parts[0] == word, let number = UInt64(parts[1]) else {
            XCTFail("child \(pid) said \"\(text)\", expected \"\(word) N\"", file: file, line: line)
            return 0
        }
        return number
    }

    func order(_ text: String) {
        input.fileHandleForWriting.write(Data((text + "\n").utf8))
    }

    /// Kills the child with SIGKILL.
    func killHard() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Waits for the child to exit and returns its exit status.
    func exitStatus() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// What another process's try-acquire of `key` in `db` gives: 0 (got it) or 1 (busy).
    static func probe(_ db: String, _ key: String) throws -> UInt64 {
        let child = try Child("probe", db, key)
        let status = child.readNumber("status")
        XCTAssertEqual(child.exitStatus(), 0, "the probe failed")
        return status
    }
}
