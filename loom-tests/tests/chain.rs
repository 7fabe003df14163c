//! loom models of the steps elastic queues add to the ring: closing a ring
//! while producers claim in it, a consumer deciding it has dispatched
//! everything and moving on, and processes killed after each write of a
//! claim that races the close. The chain files and the growth lock are
//! tested for real in tests/elastic.rs; what must be lock-free is here.
#![cfg(shmq_loom)]

use loom::sync::Arc;
use loom::thread;
use shmq::crash::die_after;
use shmq::ring::heap::HeapMemory;
use shmq::ring::{ClaimError, ClaimLimits, Geometry, ReclaimHint, Ring, RingMemory, Settle, Take};

type HeapRing = Ring<HeapMemory>;

const SWEEPER: u64 = 0x5EE9;
const DEAD: u64 = 0xDEAD;

fn ring() -> Arc<HeapRing> {
    Arc::new(Ring::new(HeapMemory::new(Geometry { slot_count: 2, data_units: 16 })))
}

/// Publishes one 8-byte message into `ring`; the claim's error if none.
fn publish(ring: &HeapRing, agent: u16, byte: u8) -> Result<(), ClaimError> {
    let claim = ring.try_claim(agent, &[1], &mut ReclaimHint::default(), ClaimLimits::NONE)?;
    let (start, end) = ring.place(claim.data, 1);
    // SAFETY: the claim gave us [start, end).
    assert!(unsafe { ring.memory().write_data(ring.data_offset(start), &[byte; 8]) });
    ring.commit(claim.first, start, end, 0, 8, 0);
    ring.claim_done(agent);
    ring.notify_consumers();
    Ok(())
}

/// As a producer does: into the old ring, or into the new one once the old
/// is closed. True if it published.
fn publish_in_chain(old: &HeapRing, new: &HeapRing, (in_old, in_new): (u16, u16), byte: u8) -> bool {
    match publish(old, in_old, byte) {
        Ok(()) => true,
        Err(ClaimError::Closed) => publish(new, in_new, byte).is_ok(),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

/// Takes and acks one message; its first byte.
fn take_one(ring: &HeapRing, agent: u16) -> Option<u8> {
    match ring.try_take(agent, false, &mut || 0) {
        Take::Got(record) => {
            let mut body = [0u8; 8];
            // SAFETY: the record is DELIVERED to us.
            assert!(unsafe { ring.memory().read_data(ring.data_offset(record.data_start), &mut body) });
            assert!(ring.settle(agent, record.pos, Settle::Done));
            Some(body[0])
        }
        Take::Empty | Take::Stalled(_) => None,
        other => panic!("unexpected {other:?}"),
    }
}

fn drain(ring: &HeapRing, agent: u16) -> Vec<u8> {
    let mut got = Vec::new();
    while let Some(b) = take_one(ring, agent) {
        got.push(b);
    }
    got
}

#[test]
fn a_claim_racing_the_close_is_dispatched_before_the_consumer_moves_on_or_goes_to_the_new_ring() {
    loom::model(|| {
        let (old, new) = (ring(), ring());
        let producer = (old.register_agent(0x9000, 1, 1, 0).unwrap(), new.register_agent(0x9000, 1, 1, 0).unwrap());
        let consumer = (old.register_agent(0xC000, 2, 2, 0).unwrap(), new.register_agent(0xC000, 2, 2, 0).unwrap());
        let publishing = {
            let (old, new) = (old.clone(), new.clone());
            thread::spawn(move || assert!(publish_in_chain(&old, &new, producer, 1)))
        };
        // The grower closes the old ring; its consumer drains it until it
        // has dispatched everything, then moves on for good.
        old.close();
        let mut got = Vec::new();
        loop {
            if let Some(b) = take_one(&old, consumer.0) {
                got.push(b);
            } else if old.is_dispatched() {
                break;
            } else {
                thread::yield_now();
            }
        }
        publishing.join().unwrap();
        // Nothing may land in the ring the consumer left.
        assert_eq!(drain(&old, consumer.0), Vec::<u8>::new(), "a message was committed in a ring after it was dispatched");
        got.extend(drain(&new, consumer.1));
        assert_eq!(got, vec![1]);
        old.skip_dead_head();
        old.reclaim();
        assert!(old.is_drained(), "the old ring must retire once everything in it is settled");
    });
}

#[test]
fn two_producers_racing_the_close_lose_nothing_and_keep_their_order() {
    loom::model(|| {
        let (old, new) = (ring(), ring());
        let a = (old.register_agent(0x9000, 1, 1, 0).unwrap(), new.register_agent(0x9000, 1, 1, 0).unwrap());
        let b = (old.register_agent(0x9001, 1, 2, 0).unwrap(), new.register_agent(0x9001, 1, 2, 0).unwrap());
        let consumer = (old.register_agent(0xC000, 2, 3, 0).unwrap(), new.register_agent(0xC000, 2, 3, 0).unwrap());
        let first = {
            let (old, new) = (old.clone(), new.clone());
            thread::spawn(move || assert!(publish_in_chain(&old, &new, a, 1)))
        };
        let second = {
            let (old, new) = (old.clone(), new.clone());
            thread::spawn(move || assert!(publish_in_chain(&old, &new, b, 2)))
        };
        old.close();
        first.join().unwrap();
        second.join().unwrap();
        let mut got = drain(&old, consumer.0);
        assert!(old.is_dispatched());
        got.extend(drain(&new, consumer.1));
        got.sort();
        assert_eq!(got, vec![1, 2]);
    });
}

#[test]
fn producer_killed_after_each_step_of_a_claim_racing_the_close_leaves_the_old_ring_retirable() {
    // Writes of a publish that races the close: intent, cursor CAS, (on
    // seeing the close) ABANDONED, intent clear, wake; or the four slot
    // fields, expiry, READY, intent clear; one more runs past the end.
    for step in 1..=10 {
        loom::model(move || {
            let (old, new) = (ring(), ring());
            let victim = (old.register_agent(DEAD, 1, 1, 0).unwrap(), new.register_agent(DEAD, 1, 1, 0).unwrap());
            let consumer = (old.register_agent(0xC000, 2, 2, 0).unwrap(), new.register_agent(0xC000, 2, 2, 0).unwrap());
            let dying = {
                let (old, new) = (old.clone(), new.clone());
                thread::spawn(move || die_after(step, || publish_in_chain(&old, &new, victim, 1)))
            };
            old.close();
            let published = dying.join().unwrap() == Some(true);
            for ring in [&old, &new] {
                ring.recover(SWEEPER, &mut |token| token != DEAD);
            }
            let mut got = drain(&old, consumer.0);
            got.extend(drain(&new, consumer.1));
            assert!(got == vec![1] || (got.is_empty() && !published), "got {got:?} after write {step}");
            old.skip_dead_head();
            old.reclaim();
            assert!(old.is_drained(), "after write {step} the old ring never drains");
        });
    }
}
