//! Message-property parsing (`PropertiesRef::parse`): the bytes a consumer
//! reads from shared memory after a record's header.
//!
//! Checks: no panic; a parsed headers table iterates to its end and answers
//! lookups; and what parses is canonical after one round trip: re-encoding
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

/// One input; panics on a failure.
pub fn run(data: &[u8]) {
    let Some(parsed) = parse_properties(data) else { return };
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
