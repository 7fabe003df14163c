//! loom models of the ring algorithm, on a heap-backed instance of the same
//! generic code that runs over the mmap in production.
//!
//! Run with:
//! `RUSTFLAGS="--cfg shmq_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shmq-loom-tests --release`
#![cfg(shmq_loom)]

use loom::sync::Arc;
use loom::thread;
use shmq::crash::die_after;
use shmq::ring::heap::HeapMemory;
use shmq::ring::{ClaimLimits, Geometry, ReclaimHint, Ring, RingMemory, Settle, Take};

type HeapRing = Ring<HeapMemory>;

/// The liveness token sweepers run under.
const SWEEPER: u64 = 0x5EE9;

/// The liveness token of the process a model kills (or finds dead).
const DEAD: u64 = 0xDEAD;

fn ring(slots: u32, units: u32) -> Arc<HeapRing> {
    Arc::new(Ring::new(HeapMemory::new(Geometry { slot_count: slots, data_units: units })))
}

/// Claims, writes and commits one message; false if the ring was full.
fn publish(ring: &HeapRing, agent: u16, body: &[u8]) -> bool {
    let units = body.len().div_ceil(8) as u32;
    let Ok(claim) = ring.try_claim(agent, &[units], &mut ReclaimHint::default(), ClaimLimits::NONE) else { return false };
    let (start, end) = ring.place(claim.data, units);
    // SAFETY: the claim gave us [start, end).
    assert!(unsafe { ring.memory().write_data(ring.data_offset(start), body) });
    ring.commit(claim.first, start, end, 0, body.len() as u32, 0);
    ring.claim_done(agent);
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
        const LIVE: u64 = 0xA11E;
        let dead_agent = ring.register_agent(DEAD, 2, 1, 0).unwrap();
        let live_agent = ring.register_agent(LIVE, 2, 2, 0).unwrap();
        assert!(publish(&ring, live_agent, &[4; 8]));
        let (_, _, _) = take(&ring, dead_agent).unwrap();
        let sweeper = {
            let ring = ring.clone();
            thread::spawn(move || ring.recover(SWEEPER, &mut |token| token != DEAD).requeued)
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
        const LIVE: u64 = 0xA11E;
        let dead_agent = ring.register_agent(DEAD, 1, 1, 0).unwrap();
        let live_agent = ring.register_agent(LIVE, 1, 2, 0).unwrap();
        // The dead producer claimed a slot and died before committing.
        ring.try_claim(dead_agent, &[1], &mut ReclaimHint::default(), ClaimLimits::NONE).unwrap();
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || publish_spinning(&ring, live_agent, &[6; 8]))
        };
        let sweeper = {
            let ring = ring.clone();
            thread::spawn(move || ring.recover(SWEEPER, &mut |token| token != DEAD).abandoned)
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
            thread::spawn(move || ring.recover(SWEEPER, &mut |token| token != DEAD).abandoned)
        };
        assert_eq!(sweeper.join().unwrap(), 0);
        producer.join().unwrap();
        assert_eq!(consume_spinning(&ring, 3), vec![3; 8]);
    });
}

/// Every write of the consumer protocol at which a consumer can die: the
/// models below kill it after each one in turn.
const CONSUMER_STEPS: u32 = 8;

/// Takes everything, acking, until the ring stays empty; the bodies.
fn drain_all(ring: &HeapRing, agent: u16) -> Vec<u8> {
    let mut got = Vec::new();
    while let Some((pos, body, _)) = take(ring, agent) {
        assert!(ring.settle(agent, pos, Settle::Done));
        got.push(body[0]);
    }
    got
}

/// After recovery the ring must still go round: two more laps of a
/// two-slot ring publish and deliver in order.
fn assert_ring_flows(ring: &HeapRing, producer: u16, consumer: u16) {
    for b in [20u8, 21, 22, 23] {
        assert!(publish(ring, producer, &[b; 8]), "ring wedged: publish of {b} found it full");
        assert_eq!(drain_all(ring, consumer), vec![b]);
    }
}

/// A two-slot ring holding message 1, with a producer, the consumer that
/// will die, and a live consumer: `(ring, producer, victim, live)`.
fn ring_with_a_victim() -> (Arc<HeapRing>, u16, u16, u16) {
    let ring = ring(2, 16);
    let producer = ring.register_agent(0x9000, 1, 1, 0).unwrap();
    let victim = ring.register_agent(DEAD, 2, 2, 0).unwrap();
    let live = ring.register_agent(0xA11E, 2, 3, 0).unwrap();
    assert!(publish(&ring, producer, &[1; 8]));
    (ring, producer, victim, live)
}

/// After the victim's death: one sweep, then everything the live consumer
/// can take, sorted.
fn recover_and_drain(ring: &HeapRing, live: u16) -> Vec<u8> {
    ring.recover(SWEEPER, &mut |token| token != DEAD);
    let mut got = drain_all(ring, live);
    got.sort();
    got
}

#[test]
fn consumer_killed_after_each_step_of_take_and_ack_loses_nothing() {
    for step in 1..=CONSUMER_STEPS {
        loom::model(move || {
            let (ring, producer, victim, live) = ring_with_a_victim();
            let publishing = {
                let ring = ring.clone();
                thread::spawn(move || assert!(publish(&ring, producer, &[2; 8])))
            };
            // The victim takes and acks a message, dying after its `step`-th
            // write, while the producer publishes another. What the victim
            // had taken when it died counts as consumed only if it acked it:
            // otherwise recovery must requeue it, or its slot stays held and
            // the two-slot ring wedges in `assert_ring_flows`.
            let taken = std::sync::Arc::new(std::sync::Mutex::new(None));
            let dying = {
                let ring = ring.clone();
                let taken = taken.clone();
                thread::spawn(move || {
                    die_after(step, || {
                        let (pos, body, _) = take(&ring, victim)?;
                        *taken.lock().unwrap() = Some(body[0]);
                        assert!(ring.settle(victim, pos, Settle::Done));
                        Some(())
                    })
                })
            };
            // The single-consumer case: nobody else moves `read` past
            // what the victim left before the sweep (a second consumer
            // would hide a slot stranded at the read cursor).
            dying.join().unwrap();
            publishing.join().unwrap();
            let mut got = recover_and_drain(&ring, live);
            got.extend(taken.lock().unwrap().take());
            got.sort();
            got.dedup();
            assert_eq!(got, vec![1, 2], "a message was lost (victim died after write {step})");
            assert_ring_flows(&ring, producer, live);
        });
    }
}

#[test]
fn consumer_killed_after_each_step_of_a_batch_take_loses_nothing() {
    for step in 1..=CONSUMER_STEPS {
        loom::model(move || {
            let (ring, producer, victim, live) = ring_with_a_victim();
            assert!(publish(&ring, producer, &[2; 8]));
            let dying = {
                let ring = ring.clone();
                thread::spawn(move || {
                    die_after(step, || {
                        let mut records = [shmq::ring::Record::default(); 2];
                        let batch = ring.take_batch(victim, false, &mut || 0, &mut records);
                        // Holds them unacked, as a manual-ack consumer would.
                        batch.got
                    })
                })
            };
            // Single consumer: see above. If the victim finished, it holds
            // its batch unacked and its death comes now.
            dying.join().unwrap();
            let got = recover_and_drain(&ring, live);
            assert_eq!(got, vec![1, 2], "lost or duplicated (victim died after write {step})");
            assert_ring_flows(&ring, producer, live);
        });
    }
}

#[test]
fn producer_killed_after_each_step_of_a_publish_leaves_a_flowing_queue() {
    // Writes of a publish: intent, cursor CAS, four slot fields, expiry,
    // READY, intent clear (and one more to run past the end).
    for step in 1..=10 {
        loom::model(move || {
            let ring = ring(2, 16);
            let victim = ring.register_agent(DEAD, 1, 1, 0).unwrap();
            let producer = ring.register_agent(0x9000, 1, 2, 0).unwrap();
            let live = ring.register_agent(0xA11E, 2, 3, 0).unwrap();
            let dying = {
                let ring = ring.clone();
                thread::spawn(move || die_after(step, || publish(&ring, victim, &[1; 8])))
            };
            let live_publish = {
                let ring = ring.clone();
                thread::spawn(move || publish_spinning(&ring, producer, &[2; 8]))
            };
            let published = dying.join().unwrap() == Some(true);
            live_publish.join().unwrap();
            ring.recover(SWEEPER, &mut |token| token != DEAD);
            let mut got = drain_all(&ring, live);
            got.sort();
            // The live message always arrives; the victim's only if its
            // commit happened; nothing half-written ever does.
            assert!(got == vec![1, 2] || (got == vec![2] && !published), "got {got:?} after write {step}");
            assert_ring_flows(&ring, producer, live);
        });
    }
}

#[test]
fn recovery_races_a_batch_take() {
    loom::model(|| {
        let ring = ring(4, 32);
        let producer = ring.register_agent(0x9000, 1, 1, 0).unwrap();
        let dead = ring.register_agent(DEAD, 2, 2, 0).unwrap();
        let live = ring.register_agent(0xA11E, 2, 3, 0).unwrap();
        for b in 1..=3u8 {
            assert!(publish(&ring, producer, &[b; 8]));
        }
        let (_, held, _) = take(&ring, dead).unwrap();
        assert_eq!(held, vec![1; 8]);
        let sweeper = {
            let ring = ring.clone();
            thread::spawn(move || ring.recover(SWEEPER, &mut |token| token != DEAD).requeued)
        };
        let mut records = [shmq::ring::Record::default(); 3];
        let batch = ring.take_batch(live, false, &mut || 0, &mut records);
        let mut got = Vec::new();
        for record in &records[..batch.got] {
            let mut body = [0u8; 8];
            // SAFETY: DELIVERED to `live`.
            assert!(unsafe { ring.memory().read_data(ring.data_offset(record.data_start), &mut body) });
            assert!(ring.settle(live, record.pos, Settle::Done));
            got.push(body[0]);
        }
        assert_eq!(sweeper.join().unwrap(), 1);
        got.extend(drain_all(&ring, live));
        got.sort();
        assert_eq!(got, vec![1, 2, 3]);
    });
}

#[test]
fn two_sweepers_and_a_reuse_of_the_dead_row_never_requeue_the_new_holders_delivery() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        const NEW: u64 = 0x0E11;
        let ring = ring(4, 32);
        // Fill every row but the dead one's, so a new consumer can only
        // register into the row the sweepers free.
        let producer = ring.register_agent(0x9000, 1, 1, 0).unwrap();
        let dead = ring.register_agent(DEAD, 2, 2, 0).unwrap();
        ring.register_agent(0x7777, 1, 3, 0).unwrap();
        ring.register_agent(0x8888, 1, 4, 0).unwrap();
        assert!(publish(&ring, producer, &[1; 8]));
        assert!(publish(&ring, producer, &[2; 8]));
        take(&ring, dead).unwrap();
        let sweepers: Vec<_> = [SWEEPER, SWEEPER + 1]
            .into_iter()
            .map(|me| {
                let ring = ring.clone();
                thread::spawn(move || ring.recover(me, &mut |token| token != DEAD).requeued)
            })
            .collect();
        let newcomer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let owner = loop {
                    if let Some(owner) = ring.register_agent(NEW, 2, 5, 0) {
                        break owner;
                    }
                    thread::yield_now();
                };
                // Holds whatever it takes, unacked.
                (owner, take(&ring, owner))
            })
        };
        let requeued: u32 = sweepers.into_iter().map(|s| s.join().unwrap()).sum();
        assert_eq!(requeued, 1, "the dead consumer's delivery is requeued exactly once");
        let (owner, held) = newcomer.join().unwrap();
        if let Some((pos, _, _)) = held {
            // Still the newcomer's: no sweeper requeued it under it.
            assert!(ring.settle(owner, pos, Settle::Done), "the newcomer's delivery was taken from it");
        }
    });
}

#[test]
fn blocked_producer_is_woken_when_a_dead_consumers_message_is_requeued_and_acked() {
    loom::model(|| {
        let ring = ring(1, 16);
        let producer = ring.register_agent(0x9000, 1, 1, 0).unwrap();
        let dead = ring.register_agent(DEAD, 2, 2, 0).unwrap();
        let live = ring.register_agent(0xA11E, 2, 3, 0).unwrap();
        assert!(publish(&ring, producer, &[1; 8]));
        take(&ring, dead).unwrap();
        // The one slot is held by the dead consumer: the producer blocks on
        // not_full, as `Producer::claim_blocking` does.
        let blocked = {
            let ring = ring.clone();
            thread::spawn(move || loop {
                if publish(&ring, producer, &[2; 8]) {
                    return;
                }
                let ticket = ring.not_full().prepare_wait();
                if publish(&ring, producer, &[2; 8]) {
                    return;
                }
                ring.not_full().wait(ticket, None);
            })
        };
        let sweeper = {
            let ring = ring.clone();
            thread::spawn(move || ring.recover(SWEEPER, &mut |token| token != DEAD).requeued)
        };
        assert_eq!(sweeper.join().unwrap(), 1);
        assert_eq!(consume_spinning(&ring, live), vec![1; 8]);
        blocked.join().unwrap();
        assert_eq!(consume_spinning(&ring, live), vec![2; 8]);
    });
}

#[test]
fn a_process_that_reopens_its_consumer_in_the_same_row_and_dies_gets_its_delivery_requeued() {
    loom::model(|| {
        use loom::sync::atomic::{AtomicBool, Ordering};
        const T: u64 = 0xDEAD;
        let ring = ring(4, 32);
        let producer = ring.register_agent(0x9000, 1, 1, 0).unwrap();
        let first = ring.register_agent(T, 2, 2, 0).unwrap();
        let spare = ring.register_agent(0x7777, 1, 3, 0).unwrap();
        ring.register_agent(0x8888, 1, 4, 0).unwrap();
        assert!(publish(&ring, producer, &[1; 8]));
        let died = Arc::new(AtomicBool::new(false));
        // Process T closes its consumer, opens another (the only free row is
        // the one it just left), takes the message, and dies holding it.
        let process = {
            let (ring, died) = (ring.clone(), died.clone());
            thread::spawn(move || {
                ring.release_agent(first, T);
                let second = ring.register_agent(T, 2, 2, 0).unwrap();
                assert!(take(&ring, second).is_some());
                died.store(true, Ordering::SeqCst);
            })
        };
        let sweeper = {
            let (ring, died) = (ring.clone(), died.clone());
            thread::spawn(move || {
                ring.recover(SWEEPER, &mut |token| token != T || !died.load(Ordering::SeqCst));
            })
        };
        process.join().unwrap();
        sweeper.join().unwrap();
        ring.recover(SWEEPER, &mut |token| token != T);
        ring.release_agent(spare, 0x7777);
        let live = ring.register_agent(0xA11E, 2, 5, 0).unwrap();
        assert_eq!(drain_all(&ring, live), vec![1], "the dead process's delivery was never requeued");
    });
}

#[test]
fn consumer_killed_after_each_step_of_taking_a_requeued_message_leaves_no_phantom() {
    for step in 1..=CONSUMER_STEPS {
        loom::model(move || {
            let ring = ring(2, 16);
            let producer = ring.register_agent(0x9000, 1, 1, 0).unwrap();
            let victim = ring.register_agent(DEAD, 2, 2, 0).unwrap();
            let live = ring.register_agent(0xA11E, 2, 3, 0).unwrap();
            assert!(publish(&ring, producer, &[1; 8]));
            // Taken and requeued: READY below `read`, flagged redelivered.
            let (pos, _, _) = take(&ring, live).unwrap();
            assert!(ring.settle(live, pos, Settle::Requeue));
            let dying = {
                let ring = ring.clone();
                thread::spawn(move || die_after(step, || take(&ring, victim).map(|(pos, _, _)| pos)))
            };
            dying.join().unwrap();
            ring.recover(SWEEPER, &mut |token| token != DEAD);
            assert_eq!(drain_all(&ring, live), vec![1], "the requeued message is delivered (victim died after write {step})");
            assert_eq!(ring.depth().0, 0, "a drained queue shows no ready message (victim died after write {step})");
            // And batches take from the read cursor again.
            assert!(publish(&ring, producer, &[2; 8]));
            let mut records = [shmq::ring::Record::default(); 2];
            assert_eq!(ring.take_batch(live, true, &mut || 0, &mut records).got, 1);
        });
    }
}

#[test]
fn a_requeue_racing_a_helper_that_moves_read_past_the_slot_is_still_found() {
    // A dead consumer claimed the head slot and never moved `read`. A sweep
    // requeues it while one live consumer helps `read` past the slot (it saw
    // it DELIVERED) and another clears the requeued flag and scans below the
    // old `read`. The slot ends READY below `read`; the flag must say so.
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let ring = ring(4, 32);
        let producer = ring.register_agent(0x9000, 1, 1, 0).unwrap();
        let dead = ring.register_agent(DEAD, 2, 2, 0).unwrap();
        let helper = ring.register_agent(0xA11E, 2, 3, 0).unwrap();
        assert!(publish(&ring, producer, &[1; 8]));
        // The claim CAS only: died before moving `read`.
        assert_eq!(die_after(1, || take(&ring, dead)), None);
        let threads: Vec<_> = [0, 1, 2]
            .into_iter()
            .map(|role| {
                let ring = ring.clone();
                thread::spawn(move || match role {
                    0 => drop(ring.recover(SWEEPER, &mut |token| token != DEAD)),
                    1 => drop(take(&ring, helper)),
                    _ => drop(take(&ring, helper)),
                })
            })
            .collect();
        let mut got = Vec::new();
        for t in threads {
            t.join().unwrap();
        }
        // Whatever the two takes got they held; settle them, then drain
        // without another sweep.
        for pos in ring.live_positions().collect::<Vec<_>>() {
            ring.settle(helper, pos, Settle::Done).then(|| got.push(1u8));
        }
        got.extend(drain_all(&ring, helper));
        assert_eq!(got, vec![1], "the requeued message was stranded below read with the flag clear");
    });
}

/// Registers a consumer row for `token`; its owner id.
fn consumer(ring: &HeapRing, token: u64) -> u16 {
    ring.register_agent(token, 2, 1, 0).unwrap()
}

/// A ring of `slots` with a consumer that died holding nothing (so a sweep
/// raises the `requeued` flag), message 1 delivered to a live holder, then
/// `bytes` published: the ring, the holder, a taker and a scanner (each
/// registered, as every taker is: a free row's intent covers nothing), and
/// the held delivery's position.
fn a_held_delivery_then(slots: u32, bytes: &[u8]) -> (Arc<HeapRing>, [u16; 3], u32) {
    let ring = ring(slots, slots * 8);
    ring.register_agent(DEAD, 2, 9, 0).unwrap();
    let agents = [consumer(&ring, 0xC1), consumer(&ring, 0xC2), consumer(&ring, 0xC3)];
    assert!(publish(&ring, 0, &[1; 8]));
    let (held, _, _) = take(&ring, agents[0]).unwrap();
    for &b in bytes {
        assert!(publish(&ring, 0, &[b; 8]));
    }
    (ring, agents, held)
}

/// A taker owns the slots it has moved `read` past from the moment its
/// CAS lands, before it marks them DELIVERED: a scanner below `read` must
/// leave them alone. Here the scanner is a consumer that finds the
/// `requeued` flag up (a sweep raised it after a death) and scans from
/// the oldest slot, past a delivery another consumer holds, while the
/// taker takes the message at the head. Each message is taken once.
#[test]
fn a_requeue_scan_never_takes_a_message_a_taker_has_moved_read_past() {
    loom::model(|| {
        let (ring, [holder, taker, scanner], held) = a_held_delivery_then(2, &[2]);
        let taker = {
            let ring = ring.clone();
            thread::spawn(move || take(&ring, taker).map(|(_, body, _)| body[0]))
        };
        ring.recover(SWEEPER, &mut |token| token != DEAD);
        let mut got: Vec<u8> = take(&ring, scanner).map(|(_, body, _)| body[0]).into_iter().collect();
        got.extend(taker.join().unwrap());
        assert_eq!(got, vec![2], "the message at the head was taken twice or lost");
        assert!(ring.settle(holder, held, Settle::Done));
        assert!(take(&ring, scanner).is_none());
    });
}

/// As above with a batch taker: its run of two, claimed with one move of
/// `read`, is its alone against the scanner.
#[test]
fn a_requeue_scan_never_takes_a_run_a_batch_taker_has_moved_read_past() {
    loom::model(|| {
        let (ring, [holder, taker, scanner], held) = a_held_delivery_then(4, &[2, 3]);
        let taker = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut records = [shmq::ring::Record::default(); 2];
                let batch = ring.take_batch(taker, false, &mut || 0, &mut records);
                records[..batch.got]
                    .iter()
                    .map(|record| {
                        let mut body = [0u8; 8];
                        // SAFETY: the record is DELIVERED to us.
                        assert!(unsafe { ring.memory().read_data(ring.data_offset(record.data_start), &mut body) });
                        body[0]
                    })
                    .collect::<Vec<u8>>()
            })
        };
        ring.recover(SWEEPER, &mut |token| token != DEAD);
        let mut got: Vec<u8> = take(&ring, scanner).map(|(_, body, _)| body[0]).into_iter().collect();
        got.extend(taker.join().unwrap());
        while let Some((_, body, _)) = take(&ring, scanner) {
            got.push(body[0]);
        }
        got.sort();
        assert_eq!(got, vec![2, 3], "a message of the run was taken twice or lost");
        assert!(ring.settle(holder, held, Settle::Done));
    });
}

/// A four-slot ring holding messages 1 and 2, with a producer, the batch
/// taker that will die, and a live consumer: `(ring, producer, victim,
/// live)`.
fn a_run_of_two_and_a_victim() -> (Arc<HeapRing>, u16, u16, u16) {
    let ring = ring(4, 32);
    let producer = ring.register_agent(0x9000, 1, 1, 0).unwrap();
    let victim = ring.register_agent(DEAD, 2, 2, 0).unwrap();
    let live = ring.register_agent(0xA11E, 2, 3, 0).unwrap();
    for b in [1u8, 2] {
        assert!(publish(&ring, producer, &[b; 8]));
    }
    (ring, producer, victim, live)
}

/// A batch taker killed after each write of a run take (its intent, the
/// move of `read`, each DELIVERED mark, the intent's clear) while a live
/// consumer takes too: the live one never takes what the dead one's run
/// covers before the sweep, and after it every message arrives exactly
/// once (a run the victim finished is its unacked delivery, requeued by
/// the sweep).
#[test]
fn a_batch_taker_killed_after_each_step_of_its_run_leaves_every_message_to_exactly_one_taker() {
    for step in 1..=6 {
        loom::model(move || {
            let (ring, producer, victim, live) = a_run_of_two_and_a_victim();
            let dying = {
                let ring = ring.clone();
                thread::spawn(move || {
                    die_after(step, || {
                        let mut records = [shmq::ring::Record::default(); 2];
                        ring.take_batch(victim, false, &mut || 0, &mut records).got
                    })
                })
            };
            let competing = {
                let ring = ring.clone();
                thread::spawn(move || take(&ring, live).map(|(pos, body, _)| (pos, body[0])))
            };
            dying.join().unwrap();
            let mut got = Vec::new();
            if let Some((pos, byte)) = competing.join().unwrap() {
                assert!(ring.settle(live, pos, Settle::Done));
                got.push(byte);
            }
            got.extend(recover_and_drain(&ring, live));
            got.sort();
            assert_eq!(got, vec![1, 2], "lost or duplicated (victim died after write {step})");
            assert_ring_flows(&ring, producer, live);
        });
    }
}

/// Review attack (tests/review_attacks_take.rs has the rest): a batch
/// taker killed between its `read` CAS and its DELIVERED marks leaves its
/// run READY below `read`, and only the sweep's `requeued` flag sends
/// anyone to look there. A *sweeper* with no row in this ring (declare,
/// delete, gc, the housekeeping, a consumer recovering an older ring, a
/// registration retrying after `TooManyHandles`) is killed after each of
/// its writes; a live sweeper and consumer come after. A sweeper killed
/// between freeing the dead rows and raising the flag leaves no dead row
/// for the next sweep to find (it returns early, "nobody died"): 03eefe7
/// raised the flag only after the rows, and the run was stranded below
/// `read` for good (found by the review; `recover` now raises it before
/// the rows are freed too).
#[test]
fn a_sweeper_killed_after_each_step_of_recovering_a_dead_batch_taker_strands_nothing() {
    const DEAD_SWEEPER: u64 = 0x5EE2;
    for step in 1..=40 {
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = finished.clone();
        loom::model(move || {
            let (ring, producer, victim, live) = a_run_of_two_and_a_victim();
            // Writes 1 and 2 of a run take: the intent, the move of `read`.
            let taken = die_after(2, || {
                let mut records = [shmq::ring::Record::default(); 2];
                ring.take_batch(victim, false, &mut || 0, &mut records).got
            });
            assert!(taken.is_none());
            let dead = |token: u64| token == DEAD || token == DEAD_SWEEPER;
            if die_after(step, || ring.recover(DEAD_SWEEPER, &mut |token| !dead(token))).is_some() {
                done.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            ring.recover(SWEEPER, &mut |token| !dead(token));
            let mut got = drain_all(&ring, live);
            got.sort();
            assert_eq!(got, vec![1, 2], "the dead taker's run was stranded (its sweeper died after write {step})");
            assert_ring_flows(&ring, producer, live);
        });
        if finished.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
}
