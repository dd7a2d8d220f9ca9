/*
 * C tests of liblease's C ABI for knowing what changed and for schema migrations: LeaseObserver
 * (lease_db_observe, LeaseChangeCallback, lease_observer_free) and lease_db_migrate
 * (LeaseMigrationStep). The writers and the migrators are other processes: this program run
 * again with a role, and the sqlite3 command-line tool as a writer that does not use liblease.
 * See harness.h for the checks and the child processes.
 */
#define _GNU_SOURCE /* pthread_getname_np, kill */

#include "harness.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- Reading the database -------------------------------------------------------------------- */

static LeaseValue integer_value(int64_t integer)
{
    LeaseValue value = {LEASE_VALUE_INTEGER, integer, 0.0, NULL, 0};
    return value;
}

/* The first column of a query's first row, as a number (-1 when it is not one) or as text. */
typedef struct {
    long long number;
    char text[128];
} Answer;

static int32_t take_first_row(void *context, const LeaseValue *columns, size_t n_columns)
{
    Answer *answer = context;
    if (n_columns >= 1 && columns[0].kind == LEASE_VALUE_INTEGER)
        answer->number = columns[0].integer;
    if (n_columns >= 1 && columns[0].kind == LEASE_VALUE_TEXT && columns[0].len < sizeof answer->text) {
        memcpy(answer->text, columns[0].data, columns[0].len);
        answer->text[columns[0].len] = '\0';
    }
    return 1;
}

static Answer ask(LeaseDb *db, const char *sql)
{
    Answer answer = {-1, ""};
    CHECK_STATUS(lease_db_query(db, sql, NULL, 0, take_first_row, &answer), LEASE_OK);
    return answer;
}

static long long query_number(LeaseDb *db, const char *sql)
{
    return ask(db, sql).number;
}

/* The versions whose step committed, in order, as "1,2,3" ("" for none). */
static Answer steps_run(LeaseDb *db)
{
    return ask(db, "SELECT coalesce(group_concat(version, ','), '') FROM (SELECT version FROM steps ORDER BY version)");
}

static int table_exists(LeaseDb *db, const char *name)
{
    LeaseValue param = {LEASE_VALUE_TEXT, 0, 0.0, (const uint8_t *)name, strlen(name)};
    Answer answer = {-1, ""};
    CHECK_STATUS(lease_db_query(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?", &param, 1,
                                take_first_row, &answer),
                 LEASE_OK);
    return answer.number == 1;
}

/* ---- What an observer is told ---------------------------------------------------------------- */

enum { KEPT_CALLS = 16, NAMES_SIZE = 128, CALL_MS = 200 };

/* What on_change was told, and what it is to do. Shared with the library's thread: every field
 * is read and written under mutex. */
typedef struct {
    pthread_mutex_t mutex;
    int calls;
    int unknown;   /* calls with tables NULL (and n_tables 0): not known */
    int malformed; /* calls that break the header's word: NULL with a count, an empty list, a NULL
                      name, names unsorted or named twice, or one of liblease's own tables */
    char told[KEPT_CALLS][NAMES_SIZE]; /* the first calls' tables, as "a,b", or "NULL" */
    char thread[16];                   /* the first call's thread */
    const char *expect; /* optional: every call is to be told this */
    int unexpected;     /* calls told something else */
    /* Optional: each call counts the rows of table a through this handle of its own. */
    LeaseDb *reader;
    long long most_rows; /* the most rows a call saw */
    /* Optional: each call waits until `freeing` is set, then sleeps CALL_MS; `finished` counts
     * the calls that returned, `inside` says one runs. */
    int hold;
    int freeing;
    int inside;
    int finished;
    /* Optional: the next call frees this observer (its own) and sets freed_inside. */
    LeaseObserver *free_inside;
    int freed_inside;
    /* What on_destroy saw. */
    int destroys;
    int inside_at_destroy;
    int calls_at_destroy;
    char destroy_thread[16];
} Told;

static void told_init(Told *told)
{
    memset(told, 0, sizeof *told);
    pthread_mutex_init(&told->mutex, NULL);
}

static void told_destroy(Told *told)
{
    pthread_mutex_destroy(&told->mutex);
}

/* Copies the call's tables into told (they are valid only during the call); checks what the
 * header promises of them. Under told's mutex. */
static void take_tables(Told *told, const char *const *tables, size_t n_tables)
{
    char names[NAMES_SIZE] = "NULL";
    size_t i;
    if (tables == NULL) {
        told->unknown++;
        told->malformed += n_tables != 0;
    } else {
        names[0] = '\0';
        told->malformed += n_tables == 0;
        for (i = 0; i < n_tables; i++) {
            if (tables[i] == NULL || strncmp(tables[i], "liblease_", 9) == 0
                || (i > 0 && tables[i - 1] != NULL && strcmp(tables[i - 1], tables[i]) >= 0)) {
                told->malformed++;
                continue;
            }
            if (i > 0)
                strncat(names, ",", sizeof names - strlen(names) - 1);
            strncat(names, tables[i], sizeof names - strlen(names) - 1);
        }
    }
    told->unexpected += told->expect != NULL && strcmp(names, told->expect) != 0;
    if (told->calls < KEPT_CALLS)
        snprintf(told->told[told->calls], NAMES_SIZE, "%s", names);
    if (told->calls == 0)
        pthread_getname_np(pthread_self(), told->thread, sizeof told->thread);
    told->calls++;
}

/* A LeaseChangeCallback: records what it was told in its Told, and does what that asks. */
static void on_change(void *context, const char *const *tables, size_t n_tables)
{
    Told *told = context;
    LeaseObserver *to_free;
    LeaseDb *reader;
    int hold;
    pthread_mutex_lock(&told->mutex);
    told->inside = 1;
    take_tables(told, tables, n_tables);
    reader = told->reader;
    hold = told->hold;
    to_free = told->free_inside;
    told->free_inside = NULL;
    pthread_mutex_unlock(&told->mutex);

    if (reader != NULL) {
        long long rows = query_number(reader, "SELECT count(*) FROM a");
        pthread_mutex_lock(&told->mutex);
        if (rows > told->most_rows)
            told->most_rows = rows;
        pthread_mutex_unlock(&told->mutex);
    }
    if (hold) {
        long long deadline = now_ms() + CALLBACK_MS;
        int freeing = 0;
        while (!freeing && now_ms() < deadline) {
            sleep_ms(1);
            pthread_mutex_lock(&told->mutex);
            freeing = told->freeing;
            pthread_mutex_unlock(&told->mutex);
        }
        sleep_ms(CALL_MS); /* lease_observer_free is waiting meanwhile */
    }
    if (to_free != NULL)
        lease_observer_free(to_free); /* allowed here: returns at once */

    pthread_mutex_lock(&told->mutex);
    told->freed_inside += to_free != NULL;
    told->finished++;
    told->inside = 0;
    pthread_mutex_unlock(&told->mutex);
}

/* A LeaseDestroyCallback for a Told. */
static void on_destroy(void *context)
{
    Told *told = context;
    pthread_mutex_lock(&told->mutex);
    told->destroys++;
    told->inside_at_destroy = told->inside;
    told->calls_at_destroy = told->calls;
    pthread_getname_np(pthread_self(), told->destroy_thread, sizeof told->destroy_thread);
    pthread_mutex_unlock(&told->mutex);
}

/* Waits (generously) until told has had `calls` calls; returns whether it had. */
static int told_wait_calls(Told *told, int calls)
{
    long long deadline = now_ms() + CHILD_REPLY_MS;
    for (;;) {
        int had;
        pthread_mutex_lock(&told->mutex);
        had = told->calls;
        pthread_mutex_unlock(&told->mutex);
        if (had >= calls)
            return 1;
        if (now_ms() > deadline) {
            fprintf(stderr, "  the observer was called %d times, not %d\n", had, calls);
            return 0;
        }
        sleep_ms(5);
    }
}

/* Checks that call number `call` (from 0) was told `expected` ("a,b", or "NULL" for unknown). */
static int check_told(Told *told, int call, const char *expected)
{
    int same;
    pthread_mutex_lock(&told->mutex);
    same = call < told->calls && strcmp(told->told[call], expected) == 0;
    if (!same)
        fprintf(stderr, "  call %d was told \"%s\", expected \"%s\"\n", call,
                call < told->calls ? told->told[call] : "(no call)", expected);
    pthread_mutex_unlock(&told->mutex);
    return same;
}

/* One field of told, read under its mutex. */
static int told_get(Told *told, const int *field)
{
    int value;
    pthread_mutex_lock(&told->mutex);
    value = *field;
    pthread_mutex_unlock(&told->mutex);
    return value;
}

/* Opens path with tables a, b and c, and observes it with on_change and on_destroy into told. */
static LeaseDb *open_observed(const char *path, Told *told, LeaseObserver **observer)
{
    LeaseDb *db = NULL;
    if (!CHECK_STATUS(lease_db_open(path, &db), LEASE_OK))
        return NULL;
    CHECK_STATUS(lease_db_execute(db, "CREATE TABLE a(x)", NULL, 0, NULL), LEASE_OK);
    CHECK_STATUS(lease_db_execute(db, "CREATE TABLE b(x)", NULL, 0, NULL), LEASE_OK);
    CHECK_STATUS(lease_db_execute(db, "CREATE TABLE c(x)", NULL, 0, NULL), LEASE_OK);
    if (!CHECK_STATUS(lease_db_observe(db, on_change, told, on_destroy, observer), LEASE_OK)) {
        lease_db_free(db);
        return NULL;
    }
    return db;
}

/* Sends a writer child one order and checks that it did it. */
static void order_write(Child *writer, const char *order)
{
    char line[64];
    child_order(writer, order);
    child_order(writer, "\n");
    CHECK(child_read(writer, line, sizeof line, CHILD_REPLY_MS) && strcmp(line, "done") == 0);
}

/* Runs the sqlite3 command-line tool on path with sql, in a process of its own: a writer of the
 * file that does not use liblease. Returns whether it ran and succeeded. */
static int run_sqlite3(const char *path, const char *sql)
{
    char *argv[] = {"sqlite3", "-cmd", ".timeout 60000", (char *)path, (char *)sql, NULL};
    posix_spawn_file_actions_t quiet;
    pid_t pid;
    int spawned, status = 0;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    fflush(NULL);
    spawned = posix_spawnp(&pid, "sqlite3", &quiet, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&quiet);
    if (spawned != 0) {
        fprintf(stderr, "  the sqlite3 command-line tool cannot be run (scripts/setup installs it): %s\n",
                strerror(spawned));
        return 0;
    }
    return waitpid(pid, &status, 0) == pid && exited_cleanly(status);
}

/* ---- Migrations ------------------------------------------------------------------------------ */

/* What make_version does, and what it did. */
typedef struct {
    int calls;            /* steps called in this process */
    uint32_t fail_at;     /* the version whose step fails, or 0 */
    LeaseStatus fail_with; /* what that step returns, having written */
    int end_tx;           /* each step tries lease_tx_commit and lease_tx_rollback on its tx */
    uint32_t stuck_at;    /* the version whose step reports "in-step" and never returns */
} Steps;

/* The tests' migration step: version v makes table t<v> and records (v, this process) in steps. */
static LeaseStatus make_version(void *context, LeaseTx *tx, uint32_t version)
{
    Steps *steps = context;
    LeaseValue row[2];
    char sql[64];
    steps->calls++;
    row[0] = integer_value(version);
    row[1] = integer_value(getpid());
    snprintf(sql, sizeof sql, "CREATE TABLE t%u(x)", (unsigned)version);
    CHECK_STATUS(lease_tx_execute(tx, "CREATE TABLE IF NOT EXISTS steps(version INTEGER, pid INTEGER)", NULL, 0, NULL),
                 LEASE_OK);
    CHECK_STATUS(lease_tx_execute(tx, sql, NULL, 0, NULL), LEASE_OK);
    CHECK_STATUS(lease_tx_execute(tx, "INSERT INTO steps VALUES (?, ?)", row, 2, NULL), LEASE_OK);
    if (steps->end_tx) {
        /* The transaction is the library's: both refuse, and it stays open. */
        CHECK_STATUS(lease_tx_commit(tx), LEASE_MISUSE);
        CHECK(error_mentions("lease_tx_commit") && error_mentions("lease_db_migrate"));
        lease_tx_rollback(tx);
        CHECK(error_mentions("lease_tx_rollback") && error_mentions("lease_db_migrate"));
        CHECK_STATUS(lease_tx_execute(tx, "INSERT INTO steps VALUES (?, ?)", row, 2, NULL), LEASE_OK);
    }
    if (version == steps->stuck_at) {
        report("in-step", 0, 0);
        for (;;)
            pause();
    }
    sleep_ms(30); /* long enough that other migrators are at the door meanwhile */
    return version == steps->fail_at ? steps->fail_with : LEASE_OK;
}

/* ---- Child roles ----------------------------------------------------------------------------- */

/* writer DB: writes through a LeaseDb of its own, reporting "done" after each order: "tx T U" a
 * row into T and one into U in one transaction; "one T" a row into T with lease_db_execute;
 * "burst T N" N rows into T, each its own commit; "version N" PRAGMA user_version = N with
 * lease_db_execute, a write that names no table. Ends when the orders end. */
static void child_writer(const char *path)
{
    LeaseDb *db = NULL;
    LeaseTx *tx = NULL;
    char order[64], table[16], other[16], sql[64];
    long n, i;
    REQUIRE(CHECK_STATUS(lease_db_open(path, &db), LEASE_OK));
    CHECK_STATUS(lease_db_set_busy_timeout(db, CHILD_REPLY_MS), LEASE_OK);
    while (read_order(order, sizeof order)) {
        if (sscanf(order, "tx %15s %15s", table, other) == 2) {
            if (CHECK_STATUS(lease_db_begin(db, &tx), LEASE_OK)) {
                snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (1)", table);
                CHECK_STATUS(lease_tx_execute(tx, sql, NULL, 0, NULL), LEASE_OK);
                snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (1)", other);
                CHECK_STATUS(lease_tx_execute(tx, sql, NULL, 0, NULL), LEASE_OK);
                CHECK_STATUS(lease_tx_commit(tx), LEASE_OK);
            }
        } else if (sscanf(order, "one %15s", table) == 1) {
            snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (1)", table);
            CHECK_STATUS(lease_db_execute(db, sql, NULL, 0, NULL), LEASE_OK);
        } else if (sscanf(order, "burst %15s %ld", table, &n) == 2) {
            snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (?)", table);
            for (i = 0; i < n; i++) {
                LeaseValue value = integer_value(i);
                if (!CHECK_STATUS(lease_db_execute(db, sql, &value, 1, NULL), LEASE_OK))
                    break;
            }
        } else if (sscanf(order, "version %ld", &n) == 1) {
            snprintf(sql, sizeof sql, "PRAGMA user_version = %ld", n);
            CHECK_STATUS(lease_db_execute(db, sql, NULL, 0, NULL), LEASE_OK);
        } else {
            fprintf(stderr, "writer: unknown order \"%s\"\n", order);
            failures++;
        }
        report(failures == 0 ? "done" : "failed", 0, 0);
    }
    lease_db_free(db);
}

/* migrator DB VERSION: opens DB, reports "ready", and on an order migrates it to VERSION with
 * make_version; reports "migrated STATUS". */
static void child_migrator(const char *path, uint32_t target)
{
    LeaseDb *db = NULL;
    Steps steps = {0};
    LeaseStatus status;
    REQUIRE(CHECK_STATUS(lease_db_open(path, &db), LEASE_OK));
    report("ready", 0, 0);
    await_order();
    status = lease_db_migrate(db, target, make_version, &steps, CHILD_REPLY_MS);
    if (status != LEASE_OK)
        fprintf(stderr, "migrator: %s\n", lease_last_error_message());
    report("migrated", status, 1);
    lease_db_free(db);
}

/* stuck-migrator DB: migrates DB to version 2, and in step 2 reports "in-step" and waits to be
 * killed. */
static void child_stuck_migrator(const char *path)
{
    LeaseDb *db = NULL;
    Steps steps = {0};
    steps.stuck_at = 2;
    REQUIRE(CHECK_STATUS(lease_db_open(path, &db), LEASE_OK));
    lease_db_migrate(db, 2, make_version, &steps, CHILD_REPLY_MS);
    fprintf(stderr, "stuck-migrator: the step returned\n");
    failures++;
}

int observe_child_role(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[0], "writer") == 0)
        child_writer(argv[1]);
    else if (argc == 3 && strcmp(argv[0], "migrator") == 0)
        child_migrator(argv[1], (uint32_t)atol(argv[2]));
    else if (argc == 2 && strcmp(argv[0], "stuck-migrator") == 0)
        child_stuck_migrator(argv[1]);
    else
        return 0;
    return 1;
}

/* ---- Cases: observers ------------------------------------------------------------------------ */

/* Another process commits through its LeaseDb: a transaction writing a and b, then a
 * lease_db_execute writing c. The observer here is told each commit with its tables, on the
 * library's thread, and never that they are unknown. */
static void test_observer_told_tables_of_another_process(void)
{
    const char *path = db_path("observe-tables");
    Told told;
    LeaseObserver *observer = NULL;
    LeaseDb *db;
    Child writer;
    told_init(&told);
    db = open_observed(path, &told, &observer);
    REQUIRE(db != NULL);
    REQUIRE(CHECK(child_start(&writer, "writer", path, NULL, NULL, NULL)));

    order_write(&writer, "tx a b");
    CHECK(told_wait_calls(&told, 1) && check_told(&told, 0, "a,b"));
    order_write(&writer, "one c");
    CHECK(told_wait_calls(&told, 2) && check_told(&told, 1, "c"));
    CHECK(exited_cleanly(child_wait(&writer, CHILD_REPLY_MS)));

    lease_observer_free(observer);
    CHECK(told_get(&told, &told.calls) == 2);
    CHECK(told_get(&told, &told.unknown) == 0 && told_get(&told, &told.malformed) == 0);
    CHECK(strcmp(told.thread, "liblease") == 0);
    CHECK(told.destroys == 1);
    lease_db_free(db);
    told_destroy(&told);
}

/* Writers that leave the tables unknown: the sqlite3 tool (no liblease), and a LeaseDb of another
 * process writing PRAGMA user_version, which names no table. The observer is told NULL, 0 for
 * each, and tables again for the next liblease commit. */
static void test_observer_told_unknown_for_other_writers(void)
{
    const char *path = db_path("observe-unknown");
    Told told;
    LeaseObserver *observer = NULL;
    LeaseDb *db;
    Child writer;
    told_init(&told);
    db = open_observed(path, &told, &observer);
    REQUIRE(db != NULL);

    CHECK(run_sqlite3(path, "INSERT INTO a VALUES (1)"));
    CHECK(told_wait_calls(&told, 1) && check_told(&told, 0, "NULL"));
    REQUIRE(CHECK(child_start(&writer, "writer", path, NULL, NULL, NULL)));
    order_write(&writer, "version 5");
    CHECK(told_wait_calls(&told, 2) && check_told(&told, 1, "NULL"));
    order_write(&writer, "one b");
    CHECK(told_wait_calls(&told, 3) && check_told(&told, 2, "b"));
    CHECK(exited_cleanly(child_wait(&writer, CHILD_REPLY_MS)));

    lease_observer_free(observer);
    CHECK(told_get(&told, &told.calls) == 3 && told_get(&told, &told.malformed) == 0);
    CHECK(query_number(db, "PRAGMA user_version") == 5 && query_number(db, "SELECT count(*) FROM a") == 1);
    lease_db_free(db);
    told_destroy(&told);
}

/* Another process commits 2000 rows, each its own commit: calls are coalesced, never dropped, so
 * a call comes after the last commit and sees all 2000 rows (each call counts them through a
 * LeaseDb of its own). */
static void test_observer_sees_the_last_of_a_burst(void)
{
    const char *path = db_path("observe-burst");
    Told told;
    LeaseObserver *observer = NULL;
    LeaseDb *db, *reader = NULL;
    Child writer;
    long long deadline, most = 0;
    told_init(&told);
    db = open_observed(path, &told, &observer);
    REQUIRE(db != NULL);
    REQUIRE(CHECK_STATUS(lease_db_open(path, &reader), LEASE_OK));
    pthread_mutex_lock(&told.mutex);
    told.reader = reader;
    told.expect = "a";
    pthread_mutex_unlock(&told.mutex);
    REQUIRE(CHECK(child_start(&writer, "writer", path, NULL, NULL, NULL)));

    order_write(&writer, "burst a 2000");
    CHECK(exited_cleanly(child_wait(&writer, CHILD_REPLY_MS)));
    deadline = now_ms() + CHILD_REPLY_MS;
    while (most < 2000 && now_ms() < deadline) {
        sleep_ms(5);
        pthread_mutex_lock(&told.mutex);
        most = told.most_rows;
        pthread_mutex_unlock(&told.mutex);
    }
    if (!CHECK(most == 2000))
        fprintf(stderr, "  the last call saw %lld rows\n", most);

    lease_observer_free(observer);
    printf("     2000 commits, %d calls\n", told.calls);
    CHECK(told.calls >= 1 && told.calls <= 2000);
    CHECK(told.unknown == 0 && told.malformed == 0 && told.unexpected == 0);
    lease_db_free(reader);
    lease_db_free(db);
    told_destroy(&told);
}

/* lease_observer_free while the callback runs waits for it to return; destroy then runs once, on
 * the library's thread, after the call; no call comes after the free. */
static void test_observer_free_waits_for_its_call(void)
{
    const char *path = db_path("observe-free");
    Told told, witness;
    LeaseObserver *observer = NULL, *witness_observer = NULL;
    LeaseDb *db;
    told_init(&told);
    told_init(&witness);
    told.hold = 1;
    db = open_observed(path, &told, &observer);
    REQUIRE(db != NULL);

    CHECK_STATUS(lease_db_execute(db, "INSERT INTO a VALUES (1)", NULL, 0, NULL), LEASE_OK);
    REQUIRE(CHECK(told_wait_calls(&told, 1)));
    pthread_mutex_lock(&told.mutex);
    told.freeing = 1; /* the call sleeps CALL_MS from now */
    pthread_mutex_unlock(&told.mutex);
    lease_observer_free(observer);
    CHECK(told_get(&told, &told.finished) == 1);
    CHECK(told_get(&told, &told.destroys) == 1);
    CHECK(!told.inside_at_destroy && told.calls_at_destroy == 1);
    CHECK(strcmp(told.destroy_thread, "liblease") == 0);

    /* A commit after the free: a second observer is told, the freed one is not. */
    REQUIRE(CHECK_STATUS(lease_db_observe(db, on_change, &witness, on_destroy, &witness_observer), LEASE_OK));
    CHECK_STATUS(lease_db_execute(db, "INSERT INTO b VALUES (1)", NULL, 0, NULL), LEASE_OK);
    CHECK(told_wait_calls(&witness, 1) && check_told(&witness, 0, "b"));
    lease_observer_free(witness_observer);
    CHECK(told_get(&told, &told.calls) == 1 && told_get(&told, &told.destroys) == 1);
    /* Freed with no call running: destroy runs at once, on the thread that frees. */
    CHECK(witness.destroys == 1 && strcmp(witness.destroy_thread, "liblease") != 0);
    lease_db_free(db);
    told_destroy(&told);
    told_destroy(&witness);
}

/* The callback frees its own observer: that returns at once (no deadlock), and destroy runs once
 * the callback has returned. */
static void test_observer_freed_inside_its_call(void)
{
    const char *path = db_path("observe-inside");
    Told told;
    LeaseObserver *observer = NULL;
    LeaseDb *db;
    long long deadline;
    told_init(&told);
    db = open_observed(path, &told, &observer);
    REQUIRE(db != NULL);
    pthread_mutex_lock(&told.mutex);
    told.free_inside = observer;
    pthread_mutex_unlock(&told.mutex);

    CHECK_STATUS(lease_db_execute(db, "INSERT INTO a VALUES (1)", NULL, 0, NULL), LEASE_OK);
    deadline = now_ms() + CHILD_REPLY_MS;
    while (told_get(&told, &told.destroys) == 0 && now_ms() < deadline)
        sleep_ms(5);
    CHECK(told_get(&told, &told.freed_inside) == 1);
    CHECK(told_get(&told, &told.destroys) == 1);
    CHECK(!told.inside_at_destroy && told.calls_at_destroy == 1);
    CHECK(strcmp(told.destroy_thread, "liblease") == 0);
    lease_db_free(db);
    told_destroy(&told);
}

/* The LeaseDb that made the observer is freed first: the observer goes on. */
static void test_observer_outlives_its_db(void)
{
    const char *path = db_path("observe-outlives");
    Told told;
    LeaseObserver *observer = NULL;
    LeaseDb *db;
    Child writer;
    told_init(&told);
    db = open_observed(path, &told, &observer);
    REQUIRE(db != NULL);
    lease_db_free(db);

    REQUIRE(CHECK(child_start(&writer, "writer", path, NULL, NULL, NULL)));
    order_write(&writer, "one c");
    CHECK(told_wait_calls(&told, 1) && check_told(&told, 0, "c"));
    CHECK(exited_cleanly(child_wait(&writer, CHILD_REPLY_MS)));
    lease_observer_free(observer);
    CHECK(told.destroys == 1);
    told_destroy(&told);
}

/* A lease_db_observe that fails writes no observer and never calls destroy: the context stays
 * the caller's. */
static void test_observe_bad_arguments(void)
{
    const char *path = db_path("observe-bad");
    Told told;
    LeaseObserver *untouched = (LeaseObserver *)&untouched;
    LeaseDb *db = NULL;
    told_init(&told);
    REQUIRE(CHECK_STATUS(lease_db_open(path, &db), LEASE_OK));

    CHECK_STATUS(lease_db_observe(NULL, on_change, &told, on_destroy, &untouched), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("lease_db_observe") && error_mentions("db is NULL"));
    CHECK_STATUS(lease_db_observe(db, NULL, &told, on_destroy, &untouched), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("callback is NULL"));
    CHECK_STATUS(lease_db_observe(db, on_change, &told, on_destroy, NULL), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("out_observer is NULL"));
    /* A failure past the arguments: the file was deleted since db opened it. */
    CHECK(unlink(path) == 0);
    CHECK_STATUS(lease_db_observe(db, on_change, &told, on_destroy, &untouched), LEASE_DATABASE);
    CHECK(error_mentions("lease_db_observe"));
    CHECK(untouched == (LeaseObserver *)&untouched);
    CHECK(told.destroys == 0 && told.calls == 0);
    lease_observer_free(NULL);
    lease_db_free(db);
    told_destroy(&told);
}

/* lease_shutdown refuses while an observer lives (which goes on being called), and stops the
 * library's thread once it is freed. */
static void test_shutdown_while_observing(void)
{
    const char *path = db_path("observe-shutdown");
    Told told;
    LeaseObserver *observer = NULL;
    LeaseDb *db;
    told_init(&told);
    db = open_observed(path, &told, &observer);
    REQUIRE(db != NULL);

    CHECK_STATUS(lease_shutdown(), LEASE_MISUSE);
    CHECK(error_mentions("lease_shutdown"));
    CHECK_STATUS(lease_db_execute(db, "INSERT INTO a VALUES (1)", NULL, 0, NULL), LEASE_OK);
    CHECK(told_wait_calls(&told, 1) && check_told(&told, 0, "a"));
    lease_observer_free(observer);
    CHECK_STATUS(lease_shutdown(), LEASE_OK);
    CHECK(told.destroys == 1);
    lease_db_free(db);
    told_destroy(&told);
}

/* ---- Cases: migrations ----------------------------------------------------------------------- */

/* Four processes migrate a new file to version 3 at once: each step runs once, in one of them,
 * and every one returns LEASE_OK. */
static void test_migrate_four_processes_at_once(void)
{
    enum { MIGRATORS = 4 };
    const char *path = db_path("migrate-four");
    LeaseDb *db = NULL;
    Child migrator[MIGRATORS];
    LeaseValue pid[MIGRATORS];
    Answer by_migrators = {-1, ""};
    char line[64];
    int started = 0, i;
    REQUIRE(CHECK_STATUS(lease_db_open(path, &db), LEASE_OK));
    for (i = 0; i < MIGRATORS; i++)
        started += CHECK(child_start(&migrator[i], "migrator", path, "3", NULL, NULL));
    REQUIRE(started == MIGRATORS);
    for (i = 0; i < MIGRATORS; i++)
        CHECK(child_read(&migrator[i], line, sizeof line, CHILD_REPLY_MS) && strcmp(line, "ready") == 0);
    for (i = 0; i < MIGRATORS; i++)
        child_order(&migrator[i], "go\n");
    for (i = 0; i < MIGRATORS; i++) {
        pid[i] = integer_value(migrator[i].pid);
        CHECK(child_read_number(&migrator[i], "migrated") == LEASE_OK);
        CHECK(exited_cleanly(child_wait(&migrator[i], CHILD_REPLY_MS)));
    }

    CHECK(strcmp(steps_run(db).text, "1,2,3") == 0);
    CHECK(query_number(db, "PRAGMA user_version") == 3);
    CHECK(table_exists(db, "t1") && table_exists(db, "t2") && table_exists(db, "t3"));
    CHECK_STATUS(lease_db_query(db, "SELECT count(*) FROM steps WHERE pid IN (?, ?, ?, ?)", pid, MIGRATORS,
                                take_first_row, &by_migrators),
                 LEASE_OK);
    CHECK(by_migrators.number == 3);
    lease_db_free(db);
}

/* A step that returns a status other than LEASE_OK: lease_db_migrate returns that very status,
 * the message names the version, and the step's writes are rolled back (the file stays at the
 * version before). A number that is no LeaseStatus is LEASE_INVALID_ARGUMENT. */
static void test_migrate_failing_step(void)
{
    const char *path = db_path("migrate-failing");
    LeaseDb *db = NULL;
    Steps steps = {0};
    unsigned status;
    REQUIRE(CHECK_STATUS(lease_db_open(path, &db), LEASE_OK));
    steps.fail_at = 2;
    for (status = LEASE_BUSY; status <= LEASE_SUSPENDED; status++) {
        steps.fail_with = (LeaseStatus)status;
        CHECK_STATUS(lease_db_migrate(db, 3, make_version, &steps, CHILD_REPLY_MS), (LeaseStatus)status);
        CHECK(error_mentions("lease_db_migrate") && error_mentions("version 2"));
        CHECK(query_number(db, "PRAGMA user_version") == 1);
        CHECK(strcmp(steps_run(db).text, "1") == 0);
        CHECK(!table_exists(db, "t2"));
    }
    steps.fail_with = (LeaseStatus)77;
    CHECK_STATUS(lease_db_migrate(db, 3, make_version, &steps, CHILD_REPLY_MS), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("version 2") && error_mentions("77"));
    CHECK(query_number(db, "PRAGMA user_version") == 1 && !table_exists(db, "t2"));
    CHECK(steps.calls == 1 + 9 + 1); /* step 1 once, then step 2 each time */

    /* The next try runs the step again, and goes on. */
    steps.fail_at = 0;
    CHECK_STATUS(lease_db_migrate(db, 3, make_version, &steps, CHILD_REPLY_MS), LEASE_OK);
    CHECK(strcmp(steps_run(db).text, "1,2,3") == 0 && query_number(db, "PRAGMA user_version") == 3);
    lease_db_free(db);
}

/* A file above the target is refused, naming both versions; one at the target is left alone.
 * Neither calls the step. */
static void test_migrate_newer_file_and_file_at_target(void)
{
    const char *path = db_path("migrate-newer");
    LeaseDb *db = NULL;
    Steps steps = {0};
    REQUIRE(CHECK_STATUS(lease_db_open(path, &db), LEASE_OK));
    REQUIRE(CHECK_STATUS(lease_db_migrate(db, 4, make_version, &steps, CHILD_REPLY_MS), LEASE_OK));
    CHECK(steps.calls == 4);

    CHECK_STATUS(lease_db_migrate(db, 3, make_version, &steps, CHILD_REPLY_MS), LEASE_DATABASE);
    CHECK(error_mentions("lease_db_migrate") && error_mentions("version 4") && error_mentions(" 3"));
    CHECK_STATUS(lease_db_migrate(db, 4, make_version, &steps, CHILD_REPLY_MS), LEASE_OK);
    CHECK_STATUS(lease_db_migrate(db, 0, make_version, &steps, CHILD_REPLY_MS), LEASE_DATABASE);
    CHECK(steps.calls == 4);
    CHECK(query_number(db, "PRAGMA user_version") == 4 && strcmp(steps_run(db).text, "1,2,3,4") == 0);
    lease_db_free(db);
}

/* The step's transaction is the library's: lease_tx_commit returns LEASE_MISUSE and
 * lease_tx_rollback does nothing, both saying why, and the migration completes. */
static void test_migrate_step_cannot_end_its_tx(void)
{
    const char *path = db_path("migrate-end-tx");
    LeaseDb *db = NULL;
    Steps steps = {0};
    REQUIRE(CHECK_STATUS(lease_db_open(path, &db), LEASE_OK));
    steps.end_tx = 1;
    CHECK_STATUS(lease_db_migrate(db, 2, make_version, &steps, CHILD_REPLY_MS), LEASE_OK);
    CHECK(steps.calls == 2);
    CHECK(query_number(db, "PRAGMA user_version") == 2);
    CHECK(strcmp(steps_run(db).text, "1,1,2,2") == 0); /* each step's rows, before and after */
    lease_db_free(db);
}

/* A migrator killed (SIGKILL) in the middle of step 2 leaves the file at version 1; meanwhile
 * another caller gives up at its timeout (LEASE_TIMEOUT); afterwards the next caller runs step 2. */
static void test_migrate_killed_mid_step(void)
{
    const char *path = db_path("migrate-killed");
    LeaseDb *db = NULL;
    Steps steps = {0};
    Child stuck;
    char line[64];
    REQUIRE(CHECK_STATUS(lease_db_open(path, &db), LEASE_OK));
    REQUIRE(CHECK(child_start(&stuck, "stuck-migrator", path, NULL, NULL, NULL)));
    REQUIRE(CHECK(child_read(&stuck, line, sizeof line, CHILD_REPLY_MS) && strcmp(line, "in-step") == 0));

    CHECK_STATUS(lease_db_migrate(db, 2, make_version, &steps, 200), LEASE_TIMEOUT);
    CHECK(error_mentions("lease_db_migrate") && error_mentions("version 2"));
    CHECK(steps.calls == 0);
    kill(stuck.pid, SIGKILL);
    child_wait(&stuck, CHILD_REPLY_MS);

    CHECK(query_number(db, "PRAGMA user_version") == 1);
    CHECK(strcmp(steps_run(db).text, "1") == 0 && !table_exists(db, "t2"));
    CHECK_STATUS(lease_db_migrate(db, 3, make_version, &steps, CHILD_REPLY_MS), LEASE_OK);
    CHECK(steps.calls == 2);
    CHECK(strcmp(steps_run(db).text, "1,2,3") == 0 && query_number(db, "PRAGMA user_version") == 3);
    lease_db_free(db);
}

static void test_migrate_bad_arguments(void)
{
    const char *path = db_path("migrate-bad");
    LeaseDb *db = NULL;
    Steps steps = {0};
    REQUIRE(CHECK_STATUS(lease_db_open(path, &db), LEASE_OK));
    CHECK_STATUS(lease_db_migrate(NULL, 1, make_version, &steps, 1000), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("lease_db_migrate") && error_mentions("db is NULL"));
    CHECK_STATUS(lease_db_migrate(db, 1, NULL, &steps, 1000), LEASE_INVALID_ARGUMENT);
    CHECK(error_mentions("step is NULL"));
    CHECK(steps.calls == 0 && query_number(db, "PRAGMA user_version") == 0);
    lease_db_free(db);
}

const TestCase observe_cases[] = {
    {"observer_told_tables_of_another_process", test_observer_told_tables_of_another_process},
    {"observer_told_unknown_for_other_writers", test_observer_told_unknown_for_other_writers},
    {"observer_sees_the_last_of_a_burst", test_observer_sees_the_last_of_a_burst},
    {"observer_free_waits_for_its_call", test_observer_free_waits_for_its_call},
    {"observer_freed_inside_its_call", test_observer_freed_inside_its_call},
    {"observer_outlives_its_db", test_observer_outlives_its_db},
    {"observe_bad_arguments", test_observe_bad_arguments},
    {"shutdown_while_observing", test_shutdown_while_observing},
    {"migrate_four_processes_at_once", test_migrate_four_processes_at_once},
    {"migrate_failing_step", test_migrate_failing_step},
    {"migrate_newer_file_and_file_at_target", test_migrate_newer_file_and_file_at_target},
    {"migrate_step_cannot_end_its_tx", test_migrate_step_cannot_end_its_tx},
    {"migrate_killed_mid_step", test_migrate_killed_mid_step},
    {"migrate_bad_arguments", test_migrate_bad_arguments},
};
const size_t observe_case_count = sizeof observe_cases / sizeof observe_cases[0];
