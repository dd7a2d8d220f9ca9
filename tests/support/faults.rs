//! Faults injected under SQLite, the way SQLite's own tests do it: a VFS of the test's, made the
//! default one before liblease opens anything (liblease's own VFS wraps whatever the default is
//! when it first connects), that fails reads, writes or syncs of chosen files on demand.
//!
//! It is SQLite's default VFS with three of its file methods wrapped: every file opened through
//! it keeps the default VFS's own file and methods, except that its methods table is a copy in
//! which `xRead`, `xWrite` and `xSync` first look at the faults set here. A fault names the files
//! it hits by a part of their path (`"job.db-wal"`, `"job.db"` for the file and its -wal and
//! -shm), so that it hits only the files of the test that set it; the tests that set faults still
//! run one at a time ([`serial`]).

use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::sync::{Mutex, MutexGuard, Once, OnceLock};

use rusqlite::ffi::{self, sqlite3_file, sqlite3_int64, sqlite3_io_methods, sqlite3_vfs};

/// What a fault does to the calls it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Writes fail as on a full disk (SQLITE_FULL, which SQLite reports for ENOSPC).
    DiskFull,
    /// Reads fail with an I/O error.
    ReadError,
    /// Writes fail with an I/O error.
    WriteError,
    /// Syncs (fsync) fail with an I/O error.
    SyncError,
}

#[derive(Default)]
struct Faults {
    /// The fault, and a part of the paths it hits.
    active: Option<(Fault, String)>,
    /// How many calls the fault has failed.
    hits: usize,
}

static FAULTS: Mutex<Faults> = Mutex::new(Faults { active: None, hits: 0 });
/// The paths of the files open through the VFS, by their file pointer.
static NAMES: OnceLock<Mutex<HashMap<usize, String>>> = OnceLock::new();
/// The default VFS's methods tables (it has one per kind of file), each with its copy in which
/// some methods are wrapped, leaked: SQLite keeps pointing at them while files are open.
type Table = &'static sqlite3_io_methods;
static TABLES: Mutex<Vec<(Table, Table)>> = Mutex::new(Vec::new());

/// Makes the faulty VFS the default, once per process, before liblease opens anything.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: the default VFS lives for the process's life; the copy is leaked, as SQLite
        // requires of a registered VFS, and registered as the default.
        unsafe {
            let real = ffi::sqlite3_vfs_find(std::ptr::null());
            assert!(!real.is_null(), "SQLite has a default VFS");
            let mut faulty: sqlite3_vfs = *real;
            faulty.zName = c"lease-test-faults".as_ptr();
            faulty.pNext = std::ptr::null_mut();
            REAL_OPEN.set((*real).xOpen.expect("the default VFS opens files")).unwrap();
            faulty.xOpen = Some(open);
            assert_eq!(ffi::sqlite3_vfs_register(Box::leak(Box::new(faulty)), 1), ffi::SQLITE_OK);
        }
    });
}

static REAL_OPEN: OnceLock<
    unsafe extern "C" fn(
        *mut sqlite3_vfs,
        ffi::sqlite3_filename,
        *mut sqlite3_file,
        c_int,
        *mut c_int,
    ) -> c_int,
> = OnceLock::new();

/// Runs the tests that set faults one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sets `fault` on the files whose path contains `part`, until [`clear`] (or the returned value
/// is dropped).
pub fn set(fault: Fault, part: &str) -> Active {
    let mut faults = FAULTS.lock().unwrap();
    faults.active = Some((fault, part.to_owned()));
    faults.hits = 0;
    Active
}

/// Clears the fault; returns how many calls it failed.
pub fn clear() -> usize {
    let mut faults = FAULTS.lock().unwrap();
    faults.active = None;
    faults.hits
}

/// A fault that is set; dropping it clears it.
#[must_use = "dropping it clears the fault"]
pub struct Active;

impl Drop for Active {
    fn drop(&mut self) {
        clear();
    }
}

/// The error `file`'s call of `kind` must fail with now, if any.
fn fault_for(file: *mut sqlite3_file, kind: Fault) -> Option<c_int> {
    let mut faults = FAULTS.lock().unwrap();
    let (fault, part) = faults.active.as_ref()?;
    let hits = match (fault, kind) {
        (Fault::DiskFull, Fault::WriteError) => Some(ffi::SQLITE_FULL),
        (Fault::WriteError, Fault::WriteError) => Some(ffi::SQLITE_IOERR_WRITE),
        (Fault::ReadError, Fault::ReadError) => Some(ffi::SQLITE_IOERR_READ),
        (Fault::SyncError, Fault::SyncError) => Some(ffi::SQLITE_IOERR_FSYNC),
        _ => None,
    }?;
    let names = NAMES.get()?.lock().unwrap();
    let name = names.get(&(file as usize))?;
    if !name.contains(part.as_str()) {
        return None;
    }
    faults.hits += 1;
    Some(hits)
}

/// The default VFS's methods of `file`, whose methods are a wrapped copy.
///
/// # Safety
/// `file` was opened through [`open`].
unsafe fn real_methods(file: *mut sqlite3_file) -> Table {
    // SAFETY: by the caller's promise, the file's methods are one of the copies.
    let wrapped = unsafe { (*file).pMethods };
    let tables = TABLES.lock().unwrap();
    tables.iter().find(|(_, copy)| std::ptr::eq(*copy, wrapped)).expect("a wrapped table").0
}

unsafe extern "C" fn open(
    vfs: *mut sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: the default VFS's open on the memory SQLite gave; its methods are then swapped for
    // the copy, which calls them.
    unsafe {
        let rc = REAL_OPEN.get().unwrap()(vfs, name, file, flags, out_flags);
        if (*file).pMethods.is_null() {
            return rc;
        }
        let real: Table = &*(*file).pMethods;
        let mut tables = TABLES.lock().unwrap();
        let wrapped = match tables.iter().find(|(known, _)| std::ptr::eq(*known, real)) {
            Some((_, wrapped)) => *wrapped,
            None => {
                let mut wrapped = *real;
                wrapped.xRead = Some(read);
                wrapped.xWrite = Some(write);
                wrapped.xSync = Some(sync);
                wrapped.xClose = Some(close);
                let wrapped: Table = Box::leak(Box::new(wrapped));
                tables.push((real, wrapped));
                wrapped
            }
        };
        drop(tables);
        let path =
            if name.is_null() { String::new() } else { CStr::from_ptr(name).to_string_lossy().into_owned() };
        NAMES.get_or_init(Mutex::default).lock().unwrap().insert(file as usize, path);
        (*file).pMethods = wrapped;
        rc
    }
}

unsafe extern "C" fn read(
    file: *mut sqlite3_file,
    buffer: *mut c_void,
    amount: c_int,
    offset: sqlite3_int64,
) -> c_int {
    if let Some(rc) = fault_for(file, Fault::ReadError) {
        return rc;
    }
    // SAFETY: the default VFS's own method, on its own file.
    unsafe { real_methods(file).xRead.unwrap()(file, buffer, amount, offset) }
}

unsafe extern "C" fn write(
    file: *mut sqlite3_file,
    buffer: *const c_void,
    amount: c_int,
    offset: sqlite3_int64,
) -> c_int {
    if let Some(rc) = fault_for(file, Fault::WriteError) {
        return rc;
    }
    // SAFETY: as above.
    unsafe { real_methods(file).xWrite.unwrap()(file, buffer, amount, offset) }
}

unsafe extern "C" fn sync(file: *mut sqlite3_file, flags: c_int) -> c_int {
    if let Some(rc) = fault_for(file, Fault::SyncError) {
        return rc;
    }
    // SAFETY: as above.
    unsafe { real_methods(file).xSync.unwrap()(file, flags) }
}

unsafe extern "C" fn close(file: *mut sqlite3_file) -> c_int {
    NAMES.get_or_init(Mutex::default).lock().unwrap().remove(&(file as usize));
    // SAFETY: as above.
    unsafe { real_methods(file).xClose.unwrap()(file) }
}
