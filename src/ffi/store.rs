//! The C face of a store: `LeaseStore`.

use std::ffi::c_char;

use super::handle::{self, Boxed, Castable, Out};
use super::panic::{catch_status, catch_value};
use super::status::LeaseStatus;
use crate::Store;

/// A connection to a database file holding the lease table (or to a private in-memory
/// database). Opaque; made by lease_store_open or lease_store_open_memory, freed by
/// lease_store_free. Thread-safe.
pub struct LeaseStore {
    _private: [u8; 0],
}

impl Castable for LeaseStore {
    type Ownership = Boxed;
    type RustType = Store;
}

/// Opens the SQLite database file at path (creating it if needed), switches it to WAL mode, and
/// creates or migrates liblease's lease table in it. The file is normally the application's own
/// database, shared by its processes; the lease table sits beside the application's tables.
///
/// On LEASE_OK, *out_store is a new store that the caller frees with lease_store_free. Opening
/// starts no thread. Any thread.
///
/// Returns:
/// - LEASE_OK: *out_store is set.
/// - LEASE_INVALID_ARGUMENT: path or out_store is NULL, or path is empty or not UTF-8.
/// - LEASE_BUSY: another connection held the database's write lock for seconds while the
///   lease table was being created.
/// - LEASE_DATABASE: SQLite could not open the file, or it is not a database, or it cannot be
///   switched to WAL mode.
/// - LEASE_SUSPENDED: the process is suspended (lease_suspend) and opening would write: the file
///   is not in WAL mode yet, or its lease table must be created or migrated. Nothing was
///   written. A file that needs neither opens while suspended.
#[no_mangle]
pub extern "C" fn lease_store_open(path: *const c_char, out_store: *mut *mut LeaseStore) -> LeaseStatus {
    catch_status("lease_store_open", || {
        // SAFETY: the C contract: out_store is NULL or writable, path is NULL or a C string.
        let out = unsafe { Out::new(out_store, "out_store") }?;
        let path = unsafe { handle::str_arg(path, "path") }?;
        out.set(Store::open(path)?);
        Ok(())
    })
}

/// Opens a private in-memory store: nothing is shared with other processes or other stores.
/// For tests and single-process use.
///
/// On LEASE_OK, *out_store is a new store that the caller frees with lease_store_free. Any
/// thread.
///
/// Returns:
/// - LEASE_OK: *out_store is set.
/// - LEASE_INVALID_ARGUMENT: out_store is NULL.
///
/// A private store locks no file, so it opens while the process is suspended too.
#[no_mangle]
pub extern "C" fn lease_store_open_memory(out_store: *mut *mut LeaseStore) -> LeaseStatus {
    catch_status("lease_store_open_memory", || {
        // SAFETY: the C contract: out_store is NULL or writable.
        let out = unsafe { Out::new(out_store, "out_store") }?;
        out.set(Store::open_in_memory()?);
        Ok(())
    })
}

/// Frees a store. Locks made from it keep working: they keep the connection open until they are
/// freed too. NULL is a no-op. Any thread, but no other thread may be using this store handle.
#[no_mangle]
pub extern "C" fn lease_store_free(store: *mut LeaseStore) {
    catch_value("lease_store_free", (), || {
        // SAFETY: the C contract: store is NULL or a live store that the caller gives up.
        drop(unsafe { handle::take(store) });
        Ok(())
    })
}
