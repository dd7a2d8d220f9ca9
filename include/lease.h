/*
 * liblease: a cross-process leased lock and cooperative transactions over one shared SQLite
 * database.
 *
 * Several processes open the same SQLite database file: an iOS app and its extensions, the
 * processes of one Android app, a desktop app and its helper. Some work must be done by one of
 * them at a time (a sync, a key upload, a migration). A LeaseLock names such work by a key; the
 * process that holds the key's lease is the only one doing it. A lease lasts a limited time and
 * the library renews it in the background while it is held. A waiting process takes over at
 * once when the holder releases the lease; when the holder crashes or is killed, as soon as its
 * process is known to be gone (Linux and Android can tell), else when its lease runs out; when
 * the holder is suspended, when its lease runs out.
 *
 * The processes also write the database, and SQLite lets one writer in at a time without
 * queueing the others: a writer that finds the file locked polls with growing sleeps, so a
 * writer that keeps coming back can starve the rest. A LeaseDb writes through a writer queue
 * instead. Every write of a process to a file (a transaction, a single statement, and the lock's
 * own renewals) waits its turn first come, first served; between processes that use liblease,
 * the writer that has waited longest goes next. A long job uses a chunked transaction, which
 * commits in short chunks and lets a waiting writer in within milliseconds. A fenced
 * transaction writes only while a lease is held, so that a holder suspended past its lease
 * cannot write over the work of the process that took the lease after it.
 *
 * HANDLES
 *
 *   LeaseStore  a connection to a database file that holds the lease table (lease_store_open).
 *               The table normally lives in the application's own database file.
 *   LeaseLock   a named lease in a store (lease_lock_new).
 *   LeaseGuard  proof that this process holds a lease (lease_lock_acquire and friends).
 *   LeaseDb     a connection to a database file for the application's own SQL (lease_db_open),
 *               normally the same file as the store's.
 *   LeaseTx     a write transaction on a LeaseDb: plain, chunked or fenced (lease_db_begin and
 *               its siblings).
 *   LeaseObserver  a callback told after commits to a database file (lease_db_observe).
 *
 * Each handle is freed by its own function: lease_store_free, lease_lock_free,
 * lease_guard_release, lease_db_free and lease_observer_free; a transaction is ended and freed by
 * lease_tx_commit or lease_tx_rollback. Each of them but lease_tx_commit accepts NULL. Handles may be freed in any
 * order: a lock keeps what it needs of its store alive, a guard keeps its lease, and a
 * transaction keeps its database's connection.
 *
 * Exclusion is between processes. Within one process the lock is re-entrant: while the process
 * holds a lease, every acquisition of the same key in the same database file succeeds at once,
 * whichever thread and whichever LeaseLock asks. The lease is held while any of the process's
 * guards of it is alive, and is given back when the last one is released, so a waiting process
 * takes over at once: the lease row is released, or, when another process waits for the lease,
 * the release is said on the board beside the database and that process takes the lease over in
 * its own write (the release is written into the database 50 ms later if nobody took it).
 *
 * Every time a different process takes a lease its generation increases. A guard is "dirty" when
 * another process may have held the lease since this process last held it: whatever this process
 * cached under the lease is then stale. The first acquisition in a process is dirty.
 *
 * A lease is lost when this process was suspended (or its renewals failed) past the lease's
 * expiry: another process may have taken it meanwhile. A lost guard's lease_guard_check returns
 * LEASE_LOST, the lock's lost callback (lease_lock_set_lost_callback) is called once, and the
 * next acquisition is a fresh, dirty one. Leases are timed by a clock shared by every process
 * of one boot that keeps counting while the machine sleeps and ignores changes of the wall
 * clock; a reboot expires every lease.
 *
 * KNOWING WHAT CHANGED
 *
 * An observer (lease_db_observe) is called after every commit to the file by any process, with
 * the tables that changed, or with none when a writer that does not use liblease committed.
 * LeaseDb writers record what each transaction changed in the file itself, in the table
 * liblease_change, inside that transaction: a process stopped or suspended while others wrote
 * is told everything once it runs again. Schema migrations of the application's own
 * (lease_db_migrate) run each step once across the processes that open the file together.
 *
 * CONVENTIONS
 *
 * Every function that can fail returns a LeaseStatus. LEASE_OK is zero; on any other status,
 * lease_last_error_message() says what went wrong, naming the function. Outputs (the out_*
 * arguments) are written only when the function returns LEASE_OK. Strings passed in are
 * NUL-terminated UTF-8 and are not kept after the call returns; SQL values travel as LeaseValue.
 * A NULL pointer where a handle, a string, a callback or an output is required, a string that
 * is not UTF-8, and an out-of-range value all return LEASE_INVALID_ARGUMENT. No Rust panic
 * crosses into C: an internal error returns LEASE_PANIC, or a harmless default from functions
 * that return no status.
 *
 * Durations are uint32_t milliseconds, and 0 means zero everywhere. A time limit of 0 (the
 * timeout_ms of an acquisition, a LeaseDb's busy timeout) makes one attempt that never waits.
 * A length of time that must pass (a lock option, a chunk's period) cannot be 0: it is
 * LEASE_INVALID_ARGUMENT. UINT32_MAX is not special: it is about 49.7 days.
 *
 * A callback whose context outlives the call that gives it (a lock's lost callback, say) comes
 * with an optional LeaseDestroyCallback, which the library calls exactly once when it no longer
 * needs the context; a language binding can release the object behind the context there. A
 * callback that is called exactly once (an asynchronous acquisition's) needs none.
 *
 * THREADS
 *
 * Every function may be called from any thread, and every handle but LeaseTx may be used by
 * several threads at once, except that a handle must not be freed while another thread still
 * uses it. A LeaseTx is used by one thread at a time (it may move between threads). The library
 * has one background thread, named "liblease". It starts the first time this process holds a
 * lease, asks for an asynchronous acquisition or observes a database (merely opening a store or
 * a database starts nothing); it renews held leases, watches for commits, and runs the locks'
 * and the observers' callbacks. These must return promptly and must not wait for a lease
 * (lease_lock_acquire with a timeout, say): while one runs, renewals of this process's leases
 * wait. Row callbacks (LeaseRowCallback) and migration steps (LeaseMigrationStep) run on the
 * thread that called, during its call. lease_shutdown() stops and joins the thread when nothing
 * needs it, so that a host can unload the library.
 *
 * ONE SQLITE PER PROCESS
 *
 * liblease is built with SQLite inside it (the default; its symbols stay private to
 * liblease.so) or against the platform's libsqlite3 (the system-sqlite build). Two copies of
 * SQLite in one process do not see each other's locks on the same file: if this process also
 * opens the shared database through another SQLite (GRDB, Core Data, CPython's sqlite3, Room),
 * build liblease against that same SQLite (on iOS and macOS the system's, which GRDB and Core
 * Data use), or keep the other SQLite's users of the file in other processes. On Android the
 * framework's SQLite cannot be linked from the NDK: use the bundled build there. The system
 * SQLite must be 3.35 or later; an older one makes every open fail with LEASE_DATABASE, saying
 * both versions.
 *
 * SIGNALS AND FILES
 *
 * liblease keeps nothing beside the database but SQLite's -wal and -shm files and its own
 * <database>-liblease (4 KiB, mapped into memory, never locked). Its SQLite connections use a
 * VFS of its own, named "liblease": SQLite's default one, with the -shm file's mappings guarded.
 * Another program that truncates the -shm or the -liblease file under a mapped process would
 * kill that process with SIGBUS (SQLite alone dies so); liblease installs a SIGBUS handler the
 * first time it maps such a file, which turns a fault inside its own mappings into an I/O error
 * of the connections involved (LEASE_DATABASE, saying that the -shm file was truncated: close
 * every handle of the database and open it again), and hands every other SIGBUS to the handler
 * installed before it, or to the default action.
 *
 * FORK
 *
 * A handle made before fork() belongs to the parent. In the child every call on it returns
 * LEASE_MISUSE, and freeing it there touches nothing of the parent's (it leaks a little memory
 * instead). To use liblease in a child, exec a program that opens its own store and database. A
 * forked child that does not exec must not open a store or a database on a file its parent has
 * open either: SQLite keeps per-process bookkeeping of the locks on each open file, and a
 * forked child inherits the parent's, so its new connection would not be locked correctly.
 */

#ifndef LEASE_H
#define LEASE_H

/* Generated from src/ffi by cbindgen (see build.rs); do not edit. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The version of liblease this header describes; lease_version() gives the loaded one's. */
#define LEASE_VERSION_MAJOR 0
#define LEASE_VERSION_MINOR 2
#define LEASE_VERSION_PATCH 0
#define LEASE_VERSION_STRING "0.2.0"

/**
 * A log message's level: something failed.
 */
#define LEASE_LOG_ERROR 1

/**
 * Something went wrong that the library copes with: a lease lost, a renewal that came late, a
 * second SQLite in the process, a board file that is not liblease's.
 */
#define LEASE_LOG_WARN 2

/**
 * What the locks do: a lease acquired (after how long, dirty or clean, its generation),
 * released, taken over from a holder that died or whose lease ran out.
 */
#define LEASE_LOG_INFO 3

/**
 * Wake-ups, renewals, checkpoints.
 */
#define LEASE_LOG_DEBUG 4

/**
 * A NULL value (LeaseValue.kind).
 */
#define LEASE_VALUE_NULL 0

/**
 * A 64-bit signed integer, in LeaseValue.integer.
 */
#define LEASE_VALUE_INTEGER 1

/**
 * A double, in LeaseValue.real. SQLite stores a NaN as NULL.
 */
#define LEASE_VALUE_REAL 2

/**
 * UTF-8 text: len bytes at LeaseValue.data, not NUL-terminated, possibly holding NUL bytes.
 */
#define LEASE_VALUE_TEXT 3

/**
 * Bytes: len bytes at LeaseValue.data.
 */
#define LEASE_VALUE_BLOB 4

/**
 * The period of lease_db_begin_chunked's chunks that suits most jobs, in milliseconds.
 */
#define LEASE_DEFAULT_CHUNK_MS 1000

/**
 * What a call did. Returned by every function that can fail; the numbers are stable.
 *
 * On any status but LEASE_OK, lease_last_error_message() on the same thread says why.
 */
typedef enum LeaseStatus {
  /**
   * The call succeeded.
   */
  LEASE_OK = 0,
  /**
   * Another process holds the lease (lease_lock_try_acquire), or other writers held the
   * database's write lock: at the instant of a lock's try, or for the whole busy timeout of a
   * LeaseDb (lease_db_set_busy_timeout). Trying again later may succeed.
   */
  LEASE_BUSY = 1,
  /**
   * The lease stayed held by another process for the whole time limit.
   */
  LEASE_TIMEOUT = 2,
  /**
   * This process no longer holds the lease: it ran out before it could be renewed (the process
   * was suspended, or the database could not be written), or the database file it is kept in
   * was deleted, renamed or replaced, and another process may have taken it. Release the guard
   * and acquire again (after opening the file again, if it was replaced); the new guard is
   * dirty. A fenced transaction
   * (lease_db_begin_fenced) returns it, having written nothing, when its guard's lease is gone.
   */
  LEASE_LOST = 3,
  /**
   * A NULL pointer, a string that is not UTF-8, an empty key, zero or contradictory lock
   * options, an invalid LeaseValue, SQL that is not the one statement the function runs, or
   * the wrong number of parameters. Nothing was done.
   */
  LEASE_INVALID_ARGUMENT = 4,
  /**
   * SQLite failed (the file cannot be opened, is not a database, the disk is full, the SQL has
   * an error, a constraint failed...); the message is SQLite's own, with the file's path.
   */
  LEASE_DATABASE = 5,
  /**
   * The call is not allowed now: a handle made before fork() used in the child, lease_shutdown
   * while the library's thread has work, the library's thread could not be started, a
   * transaction used after it ended or by two calls at once, or a query of a LeaseDb from its
   * own row callback.
   */
  LEASE_MISUSE = 6,
  /**
   * A bug in liblease: it panicked. The message says where; please report it.
   */
  LEASE_PANIC = 7,
  /**
   * An asynchronous acquisition was cancelled (lease_lock_cancel_acquire) before it took the
   * lease.
   */
  LEASE_CANCELLED = 8,
  /**
   * The process is suspended (lease_suspend): nothing that writes runs until lease_resume.
   * Reads still work.
   */
  LEASE_SUSPENDED = 9,
} LeaseStatus;

/**
 * A connection to a shared SQLite database file, for the application's own reads and writes.
 * Opaque; made by lease_db_open, freed by lease_db_free. Thread-safe.
 */
typedef struct LeaseDb LeaseDb;

/**
 * Proof that this process holds a lease. Opaque; made by lease_lock_try_acquire,
 * lease_lock_acquire or an asynchronous acquisition; released by lease_guard_release.
 * Thread-safe: a guard may be used and released on any thread.
 */
typedef struct LeaseGuard LeaseGuard;

/**
 * A named lease in a store. Opaque; made by lease_lock_new, freed by lease_lock_free.
 * Thread-safe.
 */
typedef struct LeaseLock LeaseLock;

/**
 * An observer of a database file: its callback is called after commits to the file. Opaque;
 * made by lease_db_observe, freed by lease_observer_free.
 */
typedef struct LeaseObserver LeaseObserver;

/**
 * A connection to a database file holding the lease table (or to a private in-memory
 * database). Opaque; made by lease_store_open or lease_store_open_memory, freed by
 * lease_store_free. Thread-safe.
 */
typedef struct LeaseStore LeaseStore;

/**
 * An open write transaction. Opaque; made by lease_db_begin, lease_db_begin_chunked or
 * lease_db_begin_fenced; ended and freed by lease_tx_commit or lease_tx_rollback. Used by one
 * thread at a time: it may move between threads, but two calls on it must not overlap.
 */
typedef struct LeaseTx LeaseTx;

/**
 * Called with each of the library's log messages (see lease_set_log_callback): level is one of
 * LEASE_LOG_ERROR ... LEASE_LOG_DEBUG, message is English text naming the lease's key or the
 * database file, NUL-terminated and valid only during the call. context is the pointer given to
 * lease_set_log_callback.
 *
 * It runs on the thread where the event happened: the caller's (during one of its lease_*
 * calls) or the library's ("liblease"), and on several threads at once. It must return soon and
 * must not call back into liblease in a way that could wait (no lease_lock_acquire with a
 * timeout, no lease_db_execute); a message that liblease would log from inside the callback is
 * dropped.
 */
typedef void (*LeaseLogCallback)(void *context, uint32_t level, const char *message);

/**
 * Called exactly once when the library no longer needs a callback's context: after the last
 * call of the callback that was given with it has returned, when that callback is replaced or
 * removed, or when its handle is freed. Runs on the thread that replaced the callback or freed
 * the handle, or on the library's thread ("liblease") when a call of the callback was still
 * running then (it runs right after that call returns). It may free liblease handles (a
 * binding's last reference to the lock, say) but must not wait (no lease_lock_acquire with a
 * timeout). context is the pointer given with the callback.
 */
typedef void (*LeaseDestroyCallback)(void *context);

/**
 * The timing of a lock, in milliseconds: give it to lease_lock_new. Set it up with
 * lease_lock_options_init, which fills in the defaults, then change what you need.
 *
 * The struct may grow in later versions: size says how much of it the caller's header knew
 * (lease_lock_options_init sets it to the size it was given, sizeof(LeaseLockOptions)). A
 * library newer than the caller's header uses the defaults for the fields the caller did not
 * know; one older than the caller's header accepts fields it does not know only when they are
 * zero, and otherwise refuses the options (LEASE_INVALID_ARGUMENT), rather than ignore a
 * setting the caller asked for.
 */
typedef struct LeaseLockOptions {
  /**
   * The size of the struct as the caller knows it, in bytes; set by lease_lock_options_init.
   */
  uint32_t size;
  /**
   * How long a lease lasts without renewal: the longest another process waits for it after
   * this one crashed, was killed or was suspended while holding it. Above 0, at most one day.
   */
  uint32_t lease_ms;
  /**
   * How often the library's thread renews a held lease. Above 0, and at most half of
   * lease_ms, so that a renewal delayed by a busy database still succeeds before the lease
   * runs out.
   */
  uint32_t renew_every_ms;
  /**
   * The longest pause between two attempts of a waiting acquisition; above 0. A waiting
   * acquisition is woken when the lease may have changed hands: a liblease process wrote the
   * database (a release is a write), or the holder's process ended. This pause bounds how late
   * it notices what nothing announces, such as a write by a program that does not use liblease.
   */
  uint32_t max_backoff_ms;
} LeaseLockOptions;

/**
 * Called once when an asynchronous acquisition ends, on the library's thread ("liblease").
 *
 * On success status is LEASE_OK and guard is a new guard that the callee owns and must release
 * with lease_guard_release (at once, or later from any thread). Otherwise guard is NULL, status
 * says why (LEASE_TIMEOUT, LEASE_SUSPENDED, LEASE_CANCELLED, ...) and lease_last_error_message(), called in the
 * callback, gives the message. context is the pointer given to lease_lock_acquire_async.
 */
typedef void (*LeaseAcquireCallback)(void *context,
                                     enum LeaseStatus status,
                                     struct LeaseGuard *guard);

/**
 * Called once, on the library's thread ("liblease"), when a lease held through a lock is lost:
 * another process may be doing the work the lease protects. key is the lock's key, valid only
 * during the call. context is the pointer given to lease_lock_set_lost_callback.
 */
typedef void (*LeaseLostCallback)(void *context, const char *key);

/**
 * One SQL value: a statement's parameter, or a column of a result row.
 *
 * kind is one of the LEASE_VALUE_* constants and says which other field holds the value;
 * the others are ignored in parameters and zero in columns.
 *
 * As a parameter: data may be NULL only when len is 0 (an empty TEXT or BLOB, which is not
 * SQL NULL). TEXT must be valid UTF-8. The bytes need only stay valid for the call: liblease
 * is done with them when it returns.
 *
 * As a column (see LeaseRowCallback): TEXT and BLOB data is never NULL, even when len is 0,
 * and stays valid only during the callback. A TEXT column that is not valid UTF-8 (written by
 * another program) arrives as a BLOB with its bytes unchanged.
 */
typedef struct LeaseValue {
  /**
   * LEASE_VALUE_NULL, LEASE_VALUE_INTEGER, LEASE_VALUE_REAL, LEASE_VALUE_TEXT or
   * LEASE_VALUE_BLOB.
   */
  uint32_t kind;
  /**
   * The value of an INTEGER.
   */
  int64_t integer;
  /**
   * The value of a REAL.
   */
  double real;
  /**
   * The bytes of a TEXT (UTF-8, not necessarily NUL-terminated) or a BLOB.
   */
  const uint8_t *data;
  /**
   * How many bytes are at data.
   */
  size_t len;
} LeaseValue;

/**
 * Called once per result row, on the thread that called lease_db_query or lease_tx_query,
 * before that call returns.
 *
 * columns points at n_columns values, one per result column in order; they, and every data
 * pointer in them, are valid only until the callback returns: copy what you keep. context is
 * the pointer given with the callback. Return 0 for the next row, anything else to stop: the
 * query then ends early and returns LEASE_OK.
 *
 * The callback may call liblease, except on the handle whose query is calling it: the same
 * LeaseDb's lease_db_query, or any function of the same LeaseTx, returns LEASE_MISUSE there,
 * and freeing that handle there is not allowed.
 */
typedef int32_t (*LeaseRowCallback)(void *context,
                                    const struct LeaseValue *columns,
                                    size_t n_columns);

/**
 * Called on the library's thread ("liblease") after commits to an observed database file.
 *
 * tables holds the names of the tables that changed (n_tables of them, each once, sorted;
 * valid only during the call), or is NULL with n_tables = 0 when they are not known, and
 * anything may have changed: a writer that does not use liblease committed, or a LeaseDb ran a
 * write that names no table (PRAGMA user_version, as a migration does). liblease's own tables
 * are never named, and a commit that changed only them (a lease's renewal) calls nobody.
 * context is the pointer given to lease_db_observe.
 *
 * The callback may read the database (with its own LeaseDb: lease_db_query), but must not wait
 * for anything that needs the library's thread (lease_lock_acquire with a timeout), and should
 * return soon: other callbacks and the leases' renewals wait meanwhile.
 */
typedef void (*LeaseChangeCallback)(void *context, const char *const *tables, size_t n_tables);

/**
 * Runs one migration step inside tx, which the library owns: the step must not commit or roll
 * it back (lease_tx_commit and lease_tx_rollback refuse it, with LEASE_MISUSE), nor keep it past
 * its return. It runs the step's SQL with lease_tx_execute and lease_tx_query and returns
 * LEASE_OK, or any other status to roll the step back. version is the version the step brings
 * the file to. context is the pointer given to lease_db_migrate. Runs on the thread that called
 * lease_db_migrate.
 */
typedef enum LeaseStatus (*LeaseMigrationStep)(void *context, struct LeaseTx *tx, uint32_t version);

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Returns the version of the library actually loaded, such as "0.2.0": compare it with
 * LEASE_VERSION_STRING, the version of this header. Static text; any thread.
 */
const char *lease_version(void);

/**
 * Returns a static, NUL-terminated description of a status code, such as
 * "LEASE_BUSY (held by another process)". Never returns NULL: a code that is not a LeaseStatus
 * gets "unknown LeaseStatus". Any thread; the text is never freed.
 */
const char *lease_status_str(uint32_t status);

/**
 * Returns the message of the last call on this thread that failed: English text naming the
 * function and saying what went wrong, for logs (do not parse it). Returns "" if no call on this
 * thread has failed. Never returns NULL.
 *
 * The text belongs to the library and stays valid until the next lease_* call on this thread
 * that fails: only a failing call replaces it. Calls that succeed, lease_status_str,
 * lease_version and lease_last_error_message itself leave it alone, so a caller may read the
 * status's text and the message in either order.
 * Each thread has its own message, so read it on the thread that made the failing call; for an
 * asynchronous acquisition that failed, that is the callback's thread.
 */
const char *lease_last_error_message(void);

/**
 * Sets the process's log callback: messages at max_level and more severe (LEASE_LOG_ERROR is the
 * most severe, LEASE_LOG_DEBUG the most verbose) are given to callback; a NULL callback turns
 * logging off (the default; max_level is checked all the same). Process-wide: it replaces the
 * callback set before. Calls of the old callback that began before this returns may still be
 * running (on other threads), and none begins after; its destroy (if not NULL) runs, with its
 * context, once the last of them has returned: here, at once, when none runs, or else on the
 * thread of that last call, whichever thread that is. With logging off no message is even
 * formatted.
 *
 * On LEASE_OK, context belongs to the library until destroy (if not NULL) is called with it,
 * exactly once. On any other status nothing changes, and destroy is not called. Any thread.
 *
 * Returns:
 * - LEASE_OK: the callback is set (or logging is off).
 * - LEASE_INVALID_ARGUMENT: max_level is not LEASE_LOG_ERROR, LEASE_LOG_WARN, LEASE_LOG_INFO or
 *   LEASE_LOG_DEBUG.
 */
enum LeaseStatus lease_set_log_callback(uint32_t max_level,
                                        LeaseLogCallback callback,
                                        void *context,
                                        LeaseDestroyCallback destroy);

/**
 * Suspends liblease in this process, for an app about to be suspended by its system (iOS
 * suspends an app soon after it goes to the background, and kills it if it then holds a write
 * lock on a database in a shared container; Android freezes cached processes). Call it when
 * the app goes to the background (and from a background task's expiration handler); call
 * lease_resume when it comes back. Process-wide; any thread.
 *
 * At once: every lease this process holds is given back to its database, so that a process
 * waiting for it takes over within milliseconds; the guards of those leases are lost
 * (lease_guard_check returns LEASE_LOST, each lock's lost callback runs once, and the first
 * acquisition after lease_resume is dirty). Every write is refused with LEASE_SUSPENDED from
 * now on: acquisitions of every kind (a lease_lock_acquire that is waiting returns it within
 * milliseconds, an asynchronous one completes with it), renewals, lease_db_execute of a
 * statement that writes, lease_db_begin and its siblings, and every call on a transaction that
 * was open (a statement running now is interrupted; the transaction is rolled back; end it with
 * lease_tx_rollback as usual). Chunks that a chunked transaction committed stay committed:
 * nothing committed is lost. Reads go on: lease_db_query, and lease_db_execute of a read-only
 * statement. While suspended, the library's thread touches no database.
 *
 * Returns once no connection of this process holds a write lock or a write transaction, or
 * after timeout_ms (0: look once, wait for nothing). Calling it again while suspended does the
 * same, and finds nothing to stop. Must not be called from a callback of liblease.
 *
 * Returns:
 * - LEASE_OK: nothing of liblease's holds a write lock; the process may be suspended.
 * - LEASE_TIMEOUT: a statement or transaction did not end within timeout_ms; the message names
 *   the database. The process is suspended all the same; call again to wait longer.
 */
enum LeaseStatus lease_suspend(uint32_t timeout_ms);

/**
 * Ends a suspension (lease_suspend): writes and acquisitions work again. Leases given back at
 * the suspension must be acquired again; the first acquisition of each is dirty. Does nothing
 * when the process is not suspended. Any thread.
 */
void lease_resume(void);

/**
 * Returns true between lease_suspend and lease_resume. Any thread.
 */
bool lease_is_suspended(void);

/**
 * Stops the library's background thread ("liblease") and waits for it to end, so that nothing
 * of liblease runs any more: call it before unloading the library, or at the end of a program
 * checked for leaks. Any later call that needs the thread starts it again. Does nothing when the
 * thread is not running.
 *
 * Call it from any thread but the library's own (not from a callback). Stores, locks and
 * databases may stay open; every guard must have been released, every observer freed and every
 * asynchronous acquisition called back. A
 * heartbeat that was just stopped by the last release ends a moment later; this call waits up
 * to 100 ms for such work to end.
 *
 * Returns:
 * - LEASE_OK: the thread is stopped (or was not running).
 * - LEASE_MISUSE: a guard is still held, an observer is not freed, an asynchronous acquisition
 *   has not been called back yet, or this was called on the library's thread; the thread keeps
 *   running.
 */
enum LeaseStatus lease_shutdown(void);

/**
 * Opens the SQLite database file at path (creating it if needed), switches it to WAL mode, and
 * creates or migrates liblease's lease table in it. The file is normally the application's own
 * database, shared by its processes; the lease table sits beside the application's tables.
 *
 * On LEASE_OK, *out_store is a new store that the caller frees with lease_store_free. Opening
 * starts no thread. Any thread.
 *
 * Returns:
 * - LEASE_OK: *out_store is set.
 * - LEASE_INVALID_ARGUMENT: path or out_store is NULL, or path is empty or not UTF-8.
 * - LEASE_BUSY: another connection held the database's write lock for seconds while the
 *   lease table was being created.
 * - LEASE_DATABASE: SQLite could not open the file, or it is not a database, or it cannot be
 *   switched to WAL mode.
 * - LEASE_SUSPENDED: the process is suspended (lease_suspend) and opening would write: the file
 *   is not in WAL mode yet, or its lease table must be created or migrated. Nothing was
 *   written. A file that needs neither opens while suspended.
 */
enum LeaseStatus lease_store_open(const char *path, struct LeaseStore **out_store);

/**
 * Opens a private in-memory store: nothing is shared with other processes or other stores.
 * For tests and single-process use.
 *
 * On LEASE_OK, *out_store is a new store that the caller frees with lease_store_free. Any
 * thread.
 *
 * Returns:
 * - LEASE_OK: *out_store is set.
 * - LEASE_INVALID_ARGUMENT: out_store is NULL.
 *
 * A private store locks no file, so it opens while the process is suspended too.
 */
enum LeaseStatus lease_store_open_memory(struct LeaseStore **out_store);

/**
 * Frees a store. Locks made from it keep working: they keep the connection open until they are
 * freed too. NULL is a no-op. Any thread, but no other thread may be using this store handle.
 */
void lease_store_free(struct LeaseStore *store);

/**
 * Fills options with liblease's defaults: a 10000 ms lease renewed every 5000 ms, and waiters
 * that look again at least every 250 ms. A release, a suspension (lease_suspend) and, on
 * Linux and Android, a crash hand the lease over at once, so its length only bounds how long
 * others wait for a holder that stopped without warning; a renewal writes one page to the WAL,
 * so an idle held lease costs under 1 KiB/s; and 5 s of slack keep a lease safe even when
 * another connection holds the database's write lock for seconds. size is sizeof(LeaseLockOptions):
 * the function writes that many bytes at most and records the size in options->size. Any
 * thread.
 *
 * Returns:
 * - LEASE_OK: options holds the defaults.
 * - LEASE_INVALID_ARGUMENT: options is NULL, or size is less than 16 (the size of the first
 *   LeaseLockOptions, in liblease 0.2).
 */
enum LeaseStatus lease_lock_options_init(struct LeaseLockOptions *options, size_t size);

/**
 * Makes a lock on key in store. Nothing is acquired yet, and nothing is written to the database.
 *
 * key names the lease; every process that uses the same key in the same database file contends
 * for the same lease. label names this process (say "app" or "share-extension") beside the
 * lease, for diagnostics; processes are told apart by an id of their own, so two processes
 * with the same label still exclude each other. options is NULL for the defaults, or options
 * set up by lease_lock_options_init. The strings and options are copied.
 *
 * On LEASE_OK, *out_lock is a new lock that the caller frees with lease_lock_free. The lock keeps
 * the store's connection alive, so the store may be freed first. Any thread.
 *
 * Returns:
 * - LEASE_OK: *out_lock is set.
 * - LEASE_INVALID_ARGUMENT: store, key, label or out_lock is NULL; key is empty; key or label is
 *   not UTF-8; options->size is too small, or options sets fields this version does not know
 *   (see LeaseLockOptions); or an option is zero or contradictory (renew_every_ms above half of
 *   lease_ms, lease_ms above a day).
 * - LEASE_MISUSE: store was opened before fork() and this is the child.
 */
enum LeaseStatus lease_lock_new(struct LeaseStore *store,
                                const char *key,
                                const char *label,
                                const struct LeaseLockOptions *options,
                                struct LeaseLock **out_lock);

/**
 * Takes the lease if it is free, has run out, or is already held by this process; never waits.
 *
 * While this process holds the lease (through any lock on the same key and database file, on
 * any thread) this succeeds at once with a guard that is not dirty. Otherwise it takes the lease
 * from the database in one atomic statement, and the library's thread starts renewing it.
 *
 * On LEASE_OK, *out_guard is a new guard that the caller releases with lease_guard_release; the
 * lease is held until this process's last guard of it is released. Any thread.
 *
 * Returns:
 * - LEASE_OK: the lease is held; *out_guard is set.
 * - LEASE_BUSY: another process holds the lease, or another connection holds the database's
 *   write lock at this instant.
 * - LEASE_INVALID_ARGUMENT: lock or out_guard is NULL.
 * - LEASE_DATABASE: SQLite failed.
 * - LEASE_MISUSE: the lock was made before fork() and this is the child, or the library's
 *   thread could not be started (the lease is then not kept).
 * - LEASE_SUSPENDED: the process is suspended (lease_suspend).
 */
enum LeaseStatus lease_lock_try_acquire(struct LeaseLock *lock, struct LeaseGuard **out_guard);

/**
 * Takes the lease like lease_lock_try_acquire, waiting up to timeout_ms milliseconds while
 * another process holds it. The calling thread sleeps until the lease may have changed hands:
 * the holder released it, its process ended, or its lease ran out (max_backoff_ms bounds how
 * late it notices what nothing announces). A timeout of 0 tries once.
 *
 * Blocks the calling thread: do not call it from a callback (use lease_lock_acquire_async or
 * lease_lock_try_acquire there). On LEASE_OK, *out_guard is a new guard that the caller releases
 * with lease_guard_release. Any other thread.
 *
 * Returns:
 * - LEASE_OK: the lease is held; *out_guard is set.
 * - LEASE_TIMEOUT: another process held the lease (or the database's write lock) throughout.
 * - LEASE_INVALID_ARGUMENT: lock or out_guard is NULL.
 * - LEASE_DATABASE: SQLite failed.
 * - LEASE_MISUSE: as for lease_lock_try_acquire.
 * - LEASE_SUSPENDED: the process is suspended (lease_suspend), before or during the wait (a
 *   suspension ends the wait at once).
 */
enum LeaseStatus lease_lock_acquire(struct LeaseLock *lock,
                                    uint32_t timeout_ms,
                                    struct LeaseGuard **out_guard);

/**
 * Starts taking the lease like lease_lock_acquire, but returns at once: callback is called
 * exactly once, on the library's thread ("liblease"), with the guard or the failure. See
 * LeaseAcquireCallback. No thread waits meanwhile; lease_lock_cancel_acquire ends the wait early.
 *
 * context is passed to callback unchanged, and names this acquisition to
 * lease_lock_cancel_acquire; it may be NULL. The caller keeps whatever it points at valid until
 * the callback has run; since the callback runs exactly once (when this returns LEASE_OK), it
 * can free its context itself, and there is no destroy function. The lock may be freed before
 * that; the acquisition goes on. Any thread.
 *
 * Returns:
 * - LEASE_OK: the acquisition started; callback will be called.
 * - LEASE_INVALID_ARGUMENT: lock or callback is NULL.
 * - LEASE_MISUSE: the lock was made before fork() and this is the child, or the library's
 *   thread could not be started.
 *
 * On any status but LEASE_OK, callback is never called.
 */
enum LeaseStatus lease_lock_acquire_async(struct LeaseLock *lock,
                                          uint32_t timeout_ms,
                                          LeaseAcquireCallback callback,
                                          void *context);

/**
 * Cancels the asynchronous acquisitions started through lock with this context (see
 * lease_lock_acquire_async) that are still waiting. Returns at once; each of their callbacks is
 * then called soon, on the library's thread, with LEASE_CANCELLED, unless the acquisition took
 * the lease (or failed) first, in which case its callback gets that outcome. Either way each
 * callback runs exactly once. Acquisitions that have ended, and contexts that name none, are
 * ignored. Any thread, callbacks included.
 *
 * Returns:
 * - LEASE_OK: the matching acquisitions (if any) are being cancelled.
 * - LEASE_INVALID_ARGUMENT: lock is NULL.
 * - LEASE_MISUSE: the lock was made before fork() and this is the child.
 */
enum LeaseStatus lease_lock_cancel_acquire(struct LeaseLock *lock, void *context);

/**
 * Sets the function called when a lease held through this lock is lost (see LeaseLostCallback),
 * replacing any previous one; a NULL callback removes it. The callback is called once per lost
 * hold, on the library's thread, for every lock through which a guard of that hold was taken.
 *
 * context is passed to callback unchanged; it may be NULL. destroy, which may be NULL, is called
 * exactly once with context when the library no longer needs it (see LeaseDestroyCallback):
 * after this callback is replaced or removed, or the lock freed, once no call of it is running.
 * When this function (or lease_lock_free) returns, the previous callback is not running and
 * will not be called again, and its destroy has run; the one exception is a call made from
 * inside that very callback, which is allowed and returns at once (the previous destroy then
 * runs when the callback returns). With a NULL callback, context and destroy are not used. On
 * any status but LEASE_OK nothing changes and destroy is not called: context stays the
 * caller's. Any thread.
 *
 * Returns:
 * - LEASE_OK: the callback is set (or removed).
 * - LEASE_INVALID_ARGUMENT: lock is NULL.
 * - LEASE_MISUSE: the lock was made before fork() and this is the child.
 */
enum LeaseStatus lease_lock_set_lost_callback(struct LeaseLock *lock,
                                              LeaseLostCallback callback,
                                              void *context,
                                              LeaseDestroyCallback destroy);

/**
 * Frees a lock. Guards taken through it stay valid and keep their lease until released. Its
 * lost callback is removed first (see lease_lock_set_lost_callback: when this returns, the
 * callback is not running and will not run, and its destroy has run). NULL is a no-op. In a
 * forked child it frees the handle without calling the parent's destroy. Any thread, but no
 * other thread may be using this lock handle.
 */
void lease_lock_free(struct LeaseLock *lock);

/**
 * Returns the lease's generation: a number that increases every time a different process takes
 * the lease, and stays the same while this process keeps or re-takes it. Fixed for the guard's
 * life, so it may be read once. Returns 0 for NULL. Any thread.
 */
uint64_t lease_guard_generation(const struct LeaseGuard *guard);

/**
 * Returns true when another process may have held the lease since this process last held it,
 * so that what this process cached under the lease is stale and must be reloaded. The first
 * acquisition in a process is dirty, and so is the first after a lost lease; an acquisition
 * that joins a hold this process already has never is. Fixed for the guard's life. Returns false
 * for NULL. Any thread.
 */
bool lease_guard_is_dirty(const struct LeaseGuard *guard);

/**
 * Tells whether the lease is still known to be held. Call it before acting on the lease (before
 * committing the work it protects, say) when time may have passed. It reads no database: it
 * checks what the library's thread last confirmed, and reports the lease lost as soon as its
 * last confirmed expiry has passed (after the process was suspended, say), even before the
 * library's thread has noticed; and it checks (one stat) that the store's path still names the
 * file the store opened: a lease kept in a file that was deleted, renamed or replaced since
 * (an app's "log out", say) is lost, since another process may take it in the file the path
 * names now. Once lost, a guard stays lost. Any thread.
 *
 * Returns:
 * - LEASE_OK: the lease is held.
 * - LEASE_LOST: the lease is lost: another process may hold it now. Stop the work, release the
 *   guard, and acquire again (the new guard is dirty). A suspension (lease_suspend) gives every
 *   lease up, so every guard taken before it is lost.
 * - LEASE_INVALID_ARGUMENT: guard is NULL.
 * - LEASE_MISUSE: the guard was taken before fork() and this is the child (which holds nothing).
 */
enum LeaseStatus lease_guard_check(const struct LeaseGuard *guard);

/**
 * Releases a guard and frees it. When it is this process's last guard of the lease, the lease is
 * given back at once (in the database, or on the board to a process that waits for it), so that
 * a waiting process takes over without waiting for it to run out (if giving it back fails, it
 * runs out by itself). Releasing a lost guard is
 * harmless. NULL is a no-op. Any thread, callbacks included, but no other thread may be using
 * this guard handle; in a forked child it frees the handle and gives back nothing.
 */
void lease_guard_release(struct LeaseGuard *guard);

/**
 * Opens the SQLite database file at path (creating it if needed) and switches it to WAL mode,
 * which lets readers and a writer work at once and is required for sharing between processes.
 * path is normally the file the processes' lease stores use too, so that transactions can be
 * fenced by their leases (lease_db_begin_fenced).
 *
 * Every handle of the same file in a process (whatever path spelling names it) writes through
 * one writer queue; see the header's introduction. Writes wait for the database up to the
 * handle's busy timeout, 5000 ms unless lease_db_set_busy_timeout changes it. Opening starts no
 * thread.
 *
 * On LEASE_OK, *out_db is a new handle that the caller frees with lease_db_free. Any thread.
 *
 * Returns:
 * - LEASE_OK: *out_db is set.
 * - LEASE_INVALID_ARGUMENT: path or out_db is NULL, or path is empty or not UTF-8.
 * - LEASE_BUSY: another connection kept the database locked while it was being switched to WAL
 *   mode.
 * - LEASE_DATABASE: SQLite could not open the file, or it is not a database, or it cannot be
 *   switched to WAL mode (":memory:", say: an in-memory database cannot be shared).
 * - LEASE_SUSPENDED: the process is suspended (lease_suspend) and the file is not in WAL mode yet:
 *   switching it would write. Nothing was written. A file in WAL mode opens while suspended.
 */
enum LeaseStatus lease_db_open(const char *path, struct LeaseDb **out_db);

/**
 * Sets how long a write through db (lease_db_execute, lease_db_begin and its siblings, and each
 * new chunk of a chunked transaction begun later) may wait for the database: for its turn among
 * this process's writers, then for the write lock of other processes. Past it, the call returns
 * LEASE_BUSY. 0 means a single try that never waits. The default is 5000 ms. Takes effect for
 * the next write; other handles of the same file keep their own. Any thread.
 *
 * Returns:
 * - LEASE_OK: the timeout is set.
 * - LEASE_INVALID_ARGUMENT: db is NULL.
 * - LEASE_MISUSE: db was opened before fork() and this is the child.
 */
enum LeaseStatus lease_db_set_busy_timeout(struct LeaseDb *db, uint32_t timeout_ms);

/**
 * Runs one SQL statement on its own, outside any transaction, as a write: it waits for its turn
 * in the writer queue, takes SQLite's write lock when it starts, and commits when it ends. Use
 * it for single writes, schema changes and connection settings (PRAGMA foreign_keys = ON, say,
 * which SQLite ignores inside a transaction); it applies to db's connection only. Rows the
 * statement returns are ignored (see lease_db_query).
 *
 * sql is one statement, with a ? (or ?NNN, :name...) placeholder per parameter. params points at
 * n_params values bound to them in order (see LeaseValue); it may be NULL when n_params is 0.
 * Nothing is kept after the call. If out_changes is not NULL, *out_changes is set to the number
 * of rows the statement inserted, updated or deleted, not counting those of triggers; 0 for any
 * other statement.
 *
 * Blocks up to the busy timeout. Any thread, but a thread that has a transaction open on the
 * same file must not call it: it would wait for that transaction, which cannot end meanwhile.
 *
 * Returns:
 * - LEASE_OK: the statement ran; *out_changes is set.
 * - LEASE_INVALID_ARGUMENT: db or sql is NULL; sql is not UTF-8, holds more than one statement,
 *   or begins a transaction (use lease_db_begin); params is NULL while n_params is not 0; a
 *   parameter is invalid (see LeaseValue: the message names it, as params[i]); or n_params is
 *   not the statement's number of parameters. Nothing was run.
 * - LEASE_BUSY: other writers kept the database for the whole busy timeout. Nothing was run.
 * - LEASE_DATABASE: SQLite refused the SQL or failed while running it (a syntax error, a
 *   constraint, a read-only or full database...): its message says why, and nothing of the
 *   statement was kept. Or db's path no longer names the file db opened (it was deleted,
 *   renamed or replaced since): nothing was run, since it would have gone into a file nobody
 *   else sees; open the database again.
 * - LEASE_MISUSE: db was opened before fork() and this is the child.
 * - LEASE_SUSPENDED: the process is suspended (lease_suspend) and sql writes. Nothing was run. A
 *   read-only statement still runs (it then waits for another thread's transaction on db only
 *   up to the busy timeout, and fails with LEASE_BUSY after it).
 */
enum LeaseStatus lease_db_execute(struct LeaseDb *db,
                                  const char *sql,
                                  const struct LeaseValue *params,
                                  size_t n_params,
                                  uint64_t *out_changes);

/**
 * Runs one read-only SQL statement (a SELECT, say) outside any transaction and hands each
 * result row to on_row, in order, until it returns non-zero or the rows end (see
 * LeaseRowCallback); context is passed to on_row unchanged and may be NULL. It sees what is
 * committed, never waits for writers, and is not held up by a transaction open on db: reads use
 * a second connection of their own. Reads through one handle run one at a time; open more
 * handles to read in parallel.
 *
 * sql, params and n_params are as for lease_db_execute. on_row runs on the calling thread,
 * before this returns. Any thread.
 *
 * Returns:
 * - LEASE_OK: every row was handed over, or on_row stopped the query.
 * - LEASE_INVALID_ARGUMENT: db, sql or on_row is NULL; the statement writes (use
 *   lease_db_execute or a transaction); or sql or a parameter is invalid as for
 *   lease_db_execute. No row was handed over.
 * - LEASE_BUSY: rarely: another connection was recovering the database (after a crash) or
 *   changing its journal for the whole busy timeout.
 * - LEASE_DATABASE: SQLite refused the SQL or failed while reading; rows handed over before the
 *   failure stay handed over.
 * - LEASE_MISUSE: called from on_row of a query on the same handle; or db was opened before
 *   fork() and this is the child.
 */
enum LeaseStatus lease_db_query(struct LeaseDb *db,
                                const char *sql,
                                const struct LeaseValue *params,
                                size_t n_params,
                                LeaseRowCallback on_row,
                                void *context);

/**
 * Begins a write transaction: waits for its turn in the writer queue (up to db's busy timeout),
 * then takes SQLite's write lock (BEGIN IMMEDIATE), which it holds until it ends. Run its
 * statements with lease_tx_execute and lease_tx_query, and end it with lease_tx_commit or
 * lease_tx_rollback. Other writers of the file wait meanwhile, so keep it short, or use
 * lease_db_begin_chunked for a long job. Readers are not held up (WAL).
 *
 * On LEASE_OK, *out_tx is a new transaction, to be ended (and freed) by lease_tx_commit or
 * lease_tx_rollback. It keeps what it needs of db, which may be freed first. Blocks up to the
 * busy timeout. Any thread, but not one that has a transaction open on the same file already
 * (it would wait for that one, which cannot end meanwhile).
 *
 * Returns:
 * - LEASE_OK: the transaction is open; *out_tx is set.
 * - LEASE_INVALID_ARGUMENT: db or out_tx is NULL.
 * - LEASE_BUSY: other writers kept the database for the whole busy timeout.
 * - LEASE_DATABASE: SQLite failed to begin, or db's file was deleted, renamed or replaced since
 *   it was opened (as for lease_db_execute).
 * - LEASE_MISUSE: db was opened before fork() and this is the child.
 * - LEASE_SUSPENDED: the process is suspended (lease_suspend). No transaction was begun.
 */
enum LeaseStatus lease_db_begin(struct LeaseDb *db, struct LeaseTx **out_tx);

/**
 * Begins a chunked transaction, for a long job (a sync, a migration) that writes a lot without
 * keeping other writers out. It is a transaction like lease_db_begin's, that the job cuts into
 * chunks by calling lease_tx_maybe_commit after every small piece of work: each call commits
 * the chunk and begins the next one when the chunk is due, letting waiting writers in between.
 *
 * A chunk is due once it has lasted chunk_ms milliseconds (above 0; LEASE_DEFAULT_CHUNK_MS,
 * 1000, suits most jobs), or once it has lasted 4 ms (or chunk_ms, if less) while another
 * writer that uses liblease waits for the file, in this process or another. After a chunk that
 * lasted its whole chunk_ms, the job leaves SQLite's write lock free for 100 ms or a tenth of
 * chunk_ms, whichever is less (less still if another connection commits meanwhile), so that
 * writers using plain SQLite, which liblease cannot see waiting, get in too. See
 * lease_tx_maybe_commit for what this bounds.
 *
 * On LEASE_OK, *out_tx is a new transaction, as for lease_db_begin. Any thread, as for
 * lease_db_begin.
 *
 * Returns as lease_db_begin does, and LEASE_INVALID_ARGUMENT when chunk_ms is 0.
 */
enum LeaseStatus lease_db_begin_chunked(struct LeaseDb *db,
                                        uint32_t chunk_ms,
                                        struct LeaseTx **out_tx);

/**
 * Begins a write transaction fenced by guard: after taking SQLite's write lock, and before
 * anything is written, it checks in the database that guard's lease is still held by this
 * process with guard's generation. If so, the transaction is open as for lease_db_begin; since
 * taking a lease is itself a write, no other process can take the lease before this transaction
 * ends, so everything it writes is written under the lease. If not (this process was suspended
 * past the lease, say, and another process has taken it), nothing is written and LEASE_LOST is
 * returned, so a holder that was away can never write over the new holder's work.
 *
 * guard's lock must keep its leases in this same database file (its store opened on the file
 * db names, under any path spelling). guard is only read; it stays the caller's. On LEASE_OK,
 * *out_tx is a new transaction, as for lease_db_begin. Any thread, as for lease_db_begin.
 *
 * Returns:
 * - LEASE_OK: the lease is held; the transaction is open; *out_tx is set.
 * - LEASE_LOST: the lease is no longer held with guard's generation (it ran out, another
 *   process took it, or guard was lost already). Nothing was written; guard is lost for good
 *   (release it and acquire again).
 * - LEASE_INVALID_ARGUMENT: db, guard or out_tx is NULL, or guard's store is another database
 *   file (or an in-memory store).
 * - LEASE_BUSY, LEASE_DATABASE, LEASE_SUSPENDED: as for lease_db_begin.
 * - LEASE_MISUSE: db was opened, or guard taken, before fork() and this is the child.
 */
enum LeaseStatus lease_db_begin_fenced(struct LeaseDb *db,
                                       const struct LeaseGuard *guard,
                                       struct LeaseTx **out_tx);

/**
 * Frees a database handle. Transactions begun through it stay usable until they end: they keep
 * its connection open. NULL is a no-op. Any thread, but no other thread may be using this handle
 * (nor may a row callback of its query free it). In a forked child it frees the handle without
 * touching the parent's connection.
 */
void lease_db_free(struct LeaseDb *db);

/**
 * Runs one SQL statement in the transaction. sql, params, n_params and out_changes are as for
 * lease_db_execute; rows the statement returns are ignored (see lease_tx_query).
 *
 * A statement that fails leaves the transaction open, with everything before it, except when
 * SQLite itself ends the transaction on such a failure (a full disk, say): then the
 * transaction has been rolled back, the error says so, and later calls return LEASE_MISUSE.
 * SQL that ends the transaction (COMMIT, ROLLBACK, END) is not the way to end it: it returns
 * LEASE_MISUSE after it ran, and so do later calls; end it with lease_tx_commit or
 * lease_tx_rollback. Any thread, one call on tx at a time.
 *
 * Returns:
 * - LEASE_OK: the statement ran; *out_changes is set.
 * - LEASE_INVALID_ARGUMENT: tx or sql is NULL, or sql or a parameter is invalid as for
 *   lease_db_execute. Nothing was run.
 * - LEASE_DATABASE: SQLite refused the SQL or failed while running it; its message says why.
 * - LEASE_MISUSE: the transaction has ended (see above), another call on tx is running, or tx
 *   was begun before fork() and this is the child.
 * - LEASE_SUSPENDED: the process was suspended (lease_suspend), which rolled the transaction
 *   (or its current chunk) back: it has ended, and later calls return LEASE_MISUSE.
 */
enum LeaseStatus lease_tx_execute(struct LeaseTx *tx,
                                  const char *sql,
                                  const struct LeaseValue *params,
                                  size_t n_params,
                                  uint64_t *out_changes);

/**
 * Runs one SQL statement in the transaction, seeing the transaction's own writes, and hands
 * each result row to on_row until it returns non-zero or the rows end (see LeaseRowCallback).
 * sql, params, n_params, on_row and context are as for lease_db_query, except that the
 * statement may also write. Failures leave the transaction as lease_tx_execute says. Any
 * thread, one call on tx at a time; on_row runs on the calling thread, before this returns, and
 * must not call functions on tx.
 *
 * Returns:
 * - LEASE_OK: every row was handed over, or on_row stopped the query.
 * - LEASE_INVALID_ARGUMENT: tx, sql or on_row is NULL, or sql or a parameter is invalid as for
 *   lease_db_execute. No row was handed over.
 * - LEASE_DATABASE, LEASE_MISUSE, LEASE_SUSPENDED: as for lease_tx_execute.
 */
enum LeaseStatus lease_tx_query(struct LeaseTx *tx,
                                const char *sql,
                                const struct LeaseValue *params,
                                size_t n_params,
                                LeaseRowCallback on_row,
                                void *context);

/**
 * For a chunked transaction (lease_db_begin_chunked): commits the current chunk and begins the
 * next one, through the writer queue, if the chunk is due; then *out_committed (when not NULL)
 * says whether it did. A plain or fenced transaction is never committed here: *out_committed
 * is false.
 *
 * A chunk is due once it has lasted the transaction's chunk_ms, or, while another writer that
 * uses liblease (of this process or another) waits for the file, once it has lasted 4 ms (or
 * chunk_ms, if less). The job decides how often this is checked: the bounds hold between calls.
 * So, when the job calls this at least every T milliseconds, the chunk ends within about
 * 4 ms + T of a liblease writer starting to wait, and that writer gets the database then
 * (after any writers queued before it); and no chunk holds the write lock longer than about
 * chunk_ms + T. After a chunk that lasted its whole chunk_ms, this call leaves the write lock
 * free for the gap lease_db_begin_chunked describes before it begins the next chunk, so that
 * plain-SQLite writers get in. Call it after every small piece of work (every row, or every
 * few): a call that finds nothing due costs next to nothing.
 *
 * What a chunk commits stays committed: lease_tx_rollback, or a failed lease_tx_commit, undoes
 * only the current chunk, and another process sees each chunk as soon as it is committed. A
 * job must therefore be correct when stopped between any two chunks (by a crash, say), for
 * instance by recording its progress in the same chunks as its work.
 *
 * Blocks while it begins the next chunk (up to the database handle's busy timeout). Any thread,
 * one call on tx at a time.
 *
 * Returns:
 * - LEASE_OK: *out_committed (if not NULL) is set; the transaction is open.
 * - LEASE_INVALID_ARGUMENT: tx is NULL.
 * - LEASE_BUSY: the chunk was committed, but the next could not begin within the busy timeout:
 *   the transaction has ended (later calls return LEASE_MISUSE); end it with lease_tx_commit or
 *   lease_tx_rollback, which then only free it.
 * - LEASE_DATABASE: committing the chunk failed, and it was rolled back; or it was committed and
 *   the next could not begin. Either way the transaction has ended, as for LEASE_BUSY.
 * - LEASE_MISUSE: the transaction has ended, another call on tx is running, or tx was begun
 *   before fork() and this is the child.
 * - LEASE_SUSPENDED: the process was suspended (lease_suspend): the current chunk was rolled
 *   back (earlier chunks stay committed), or was committed and the next could not begin. The
 *   transaction has ended, as for LEASE_BUSY.
 */
enum LeaseStatus lease_tx_maybe_commit(struct LeaseTx *tx, bool *out_committed);

/**
 * Commits the transaction (a chunked one: its current chunk), ends it, and frees tx. tx is
 * consumed whatever the outcome: if the commit fails, the transaction is rolled back, so the
 * connection is never left inside a transaction and the next writer gets in at once. Called
 * while another call on tx is running (on another thread, or from tx's own row callback), it
 * commits nothing and returns LEASE_MISUSE, and tx is rolled back and freed as soon as that
 * call returns. Either way, do not use tx again. Any thread.
 *
 * Returns:
 * - LEASE_OK: committed.
 * - LEASE_INVALID_ARGUMENT: tx is NULL.
 * - LEASE_DATABASE: the commit failed (a deferred foreign key, a full disk...): everything since
 *   the transaction (or the chunk) began was rolled back. SQLite's message says why.
 * - LEASE_MISUSE: nothing was committed now: the transaction had already ended (see
 *   lease_tx_execute and lease_tx_maybe_commit); another call on tx was running (see above);
 *   or tx was begun before fork() and this is the child (the parent's transaction is
 *   untouched).
 * - LEASE_SUSPENDED: nothing was committed now: the process was suspended (lease_suspend),
 *   which rolled the transaction (or its current chunk) back.
 */
enum LeaseStatus lease_tx_commit(struct LeaseTx *tx);

/**
 * Rolls the transaction back (a chunked one: its current chunk only; chunks committed by
 * lease_tx_maybe_commit stay), ends it, and frees tx. Also the way to free a transaction that
 * has ended by itself. Called while another call on tx is running, it rolls back and frees tx
 * when that call returns, as lease_tx_commit does (and records a message for
 * lease_last_error_message). Either way, do not use tx again. NULL is a no-op. In a forked
 * child it frees tx without touching the parent's transaction. Any thread.
 */
void lease_tx_rollback(struct LeaseTx *tx);

/**
 * Observes db's file: calls callback after every commit to it, by any connection of any
 * process (this one's LeaseDbs included, and writers that do not use liblease), once the commit
 * is visible to readers. Calls may be coalesced (one call for several commits, naming every
 * table they changed), never dropped: after the last commit there is always a call that comes
 * after it, even when this process was stopped or suspended meanwhile (the changes are recorded
 * in the database, in liblease_change, so a call that comes late names them all).
 *
 * A commit is seen within about a millisecond on Linux and Android (through inotify); elsewhere
 * the library's thread looks every 50 ms. The library's thread starts if it is not running.
 *
 * Writers record what they change only while some process observes the file (each observing
 * process says so on the database's -liblease board), so an unobserved file costs its writers
 * nothing; an observed one costs each write transaction a row of liblease_change. A transaction
 * that began before the first observer came, and commits after, is told with tables unknown.
 *
 * On LEASE_OK, *out_observer is a new observer that the caller frees with
 * lease_observer_free, and context belongs to the library until destroy (if not NULL) is called
 * with it, exactly once, after the observer's last call (see LeaseDestroyCallback). On any other
 * status destroy is not called and context stays the caller's. db may be freed before the
 * observer: the observer goes on. Any thread.
 *
 * Returns:
 * - LEASE_OK: *out_observer is set.
 * - LEASE_INVALID_ARGUMENT: db, callback or out_observer is NULL.
 * - LEASE_DATABASE: the observer's connection could not be opened, or db's file was deleted,
 *   renamed or replaced since db was opened.
 * - LEASE_MISUSE: db was opened before fork() and this is the child, or the library's thread
 *   could not be started.
 */
enum LeaseStatus lease_db_observe(struct LeaseDb *db,
                                  LeaseChangeCallback callback,
                                  void *context,
                                  LeaseDestroyCallback destroy,
                                  struct LeaseObserver **out_observer);

/**
 * Stops and frees an observer. When it returns, the callback is not running and will not be
 * called again, and destroy has run; the exception is a call from inside the observer's own
 * callback, which is allowed and returns at once (destroy then runs when the callback
 * returns). NULL is a no-op. In a forked child it frees the handle without calling the
 * parent's destroy. Any thread.
 */
void lease_observer_free(struct LeaseObserver *observer);

/**
 * Brings db's file to target_version, its PRAGMA user_version being the version: for each
 * version from the current one + 1 up to target_version, calls step in a write transaction of
 * its own, which also sets user_version to that version and which the library commits when step
 * returns LEASE_OK. Each transaction first reads the version again, under SQLite's write lock,
 * so that every step runs exactly once across all the processes (and threads) that migrate the
 * file at the same time: the others wait, up to timeout_ms in all, and return LEASE_OK once the
 * file has reached target_version. A migrating process killed in the middle of a step leaves
 * the version before it; the next caller runs the step. A file already at target_version is
 * not written. Blocks; any thread but the library's.
 *
 * Returns:
 * - LEASE_OK: the file is at target_version.
 * - any status step returned other than LEASE_OK: that step was rolled back, and the file stays
 *   at the version before it; the message names the version.
 * - LEASE_TIMEOUT: the file did not reach target_version within timeout_ms (another process's
 *   step, or other writers, kept the database).
 * - LEASE_DATABASE: the file's version is above target_version (it was migrated by a newer
 *   program: an old extension still running after an update, say); the message says both. Or
 *   SQLite failed.
 * - LEASE_INVALID_ARGUMENT: db or step is NULL, or step returned a number that is no
 *   LeaseStatus (the message says which).
 * - LEASE_SUSPENDED: the process is suspended (lease_suspend).
 * - LEASE_MISUSE: db was opened before fork() and this is the child; or step ended its
 *   transaction (with SQL such as COMMIT), or returned while a call on it ran on another thread.
 */
enum LeaseStatus lease_db_migrate(struct LeaseDb *db,
                                  uint32_t target_version,
                                  LeaseMigrationStep step,
                                  void *context,
                                  uint32_t timeout_ms);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* LEASE_H */
