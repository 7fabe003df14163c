//! Slot positions past 2^32 with an idle producer: empty messages take no
//! data, so only the slot half of the producers' cursor moves, 2^32 times.
//! An idle producer's cached reclaim position is then 2^32 − ε slots stale;
//! trusted in wrapping arithmetic it would look ε slots *ahead* of the real
//! one and let a claim overwrite unconsumed messages. Runs in a release
//! build (scripts/test.sh), about 4 × 10^9 claims on a heap ring; ignored in
//! a debug build.

use shmq::ring::heap::HeapMemory;
use shmq::ring::{ClaimError, ClaimLimits, Geometry, ReclaimHint, Ring, Take};

#[test]
#[cfg_attr(debug_assertions, ignore = "4 * 10^9 claims: run `cargo test --release --test wrap_slots`")]
fn idle_producers_cached_reclaim_position_stays_exact_past_2_pow_32_slots() {
    const SLOTS: u32 = 1024;
    const BATCH: usize = 64;
    let ring = Ring::new(HeapMemory::new(Geometry { slot_count: SLOTS, data_units: 64 }));
    let idle = ring.register_agent(1, 1, 1, 0).unwrap();
    let busy = ring.register_agent(2, 1, 2, 0).unwrap();
    let consumer = ring.register_agent(3, 2, 3, 0).unwrap();
    let mut idle_hint = ReclaimHint::default();
    let mut busy_hint = ReclaimHint::default();
    let empty = [0u32; BATCH];
    let publish = |owner: u16, hint: &mut ReclaimHint, count: usize| -> Result<u32, ClaimError> {
        let claim = ring.try_claim(owner, &empty[..count], hint, ClaimLimits::NONE)?;
        for i in 0..count as u32 {
            ring.commit(claim.first.wrapping_add(i), claim.data, claim.data, 0, 0, 0);
        }
        ring.claim_done(owner);
        Ok(claim.first)
    };
    // The idle producer publishes once at slot 0, caching reclaim = 0.
    assert_eq!(publish(idle, &mut idle_hint, 1), Ok(0));
    let mut records = [shmq::ring::Record::default(); BATCH];
    let mut consume = |count: usize| {
        let mut left = count;
        while left > 0 {
            let batch = ring.take_batch(consumer, true, &mut || 0, &mut records[..left.min(BATCH)]);
            assert!(batch.got > 0, "{left} messages missing");
            for record in &records[..batch.got] {
                ring.finish_owned(record.pos, record.flags, false);
            }
            left -= batch.got;
        }
        ring.reclaim();
    };
    consume(1);
    // Move the slot cursor to 2^32 − SLOTS/2, consuming everything.
    let target = (1u64 << 32) - u64::from(SLOTS / 2);
    let mut position = 1u64;
    while position < target {
        let count = (target - position).min(BATCH as u64) as usize;
        publish(busy, &mut busy_hint, count).unwrap();
        consume(count);
        position += count as u64;
    }
    // Fill the ring: SLOTS unconsumed messages.
    for _ in 0..SLOTS as usize / BATCH {
        publish(busy, &mut busy_hint, BATCH).unwrap();
    }
    // The idle producer's cache is 2^32 − SLOTS/2 slots behind.
    assert_eq!(publish(idle, &mut idle_hint, 1), Err(ClaimError::Full), "a stale cache let a claim into a full ring");
    assert!(matches!(ring.try_take(consumer, true, &mut || 0), Take::Got(_)));
}
