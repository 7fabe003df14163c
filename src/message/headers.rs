//! Header tables: AMQP's field tables, with nested tables, arrays and
//! timestamps (RabbitMQ's `x-death` is an array of tables).
//!
//! Encoding (docs/LAYOUT.md, "Record"): a table is a run of entries, each a
//! short-string key then a value; a value is a type byte then its payload;
//! strings, byte strings, tables and arrays carry a `u32` length. Everything
//! is read from shared memory, so every length is checked against the bytes
//! that hold it and nesting is bounded ([`MAX_DEPTH`]): a hostile table is
//! refused, never followed into unbounded recursion.

use super::Writer;
use crate::error::PublishError;

pub(crate) const VALUE_STR: u8 = 1;
pub(crate) const VALUE_BYTES: u8 = 2;
const VALUE_INT: u8 = 3;
const VALUE_FLOAT: u8 = 4;
const VALUE_BOOL: u8 = 5;
const VALUE_VOID: u8 = 6;
const VALUE_TIMESTAMP: u8 = 7;
const VALUE_TABLE: u8 = 8;
const VALUE_ARRAY: u8 = 9;
const VALUE_DECIMAL: u8 = 10;

/// Deepest nesting of tables and arrays a header table may have (AMQP sets
/// no limit; RabbitMQ's own headers nest two deep).
pub const MAX_DEPTH: usize = 16;

/// A value in a message's headers table.
///
/// # Examples
/// ```
/// use shmq::{HeaderArray, HeaderValue};
/// let v = HeaderValue::Int(3);
/// assert_eq!(v, HeaderValue::Int(3));
/// let keys = HeaderArray::encode(&[HeaderValue::Str("a.b")]).unwrap();
/// let array = HeaderValue::Array(HeaderArray::from_encoded(&keys).unwrap());
/// assert!(matches!(array, HeaderValue::Array(a) if a.iter().count() == 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HeaderValue<'a> {
    /// UTF-8 text.
    Str(&'a str),
    /// Raw bytes.
    Bytes(&'a [u8]),
    /// A signed integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// No value (AMQP's void).
    Void,
    /// Seconds since the Unix epoch (AMQP's timestamp).
    Timestamp(u64),
    /// A nested table (build one with [`Headers::encode`]).
    Table(Headers<'a>),
    /// An array of values (build one with [`HeaderArray::encode`]).
    Array(HeaderArray<'a>),
    /// AMQP's decimal: `value` × 10^-`scale` (pika's `decimal.Decimal`).
    Decimal {
        /// Digits after the point.
        scale: u8,
        /// The unscaled value.
        value: i32,
    },
}

/// A headers table, borrowed in its encoding: iterate it or look a key up.
///
/// # Examples
/// ```
/// use shmq::{HeaderValue, Headers};
/// let empty = Headers::default();
/// assert_eq!(empty.iter().count(), 0);
/// let bytes = Headers::encode(&[("count", HeaderValue::Int(2))]).unwrap();
/// let table = Headers::from_encoded(&bytes).unwrap();
/// assert_eq!(table.get("count"), Some(HeaderValue::Int(2)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Headers<'a> {
    raw: &'a [u8],
}

/// An array of header values, borrowed in its encoding.
///
/// # Examples
/// ```
/// use shmq::{HeaderArray, HeaderValue};
/// let bytes = HeaderArray::encode(&[HeaderValue::Int(1), HeaderValue::Bool(true)]).unwrap();
/// let array = HeaderArray::from_encoded(&bytes).unwrap();
/// assert_eq!(array.iter().collect::<Vec<_>>(), [HeaderValue::Int(1), HeaderValue::Bool(true)]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HeaderArray<'a> {
    raw: &'a [u8],
}

impl<'a> Headers<'a> {
    /// The entries in publish order.
    ///
    /// # Examples
    /// See [`Headers`].
    pub fn iter(&self) -> HeadersIter<'a> {
        HeadersIter { reader: Reader { bytes: self.raw, at: 0 } }
    }

    /// The first value stored under `key`.
    ///
    /// # Examples
    /// See [`Headers`].
    pub fn get(&self, key: &str) -> Option<HeaderValue<'a>> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// True if the table has no entries.
    ///
    /// # Examples
    /// ```
    /// assert!(shmq::Headers::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The table's encoding (what [`Headers::from_encoded`] takes).
    ///
    /// # Examples
    /// ```
    /// assert!(shmq::Headers::default().as_bytes().is_empty());
    /// ```
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// Validates an encoded table (as [`Headers::encode`] makes); `None` if
    /// malformed or nested deeper than [`MAX_DEPTH`].
    ///
    /// # Examples
    /// See [`Headers`].
    pub fn from_encoded(bytes: &'a [u8]) -> Option<Self> {
        check_table(bytes, 0).then_some(Self { raw: bytes })
    }

    /// Encodes a table, e.g. to nest it as a [`HeaderValue::Table`].
    ///
    /// # Errors
    /// `InvalidProperty` if a key is over 255 bytes, the table is over
    /// 2 GiB or nested deeper than [`MAX_DEPTH`].
    ///
    /// # Examples
    /// See [`Headers`].
    pub fn encode(entries: &[(&str, HeaderValue<'_>)]) -> Result<Vec<u8>, PublishError> {
        let mut out = vec![0u8; table_len(entries)?];
        write_table(&mut Writer { out: &mut out, at: 0 }, entries);
        Ok(out)
    }
}

impl<'a> HeaderArray<'a> {
    /// The values in order.
    ///
    /// # Examples
    /// See [`HeaderArray`].
    pub fn iter(&self) -> HeaderArrayIter<'a> {
        HeaderArrayIter { reader: Reader { bytes: self.raw, at: 0 } }
    }

    /// Validates an encoded array (as [`HeaderArray::encode`] makes).
    ///
    /// # Examples
    /// See [`HeaderArray`].
    pub fn from_encoded(bytes: &'a [u8]) -> Option<Self> {
        check_array(bytes, 0).then_some(Self { raw: bytes })
    }

    /// Encodes an array, to nest it as a [`HeaderValue::Array`].
    ///
    /// # Errors
    /// As [`Headers::encode`].
    ///
    /// # Examples
    /// See [`HeaderArray`].
    pub fn encode(values: &[HeaderValue<'_>]) -> Result<Vec<u8>, PublishError> {
        let mut len = 0usize;
        for value in values {
            len = len.saturating_add(1 + value_len(value)?);
        }
        check_size(len)?;
        let mut out = vec![0u8; len];
        let mut w = Writer { out: &mut out, at: 0 };
        for value in values {
            write_value(&mut w, value);
        }
        Ok(out)
    }
}

/// Iterator over a [`Headers`] table.
pub struct HeadersIter<'a> {
    reader: Reader<'a>,
}

impl<'a> Iterator for HeadersIter<'a> {
    type Item = (&'a str, HeaderValue<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.done() {
            return None;
        }
        // The table was validated when it was made.
        let key = self.reader.short_str()?;
        Some((key, read_value(&mut self.reader)?))
    }
}

/// Iterator over a [`HeaderArray`].
pub struct HeaderArrayIter<'a> {
    reader: Reader<'a>,
}

impl<'a> Iterator for HeaderArrayIter<'a> {
    type Item = HeaderValue<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.done() {
            return None;
        }
        read_value(&mut self.reader)
    }
}

/// Bounds-checked reads over untrusted bytes.
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }
    pub(crate) fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
    pub(crate) fn short_str(&mut self) -> Option<&'a str> {
        let len = self.byte()? as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }
    fn long(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

/// Reads one value, without looking inside nested tables and arrays.
fn read_value<'a>(r: &mut Reader<'a>) -> Option<HeaderValue<'a>> {
    Some(match r.byte()? {
        VALUE_STR => HeaderValue::Str(std::str::from_utf8(r.long()?).ok()?),
        VALUE_BYTES => HeaderValue::Bytes(r.long()?),
        VALUE_INT => HeaderValue::Int(r.u64()? as i64),
        VALUE_FLOAT => HeaderValue::Float(f64::from_bits(r.u64()?)),
        VALUE_BOOL => HeaderValue::Bool(r.byte()? != 0),
        VALUE_VOID => HeaderValue::Void,
        VALUE_TIMESTAMP => HeaderValue::Timestamp(r.u64()?),
        VALUE_TABLE => HeaderValue::Table(Headers { raw: r.long()? }),
        VALUE_ARRAY => HeaderValue::Array(HeaderArray { raw: r.long()? }),
        VALUE_DECIMAL => {
            let scale = r.byte()?;
            HeaderValue::Decimal { scale, value: r.u32()? as i32 }
        }
        _ => return None,
    })
}

/// Reads a value and validates what it nests.
fn check_value(r: &mut Reader<'_>, depth: usize) -> bool {
    match read_value(r) {
        Some(HeaderValue::Table(t)) => check_table(t.raw, depth + 1),
        Some(HeaderValue::Array(a)) => check_array(a.raw, depth + 1),
        Some(_) => true,
        None => false,
    }
}

fn check_table(bytes: &[u8], depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let mut r = Reader { bytes, at: 0 };
    while !r.done() {
        if r.short_str().is_none() || !check_value(&mut r, depth) {
            return false;
        }
    }
    true
}

fn check_array(bytes: &[u8], depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let mut r = Reader { bytes, at: 0 };
    while !r.done() {
        if !check_value(&mut r, depth) {
            return false;
        }
    }
    true
}

fn check_size(len: usize) -> Result<usize, PublishError> {
    if len > u32::MAX as usize / 2 {
        return Err(PublishError::InvalidProperty("the headers table is too large"));
    }
    Ok(len)
}

/// Bytes of a value's payload (after its type byte), unchecked.
fn payload_size(value: &HeaderValue<'_>) -> usize {
    match value {
        HeaderValue::Str(s) => 4 + s.len(),
        HeaderValue::Bytes(b) => 4 + b.len(),
        HeaderValue::Table(t) => 4 + t.raw.len(),
        HeaderValue::Array(a) => 4 + a.raw.len(),
        HeaderValue::Int(_) | HeaderValue::Float(_) | HeaderValue::Timestamp(_) => 8,
        HeaderValue::Decimal { .. } => 5,
        HeaderValue::Bool(_) => 1,
        HeaderValue::Void => 0,
    }
}

/// [`payload_size`], checked: lengths a `u32` holds, and a nested table or
/// array no deeper than a reader accepts (one level for itself below the
/// table or array that holds it).
fn value_len(value: &HeaderValue<'_>) -> Result<usize, PublishError> {
    let too_deep = || PublishError::InvalidProperty("headers nest deeper than 16 tables or arrays");
    match value {
        HeaderValue::Str(s) => check_size(s.len())?,
        HeaderValue::Bytes(b) => check_size(b.len())?,
        HeaderValue::Table(t) if !check_table(t.raw, 1) => return Err(too_deep()),
        HeaderValue::Array(a) if !check_array(a.raw, 1) => return Err(too_deep()),
        HeaderValue::Table(t) => check_size(t.raw.len())?,
        HeaderValue::Array(a) => check_size(a.raw.len())?,
        _ => 0,
    };
    Ok(payload_size(value))
}

/// Bytes of an encoded table whose entries [`table_len`] already checked
/// (the size alone: no second walk through nested values).
pub(crate) fn table_size(entries: &[(&str, HeaderValue<'_>)]) -> usize {
    entries.iter().map(|(key, value)| 2 + key.len() + payload_size(value)).sum()
}

/// Encodes an array of values that are valid already (tables this crate
/// encoded or validated): no second walk through them.
pub(crate) fn encode_array_unchecked(values: &[HeaderValue<'_>]) -> Vec<u8> {
    let mut out = vec![0u8; values.iter().map(|v| 1 + payload_size(v)).sum()];
    let mut w = Writer { out: &mut out, at: 0 };
    for value in values {
        write_value(&mut w, value);
    }
    out
}

/// Bytes of an encoded table, checked: keys, sizes and nesting.
pub(crate) fn table_len(entries: &[(&str, HeaderValue<'_>)]) -> Result<usize, PublishError> {
    let mut len = 0usize;
    for (key, value) in entries {
        if key.len() > 255 {
            return Err(PublishError::InvalidProperty("a header name is over 255 bytes"));
        }
        len = len.saturating_add(2 + key.len() + value_len(value)?);
    }
    check_size(len)
}

/// Writes a table whose size [`table_len`] accepted.
pub(crate) fn write_table(w: &mut Writer<'_>, entries: &[(&str, HeaderValue<'_>)]) {
    for (key, value) in entries {
        w.put(&[key.len() as u8]);
        w.put(key.as_bytes());
        write_value(w, value);
    }
}

fn write_value(w: &mut Writer<'_>, value: &HeaderValue<'_>) {
    let long = |w: &mut Writer<'_>, tag: u8, bytes: &[u8]| {
        w.put(&[tag]);
        w.put(&(bytes.len() as u32).to_le_bytes());
        w.put(bytes);
    };
    match value {
        HeaderValue::Str(s) => long(w, VALUE_STR, s.as_bytes()),
        HeaderValue::Bytes(b) => long(w, VALUE_BYTES, b),
        HeaderValue::Table(t) => long(w, VALUE_TABLE, t.raw),
        HeaderValue::Array(a) => long(w, VALUE_ARRAY, a.raw),
        HeaderValue::Int(i) => {
            w.put(&[VALUE_INT]);
            w.put(&i.to_le_bytes());
        }
        HeaderValue::Float(f) => {
            w.put(&[VALUE_FLOAT]);
            w.put(&f.to_le_bytes());
        }
        HeaderValue::Timestamp(t) => {
            w.put(&[VALUE_TIMESTAMP]);
            w.put(&t.to_le_bytes());
        }
        HeaderValue::Decimal { scale, value } => {
            w.put(&[VALUE_DECIMAL, *scale]);
            w.put(&value.to_le_bytes());
        }
        HeaderValue::Bool(b) => w.put(&[VALUE_BOOL, u8::from(*b)]),
        HeaderValue::Void => w.put(&[VALUE_VOID]),
    }
}

#[cfg(all(test, not(shmq_loom)))]
mod tests {
    use super::*;

    #[test]
    fn nested_tables_and_arrays_round_trip() {
        let keys = HeaderArray::encode(&[HeaderValue::Str("a"), HeaderValue::Str("b")]).unwrap();
        let inner = Headers::encode(&[
            ("count", HeaderValue::Int(2)),
            ("time", HeaderValue::Timestamp(1_700_000_000)),
            ("price", HeaderValue::Decimal { scale: 2, value: -1234 }),
            ("routing-keys", HeaderValue::Array(HeaderArray::from_encoded(&keys).unwrap())),
        ])
        .unwrap();
        let deaths = HeaderArray::encode(&[HeaderValue::Table(Headers::from_encoded(&inner).unwrap())]).unwrap();
        let outer = Headers::encode(&[("x-death", HeaderValue::Array(HeaderArray::from_encoded(&deaths).unwrap()))]).unwrap();
        let table = Headers::from_encoded(&outer).unwrap();
        let Some(HeaderValue::Array(array)) = table.get("x-death") else { panic!("no x-death") };
        let Some(HeaderValue::Table(death)) = array.iter().next() else { panic!("no table") };
        assert_eq!(death.get("count"), Some(HeaderValue::Int(2)));
        assert_eq!(death.get("time"), Some(HeaderValue::Timestamp(1_700_000_000)));
        assert_eq!(death.get("price"), Some(HeaderValue::Decimal { scale: 2, value: -1234 }));
        let Some(HeaderValue::Array(rk)) = death.get("routing-keys") else { panic!("no keys") };
        assert_eq!(rk.iter().collect::<Vec<_>>(), [HeaderValue::Str("a"), HeaderValue::Str("b")]);
    }

    /// Nesting is read from shared memory: deeper than `MAX_DEPTH` is
    /// refused, so validation never recurses without bound.
    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let mut bytes = Headers::encode(&[("leaf", HeaderValue::Int(1))]).unwrap();
        for level in 0..MAX_DEPTH {
            assert!(Headers::from_encoded(&bytes).is_some(), "depth {level}");
            bytes = Headers::encode(&[("t", HeaderValue::Table(Headers { raw: &bytes }))]).unwrap();
        }
        // 16 deep reads; one more level is refused when encoding, and when
        // read from bytes another process wrote.
        assert!(Headers::from_encoded(&bytes).is_some());
        assert!(Headers::encode(&[("t", HeaderValue::Table(Headers { raw: &bytes }))]).is_err());
        let mut deeper = vec![1, b't', VALUE_TABLE];
        deeper.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        deeper.extend_from_slice(&bytes);
        assert!(Headers::from_encoded(&deeper).is_none());
        // A chain of a million empty arrays: refused at the limit, at once.
        let mut hostile = Vec::new();
        for _ in 0..1_000_000 {
            hostile.extend_from_slice(&[VALUE_ARRAY, 0xFF, 0xFF, 0xFF, 0x7F]);
        }
        assert!(HeaderArray::from_encoded(&hostile).is_none());
    }
}
