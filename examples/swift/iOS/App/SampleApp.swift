// The app's side of the iOS sample (add to the app target of an Xcode project; link SampleShared).
// It syncs under the lease "sync" when it starts and on demand; the share extension saves items
// into the same database and syncs too, so the two never sync at once.

import SampleShared
import SwiftUI

@main
struct SampleApp: App {
    @StateObject private var model = SyncModel()

    var body: some Scene {
        WindowGroup {
            NavigationStack {
                List {
                    Section("Sync") {
                        Text(model.status)
                        Button("Sync now") { Task { await model.sync() } }
                    }
                    Section("Journal") {
                        ForEach(model.journal, id: \.self) { Text($0).font(.footnote) }
                    }
                }
                .navigationTitle("liblease sample")
            }
            .task { await model.sync() }
        }
    }
}

@MainActor
final class SyncModel: ObservableObject {
    @Published var status = "Not synced yet"
    @Published var journal: [String] = []
    private let store: SharedStore?

    init() {
        store = try? SharedStore.inAppGroup(label: "app")
        try? store?.sync.setLostHandler { [weak self] lock in
            // On the library's thread: hand over to the main actor and return at once.
            let key = lock.key
            Task { @MainActor in self?.status = "Lost '\(key)' while suspended: the extension may have synced" }
        }
    }

    func sync() async {
        guard let store else {
            status = "The App Group \(SharedStore.appGroup) is not in the entitlements"
            return
        }
        do {
            // syncOnce is not isolated to the main actor: its database work runs off the main thread.
            let turn = try await store.syncOnce()
            status = "Synced \(turn.synced) items in generation \(turn.generation)"
                + (turn.wasDirty ? " (the extension synced since our last turn)" : "")
            journal = try store.journal()
        } catch is CancellationError {
            // The view went away.
        } catch {
            status = "\(error)"
        }
    }
}
