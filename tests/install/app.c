/*
 * What a user's first program does with an installed liblease: opens a store in the directory it
 * is given, takes the lease "install" and releases it, and prints OK. Built by tests/install/run
 * through the CMake package and through pkg-config, against the shared and the static library.
 */
#include <lease.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what, LeaseStatus status)
{
    fprintf(stderr, "%s: %s: %s\n", what, lease_status_str(status), lease_last_error_message());
    return 1;
}

int main(int argc, char **argv)
{
    char path[4096];
    LeaseStore *store;
    LeaseLock *lock;
    LeaseGuard *guard;
    LeaseStatus status;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
        return 2;
    }
    if (strcmp(lease_version(), LEASE_VERSION_STRING) != 0) {
        fprintf(stderr, "loaded liblease %s, built against %s\n", lease_version(), LEASE_VERSION_STRING);
        return 1;
    }
    snprintf(path, sizeof path, "%s/app.db", argv[1]);
    if ((status = lease_store_open(path, &store)) != LEASE_OK)
        return fail("lease_store_open", status);
    if ((status = lease_lock_new(store, "install", "app", NULL, &lock)) != LEASE_OK)
        return fail("lease_lock_new", status);
    if ((status = lease_lock_acquire(lock, 5000, &guard)) != LEASE_OK)
        return fail("lease_lock_acquire", status);
    lease_guard_release(guard);
    lease_lock_free(lock);
    lease_store_free(store);
    if ((status = lease_shutdown()) != LEASE_OK)
        return fail("lease_shutdown", status);
    puts("OK");
    return 0;
}
