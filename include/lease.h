/*
 * liblease: a cross-process leased lock over one shared SQLite database.
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
 * HANDLES
 *
 *   LeaseStore  a connection to a database file that holds the lease table (lease_store_open).
 *               The table normally lives in the application's own database file.
 *   LeaseLock   a named lease in a store (lease_lock_new).
 *   LeaseGuard  proof that this process holds a lease (lease_lock_acquire and friends).
 *
 * Each handle is freed by its own function: lease_store_free, lease_lock_free and
 * lease_guard_release. Each accepts NULL. Handles may be freed in any order: a lock keeps what
 * it needs of its store alive, and a guard keeps its lease.
 *
 * Exclusion is between processes. Within one process the lock is re-entrant: while the process
 * holds a lease, every acquisition of the same key in the same database file succeeds at once,
 * whichever thread and whichever LeaseLock asks. The lease is held while any of the process's
 * guards of it is alive, and is given back to the database when the last one is released, so a
 * waiting process takes over at once.
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
 * CONVENTIONS
 *
 * Every function that can fail returns a LeaseStatus. LEASE_OK is zero; on any other status,
 * lease_last_error_message() says what went wrong, naming the function. Outputs (the out_*
 * arguments) are written only when the function returns LEASE_OK. Strings passed in are
 * NUL-terminated UTF-8 and are not kept after the call returns. A NULL pointer where a handle, a
 * string, a callback or an output is required, a string that is not UTF-8, and an out-of-range
 * value all return LEASE_INVALID_ARGUMENT. No Rust panic crosses into C: an internal error
 * returns LEASE_PANIC, or a harmless default from functions that return no status.
 *
 * THREADS
 *
 * Every function may be called from any thread, and every handle may be used by several threads
 * at once, except that a handle must not be freed while another thread still uses it. The
 * library has one background thread, named "liblease". It starts the first time this process
 * holds a lease or asks for an asynchronous acquisition (merely opening a store starts nothing);
 * it renews held leases and runs every callback. Callbacks must return promptly and must not
 * wait for a lease (lease_lock_acquire with a timeout, say): while a callback runs, renewals of
 * this process's leases wait. lease_shutdown() stops and joins the thread when nothing needs it,
 * so that a host can unload the library.
 *
 * FORK
 *
 * A handle made before fork() belongs to the parent. In the child every call on it returns
 * LEASE_MISUSE, and freeing it there touches nothing of the parent's (it leaks a little memory
 * instead). To use liblease in a child, exec a program that opens its own store. A forked child
 * that does not exec must not open a store on a file its parent has open either: SQLite keeps
 * per-process bookkeeping of the locks on each open file, and a forked child inherits the
 * parent's, so its new connection would not be locked correctly.
 */

#ifndef LEASE_H
#define LEASE_H

/* Generated from src/ffi by cbindgen (see build.rs); do not edit. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The version of liblease this header describes; lease_version() gives the loaded one's. */
#define LEASE_VERSION_MAJOR 0
#define LEASE_VERSION_MINOR 1
#define LEASE_VERSION_PATCH 0
#define LEASE_VERSION_STRING "0.1.0"

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
   * Another process holds the lease (lease_lock_try_acquire), or another connection holds the
   * database's write lock. Trying again later may succeed.
   */
  LEASE_BUSY = 1,
  /**
   * The lease stayed held by another process for the whole time limit.
   */
  LEASE_TIMEOUT = 2,
  /**
   * This process no longer holds the lease: it ran out before it could be renewed (the process
   * was suspended, or the database could not be written), and another process may have taken
   * it. Release the guard and acquire again; the new guard is dirty.
   */
  LEASE_LOST = 3,
  /**
   * A NULL pointer, a string that is not UTF-8, an empty key, or zero or contradictory lock
   * options. Nothing was done.
   */
  LEASE_INVALID_ARGUMENT = 4,
  /**
   * SQLite failed (the file cannot be opened, is not a database, the disk is full...); the
   * message is SQLite's own, with the file's path.
   */
  LEASE_DATABASE = 5,
  /**
   * The call is not allowed now: a handle made before fork() used in the child, lease_shutdown
   * while the library's thread has work, or the library's thread could not be started.
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
} LeaseStatus;

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
 * A connection to a database file holding the lease table (or to a private in-memory
 * database). Opaque; made by lease_store_open or lease_store_open_memory, freed by
 * lease_store_free. Thread-safe.
 */
typedef struct LeaseStore LeaseStore;

/**
 * The timing of a lock, in milliseconds. Start from lease_lock_options_default() and change
 * what you need; every field must be above zero.
 */
typedef struct LeaseLockOptions {
  /**
   * How long a lease lasts without renewal: the longest another process waits for it after
   * this one crashed, was killed or was suspended while holding it. At most one day.
   */
  uint32_t lease_ms;
  /**
   * How often the library's thread renews a held lease. At most half of lease_ms, so that a
   * renewal delayed by a busy database still succeeds before the lease runs out.
   */
  uint32_t renew_every_ms;
  /**
   * The longest pause between two attempts of a waiting acquisition. A waiting acquisition is
   * woken when the lease may have changed hands (the database was written, or the holder's
   * process ended) where the system can tell (Linux and Android); elsewhere it polls, and a
   * release is noticed within about this time.
   */
  uint32_t max_backoff_ms;
} LeaseLockOptions;

/**
 * Called once when an asynchronous acquisition ends, on the library's thread ("liblease").
 *
 * On success status is LEASE_OK and guard is a new guard that the callee owns and must release
 * with lease_guard_release (at once, or later from any thread). Otherwise guard is NULL, status
 * says why (LEASE_TIMEOUT, LEASE_DATABASE, ...) and lease_last_error_message(), called in the
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

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

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
 * The text belongs to the library and stays valid until the next lease_* call on this thread.
 * Each thread has its own message, so read it on the thread that made the failing call; for an
 * asynchronous acquisition that failed, that is the callback's thread.
 */
const char *lease_last_error_message(void);

/**
 * Returns the version of the library actually loaded, such as "0.1.0": compare it with
 * LEASE_VERSION_STRING, the version of this header. Static text; any thread.
 */
const char *lease_version(void);

/**
 * Stops the library's background thread ("liblease") and waits for it to end, so that nothing
 * of liblease runs any more: call it before unloading the library, or at the end of a program
 * checked for leaks. Any later call that needs the thread starts it again. Does nothing when the
 * thread is not running.
 *
 * Call it from any thread but the library's own (not from a callback). Stores and locks may stay
 * open; every guard must have been released and every asynchronous acquisition called back. A
 * heartbeat that was just stopped by the last release ends a moment later; this call waits up
 * to a second for such work to end.
 *
 * Returns:
 * - LEASE_OK: the thread is stopped (or was not running).
 * - LEASE_MISUSE: a guard is still held, an asynchronous acquisition has not been called back
 *   yet, or this was called on the library's thread; the thread keeps running.
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
 */
enum LeaseStatus lease_store_open_memory(struct LeaseStore **out_store);

/**
 * Frees a store. Locks made from it keep working: they keep the connection open until they are
 * freed too. NULL is a no-op. Any thread, but no other thread may be using this store handle.
 */
void lease_store_free(struct LeaseStore *store);

/**
 * Returns liblease's default lock options: a 6000 ms lease renewed every 2000 ms, and waiters
 * that pause at most 50 ms between attempts. These defaults keep a lease safe even when another
 * connection holds the database's write lock for a whole second. Any thread.
 */
struct LeaseLockOptions lease_lock_options_default(void);

/**
 * Makes a lock on key in store. Nothing is acquired yet, and nothing is written to the database.
 *
 * key names the lease; every process that uses the same key in the same database file contends
 * for the same lease. holder is a label of this process (say "app" or "share-extension") written
 * beside the lease for diagnostics; processes are told apart by an id of their own, so two
 * processes with the same label still exclude each other. options is NULL for the defaults
 * (lease_lock_options_default()). The strings and options are copied.
 *
 * On LEASE_OK, *out_lock is a new lock that the caller frees with lease_lock_free. The lock keeps
 * the store's connection alive, so the store may be freed first. Any thread.
 *
 * Returns:
 * - LEASE_OK: *out_lock is set.
 * - LEASE_INVALID_ARGUMENT: store, key, holder or out_lock is NULL; key is empty; key or holder
 *   is not UTF-8; or an option is zero or contradictory (renew_every_ms above half of lease_ms,
 *   lease_ms above a day).
 * - LEASE_MISUSE: store was opened before fork() and this is the child.
 */
enum LeaseStatus lease_lock_new(struct LeaseStore *store,
                                const char *key,
                                const char *holder,
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
 */
enum LeaseStatus lease_lock_try_acquire(struct LeaseLock *lock, struct LeaseGuard **out_guard);

/**
 * Takes the lease like lease_lock_try_acquire, waiting up to timeout_ms milliseconds while
 * another process holds it. The calling thread sleeps until the lease may have changed hands:
 * the holder released it, its process ended, or its lease ran out (see max_backoff_ms for
 * systems that cannot tell). A timeout of 0 tries once.
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
 * the callback has run. The lock may be freed before that; the acquisition goes on. Any thread.
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
 * context is passed to callback unchanged; it may be NULL. The caller keeps whatever it points
 * at valid until the callback is replaced or the lock is freed. When this function (or
 * lease_lock_free) returns, the previous callback is not running and will not be called again,
 * so its context may be freed; the one exception is a call made from inside that very callback,
 * which is allowed and returns at once. Any thread.
 *
 * Returns:
 * - LEASE_OK: the callback is set (or removed).
 * - LEASE_INVALID_ARGUMENT: lock is NULL.
 * - LEASE_MISUSE: the lock was made before fork() and this is the child.
 */
enum LeaseStatus lease_lock_set_lost_callback(struct LeaseLock *lock,
                                              LeaseLostCallback callback,
                                              void *context);

/**
 * Frees a lock. Guards taken through it stay valid and keep their lease until released. Its
 * lost callback is removed first (see lease_lock_set_lost_callback: when this returns, the
 * callback is not running and will not run). NULL is a no-op. Any thread, but no other thread
 * may be using this lock handle.
 */
void lease_lock_free(struct LeaseLock *lock);

/**
 * Returns the lease's generation: a number that increases every time a different process takes
 * the lease, and stays the same while this process keeps or re-takes it. Returns 0 for NULL.
 * Any thread.
 */
uint64_t lease_guard_generation(const struct LeaseGuard *guard);

/**
 * Returns true when another process may have held the lease since this process last held it,
 * so that what this process cached under the lease is stale and must be reloaded. The first
 * acquisition in a process is dirty, and so is the first after a lost lease; an acquisition
 * that joins a hold this process already has never is. Returns false for NULL. Any thread.
 */
bool lease_guard_is_dirty(const struct LeaseGuard *guard);

/**
 * Tells whether the lease is still known to be held. Call it before acting on the lease (before
 * committing the work it protects, say) when time may have passed. It reads no database: it
 * checks what the library's thread last confirmed, and reports the lease lost as soon as its
 * last confirmed expiry has passed (after the process was suspended, say), even before the
 * library's thread has noticed. Once lost, a guard stays lost. Any thread.
 *
 * Returns:
 * - LEASE_OK: the lease is held.
 * - LEASE_LOST: the lease is lost: another process may hold it now. Stop the work, release the
 *   guard, and acquire again (the new guard is dirty).
 * - LEASE_INVALID_ARGUMENT: guard is NULL.
 * - LEASE_MISUSE: the guard was taken before fork() and this is the child (which holds nothing).
 */
enum LeaseStatus lease_guard_check(const struct LeaseGuard *guard);

/**
 * Releases a guard and frees it. When it is this process's last guard of the lease, the lease is
 * given back to the database at once, so that a waiting process takes over without waiting for
 * it to run out (if giving it back fails, it runs out by itself). Releasing a lost guard is
 * harmless. NULL is a no-op. Any thread, callbacks included, but no other thread may be using
 * this guard handle; in a forked child it frees the handle and gives back nothing.
 */
void lease_guard_release(struct LeaseGuard *guard);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* LEASE_H */
