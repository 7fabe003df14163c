//! loom model of the dead-letter handoff (src/queue/dead_letter.rs): a dead
//! message is taken from its queue's ring (held DELIVERED), its copy is
//! published into the dead-letter queue's ring, and only then is the
//! original settled. The handoff runs in a process that dies after each of
//! its atomic writes, racing a second dead-letterer (a housekeeper using
//! `take_if_dead`); a sweep then recovers both rings and the survivor
//! finishes. The copy must be in the dead-letter ring at least once (a
//! duplicate is allowed, a loss is not) and the source must end empty.
//! Real processes killed during dead-lettering: tests/dead_letter_crash.rs.
#![cfg(shmq_loom)]

use loom::sync::Arc;
use loom::thread;
use shmq::crash::die_after;
use shmq::ring::heap::HeapMemory;
use shmq::ring::{ClaimLimits, Geometry, Lifecycle, ReclaimHint, Record, Ring, RingMemory, Settle, Take};

type HeapRing = Ring<HeapMemory>;

const SWEEPER: u64 = 0x5EE9;
const DEAD: u64 = 0xDEAD;
/// Every message here expired at 1; the clock reads 2.
const NOW: u64 = 2;

fn ring(lifecycle: Lifecycle) -> Arc<HeapRing> {
    Arc::new(Ring::new(HeapMemory::new(Geometry { slot_count: 2, data_units: 16 }).with_lifecycle(lifecycle)))
}

/// Publishes one 8-byte message, expired if `expired`.
fn publish(ring: &HeapRing, agent: u16, byte: u8, expired: bool) -> bool {
    let Ok(claim) = ring.try_claim(agent, &[1], &mut ReclaimHint::default(), ClaimLimits::NONE) else { return false };
    let (start, end) = ring.place(claim.data, 1);
    // SAFETY: the claim gave us [start, end).
    assert!(unsafe { ring.memory().write_data(ring.data_offset(start), &[byte; 8]) });
    ring.commit(claim.first, start, end, 0, 8, u64::from(expired));
    ring.claim_done(agent);
    true
}

fn body(ring: &HeapRing, record: &Record) -> u8 {
    let mut body = [0u8; 8];
    // SAFETY: the record is DELIVERED to the caller.
    assert!(unsafe { ring.memory().read_data(ring.data_offset(record.data_start), &mut body) });
    body[0]
}

/// The handoff, in the order `Consumer::bury` and the housekeeping use:
/// copy published first, original settled after.
fn hand_off(source: &HeapRing, target: &HeapRing, (from, to): (u16, u16), record: Record) {
    let byte = body(source, &record);
    assert!(publish(target, to, byte, false), "the dead-letter ring has room");
    assert!(source.settle(from, record.pos, Settle::Done));
}

/// A consumer's path: `try_take` hands the dead message over as `Dead`.
fn consumer_dead_letters(source: &HeapRing, target: &HeapRing, agents: (u16, u16)) -> bool {
    match source.try_take(agents.0, false, &mut || NOW) {
        Take::Dead(record, _) => {
            hand_off(source, target, agents, record);
            true
        }
        Take::Empty | Take::Stalled(_) => false,
        other => panic!("unexpected {other:?}"),
    }
}

/// The housekeeping's path: `take_if_dead`.
fn housekeeper_dead_letters(source: &HeapRing, target: &HeapRing, agents: (u16, u16)) -> bool {
    match source.take_if_dead(agents.0, NOW, &mut source.dead_scan()) {
        Some((record, _)) => {
            hand_off(source, target, agents, record);
            true
        }
        None => false,
    }
}

fn copies_in(target: &HeapRing, agent: u16) -> usize {
    let mut copies = 0;
    loop {
        match target.try_take(agent, false, &mut || NOW) {
            Take::Got(record) => {
                assert_eq!(body(target, &record), 7);
                assert!(target.settle(agent, record.pos, Settle::Done));
                copies += 1;
            }
            Take::Empty | Take::Stalled(_) => return copies,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_dead_letterer_killed_after_any_write_leaves_the_copy_or_the_original_never_neither() {
    let dead = Lifecycle { hold_dead: true, delivery_limit: None };
    // Enough steps to die after every write of take + publish + settle.
    for step in 0..12 {
        loom::model(move || {
            let (source, target) = (ring(dead), ring(Lifecycle::default()));
            let setup = source.register_agent(0x9000, 1, 1, 0).unwrap();
            assert!(publish(&source, setup, 7, true));
            let victim = (source.register_agent(DEAD, 2, 2, 0).unwrap(), target.register_agent(DEAD, 1, 2, 0).unwrap());
            let survivor = (source.register_agent(0xC000, 1, 3, 0).unwrap(), target.register_agent(0xC000, 1, 3, 0).unwrap());
            let dying = {
                let (source, target) = (source.clone(), target.clone());
                thread::spawn(move || die_after(step, || consumer_dead_letters(&source, &target, victim)))
            };
            let raced = housekeeper_dead_letters(&source, &target, survivor);
            let finished = dying.join().unwrap();
            // The process is dead: a sweep requeues what it held and skips
            // what it half-published; then the survivor dead-letters what
            // is left.
            source.recover(SWEEPER, &mut |token| token != DEAD);
            target.recover(SWEEPER, &mut |token| token != DEAD);
            while housekeeper_dead_letters(&source, &target, survivor) {}
            let copies = copies_in(&target, survivor.1);
            assert!((1..=2).contains(&copies), "{copies} copies after write {step} (raced: {raced}, finished: {finished:?})");
            assert_eq!(source.ready_count(), 0, "the original is still queued after write {step}");
        });
    }
}

#[test]
fn a_requeue_past_the_delivery_limit_is_dead_on_the_next_take_even_if_the_requeuer_dies() {
    let limited = Lifecycle { hold_dead: true, delivery_limit: Some(0) };
    for step in 0..4 {
        loom::model(move || {
            let source = ring(limited);
            let setup = source.register_agent(0x9000, 1, 1, 0).unwrap();
            assert!(publish(&source, setup, 7, false));
            let victim = source.register_agent(DEAD, 2, 2, 0).unwrap();
            let survivor = source.register_agent(0xC000, 2, 3, 0).unwrap();
            let Take::Got(record) = source.try_take(victim, false, &mut || NOW) else { panic!("no message") };
            let dying = {
                let source = source.clone();
                thread::spawn(move || die_after(step, || source.settle(victim, record.pos, Settle::Requeue)))
            };
            let _ = dying.join().unwrap();
            source.recover(SWEEPER, &mut |token| token != DEAD);
            // Requeued once, by its holder or by the sweep: over a limit of
            // 0, so it comes back dead, never as a delivery.
            match source.try_take(survivor, false, &mut || NOW) {
                Take::Dead(record, _) => assert!(record.delivery_count >= 1),
                other => panic!("after write {step}: {other:?}"),
            }
        });
    }
}

/// A dead message whose copy could not be published is shelved while a
/// housekeeping pass scans the ring: either that pass takes it or the next
/// does, and no consumer ever gets it. (A first design kept a "maybe
/// shelved" hint word cleared by each pass; this model caught a pass that
/// cleared it after a shelve set it and missed the slot, so every pass now
/// scans below `read`.)
#[test]
fn a_message_shelved_during_a_housekeeping_pass_is_found_by_that_pass_or_the_next() {
    let dead = Lifecycle { hold_dead: true, delivery_limit: None };
    loom::model(move || {
        let source = ring(dead);
        let setup = source.register_agent(0x9000, 1, 1, 0).unwrap();
        assert!(publish(&source, setup, 7, true));
        let consumer = source.register_agent(0xC000, 2, 2, 0).unwrap();
        let keeper = source.register_agent(0x4EE9, 1, 3, 0).unwrap();
        // The consumer took it dead; its copy could not be published.
        let Take::Dead(record, death) = source.try_take(consumer, false, &mut || NOW) else { panic!("not dead") };
        let shelving = {
            let source = source.clone();
            thread::spawn(move || assert!(source.settle(consumer, record.pos, Settle::Shelve(death))))
        };
        let racing = thread::spawn({
            let source = source.clone();
            move || matches!(source.try_take(consumer, false, &mut || NOW), Take::Got(_))
        });
        let mut taken = source.take_if_dead(keeper, NOW, &mut source.dead_scan()).is_some();
        shelving.join().unwrap();
        assert!(!racing.join().unwrap(), "a consumer was given a shelved message");
        if !taken {
            taken = source.take_if_dead(keeper, NOW, &mut source.dead_scan()).is_some();
        }
        assert!(taken, "the shelved message was lost to the housekeeping");
    });
}

/// A consumer takes a dead message at the head (it moves `read` past it,
/// then marks it DELIVERED) while a housekeeper scans below `read` for
/// dead messages: the housekeeper must leave the slot to the consumer
/// once `read` has moved, so the message is taken once, by one of them.
#[test]
fn a_housekeeper_scanning_below_read_never_takes_a_message_a_consumer_took_at_the_head() {
    loom::model(|| {
        let source = ring(Lifecycle { hold_dead: true, delivery_limit: None });
        assert!(publish(&source, 0, 7, true));
        // Registered, as every taker is: a free row's intent covers nothing.
        let taker = source.register_agent(0xC0, 2, 1, 0).unwrap();
        let keeper = source.register_agent(0xC1, 1, 2, 0).unwrap();
        let consumer = {
            let source = source.clone();
            thread::spawn(move || matches!(source.try_take(taker, false, &mut || NOW), Take::Dead(..)))
        };
        let housekeeper = {
            let source = source.clone();
            thread::spawn(move || source.take_if_dead(keeper, NOW, &mut source.dead_scan()).is_some())
        };
        let (by_consumer, by_housekeeper) = (consumer.join().unwrap(), housekeeper.join().unwrap());
        assert!(by_consumer ^ by_housekeeper, "taken by both or by neither ({by_consumer}, {by_housekeeper})");
    });
}
