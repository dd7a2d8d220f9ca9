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
//
// Nothing here blocks a thread of Swift concurrency's pool: SharedStore runs its database work on
// a queue of its own, and the waits of this file (a line on standard input, a signal from the
// extension, the end of a killed process) run on `waits`.

#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Lease
import SampleShared

/// The sample's settings.
enum Settings {
    static let turns = 3
    static let batch = 50
    /// A short lease makes a takeover quick to watch (the default is 6 s).
    static let options = LockOptions(lease: 2, renewEvery: 0.5)
    /// Where this file's blocking waits run.
    static let waits = DispatchQueue(label: "lease-swift-sample waits")
}

/// Timestamped lines on standard output, each written at once in one write: the app reads the
/// extension's lines through a pipe. (Not print and fflush(stdout): Glibc's stdout is a global
/// variable that Swift 6 refuses to read from code that may run concurrently.)
struct Console: Sendable {
    /// "app" or "extension".
    let me: String
    /// When the app started, in seconds since 1970: both processes count from it.
    let started: TimeInterval

    /// Writes "[  1.234 s] extension  text".
    func say(_ text: String) {
        let elapsed = Date().timeIntervalSince1970 - started
        Console.write("[\(String(format: "%7.3f", elapsed)) s] \(me.padding(toLength: 10, withPad: " ", startingAt: 0)) \(text)")
    }

    static func write(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}

func describe(_ turn: SharedStore.SyncTurn) -> String {
    "synced \(turn.synced) items in generation \(turn.generation), " +
        (turn.wasDirty ? "dirty (the other process held it since: reload caches)" : "clean")
}

/// The extension's process, seen from the app: its lines are printed, "@word" lines are signals.
/// Used by the app's one task.
final class ExtensionProcess {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    /// Signalled for each "@word" line.
    private let signals = DispatchSemaphore(value: 0)
    /// Signalled when the process has ended.
    private let ended = DispatchSemaphore(value: 0)

    init(database: String, started: TimeInterval) throws {
        process.executableURL = Bundle.main.executableURL
        process.arguments = ["--extension", database, String(started)]
        process.standardInput = input
        process.standardOutput = output
        let ended = self.ended
        process.terminationHandler = { _ in ended.signal() }
        try process.run()
        let reading = output.fileHandleForReading
        let signals = self.signals
        Thread.detachNewThread {
            var buffer: [UInt8] = []
            while true {
                let chunk = reading.availableData // blocks; empty at the end
                if chunk.isEmpty { break }
                buffer.append(contentsOf: chunk)
                while let newline = buffer.firstIndex(of: 10) {
                    let line = String(decoding: buffer[0..<newline], as: UTF8.self)
                    buffer.removeFirst(newline + 1)
                    if line.hasPrefix("@") { signals.signal() } else { Console.write(line) }
                }
            }
        }
    }

    func order(_ line: String) {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    /// Suspends until the extension's next "@word" line.
    func nextSignal() async throws {
        let signals = self.signals
        try await awaitBlocking(on: Settings.waits) { signals.wait() }
    }

    /// Kills the extension with SIGKILL and suspends until it has ended.
    func killHard() async throws {
        kill(process.processIdentifier, SIGKILL)
        let ended = self.ended
        try await awaitBlocking(on: Settings.waits) { ended.wait() }
    }
}

func runExtension(database: String, console: Console) async throws {
    let store = try await SharedStore.open(url: URL(fileURLWithPath: database), label: console.me, options: Settings.options)
    for turn in 1...Settings.turns {
        try await store.save("shared from the extension, \(turn)")
        let synced = try await store.syncOnce()
        console.say("saved an item; syncs: \(describe(synced))")
        try await Task.sleep(nanoseconds: 150_000_000)
    }
    _ = try await awaitBlocking(on: Settings.waits) { readLine() } // "go"
    let lease = try await store.sync.acquire(timeout: 30)
    defer { lease.release() } // the extension holds "sync" until it is killed
    console.say("holds 'sync': imports a large batch in a chunked transaction")
    Console.write("@holding")
    try await store.importRows(10_000_000, batch: Settings.batch) { done in
        if done % 20_000 == 0 { console.say("imported \(done) rows") }
    }
}

func runApp(database: String, console: Console) async throws {
    Console.write("liblease \(LeaseLibrary.version): an app and an extension share \(database)")
    let store = try await SharedStore.open(url: URL(fileURLWithPath: database), label: console.me, options: Settings.options)
    let extensionProcess = try ExtensionProcess(database: database, started: console.started)
    for turn in 1...Settings.turns {
        try await store.save("written in the app, \(turn)")
        let synced = try await store.syncOnce()
        console.say("saved an item; syncs: \(describe(synced))")
        try await Task.sleep(nanoseconds: 150_000_000)
    }

    console.say("--- act 2: the extension will import while it holds 'sync', and be killed ---")
    extensionProcess.order("go")
    try await extensionProcess.nextSignal()
    let attempt = try store.sync.tryAcquire() // never waits
    console.say("tries 'sync' without waiting: " + (attempt == nil ? "busy, the extension holds it" : "got it?!"))
    attempt?.release()
    for turn in 1...4 {
        let start = Date()
        try await store.save("a short write beside the import, \(turn)")
        let waited = Date().timeIntervalSince(start) * 1000
        console.say(String(format: "a short write beside the import got in after %.1f ms", waited))
        try await Task.sleep(nanoseconds: 150_000_000)
    }
    try await extensionProcess.killHard()
    let killed = Date()
    console.say("killed the extension (SIGKILL) while it held 'sync' in the middle of its import")
    let turn = try await store.syncOnce(timeout: 30)
    let tookOver = Date().timeIntervalSince(killed) * 1000
    console.say(String(format: "took over after %.0f ms (the lease lasts %.0f s): ", tookOver, Settings.options.lease)
        + describe(turn))
    let imported = try await store.count(source: "extension") - Int64(Settings.turns)
    let whole = imported % Int64(Settings.batch) == 0
    console.say("the import kept \(imported) rows: " + (whole ? "whole batches of \(Settings.batch) only" : "a partial batch!"))
    console.say("the journal, written only under the lease:")
    for line in try await store.journal() {
        console.say("  " + line)
    }
    // The library's thread stops: nothing is left. (It waits up to 100 ms for a heartbeat to end.)
    try await awaitBlocking(on: Settings.waits) { try LeaseLibrary.shutdown() }
    console.say("done")
}

let arguments = CommandLine.arguments
let isExtension = arguments.count > 3 && arguments[1] == "--extension"
let console = Console(
    me: isExtension ? "extension" : "app",
    started: isExtension ? (Double(arguments[3]) ?? 0) : Date().timeIntervalSince1970
)
do {
    if isExtension {
        try await runExtension(database: arguments[2], console: console)
    } else {
        let database = arguments.count > 1
            ? arguments[1]
            : FileManager.default.temporaryDirectory.appendingPathComponent("lease-swift-sample-\(getpid()).db").path
        try await runApp(database: database, console: console)
    }
} catch {
    console.say("failed: \(error)")
    exit(1)
}
