//! Pointers from C: handles, output slots and strings.
//!
//! A handle is an opaque struct that C only sees behind a pointer. [`Castable`] ties each handle
//! type to the Rust value it stands for and to how C owns it, and the functions here are the only
//! places that cast such a pointer. Freeing requires `Ownership = Boxed`, so a handle can only be
//! freed the way it was made. Every handle of liblease is boxed: the core's types are already
//! cheap, shared, thread-safe values, so an `Arc` around them would add nothing.

use std::ffi::{c_char, CStr};
use std::ptr::NonNull;

use crate::db::utf8;
use crate::{Error, Result};

/// An opaque handle type of the C face.
pub(crate) trait Castable {
    /// How C owns the handle: [`Boxed`].
    type Ownership;
    /// The value the handle points at.
    type RustType;
}

/// The handle was made by `Box::into_raw` and is C's to free, once, with its free function.
pub(crate) struct Boxed;

/// Gives `value` to C as a new handle.
pub(crate) fn into_handle<C: Castable<Ownership = Boxed>>(value: C::RustType) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// The value behind `handle`; `InvalidArgument` naming the argument `what` when it is NULL.
///
/// # Safety
/// `handle` is NULL or was made by [`into_handle`] and is not freed while the reference lives.
pub(crate) unsafe fn borrow<'a, C: Castable>(handle: *const C, what: &str) -> Result<&'a C::RustType> {
    // SAFETY: by the caller's promise, a non-NULL handle points at a live `C::RustType`.
    unsafe { handle.cast::<C::RustType>().as_ref() }.ok_or_else(|| null(what))
}

/// Takes a handle back from C to free it; `None` for NULL.
///
/// # Safety
/// `handle` is NULL or was made by [`into_handle`], is not freed yet, and C does not use it again.
pub(crate) unsafe fn take<C: Castable<Ownership = Boxed>>(handle: *mut C) -> Option<Box<C::RustType>> {
    // SAFETY: by the caller's promise, a non-NULL handle is a live box that C gives up.
    (!handle.is_null()).then(|| unsafe { Box::from_raw(handle.cast::<C::RustType>()) })
}

/// Where an export hands a new handle to C. Checked before the work, so that a NULL slot fails
/// without effects; written only by [`Out::set`], after the work succeeded.
pub(crate) struct Out<C> {
    slot: NonNull<*mut C>,
}

impl<C: Castable<Ownership = Boxed>> Out<C> {
    /// # Safety
    /// `slot` is NULL or valid for writing a pointer until [`Out::set`] is called.
    pub(crate) unsafe fn new(slot: *mut *mut C, what: &str) -> Result<Out<C>> {
        NonNull::new(slot).map(|slot| Out { slot }).ok_or_else(|| null(what))
    }

    pub(crate) fn set(self, value: C::RustType) {
        // SAFETY: `new`'s caller promised the slot is writable.
        unsafe { self.slot.as_ptr().write(into_handle(value)) }
    }
}

/// A string argument; `InvalidArgument` naming `what` when it is NULL or not UTF-8.
///
/// # Safety
/// `text` is NULL or points at a NUL-terminated string that outlives the returned `&str`.
pub(crate) unsafe fn str_arg<'a>(text: *const c_char, what: &str) -> Result<&'a str> {
    if text.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL, and NUL-terminated by the caller's promise.
    utf8(unsafe { CStr::from_ptr(text) }.to_bytes())
        .map_err(|e| Error::InvalidArgument(format!("{what} is not valid UTF-8 ({e})")))
}

fn null(what: &str) -> Error {
    Error::InvalidArgument(format!("{what} is NULL"))
}
