// The share extension's side of the iOS sample (add to a Share Extension target, deployment target
// iOS 16; link SampleShared, which brings Lease). It saves the shared text into the App Group
// database, and syncs if the app is not syncing right now.
//
// It suspends liblease before it completes its request, after which iOS may suspend it at any
// moment, and while the host app is in the background (LeaseExtensionLifecycle): a suspended
// extension holds no lease and no write lock, so the app takes "sync" at once. (Were it
// suspended or killed holding them anyway, the lease is a row that runs out, and a fenced write
// refuses to run once it has.)

import Lease
import SampleShared
import UIKit
import UniformTypeIdentifiers

final class ShareViewController: UIViewController {
    private let lifecycle = LeaseExtensionLifecycle()

    override func viewDidLoad() {
        super.viewDidLoad()
        lifecycle.start()
    }

    override func viewDidAppear(_ animated: Bool) {
        super.viewDidAppear(animated)
        // This process may have served an earlier request, and suspended liblease at its end.
        lifecycle.resume()
        Task {
            let failure = await share()
            await lifecycle.suspend() // hands "sync" back if held, and waits for writers to stop
            finish(failure)
        }
    }

    /// Saves what was shared and syncs: nil, or what went wrong. Everything is written before the
    /// request completes (after which the extension may be suspended).
    private func share() async -> Error? {
        do {
            let store = try await SharedStore.inAppGroup(label: "share-extension")
            for text in await sharedTexts() {
                try await store.save(text) // a short write: it waits only for its turn among writers
            }
            // Sync now unless the app is syncing: then it picks the new items up itself.
            _ = try? await store.syncOnce(timeout: 1)
            return nil
        } catch {
            return error
        }
    }

    /// Ends the request. Not async, so that completeRequest is the completion-handler form (in an
    /// async function the name resolves to the async overload).
    private func finish(_ failure: Error?) {
        if let failure {
            extensionContext?.cancelRequest(withError: failure)
        } else {
            extensionContext?.completeRequest(returningItems: nil, completionHandler: nil)
        }
    }

    private func sharedTexts() async -> [String] {
        let items = extensionContext?.inputItems.compactMap { $0 as? NSExtensionItem } ?? []
        let providers = items.flatMap { $0.attachments ?? [] }
            .filter { $0.hasItemConformingToTypeIdentifier(UTType.plainText.identifier) }
        var texts: [String] = []
        for provider in providers {
            if let text = await plainText(of: provider) {
                texts.append(text)
            }
        }
        return texts
    }

    /// The provider's plain text. Its completion handler may run on any thread: it is @Sendable,
    /// not isolated to the main actor, and only hands a String over.
    private func plainText(of provider: NSItemProvider) async -> String? {
        await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            provider.loadItem(forTypeIdentifier: UTType.plainText.identifier, options: nil) { @Sendable item, _ in
                continuation.resume(returning: item as? String)
            }
        }
    }
}
