/*
 * The C tests' harness: checks, time, temporary files, child processes that run this same
 * program again with a role (or are forked without exec), and threads. Plain C11. The cases live in
 * lock_test.c, db_test.c and observe_test.c; harness.c has main().
 */
#ifndef LEASE_TEST_HARNESS_H
#define LEASE_TEST_HARNESS_H

#include "lease.h"

#include <stddef.h>
#include <sys/types.h>

/* Generous limits: everything may run under valgrind, many times slower than native. */
enum { CHILD_REPLY_MS = 120000, CALLBACK_MS = 30000 };

/* ---- Checks ---------------------------------------------------------------------------------- */

extern int failures; /* checks failed in the running case (or child) */

int check(int ok, const char *what, const char *file, int line);
int check_status(LeaseStatus got, LeaseStatus expected, const char *what, const char *file, int line);

/* CHECK and CHECK_STATUS count a failure and go on; they return whether the check passed. */
#define CHECK(condition) check((condition) ? 1 : 0, #condition, __FILE__, __LINE__)
#define CHECK_STATUS(call, expected) check_status((call), (expected), #call, __FILE__, __LINE__)
/* REQUIRE ends the case when a check it depends on failed. */
#define REQUIRE(passed)                                                                            \
    do {                                                                                           \
        if (!(passed))                                                                             \
            return;                                                                                \
    } while (0)

/* True when the last error message contains needle. */
int error_mentions(const char *needle);

/* ---- Time and files -------------------------------------------------------------------------- */

long long now_ms(void); /* monotonic */
void sleep_ms(long ms);

extern char temp_dir[]; /* this run's own directory, removed at the end */
/* A database file of its own for each case: temp_dir/name.db. The text is overwritten by the
 * next call. */
const char *db_path(const char *name);

/* ---- Other processes ------------------------------------------------------------------------- */

/* A copy of this program running a child role; it reads orders on stdin and reports on stdout. */
typedef struct {
    pid_t pid;
    int orders;  /* the child's stdin */
    int reports; /* the child's stdout */
} Child;

/* Starts `lease_test --child role a b c d` (the arguments end at the first NULL). */
int child_start(Child *child, const char *role, const char *a, const char *b, const char *c, const char *d);
/* Reads one line the child reported, without the newline; 0 on timeout or end of file. */
int child_read(Child *child, char *line, size_t size, long timeout_ms);
void child_order(Child *child, const char *order);
/* Waits for the child to end; kills it after `timeout_ms`. Returns its wait status. */
int child_wait(Child *child, long timeout_ms);
int exited_cleanly(int status);

/* Reads the child's next report, "WORD NUMBER" with the given word, and returns NUMBER; checks
 * that it came, and returns 0 when it did not. */
unsigned long long child_read_number(Child *child, const char *word);
/* Checks that the child's next report is `last` and that it then exits cleanly. */
void check_child_ends_with(Child *child, const char *last);

/* In a child: reports one line to the parent ("WORD" or "WORD NUMBER"); waits for an order. */
void report(const char *word, unsigned long long number, int with_number);
void await_order(void);
/* In a child: reads the next order into `order`, without its newline; 0 when the parent closed
 * the orders (or an order is longer than `size`). */
int read_order(char *order, size_t size);
/* In a child: waits for an order, releases guard (which may be NULL), and reports "released". */
void release_when_told(LeaseGuard *guard);
/* In a child: takes lock's lease from process `victim` by stopping it (SIGSTOP) for wait_ms and
 * then trying to acquire, up to five times. On LEASE_OK *guard is set and the victim is still
 * stopped; the caller continues it (SIGCONT). Returns the last try's status. */
LeaseStatus steal_lease(LeaseLock *lock, pid_t victim, long wait_ms, LeaseGuard **guard);

/* Runs checks(handles) in a child forked without exec, where it may use the parent's handles;
 * checks that it counted no failure there and did not crash. Returns 0 when no child could be
 * started. */
int check_in_forked_child(void (*checks)(void *handles), void *handles);

/* ---- Threads --------------------------------------------------------------------------------- */

/* Runs `rounds` calls of round() on each of `threads` threads at once (at most 16); checks that
 * every thread started and that every call returned 0 (round returns its failures). */
void check_rounds_on_threads(int (*round)(void), int threads, int rounds);

/* ---- The cases ------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    void (*run)(void);
} TestCase;

/* Each test file offers its cases and its child roles; a role function returns 0 when the role
 * is not one of its own, else runs it and returns 1. */
extern const TestCase lock_cases[];
extern const size_t lock_case_count;
int lock_child_role(int argc, char **argv);

extern const TestCase db_cases[];
extern const size_t db_case_count;
int db_child_role(int argc, char **argv);

extern const TestCase observe_cases[];
extern const size_t observe_case_count;
int observe_child_role(int argc, char **argv);

#endif /* LEASE_TEST_HARNESS_H */
