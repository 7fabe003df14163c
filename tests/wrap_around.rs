//! Positions are wrapping `u32` counters. These tests push more than 2^32
//! data units through a real queue past an idle producer's cached reclaim
//! position, and run several producers and a consumer through the 2^32
//! wrap of both slot and data positions on a ring opened just before it.
//! (tests/wrap_slots.rs pushes 2^32 slots, in a release build.)

mod common;

use std::sync::Arc;

use common::TempNs;
use shmq::ring::heap::HeapMemory;
use shmq::ring::{ClaimLimits, Geometry, ReclaimHint, Ring, RingMemory, Settle, Take};
use shmq::{ConsumerOptions, Properties, QueueOptions};

/// Reserves and commits a message of `len` body bytes without writing it:
/// moving 2^32 data units then costs a few thousand claims, not 32 GiB of
/// copying.
fn publish_unwritten(producer: &mut shmq::Producer, len: usize) {
    producer.reserve(&Properties::new(), len).expect("reserve").commit();
}

#[test]
fn idle_producers_cached_reclaim_position_stays_exact_past_2_pow_32_data_units() {
    // A 64 MiB ring (U = 2^23 units) whose records may take half of it.
    const UNITS: u64 = 1 << 23;
    const HALF_BYTES: usize = (UNITS as usize / 2) * 8;
    let t = TempNs::in_shm("wrap-data");
    let options = QueueOptions::default().capacity_bytes(UNITS * 8).max_message_bytes(HALF_BYTES as u32);
    t.ns.declare_queue("q", &options).unwrap();
    let mut idle = t.ns.producer("q").unwrap();
    let mut busy = t.ns.producer("q").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();

    // The idle producer publishes once at data unit 0 and caches the
    // reclaim position it saw then.
    idle.publish(b"x").unwrap();
    drop(consumer.try_recv().unwrap());
    // The busy one moves the data cursor to 2^32 - U/2 (one record to
    // align on a half ring, then 1022 half-ring records), all consumed.
    publish_unwritten(&mut busy, HALF_BYTES - 8);
    drop(consumer.try_recv().unwrap());
    for _ in 0..((1u64 << 32) - UNITS) / (UNITS / 2) {
        publish_unwritten(&mut busy, HALF_BYTES);
        drop(consumer.try_recv().unwrap());
    }
    // Fill the ring: two half-ring records, the second marked.
    publish_unwritten(&mut busy, HALF_BYTES);
    let mut marked = busy.reserve(&Properties::new(), HALF_BYTES).unwrap();
    marked.body_mut()[..16].copy_from_slice(b"must survive ok!");
    marked.commit();
    // The idle producer's cached position is 2^32 - U/2 units behind: in
    // wrapping arithmetic it looks U/2 units *ahead* of the real one, so a
    // cache trusted across the wrap "finds" room and overwrites the mark.
    // With the ring full the queue grows: the publish goes to a new ring.
    idle.publish(b"overwrite?").unwrap();
    assert_eq!(t.ns.queue_stats("q").unwrap().rings, 2);
    drop(consumer.try_recv().unwrap());
    let survivor = consumer.try_recv().unwrap();
    assert_eq!(&survivor.body()[..16], b"must survive ok!");
    drop(survivor);
    assert_eq!(consumer.try_recv().unwrap().body(), b"overwrite?");
}

/// Claims, writes and commits one message; false if the ring was full.
fn publish(ring: &Ring<HeapMemory>, owner: u16, hint: &mut ReclaimHint, body: &[u8]) -> bool {
    let units = body.len().div_ceil(8) as u32;
    let Ok(claim) = ring.try_claim(owner, &[units], hint, ClaimLimits::NONE) else { return false };
    let (start, end) = ring.place(claim.data, units);
    // SAFETY: the claim gave us [start, end).
    assert!(unsafe { ring.memory().write_data(ring.data_offset(start), body) });
    ring.commit(claim.first, start, end, 0, body.len() as u32, 0);
    ring.claim_done(owner);
    ring.notify_consumers();
    true
}

#[test]
fn producers_and_a_consumer_cross_the_2_pow_32_wrap_of_slots_and_data() {
    // 8 slots and 64 units, opened 100 slots and 300 units before the wrap:
    // thousands of laps later both cursors have crossed it.
    let geometry = Geometry { slot_count: 8, data_units: 64 };
    let ring = Arc::new(Ring::new(HeapMemory::starting_at(geometry, u32::MAX - 100, u32::MAX - 300)));
    const PER_PRODUCER: u32 = 3000;
    let idle_owner = ring.register_agent(0x1D1E, 1, 1, 0).unwrap();
    let mut idle_hint = ReclaimHint::default();
    assert!(publish(&ring, idle_owner, &mut idle_hint, &[0xFF; 8]));
    let producers: Vec<_> = (0..3u8)
        .map(|p| {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let owner = ring.register_agent(0x100 + u64::from(p), 1, 2, 0).unwrap();
                let mut hint = ReclaimHint::default();
                for seq in 0..PER_PRODUCER {
                    // Sizes 5..=40 bytes, so records wrap the data ring at
                    // varying offsets and need padding.
                    let len = 5 + (seq as usize * 7 + p as usize) % 36;
                    let mut body = vec![p; len];
                    body[1..5].copy_from_slice(&seq.to_le_bytes());
                    while !publish(&ring, owner, &mut hint, &body) {
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let consumer = ring.register_agent(0xC0, 2, 3, 0).unwrap();
    let mut next_seq = [0u32; 3];
    let mut got_idle = 0;
    let total = 3 * PER_PRODUCER + 2;
    let mut received = 0;
    let mut idle_second_sent = false;
    while received < total {
        if !idle_second_sent && next_seq.iter().all(|&s| s == PER_PRODUCER) {
            // Every other producer is done and both cursors have wrapped;
            // the idle one publishes again.
            assert!(publish(&ring, idle_owner, &mut idle_hint, &[0xFF; 8]));
            idle_second_sent = true;
        }
        match ring.try_take(consumer, false, &mut || 0) {
            Take::Got(record) => {
                let mut body = vec![0u8; record.body_len as usize];
                // SAFETY: DELIVERED to `consumer`.
                assert!(unsafe { ring.memory().read_data(ring.data_offset(record.data_start), &mut body) });
                if body[0] == 0xFF {
                    got_idle += 1;
                } else {
                    let p = body[0] as usize;
                    let seq = u32::from_le_bytes(body[1..5].try_into().unwrap());
                    assert_eq!(seq, next_seq[p], "producer {p}: out of order or lost");
                    assert!(body[5..].iter().all(|&b| b == body[0]), "producer {p} message {seq} corrupted");
                    next_seq[p] += 1;
                }
                assert!(ring.settle(consumer, record.pos, Settle::Done));
                received += 1;
            }
            Take::Empty | Take::Stalled(_) => std::thread::yield_now(),
            other => panic!("unexpected {other:?}"),
        }
    }
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!((next_seq, got_idle), ([PER_PRODUCER; 3], 2));
    let (slot, data) = ring.positions();
    assert!(slot < 1 << 20 && data < 1 << 20, "both cursors crossed 2^32: now at slot {slot}, data {data}");
}
