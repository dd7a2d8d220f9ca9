//! liblease's SQLite VFS: the system's own (SQLite's default VFS, "unix"), with the WAL index's
//! shared memory guarded against truncation.
//!
//! SQLite maps each WAL database's `-shm` file into every process that uses it. Should another
//! program truncate that file, the next access to the mapping raises SIGBUS, which SQLite does
//! not survive. Every connection liblease opens uses this VFS, which forwards every call to the
//! default VFS, and registers each region that `xShmMap` maps with [`sigbus`](crate::sigbus).
//! Once a region is broken (its file was truncated under it), the file's connections take no
//! more WAL-index locks: SQLite then fails what it was doing with an I/O error, rather than
//! read or write the database through a wrong index, and the application reopens the database
//! (the next process that opens it rebuilds the index from the WAL, which holds every commit).
//! Unlocking is always let through, so that no lock of the broken connection outlives it.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Mutex, OnceLock};

use rusqlite::ffi::{self, sqlite3_file, sqlite3_int64, sqlite3_io_methods, sqlite3_vfs};

use crate::sigbus::Region;
use crate::sync::MutexExt;

/// The name liblease's connections open their files with.
pub(crate) const NAME: &CStr = c"liblease";

/// Registers the VFS (once) and returns its name; `Err` with SQLite's code when it cannot be.
pub(crate) fn name() -> Result<&'static str, c_int> {
    static REGISTERED: OnceLock<Result<(), c_int>> = OnceLock::new();
    (*REGISTERED.get_or_init(register)).map(|()| NAME.to_str().expect("the name is ASCII"))
}

/// Wraps the default VFS. The struct lives for the rest of the process, as SQLite requires.
fn register() -> Result<(), c_int> {
    // SAFETY: sqlite3_vfs_find with NULL returns the default VFS (or NULL), which SQLite keeps
    // for the process's life.
    let real = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
    if real.is_null() {
        return Err(ffi::SQLITE_ERROR);
    }
    // SAFETY: `real` is a registered VFS.
    let real_size = unsafe { (*real).szOsFile };
    let vfs = Box::leak(Box::new(sqlite3_vfs {
        iVersion: 2,
        szOsFile: (HEADER as c_int) + real_size,
        // SAFETY: as above.
        mxPathname: unsafe { (*real).mxPathname },
        pNext: std::ptr::null_mut(),
        zName: NAME.as_ptr(),
        pAppData: real.cast(),
        xOpen: Some(open),
        xDelete: Some(delete),
        xAccess: Some(access),
        xFullPathname: Some(full_pathname),
        xDlOpen: Some(dl_open),
        xDlError: Some(dl_error),
        xDlSym: Some(dl_sym),
        xDlClose: Some(dl_close),
        xRandomness: Some(randomness),
        xSleep: Some(sleep),
        xCurrentTime: Some(current_time),
        xGetLastError: Some(get_last_error),
        xCurrentTimeInt64: Some(current_time_int64),
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    }));
    // SAFETY: registers a VFS that lives for the rest of the process, not as the default.
    match unsafe { ffi::sqlite3_vfs_register(vfs, 0) } {
        ffi::SQLITE_OK => Ok(()),
        rc => Err(rc),
    }
}

/// The wrapped VFS, kept in our VFS's `pAppData`.
///
/// # Safety
/// `vfs` is liblease's VFS.
unsafe fn real(vfs: *mut sqlite3_vfs) -> *mut sqlite3_vfs {
    // SAFETY: by the caller's promise.
    unsafe { (*vfs).pAppData.cast() }
}

/// What a file of this VFS is: SQLite allocates `szOsFile` bytes, and this struct comes first,
/// the wrapped VFS's file right after it.
#[repr(C)]
struct GuardedFile {
    base: sqlite3_file,
    real: *mut sqlite3_file,
    /// The regions of the WAL index mapped through this file; made in `open`, freed in `close`.
    shm: *mut Mutex<Vec<Region>>,
}

/// Where the wrapped file begins: after the header, on an 8-byte boundary.
const HEADER: usize = size_of::<GuardedFile>().next_multiple_of(8);

/// # Safety
/// `file` is a file of this VFS, opened by `open`.
unsafe fn parts<'a>(file: *mut sqlite3_file) -> (*mut sqlite3_file, &'a sqlite3_io_methods) {
    // SAFETY: by the caller's promise, `real` is open, so its methods are set.
    unsafe {
        let real = (*file.cast::<GuardedFile>()).real;
        (real, &*(*real).pMethods)
    }
}

unsafe extern "C" fn open(
    vfs: *mut sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite gives `szOsFile` writable bytes at `file`, aligned for any of its structs.
    unsafe {
        let guarded = file.cast::<GuardedFile>();
        let real_file = file.cast::<u8>().add(HEADER).cast::<sqlite3_file>();
        (*guarded).base.pMethods = std::ptr::null();
        (*guarded).real = real_file;
        (*guarded).shm = std::ptr::null_mut();
        let real_vfs = real(vfs);
        let Some(real_open) = (*real_vfs).xOpen else { return ffi::SQLITE_ERROR };
        let rc = real_open(real_vfs, name, real_file, flags, out_flags);
        // SQLite calls xClose whenever xOpen set the methods, even when it failed.
        if !(*real_file).pMethods.is_null() {
            (*guarded).shm = Box::into_raw(Box::default());
            (*guarded).base.pMethods = &METHODS;
        }
        rc
    }
}

macro_rules! forward_vfs {
    ($($name:ident => $method:ident ($($arg:ident: $type:ty),*) -> $ret:ty, $missing:expr;)+) => {
        $(
            unsafe extern "C" fn $name(vfs: *mut sqlite3_vfs $(, $arg: $type)*) -> $ret {
                // SAFETY: forwards SQLite's call, unchanged, to the wrapped VFS.
                unsafe {
                    let real = real(vfs);
                    match (*real).$method {
                        Some(method) => method(real $(, $arg)*),
                        None => $missing,
                    }
                }
            }
        )+
    };
}

forward_vfs! {
    delete => xDelete(name: *const c_char, sync_dir: c_int) -> c_int, ffi::SQLITE_IOERR_DELETE;
    access => xAccess(name: *const c_char, flags: c_int, out: *mut c_int) -> c_int, ffi::SQLITE_IOERR_ACCESS;
    full_pathname => xFullPathname(name: *const c_char, n_out: c_int, out: *mut c_char) -> c_int, ffi::SQLITE_ERROR;
    dl_open => xDlOpen(name: *const c_char) -> *mut c_void, std::ptr::null_mut();
    dl_error => xDlError(n: c_int, message: *mut c_char) -> (), ();
    dl_close => xDlClose(handle: *mut c_void) -> (), ();
    randomness => xRandomness(n: c_int, out: *mut c_char) -> c_int, 0;
    sleep => xSleep(microseconds: c_int) -> c_int, 0;
    current_time => xCurrentTime(out: *mut f64) -> c_int, ffi::SQLITE_ERROR;
    get_last_error => xGetLastError(n: c_int, out: *mut c_char) -> c_int, 0;
    current_time_int64 => xCurrentTimeInt64(out: *mut sqlite3_int64) -> c_int, ffi::SQLITE_ERROR;
}

type DlSym = Option<unsafe extern "C" fn(*mut sqlite3_vfs, *mut c_void, *const c_char)>;

unsafe extern "C" fn dl_sym(vfs: *mut sqlite3_vfs, handle: *mut c_void, symbol: *const c_char) -> DlSym {
    // SAFETY: forwards SQLite's call to the wrapped VFS.
    unsafe {
        let real = real(vfs);
        (*real).xDlSym.and_then(|method| method(real, handle, symbol))
    }
}

/// Forwarders of file methods. Each names the version of `sqlite3_io_methods` that has the
/// method: a wrapped file whose methods are older has no such field to read.
macro_rules! forward_file {
    ($($name:ident => $method:ident [$version:literal] ($($arg:ident: $type:ty),*) -> $ret:ty, $missing:expr;)+) => {
        $(
            unsafe extern "C" fn $name(file: *mut sqlite3_file $(, $arg: $type)*) -> $ret {
                // SAFETY: forwards SQLite's call, unchanged, to the wrapped file.
                unsafe {
                    let (real, methods) = parts(file);
                    match methods.$method.filter(|_| methods.iVersion >= $version) {
                        Some(method) => method(real $(, $arg)*),
                        None => $missing,
                    }
                }
            }
        )+
    };
}

forward_file! {
    read => xRead[1](buffer: *mut c_void, amount: c_int, offset: sqlite3_int64) -> c_int, ffi::SQLITE_IOERR_READ;
    write => xWrite[1](buffer: *const c_void, amount: c_int, offset: sqlite3_int64) -> c_int, ffi::SQLITE_IOERR_WRITE;
    truncate => xTruncate[1](size: sqlite3_int64) -> c_int, ffi::SQLITE_IOERR_TRUNCATE;
    sync => xSync[1](flags: c_int) -> c_int, ffi::SQLITE_IOERR_FSYNC;
    file_size => xFileSize[1](size: *mut sqlite3_int64) -> c_int, ffi::SQLITE_IOERR_FSTAT;
    lock => xLock[1](level: c_int) -> c_int, ffi::SQLITE_IOERR_LOCK;
    unlock => xUnlock[1](level: c_int) -> c_int, ffi::SQLITE_IOERR_UNLOCK;
    check_reserved_lock => xCheckReservedLock[1](out: *mut c_int) -> c_int, ffi::SQLITE_IOERR_CHECKRESERVEDLOCK;
    file_control => xFileControl[1](op: c_int, arg: *mut c_void) -> c_int, ffi::SQLITE_NOTFOUND;
    sector_size => xSectorSize[1]() -> c_int, 4096;
    device_characteristics => xDeviceCharacteristics[1]() -> c_int, 0;
    shm_barrier => xShmBarrier[2]() -> (), ();
    fetch => xFetch[3](offset: sqlite3_int64, amount: c_int, out: *mut *mut c_void) -> c_int, {
        *out = std::ptr::null_mut();
        ffi::SQLITE_OK
    };
    unfetch => xUnfetch[3](offset: sqlite3_int64, page: *mut c_void) -> c_int, ffi::SQLITE_OK;
}

unsafe extern "C" fn close(file: *mut sqlite3_file) -> c_int {
    // SAFETY: SQLite closes a file that `open` set up, once.
    unsafe {
        let guarded = file.cast::<GuardedFile>();
        // Unguarded before the wrapped file unmaps anything, as in `shm_unmap`.
        drop(Box::from_raw((*guarded).shm));
        (*guarded).shm = std::ptr::null_mut();
        let (real, methods) = parts(file);
        let rc = methods.xClose.map_or(ffi::SQLITE_OK, |close| close(real));
        (*guarded).base.pMethods = std::ptr::null();
        rc
    }
}

/// The regions mapped through `file`.
///
/// # Safety
/// `file` is a file of this VFS, opened by `open`.
unsafe fn regions<'a>(file: *mut sqlite3_file) -> &'a Mutex<Vec<Region>> {
    // SAFETY: set in `open` and freed only in `close`.
    unsafe { &*(*file.cast::<GuardedFile>()).shm }
}

/// True once a region of `file`'s WAL index was truncated under it.
///
/// # Safety
/// As for [`regions`].
unsafe fn is_broken(file: *mut sqlite3_file) -> bool {
    // SAFETY: by the caller's promise.
    unsafe { regions(file) }.locked().iter().any(Region::is_broken)
}

unsafe extern "C" fn shm_map(
    file: *mut sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: forwards SQLite's call to the wrapped file, then records what it mapped.
    unsafe {
        if is_broken(file) {
            return ffi::SQLITE_IOERR_SHMMAP;
        }
        let (real, methods) = parts(file);
        let Some(map) = methods.xShmMap.filter(|_| methods.iVersion >= 2) else {
            return ffi::SQLITE_IOERR_SHMMAP;
        };
        let rc = map(real, region, size, extend, out);
        let address = *out;
        if rc == ffi::SQLITE_OK && !address.is_null() {
            let mut mapped = regions(file).locked();
            if !mapped.iter().any(|known| known.start() == address as usize) {
                if let Some(guarded) = Region::guard(address.cast(), size as usize) {
                    let broken = guarded.is_broken();
                    mapped.push(guarded);
                    if broken {
                        return ffi::SQLITE_IOERR_SHMMAP;
                    }
                }
            }
        }
        rc
    }
}

unsafe extern "C" fn shm_lock(file: *mut sqlite3_file, offset: c_int, n: c_int, flags: c_int) -> c_int {
    // SAFETY: forwards SQLite's call to the wrapped file.
    unsafe {
        if flags & ffi::SQLITE_SHM_UNLOCK == 0 && is_broken(file) {
            return ffi::SQLITE_IOERR_SHMLOCK;
        }
        let (real, methods) = parts(file);
        let lock = methods.xShmLock.filter(|_| methods.iVersion >= 2);
        lock.map_or(ffi::SQLITE_IOERR_SHMLOCK, |lock| lock(real, offset, n, flags))
    }
}

unsafe extern "C" fn shm_unmap(file: *mut sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: forwards SQLite's call to the wrapped file, once the regions are unguarded: once
    // unmapped, their addresses may be mapped again by someone else.
    unsafe {
        regions(file).locked().clear();
        let (real, methods) = parts(file);
        let unmap = methods.xShmUnmap.filter(|_| methods.iVersion >= 2);
        unmap.map_or(ffi::SQLITE_OK, |unmap| unmap(real, delete))
    }
}

static METHODS: sqlite3_io_methods = sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};
