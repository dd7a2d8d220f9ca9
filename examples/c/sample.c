/*
 * liblease sample: an app and its extension share one database file. They take turns at work
 * that only one process may do at a time, guarded by the lock "sync", and both write the file.
 *
 *   make run            (or: sample [database-file])
 *
 * The program plays both processes. It starts as the app, starts the extension by running itself
 * again (fork and exec, as an app would launch a helper program), and opens the database.
 *
 *   Start: both processes migrate the database to the sample's schema at once; each migration
 *          step runs in one of them, whichever gets to it first.
 *   Act 1: the app and the extension take turns; each release lets the other in at once. Each
 *          turn's result is written in a transaction fenced by the lease.
 *   Act 2: the extension observes the database; the app changes a setting, and the extension is
 *          told which table changed and reloads it.
 *   Act 3: the app runs a long import in a chunked transaction while the extension makes short
 *          writes under the lease; each short write waits milliseconds, and no row is lost.
 *   Act 4: the extension is suspended (SIGSTOP) while it holds the lease, as a system suspends a
 *          background process; the app takes over when the lease runs out. Continued, the
 *          extension learns that its lease was lost, and its fenced write is refused.
 *   Act 5: the extension is killed (SIGKILL) while it holds the lease; the app takes over at once
 *          where liblease can tell that the holder is gone (Linux), else when the lease runs out.
 *
 * Builds as C and as C++.
 */
#define _POSIX_C_SOURCE 200809L

#include "lease.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { TURNS = 3, LEASE_MS = 2000, RENEW_EVERY_MS = 500, WAIT_LIMIT_MS = 30000 };
enum { IMPORT_ROWS = 4000, NOTES = 8, SCHEMA_VERSION = 2 };

static const char *me = "app";   /* which process this is, for the log */
static long long started_ms;      /* when the app started: both processes count from it */
static LeaseDb *db;               /* this process's connection to the shared database */

static long long now_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000000LL + now.tv_nsec / 1000;
}

static long long now_ms(void)
{
    return now_us() / 1000;
}

/* Prints one timestamped line: "[  1.234 s] extension  ..." */
static void say(const char *format, ...)
{
    char line[512];
    long long ms = now_ms() - started_ms;
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    printf("[%3lld.%03lld s] %-10s %s\n", ms / 1000, ms % 1000, me, line);
    fflush(stdout);
}

static void sleep_us(long us)
{
    struct timespec pause;
    pause.tv_sec = us / 1000000;
    pause.tv_nsec = (us % 1000000) * 1000L;
    nanosleep(&pause, NULL);
}

static void sleep_ms(long ms)
{
    sleep_us(ms * 1000);
}

/* liblease's log: its warnings (a lease lost, a renewal that came late) into this process's
 * lines; LEASE_SAMPLE_LOG=info (or debug) in the environment shows what the locks do too. */
static void on_log(void *context, uint32_t level, const char *message)
{
    static const char *const names[] = {"?", "error", "warn", "info", "debug"};
    (void)context;
    say("(liblease %s) %s", names[level <= LEASE_LOG_DEBUG ? level : 0], message);
}

static uint32_t log_level(void)
{
    const char *wanted = getenv("LEASE_SAMPLE_LOG");
    if (wanted != NULL && strcmp(wanted, "debug") == 0)
        return LEASE_LOG_DEBUG;
    if (wanted != NULL && strcmp(wanted, "info") == 0)
        return LEASE_LOG_INFO;
    return LEASE_LOG_WARN;
}

static void check(LeaseStatus status, const char *what)
{
    if (status != LEASE_OK) {
        say("%s failed: %s: %s", what, lease_status_str(status), lease_last_error_message());
        exit(1);
    }
}

/* The two processes cue each other with SIGUSR1 (blocked, and taken with sigwait). */
static void wait_for_cue(void)
{
    sigset_t cue;
    int signal_number;
    sigemptyset(&cue);
    sigaddset(&cue, SIGUSR1);
    sigwait(&cue, &signal_number);
}

/* ---- The database ---------------------------------------------------------------------------- */

static LeaseValue text_value(const char *text)
{
    LeaseValue value = {LEASE_VALUE_TEXT, 0, 0.0, (const uint8_t *)text, strlen(text)};
    return value;
}

static LeaseValue integer_value(int64_t integer)
{
    LeaseValue value = {LEASE_VALUE_INTEGER, integer, 0.0, NULL, 0};
    return value;
}

/* The sample's schema, one migration step per version. lease_db_migrate calls the steps the file
 * lacks, each in a transaction of its own, and each runs once among all the processes that
 * migrate the file at the same time. context counts the steps run by this process. */
static LeaseStatus migrate(void *context, LeaseTx *tx, uint32_t version)
{
    int *steps_run = (int *)context;
    LeaseStatus status = LEASE_INVALID_ARGUMENT;
    if (version == 1) {
        say("migrates the database to version 1: creates the tables log and import");
        status = lease_tx_execute(tx, "CREATE TABLE log(id INTEGER PRIMARY KEY, who TEXT, what TEXT)", NULL, 0, NULL);
        if (status == LEASE_OK)
            status = lease_tx_execute(tx, "CREATE TABLE import(id INTEGER PRIMARY KEY, n INTEGER)", NULL, 0, NULL);
    } else if (version == 2) {
        say("migrates the database to version 2: creates the table settings");
        status = lease_tx_execute(tx, "CREATE TABLE settings(name TEXT PRIMARY KEY, value TEXT)", NULL, 0, NULL);
    }
    sleep_ms(100); /* a real migration takes a while; the other process waits for it meanwhile */
    if (status == LEASE_OK)
        (*steps_run)++;
    return status;
}

/* Opens this process's connection to the shared file, and brings the file to the sample's schema. */
static void open_database(const char *path)
{
    int steps_run = 0;
    check(lease_db_open(path, &db), "lease_db_open");
    check(lease_db_migrate(db, SCHEMA_VERSION, migrate, &steps_run, WAIT_LIMIT_MS), "lease_db_migrate");
    say("the database is at version %d; %d of its %d migration steps ran here", SCHEMA_VERSION, steps_run,
        SCHEMA_VERSION);
}

/* Writes (me, what) into the log in a transaction fenced by guard: written only if the lease is
 * still ours, so that a process that lost it can never write over its successor's work. Sets
 * *waited_us (if not NULL) to how long the transaction waited for the database. */
static LeaseStatus write_fenced(LeaseGuard *guard, const char *what, long long *waited_us)
{
    LeaseValue row[2];
    LeaseTx *tx = NULL;
    long long asked = now_us();
    LeaseStatus status = lease_db_begin_fenced(db, guard, &tx);
    if (waited_us != NULL)
        *waited_us = now_us() - asked;
    if (status != LEASE_OK)
        return status;
    row[0] = text_value(me);
    row[1] = text_value(what);
    status = lease_tx_execute(tx, "INSERT INTO log(who, what) VALUES (?, ?)", row, 2, NULL);
    if (status != LEASE_OK) {
        lease_tx_rollback(tx);
        return status;
    }
    return lease_tx_commit(tx);
}

static int32_t read_integer(void *context, const LeaseValue *columns, size_t n_columns)
{
    if (n_columns == 1 && columns[0].kind == LEASE_VALUE_INTEGER)
        *(long long *)context = columns[0].integer;
    return 0;
}

/* The number a query such as "SELECT count(*) ..." returns. */
static long long count(const char *sql)
{
    long long result = -1;
    check(lease_db_query(db, sql, NULL, 0, read_integer, &result), "lease_db_query");
    return result;
}

/* A setting's value, from the table that the migration to version 2 made. */
typedef struct {
    char value[64];
} Setting;

static int32_t read_setting(void *context, const LeaseValue *columns, size_t n_columns)
{
    Setting *setting = (Setting *)context;
    if (n_columns == 1 && columns[0].kind == LEASE_VALUE_TEXT)
        snprintf(setting->value, sizeof setting->value, "%.*s", (int)columns[0].len, (const char *)columns[0].data);
    return 0;
}

static Setting setting(const char *name)
{
    Setting found = {"(unset)"};
    LeaseValue param = text_value(name);
    check(lease_db_query(db, "SELECT value FROM settings WHERE name = ?", &param, 1, read_setting, &found),
          "lease_db_query");
    return found;
}

static void set_setting(const char *name, const char *value)
{
    LeaseValue row[2];
    row[0] = text_value(name);
    row[1] = text_value(value);
    check(lease_db_execute(db, "INSERT OR REPLACE INTO settings(name, value) VALUES (?, ?)", row, 2, NULL),
          "lease_db_execute");
}

/* ---- The lock -------------------------------------------------------------------------------- */

/* Opens this process's store on the shared file, and its lock "sync". */
static LeaseLock *open_lock(const char *path)
{
    LeaseStore *store = NULL;
    LeaseLock *lock = NULL;
    LeaseLockOptions options;
    check(lease_lock_options_init(&options, sizeof options), "lease_lock_options_init");
    /* A short lease makes act 4 quick to watch (the default is 6 s). */
    options.lease_ms = LEASE_MS;
    options.renew_every_ms = RENEW_EVERY_MS;
    check(lease_store_open(path, &store), "lease_store_open");
    check(lease_lock_new(store, "sync", me, &options, &lock), "lease_lock_new");
    lease_store_free(store); /* the lock keeps what it needs */
    return lock;
}

/* Waits for the lease and says what it found. */
static LeaseGuard *take(LeaseLock *lock)
{
    LeaseGuard *guard = NULL;
    long long asked = now_ms();
    check(lease_lock_acquire(lock, WAIT_LIMIT_MS, &guard), "lease_lock_acquire");
    say("holds 'sync' after waiting %lld ms: generation %llu, %s", now_ms() - asked,
        (unsigned long long)lease_guard_generation(guard),
        lease_guard_is_dirty(guard) ? "dirty (another process may have held it: reload caches)"
                                    : "clean (nobody else held it since our last turn)");
    return guard;
}

/* The work the lease protects; its result goes into the database under the lease. */
static void work(LeaseGuard *guard, const char *what)
{
    say("%s...", what);
    sleep_ms(300);
    check(write_fenced(guard, what, NULL), "write_fenced");
}

static void take_turns(LeaseLock *lock, const char *what)
{
    int turn;
    for (turn = 0; turn < TURNS; turn++) {
        LeaseGuard *guard = take(lock);
        work(guard, what);
        lease_guard_release(guard);
        say("released 'sync'");
        sleep_ms(100); /* let the other process in */
    }
}

/* ---- Act 2: knowing what changed ------------------------------------------------------------ */

/* Called on the library's thread after commits to the database, by any process (this one too), with
 * the tables they changed (NULL when a writer that does not use liblease committed: anything may have
 * changed). The names are valid only during the call. */
static void on_change(void *context, const char *const *tables, size_t n_tables)
{
    char names[256] = "";
    size_t i, used = 0;
    (void)context;
    if (tables == NULL) {
        say("(observer, on the library's thread) told that a writer outside liblease changed the database");
    } else {
        for (i = 0; i < n_tables && used < sizeof names; i++)
            used += snprintf(names + used, sizeof names - used, "%s%s", i > 0 ? ", " : "", tables[i]);
        say("(observer, on the library's thread) told that %s changed", names);
    }
    kill(getpid(), SIGUSR1); /* cues this process's main thread, which waits for it */
}

/* The extension follows the app's settings: it observes the database until it is told of a
 * change, then reloads them. */
static void follow_settings(void)
{
    LeaseObserver *observer = NULL;
    check(lease_db_observe(db, on_change, NULL, NULL, &observer), "lease_db_observe");
    say("observes the database; the theme is %s", setting("theme").value);
    kill(getppid(), SIGUSR1);
    wait_for_cue(); /* from on_change */
    lease_observer_free(observer);
    say("reloads its settings: the theme is %s", setting("theme").value);
}

/* ---- Act 3: two writers at once -------------------------------------------------------------- */

/* The app's long job: many rows in one chunked transaction. Each maybe_commit ends the chunk when
 * another writer waits (or after a second), so the job never keeps the database for long. */
static void import_rows(void)
{
    LeaseTx *tx = NULL;
    long long started = now_ms();
    int row, chunks = 1;
    say("imports %d rows in a chunked transaction, with maybe_commit after each row", IMPORT_ROWS);
    check(lease_db_begin_chunked(db, LEASE_DEFAULT_CHUNK_MS, &tx), "lease_db_begin_chunked");
    for (row = 1; row <= IMPORT_ROWS; row++) {
        LeaseValue n = integer_value(row);
        bool committed = false;
        check(lease_tx_execute(tx, "INSERT INTO import(n) VALUES (?)", &n, 1, NULL), "lease_tx_execute");
        sleep_us(250); /* the rest of the work on a row */
        check(lease_tx_maybe_commit(tx, &committed), "lease_tx_maybe_commit");
        chunks += committed;
    }
    check(lease_tx_commit(tx), "lease_tx_commit");
    say("imported %d rows in %lld ms, in %d chunks", IMPORT_ROWS, now_ms() - started, chunks);
}

/* The extension's short writes while the import runs: notes, each in its own fenced transaction. */
static void write_notes(LeaseLock *lock)
{
    LeaseGuard *guard = take(lock);
    int note;
    for (note = 1; note <= NOTES; note++) {
        long long waited_us = 0;
        check(write_fenced(guard, "note", &waited_us), "write_fenced");
        say("wrote note %d under 'sync' after waiting %lld.%lld ms for the database", note, waited_us / 1000,
            waited_us % 1000 / 100);
        sleep_ms(120);
    }
    lease_guard_release(guard);
    say("wrote %d notes; the database holds %lld", NOTES,
        count("SELECT count(*) FROM log WHERE who = 'extension' AND what = 'note'"));
}

/* ---- The two processes ----------------------------------------------------------------------- */

/* Called on the library's thread when a lease held through the lock is lost. */
static void on_lost(void *context, const char *key)
{
    (void)context;
    say("(lost callback, on the library's thread) lost '%s'", key);
}

/* The extension: migrates the database with the app, takes turns, follows the app's settings,
 * then holds the lease for long jobs, through a suspension and a crash. */
static void extension(const char *path)
{
    LeaseLock *lock = open_lock(path);
    LeaseGuard *guard;
    check(lease_lock_set_lost_callback(lock, on_lost, NULL, NULL), "lease_lock_set_lost_callback");
    open_database(path);
    take_turns(lock, "uploading keys");

    wait_for_cue(); /* act 2 */
    follow_settings();
    kill(getppid(), SIGUSR1);

    wait_for_cue(); /* act 3 */
    write_notes(lock);
    kill(getppid(), SIGUSR1);

    wait_for_cue(); /* act 4 */
    guard = take(lock);
    say("starts a long upload while holding 'sync'");
    kill(getppid(), SIGUSR1);
    while (lease_guard_check(guard) == LEASE_OK) /* the app suspends us meanwhile */
        sleep_ms(50);
    say("was continued: %s", lease_last_error_message());
    say("saves the upload anyway, fenced: %s", lease_status_str(write_fenced(guard, "upload", NULL)));
    say("  (%s)", lease_last_error_message());
    say("abandons the upload and releases the lost guard");
    lease_guard_release(guard);

    guard = take(lock); /* act 5: held until the app kills us */
    say("starts another long upload while holding 'sync'");
    kill(getppid(), SIGUSR1);
    for (;;)
        pause();
}

/* Starts the extension: this program again, with the app's start time for its log. */
static pid_t start_extension(const char *self, const char *path)
{
    char started[32];
    pid_t pid;
    snprintf(started, sizeof started, "%lld", started_ms);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        execl(self, self, "--extension", path, started, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* The app: migrates the database with the extension, takes turns with it, changes a setting that
 * it follows, imports beside its writes, then suspends it and kills it while it holds the lease. */
static void app(const char *self, const char *path)
{
    LeaseLock *lock = open_lock(path);
    LeaseGuard *guard = NULL;
    long long since;
    pid_t extension_pid = start_extension(self, path);
    if (extension_pid < 0) {
        perror("fork");
        exit(1);
    }
    open_database(path);
    take_turns(lock, "syncing");

    say("--- act 2: the extension observes the database while the app changes a setting ---");
    kill(extension_pid, SIGUSR1);
    wait_for_cue(); /* the extension observes */
    say("sets the theme to dark");
    set_setting("theme", "dark");
    wait_for_cue(); /* the extension was told */

    say("--- act 3: a long import beside short writes ---");
    kill(extension_pid, SIGUSR1);
    import_rows();
    wait_for_cue(); /* the extension's notes are written */
    say("the database holds %lld imported rows and %lld notes: nothing was lost",
        count("SELECT count(*) FROM import"), count("SELECT count(*) FROM log WHERE what = 'note'"));

    say("--- act 4: the extension is suspended while it holds 'sync' ---");
    kill(extension_pid, SIGUSR1);
    wait_for_cue();
    kill(extension_pid, SIGSTOP);
    since = now_ms();
    say("suspended the extension (SIGSTOP)");
    guard = take(lock);
    say("took over %lld ms after the suspension: the lease ran out (it lasts %d ms)", now_ms() - since,
        LEASE_MS);
    work(guard, "syncing");
    lease_guard_release(guard);
    say("released 'sync'");
    kill(extension_pid, SIGCONT);

    say("--- act 5: the extension crashes while it holds 'sync' ---");
    wait_for_cue();
    say("tries 'sync' without waiting: %s", lease_status_str(lease_lock_try_acquire(lock, &guard)));
    say("  (%s)", lease_last_error_message());
    kill(extension_pid, SIGKILL);
    waitpid(extension_pid, NULL, 0);
    since = now_ms();
    say("killed the extension (SIGKILL)");
    guard = take(lock);
    say("took over %lld ms after the kill: the holder is gone", now_ms() - since);
    work(guard, "syncing");
    lease_guard_release(guard);
    say("released 'sync'");
    say("the log holds %lld results written under 'sync': %lld by the app, %lld by the extension",
        count("SELECT count(*) FROM log WHERE what != 'note'"),
        count("SELECT count(*) FROM log WHERE what != 'note' AND who = 'app'"),
        count("SELECT count(*) FROM log WHERE what != 'note' AND who = 'extension'"));

    lease_db_free(db);
    lease_lock_free(lock);
    check(lease_shutdown(), "lease_shutdown"); /* stops the library's thread */
    say("done");
}

int main(int argc, char **argv)
{
    sigset_t cue;
    /* Block the cue before any thread starts, so that only sigwait takes it. */
    sigemptyset(&cue);
    sigaddset(&cue, SIGUSR1);
    sigprocmask(SIG_BLOCK, &cue, NULL);

    if (argc == 4 && strcmp(argv[1], "--extension") == 0) {
        me = "extension";
        started_ms = atoll(argv[3]);
        check(lease_set_log_callback(log_level(), on_log, NULL, NULL), "lease_set_log_callback");
        extension(argv[2]);
        return 0;
    }
    started_ms = now_ms();
    check(lease_set_log_callback(log_level(), on_log, NULL, NULL), "lease_set_log_callback");
    printf("liblease %s: an app and an extension share %s\n", lease_version(),
           argc > 1 ? argv[1] : "lease-sample.db");
    app(argv[0], argc > 1 ? argv[1] : "lease-sample.db");
    return 0;
}
