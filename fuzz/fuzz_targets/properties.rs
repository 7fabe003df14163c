//! cargo-fuzz target; the checks are in ../harness/properties.rs, shared with
//! tests/fuzz_regressions.rs.
#![no_main]

#[path = "../harness/properties.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
