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

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch (arguments.first ?? "", arguments.count) {
    case ("hold", 4): try hold(arguments[1], arguments[2], leaseMs: Int(arguments[3])!)
    case ("wait", 5):
        try holdAndWait(arguments[1], held: arguments[2], wanted: arguments[3], leaseMs: Int(arguments[4])!)
    case ("probe", 3): try probe(arguments[1], arguments[2])
    case ("steal", 5): try steal(arguments[1], arguments[2], victim: pid_t(arguments[3])!, waitMs: Int(arguments[4])!)
    case ("write", 2): try writeOnOrder(arguments[1])
    default:
        FileHandle.standardError.write(Data("unknown role \(arguments)\n".utf8))
        exit(2)
    }
    try LeaseLibrary.shutdown()
} catch {
    FileHandle.standardError.write(Data("child: \(error)\n".utf8))
    exit(1)
}
