//! cargo-fuzz target; the checks are in ../harness/topic_route.rs, shared with
//! tests/fuzz_regressions.rs.
#![no_main]

#[path = "../harness/topic_route.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
