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

/// `bytes` as UTF-8 text, as `std::str::from_utf8` checks it, with ASCII (most SQL and most
/// values) checked word by word first: a bulk insert through the C ABI checks its SQL and its
/// text parameters on every row, and `from_utf8` was 6% of each row's instructions.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::utf8;

    #[test]
    fn utf8_accepts_and_refuses_what_from_utf8_does() {
        let cases: [&[u8]; 8] = [
            b"",
            b"INSERT INTO notes (body) VALUES (?)",
            "a note \u{e9}crite \u{1f600}".as_bytes(),
            b"ascii then a lone continuation \x80",
            b"\xff",
            b"an overlong encoding \xc0\xaf",
            b"a surrogate \xed\xa0\x80",
            b"a truncated sequence \xe2\x82",
        ];
        for bytes in cases {
            assert_eq!(utf8(bytes), std::str::from_utf8(bytes), "{bytes:?}");
        }
    }
}
