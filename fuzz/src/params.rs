//! Statement parameters: LeaseValue arrays of every kind, valid or not, and what the header says
//! each must do.

use arbitrary::Arbitrary;
use lease::ffi::{
    LeaseValue, LEASE_VALUE_BLOB, LEASE_VALUE_INTEGER, LEASE_VALUE_NULL, LEASE_VALUE_REAL, LEASE_VALUE_TEXT,
};

use crate::rows::Column;

/// The longest TEXT or BLOB the fuzzer makes: a few MB.
const LONGEST: u32 = 4 << 20;

/// One parameter, as the fuzzer picks it.
#[derive(Arbitrary, Debug, Clone)]
pub enum Param {
    Null,
    Integer(i64),
    Real(f64),
    /// TEXT: valid UTF-8 or not, NULs and all.
    Text(Vec<u8>),
    Blob(Vec<u8>),
    /// `len` (up to a few MB) copies of `byte`.
    LongText {
        byte: u8,
        len: u32,
    },
    LongBlob {
        byte: u8,
        len: u32,
    },
    /// data NULL with a length: 0 is the empty TEXT or BLOB; any other length is invalid for those
    /// kinds, and ignored by the others.
    NullData {
        kind: u8,
        len: Len,
    },
    /// A kind that is no LEASE_VALUE_*.
    BadKind {
        kind: u32,
    },
}

/// A length to go with NULL data.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Len {
    Zero,
    Small(u8),
    /// Beyond what can be in memory (above isize::MAX).
    Absurd(u64),
    Max,
}

impl Len {
    fn get(self) -> usize {
        match self {
            Len::Zero => 0,
            Len::Small(len) => len.into(),
            Len::Absurd(len) => (isize::MAX as usize).saturating_add(1).saturating_add(len as usize),
            Len::Max => usize::MAX,
        }
    }
}

impl Param {
    fn kind(&self) -> u32 {
        match self {
            Param::Null => LEASE_VALUE_NULL,
            Param::Integer(_) => LEASE_VALUE_INTEGER,
            Param::Real(_) => LEASE_VALUE_REAL,
            Param::Text(_) | Param::LongText { .. } => LEASE_VALUE_TEXT,
            Param::Blob(_) | Param::LongBlob { .. } => LEASE_VALUE_BLOB,
            Param::NullData { kind, .. } => u32::from(*kind) % 5,
            // Shifted past the last valid kind.
            Param::BadKind { kind } => kind.saturating_add(5).max(5),
        }
    }

    /// The bytes of a TEXT or BLOB, made here for the long ones.
    fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Param::Text(bytes) | Param::Blob(bytes) => Some(bytes.clone()),
            Param::LongText { byte, len } | Param::LongBlob { byte, len } => {
                Some(vec![*byte; (len % LONGEST) as usize])
            }
            _ => None,
        }
    }

    /// What the header says of this parameter: `Ok` with the column it comes back as, or `Err`
    /// when it is invalid (the message must name it).
    pub fn expected(&self) -> Result<Column, ()> {
        let kind = self.kind();
        let bytes = self.bytes();
        match (kind, bytes) {
            (LEASE_VALUE_TEXT, Some(bytes)) if std::str::from_utf8(&bytes).is_err() => Err(()),
            (LEASE_VALUE_TEXT, Some(bytes)) => Ok(Column::Text(bytes)),
            (LEASE_VALUE_BLOB, Some(bytes)) => Ok(Column::Blob(bytes)),
            _ => match self {
                Param::Null => Ok(Column::Null),
                Param::Integer(integer) => Ok(Column::Integer(*integer)),
                // SQLite stores a NaN as NULL (LEASE_VALUE_REAL).
                Param::Real(real) if real.is_nan() => Ok(Column::Null),
                Param::Real(real) => Ok(Column::Real(real.to_bits())),
                Param::NullData { len, .. } => match kind {
                    LEASE_VALUE_TEXT if len.get() == 0 => Ok(Column::Text(Vec::new())),
                    LEASE_VALUE_BLOB if len.get() == 0 => Ok(Column::Blob(Vec::new())),
                    LEASE_VALUE_TEXT | LEASE_VALUE_BLOB => Err(()),
                    // The other kinds ignore data and len; their fields are zero.
                    LEASE_VALUE_INTEGER => Ok(Column::Integer(0)),
                    LEASE_VALUE_REAL => Ok(Column::Real(0)),
                    _ => Ok(Column::Null),
                },
                _ => Err(()),
            },
        }
    }
}

/// Parameters laid out as C passes them: LeaseValues pointing into buffers that live as long
/// as this.
pub struct Bound {
    values: Vec<LeaseValue>,
    /// Where the TEXT and BLOB data lives; never read, only kept.
    _buffers: Vec<Vec<u8>>,
}

impl Bound {
    pub fn new(params: &[Param]) -> Bound {
        let mut buffers = Vec::new();
        let values = params
            .iter()
            .map(|param| {
                let mut value =
                    LeaseValue { kind: param.kind(), integer: 0, real: 0.0, data: std::ptr::null(), len: 0 };
                match param {
                    Param::Integer(integer) => value.integer = *integer,
                    Param::Real(real) => value.real = *real,
                    Param::NullData { len, .. } => value.len = len.get(),
                    _ => {}
                }
                if let Some(bytes) = param.bytes() {
                    // Never NULL here (NullData passes NULL): an empty one points at no bytes.
                    value.data = if bytes.is_empty() { b"".as_ptr() } else { bytes.as_ptr() };
                    value.len = bytes.len();
                    buffers.push(bytes);
                }
                value
            })
            .collect();
        Bound { values, _buffers: buffers }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The array to pass: never NULL (an empty one is a valid, dangling pointer with count 0).
    pub fn as_ptr(&self) -> *const LeaseValue {
        self.values.as_ptr()
    }
}

/// The first invalid parameter of the `count` passed, if any.
pub fn first_invalid(params: &[Param], count: usize) -> Option<usize> {
    params.iter().take(count).position(|param| param.expected().is_err())
}
