//! loom models of routing: the routing table's double-buffered seqlock
//! against readers taking snapshots, and a queue's removal racing with a
//! publish to it.
#![cfg(shmq_loom)]

use loom::sync::Arc;
use loom::thread;
use shmq::ring::heap::HeapMemory;
use shmq::ring::{ClaimLimits, Geometry, ReclaimHint, Ring, RingMemory, Take};
use shmq::seqtable::{self, HeapSeqStorage};

#[test]
fn table_update_races_with_snapshot_readers() {
    loom::model(|| {
        // Generation g holds the table [g + 1; 3]. Two updates reuse a region,
        // so a slow reader of generation 0 can overlap the second writer.
        let storage = Arc::new(HeapSeqStorage::new(3, &[1, 1, 1]));
        let writer = {
            let storage = storage.clone();
            thread::spawn(move || {
                assert!(seqtable::write(&*storage, &[2, 2, 2]));
                assert!(seqtable::write(&*storage, &[3, 3, 3]));
            })
        };
        let mut last = 0;
        for _ in 0..2 {
            let mut words = Vec::new();
            let generation = seqtable::read(&*storage, &mut words).expect("a consistent snapshot");
            // Never a torn table: all words of one generation.
            assert_eq!(words, vec![generation + 1; 3]);
            assert!(generation >= last, "generations never go back");
            last = generation;
        }
        writer.join().unwrap();
        let mut words = Vec::new();
        assert_eq!(seqtable::read(&*storage, &mut words), Ok(2));
        assert_eq!(words, vec![3, 3, 3]);
    });
}

#[test]
fn queue_removal_races_with_a_publish() {
    loom::model(|| {
        // A publisher checks the deleted flag and publishes; the deleter sets
        // the flag and discards what the queue holds, as deleting a queue does
        // in RabbitMQ. Every successful publish is accounted for: discarded by
        // the deleter or still in the ring, never half-visible.
        let ring = Arc::new(Ring::new(HeapMemory::new(Geometry { slot_count: 2, data_units: 16 })));
        let publisher = {
            let ring = ring.clone();
            thread::spawn(move || {
                if ring.memory().is_deleted() {
                    return false;
                }
                let claim = ring.try_claim(0, &[1], &mut ReclaimHint::default(), ClaimLimits::NONE).unwrap();
                let (start, end) = ring.place(claim.data, 1);
                // SAFETY: the claim gave us [start, end).
                assert!(unsafe { ring.memory().write_data(ring.data_offset(start), &[9; 8]) });
                ring.commit(claim.first, start, end, 0, 8, 0);
                true
            })
        };
        ring.memory().mark_deleted();
        let mut discarded = 0;
        while ring.discard_oldest(1) {
            discarded += 1;
        }
        let published = publisher.join().unwrap();
        let remaining = match ring.try_take(2, false, &mut || 0) {
            Take::Got(_) => 1,
            Take::Empty => 0,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(u32::from(published), discarded + remaining);
    });
}

#[test]
fn two_writers_in_turn_race_with_a_reader() {
    loom::model(|| {
        // Writers are serialised (flock in production, a mutex here) but are
        // different processes: the second reuses the region the reader may
        // still be copying. Whatever it stores must not tear the snapshot.
        let storage = Arc::new(HeapSeqStorage::new(2, &[1, 1]));
        let lock = Arc::new(loom::sync::Mutex::new(()));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (storage, lock) = (storage.clone(), lock.clone());
                thread::spawn(move || {
                    let _guard = lock.lock().unwrap();
                    let mut words = Vec::new();
                    let generation = seqtable::read(&*storage, &mut words).unwrap();
                    assert!(seqtable::write(&*storage, &[generation + 2; 2]));
                })
            })
            .collect();
        let mut words = Vec::new();
        let generation = seqtable::read(&*storage, &mut words).expect("a consistent snapshot");
        assert_eq!(words, vec![generation + 1; 2]);
        for w in writers {
            w.join().unwrap();
        }
    });
}
