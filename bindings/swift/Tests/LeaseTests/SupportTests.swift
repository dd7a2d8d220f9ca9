import Foundation
import XCTest

/// The tests' own helpers, where a wrong one would make other tests fail, or pass, for nothing.
final class SupportTests: XCTestCase {
    func testCurrentThreadNameIsTheNameTheSystemKnows() {
        let started = DispatchSemaphore(value: 0)
        let names = LineQueue()
        let thread = Thread {
            // Foundation can name its system thread once start() has returned.
            started.wait()
            Thread.current.name = "lease-probe"
            names.put(currentThreadName())
        }
        thread.start()
        started.signal()
        XCTAssertEqual(names.take(timeout: 5), "lease-probe")
    }
}
