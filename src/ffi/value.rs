//! SQL statements across the boundary: the SQL and its `LeaseValue` parameters in, changes and
//! rows out through a `LeaseRowCallback`. Shared by the database (`db`) and the transaction
//! (`tx`) faces.

use std::ffi::{c_char, c_void};

use super::handle;
use crate::db::utf8;
use crate::{Error, Result, Value};

/// A NULL value (LeaseValue.kind).
pub const LEASE_VALUE_NULL: u32 = 0;
/// A 64-bit signed integer, in LeaseValue.integer.
pub const LEASE_VALUE_INTEGER: u32 = 1;
/// A double, in LeaseValue.real. SQLite stores a NaN as NULL.
pub const LEASE_VALUE_REAL: u32 = 2;
/// UTF-8 text: len bytes at LeaseValue.data, not NUL-terminated, possibly holding NUL bytes.
pub const LEASE_VALUE_TEXT: u32 = 3;
/// Bytes: len bytes at LeaseValue.data.
pub const LEASE_VALUE_BLOB: u32 = 4;

/// One SQL value: a statement's parameter, or a column of a result row.
///
/// kind is one of the LEASE_VALUE_* constants and says which other field holds the value;
/// the others are ignored in parameters and zero in columns.
///
/// As a parameter: data may be NULL only when len is 0 (an empty TEXT or BLOB, which is not
/// SQL NULL). TEXT must be valid UTF-8. The bytes need only stay valid for the call: liblease
/// is done with them when it returns.
///
/// As a column (see LeaseRowCallback): TEXT and BLOB data is never NULL, even when len is 0,
/// and stays valid only during the callback. A TEXT column that is not valid UTF-8 (written by
/// another program) arrives as a BLOB with its bytes unchanged.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LeaseValue {
    /// LEASE_VALUE_NULL, LEASE_VALUE_INTEGER, LEASE_VALUE_REAL, LEASE_VALUE_TEXT or
    /// LEASE_VALUE_BLOB.
    pub kind: u32,
    /// The value of an INTEGER.
    pub integer: i64,
    /// The value of a REAL.
    pub real: f64,
    /// The bytes of a TEXT (UTF-8, not necessarily NUL-terminated) or a BLOB.
    pub data: *const u8,
    /// How many bytes are at data.
    pub len: usize,
}

/// Called once per result row, on the thread that called lease_db_query or lease_tx_query,
/// before that call returns.
///
/// columns points at n_columns values, one per result column in order; they, and every data
/// pointer in them, are valid only until the callback returns: copy what you keep. context is
/// the pointer given with the callback. Return 0 for the next row, anything else to stop: the
/// query then ends early and returns LEASE_OK.
///
/// The callback may call liblease, except on the handle whose query is calling it: the same
/// LeaseDb's lease_db_query, or any function of the same LeaseTx, returns LEASE_MISUSE there,
/// and freeing that handle there is not allowed.
pub type LeaseRowCallback =
    Option<unsafe extern "C" fn(context: *mut c_void, columns: *const LeaseValue, n_columns: usize) -> i32>;

/// The body of lease_db_execute and lease_tx_execute once the handle is checked: checks sql and
/// the parameters, runs the statement with `run`, and on success writes how many rows it changed
/// to `out_changes` unless that is NULL.
///
/// # Safety
/// `sql` is NULL or a C string; `params` is as for [`params`]; `out_changes` is NULL or writable.
pub(crate) unsafe fn execute(
    sql: *const c_char,
    params: *const LeaseValue,
    n_params: usize,
    out_changes: *mut u64,
    run: impl FnOnce(&str, &[Value]) -> Result<u64>,
) -> Result<()> {
    // SAFETY: by the caller's promise.
    let sql = unsafe { handle::str_arg(sql, "sql") }?;
    let mut inline = [Value::Null; INLINE_PARAMS];
    let params = unsafe { self::params(params, n_params, &mut inline) }?;
    let changes = run(sql, &params)?;
    if let Some(out) = unsafe { out_changes.as_mut() } {
        *out = changes;
    }
    Ok(())
}

/// The body of lease_db_query and lease_tx_query once the handle is checked: checks sql, the
/// parameters and on_row, then runs the statement with `run`, which hands each row to the sink.
///
/// # Safety
/// `sql` is NULL or a C string; `params` is as for [`params`].
pub(crate) unsafe fn query(
    sql: *const c_char,
    params: *const LeaseValue,
    n_params: usize,
    on_row: LeaseRowCallback,
    context: *mut c_void,
    run: impl FnOnce(&str, &[Value], &mut RowSink) -> Result<()>,
) -> Result<()> {
    // SAFETY: by the caller's promise.
    let sql = unsafe { handle::str_arg(sql, "sql") }?;
    let mut inline = [Value::Null; INLINE_PARAMS];
    let params = unsafe { self::params(params, n_params, &mut inline) }?;
    let mut sink = RowSink::new(on_row, context)?;
    run(sql, &params, &mut sink)
}

/// How many parameters [`params`] converts into the caller's storage, without an allocation.
const INLINE_PARAMS: usize = 8;

/// A statement's parameters, converted: into the caller's storage on the stack when they are
/// few, as they usually are (a bulk insert converts them for every row).
pub(crate) enum Params<'s, 'a> {
    Inline(&'s [Value<'a>]),
    Allocated(Vec<Value<'a>>),
}

impl<'a> std::ops::Deref for Params<'_, 'a> {
    type Target = [Value<'a>];

    fn deref(&self) -> &[Value<'a>] {
        match self {
            Params::Inline(values) => values,
            Params::Allocated(values) => values,
        }
    }
}

/// The parameters of a statement, converted into `inline` when they fit; `InvalidArgument`
/// naming the bad one.
///
/// # Safety
/// When `count` is above zero, `params` is NULL or points at `count` values whose data pointers
/// are NULL or valid for their `len` bytes, for as long as the returned values live.
pub(crate) unsafe fn params<'s, 'a>(
    params: *const LeaseValue,
    count: usize,
    inline: &'s mut [Value<'a>; INLINE_PARAMS],
) -> Result<Params<'s, 'a>> {
    if count == 0 {
        return Ok(Params::Inline(&[]));
    }
    if params.is_null() {
        return Err(Error::InvalidArgument(format!("params is NULL but n_params is {count}")));
    }
    if count > isize::MAX as usize / size_of::<LeaseValue>() {
        return Err(Error::InvalidArgument(format!("n_params is {count}, more than can be in memory")));
    }
    // SAFETY: non-NULL, with `count` values by the caller's promise, and not too many to address.
    let params = unsafe { std::slice::from_raw_parts(params, count) };
    // SAFETY: each value's data is valid for its len, by the caller's promise.
    let converted = params.iter().enumerate().map(|(index, param)| unsafe { param_value(param, index) });
    if count > INLINE_PARAMS {
        return converted.collect::<Result<Vec<_>>>().map(Params::Allocated);
    }
    for (slot, value) in inline.iter_mut().zip(converted) {
        *slot = value?;
    }
    Ok(Params::Inline(&inline[..count]))
}

/// # Safety
/// `param.data` is NULL or valid for `param.len` bytes for `'a`.
unsafe fn param_value<'a>(param: &LeaseValue, index: usize) -> Result<Value<'a>> {
    let bytes = || -> Result<&'a [u8]> {
        if param.len > isize::MAX as usize {
            return Err(Error::InvalidArgument(format!("params[{index}].len is {}, too long", param.len)));
        }
        match (param.data.is_null(), param.len) {
            (true, 0) => Ok(&[]),
            (true, len) => {
                Err(Error::InvalidArgument(format!("params[{index}].data is NULL but its len is {len}")))
            }
            // SAFETY: non-NULL and valid for len bytes by the caller's promise.
            (false, len) => Ok(unsafe { std::slice::from_raw_parts(param.data, len) }),
        }
    };
    Ok(match param.kind {
        LEASE_VALUE_NULL => Value::Null,
        LEASE_VALUE_INTEGER => Value::Integer(param.integer),
        LEASE_VALUE_REAL => Value::Real(param.real),
        LEASE_VALUE_TEXT => Value::Text(utf8(bytes()?).map_err(|e| {
            Error::InvalidArgument(format!("params[{index}] is TEXT but not valid UTF-8 ({e})"))
        })?),
        LEASE_VALUE_BLOB => Value::Blob(bytes()?),
        kind => {
            return Err(Error::InvalidArgument(format!(
                "params[{index}].kind is {kind}, not one of LEASE_VALUE_NULL..LEASE_VALUE_BLOB"
            )))
        }
    })
}

/// A row callback from C, with its context, as the core's row handler wants it.
pub(crate) struct RowSink {
    callback: unsafe extern "C" fn(*mut c_void, *const LeaseValue, usize) -> i32,
    context: *mut c_void,
    /// The row as C sees it; reused from row to row.
    columns: Vec<LeaseValue>,
}

impl RowSink {
    /// `InvalidArgument` when `callback` is NULL.
    pub(crate) fn new(callback: LeaseRowCallback, context: *mut c_void) -> Result<RowSink> {
        let callback = callback.ok_or_else(|| Error::InvalidArgument("on_row is NULL".into()))?;
        Ok(RowSink { callback, context, columns: Vec::new() })
    }

    /// Hands one row to the callback; returns whether the query should go on.
    pub(crate) fn deliver(&mut self, row: &[Value]) -> bool {
        self.columns.clear();
        self.columns.extend(row.iter().map(column));
        // SAFETY: the caller's callback with its context, on the calling thread, as documented;
        // the columns point into `row`, which outlives the call.
        unsafe { (self.callback)(self.context, self.columns.as_ptr(), self.columns.len()) == 0 }
    }
}

fn column(value: &Value) -> LeaseValue {
    let empty = LeaseValue { kind: LEASE_VALUE_NULL, integer: 0, real: 0.0, data: std::ptr::null(), len: 0 };
    // An empty slice's pointer may dangle; C gets a real (empty) place instead.
    let bytes = |bytes: &[u8]| if bytes.is_empty() { c"".as_ptr().cast() } else { bytes.as_ptr() };
    match *value {
        Value::Null => empty,
        Value::Integer(integer) => LeaseValue { kind: LEASE_VALUE_INTEGER, integer, ..empty },
        Value::Real(real) => LeaseValue { kind: LEASE_VALUE_REAL, real, ..empty },
        Value::Text(text) => {
            LeaseValue { kind: LEASE_VALUE_TEXT, data: bytes(text.as_bytes()), len: text.len(), ..empty }
        }
        Value::Blob(blob) => {
            LeaseValue { kind: LEASE_VALUE_BLOB, data: bytes(blob), len: blob.len(), ..empty }
        }
    }
}
