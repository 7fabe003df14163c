//! loom models of shmq live in tests/; see tests/ring.rs.
