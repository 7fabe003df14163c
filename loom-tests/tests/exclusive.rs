//! loom model of exclusive consumers (`Ring::claim_exclusive` and
//! `Ring::exclusively_held`): an exclusive consumer and an ordinary one
//! register at the same time; never may both be accepted. The real
//! processes' side is in python/tests/test_exclusive_consumer_vs_rabbitmq.py
//! and tests/queue_api.rs.
#![cfg(shmq_loom)]

use loom::sync::Arc;
use loom::thread;
use shmq::ring::heap::HeapMemory;
use shmq::ring::{Geometry, Ring};

const CONSUMER: u32 = 2;

#[test]
fn an_exclusive_consumer_and_another_are_never_both_accepted() {
    loom::model(|| {
        let ring = Arc::new(Ring::new(HeapMemory::new(Geometry { slot_count: 2, data_units: 16 })));
        let exclusive = {
            let ring = ring.clone();
            thread::spawn(move || {
                let owner = ring.register_agent(0xE, CONSUMER, 1, 0).unwrap();
                ring.claim_exclusive(owner)
            })
        };
        let owner = ring.register_agent(0xC, CONSUMER, 2, 0).unwrap();
        let ordinary = !ring.exclusively_held(owner);
        let claimed = exclusive.join().unwrap();
        assert!(!(claimed && ordinary), "an exclusive consumer and an ordinary one were both accepted");
        // One of them at least: the claim gives way only to a consumer it
        // saw, and that consumer then sees no claim.
        assert!(claimed || ordinary);
    });
}

#[test]
fn two_exclusive_consumers_are_never_both_accepted() {
    loom::model(|| {
        let ring = Arc::new(Ring::new(HeapMemory::new(Geometry { slot_count: 2, data_units: 16 })));
        let other = {
            let ring = ring.clone();
            thread::spawn(move || {
                let owner = ring.register_agent(0xE1, CONSUMER, 1, 0).unwrap();
                ring.claim_exclusive(owner)
            })
        };
        let owner = ring.register_agent(0xE2, CONSUMER, 2, 0).unwrap();
        let mine = ring.claim_exclusive(owner);
        let theirs = other.join().unwrap();
        assert!(!(mine && theirs), "two exclusive consumers were both accepted");
    });
}
