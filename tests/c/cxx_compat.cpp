// Proves that lease.h is usable from C++: it compiles with -std=c++17 -Wall -Wextra -Werror
// -pedantic, and its functions link with C linkage (extern "C").
#include "lease.h"

#include <cstdio>
#include <cstring>
#include <string>

#include <unistd.h>

static_assert(LEASE_OK == 0 && LEASE_PANIC == 7, "status codes are stable");
static_assert(LEASE_VALUE_TEXT == 3, "value kinds are stable");

namespace {

// Callbacks written in C++ for C function pointers.
extern "C" void on_lost(void *context, const char *key)
{
    static_cast<void>(context);
    static_cast<void>(key);
}

extern "C" int32_t on_row(void *context, const LeaseValue *columns, size_t n_columns)
{
    auto *seen = static_cast<std::string *>(context);
    if (n_columns == 1 && columns[0].kind == LEASE_VALUE_TEXT)
        seen->assign(reinterpret_cast<const char *>(columns[0].data), columns[0].len);
    return 0;
}

bool ok(LeaseStatus status, const char *what)
{
    if (status != LEASE_OK)
        std::fprintf(stderr, "%s: %s: %s\n", what, lease_status_str(status), lease_last_error_message());
    return status == LEASE_OK;
}

// A database file: a transaction writes a TEXT parameter, a query reads it back.
bool database_works()
{
    const std::string path = "/tmp/lease-cxx-" + std::to_string(getpid()) + ".db";
    const std::string text = "c++";
    LeaseDb *db = nullptr;
    LeaseTx *tx = nullptr;
    LeaseValue param{};
    param.kind = LEASE_VALUE_TEXT;
    param.data = reinterpret_cast<const uint8_t *>(text.data());
    param.len = text.size();
    std::string seen;
    bool passed = ok(lease_db_open(path.c_str(), &db), "lease_db_open")
                  && ok(lease_db_execute(db, "CREATE TABLE t(x)", nullptr, 0, nullptr), "lease_db_execute")
                  && ok(lease_db_begin(db, &tx), "lease_db_begin")
                  && ok(lease_tx_execute(tx, "INSERT INTO t VALUES (?)", &param, 1, nullptr), "lease_tx_execute")
                  && ok(lease_tx_commit(tx), "lease_tx_commit")
                  && ok(lease_db_query(db, "SELECT x FROM t", nullptr, 0, on_row, &seen), "lease_db_query")
                  && seen == text;
    lease_db_free(db);
    for (const char *suffix : {"", "-wal", "-shm", "-liblease"})
        unlink((path + suffix).c_str());
    return passed;
}

} // namespace

int main()
{
    LeaseStore *store = nullptr;
    LeaseLock *lock = nullptr;
    LeaseGuard *guard = nullptr;
    LeaseLockOptions options;
    bool passed = std::strcmp(lease_version(), LEASE_VERSION_STRING) == 0
                  && ok(lease_lock_options_init(&options, sizeof options), "lease_lock_options_init")
                  && ok(lease_store_open_memory(&store), "lease_store_open_memory")
                  && ok(lease_lock_new(store, "cxx", "c++", &options, &lock), "lease_lock_new")
                  && ok(lease_lock_set_lost_callback(lock, on_lost, nullptr, nullptr), "lease_lock_set_lost_callback")
                  && ok(lease_lock_acquire(lock, 1000, &guard), "lease_lock_acquire")
                  && lease_guard_is_dirty(guard) && ok(lease_guard_check(guard), "lease_guard_check");
    lease_guard_release(guard);
    lease_lock_free(lock);
    lease_store_free(store);
    passed = database_works() && passed;
    passed = ok(lease_shutdown(), "lease_shutdown") && passed;
    std::printf("C++ compatibility: %s (liblease %s)\n", passed ? "ok" : "FAILED", lease_version());
    return passed ? 0 : 1;
}
