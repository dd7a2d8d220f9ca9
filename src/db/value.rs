//! SQL values in and out: statement parameters and the columns of result rows.

/// One SQL value, borrowed. TEXT is UTF-8; a TEXT column that is not valid UTF-8 (written by
/// some other program) is delivered as `Blob`, its bytes unchanged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}
