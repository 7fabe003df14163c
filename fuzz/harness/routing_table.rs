//! The routing-table decoder (`routing::table::decode`) on arbitrary words,
//! as a reader copies them out of the routing segment's live region.
//!
//! Input: the words as little-endian bytes (the last one zero-padded); the
//! first word is the table's byte length, as in the segment.
//!
//! Checks: no panic, no unbounded allocation (`-rss_limit_mb`), and a table
//! that decodes re-encodes to words that decode to the same table, stably:
//! `encode(decode(encode(decode(w)))) == encode(decode(w))`.
use shmq::fuzzing::routing_table_reencode;

/// One input; panics on a failure.
pub fn run(data: &[u8]) {
    let words: Vec<u64> = data
        .chunks(8)
        .map(|chunk| {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            u64::from_le_bytes(word)
        })
        .collect();
    if let Some(canonical) = routing_table_reencode(&words) {
        let again = routing_table_reencode(&canonical);
        assert_eq!(again.as_ref(), Some(&canonical), "a decoded table re-encodes to words that decode to a different table");
    }
}
