//! Replays the committed fuzz corpus (fuzz/corpus/<target>/) and the inputs
//! the fuzzers found failures with (fuzz/artifacts-kept/<target>/) through
//! the fuzz targets' own checks (fuzz/harness/), with plain `cargo test`.

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

/// Every committed corpus input of a target, and every kept crash input if
/// it has any, through the target's checks. The corpus must be there.
fn replay_all(target: &str, run: fn(&[u8])) {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = std::fs::read_dir(fuzz.join("corpus").join(target)).unwrap_or_else(|e| panic!("fuzz/corpus/{target}: {e}"));
    let kept = std::fs::read_dir(fuzz.join("artifacts-kept").join(target)).into_iter().flatten();
    let mut replayed = 0;
    for entry in corpus.chain(kept) {
        run(&std::fs::read(entry.unwrap().path()).unwrap());
        replayed += 1;
    }
    assert!(replayed > 0, "nothing to replay for {target}");
}

#[test]
fn every_committed_properties_input() {
    replay_all("properties", properties::run);
}

#[test]
fn every_committed_routing_table_input() {
    replay_all("routing_table", routing_table::run);
}

#[test]
fn every_committed_topic_match_input() {
    replay_all("topic_match", topic_match::run);
}

#[test]
fn every_committed_topic_route_input() {
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
/// Fuzzed headers may hold any version, so the test asks that the current
/// one is by far the most common real (non-zero) one.
#[test]
fn committed_segment_inputs_carry_the_current_layout_version() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let (mut current, mut other) = (0usize, 0usize);
    for dir in [root.join("corpus/segment_open"), root.join("artifacts-kept/segment_open")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            for at in (0..bytes.len().saturating_sub(11)).filter(|&i| bytes[i..].starts_with(b"SHMQSEG\0")) {
                match u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) {
                    0 => {}
                    v if v == shmq::LAYOUT_VERSION => current += 1,
                    _ => other += 1,
                }
            }
        }
    }
    assert!(
        current > 100 && current > 20 * other,
        "{current} segment headers carry layout version {} and {other} another: regenerate the corpus (fuzz/README.md)",
        shmq::LAYOUT_VERSION
    );
}
