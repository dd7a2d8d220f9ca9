/*
 * The C tests' harness (see harness.h) and their main().
 *
 * Usage: lease_test [case-name]          runs every case, or one
 *        lease_test --child ROLE ARGS...  (used by the tests themselves)
 * The last line printed is "N passed, N failed".
 */
#define _GNU_SOURCE /* pipe2 */

#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- Checks ---------------------------------------------------------------------------------- */

int failures;

int check(int ok, const char *what, const char *file, int line)
{
    if (!ok) {
        fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
        failures++;
    }
    return ok;
}

int check_status(LeaseStatus got, LeaseStatus expected, const char *what, const char *file, int line)
{
    if (got != expected) {
        fprintf(stderr, "%s:%d: %s returned %s, expected %s; last error: %s\n", file, line, what,
                lease_status_str(got), lease_status_str(expected), lease_last_error_message());
        failures++;
    }
    return got == expected;
}

int error_mentions(const char *needle)
{
    const char *message = lease_last_error_message();
    if (strstr(message, needle) == NULL) {
        fprintf(stderr, "  last error \"%s\" does not mention \"%s\"\n", message, needle);
        return 0;
    }
    return 1;
}

/* ---- Time and files -------------------------------------------------------------------------- */

long long now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void sleep_ms(long ms)
{
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
}

static char self_path[PATH_MAX]; /* this program, run again for child processes */
char temp_dir[] = "/tmp/lease-c-test-XXXXXX";

const char *db_path(const char *name)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s.db", temp_dir, name);
    return path;
}

static void remove_temp_dir(void)
{
    DIR *dir = opendir(temp_dir);
    struct dirent *entry;
    char path[PATH_MAX + 300];
    if (dir == NULL)
        return;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", temp_dir, entry->d_name);
        unlink(path);
    }
    closedir(dir);
    rmdir(temp_dir);
}

/* ---- Other processes ------------------------------------------------------------------------- */

int child_start(Child *child, const char *role, const char *a, const char *b, const char *c, const char *d)
{
    int orders[2], reports[2];
    if (pipe2(orders, O_CLOEXEC) != 0)
        return 0;
    if (pipe2(reports, O_CLOEXEC) != 0) {
        close(orders[0]);
        close(orders[1]);
        return 0;
    }
    fflush(NULL);
    child->pid = fork();
    if (child->pid == 0) {
        /* Between fork and exec only async-signal-safe calls. */
        dup2(orders[0], STDIN_FILENO);
        dup2(reports[1], STDOUT_FILENO);
        execl(self_path, self_path, "--child", role, a, b, c, d, (char *)NULL);
        _exit(127);
    }
    close(orders[0]);
    close(reports[1]);
    child->orders = orders[1];
    child->reports = reports[0];
    return child->pid > 0;
}

int child_read(Child *child, char *line, size_t size, long timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    size_t used = 0;
    while (used + 1 < size) {
        struct pollfd ready = {child->reports, POLLIN, 0};
        long long left = deadline - now_ms();
        char byte;
        int polled;
        if (left <= 0)
            break;
        polled = poll(&ready, 1, (int)left);
        if (polled < 0 && errno == EINTR)
            continue;
        if (polled <= 0 || read(child->reports, &byte, 1) != 1)
            break;
        if (byte == '\n') {
            line[used] = '\0';
            return 1;
        }
        line[used++] = byte;
    }
    line[used] = '\0';
    fprintf(stderr, "  no line from child %d (got \"%s\")\n", (int)child->pid, line);
    return 0;
}

void child_order(Child *child, const char *order)
{
    ssize_t written = write(child->orders, order, strlen(order));
    (void)written; /* a child that is gone shows in its exit status */
}

int child_wait(Child *child, long timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    int status = 0;
    close(child->orders);
    close(child->reports);
    while (waitpid(child->pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            fprintf(stderr, "  child %d did not end; killing it\n", (int)child->pid);
            kill(child->pid, SIGKILL);
            waitpid(child->pid, &status, 0);
            break;
        }
        sleep_ms(10);
    }
    return status;
}

int exited_cleanly(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void report(const char *word, unsigned long long number, int with_number)
{
    if (with_number)
        printf("%s %llu\n", word, number);
    else
        printf("%s\n", word);
    fflush(stdout);
}

void await_order(void)
{
    char order[64];
    if (!read_order(order, sizeof order))
        fprintf(stderr, "child: no order\n");
}

int read_order(char *order, size_t size)
{
    size_t len;
    if (fgets(order, (int)size, stdin) == NULL)
        return 0;
    len = strlen(order);
    if (len == 0 || order[len - 1] != '\n')
        return 0;
    order[len - 1] = '\0';
    return 1;
}

void release_when_told(LeaseGuard *guard)
{
    await_order();
    lease_guard_release(guard);
    report("released", 0, 0);
}

LeaseStatus steal_lease(LeaseLock *lock, pid_t victim, long wait_ms, LeaseGuard **guard)
{
    LeaseStatus status = LEASE_BUSY;
    int attempt;
    for (attempt = 0; attempt < 5 && status != LEASE_OK; attempt++) {
        kill(victim, SIGSTOP);
        sleep_ms(wait_ms);
        status = lease_lock_try_acquire(lock, guard);
        if (status != LEASE_OK) {
            /* The victim was stopped while it held the database's write lock (renewing): let
             * it finish, then stop it again. */
            fprintf(stderr, "child: %s; trying again\n", lease_last_error_message());
            kill(victim, SIGCONT);
            sleep_ms(200);
        }
    }
    return status;
}

unsigned long long child_read_number(Child *child, const char *word)
{
    char line[64];
    unsigned long long number = 0;
    size_t len = strlen(word);
    if (CHECK(child_read(child, line, sizeof line, CHILD_REPLY_MS)))
        CHECK(strncmp(line, word, len) == 0 && sscanf(line + len, " %llu", &number) == 1);
    return number;
}

void check_child_ends_with(Child *child, const char *last)
{
    char line[64];
    CHECK(child_read(child, line, sizeof line, CHILD_REPLY_MS) && strcmp(line, last) == 0);
    CHECK(exited_cleanly(child_wait(child, CHILD_REPLY_MS)));
}

int check_in_forked_child(void (*checks)(void *handles), void *handles)
{
    int results[2], child_failures = -1, status = 0;
    pid_t pid;
    if (!CHECK(pipe(results) == 0))
        return 0;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        ssize_t written;
        close(results[0]);
        failures = 0;
        checks(handles);
        written = write(results[1], &failures, sizeof failures);
        (void)written;
        /* The exit status says nothing: under valgrind, what the child leaks on purpose (the
         * parent's state, never freed here) makes it 1. The result goes through the pipe. */
        _exit(0);
    }
    close(results[1]);
    CHECK(read(results[0], &child_failures, sizeof child_failures) == sizeof child_failures);
    close(results[0]);
    CHECK(child_failures == 0);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status)); /* it did not crash */
    return 1;
}

/* ---- Threads --------------------------------------------------------------------------------- */

typedef struct {
    int (*round)(void);
    int rounds;
} Rounds;

static void *run_rounds(void *context)
{
    const Rounds *rounds = context;
    long failed = 0;
    int i;
    for (i = 0; i < rounds->rounds; i++)
        failed += rounds->round();
    return (void *)(intptr_t)failed;
}

void check_rounds_on_threads(int (*round)(void), int threads, int rounds)
{
    pthread_t thread[16];
    int started[16] = {0};
    Rounds each = {round, rounds};
    int i;
    if (!CHECK(threads <= 16))
        return;
    for (i = 0; i < threads; i++)
        started[i] = CHECK(pthread_create(&thread[i], NULL, run_rounds, &each) == 0);
    for (i = 0; i < threads; i++) {
        void *failed = NULL;
        if (!started[i])
            continue;
        pthread_join(thread[i], &failed);
        CHECK(failed == NULL);
    }
}

/* ---- main ------------------------------------------------------------------------------------ */

/* Runs the cases of one list (all, or the one named); counts them in passed and failed. */
static void run_cases(const TestCase *cases, size_t count, const char *only, int *passed, int *failed)
{
    size_t i;
    for (i = 0; i < count; i++) {
        long long started;
        if (only != NULL && strcmp(only, cases[i].name) != 0)
            continue;
        failures = 0;
        started = now_ms();
        cases[i].run();
        printf("%s %s (%lld ms)\n", failures == 0 ? "ok  " : "FAIL", cases[i].name, now_ms() - started);
        fflush(stdout);
        if (failures == 0)
            (*passed)++;
        else
            (*failed)++;
    }
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    const char *only = argc >= 2 ? argv[1] : NULL;

    if (argc >= 3 && strcmp(argv[1], "--child") == 0) {
        snprintf(self_path, sizeof self_path, "%s", argv[0]);
        if (!lock_child_role(argc - 2, argv + 2) && !db_child_role(argc - 2, argv + 2)
            && !observe_child_role(argc - 2, argv + 2)) {
            fprintf(stderr, "unknown child role %s\n", argv[2]);
            return 2;
        }
        return failures == 0 ? 0 : 1;
    }
    if (realpath(argv[0], self_path) == NULL || mkdtemp(temp_dir) == NULL) {
        perror("lease_test: setup");
        return 2;
    }
    run_cases(lock_cases, lock_case_count, only, &passed, &failed);
    run_cases(db_cases, db_case_count, only, &passed, &failed);
    run_cases(observe_cases, observe_case_count, only, &passed, &failed);
    /* Whatever ran, leave no library thread behind. */
    if (lease_shutdown() != LEASE_OK)
        fprintf(stderr, "lease_shutdown: %s\n", lease_last_error_message());
    remove_temp_dir();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
