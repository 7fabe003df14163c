//! Messages between shmq and AMQP 0-9-1 (lapin): every basic property and
//! the whole headers table, nested tables and arrays included, cross in
//! both directions. What comes from shared memory was validated when it was
//! parsed; what does not fit AMQP (a string over 255 bytes where AMQP has a
//! short string) is an error, never a panic or a silent cut.

use lapin::types::{AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString, ShortString};
use lapin::BasicProperties;

/// A message in transit: lapin's properties (headers included) and body.
#[derive(Clone)]
pub struct Moved {
    pub properties: BasicProperties,
    pub body: Vec<u8>,
    pub routing_key: String,
    pub redelivered: bool,
}

fn short(what: &str, s: &str) -> Result<ShortString, String> {
    ShortString::try_new(s).map_err(|_| format!("{what} is {} bytes, longer than AMQP's 255", s.len()))
}

/// An shmq header value as AMQP's.
fn amqp_value(v: shmq::HeaderValue<'_>, depth: usize) -> Result<AMQPValue, String> {
    Ok(match v {
        shmq::HeaderValue::Str(s) => AMQPValue::LongString(LongString::from(s.as_bytes().to_vec())),
        shmq::HeaderValue::Bytes(b) => AMQPValue::ByteArray(ByteArray::from(b.to_vec())),
        shmq::HeaderValue::Int(i) => AMQPValue::LongLongInt(i),
        shmq::HeaderValue::Float(f) => AMQPValue::Double(f),
        shmq::HeaderValue::Bool(b) => AMQPValue::Boolean(b),
        shmq::HeaderValue::Void => AMQPValue::Void,
        shmq::HeaderValue::Timestamp(t) => AMQPValue::Timestamp(t),
        // The same 32 bits: AMQP's decimal value is unsigned on the wire.
        shmq::HeaderValue::Decimal { scale, value } => AMQPValue::DecimalValue(DecimalValue { scale, value: value as u32 }),
        _ if depth >= shmq::MAX_HEADER_DEPTH => return Err("headers nested too deep".into()),
        shmq::HeaderValue::Table(t) => AMQPValue::FieldTable(amqp_table(t, depth + 1)?),
        shmq::HeaderValue::Array(a) => {
            AMQPValue::FieldArray(FieldArray::from(a.iter().map(|v| amqp_value(v, depth + 1)).collect::<Result<Vec<_>, _>>()?))
        }
    })
}

fn amqp_table(h: shmq::Headers<'_>, depth: usize) -> Result<FieldTable, String> {
    let mut table = FieldTable::default();
    for (k, v) in h.iter() {
        table.insert(short("a header name", k)?, amqp_value(v, depth)?);
    }
    Ok(table)
}

/// A delivery from shmq as an AMQP message.
pub fn from_shmq(d: &shmq::Delivery<'_>) -> Result<Moved, String> {
    let p = d.properties();
    let mut props = BasicProperties::default();
    type Setter = fn(BasicProperties, ShortString) -> BasicProperties;
    let strings: [(Option<&str>, Setter); 9] = [
        (p.content_type, BasicProperties::with_content_type),
        (p.content_encoding, BasicProperties::with_content_encoding),
        (p.correlation_id, BasicProperties::with_correlation_id),
        (p.reply_to, BasicProperties::with_reply_to),
        (p.expiration, BasicProperties::with_expiration),
        (p.message_id, BasicProperties::with_message_id),
        (p.kind, BasicProperties::with_type),
        (p.user_id, BasicProperties::with_user_id),
        (p.app_id, BasicProperties::with_app_id),
    ];
    for (value, set) in strings {
        if let Some(v) = value {
            props = set(props, short("a property", v)?);
        }
    }
    if let Some(t) = p.timestamp {
        props = props.with_timestamp(t);
    }
    if let Some(m) = p.delivery_mode {
        props = props.with_delivery_mode(m);
    }
    if let Some(pr) = p.priority {
        props = props.with_priority(pr);
    }
    if !p.headers.is_empty() {
        props = props.with_headers(amqp_table(p.headers, 0)?);
    }
    Ok(Moved {
        properties: props,
        body: d.body().to_vec(),
        routing_key: p.routing_key.unwrap_or("").to_owned(),
        redelivered: d.redelivered(),
    })
}

/// A header value taken from AMQP, owning its bytes (nested tables and
/// arrays already in shmq's encoding).
enum Owned {
    Str(String),
    Bytes(Vec<u8>),
    Scalar(shmq::HeaderValue<'static>),
    Table(Vec<u8>),
    Array(Vec<u8>),
}

impl Owned {
    fn value(&self) -> Result<shmq::HeaderValue<'_>, String> {
        Ok(match self {
            Owned::Str(s) => shmq::HeaderValue::Str(s),
            Owned::Bytes(b) => shmq::HeaderValue::Bytes(b),
            Owned::Scalar(v) => *v,
            Owned::Table(t) => shmq::HeaderValue::Table(shmq::Headers::from_encoded(t).ok_or("a nested table did not encode")?),
            Owned::Array(a) => shmq::HeaderValue::Array(shmq::HeaderArray::from_encoded(a).ok_or("a nested array did not encode")?),
        })
    }
}

fn owned(v: &AMQPValue, depth: usize) -> Result<Owned, String> {
    use shmq::HeaderValue::{Bool, Decimal, Float, Int, Timestamp, Void};
    Ok(match v {
        AMQPValue::Boolean(b) => Owned::Scalar(Bool(*b)),
        AMQPValue::ShortShortInt(i) => Owned::Scalar(Int(i64::from(*i))),
        AMQPValue::ShortShortUInt(i) => Owned::Scalar(Int(i64::from(*i))),
        AMQPValue::ShortInt(i) => Owned::Scalar(Int(i64::from(*i))),
        AMQPValue::ShortUInt(i) => Owned::Scalar(Int(i64::from(*i))),
        AMQPValue::LongInt(i) => Owned::Scalar(Int(i64::from(*i))),
        AMQPValue::LongUInt(i) => Owned::Scalar(Int(i64::from(*i))),
        AMQPValue::LongLongInt(i) => Owned::Scalar(Int(*i)),
        AMQPValue::Float(f) => Owned::Scalar(Float(f64::from(*f))),
        AMQPValue::Double(f) => Owned::Scalar(Float(*f)),
        AMQPValue::DecimalValue(d) => Owned::Scalar(Decimal { scale: d.scale, value: d.value as i32 }),
        AMQPValue::ShortString(s) => Owned::Str(s.as_str().to_owned()),
        // Text if it is UTF-8 (as pika decodes it), else the bytes.
        AMQPValue::LongString(s) => match std::str::from_utf8(s.as_bytes()) {
            Ok(text) => Owned::Str(text.to_owned()),
            Err(_) => Owned::Bytes(s.as_bytes().to_vec()),
        },
        AMQPValue::ByteArray(b) => Owned::Bytes(b.as_slice().to_vec()),
        AMQPValue::Timestamp(t) => Owned::Scalar(Timestamp(*t)),
        AMQPValue::Void => Owned::Scalar(Void),
        _ if depth >= shmq::MAX_HEADER_DEPTH => return Err("headers nested too deep".into()),
        AMQPValue::FieldTable(t) => Owned::Table(encode_table(t, depth + 1)?),
        AMQPValue::FieldArray(a) => {
            let items = a.as_slice().iter().map(|v| owned(v, depth + 1)).collect::<Result<Vec<_>, _>>()?;
            let values = items.iter().map(Owned::value).collect::<Result<Vec<_>, _>>()?;
            Owned::Array(shmq::HeaderArray::encode(&values).map_err(|e| e.to_string())?)
        }
    })
}

fn encode_table(t: &FieldTable, depth: usize) -> Result<Vec<u8>, String> {
    let items = t.inner().iter().map(|(k, v)| Ok((k.as_str(), owned(v, depth)?))).collect::<Result<Vec<_>, String>>()?;
    let entries = items.iter().map(|(k, v)| Ok((*k, v.value()?))).collect::<Result<Vec<_>, String>>()?;
    shmq::Headers::encode(&entries).map_err(|e| e.to_string())
}

/// Runs `f` with an AMQP message's properties as shmq's (headers encoded).
pub fn with_shmq_properties<R>(p: &BasicProperties, f: impl FnOnce(&shmq::Properties<'_>) -> R) -> Result<R, String> {
    let headers = encoded_headers(p)?;
    let table = shmq::Headers::from_encoded(&headers).ok_or("the headers did not encode")?;
    let entries: Vec<(&str, shmq::HeaderValue<'_>)> = table.iter().collect();
    Ok(f(&shmq_properties(p, &entries)))
}

/// An AMQP message's headers, encoded as shmq stores them.
pub fn encoded_headers(p: &BasicProperties) -> Result<Vec<u8>, String> {
    match p.headers() {
        Some(t) => encode_table(t, 0),
        None => Ok(Vec::new()),
    }
}

/// An AMQP message's properties as shmq's, with `headers` (decoded from
/// [`encoded_headers`]).
pub fn shmq_properties<'a>(p: &'a BasicProperties, headers: &'a [(&'a str, shmq::HeaderValue<'a>)]) -> shmq::Properties<'a> {
    fn s(v: &Option<ShortString>) -> Option<&str> {
        v.as_ref().map(ShortString::as_str)
    }
    shmq::Properties {
        content_type: s(p.content_type()),
        content_encoding: s(p.content_encoding()),
        correlation_id: s(p.correlation_id()),
        reply_to: s(p.reply_to()),
        message_id: s(p.message_id()),
        expiration: s(p.expiration()),
        kind: s(p.kind()),
        user_id: s(p.user_id()),
        app_id: s(p.app_id()),
        timestamp: *p.timestamp(),
        priority: *p.priority(),
        delivery_mode: *p.delivery_mode(),
        headers,
        ..shmq::Properties::new()
    }
}

/// `headers` with `key` set to `value` (RabbitMQ's `x-shovelled` is an
/// array, appended to on every hop).
pub fn add_header(properties: BasicProperties, key: &str, value: AMQPValue) -> BasicProperties {
    let mut headers = properties.headers().clone().unwrap_or_default();
    let value = match (key, headers.inner().get(key), value) {
        ("x-shovelled", Some(AMQPValue::FieldArray(previous)), AMQPValue::FieldArray(mine)) => {
            let mut all = previous.clone();
            for v in mine.as_slice() {
                all.push(v.clone());
            }
            AMQPValue::FieldArray(all)
        }
        (_, _, value) => value,
    };
    headers.insert(ShortString::from(key), value);
    properties.with_headers(headers)
}
