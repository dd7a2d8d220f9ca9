//! The C face of an observer: `LeaseObserver`.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::context::{LeaseDestroyCallback, OwnedContext};
use super::db::LeaseDb;
use super::handle::{self, Boxed, Castable, Out};
use super::panic::{catch_status, catch_value};
use super::status::LeaseStatus;
use crate::{Error, Observer};

/// An observer of a database file: its callback is called after commits to the file. Opaque;
/// made by lease_db_observe, freed by lease_observer_free.
pub struct LeaseObserver {
    _private: [u8; 0],
}

impl Castable for LeaseObserver {
    type Ownership = Boxed;
    type RustType = Observer;
}

/// Called on the library's thread ("liblease") after commits to an observed database file.
///
/// tables holds the names of the tables that changed (n_tables of them, each once, sorted;
/// valid only during the call), or is NULL with n_tables = 0 when they are not known, and
/// anything may have changed: a writer that does not use liblease committed, or a LeaseDb ran a
/// write that names no table (PRAGMA user_version, as a migration does). liblease's own tables
/// are never named, and a commit that changed only them (a lease's renewal) calls nobody.
/// context is the pointer given to lease_db_observe.
///
/// The callback may read the database (with its own LeaseDb: lease_db_query), but must not wait
/// for anything that needs the library's thread (lease_lock_acquire with a timeout), and should
/// return soon: other callbacks and the leases' renewals wait meanwhile.
pub type LeaseChangeCallback =
    Option<unsafe extern "C" fn(context: *mut c_void, tables: *const *const c_char, n_tables: usize)>;

/// Observes db's file: calls callback after every commit to it, by any connection of any
/// process (this one's LeaseDbs included, and writers that do not use liblease), once the commit
/// is visible to readers. Calls may be coalesced (one call for several commits, naming every
/// table they changed), never dropped: after the last commit there is always a call that comes
/// after it, even when this process was stopped or suspended meanwhile (the changes are recorded
/// in the database, in liblease_change, so a call that comes late names them all).
///
/// A commit is seen within about a millisecond on Linux and Android (through inotify); elsewhere
/// the library's thread looks every 50 ms. The library's thread starts if it is not running.
///
/// Writers record what they change only while some process observes the file (each observing
/// process says so on the database's -liblease board), so an unobserved file costs its writers
/// nothing; an observed one costs each write transaction a row of liblease_change. A transaction
/// that began before the first observer came, and commits after, is told with tables unknown.
///
/// On LEASE_OK, *out_observer is a new observer that the caller frees with
/// lease_observer_free, and context belongs to the library until destroy (if not NULL) is called
/// with it, exactly once, after the observer's last call (see LeaseDestroyCallback). On any other
/// status destroy is not called and context stays the caller's. db may be freed before the
/// observer: the observer goes on. Any thread.
///
/// Returns:
/// - LEASE_OK: *out_observer is set.
/// - LEASE_INVALID_ARGUMENT: db, callback or out_observer is NULL.
/// - LEASE_DATABASE: the observer's connection could not be opened, or db's file was deleted,
///   renamed or replaced since db was opened.
/// - LEASE_MISUSE: db was opened before fork() and this is the child, or the library's thread
///   could not be started.
#[no_mangle]
pub extern "C" fn lease_db_observe(
    db: *mut LeaseDb,
    callback: LeaseChangeCallback,
    context: *mut c_void,
    destroy: LeaseDestroyCallback,
    out_observer: *mut *mut LeaseObserver,
) -> LeaseStatus {
    catch_status("lease_db_observe", || {
        // SAFETY: the C contract: out_observer is NULL or writable; db is NULL or a live handle.
        let out = unsafe { Out::new(out_observer, "out_observer") }?;
        let db = unsafe { handle::borrow(db, "db") }?;
        let callback = callback.ok_or_else(|| Error::InvalidArgument("callback is NULL".into()))?;
        // Kept here too, so that a failure can give the context back without destroying it.
        let context = Arc::new(OwnedContext::new(context, destroy));
        let owned = context.clone();
        let observed = db.database().observe(Box::new(move |tables: Option<&[String]>| {
            // Table names come from SQLite's schema, which holds no NUL.
            let names: Vec<CString> = tables
                .unwrap_or_default()
                .iter()
                .map(|t| CString::new(t.as_str()).unwrap_or_default())
                .collect();
            let pointers: Vec<*const c_char> = names.iter().map(|name| name.as_ptr()).collect();
            let tables = if tables.is_some() { pointers.as_ptr() } else { std::ptr::null() };
            // SAFETY: the caller's callback, with its context, on the thread the contract names.
            unsafe { callback(owned.get(), tables, pointers.len()) }
        }));
        match observed {
            Ok(observer) => {
                out.set(observer);
                Ok(())
            }
            Err(e) => {
                // The callback (and its reference) is gone with the failure.
                if let Ok(context) = Arc::try_unwrap(context) {
                    context.give_back();
                }
                Err(e)
            }
        }
    })
}

/// Stops and frees an observer. When it returns, the callback is not running and will not be
/// called again, and destroy has run; the exception is a call from inside the observer's own
/// callback, which is allowed and returns at once (destroy then runs when the callback
/// returns). NULL is a no-op. In a forked child it frees the handle without calling the
/// parent's destroy. Any thread.
#[no_mangle]
pub extern "C" fn lease_observer_free(observer: *mut LeaseObserver) {
    catch_value("lease_observer_free", (), || {
        // SAFETY: the C contract: observer is NULL or a live observer that the caller gives up.
        drop(unsafe { handle::take(observer) });
        Ok(())
    })
}
