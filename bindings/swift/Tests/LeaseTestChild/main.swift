// Another OS process for the Swift tests: it uses liblease through the binding, takes orders on
// stdin and reports on stdout, one line each.
//
//   hold DB KEY LEASE_MS       takes the lease, reports "held GENERATION", releases when told
//   wait DB HELD WANTED LEASE_MS
//                              takes HELD (reports "held GENERATION"), then waits up to 30 s for
//                              WANTED (reports "took GENERATION"), both with leases of LEASE_MS;
//                              releases both when told
//   probe DB KEY               reports "status N": what one try-acquire returns here (0 or 1)
//   steal DB KEY PID WAIT_MS   stops process PID (SIGSTOP), waits WAIT_MS, takes the lease, writes
//                              a row ('thief') into table work in a fenced transaction, reports
//                              "stole GENERATION", continues PID (SIGCONT), releases when told
//   write DB                   runs each order on stdin through one LeaseDatabase and reports
//                              "done" after it, until "end": "tx TABLE..." a row into each table,
//                              in one transaction; "burst TABLE N" N rows, each its own commit;
//                              "sql SQL" one statement (execute)
//   migrate DB TARGET          reports "ready", waits for an order, brings DB to version TARGET
//                              (1: tables step_log and items; 2: a column; 3: an index; each step
//                              logs its version and this pid in step_log, and takes 50 ms), and
//                              reports "migrated VERSION", the file's version after

#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif
import Foundation
import Lease

/// Writes one line to standard output at once, unbuffered: the test reads it through a pipe.
/// (Not print and fflush(stdout): Glibc's stdout is a global variable that Swift 6 refuses to read
/// from code that may run concurrently.)
func report(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func sleep(milliseconds: Int) {
    usleep(useconds_t(milliseconds * 1000))
}

func hold(_ db: String, _ key: String, leaseMs: Int) throws {
    let lease = Double(leaseMs) / 1000
    let store = try LeaseStore(path: db)
    let lock = try store.lock(key, label: "child-holder", options: LockOptions(lease: lease, renewEvery: lease / 4))
    let leaseGuard = try lock.acquireBlocking(timeout: 10)
    report("held \(leaseGuard.generation)")
    _ = readLine()
    leaseGuard.release()
    report("released")
}

func holdAndWait(_ db: String, held: String, wanted: String, leaseMs: Int) throws {
    let lease = Double(leaseMs) / 1000
    let options = LockOptions(lease: lease, renewEvery: lease / 4)
    let store = try LeaseStore(path: db)
    let heldLock = try store.lock(held, label: "child-waiter", options: options)
    let wantedLock = try store.lock(wanted, label: "child-waiter", options: options)
    let heldGuard = try heldLock.acquireBlocking(timeout: 10)
    report("held \(heldGuard.generation)")
    let wantedGuard = try wantedLock.acquireBlocking(timeout: 30)
    report("took \(wantedGuard.generation)")
    _ = readLine()
    wantedGuard.release()
    heldGuard.release()
    report("released")
}

func probe(_ db: String, _ key: String) throws {
    let store = try LeaseStore(path: db)
    let lock = try store.lock(key, label: "probe")
    let leaseGuard = try lock.tryAcquire()
    report("status \(leaseGuard == nil ? 1 : 0)")
    leaseGuard?.release()
}

func steal(_ db: String, _ key: String, victim: pid_t, waitMs: Int) throws {
    let store = try LeaseStore(path: db)
    let lock = try store.lock(key, label: "thief")
    var stolen: LeaseGuard?
    for _ in 0..<5 {
        kill(victim, SIGSTOP)
        sleep(milliseconds: waitMs)
        stolen = try lock.tryAcquire()
        if stolen != nil { break }
        // The victim was stopped while it held the database's write lock (renewing): let it
        // finish, then stop it again.
        FileHandle.standardError.write(Data("child: the lease is busy; trying again\n".utf8))
        kill(victim, SIGCONT)
        sleep(milliseconds: 200)
    }
    guard let leaseGuard = stolen else {
        kill(victim, SIGCONT)
        throw LeaseError.busy("could not steal the lease")
    }
    let database = try LeaseDatabase(path: db)
    let transaction = try database.beginFenced(leaseGuard)
    try transaction.execute("INSERT INTO work (who) VALUES ('thief')")
    try transaction.commit()
    report("stole \(leaseGuard.generation)")
    kill(victim, SIGCONT)
    _ = readLine()
    leaseGuard.release()
    report("released")
}

func writeOnOrder(_ db: String) throws {
    let database = try LeaseDatabase(path: db)
    while let order = readLine(), order != "end" {
        let words = order.split(separator: " ").map { String($0) }
        switch (words.first ?? "", words.count) {
        case ("tx", _):
            try database.transaction { tx in
                for table in words.dropFirst() {
                    try tx.execute("INSERT INTO \(table) VALUES (1)")
                }
            }
        case ("burst", 3):
            for row in 0..<Int(words[2])! {
                try database.execute("INSERT INTO \(words[1]) VALUES (?)", SQLValue(row))
            }
        case ("sql", _):
            try database.execute(String(order.dropFirst("sql ".count)))
        default:
            throw LeaseError.invalidArgument("unknown order \(order)")
        }
        report("done")
    }
}

func migrateItems(_ db: String, to target: UInt32) throws {
    let database = try LeaseDatabase(path: db)
    report("ready")
    _ = readLine()
    try database.migrate(to: target) { tx, version in
        switch version {
        case 1:
            try tx.execute("CREATE TABLE step_log (version INTEGER NOT NULL, pid INTEGER NOT NULL)")
            try tx.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        case 2:
            try tx.execute("ALTER TABLE items ADD COLUMN done INTEGER NOT NULL DEFAULT 0")
        case 3:
            try tx.execute("CREATE INDEX items_by_done ON items (done)")
        default:
            throw LeaseError.invalidArgument("no step to version \(version)")
        }
        try tx.execute("INSERT INTO step_log (version, pid) VALUES (?, ?)", SQLValue(Int64(version)), SQLValue(Int64(getpid())))
        // Long enough that the other migrators are at the door meanwhile.
        sleep(milliseconds: 50)
    }
    let version = try database.queryFirst("PRAGMA user_version")?[0].int64 ?? -1
    report("migrated \(version)")
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch (arguments.first ?? "", arguments.count) {
    case ("hold", 4): try hold(arguments[1], arguments[2], leaseMs: Int(arguments[3])!)
    case ("wait", 5):
        try holdAndWait(arguments[1], held: arguments[2], wanted: arguments[3], leaseMs: Int(arguments[4])!)
    case ("probe", 3): try probe(arguments[1], arguments[2])
    case ("steal", 5): try steal(arguments[1], arguments[2], victim: pid_t(arguments[3])!, waitMs: Int(arguments[4])!)
    case ("write", 2): try writeOnOrder(arguments[1])
    case ("migrate", 3): try migrateItems(arguments[1], to: UInt32(arguments[2])!)
    default:
        FileHandle.standardError.write(Data("unknown role \(arguments)\n".utf8))
        exit(2)
    }
    try LeaseLibrary.shutdown()
} catch {
    FileHandle.standardError.write(Data("child: \(error)\n".utf8))
    exit(1)
}
