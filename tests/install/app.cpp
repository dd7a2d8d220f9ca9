// app.c's program in C++: the header's extern "C" and the library's handles owned by
// std::unique_ptr. Built by tests/install/run through the CMake package.
#include <lease.h>

#include <cstdio>
#include <memory>
#include <string>

namespace {

struct StoreFree {
    void operator()(LeaseStore *store) const { lease_store_free(store); }
};
struct LockFree {
    void operator()(LeaseLock *lock) const { lease_lock_free(lock); }
};
struct GuardRelease {
    void operator()(LeaseGuard *guard) const { lease_guard_release(guard); }
};

int fail(const char *what, LeaseStatus status)
{
    std::fprintf(stderr, "%s: %s: %s\n", what, lease_status_str(status), lease_last_error_message());
    return 1;
}

}  // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
        return 2;
    }
    if (std::string(lease_version()) != LEASE_VERSION_STRING) {
        std::fprintf(stderr, "loaded liblease %s, built against %s\n", lease_version(), LEASE_VERSION_STRING);
        return 1;
    }
    const std::string path = std::string(argv[1]) + "/app.db";
    LeaseStatus status;
    {
        LeaseStore *raw_store;
        if ((status = lease_store_open(path.c_str(), &raw_store)) != LEASE_OK) return fail("lease_store_open", status);
        std::unique_ptr<LeaseStore, StoreFree> store(raw_store);
        LeaseLock *raw_lock;
        if ((status = lease_lock_new(store.get(), "install", "app-cpp", nullptr, &raw_lock)) != LEASE_OK)
            return fail("lease_lock_new", status);
        std::unique_ptr<LeaseLock, LockFree> lock(raw_lock);
        LeaseGuard *raw_guard;
        if ((status = lease_lock_acquire(lock.get(), 5000, &raw_guard)) != LEASE_OK)
            return fail("lease_lock_acquire", status);
        std::unique_ptr<LeaseGuard, GuardRelease> guard(raw_guard);
    }
    if ((status = lease_shutdown()) != LEASE_OK) return fail("lease_shutdown", status);
    std::puts("OK");
    return 0;
}
