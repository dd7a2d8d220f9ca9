#if canImport(UIKit) && !os(watchOS)
import Foundation
import UIKit

// Suspending liblease around the system's suspension of the process, on iOS and its siblings.
//
// iOS suspends an app soon after it goes to the background, and kills it (0xdead10cc) if it is
// then holding a write lock on a database in a shared container; a process that keeps a lease
// through its suspension makes every other process wait until the lease runs out. So the process
// suspends liblease first (LeaseLibrary.suspend), and resumes it when it comes back.
//
// LeaseLibrary.suspend blocks until this process's statements and transactions have stopped (in
// milliseconds, unless one keeps running in a row callback), up to its timeout: not something to
// do on the main thread. Both helpers below run it on one serial queue (SuspensionQueue), which
// also orders a resume after any suspension still running, and keep the process awake until it
// has ended: an app with a background task (UIApplication), an extension, which has no
// UIApplication, with an expiring activity (ProcessInfo).

/// How long a suspension may wait when the system is about to suspend the process anyway (a
/// background task's expiration handler, an expiring activity that expired): a moment, since the
/// handler runs while the system waits.
private let expiryTimeout: TimeInterval = 0.1

/// Suspends liblease when the app goes to the background and resumes it when the app comes back,
/// so that the system never suspends the app holding a lease or a write lock on the shared
/// database. Opt-in: make one when the app starts, call `start()`, and keep it for the app's
/// life (in the app delegate, or the SwiftUI `App`):
///
/// ```swift
/// let lifecycle = LeaseLifecycle()
/// lifecycle.start()
/// ```
///
/// - On `UIApplication.didEnterBackgroundNotification` it begins a background task, so that the
///   app is not suspended before liblease is, and suspends liblease (`LeaseLibrary.suspend`)
///   waiting up to `timeout`, on a serial queue of its own rather than the main thread; then it
///   ends the task. Should the background time run out first, the task's expiration handler
///   suspends again, waiting only a moment, and ends the task.
/// - On `UIApplication.willEnterForegroundNotification` it resumes liblease
///   (`LeaseLibrary.resume`): at once, or, while a suspension is still running, right after it.
///
/// While the app is in the background every write through liblease throws
/// `LeaseError.suspended`, and the leases it held are lost (each lock's lost handler runs). Work
/// that runs in the background on purpose (a launch into the background, a `BGTask`: no
/// didEnterBackground is posted for those) is the app's own to bracket: `LeaseLibrary.resume()`
/// before it (liblease may still be suspended from the app's last trip to the background), and
/// `LeaseLibrary.suspend(timeout:)` when it ends.
///
/// For apps only: an app extension has no `UIApplication.shared`; it uses
/// `LeaseExtensionLifecycle`. On the main actor, like UIKit.
@available(iOSApplicationExtension, unavailable)
@available(macCatalystApplicationExtension, unavailable)
@available(tvOSApplicationExtension, unavailable)
@available(visionOSApplicationExtension, unavailable)
@MainActor
public final class LeaseLifecycle {
    /// How long a suspension waits for this process's statements and transactions to stop
    /// (`LeaseLibrary.suspend(timeout:)`). 5 s unless given: plenty for statements, which the
    /// suspension interrupts, and well within the background time the system grants.
    public let timeout: TimeInterval

    /// The notification observers while started.
    private var observations: Observations?

    public init(timeout: TimeInterval = 5) {
        self.timeout = timeout
    }

    /// Starts observing the app going to the background and coming back. Does nothing when
    /// started already.
    public func start() {
        guard observations == nil else { return }
        let timeout = self.timeout
        let center = NotificationCenter.default
        // UIKit posts both on the main thread; queue: .main says so to the block too.
        observations = Observations([
            center.addObserver(forName: UIApplication.didEnterBackgroundNotification, object: nil, queue: .main) { _ in
                MainActor.assumeIsolated { LeaseLifecycle.suspendWithinBackgroundTask(timeout: timeout) }
            },
            center.addObserver(forName: UIApplication.willEnterForegroundNotification, object: nil, queue: .main) { _ in
                MainActor.assumeIsolated { SuspensionQueue.shared.resume() }
            },
        ])
    }

    /// Stops observing. A suspension under way still ends, and liblease stays as it is
    /// (suspended or not).
    public func stop() {
        observations = nil
    }

    /// Suspends liblease on the suspension queue, inside a background task that ends once the
    /// suspension has (or when the background time runs out, whichever comes first).
    private static func suspendWithinBackgroundTask(timeout: TimeInterval) {
        let task = BackgroundTask()
        // Begun first, before anything else happens in the background. When the system cannot
        // grant the time, the identifier is invalid: the suspension runs all the same, and
        // usually ends long before the system suspends the app.
        task.identifier = UIApplication.shared.beginBackgroundTask(withName: "liblease: suspending") {
            // On the main thread, the background time about to run out: the suspension did not end
            // (a statement kept running). Suspend again, waiting only a moment, and end the task,
            // or the system kills the app.
            _ = try? LeaseLibrary.suspend(timeout: expiryTimeout)
            task.end()
        }
        SuspensionQueue.shared.suspend(timeout: timeout) { task.end() }
    }

    /// One background task, ended once: by the suspension's end or by the expiration handler,
    /// whichever comes first. Both run on the main actor.
    @MainActor
    private final class BackgroundTask {
        var identifier = UIBackgroundTaskIdentifier.invalid

        func end() {
            guard identifier != .invalid else { return }
            UIApplication.shared.endBackgroundTask(identifier)
            identifier = .invalid
        }
    }
}

/// Suspends liblease for an app extension, which has no `UIApplication.shared` and so no
/// background tasks (nor `LeaseLifecycle`). An extension runs while its host app shows it, and
/// may be suspended as soon as it completes its request, or when the host goes to the
/// background. So:
///
/// - when the extension has finished its work, it awaits `suspend()` before it completes the
///   request (`NSExtensionContext.completeRequest(returningItems:completionHandler:)` or
///   `cancelRequest(withError:)`);
/// - when a request begins, it calls `resume()`: the process may have served, and suspended
///   after, an earlier request;
/// - `start()` observes the host going to the background
///   (`NSExtensionHostDidEnterBackground`: suspend) and coming back
///   (`NSExtensionHostWillEnterForeground`: resume). Not `NSExtensionHostWillResignActive`: the
///   host resigns active for a notification banner or Control Center too, where suspending
///   would only make writes fail.
///
/// ```swift
/// // In the extension's view controller:
/// private let lifecycle = LeaseExtensionLifecycle()
/// // viewDidLoad:     lifecycle.start()
/// // request begins:  lifecycle.resume()
/// // work done:       await lifecycle.suspend(); extensionContext?.completeRequest(...)
/// ```
///
/// A suspension runs on a serial queue, not the main thread, inside an expiring activity
/// (`ProcessInfo.performExpiringActivity`) that keeps the process awake until it has ended;
/// should the system expire the activity first, it suspends again, waiting only a moment. A
/// resume comes after any suspension still running. On the main actor, like UIKit.
@MainActor
public final class LeaseExtensionLifecycle {
    /// How long a suspension waits for this process's statements and transactions to stop
    /// (`LeaseLibrary.suspend(timeout:)`). 5 s unless given: plenty for statements, which the
    /// suspension interrupts, and well within the background time the system grants.
    public let timeout: TimeInterval

    /// The notification observers while started.
    private var observations: Observations?

    public init(timeout: TimeInterval = 5) {
        self.timeout = timeout
    }

    /// Starts observing the host app going to the background and coming back. Does nothing when
    /// started already.
    public func start() {
        guard observations == nil else { return }
        let timeout = self.timeout
        let center = NotificationCenter.default
        observations = Observations([
            center.addObserver(forName: .NSExtensionHostDidEnterBackground, object: nil, queue: .main) { _ in
                MainActor.assumeIsolated { LeaseExtensionLifecycle.suspendWithinActivity(timeout: timeout) {} }
            },
            center.addObserver(forName: .NSExtensionHostWillEnterForeground, object: nil, queue: .main) { _ in
                MainActor.assumeIsolated { SuspensionQueue.shared.resume() }
            },
        ])
    }

    /// Stops observing. A suspension under way still ends, and liblease stays as it is
    /// (suspended or not).
    public func stop() {
        observations = nil
    }

    /// Suspends liblease (`LeaseLibrary.suspend`, waiting up to `timeout`, off the main thread)
    /// and returns when it has ended: await it before completing the extension's request.
    public func suspend() async {
        let timeout = self.timeout
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            LeaseExtensionLifecycle.suspendWithinActivity(timeout: timeout) { continuation.resume() }
        }
    }

    /// Resumes liblease (`LeaseLibrary.resume`): at once, or, while a suspension is still
    /// running, right after it. Call it when a request begins.
    public func resume() {
        SuspensionQueue.shared.resume()
    }

    /// Suspends liblease on the suspension queue, holding an expiring activity until the
    /// suspension has ended; then calls `done` on the main actor.
    private static func suspendWithinActivity(
        timeout: TimeInterval, then done: @escaping @MainActor @Sendable () -> Void
    ) {
        // Signalled on the suspension queue, not the main actor, so that the activity's block
        // never waits for the main thread.
        let ended = DispatchSemaphore(value: 0)
        SuspensionQueue.shared.suspend(timeout: timeout, signalling: ended, then: done)
        // The block runs on a queue of Foundation's, and the activity lasts until it returns. It is
        // called again, with expired true, when the system is about to suspend the process
        // anyway (or only so, when it grants no time at all).
        ProcessInfo.processInfo.performExpiringActivity(withReason: "liblease: suspending") { expired in
            if expired {
                _ = try? LeaseLibrary.suspend(timeout: expiryTimeout)
            } else {
                ended.wait()
            }
        }
    }
}

/// Where the helpers suspend the process: one suspension at a time, off the main thread, with
/// each resume after the suspensions handed over before it.
///
/// Why a resume is ordered: `LeaseLibrary.resume()` while a suspension is still stopping writers
/// would let writes in that the suspension then interrupts, and leave the process resumed with
/// leases handed back under it. `running` counts the suspensions handed to `queue` that have not
/// ended; it is read and written on the main actor only, so a resume either finds none (and
/// resumes at once) or goes on the queue behind them.
@MainActor
final class SuspensionQueue {
    static let shared = SuspensionQueue()

    private let queue = DispatchQueue(label: "liblease.suspension", qos: .userInitiated)
    private var running = 0

    /// Suspends the process on the queue, waiting up to `timeout`; then signals `ended` (on the
    /// queue, for a thread that waits for it) and calls `done` on the main actor.
    func suspend(
        timeout: TimeInterval, signalling ended: DispatchSemaphore? = nil,
        then done: @escaping @MainActor @Sendable () -> Void
    ) {
        running += 1
        queue.async {
            // A timeout leaves the process suspended all the same, which is all there is to do
            // now: a statement that kept running ends by itself, and its transaction is refused.
            _ = try? LeaseLibrary.suspend(timeout: timeout)
            ended?.signal()
            Task { @MainActor in
                self.running -= 1
                done()
            }
        }
    }

    /// Resumes the process: at once when no suspension is running, else right after them.
    func resume() {
        if running == 0 {
            LeaseLibrary.resume()
        } else {
            queue.async { LeaseLibrary.resume() }
        }
    }
}

/// Notification observers, removed when this is freed (when its helper stops or goes away).
private final class Observations {
    private let tokens: [any NSObjectProtocol]

    init(_ tokens: [any NSObjectProtocol]) {
        self.tokens = tokens
    }

    deinit {
        for token in tokens {
            NotificationCenter.default.removeObserver(token)
        }
    }
}
#endif
