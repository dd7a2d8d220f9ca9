// The share extension's side of the iOS sample (add to a Share Extension target; link
// SampleShared). It saves the shared text into the App Group database, and syncs if the app is not
// syncing right now. A suspended or killed extension holds nothing that blocks the app: the lease
// is a row that runs out, and a fenced write refuses to run once it has.

import SampleShared
import UIKit
import UniformTypeIdentifiers

final class ShareViewController: UIViewController {
    override func viewDidAppear(_ animated: Bool) {
        super.viewDidAppear(animated)
        Task { await share() }
    }

    private func share() async {
        do {
            let store = try SharedStore.inAppGroup(label: "share-extension")
            for text in await sharedTexts() {
                try store.save(text) // a short write: it waits only for its turn among writers
            }
            // Sync now unless the app is syncing: then it picks the new items up itself.
            _ = try? await store.syncOnce(timeout: 1)
            // Everything is written before the extension is dismissed (and may be suspended).
            extensionContext?.completeRequest(returningItems: nil)
        } catch {
            extensionContext?.cancelRequest(withError: error)
        }
    }

    private func sharedTexts() async -> [String] {
        let items = extensionContext?.inputItems.compactMap { $0 as? NSExtensionItem } ?? []
        var texts: [String] = []
        for provider in items.flatMap({ $0.attachments ?? [] })
        where provider.hasItemConformingToTypeIdentifier(UTType.plainText.identifier) {
            if let text = try? await provider.loadItem(forTypeIdentifier: UTType.plainText.identifier) as? String {
                texts.append(text)
            }
        }
        return texts
    }
}
