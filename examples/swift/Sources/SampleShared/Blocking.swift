import Dispatch

/// Runs `work`, which blocks (a database write waits up to its busy timeout; a read of standard
/// input waits for a line), on `queue`, and suspends until it is done.
///
/// Neither the main actor (the UI would freeze) nor Swift concurrency's cooperative pool (it has
/// about one thread per core, and other tasks wait while one of them blocks) is the place to wait:
/// a serial dispatch queue of the caller's own is, since such a queue gets a thread of its own
/// whenever it has work.
public func awaitBlocking<T: Sendable>(
    on queue: DispatchQueue, _ work: @escaping @Sendable () throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
        queue.async {
            do {
                let value = try work()
                continuation.resume(returning: value)
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}
