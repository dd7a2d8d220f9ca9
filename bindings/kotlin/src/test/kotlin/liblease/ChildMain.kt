package liblease

import kotlin.system.exitProcess
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/**
 * Another OS process for the tests: a JVM running this class with the test classpath, using
 * liblease through the binding. It takes orders on stdin and reports on stdout, one line each.
 *
 *   hold DB KEY LEASE_MS       takes the lease, reports "held GENERATION", releases when told
 *   probe DB KEY               reports "status N": what one try-acquire returns here
 *   steal DB KEY PID WAIT_MS   stops process PID (SIGSTOP), waits WAIT_MS, takes the lease, writes
 *                              a row ('thief') into table work in a fenced transaction, reports
 *                              "stole GENERATION", continues PID (SIGCONT), releases when told
 *   wait DB KEY HELD_KEY       takes HELD_KEY, reports "holding GENERATION"; finds KEY held elsewhere
 *                              and reports "waiting"; waits up to 50 s for KEY, reports "took
 *                              GENERATION"; releases both when told. Both leases last 60 s.
 *   write DB SQL...            runs each SQL statement through execute, each its own commit;
 *                              reports "wrote N"
 *   transaction DB SQL...      runs the statements in one transaction; reports "committed"
 *   burst DB N                 inserts N rows into table burst (n), each its own commit; reports
 *                              "done N"
 *   migrate DB TARGET STEP_MS  reports "ready"; when told, migrates to TARGET with steps that each
 *                              record (version, pid) in table migration_steps (made by step 1)
 *                              and take STEP_MS; reports "migrated VERSION", the version after
 */
object ChildMain {
    @JvmStatic
    fun main(args: Array<String>) {
        try {
            when (args.firstOrNull()) {
                "hold" -> hold(args[1], args[2], args[3].toLong())
                "probe" -> probe(args[1], args[2])
                "steal" -> steal(args[1], args[2], args[3].toLong(), args[4].toLong())
                "wait" -> waitForLease(args[1], args[2], args[3])
                "write" -> write(args[1], args.drop(2))
                "transaction" -> transaction(args[1], args.drop(2))
                "burst" -> burst(args[1], args[2].toInt())
                "migrate" -> migrate(args[1], args[2].toInt(), args[3].toLong())
                else -> error("unknown role ${args.toList()}")
            }
            LeaseLibrary.shutdown()
        } catch (error: Throwable) {
            error.printStackTrace()
            exitProcess(1)
        }
    }

    private fun report(line: String) = println(line).also { System.out.flush() }

    private fun awaitOrder() = readlnOrNull()

    private fun hold(db: String, key: String, leaseMs: Long) {
        val options = LockOptions(lease = leaseMs.milliseconds, renewEvery = (leaseMs / 4).milliseconds)
        LeaseStore.open(db).use { store ->
            store.lock(key, "child", options).use { lock ->
                lock.acquireBlocking(10.seconds).use { guard ->
                    report("held ${guard.generation}")
                    awaitOrder()
                }
                report("released")
            }
        }
    }

    private fun probe(db: String, key: String) {
        LeaseStore.open(db).use { store ->
            store.lock(key, "probe").use { lock ->
                val guard = lock.tryAcquire()
                report("status ${if (guard != null) LeaseStatus.OK else LeaseStatus.BUSY}")
                guard?.close()
            }
        }
    }

    private fun steal(db: String, key: String, victim: Long, waitMs: Long) {
        LeaseStore.open(db).use { store ->
            store.lock(key, "thief").use { lock ->
                var guard: LeaseGuard? = null
                for (attempt in 1..5) {
                    signal("STOP", victim)
                    Thread.sleep(waitMs)
                    guard = lock.tryAcquire()
                    if (guard != null) break
                    // The victim was stopped while it held the database's write lock (renewing):
                    // let it finish, then stop it again.
                    System.err.println("child: the lease is busy; trying again")
                    signal("CONT", victim)
                    Thread.sleep(200)
                }
                checkNotNull(guard) { "could not steal the lease" }.use {
                    LeaseDatabase.open(db).use { database ->
                        database.beginFenced(it).use { tx ->
                            tx.execute("INSERT INTO work (who) VALUES ('thief')")
                            tx.commit()
                        }
                    }
                    report("stole ${it.generation}")
                    signal("CONT", victim)
                    awaitOrder()
                }
                report("released")
            }
        }
    }

    private fun waitForLease(db: String, key: String, heldKey: String) {
        val options = LockOptions(lease = 60.seconds, renewEvery = 15.seconds)
        LeaseStore.open(db).use { store ->
            store.lock(heldKey, "child", options).use { held ->
                held.acquireBlocking(10.seconds).use { holding ->
                    report("holding ${holding.generation}")
                    store.lock(key, "child", options).use { lock ->
                        check(lock.tryAcquire() == null) { "$key is not held by another process" }
                        report("waiting")
                        lock.acquireBlocking(50.seconds).use { took ->
                            report("took ${took.generation}")
                            awaitOrder()
                        }
                    }
                }
            }
            report("released")
        }
    }

    private fun write(db: String, statements: List<String>) {
        LeaseDatabase.open(db).use { database -> statements.forEach { database.execute(it) } }
        report("wrote ${statements.size}")
    }

    private fun transaction(db: String, statements: List<String>) {
        LeaseDatabase.open(db).use { database ->
            database.transaction { tx -> statements.forEach { tx.execute(it) } }
        }
        report("committed")
    }

    private fun burst(db: String, n: Int) {
        LeaseDatabase.open(db).use { database ->
            repeat(n) { database.execute("INSERT INTO burst (n) VALUES (?)", it) }
        }
        report("done $n")
    }

    private fun migrate(db: String, target: Int, stepMs: Long) {
        val pid = ProcessHandle.current().pid()
        LeaseDatabase.open(db).use { database ->
            report("ready")
            awaitOrder()
            database.migrate(target) { tx, version ->
                if (version == 1) tx.execute("CREATE TABLE migration_steps (version INTEGER, pid INTEGER)")
                tx.execute("INSERT INTO migration_steps VALUES (?, ?)", version, pid)
                Thread.sleep(stepMs)
            }
            report("migrated ${database.queryFirst("PRAGMA user_version")!!.getLong(0)}")
        }
    }

    private fun signal(name: String, pid: Long) {
        val exit = ProcessBuilder("kill", "-$name", pid.toString()).inheritIO().start().waitFor()
        check(exit == 0) { "kill -$name $pid failed" }
    }
}
