//! Row callbacks (LeaseRowCallback) as Rust closures, with the header's promises about columns
//! checked on every row.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use lease::ffi::{
    LeaseRowCallback, LeaseValue, LEASE_VALUE_BLOB, LEASE_VALUE_INTEGER, LEASE_VALUE_NULL, LEASE_VALUE_REAL,
    LEASE_VALUE_TEXT,
};

use crate::contract::violation;

/// A column, copied out of the callback.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Null,
    Integer(i64),
    /// The bits, so that equality is bit-equality.
    Real(u64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

/// What a row callback does with each row: returns 0 for the next row, anything else to stop.
pub type OnRow<'a> = dyn FnMut(&[Column]) -> i32 + 'a;

/// The callback and context to pass for `on_row`; valid while `on_row` is.
pub fn callback(on_row: &mut &mut OnRow) -> (LeaseRowCallback, *mut c_void) {
    (Some(trampoline), std::ptr::from_mut(on_row).cast())
}

unsafe extern "C" fn trampoline(context: *mut c_void, columns: *const LeaseValue, n_columns: usize) -> i32 {
    // SAFETY: the context is the `&mut &mut OnRow` that `callback` made, alive during the query.
    let on_row = unsafe { &mut *context.cast::<&mut OnRow>() };
    let columns = match (n_columns, columns.is_null()) {
        (0, _) => &[][..],
        (_, true) => {
            violation(format!("a row callback got {n_columns} columns at NULL"));
            return 1;
        }
        // SAFETY: the header: columns points at n_columns values, valid during the callback.
        (_, false) => unsafe { std::slice::from_raw_parts(columns, n_columns) },
    };
    let row: Vec<Column> = columns.iter().enumerate().map(|(index, value)| copy(index, value)).collect();
    // A panic must not unwind into liblease: it is the harness's bug, reported as a violation.
    match catch_unwind(AssertUnwindSafe(|| on_row(&row))) {
        Ok(answer) => answer,
        Err(_) => {
            violation("the harness panicked in a row callback".into());
            1
        }
    }
}

/// Copies a column, checking it: a known kind, the fields of other kinds zero, TEXT and BLOB
/// data never NULL, TEXT valid UTF-8.
fn copy(index: usize, value: &LeaseValue) -> Column {
    let mut complain = |what: &str| violation(format!("column {index} ({value:?}): {what}"));
    let bytes = |complain: &mut dyn FnMut(&str)| -> Vec<u8> {
        if value.data.is_null() {
            complain("TEXT or BLOB data is NULL");
            return Vec::new();
        }
        // SAFETY: the header: data holds len bytes, valid during the callback.
        unsafe { std::slice::from_raw_parts(value.data, value.len) }.to_vec()
    };
    let no_integer = value.integer == 0;
    let no_real = value.real.to_bits() == 0;
    let no_bytes = value.data.is_null() && value.len == 0;
    let (column, others_zero) = match value.kind {
        LEASE_VALUE_NULL => (Column::Null, no_integer && no_real && no_bytes),
        LEASE_VALUE_INTEGER => (Column::Integer(value.integer), no_real && no_bytes),
        LEASE_VALUE_REAL => (Column::Real(value.real.to_bits()), no_integer && no_bytes),
        LEASE_VALUE_TEXT => {
            let text = bytes(&mut complain);
            if std::str::from_utf8(&text).is_err() {
                complain("TEXT that is not UTF-8 (it must arrive as a BLOB)");
            }
            (Column::Text(text), no_integer && no_real)
        }
        LEASE_VALUE_BLOB => (Column::Blob(bytes(&mut complain)), no_integer && no_real),
        _ => {
            complain("not a LEASE_VALUE_* kind");
            (Column::Null, true)
        }
    };
    if !others_zero {
        complain("the fields of other kinds are not zero");
    }
    column
}
