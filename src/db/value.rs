//! SQL values in and out: statement parameters and the columns of result rows.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection, Statement};

use crate::error::{Error, Result};

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

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(i),
            Value::Real(r) => ValueRef::Real(r),
            Value::Text(text) => ValueRef::Text(text.as_bytes()),
            Value::Blob(blob) => ValueRef::Blob(blob),
        }))
    }
}

impl<'a> From<ValueRef<'a>> for Value<'a> {
    fn from(value: ValueRef<'a>) -> Self {
        match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(bytes) => std::str::from_utf8(bytes).map_or(Value::Blob(bytes), Value::Text),
            ValueRef::Blob(blob) => Value::Blob(blob),
        }
    }
}

/// Prepares `sql` (exactly one statement) and binds `params` to its `?` placeholders in order.
pub(crate) fn prepare<'c>(
    connection: &'c Connection,
    sql: &str,
    params: &[Value],
) -> Result<CachedStatement<'c>> {
    let mut statement = connection.prepare_cached(sql).map_err(|e| match e {
        rusqlite::Error::MultipleStatement => {
            Error::InvalidArgument("the SQL holds more than one statement; pass one at a time".into())
        }
        other => other.into(),
    })?;
    // SQLite compiles empty SQL (or only a comment) to no statement at all, which reads as
    // read-only without columns or parameters, and alone has no SQL to expand.
    let maybe_empty =
        statement.readonly() && statement.column_count() == 0 && statement.parameter_count() == 0;
    if maybe_empty && statement.expanded_sql().is_none() {
        return Err(Error::InvalidArgument("the SQL holds no statement".into()));
    }
    if statement.parameter_count() != params.len() {
        return Err(Error::InvalidArgument(format!(
            "the statement has {} parameter(s) but {} value(s) were given",
            statement.parameter_count(),
            params.len()
        )));
    }
    for (index, value) in params.iter().enumerate() {
        statement.raw_bind_parameter(index + 1, value)?;
    }
    Ok(statement)
}

/// Runs a prepared statement to its end, ignoring its rows, and returns the number of rows it
/// inserted, updated or deleted: 0 for any other statement (SQLite's own count would still be
/// the previous statement's).
pub(crate) fn execute(connection: &Connection, statement: &mut Statement) -> Result<u64> {
    let before = connection.total_changes();
    run(statement, &mut |_| true)?;
    Ok(if connection.total_changes() == before { 0 } else { connection.changes() })
}

/// Steps a prepared statement to its end, handing each row to `on_row` until it returns
/// `false`.
pub(crate) fn run(statement: &mut Statement, on_row: &mut dyn FnMut(&[Value]) -> bool) -> Result<()> {
    let columns = statement.column_count();
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        let values = (0..columns)
            .map(|index| row.get_ref(index).map(Value::from))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if !on_row(&values) {
            break;
        }
    }
    Ok(())
}
