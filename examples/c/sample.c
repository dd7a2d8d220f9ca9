/*
 * liblease sample: an app and its extension share one database file, and take turns at work that
 * only one process may do at a time, guarded by the lock "sync".
 *
 *   make run            (or: sample [database-file])
 *
 * The program plays both processes. It starts as the app, opens the database, and starts the
 * extension by running itself again (fork and exec, as an app would launch a helper program).
 *
 *   Act 1: the app and the extension take turns; each release lets the other in at once.
 *   Act 2: the extension is suspended (SIGSTOP) while it holds the lease, as a system suspends a
 *          background process; the app takes over when the lease runs out. Continued, the
 *          extension learns that its lease was lost.
 *   Act 3: the extension is killed (SIGKILL) while it holds the lease; the app takes over at once
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

static const char *me = "app";   /* which process this is, for the log */
static long long started_ms;      /* when the app started: both processes count from it */

static long long now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000LL + now.tv_nsec / 1000000;
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

static void sleep_ms(long ms)
{
    struct timespec pause;
    pause.tv_sec = ms / 1000;
    pause.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&pause, NULL);
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

/* Opens this process's store on the shared file, and its lock "sync". */
static LeaseLock *open_lock(const char *path)
{
    LeaseStore *store = NULL;
    LeaseLock *lock = NULL;
    LeaseLockOptions options = lease_lock_options_default();
    /* A short lease makes act 2 quick to watch (the default is 6 s). */
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

/* The work the lease protects. (Cooperative transactions will write the shared database here.) */
static void work(LeaseGuard *guard, const char *what)
{
    say("%s...", what);
    sleep_ms(400);
    /* Before acting on the result, make sure the lease was not lost meanwhile. */
    check(lease_guard_check(guard), "lease_guard_check");
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

/* Called on the library's thread when a lease held through the lock is lost. */
static void on_lost(void *context, const char *key)
{
    (void)context;
    say("(lost callback, on the library's thread) lost '%s'", key);
}

/* The extension: takes turns, then holds the lease for long jobs, through a suspension and a
 * crash. */
static void extension(const char *path)
{
    LeaseLock *lock = open_lock(path);
    LeaseGuard *guard;
    check(lease_lock_set_lost_callback(lock, on_lost, NULL), "lease_lock_set_lost_callback");
    take_turns(lock, "uploading keys");

    wait_for_cue(); /* act 2 */
    guard = take(lock);
    say("starts a long upload while holding 'sync'");
    kill(getppid(), SIGUSR1);
    while (lease_guard_check(guard) == LEASE_OK) /* the app suspends us meanwhile */
        sleep_ms(50);
    say("was continued: %s", lease_last_error_message());
    say("abandons the upload and releases the lost guard");
    lease_guard_release(guard);

    guard = take(lock); /* act 3: held until the app kills us */
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

/* The app: takes turns with the extension, then suspends it and kills it while it holds. */
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
    take_turns(lock, "syncing");

    say("--- act 2: the extension is suspended while it holds 'sync' ---");
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

    say("--- act 3: the extension crashes while it holds 'sync' ---");
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
        extension(argv[2]);
        return 0;
    }
    started_ms = now_ms();
    printf("liblease %s: an app and an extension share %s\n", lease_version(),
           argc > 1 ? argv[1] : "lease-sample.db");
    app(argv[0], argc > 1 ? argv[1] : "lease-sample.db");
    return 0;
}
