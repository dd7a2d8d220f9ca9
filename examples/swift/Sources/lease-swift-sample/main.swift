// liblease Swift sample on a desktop: an app and its extension, two processes, share one database
// and take turns at "sync". A temporary directory stands in for the App Group container.
//
//   swift run lease-swift-sample [database-file]
//
//   Act 1: they take turns: each saves an item and syncs under the lease; a dirty lease says the
//          other process synced in between.
//   Act 2: the extension imports a large batch in a chunked transaction while it holds "sync";
//          the app's short writes still get in within milliseconds. Then the app kills the
//          extension (SIGKILL) and takes over: the import kept whole batches only.

#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif
import Foundation
import Lease
import SampleShared

let turns = 3
let batch = 50
/// A short lease makes a takeover quick to watch (the default is 6 s).
let options = LockOptions(lease: 2, renewEvery: 0.5)

let arguments = CommandLine.arguments
let isExtension = arguments.count > 2 && arguments[1] == "--extension"
let me = isExtension ? "extension" : "app"
let started = isExtension ? Double(arguments[3])! : Date().timeIntervalSince1970

/// Prints one timestamped line: "[  1.234 s] extension  ..."
func say(_ text: String) {
    let elapsed = Date().timeIntervalSince1970 - started
    print("[\(String(format: "%7.3f", elapsed)) s] \(me.padding(toLength: 10, withPad: " ", startingAt: 0)) \(text)")
    fflush(stdout)
}

func describe(_ turn: SharedStore.SyncTurn) -> String {
    "synced \(turn.synced) items in generation \(turn.generation), " +
        (turn.wasDirty ? "dirty (the other process held it since: reload caches)" : "clean")
}

/// The extension's process, seen from the app: its lines are printed, "@word" lines are signals.
final class ExtensionProcess: @unchecked Sendable {
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let signals = DispatchSemaphore(value: 0)

    init(database: String) throws {
        process.executableURL = Bundle.main.executableURL
        process.arguments = ["--extension", database, String(started)]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let reading = output.fileHandleForReading
        let signals = self.signals
        Thread.detachNewThread {
            var buffer: [UInt8] = []
            while true {
                let chunk = reading.availableData
                if chunk.isEmpty { break }
                buffer.append(contentsOf: chunk)
                while let newline = buffer.firstIndex(of: 10) {
                    let line = String(decoding: buffer[0..<newline], as: UTF8.self)
                    buffer.removeFirst(newline + 1)
                    if line.hasPrefix("@") { signals.signal() } else { print(line); fflush(stdout) }
                }
            }
        }
    }

    func order(_ line: String) { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }
    func awaitSignal() { signals.wait() }
    func killHard() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

func runExtension(database: String) async throws {
    let store = try SharedStore(url: URL(fileURLWithPath: database), label: me, options: options)
    for turn in 1...turns {
        try store.save("shared from the extension, \(turn)")
        say("saved an item; syncs: \(describe(try await store.syncOnce()))")
        try await Task.sleep(nanoseconds: 150_000_000)
    }
    _ = readLine() // "go"
    let lease = try store.sync.acquireBlocking(timeout: 30)
    say("holds 'sync': imports a large batch in a chunked transaction")
    print("@holding")
    fflush(stdout)
    try store.importRows(10_000_000, batch: batch) { done in
        if done % 20_000 == 0 { say("imported \(done) rows") }
        try? lease.check()
    }
}

func runApp(database: String) async throws {
    print("liblease \(LeaseLibrary.version): an app and an extension share \(database)")
    let store = try SharedStore(url: URL(fileURLWithPath: database), label: me, options: options)
    let extensionProcess = try ExtensionProcess(database: database)
    for turn in 1...turns {
        try store.save("written in the app, \(turn)")
        say("saved an item; syncs: \(describe(try await store.syncOnce()))")
        try await Task.sleep(nanoseconds: 150_000_000)
    }

    say("--- act 2: the extension will import while it holds 'sync', and be killed ---")
    extensionProcess.order("go")
    extensionProcess.awaitSignal()
    let attempt = try store.sync.tryAcquire()
    say("tries 'sync' without waiting: " + (attempt == nil ? "busy, the extension holds it" : "got it?!"))
    attempt?.release()
    for turn in 1...4 {
        let start = Date()
        try store.save("a short write beside the import, \(turn)")
        say(String(format: "a short write beside the import got in after %.1f ms", Date().timeIntervalSince(start) * 1000))
        try await Task.sleep(nanoseconds: 150_000_000)
    }
    extensionProcess.killHard()
    let killed = Date()
    say("killed the extension (SIGKILL) while it held 'sync' in the middle of its import")
    let turn = try await store.syncOnce(timeout: 30)
    say(String(format: "took over after %.0f ms (the lease lasts %.0f s): ", Date().timeIntervalSince(killed) * 1000, options.lease)
        + describe(turn))
    let imported = try store.count(source: "extension") - Int64(turns)
    say("the import kept \(imported) rows: " + (imported % Int64(batch) == 0 ? "whole batches of \(batch) only" : "a partial batch!"))
    say("the journal, written only under the lease:")
    for line in try store.journal() { say("  " + line) }
    try LeaseLibrary.shutdown() // the library's thread stops: nothing is left
    say("done")
}

do {
    if isExtension {
        try await runExtension(database: arguments[2])
    } else {
        let database = arguments.count > 1
            ? arguments[1]
            : FileManager.default.temporaryDirectory.appendingPathComponent("lease-swift-sample-\(getpid()).db").path
        try await runApp(database: database)
    }
} catch {
    say("failed: \(error)")
    exit(1)
}
