//! Replays the inputs the fuzzers found failures with (fuzz/artifacts-kept/
//! <target>/) through the fuzz targets' own checks (fuzz/harness/), with
//! plain `cargo test`. A test whose bug is still open is ignored with the
//! reason; remove the `#[ignore]` with the fix.

#[path = "../fuzz/harness/properties.rs"]
mod properties;
#[path = "../fuzz/harness/routing_table.rs"]
mod routing_table;
#[path = "../fuzz/harness/segment_open.rs"]
mod segment_open;
#[path = "../fuzz/harness/topic_route.rs"]
mod topic_route;

fn kept(target: &str, name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/artifacts-kept").join(target).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// topic_route's harness includes topic_match's (its reference matcher).
use topic_route::topic_match;

/// Every kept input of a target: all must pass once their bugs are fixed.
fn replay_all(target: &str, run: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/artifacts-kept").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
    }
}

#[test]
fn every_kept_properties_input() {
    replay_all("properties", properties::run);
}

#[test]
fn every_kept_routing_table_input() {
    replay_all("routing_table", routing_table::run);
}

#[test]
fn every_kept_topic_match_input() {
    replay_all("topic_match", topic_match::run);
}

#[test]
fn every_kept_topic_route_input() {
    replay_all("topic_route", topic_route::run);
}

/// A routing segment (41744 bytes, mostly zeros) whose header claims
/// `table_bytes` = 0xc4c4_c400_c400_0000. `RoutingSegment::open` once
/// computed the segment size from it for its error message and overflowed
/// (a panic where overflow checks are on); now the limits check refuses it
/// before any size is computed.
#[test]
fn routing_segment_with_huge_table_bytes_is_corrupt() {
    segment_open::run(&kept("segment_open", "routing-table-bytes-overflow"));
}

/// Segment inputs in the committed corpus carry the current layout version:
/// after a version bump, stale ones would stop at the version check and
/// fuzz nothing behind it (and a kept crash would pass without replaying).
#[test]
fn committed_segment_inputs_carry_the_current_layout_version() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut checked = 0;
    for dir in [root.join("corpus/segment_open"), root.join("artifacts-kept/segment_open")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            for at in (0..bytes.len().saturating_sub(11)).filter(|&i| bytes[i..].starts_with(b"SHMQSEG\0")) {
                let version = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
                // Fuzzed versions are fine; the untouched seeds' are the current one.
                if version == shmq::LAYOUT_VERSION - 1 {
                    panic!("a {dir:?} input carries layout version {version}: regenerate the corpus (fuzz/README.md)");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} segment headers found in the corpus");
}
