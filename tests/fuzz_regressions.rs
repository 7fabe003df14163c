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
