//! loom models of the ring algorithm, on a heap-backed instance of the same
//! generic code that runs over the mmap in production.
//!
//! Run with:
//! `RUSTFLAGS="--cfg shmq_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shmq-loom-tests --release`
#![cfg(shmq_loom)]

use loom::sync::Arc;
use loom::thread;
use shmq::ring::heap::HeapMemory;
use shmq::ring::{Geometry, Ring, RingMemory, Settle, Take};

type HeapRing = Ring<HeapMemory>;

fn ring(slots: u32, units: u32) -> Arc<HeapRing> {
    Arc::new(Ring::new(HeapMemory::new(Geometry { slot_count: slots, data_units: units })))
}

/// Claims, writes and commits one message; false if the ring was full.
fn publish(ring: &HeapRing, agent: u16, body: &[u8]) -> bool {
    let units = body.len().div_ceil(8) as u32;
    let Ok(claim) = ring.try_claim(agent, &[units], &mut 0) else { return false };
    let (start, end) = ring.place(claim.data, units);
    // SAFETY: the claim gave us [start, end).
    assert!(unsafe { ring.memory().write_data(ring.data_offset(start), body) });
    ring.commit(claim.first, start, end, 0, body.len() as u32, 0);
    ring.notify_consumers();
    true
}

/// Takes one message and copies its body out; the delivery stays held.
fn take(ring: &HeapRing, agent: u16) -> Option<(u32, Vec<u8>, bool)> {
    match ring.try_take(agent, false, &mut || 0) {
        Take::Got(record) => {
            let mut body = vec![0u8; record.body_len as usize];
            // SAFETY: the record is DELIVERED to us.
            assert!(unsafe { ring.memory().read_data(ring.data_offset(record.data_start), &mut body) });
            Some((record.pos, body, record.redelivered()))
        }
        Take::Empty | Take::Stalled(_) => None,
        other => panic!("unexpected {other:?}"),
    }
}

fn publish_spinning(ring: &HeapRing, agent: u16, body: &[u8]) {
    while !publish(ring, agent, body) {
        thread::yield_now();
    }
}

/// Takes and acks, yielding until something arrives.
fn consume_spinning(ring: &HeapRing, agent: u16) -> Vec<u8> {
    loop {
        if let Some((pos, body, _)) = take(ring, agent) {
            assert!(ring.settle(agent, pos, Settle::Done));
            return body;
        }
        thread::yield_now();
    }
}

#[test]
fn one_producer_one_consumer_wraparound() {
    loom::model(|| {
        // Two slots and 16 units: three 16-byte messages wrap the slots, and
        // the 40-byte one forces wrap padding in the data ring.
        let ring = ring(2, 16);
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                publish_spinning(&ring, 0, &[1; 16]);
                publish_spinning(&ring, 0, &[2; 40]);
                publish_spinning(&ring, 0, &[3; 16]);
            })
        };
        assert_eq!(consume_spinning(&ring, 1), vec![1; 16]);
        assert_eq!(consume_spinning(&ring, 1), vec![2; 40]);
        assert_eq!(consume_spinning(&ring, 1), vec![3; 16]);
        producer.join().unwrap();
    });
}

#[test]
fn two_producers_one_consumer() {
    loom::model(|| {
        let ring = ring(2, 16);
        let producers: Vec<_> = (0..2u8)
            .map(|p| {
                let ring = ring.clone();
                thread::spawn(move || publish_spinning(&ring, u16::from(p), &[p + 1; 8]))
            })
            .collect();
        let mut got = vec![consume_spinning(&ring, 2), consume_spinning(&ring, 2)];
        got.sort();
        assert_eq!(got, vec![vec![1; 8], vec![2; 8]]);
        for p in producers {
            p.join().unwrap();
        }
    });
}

#[test]
fn two_consumers_get_each_message_exactly_once() {
    loom::model(|| {
        let ring = ring(4, 16);
        assert!(publish(&ring, 0, &[7; 8]));
        assert!(publish(&ring, 0, &[8; 8]));
        let consumers: Vec<_> = (1..3u16)
            .map(|agent| {
                let ring = ring.clone();
                thread::spawn(move || {
                    let got = take(&ring, agent);
                    if let Some((pos, _, _)) = &got {
                        assert!(ring.settle(agent, *pos, Settle::Done));
                    }
                    got.map(|(_, body, _)| body)
                })
            })
            .collect();
        let mut got: Vec<Vec<u8>> = consumers.into_iter().filter_map(|c| c.join().unwrap()).collect();
        // Whatever the consumers did not take is still there, once.
        while let Some((pos, body, _)) = take(&ring, 3) {
            assert!(ring.settle(3, pos, Settle::Done));
            got.push(body);
        }
        got.sort();
        assert_eq!(got, vec![vec![7; 8], vec![8; 8]]);
    });
}

#[test]
fn requeue_races_with_a_competing_consumer() {
    loom::model(|| {
        let ring = ring(2, 16);
        assert!(publish(&ring, 0, &[5; 8]));
        let (pos, _, redelivered) = take(&ring, 1).unwrap();
        assert!(!redelivered);
        let rival = {
            let ring = ring.clone();
            thread::spawn(move || take(&ring, 2))
        };
        assert!(ring.settle(1, pos, Settle::Requeue));
        let by_rival = rival.join().unwrap();
        let (pos, body, redelivered) = match by_rival {
            Some(got) => (got.0, got.1, got.2),
            None => {
                let got = take(&ring, 2).expect("requeued message must be deliverable");
                (got.0, got.1, got.2)
            }
        };
        assert_eq!((body, redelivered), (vec![5; 8], true));
        assert!(ring.settle(2, pos, Settle::Done));
        assert!(take(&ring, 1).is_none());
    });
}

#[test]
fn ack_and_reclaim_race_with_a_publish_into_the_freed_space() {
    loom::model(|| {
        // One lap of data holds one 64-byte message: the second publish must
        // wait for the ack's reclaim, and must not overwrite the first body
        // while the consumer reads it (loom checks the byte accesses).
        let ring = ring(2, 16);
        assert!(publish(&ring, 0, &[1; 64]));
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || publish_spinning(&ring, 0, &[2; 64]))
        };
        assert_eq!(consume_spinning(&ring, 1), vec![1; 64]);
        producer.join().unwrap();
        assert_eq!(consume_spinning(&ring, 1), vec![2; 64]);
    });
}

/// The eventcount protocol of `Consumer::recv`: take, else arm, re-check,
/// sleep. The loom futex has no timeout, so a lost wake-up deadlocks.
fn consume_blocking(ring: &HeapRing, agent: u16) -> Vec<u8> {
    loop {
        if let Some((pos, body, _)) = take(ring, agent) {
            assert!(ring.settle(agent, pos, Settle::Done));
            return body;
        }
        let not_empty = ring.not_empty();
        let ticket = not_empty.prepare_wait();
        if let Some((pos, body, _)) = take(ring, agent) {
            assert!(ring.settle(agent, pos, Settle::Done));
            return body;
        }
        not_empty.wait(ticket, None);
    }
}

#[test]
fn blocked_consumer_is_woken_by_a_publish() {
    loom::model(|| {
        let ring = ring(2, 16);
        let consumer = {
            let ring = ring.clone();
            thread::spawn(move || consume_blocking(&ring, 1))
        };
        assert!(publish(&ring, 0, &[9; 8]));
        assert_eq!(consumer.join().unwrap(), vec![9; 8]);
    });
}

#[test]
fn consumer_that_sleeps_again_is_woken_again() {
    // The first notify clears the armed bit; the second sleep must re-arm it,
    // or the second publish would skip its wake-up.
    loom::model(|| {
        let ring = ring(2, 16);
        let consumer = {
            let ring = ring.clone();
            thread::spawn(move || (consume_blocking(&ring, 1), consume_blocking(&ring, 1)))
        };
        assert!(publish(&ring, 0, &[1; 8]));
        assert!(publish(&ring, 0, &[2; 8]));
        assert_eq!(consumer.join().unwrap(), (vec![1; 8], vec![2; 8]));
    });
}

#[test]
fn two_sleeping_consumers_are_both_woken() {
    // One armed bit covers both sleepers: a notify wakes all, and a consumer
    // that finds nothing re-arms before sleeping again. Three threads: bound
    // the preemptions to 2 whatever LOOM_MAX_PREEMPTIONS says (3 took 7 min).
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let ring = ring(2, 16);
        let consumers: Vec<_> = (1..=2u16)
            .map(|agent| {
                let ring = ring.clone();
                thread::spawn(move || consume_blocking(&ring, agent))
            })
            .collect();
        assert!(publish(&ring, 0, &[1; 8]));
        assert!(publish(&ring, 0, &[2; 8]));
        let mut got: Vec<_> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, vec![vec![1; 8], vec![2; 8]]);
    });
}

#[test]
fn dead_consumers_deliveries_are_requeued_while_another_consumes() {
    loom::model(|| {
        let ring = ring(2, 16);
        const DEAD: u64 = 0xDEAD;
        const LIVE: u64 = 0xA11E;
        let dead_agent = ring.register_agent(DEAD, 2, 1, 0).unwrap();
        let live_agent = ring.register_agent(LIVE, 2, 2, 0).unwrap();
        assert!(publish(&ring, live_agent, &[4; 8]));
        let (_, _, _) = take(&ring, dead_agent).unwrap();
        let sweeper = {
            let ring = ring.clone();
            thread::spawn(move || ring.recover(&mut |token| token != DEAD).requeued)
        };
        let mut got = None;
        for _ in 0..3 {
            if let Some(g) = take(&ring, live_agent) {
                got = Some(g);
                break;
            }
            thread::yield_now();
        }
        assert_eq!(sweeper.join().unwrap(), 1);
        let (pos, body, redelivered) = got.or_else(|| take(&ring, live_agent)).expect("requeued");
        assert_eq!((body, redelivered), (vec![4; 8], true));
        assert!(ring.settle(live_agent, pos, Settle::Done));
    });
}

#[test]
fn dead_producers_claim_is_abandoned_and_the_queue_flows() {
    loom::model(|| {
        let ring = ring(4, 16);
        const DEAD: u64 = 0xDEAD;
        const LIVE: u64 = 0xA11E;
        let dead_agent = ring.register_agent(DEAD, 1, 1, 0).unwrap();
        let live_agent = ring.register_agent(LIVE, 1, 2, 0).unwrap();
        // The dead producer claimed a slot and died before committing.
        ring.try_claim(dead_agent, &[1], &mut 0).unwrap();
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || publish_spinning(&ring, live_agent, &[6; 8]))
        };
        let sweeper = {
            let ring = ring.clone();
            thread::spawn(move || ring.recover(&mut |token| token != DEAD).abandoned)
        };
        assert_eq!(sweeper.join().unwrap(), 1);
        producer.join().unwrap();
        assert_eq!(consume_spinning(&ring, live_agent), vec![6; 8]);
    });
}

#[test]
fn two_consumers_ack_and_reclaim_concurrently() {
    loom::model(|| {
        // Both slots are in flight; two consumers ack them at once, and both
        // run the reclaim (one resets, the other may help move the cursor).
        let ring = ring(2, 16);
        assert!(publish(&ring, 0, &[1; 8]));
        assert!(publish(&ring, 0, &[2; 8]));
        let (a, _, _) = take(&ring, 1).unwrap();
        let (b, _, _) = take(&ring, 2).unwrap();
        let ackers: Vec<_> = [(1u16, a), (2u16, b)]
            .into_iter()
            .map(|(agent, pos)| {
                let ring = ring.clone();
                thread::spawn(move || assert!(ring.settle(agent, pos, Settle::Done)))
            })
            .collect();
        for t in ackers {
            t.join().unwrap();
        }
        ring.reclaim();
        // Everything was reclaimed: a full lap fits again, in order.
        assert!(publish(&ring, 0, &[3; 8]));
        assert!(publish(&ring, 0, &[4; 8]));
        assert_eq!(consume_spinning(&ring, 1), vec![3; 8]);
        assert_eq!(consume_spinning(&ring, 1), vec![4; 8]);
    });
}

#[test]
fn batch_take_races_with_a_single_take() {
    loom::model(|| {
        let ring = ring(4, 16);
        for b in 1..=3u8 {
            assert!(publish(&ring, 0, &[b; 8]));
        }
        let single = {
            let ring = ring.clone();
            thread::spawn(move || {
                let got = take(&ring, 2);
                if let Some((pos, _, _)) = &got {
                    assert!(ring.settle(2, *pos, Settle::Done));
                }
                got.map(|(_, body, _)| body[0])
            })
        };
        let mut records = [shmq::ring::Record::default(); 3];
        let batch = ring.take_batch(1, true, &mut || 0, &mut records);
        let mut got: Vec<u8> = Vec::new();
        for record in &records[..batch.got] {
            let mut body = [0u8; 8];
            // SAFETY: DELIVERED to agent 1.
            assert!(unsafe { ring.memory().read_data(ring.data_offset(record.data_start), &mut body) });
            got.push(body[0]);
            ring.finish_owned(record.pos, record.flags, true);
        }
        got.extend(single.join().unwrap());
        while let Some((pos, body, _)) = take(&ring, 3) {
            assert!(ring.settle(3, pos, Settle::Done));
            got.push(body[0]);
        }
        got.sort();
        assert_eq!(got, vec![1, 2, 3]);
    });
}

#[test]
fn producer_registering_during_a_sweep_is_not_mistaken_for_dead() {
    loom::model(|| {
        // A sweep runs (finding one dead agent) while a new producer
        // registers, claims and commits: its claim must never be abandoned,
        // or its message would be stranded below the read cursor.
        let ring = ring(4, 16);
        const DEAD: u64 = 0xDEAD;
        const NEW: u64 = 0x0E11;
        ring.register_agent(DEAD, 1, 1, 0).unwrap();
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let agent = ring.register_agent(NEW, 1, 2, 0).unwrap();
                publish_spinning(&ring, agent, &[3; 8]);
            })
        };
        let sweeper = {
            let ring = ring.clone();
            thread::spawn(move || ring.recover(&mut |token| token != DEAD).abandoned)
        };
        assert_eq!(sweeper.join().unwrap(), 0);
        producer.join().unwrap();
        assert_eq!(consume_spinning(&ring, 3), vec![3; 8]);
    });
}
