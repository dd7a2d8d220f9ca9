// Proves that lease.h is usable from C++: it compiles with -std=c++17 -Wall -Wextra -Werror
// -pedantic, and its functions link with C linkage (extern "C").
#include "lease.h"

#include <cstdio>
#include <cstring>

static_assert(LEASE_OK == 0 && LEASE_PANIC == 7, "status codes are stable");

namespace {

// A callback written in C++ for a C function pointer.
extern "C" void on_lost(void *context, const char *key)
{
    static_cast<void>(context);
    static_cast<void>(key);
}

bool ok(LeaseStatus status, const char *what)
{
    if (status != LEASE_OK)
        std::fprintf(stderr, "%s: %s: %s\n", what, lease_status_str(status), lease_last_error_message());
    return status == LEASE_OK;
}

} // namespace

int main()
{
    LeaseStore *store = nullptr;
    LeaseLock *lock = nullptr;
    LeaseGuard *guard = nullptr;
    LeaseLockOptions options = lease_lock_options_default();
    bool passed = std::strcmp(lease_version(), LEASE_VERSION_STRING) == 0
                  && ok(lease_store_open_memory(&store), "lease_store_open_memory")
                  && ok(lease_lock_new(store, "cxx", "c++", &options, &lock), "lease_lock_new")
                  && ok(lease_lock_set_lost_callback(lock, on_lost, nullptr), "lease_lock_set_lost_callback")
                  && ok(lease_lock_acquire(lock, 1000, &guard), "lease_lock_acquire")
                  && lease_guard_is_dirty(guard) && ok(lease_guard_check(guard), "lease_guard_check");
    lease_guard_release(guard);
    lease_lock_free(lock);
    lease_store_free(store);
    passed = ok(lease_shutdown(), "lease_shutdown") && passed;
    std::printf("C++ compatibility: %s (liblease %s)\n", passed ? "ok" : "FAILED", lease_version());
    return passed ? 0 : 1;
}
