//! loom model of single active consumer (src/ring/single_active.rs): the
//! active consumer leaves (or dies after each of its atomic writes, its row
//! then swept) while two standbys elect. At no point may two consumers be
//! told they are active, and the queue ends with the oldest standby active:
//! never none, never the younger. Real processes killed while active:
//! tests/single_active_consumer.rs.
#![cfg(shmq_loom)]

use loom::sync::Arc;
use loom::thread;
use shmq::crash::die_after;
use shmq::ring::heap::HeapMemory;
use shmq::ring::{Geometry, Ring};

const CONSUMER: u32 = 2;
const SWEEPER: u64 = 0x5EE9;

fn ring() -> Arc<Ring<HeapMemory>> {
    Arc::new(Ring::new(HeapMemory::new(Geometry { slot_count: 2, data_units: 16 })))
}

/// The active consumer `a` leaves after `writes` atomic writes of its
/// handover (all of them if it finishes); a sweep frees its row if it died.
fn leave(ring: &Ring<HeapMemory>, a: u16, writes: u32) {
    if die_after(writes, || ring.hand_over(a)).is_some() {
        ring.release_agent(a, 0xA);
    } else {
        ring.recover(SWEEPER, &mut |token| token != 0xA);
    }
}

fn model(writes: u32) {
    loom::model(move || {
        let ring = ring();
        let a = ring.register_agent(0xA, CONSUMER, 1, 0).unwrap();
        let b = ring.register_agent(0xB, CONSUMER, 2, 0).unwrap();
        let c = ring.register_agent(0xC, CONSUMER, 3, 0).unwrap();
        assert!(ring.is_active_consumer(a));
        let younger = {
            let ring = ring.clone();
            thread::spawn(move || ring.is_active_consumer(c))
        };
        let leaver = {
            let ring = ring.clone();
            thread::spawn(move || leave(&ring, a, writes))
        };
        let older = ring.is_active_consumer(b);
        let younger = younger.join().unwrap();
        leaver.join().unwrap();
        assert!(!younger, "the younger standby was made active while the older one waited");
        // `older` may be false: it looked before `a` left; never both.
        assert!(!(older && younger));
        assert!(ring.is_active_consumer(b), "nobody took over from the consumer that left");
        assert!(!ring.is_active_consumer(c));
        assert_eq!(ring.elect_active(None), Some(b));
    });
}

#[test]
fn a_consumer_that_leaves_hands_over_to_the_oldest_standby() {
    model(u32::MAX);
}

#[test]
fn a_consumer_that_dies_at_any_step_of_its_handover_is_replaced_by_the_oldest() {
    for writes in 0..=2 {
        model(writes);
    }
}

/// Two standbys elect at once while the active consumer is alive: neither
/// is ever told it is active.
#[test]
fn standbys_never_displace_a_live_active_consumer() {
    loom::model(|| {
        let ring = ring();
        let a = ring.register_agent(0xA, CONSUMER, 1, 0).unwrap();
        let b = ring.register_agent(0xB, CONSUMER, 2, 0).unwrap();
        let c = ring.register_agent(0xC, CONSUMER, 3, 0).unwrap();
        let other = {
            let ring = ring.clone();
            thread::spawn(move || ring.is_active_consumer(c))
        };
        let mine = ring.is_active_consumer(b);
        let theirs = other.join().unwrap();
        assert!(!mine && !theirs, "a standby displaced the live active consumer");
        assert!(ring.is_active_consumer(a));
    });
}

/// A consumer registers while the active one leaves and a standby elects:
/// the newcomer never goes ahead of the standby that waited (its ticket is
/// read against a next-ticket value taken after the rows; a review found a
/// newcomer looking 2^32 old when that value was read first).
#[test]
fn a_consumer_registering_during_an_election_never_jumps_the_line() {
    loom::model(|| {
        let ring = ring();
        let a = ring.register_agent(0xA, CONSUMER, 1, 0).unwrap();
        let b = ring.register_agent(0xB, CONSUMER, 2, 0).unwrap();
        assert!(ring.is_active_consumer(a));
        let newcomer = {
            let ring = ring.clone();
            // Two registrations: its ticket runs ahead of any next-ticket
            // value an elector may have read first.
            thread::spawn(move || {
                let first = ring.register_agent(0xC, CONSUMER, 3, 0).unwrap();
                ring.release_agent(first, 0xC);
                ring.register_agent(0xC, CONSUMER, 3, 0).unwrap()
            })
        };
        ring.hand_over(a);
        ring.release_agent(a, 0xA);
        let c = newcomer.join().unwrap();
        assert!(!ring.is_active_consumer(c), "the newcomer went ahead of the waiting standby");
        assert!(ring.is_active_consumer(b));
    });
}
