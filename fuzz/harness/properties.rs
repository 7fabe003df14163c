//! Message-property parsing (`PropertiesRef::parse`): the bytes a consumer
//! reads from shared memory after a record's header.
//!
//! Checks: no panic; a parsed headers table iterates to its end and answers
//! lookups, and so do the tables and arrays nested in it, never deeper than
//! `MAX_HEADER_DEPTH`; and what parses is canonical after one round trip: re-encoding
//! it as a publisher would gives bytes that parse to the same properties and
//! re-encode to the same bytes.
use shmq::fuzzing::{encode_properties, parse_properties};
use shmq::{HeaderValue, Properties, PropertiesRef};

/// Headers with floats compared by bits (NaN != NaN otherwise).
fn headers_of(p: &PropertiesRef<'_>) -> Vec<(String, String)> {
    p.headers
        .iter()
        .map(|(k, v)| {
            let v = match v {
                HeaderValue::Float(f) => format!("float {:#x}", f.to_bits()),
                other => format!("{other:?}"),
            };
            (k.to_owned(), v)
        })
        .collect()
}

fn reencode(p: &PropertiesRef<'_>) -> Vec<u8> {
    let headers: Vec<(&str, HeaderValue<'_>)> = p.headers.iter().collect();
    let props = Properties { headers: &headers, ..p.to_properties() };
    encode_properties(&props).expect("parsed properties must be encodable")
}

/// Walks a value's nested tables and arrays (validated when the headers
/// were parsed, so every level must read to its end).
fn walk(value: HeaderValue<'_>, depth: usize) {
    assert!(depth <= shmq::MAX_HEADER_DEPTH + 1, "nesting deeper than the parser allows");
    match value {
        HeaderValue::Table(table) => {
            let entries: Vec<_> = table.iter().collect();
            assert_eq!(entries.is_empty(), table.is_empty());
            if let Some((key, _)) = entries.first() {
                assert!(table.get(key).is_some(), "a nested get() misses a key");
            }
            assert!(shmq::Headers::from_encoded(table.as_bytes()).is_some(), "a validated table fails validation alone");
            entries.into_iter().for_each(|(_, v)| walk(v, depth + 1));
        }
        HeaderValue::Array(array) => array.iter().for_each(|v| walk(v, depth + 1)),
        _ => {}
    }
}

/// One input; panics on a failure.
pub fn run(data: &[u8]) {
    let Some(parsed) = parse_properties(data) else { return };
    parsed.headers.iter().for_each(|(_, v)| walk(v, 1));
    let headers = headers_of(&parsed);
    assert_eq!(headers.is_empty(), parsed.headers.iter().next().is_none());
    if let Some((key, _)) = headers.first() {
        assert!(parsed.headers.get(key).is_some(), "get() misses a key that iter() yields");
    }
    let _ = parsed.to_properties().ttl_ms();

    let encoded = reencode(&parsed);
    let reparsed = parse_properties(&encoded).expect("re-encoded properties do not parse");
    assert_eq!(reparsed.to_properties(), parsed.to_properties(), "fields changed in a round trip");
    assert_eq!(headers_of(&reparsed), headers, "headers changed in a round trip");
    assert_eq!(reencode(&reparsed), encoded, "encoding is not canonical after one round trip");
}
