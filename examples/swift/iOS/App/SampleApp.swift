// The app's side of the iOS sample (add to the app target of an Xcode project, deployment target
// iOS 16; link SampleShared). It syncs under the lease "sync" when it starts and on demand; the
// share extension saves items into the same database and syncs too, so the two never sync at once.
//
// The model lives on the main actor and only awaits: SharedStore opens the database and writes it
// on a queue of its own, and waiting for the lease blocks no thread.

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
    private var store: SharedStore?

    func sync() async {
        do {
            let store = try await openStore()
            let turn = try await store.syncOnce()
            status = "Synced \(turn.synced) items in generation \(turn.generation)"
                + (turn.wasDirty ? " (the extension synced since our last turn)" : "")
            journal = try await store.journal()
        } catch is CancellationError {
            // The view went away.
        } catch {
            status = "\(error)"
        }
    }

    /// The store, opened the first time (off the main thread: opening may wait for the database).
    private func openStore() async throws -> SharedStore {
        if let store {
            return store
        }
        let opened = try await SharedStore.inAppGroup(label: "app")
        if let store {
            return store // another sync() opened it while this one waited
        }
        try opened.onSyncLost { [weak self] key in
            // On the library's thread: hand over to the main actor and return at once.
            Task { @MainActor [weak self] in
                self?.status = "Lost '\(key)' while suspended: the extension may have synced"
            }
        }
        store = opened
        return opened
    }
}
