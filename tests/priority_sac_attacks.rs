//! Attacks on single active consumer, priority queues and consumer
//! priorities, from their review: each test here failed before its fix (a
//! deleted queue taking a publish, a stalled election, a line-jumping
//! newcomer, a killed active consumer's message coming back late, levels
//! costing memory before use, a requeue waking nobody, gc leaving retired
//! level rings, unacked counts missing levels).

mod common;

use std::time::{Duration, Instant};

use common::TempNs;
use shmq::{ConsumerOptions, Properties, QueueOptions};

fn prio(p: u8) -> Properties<'static> {
    let mut props = Properties::new();
    props.priority = Some(p);
    props
}

/// A producer opened before the queue was deleted publishes its first
/// message of a new priority: the level's file is created afresh (not
/// flagged deleted) under the dead queue's id, and the publish "succeeds"
/// into a chain no consumer can ever reach. At level 0 the same producer
/// gets `QueueDeleted`.
#[test]
fn publishing_a_new_priority_into_a_deleted_queue_is_refused_not_lost() {
    let t = TempNs::new("review-prio-deleted");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(5)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    t.ns.delete_queue("q").unwrap();
    assert!(matches!(producer.publish(b"level 0"), Err(shmq::PublishError::QueueDeleted)), "level 0 refuses, as expected");
    let result = producer.publish_with(&prio(3), b"level 3");
    let orphans: Vec<_> = std::fs::read_dir(t.path().join("extents")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(
        matches!(result, Err(shmq::PublishError::QueueDeleted)),
        "publish at priority 3 into a deleted queue returned {result:?}; orphan level files now: {orphans:?}"
    );
    assert!(orphans.is_empty(), "a deleted queue's level was re-created: {orphans:?}");
}

/// A level ring behind its chain's head (a retirer killed between its
/// `head` CAS and its unlink) is removed by `shmq gc` for level 0, but
/// never for a level above 0: gc parses `<id>.p<k>.<seq>` as a level-0
/// sequence number, fails, and keeps the file (data and all) for good.
#[test]
fn gc_removes_a_retired_ring_left_behind_in_a_priority_level() {
    let t = TempNs::new("review-prio-gc");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(7).capacity_bytes(64 << 10)).unwrap();
    {
        let mut producer = t.ns.producer("q").unwrap();
        for i in 0..20_000u32 {
            producer.publish_with(&prio(7), format!("{i:08}").as_bytes()).unwrap();
        }
        let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
        while consumer.try_recv().is_ok() {}
    }
    t.ns.collect_garbage().unwrap();
    let extents = t.path().join("extents");
    let names: Vec<String> = std::fs::read_dir(&extents).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    // The level's chain grew and retired: its live rings are the newest.
    let level7: Vec<(String, u64)> = names
        .iter()
        .filter_map(|n| {
            let (id, rest) = n.split_once(".p7.")?;
            Some((id.to_owned(), rest.parse().ok()?))
        })
        .collect();
    let (id, newest) = level7.iter().max_by_key(|(_, seq)| *seq).cloned().expect("level 7 exists");
    assert!(newest >= 2, "level 7 grew: {names:?}");
    // What a retirer killed before its unlink leaves: ring 1 of level 7,
    // behind the head.
    let leftover = format!("{id}.p7.1");
    if !extents.join(&leftover).exists() {
        std::fs::write(extents.join(&leftover), vec![0u8; 64 << 10]).unwrap();
    }
    t.ns.collect_garbage().unwrap();
    assert!(!extents.join(&leftover).exists(), "gc kept {leftover}, a level ring behind its head, for good");
}

/// A message requeued (nack) in a level above 0 wakes nobody: consumers
/// of a priority queue sleep on the first segment's event count, and
/// requeue notifies only the level's ring. A waiting consumer gets it only
/// at the end of its 50 ms wait slice (a queue without priorities: at once).
#[test]
fn a_message_requeued_in_a_priority_level_wakes_a_waiting_consumer() {
    let t = TempNs::new("review-prio-wake");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(5)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let holder = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let mut latencies = Vec::new();
    for _ in 0..7 {
        producer.publish_with(&prio(5), b"m").unwrap();
        let held = holder.try_recv().unwrap();
        let waiter = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
        let got = std::thread::scope(|s| {
            let h = s.spawn(move || {
                let d = waiter.recv_timeout(Duration::from_secs(2)).expect("the requeued message");
                let at = Instant::now();
                d.ack().unwrap();
                at
            });
            // Let the waiter fall asleep.
            std::thread::sleep(Duration::from_millis(120));
            let t0 = Instant::now();
            held.nack(true).unwrap();
            h.join().unwrap().duration_since(t0)
        });
        latencies.push(got);
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    assert!(
        median < Duration::from_millis(5),
        "a requeue in level 5 reached a waiting consumer after {median:?} (median; all: {latencies:?})"
    );
}

/// The single-active-consumer election compares tickets by their distance
/// behind `next_ticket`, read *before* it scans the rows: a consumer that
/// registers (two tickets taken) during the scan has a ticket "ahead" of the
/// value read, so a wrapping distance near 2^32, and is elected as the
/// oldest, ahead of a standby that waited all along.
#[test]
#[allow(clippy::disallowed_types)] // the test's own stop flag, not shared memory
fn a_consumer_registering_during_an_election_never_jumps_the_line() {
    use shmq::ring::{heap::HeapMemory, Geometry, Ring};
    const CONSUMER: u32 = 2;
    const PRODUCER: u32 = 1;
    let ring = Ring::new(HeapMemory::new(Geometry { slot_count: 4, data_units: 64 }));
    let a = ring.register_agent(0xA, CONSUMER, 1, 0).unwrap();
    let b = ring.register_agent(0xB, CONSUMER, 2, 0).unwrap();
    // Rows in between, so the elector's scan takes a while to reach the
    // newcomer's row.
    let fillers: Vec<u16> = (0..40).map(|i| ring.register_agent(0x100 + i, PRODUCER, 3, 0).unwrap()).collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let secs = std::env::var("SHMQ_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (wrong, rounds) = std::thread::scope(|s| {
        let registrar = s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let c = ring.register_agent(0xC, CONSUMER, 4, 0).unwrap();
                ring.release_agent(c, 0xC);
                let c = ring.register_agent(0xC, CONSUMER, 4, 0).unwrap();
                ring.release_agent(c, 0xC);
            }
        });
        let mut wrong = None;
        let mut rounds = 0u64;
        // Each call hands over from the one named to the oldest other:
        // a <-> b, never the newcomer.
        let mut leaving = a;
        while Instant::now() < deadline {
            let next = ring.elect_active(Some(leaving));
            let want = if leaving == a { b } else { a };
            rounds += 1;
            if next != Some(want) {
                wrong = Some(next);
                break;
            }
            leaving = want;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        registrar.join().unwrap();
        (wrong, rounds)
    });
    drop(fillers);
    assert!(wrong.is_none(), "after {rounds} elections the newcomer {wrong:?} was elected ahead of the waiting standby");
}

/// The active consumer of a single-active-consumer priority queue is
/// killed holding a priority-5 message. Its successor is elected as soon as
/// a sweep frees its row in the first segment, but the held message sits
/// DELIVERED in level 5's ring until a later sweep of *that* ring: the
/// successor first gets a newer message, not the dead one's unacked
/// (which RabbitMQ, and shmq without priorities, deliver first).
#[test]
fn a_killed_active_consumer_s_message_in_a_level_comes_back_first() {
    let t = TempNs::in_shm("review-sac-prio-kill");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(5).single_active_consumer(true)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    producer.publish_with(&prio(5), b"old").unwrap();
    let mut holder = t.stress_agent("consumer", "q", &t.path().join("holder.log"), "c", &["--batch", "--hold-us", "60000000"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.ns.queue_stats("q").unwrap().unacked < 1 {
        assert!(Instant::now() < deadline, "the holder never took the message");
        std::thread::sleep(Duration::from_millis(10));
    }
    let successor = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    assert!(!successor.is_active());
    common::kill(&mut holder);
    producer.publish_with(&prio(5), b"new").unwrap();
    let first = successor.recv_timeout(Duration::from_secs(5)).unwrap();
    let got = (String::from_utf8_lossy(first.body()).into_owned(), first.redelivered());
    assert_eq!(got, ("old".to_owned(), true), "the dead active consumer's unacked message did not come first");
}

/// A consumer (or one `basic.get`) of an empty x-max-priority 255 queue
/// creates and prefaults all 255 level files at once (92 KiB each, 23 MiB),
/// never asking the namespace's memory budget: here 6 times the budget,
/// for a queue that holds nothing.
#[test]
fn attaching_to_an_empty_priority_queue_stays_within_the_memory_budget() {
    let dir = std::env::temp_dir().join(format!("shmq-review-prio-budget-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let budget = 4 << 20;
    let ns = shmq::Namespace::open_dir_with(&dir, shmq::NamespaceOptions::default().memory_budget(budget)).unwrap();
    ns.declare_queue("q", &QueueOptions::default().max_priority(255).capacity_bytes(64 << 10)).unwrap();
    let before = ns.memory_in_use();
    let consumer = ns.consumer("q", ConsumerOptions::default());
    let after = ns.memory_in_use();
    let files = std::fs::read_dir(dir.join("extents")).map(|d| d.count()).unwrap_or(0);
    drop(consumer);
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        after <= budget,
        "attaching one consumer to an empty priority queue took the namespace from {before} to {after} bytes \
         ({files} level files), over its {budget}-byte budget"
    );
}

/// Single active consumer with consumer priorities (294d419, on top of
/// 1c146bf): the active consumer defers to a higher-priority consumer that
/// has prefetch room, but that one is a standby and never takes: nobody
/// consumes. RabbitMQ 3.10 ignores consumer priorities on a
/// single-active-consumer queue (the first registered receives).
#[test]
fn a_higher_priority_standby_does_not_stall_the_single_active_consumer() {
    let t = TempNs::new("review-sac-xprio");
    t.ns.declare_queue("q", &QueueOptions::default().single_active_consumer(true)).unwrap();
    let active = t.ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(10)).unwrap();
    let standby = t.ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(10).priority(10)).unwrap();
    assert!(active.is_active() && !standby.is_active());
    t.ns.producer("q").unwrap().publish(b"m").unwrap();
    let got = active.recv_timeout(Duration::from_millis(500)).map(|d| d.body().to_vec());
    let other = standby.try_recv().map(|d| d.body().to_vec());
    assert_eq!(got, Ok(b"m".to_vec()), "the active consumer got nothing (the standby: {other:?}); the queue is stalled");
}

/// `list_consumers` (and `shmq list-consumers`) shows a priority-queue
/// consumer's unacked count of level 0 only: it holds one unacked message of
/// priority 5 and is listed with 0 (stats say 1).
#[test]
fn list_consumers_counts_unacked_messages_of_every_level() {
    let t = TempNs::new("review-prio-list");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(5)).unwrap();
    t.ns.producer("q").unwrap().publish_with(&prio(5), b"m").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let held = consumer.try_recv().unwrap();
    let listed: Vec<u32> = t.ns.list_consumers().unwrap().iter().filter(|h| h.role == "consumer").map(|h| h.unacked).collect();
    let stats = t.ns.queue_stats("q").unwrap().unacked;
    held.ack().unwrap();
    assert_eq!((listed, stats), (vec![1], 1));
}
