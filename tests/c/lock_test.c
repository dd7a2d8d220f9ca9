/*
 * C tests of liblease's C ABI (include/lease.h): the whole lock contract, bad input included.
 *
 * Tests that need other processes run this same program again, as a child with a role ("--child
 * hold ..."); those children open their own store, like real processes, and under valgrind they
 * are checked too. Only the fork test uses a child that does not exec, because that is what it
 * tests. See harness.h for the checks and the child processes.
 */
#define _GNU_SOURCE /* pthread_getname_np */

#include "harness.h"

#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(LEASE_OK == 0 && LEASE_BUSY == 1 && LEASE_TIMEOUT == 2 && LEASE_LOST == 3, "stable codes");
_Static_assert(LEASE_INVALID_ARGUMENT == 4 && LEASE_DATABASE == 5 && LEASE_MISUSE == 6 && LEASE_PANIC == 7,
               "stable codes");
_Static_assert(LEASE_CANCELLED == 8, "stable codes");

/* ---- Callbacks and threads ------------------------------------------------------------------- */

/* What a callback saw, for the test thread to wait on. */
typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    int calls;
    LeaseStatus status;
    LeaseGuard *guard;
    LeaseStatus check_in_callback; /* lease_guard_check, called inside the callback */
    int release_in_callback;       /* whether the callback releases the guard itself */
    char thread[16];
    char text[256]; /* the error message (acquire) or the key (lost) */
    /* Lost callbacks: the lock whose callback on_lost replaces from inside itself, and with what. */
    LeaseLock *replace_on;
    void *replacement;
    volatile int inside; /* on_lost is running */
    /* Destroy callbacks (on_destroy) of this context. */
    int destroys;
    int inside_at_destroy; /* on_lost was running when the destroy came */
    char destroy_thread[16];
} Seen;

static void seen_init(Seen *seen)
{
    memset(seen, 0, sizeof *seen);
    pthread_mutex_init(&seen->mutex, NULL);
    pthread_cond_init(&seen->changed, NULL);
}

static void seen_destroy(Seen *seen)
{
    pthread_cond_destroy(&seen->changed);
    pthread_mutex_destroy(&seen->mutex);
}

/* Waits until the callback ran `calls` times or `timeout_ms` passed; returns the calls seen. */
static int seen_wait(Seen *seen, int calls, long timeout_ms)
{
    struct timespec deadline;
    int seen_calls;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&seen->mutex);
    while (seen->calls < calls && pthread_cond_timedwait(&seen->changed, &seen->mutex, &deadline) == 0) {
    }
    seen_calls = seen->calls;
    pthread_mutex_unlock(&seen->mutex);
    return seen_calls;
}

static void on_acquired(void *context, LeaseStatus status, LeaseGuard *guard)
{
    Seen *seen = context;
    pthread_mutex_lock(&seen->mutex);
    seen->calls++;
    seen->status = status;
    pthread_getname_np(pthread_self(), seen->thread, sizeof seen->thread);
    snprintf(seen->text, sizeof seen->text, "%s", status == LEASE_OK ? "" : lease_last_error_message());
    if (guard != NULL) {
        seen->check_in_callback = lease_guard_check(guard);
        if (seen->release_in_callback) {
            lease_guard_release(guard);
            guard = NULL;
        }
    }
    seen->guard = guard;
    pthread_cond_broadcast(&seen->changed);
    pthread_mutex_unlock(&seen->mutex);
}

static void on_destroy(void *context);

static void on_lost(void *context, const char *key)
{
    Seen *seen = context;
    seen->inside = 1;
    if (seen->replace_on != NULL) /* allowed inside; this context's destroy must wait for us */
        CHECK_STATUS(lease_lock_set_lost_callback(seen->replace_on, on_lost, seen->replacement, on_destroy),
                     LEASE_OK);
    pthread_mutex_lock(&seen->mutex);
    seen->calls++;
    pthread_getname_np(pthread_self(), seen->thread, sizeof seen->thread);
    snprintf(seen->text, sizeof seen->text, "%s", key);
    pthread_cond_broadcast(&seen->changed);
    pthread_mutex_unlock(&seen->mutex);
    seen->inside = 0;
}

static void on_destroy(void *context)
{
    Seen *seen = context;
    pthread_mutex_lock(&seen->mutex);
    seen->destroys++;
    seen->inside_at_destroy = seen->inside;
    pthread_getname_np(pthread_self(), seen->destroy_thread, sizeof seen->destroy_thread);
    pthread_cond_broadcast(&seen->changed);
    pthread_mutex_unlock(&seen->mutex);
}

/* Waits until on_destroy ran `destroys` times or `timeout_ms` passed; returns the count seen. */
static int seen_wait_destroyed(Seen *seen, int destroys, long timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    int seen_destroys;
    for (;;) {
        pthread_mutex_lock(&seen->mutex);
        seen_destroys = seen->destroys;
        pthread_mutex_unlock(&seen->mutex);
        if (seen_destroys >= destroys || now_ms() >= deadline)
            return seen_destroys;
        sleep_ms(1);
    }
}

/* The number of this process's threads named "liblease", from /proc. */
static int library_threads(void)
{
    DIR *tasks = opendir("/proc/self/task");
    struct dirent *task;
    int count = 0;
    if (tasks == NULL)
        return -1;
    while ((task = readdir(tasks)) != NULL) {
        char path[300], name[32] = "";
        FILE *comm;
        if (task->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", task->d_name);
        comm = fopen(path, "r");
        if (comm == NULL)
            continue;
        if (fgets(name, sizeof name, comm) != NULL && strcmp(name, "liblease\n") == 0)
            count++;
        fclose(comm);
    }
    closedir(tasks);
    return count;
}

/* Whether library_threads() becomes `expected` within a few seconds (a new thread names itself
 * a moment after it starts). */
static int library_threads_become(int expected)
{
    long long deadline = now_ms() + 5000;
    while (library_threads() != expected && now_ms() < deadline)
        sleep_ms(5);
    return library_threads() == expected;
}

/* ---- Child roles ----------------------------------------------------------------------------- */

/* hold DB KEY LEASE_MS: takes the lease, reports "held GENERATION", releases when told. */
static void child_hold(const char *db, const char *key, unsigned lease_ms)
{
    LeaseStore *store = NULL;
    LeaseLock *lock = NULL;
    LeaseGuard *guard = NULL;
    LeaseLockOptions options;
    CHECK_STATUS(lease_lock_options_init(&options, sizeof options), LEASE_OK);
    options.lease_ms = lease_ms;
    options.renew_every_ms = lease_ms / 4;
    REQUIRE(CHECK_STATUS(lease_store_open(db, &store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, key, "child-holder", &options, &lock), LEASE_OK));
    if (CHECK_STATUS(lease_lock_acquire(lock, CHILD_REPLY_MS, &guard), LEASE_OK))
        report("held", lease_guard_generation(guard), 1);
    release_when_told(guard);
    lease_lock_free(lock);
    lease_store_free(store);
    CHECK_STATUS(lease_shutdown(), LEASE_OK);
}

/* steal DB KEY PID WAIT_MS: stops process PID (SIGSTOP), waits WAIT_MS, takes the lease, reports
 * "stole GENERATION", continues PID (SIGCONT), and releases when told. */
static void child_steal(const char *db, const char *key, pid_t victim, long wait_ms)
{
    LeaseStore *store = NULL;
    LeaseLock *lock = NULL;
    LeaseGuard *guard = NULL;
    REQUIRE(CHECK_STATUS(lease_store_open(db, &store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, key, "thief", NULL, &lock), LEASE_OK));
    if (CHECK_STATUS(steal_lease(lock, victim, wait_ms, &guard), LEASE_OK))
        report("stole", lease_guard_generation(guard), 1);
    kill(victim, SIGCONT);
    release_when_told(guard);
    lease_lock_free(lock);
    lease_store_free(store);
    CHECK_STATUS(lease_shutdown(), LEASE_OK);
}

/* probe DB KEY: reports "status N", the status of one lease_lock_try_acquire. */
static void child_probe(const char *db, const char *key)
{
    LeaseStore *store = NULL;
    LeaseLock *lock = NULL;
    LeaseGuard *guard = NULL;
    LeaseStatus status;
    REQUIRE(CHECK_STATUS(lease_store_open(db, &store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, key, "probe", NULL, &lock), LEASE_OK));
    status = lease_lock_try_acquire(lock, &guard);
    report("status", (unsigned long long)status, 1);
    lease_guard_release(guard);
    lease_lock_free(lock);
    lease_store_free(store);
    CHECK_STATUS(lease_shutdown(), LEASE_OK);
}

int lock_child_role(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[0], "hold") == 0)
        child_hold(argv[1], argv[2], (unsigned)atoi(argv[3]));
    else if (argc == 5 && strcmp(argv[0], "steal") == 0)
        child_steal(argv[1], argv[2], (pid_t)atoi(argv[3]), atol(argv[4]));
    else if (argc == 3 && strcmp(argv[0], "probe") == 0)
        child_probe(argv[1], argv[2]);
    else
        return 0;
    return 1;
}

/* What `probe` says about key in db: the status another process gets from try_acquire. */
static int probe(const char *db, const char *key)
{
    Child child;
    char line[64];
    int status = -1;
    if (!child_start(&child, "probe", db, key, NULL, NULL))
        return -1;
    if (child_read(&child, line, sizeof line, CHILD_REPLY_MS))
        sscanf(line, "status %d", &status);
    CHECK(exited_cleanly(child_wait(&child, CHILD_REPLY_MS)));
    return status;
}

/* ---- Cases ----------------------------------------------------------------------------------- */

static void test_version_and_status_text(void)
{
    static const char *const names[] = {"LEASE_OK",       "LEASE_BUSY",   "LEASE_TIMEOUT",
                                        "LEASE_LOST",     "LEASE_INVALID_ARGUMENT",
                                        "LEASE_DATABASE", "LEASE_MISUSE", "LEASE_PANIC",
                                        "LEASE_CANCELLED", "LEASE_SUSPENDED"};
    static const uint32_t unknown[] = {LEASE_SUSPENDED + 1, 100, 0x7fffffff, UINT32_MAX};
    char header_version[32];
    uint32_t code, other;
    size_t i;

    CHECK(strcmp(lease_version(), LEASE_VERSION_STRING) == 0);
    snprintf(header_version, sizeof header_version, "%d.%d.%d", LEASE_VERSION_MAJOR, LEASE_VERSION_MINOR,
             LEASE_VERSION_PATCH);
    CHECK(strcmp(header_version, LEASE_VERSION_STRING) == 0);

    for (code = 0; code < sizeof names / sizeof names[0]; code++) {
        const char *text = lease_status_str(code);
        REQUIRE(CHECK(text != NULL));
        CHECK(strncmp(text, names[code], strlen(names[code])) == 0);
        for (other = 0; other < code; other++)
            CHECK(strcmp(text, lease_status_str(other)) != 0);
    }
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *text = lease_status_str(unknown[i]);
        REQUIRE(CHECK(text != NULL && text[0] != '\0'));
        CHECK(strstr(text, "unknown") != NULL);
    }
    CHECK(lease_last_error_message() != NULL);
}

static void test_open_stores(void)
{
    LeaseStore *memory = NULL, *file = NULL, *again = NULL;
    LeaseStore *untouched = (LeaseStore *)&untouched;
    FILE *junk;
    int i;
    CHECK_STATUS(lease_store_open_memory(&memory), LEASE_OK);
    CHECK(memory != NULL);
    CHECK_STATUS(lease_store_open(db_path("open"), &file), LEASE_OK);
    CHECK(file != NULL);
    CHECK_STATUS(lease_store_open(db_path("open"), &again), LEASE_OK); /* a second connection */
    CHECK(access(db_path("open"), F_OK) == 0);

    /* A file that cannot be opened: SQLite's message, with the path; no output. */
    CHECK_STATUS(lease_store_open("/nonexistent-liblease-dir/x.db", &untouched), LEASE_DATABASE);
    CHECK(error_mentions("lease_store_open") && error_mentions("/nonexistent-liblease-dir/x.db"));
    CHECK(untouched == (LeaseStore *)&untouched);
    /* A file that is not a database. */
    REQUIRE(CHECK((junk = fopen(db_path("junk"), "w")) != NULL));
    for (i = 0; i < 64; i++)
        fputs("this is not a database; ", junk);
    fclose(junk);
    CHECK_STATUS(lease_store_open(db_path("junk"), &untouched), LEASE_DATABASE);
    CHECK(error_mentions("not a database"));
    CHECK(untouched == (LeaseStore *)&untouched);

    lease_store_free(again);
    lease_store_free(file);
    lease_store_free(memory);
}

static void test_acquire_is_reentrant_in_a_process(void)
{
    const char *db = db_path("reentrant");
    LeaseStore *store = NULL, *second_store = NULL;
    LeaseLock *lock = NULL, *second_lock = NULL;
    LeaseGuard *first = NULL, *second = NULL, *third = NULL, *again = NULL;
    uint64_t generation;
    long long started;

    REQUIRE(CHECK_STATUS(lease_store_open(db, &store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_store_open(db, &second_store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, "sync", "app", NULL, &lock), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(second_store, "sync", "app-2", NULL, &second_lock), LEASE_OK));

    /* The first acquisition in a process is dirty. */
    REQUIRE(CHECK_STATUS(lease_lock_try_acquire(lock, &first), LEASE_OK));
    CHECK(lease_guard_is_dirty(first));
    generation = lease_guard_generation(first);
    CHECK(generation >= 1);
    CHECK_STATUS(lease_guard_check(first), LEASE_OK);

    /* Another lock on the same key and file, through another store handle: at once, not dirty. */
    started = now_ms();
    REQUIRE(CHECK_STATUS(lease_lock_try_acquire(second_lock, &second), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_acquire(second_lock, 0, &third), LEASE_OK));
    CHECK(now_ms() - started < 1000);
    CHECK(!lease_guard_is_dirty(second) && !lease_guard_is_dirty(third));
    CHECK(lease_guard_generation(second) == generation && lease_guard_generation(third) == generation);

    /* The lease is held while any guard is: releasing the first leaves the others valid. */
    lease_guard_release(first);
    CHECK_STATUS(lease_guard_check(second), LEASE_OK);
    lease_guard_release(second);
    lease_guard_release(third);

    /* Given back and taken again by the same process: nobody else held it, so not dirty. */
    REQUIRE(CHECK_STATUS(lease_lock_acquire(lock, 1000, &again), LEASE_OK));
    CHECK(!lease_guard_is_dirty(again));
    CHECK(lease_guard_generation(again) == generation);
    lease_guard_release(again);

    /* Freeing the store before its lock is fine: the lock keeps what it needs. */
    lease_store_free(store);
    REQUIRE(CHECK_STATUS(lease_lock_try_acquire(lock, &again), LEASE_OK));
    lease_lock_free(lock);
    CHECK_STATUS(lease_guard_check(again), LEASE_OK); /* the guard outlives its lock too */
    lease_guard_release(again);
    lease_lock_free(second_lock);
    lease_store_free(second_store);
}

static void test_memory_store_lock(void)
{
    LeaseStore *store = NULL, *other_store = NULL;
    LeaseLock *lock = NULL, *other = NULL;
    LeaseGuard *guard = NULL, *other_guard = NULL;
    REQUIRE(CHECK_STATUS(lease_store_open_memory(&store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_store_open_memory(&other_store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, "sync", "app", NULL, &lock), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(other_store, "sync", "app", NULL, &other), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_acquire(lock, 1000, &guard), LEASE_OK));
    CHECK(lease_guard_is_dirty(guard));
    CHECK(lease_guard_generation(guard) == 1);
    /* Each in-memory store is its own database. */
    REQUIRE(CHECK_STATUS(lease_lock_try_acquire(other, &other_guard), LEASE_OK));
    CHECK(lease_guard_is_dirty(other_guard));
    lease_guard_release(other_guard);
    lease_guard_release(guard);
    lease_lock_free(other);
    lease_lock_free(lock);
    lease_store_free(other_store);
    lease_store_free(store);
}

static void test_async_acquire(void)
{
    LeaseStore *store = NULL;
    LeaseLock *lock = NULL;
    LeaseGuard *joined = NULL;
    Seen seen, released_inside, freed_lock;

    seen_init(&seen);
    seen_init(&released_inside);
    seen_init(&freed_lock);
    REQUIRE(CHECK_STATUS(lease_store_open(db_path("async"), &store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, "sync", "app", NULL, &lock), LEASE_OK));

    /* Called once, on the library's thread, with a guard this thread may use and release. */
    REQUIRE(CHECK_STATUS(lease_lock_acquire_async(lock, 5000, on_acquired, &seen), LEASE_OK));
    REQUIRE(CHECK(seen_wait(&seen, 1, CALLBACK_MS) == 1));
    CHECK_STATUS(seen.status, LEASE_OK);
    CHECK(strcmp(seen.thread, "liblease") == 0);
    CHECK_STATUS(seen.check_in_callback, LEASE_OK);
    REQUIRE(CHECK(seen.guard != NULL));
    CHECK_STATUS(lease_guard_check(seen.guard), LEASE_OK);
    CHECK(lease_guard_is_dirty(seen.guard));
    CHECK(lease_guard_generation(seen.guard) >= 1);
    REQUIRE(CHECK_STATUS(lease_lock_try_acquire(lock, &joined), LEASE_OK));
    CHECK(!lease_guard_is_dirty(joined));
    lease_guard_release(seen.guard);
    lease_guard_release(joined);

    /* The callee may release the guard inside the callback; context may be anything. */
    released_inside.release_in_callback = 1;
    REQUIRE(CHECK_STATUS(lease_lock_acquire_async(lock, 5000, on_acquired, &released_inside), LEASE_OK));
    CHECK(seen_wait(&released_inside, 1, CALLBACK_MS) == 1);
    CHECK_STATUS(released_inside.status, LEASE_OK);
    CHECK_STATUS(released_inside.check_in_callback, LEASE_OK);

    /* The lock may be freed while an acquisition is under way: the callback still comes. */
    REQUIRE(CHECK_STATUS(lease_lock_acquire_async(lock, 5000, on_acquired, &freed_lock), LEASE_OK));
    lease_lock_free(lock);
    REQUIRE(CHECK(seen_wait(&freed_lock, 1, CALLBACK_MS) == 1));
    CHECK_STATUS(freed_lock.status, LEASE_OK);
    lease_guard_release(freed_lock.guard);

    /* Exactly once. */
    sleep_ms(200);
    CHECK(seen.calls == 1 && released_inside.calls == 1 && freed_lock.calls == 1);
    lease_store_free(store);
    seen_destroy(&seen);
    seen_destroy(&released_inside);
    seen_destroy(&freed_lock);
}

/* Cancelling races with the lease being taken: each callback still runs once, with the guard
 * (released inside) or with LEASE_CANCELLED; no guard is lost on the way (valgrind would say). */
static void test_cancel_races_with_the_guard(void)
{
    enum { RACES = 40 };
    LeaseStore *store = NULL;
    LeaseLock *lock = NULL;
    static Seen seen[RACES];
    int i, acquired = 0, cancelled = 0;

    REQUIRE(CHECK_STATUS(lease_store_open(db_path("cancel"), &store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, "sync", "app", NULL, &lock), LEASE_OK));
    for (i = 0; i < RACES; i++) {
        seen_init(&seen[i]);
        seen[i].release_in_callback = 1;
        CHECK_STATUS(lease_lock_acquire_async(lock, 5000, on_acquired, &seen[i]), LEASE_OK);
        CHECK_STATUS(lease_lock_cancel_acquire(lock, &seen[i]), LEASE_OK);
    }
    for (i = 0; i < RACES; i++) {
        CHECK(seen_wait(&seen[i], 1, CALLBACK_MS) == 1);
        CHECK(seen[i].status == LEASE_OK || seen[i].status == LEASE_CANCELLED);
        acquired += seen[i].status == LEASE_OK;
        cancelled += seen[i].status == LEASE_CANCELLED;
    }
    sleep_ms(100);
    for (i = 0; i < RACES; i++) {
        CHECK(seen[i].calls == 1);
        seen_destroy(&seen[i]);
    }
    printf("     %d acquired before their cancellation, %d cancelled\n", acquired, cancelled);
    lease_lock_free(lock);
    lease_store_free(store);
}

/* Several threads acquire and release through one lock handle at once. */
static LeaseLock *shared_lock;

/* One round of a thread: acquires, checks and releases; returns 1 when something failed. */
static int acquire_once(void)
{
    LeaseGuard *guard = NULL;
    int failed = lease_lock_acquire(shared_lock, 10000, &guard) != LEASE_OK || lease_guard_check(guard) != LEASE_OK;
    lease_guard_release(guard);
    return failed;
}

static void test_threads_share_handles(void)
{
    LeaseStore *store = NULL;
    REQUIRE(CHECK_STATUS(lease_store_open(db_path("threads"), &store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, "sync", "app", NULL, &shared_lock), LEASE_OK));
    check_rounds_on_threads(acquire_once, 4, 20);
    lease_lock_free(shared_lock);
    lease_store_free(store);
}

static void test_contention_between_processes(void)
{
    const char *db = db_path("contention");
    LeaseStore *store = NULL;
    LeaseLock *lock = NULL;
    LeaseGuard *guard = NULL;
    LeaseGuard *untouched = (LeaseGuard *)&untouched;
    Child holder;
    Seen timed_out, cancelled;
    unsigned long long ours, theirs = 0;
    long long started;

    seen_init(&timed_out);
    seen_init(&cancelled);
    REQUIRE(CHECK_STATUS(lease_store_open(db, &store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, "sync", "parent", NULL, &lock), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_try_acquire(lock, &guard), LEASE_OK));
    ours = lease_guard_generation(guard);
    lease_guard_release(guard);

    /* Another process takes the lease (with a long lease: only a release lets us in early). */
    REQUIRE(CHECK(child_start(&holder, "hold", db, "sync", "30000", NULL)));
    theirs = child_read_number(&holder, "held");
    CHECK(theirs > ours);

    CHECK_STATUS(lease_lock_try_acquire(lock, &untouched), LEASE_BUSY);
    CHECK(error_mentions("lease_lock_try_acquire") && error_mentions("child-holder"));
    CHECK(untouched == (LeaseGuard *)&untouched);

    started = now_ms();
    CHECK_STATUS(lease_lock_acquire(lock, 300, &untouched), LEASE_TIMEOUT);
    CHECK(now_ms() - started >= 290);
    CHECK(error_mentions("lease_lock_acquire"));
    CHECK(untouched == (LeaseGuard *)&untouched);

    /* An asynchronous acquisition that times out: status, no guard, message on the callback's
     * thread. */
    REQUIRE(CHECK_STATUS(lease_lock_acquire_async(lock, 200, on_acquired, &timed_out), LEASE_OK));
    CHECK(seen_wait(&timed_out, 1, CALLBACK_MS) == 1);
    CHECK_STATUS(timed_out.status, LEASE_TIMEOUT);
    CHECK(timed_out.guard == NULL);
    CHECK(strstr(timed_out.text, "lease_lock_acquire_async") != NULL);
    CHECK(strcmp(timed_out.thread, "liblease") == 0);

    /* A waiting asynchronous acquisition, cancelled by its context: LEASE_CANCELLED, once.
     * Another context, or a second cancellation, changes nothing. */
    REQUIRE(CHECK_STATUS(lease_lock_acquire_async(lock, 25000, on_acquired, &cancelled), LEASE_OK));
    CHECK_STATUS(lease_lock_cancel_acquire(lock, &timed_out), LEASE_OK);
    sleep_ms(100);
    CHECK(cancelled.calls == 0);
    started = now_ms();
    CHECK_STATUS(lease_lock_cancel_acquire(lock, &cancelled), LEASE_OK);
    CHECK(seen_wait(&cancelled, 1, CALLBACK_MS) == 1);
    CHECK(now_ms() - started < 10000);
    CHECK_STATUS(cancelled.status, LEASE_CANCELLED);
    CHECK(cancelled.guard == NULL);
    CHECK(strstr(cancelled.text, "cancel") != NULL);
    CHECK_STATUS(lease_lock_cancel_acquire(lock, &cancelled), LEASE_OK);

    /* The holder releases: we take over at once, well before its 30 s lease would run out. */
    child_order(&holder, "release\n");
    started = now_ms();
    REQUIRE(CHECK_STATUS(lease_lock_acquire(lock, 25000, &guard), LEASE_OK));
    CHECK(now_ms() - started < 20000);
    CHECK(lease_guard_is_dirty(guard)); /* another process held it meanwhile */
    CHECK(lease_guard_generation(guard) > theirs);
    check_child_ends_with(&holder, "released");

    lease_guard_release(guard);
    sleep_ms(100);
    CHECK(timed_out.calls == 1 && cancelled.calls == 1); /* once */
    lease_lock_free(lock);
    lease_store_free(store);
    seen_destroy(&timed_out);
    seen_destroy(&cancelled);
}

static void test_lost_lease(void)
{
    const char *db = db_path("lost");
    LeaseStore *store = NULL;
    LeaseLock *lock = NULL;
    LeaseGuard *guard = NULL, *again = NULL;
    LeaseLockOptions options;
    Seen lost, replacement;
    Child thief;
    char pid[32];
    unsigned long long ours, theirs = 0;

    seen_init(&lost);
    seen_init(&replacement);
    CHECK_STATUS(lease_lock_options_init(&options, sizeof options), LEASE_OK);
    options.lease_ms = 2000;
    options.renew_every_ms = 500;
    REQUIRE(CHECK_STATUS(lease_store_open(db, &store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, "sync", "victim", &options, &lock), LEASE_OK));
    /* The callback replaces itself when it runs: its context is destroyed once it has returned. */
    lost.replace_on = lock;
    lost.replacement = &replacement;
    REQUIRE(CHECK_STATUS(lease_lock_set_lost_callback(lock, on_lost, &lost, on_destroy), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_acquire(lock, 1000, &guard), LEASE_OK));
    ours = lease_guard_generation(guard);

    /* The child stops this process for three lease lengths, takes the lease, and continues us. */
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    REQUIRE(CHECK(child_start(&thief, "steal", db, "sync", pid, "6000")));
    theirs = child_read_number(&thief, "stole");
    CHECK(theirs > ours);

    /* Right after being continued, before anything else runs: the lease is not ours any more. */
    CHECK_STATUS(lease_guard_check(guard), LEASE_LOST);
    CHECK(error_mentions("lease_guard_check"));
    CHECK(seen_wait(&lost, 1, CALLBACK_MS) == 1);
    CHECK(strcmp(lost.text, "sync") == 0);
    CHECK(strcmp(lost.thread, "liblease") == 0);
    CHECK(seen_wait_destroyed(&lost, 1, CALLBACK_MS) == 1);
    CHECK(!lost.inside_at_destroy && strcmp(lost.destroy_thread, "liblease") == 0);
    CHECK(replacement.destroys == 0);
    CHECK_STATUS(lease_guard_check(guard), LEASE_LOST); /* for good */
    CHECK_STATUS(lease_lock_try_acquire(lock, &again), LEASE_BUSY);
    lease_guard_release(guard); /* harmless: it gives back nothing */
    CHECK_STATUS(lease_lock_try_acquire(lock, &again), LEASE_BUSY);

    child_order(&thief, "release\n");
    check_child_ends_with(&thief, "released");

    /* The next acquisition is a fresh one: dirty, a newer generation. */
    REQUIRE(CHECK_STATUS(lease_lock_acquire(lock, 5000, &again), LEASE_OK));
    CHECK(lease_guard_is_dirty(again));
    CHECK(lease_guard_generation(again) > theirs);
    lease_guard_release(again);

    sleep_ms(200);
    CHECK(lost.calls == 1 && replacement.calls == 0); /* once */
    CHECK(lost.destroys == 1 && replacement.destroys == 0);
    lease_lock_free(lock); /* destroys the replacement's context, here and now */
    CHECK(replacement.destroys == 1 && strcmp(replacement.destroy_thread, "liblease") != 0);
    CHECK(lost.destroys == 1);
    lease_store_free(store);
    seen_destroy(&lost);
    seen_destroy(&replacement);
}

/* The parent's handles that a forked child is given. */
typedef struct {
    LeaseStore *store;
    LeaseLock *lock;
    LeaseGuard *guard;
    Seen *lost; /* the context of the lock's lost callback */
} ParentHandles;

/* In a child forked without exec, the parent's handles must refuse to work. */
static void forked_child_checks(void *handles)
{
    const ParentHandles *parent = handles;
    LeaseStore *store = parent->store;
    LeaseLock *lock = parent->lock;
    LeaseGuard *guard = parent->guard;
    LeaseGuard *untouched = (LeaseGuard *)&untouched;
    LeaseLock *no_lock = (LeaseLock *)&no_lock;
    LeaseStore *own = NULL;
    LeaseLock *own_lock = NULL;
    LeaseGuard *own_guard = NULL;
    Seen never;

    seen_init(&never);
    CHECK_STATUS(lease_lock_try_acquire(lock, &untouched), LEASE_MISUSE);
    CHECK(error_mentions("fork"));
    CHECK_STATUS(lease_lock_acquire(lock, 10, &untouched), LEASE_MISUSE);
    CHECK_STATUS(lease_lock_acquire_async(lock, 10, on_acquired, &never), LEASE_MISUSE);
    CHECK_STATUS(lease_lock_set_lost_callback(lock, on_lost, &never, on_destroy), LEASE_MISUSE);
    CHECK_STATUS(lease_lock_cancel_acquire(lock, &never), LEASE_MISUSE);
    CHECK_STATUS(lease_lock_new(store, "other", "child", NULL, &no_lock), LEASE_MISUSE);
    CHECK_STATUS(lease_guard_check(guard), LEASE_MISUSE);
    CHECK(untouched == (LeaseGuard *)&untouched && no_lock == (LeaseLock *)&no_lock);

    /* The child is a process of its own: with a store of its own (not the parent's file) it works. */
    if (CHECK_STATUS(lease_store_open_memory(&own), LEASE_OK)
        && CHECK_STATUS(lease_lock_new(own, "sync", "child", NULL, &own_lock), LEASE_OK)
        && CHECK_STATUS(lease_lock_try_acquire(own_lock, &own_guard), LEASE_OK))
        CHECK(lease_guard_is_dirty(own_guard));
    lease_guard_release(own_guard);
    lease_lock_free(own_lock);
    lease_store_free(own);

    /* Freeing the parent's handles here gives back nothing, does not crash, and leaves the
     * parent's contexts alone. */
    lease_guard_release(guard);
    lease_lock_free(lock);
    lease_store_free(store);
    CHECK_STATUS(lease_shutdown(), LEASE_OK);
    CHECK(never.calls == 0 && never.destroys == 0);
    CHECK(parent->lost->destroys == 0);
}

static void test_fork_child_cannot_use_parent_handles(void)
{
    const char *db = db_path("fork");
    LeaseStore *store = NULL;
    LeaseLock *lock = NULL;
    LeaseGuard *guard = NULL;
    LeaseLockOptions quiet;
    Seen lost;
    ParentHandles parent;

    seen_init(&lost);
    CHECK_STATUS(lease_lock_options_init(&quiet, sizeof quiet), LEASE_OK);
    /* A long renewal period keeps the library's thread out of SQLite around the fork. */
    quiet.lease_ms = 60000;
    quiet.renew_every_ms = 20000;
    REQUIRE(CHECK_STATUS(lease_store_open(db, &store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, "sync", "parent", &quiet, &lock), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_set_lost_callback(lock, on_lost, &lost, on_destroy), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_try_acquire(lock, &guard), LEASE_OK));
    parent.store = store;
    parent.lock = lock;
    parent.guard = guard;
    parent.lost = &lost;
    REQUIRE(check_in_forked_child(forked_child_checks, &parent));

    /* The child's release gave nothing back: the parent still holds the lease. */
    CHECK_STATUS(lease_guard_check(guard), LEASE_OK);
    CHECK(probe(db, "sync") == LEASE_BUSY);
    lease_guard_release(guard);
    CHECK(probe(db, "sync") == LEASE_OK);
    CHECK(lost.calls == 0 && lost.destroys == 0);
    lease_lock_free(lock);
    CHECK(lost.destroys == 1);
    lease_store_free(store);
    seen_destroy(&lost);
}

static void test_bad_arguments(void)
{
    static const char bad_utf8[] = {'k', (char)0xff, (char)0xfe, '\0'};
    LeaseStore *store = NULL, *no_store = (LeaseStore *)&no_store;
    LeaseLock *lock = NULL, *no_lock = (LeaseLock *)&no_lock;
    LeaseGuard *no_guard = (LeaseGuard *)&no_guard;
    LeaseLockOptions defaults, options;
    Seen never;
    char path[PATH_MAX + 64];

    seen_init(&never);
    REQUIRE(CHECK_STATUS(lease_lock_options_init(&defaults, sizeof defaults), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_store_open_memory(&store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, "sync", "app", NULL, &lock), LEASE_OK));

    /* Stores. */
    CHECK_STATUS(lease_store_open(NULL, &no_store), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("lease_store_open") && error_mentions("path is NULL"));
    CHECK_STATUS(lease_store_open(db_path("bad"), NULL), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("out_store is NULL"));
    CHECK(access(db_path("bad"), F_OK) != 0); /* nothing was done */
    CHECK_STATUS(lease_store_open("", &no_store), LEASE_INVALID_ARGUMENT);
    snprintf(path, sizeof path, "%s/%s", temp_dir, bad_utf8);
    CHECK_STATUS(lease_store_open(path, &no_store), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("path is not valid UTF-8"));
    CHECK_STATUS(lease_store_open_memory(NULL), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("lease_store_open_memory") && error_mentions("out_store is NULL"));
    lease_store_free(NULL);
    CHECK(no_store == (LeaseStore *)&no_store);

    /* Locks. */
    CHECK_STATUS(lease_lock_new(NULL, "sync", "app", NULL, &no_lock), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("store is NULL"));
    CHECK_STATUS(lease_lock_new(store, NULL, "app", NULL, &no_lock), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("key is NULL"));
    CHECK_STATUS(lease_lock_new(store, "sync", NULL, NULL, &no_lock), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("label is NULL"));
    CHECK_STATUS(lease_lock_new(store, "sync", "app", NULL, NULL), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("out_lock is NULL"));
    CHECK_STATUS(lease_lock_new(store, bad_utf8, "app", NULL, &no_lock), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("key is not valid UTF-8"));
    CHECK_STATUS(lease_lock_new(store, "sync", bad_utf8, NULL, &no_lock), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("label is not valid UTF-8"));
    CHECK_STATUS(lease_lock_new(store, "", "app", NULL, &no_lock), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("empty"));

    /* Options: the defaults are the documented ones; zero and contradictory values are refused. */
    CHECK(defaults.size == sizeof defaults);
    CHECK(defaults.lease_ms == 10000 && defaults.renew_every_ms == 5000 && defaults.max_backoff_ms == 250);
    CHECK_STATUS(lease_lock_options_init(NULL, sizeof options), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("lease_lock_options_init") && error_mentions("options is NULL"));
    CHECK_STATUS(lease_lock_options_init(&options, sizeof options - 1), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("sizeof(LeaseLockOptions)"));
    options = defaults;
    options.size = 0; /* not set up */
    CHECK_STATUS(lease_lock_new(store, "sync", "app", &options, &no_lock), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("lease_lock_options_init"));
    {
        /* A caller whose header knows a longer struct: the fields this library does not know are
         * accepted while zero, and refused otherwise. */
        struct {
            LeaseLockOptions known;
            uint32_t later_field;
        } longer;
        CHECK_STATUS(lease_lock_options_init(&longer.known, sizeof longer), LEASE_OK);
        CHECK(longer.known.size == sizeof longer && longer.later_field == 0);
        CHECK(longer.known.lease_ms == 10000);
        CHECK_STATUS(lease_lock_new(store, "sync", "app", &longer.known, &no_lock), LEASE_OK);
        lease_lock_free(no_lock);
        no_lock = (LeaseLock *)&no_lock;
        longer.later_field = 7;
        CHECK_STATUS(lease_lock_new(store, "sync", "app", &longer.known, &no_lock), LEASE_INVALID_ARGUMENT);
        CHECK(error_mentions("does not know"));
    }
    options = defaults;
    options.lease_ms = 0;
    CHECK_STATUS(lease_lock_new(store, "sync", "app", &options, &no_lock), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("lease_lock_new") && error_mentions("options"));
    options = defaults;
    options.renew_every_ms = 0;
    CHECK_STATUS(lease_lock_new(store, "sync", "app", &options, &no_lock), LEASE_INVALID_ARGUMENT);
    options = defaults;
    options.max_backoff_ms = 0;
    CHECK_STATUS(lease_lock_new(store, "sync", "app", &options, &no_lock), LEASE_INVALID_ARGUMENT);
    options = defaults;
    options.renew_every_ms = options.lease_ms / 2 + 1; /* renewal would come too late */
    CHECK_STATUS(lease_lock_new(store, "sync", "app", &options, &no_lock), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("half"));
    options = defaults;
    options.lease_ms = 24 * 3600 * 1000 + 1; /* longer than a day */
    CHECK_STATUS(lease_lock_new(store, "sync", "app", &options, &no_lock), LEASE_INVALID_ARGUMENT);
    CHECK(no_lock == (LeaseLock *)&no_lock);

    CHECK_STATUS(lease_lock_try_acquire(NULL, &no_guard), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("lease_lock_try_acquire") && error_mentions("lock is NULL"));
    CHECK_STATUS(lease_lock_try_acquire(lock, NULL), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("out_guard is NULL"));
    CHECK_STATUS(lease_lock_acquire(NULL, 10, &no_guard), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("lease_lock_acquire") && error_mentions("lock is NULL"));
    CHECK_STATUS(lease_lock_acquire(lock, 10, NULL), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("out_guard is NULL"));
    CHECK_STATUS(lease_lock_acquire_async(NULL, 10, on_acquired, &never), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("lease_lock_acquire_async") && error_mentions("lock is NULL"));
    CHECK_STATUS(lease_lock_acquire_async(lock, 10, NULL, &never), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("callback is NULL"));
    CHECK_STATUS(lease_lock_cancel_acquire(NULL, &never), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("lease_lock_cancel_acquire") && error_mentions("lock is NULL"));
    CHECK_STATUS(lease_lock_cancel_acquire(lock, NULL), LEASE_OK); /* names nothing under way */
    CHECK_STATUS(lease_lock_set_lost_callback(NULL, on_lost, &never, on_destroy), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("lease_lock_set_lost_callback") && error_mentions("lock is NULL"));
    CHECK(never.destroys == 0); /* a refused context stays the caller's */
    CHECK_STATUS(lease_lock_set_lost_callback(lock, on_lost, NULL, NULL), LEASE_OK); /* NULL context is fine */
    CHECK_STATUS(lease_lock_set_lost_callback(lock, NULL, NULL, NULL), LEASE_OK);    /* NULL callback clears */
    /* Each context is destroyed once, when its callback is replaced or removed; NULL does nothing. */
    {
        Seen first, second;
        seen_init(&first);
        seen_init(&second);
        CHECK_STATUS(lease_lock_set_lost_callback(lock, on_lost, &first, on_destroy), LEASE_OK);
        CHECK(first.destroys == 0);
        CHECK_STATUS(lease_lock_set_lost_callback(lock, on_lost, &second, on_destroy), LEASE_OK);
        CHECK(first.destroys == 1 && second.destroys == 0);
        CHECK_STATUS(lease_lock_set_lost_callback(lock, NULL, &first, on_destroy), LEASE_OK);
        CHECK(first.destroys == 1 && second.destroys == 1);
        CHECK_STATUS(lease_lock_set_lost_callback(lock, NULL, NULL, NULL), LEASE_OK);
        CHECK(first.destroys == 1 && second.destroys == 1 && first.calls == 0 && second.calls == 0);
        seen_destroy(&first);
        seen_destroy(&second);
    }
    lease_lock_free(NULL);
    CHECK(no_guard == (LeaseGuard *)&no_guard);

    /* Guards. */
    CHECK(lease_guard_generation(NULL) == 0);
    CHECK(error_mentions("lease_guard_generation") && error_mentions("guard is NULL"));
    CHECK(!lease_guard_is_dirty(NULL));
    CHECK(error_mentions("lease_guard_is_dirty"));
    CHECK_STATUS(lease_guard_check(NULL), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("lease_guard_check") && error_mentions("guard is NULL"));
    lease_guard_release(NULL);

    /* Good arguments still work after all that; an options pointer is copied. */
    options = defaults;
    options.lease_ms = 3000;
    options.renew_every_ms = 1500;
    options.max_backoff_ms = 1;
    CHECK_STATUS(lease_lock_new(store, "sync", "", &options, &no_lock), LEASE_OK); /* empty label ok */
    lease_lock_free(no_lock);
    CHECK(never.calls == 0);
    lease_lock_free(lock);
    lease_store_free(store);
    seen_destroy(&never);
}

/* lease_shutdown refuses while a lease is held, then stops the thread; nothing is left. */
static void test_shutdown(void)
{
    LeaseStore *store = NULL;
    LeaseLock *lock = NULL;
    LeaseGuard *guard = NULL;
    REQUIRE(CHECK_STATUS(lease_store_open_memory(&store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, "sync", "app", NULL, &lock), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_try_acquire(lock, &guard), LEASE_OK));
    CHECK(library_threads_become(1));

    CHECK_STATUS(lease_shutdown(), LEASE_MISUSE);
    CHECK(error_mentions("lease_shutdown"));
    CHECK_STATUS(lease_guard_check(guard), LEASE_OK); /* the thread still renews it */
    lease_guard_release(guard);
    CHECK_STATUS(lease_shutdown(), LEASE_OK);
    CHECK(library_threads() == 0);
    CHECK_STATUS(lease_shutdown(), LEASE_OK); /* not running: nothing to do */

    /* The thread starts again when needed, and stops again. */
    REQUIRE(CHECK_STATUS(lease_lock_try_acquire(lock, &guard), LEASE_OK));
    CHECK(library_threads_become(1));
    lease_guard_release(guard);
    lease_lock_free(lock);
    lease_store_free(store);
    CHECK_STATUS(lease_shutdown(), LEASE_OK);
    CHECK(library_threads() == 0);
}

/* ---- The log callback -------------------------------------------------------------------------- */

/* What a log callback heard: the lines, joined, and the most verbose level; and its destroys. */
typedef struct {
    pthread_mutex_t mutex;
    char lines[4096];
    uint32_t most_verbose;
    int destroys;
} Heard;

static void on_log(void *context, uint32_t level, const char *message)
{
    Heard *heard = context;
    pthread_mutex_lock(&heard->mutex);
    if (level > heard->most_verbose)
        heard->most_verbose = level;
    size_t used = strlen(heard->lines);
    snprintf(heard->lines + used, sizeof heard->lines - used, "%u %s\n", level, message);
    pthread_mutex_unlock(&heard->mutex);
}

static void on_log_destroy(void *context)
{
    Heard *heard = context;
    pthread_mutex_lock(&heard->mutex);
    heard->destroys++;
    pthread_mutex_unlock(&heard->mutex);
}

static void test_log_callback(void)
{
    Heard heard = {.mutex = PTHREAD_MUTEX_INITIALIZER};
    LeaseStore *store = NULL;
    LeaseLock *lock = NULL;
    LeaseGuard *guard = NULL;

    /* Levels outside 1..4 are refused, and nothing is taken. */
    CHECK_STATUS(lease_set_log_callback(0, on_log, &heard, on_log_destroy), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("max_level 0"));
    CHECK_STATUS(lease_set_log_callback(LEASE_LOG_DEBUG + 1, on_log, &heard, on_log_destroy),
                 LEASE_INVALID_ARGUMENT);
    CHECK(heard.destroys == 0);

    REQUIRE(CHECK_STATUS(lease_set_log_callback(LEASE_LOG_INFO, on_log, &heard, on_log_destroy), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_store_open(db_path("log"), &store), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_new(store, "sync", "c-test", NULL, &lock), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_lock_try_acquire(lock, &guard), LEASE_OK));
    lease_guard_release(guard);
    guard = NULL;

    /* Turning logging off lets the callback go: its destroy runs, once. */
    CHECK_STATUS(lease_set_log_callback(LEASE_LOG_DEBUG, NULL, NULL, NULL), LEASE_OK);
    pthread_mutex_lock(&heard.mutex);
    CHECK(strstr(heard.lines, "3 ") != NULL);
    CHECK(strstr(heard.lines, "'sync': acquired by 'c-test'") != NULL);
    CHECK(strstr(heard.lines, "generation 1, dirty") != NULL);
    CHECK(strstr(heard.lines, "'sync': released") != NULL);
    CHECK(strstr(heard.lines, db_path("log")) != NULL); /* the file is named */
    CHECK(heard.most_verbose <= LEASE_LOG_INFO);
    CHECK(heard.destroys == 1);
    size_t heard_before = strlen(heard.lines);
    pthread_mutex_unlock(&heard.mutex);

    /* Off: nothing more is heard. */
    REQUIRE(CHECK_STATUS(lease_lock_try_acquire(lock, &guard), LEASE_OK));
    lease_guard_release(guard);
    pthread_mutex_lock(&heard.mutex);
    CHECK(strlen(heard.lines) == heard_before);
    CHECK(heard.destroys == 1);
    pthread_mutex_unlock(&heard.mutex);

    lease_lock_free(lock);
    lease_store_free(store);
}

/* Another SQLite in the process (the platform's, loaded at run time, as GRDB, Core Data or
 * CPython would bring it): with liblease's bundled copy, the first connection opened afterwards
 * while warnings are wanted says so once. In the system-SQLite build, liblease uses that very
 * library (it is loaded already, with liblease), and nothing is said. */
static void test_another_sqlite_is_warned_of(void)
{
    Heard heard = {.mutex = PTHREAD_MUTEX_INITIALIZER};
    LeaseStore *store = NULL;
    void *already = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_NOLOAD);
    void *sqlite = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_GLOBAL);
    REQUIRE(CHECK(sqlite != NULL)); /* scripts/setup installs it (libsqlite3-dev) */
    REQUIRE(CHECK_STATUS(lease_set_log_callback(LEASE_LOG_WARN, on_log, &heard, NULL), LEASE_OK));
    CHECK_STATUS(lease_store_open(db_path("two-sqlites"), &store), LEASE_OK);
    lease_store_free(store);
    store = NULL;
    CHECK_STATUS(lease_store_open(db_path("two-sqlites"), &store), LEASE_OK); /* said once only */
    lease_store_free(store);
    CHECK_STATUS(lease_set_log_callback(LEASE_LOG_WARN, NULL, NULL, NULL), LEASE_OK);
    const char *said = strstr(heard.lines, "another SQLite");
    if (already == NULL) {
        CHECK(said != NULL);
        CHECK(said != NULL && strstr(said + 1, "another SQLite") == NULL);
        CHECK(strstr(heard.lines, "2 ") == heard.lines); /* a warning */
    } else {
        CHECK(said == NULL);
        dlclose(already);
    }
    dlclose(sqlite);
}

const TestCase lock_cases[] = {
    {"version_and_status_text", test_version_and_status_text},
    {"open_stores", test_open_stores},
    {"acquire_is_reentrant_in_a_process", test_acquire_is_reentrant_in_a_process},
    {"memory_store_lock", test_memory_store_lock},
    {"async_acquire", test_async_acquire},
    {"cancel_races_with_the_guard", test_cancel_races_with_the_guard},
    {"threads_share_handles", test_threads_share_handles},
    {"contention_between_processes", test_contention_between_processes},
    {"lost_lease", test_lost_lease},
    {"fork_child_cannot_use_parent_handles", test_fork_child_cannot_use_parent_handles},
    {"bad_arguments", test_bad_arguments},
    {"shutdown", test_shutdown},
    {"log_callback", test_log_callback},
    {"another_sqlite_is_warned_of", test_another_sqlite_is_warned_of},
};
const size_t lock_case_count = sizeof lock_cases / sizeof lock_cases[0];
