// The app's side of the iOS sample (add to the app target of an Xcode project, deployment target
// iOS 16; link SampleShared, which brings Lease). It syncs under the lease "sync" when it starts
// and on demand; the share extension saves items into the same database and syncs too, so the two
// never sync at once.
//
// The model lives on the main actor and only awaits: SharedStore opens the database and writes it
// on a queue of its own, and waiting for the lease blocks no thread.
//
// In the background the app holds nothing: LeaseLifecycle suspends liblease when the app goes to
// the background (handing "sync" back at once, so that the extension need not wait for the lease
// to run out, and leaving no write lock for iOS to kill the app over) and resumes it when the app
// comes back.

import Lease
import SampleShared
import SwiftUI

@main
struct SampleApp: App {
    @StateObject private var model = SyncModel()
    /// Kept for the app's life: it observes the app going to the background and coming back.
    private let lifecycle = LeaseLifecycle()

    init() {
        lifecycle.start()
    }

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
                self?.status = "Lost '\(key)' (given back in the background, say): the extension may sync meanwhile"
            }
        }
        store = opened
        return opened
    }
}
