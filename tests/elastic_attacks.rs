//! Attacks on elastic queues (issue 12): processes killed mid-step, state
//! left behind by a killed retirer, hostile chain words. Each test failed
//! before the fix it names.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempNs;
use shmq::{ConsumerOptions, Overflow, QueueOptions};

/// The chain line in a queue's first segment: RING_OFFSET (1024) + 7 lines
/// of 128 bytes (docs/LAYOUT.md); `head` at +8, `tail` at +16.
const CHAIN_LINE: u64 = 1024 + 7 * 128;
/// A segment header's sequence number (docs/LAYOUT.md).
const HEADER_SEQ: usize = 96;

/// Runs this test binary's `role` test in a child process, stdout piped.
fn child(role: &str, ns: &std::path::Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", role, "--nocapture", "--include-ignored"])
        .env("SHMQ_ATTACK_NS", ns)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn child_ns() -> Option<shmq::Namespace> {
    std::env::var("SHMQ_ATTACK_NS").ok().map(|p| shmq::Namespace::open_dir(p).unwrap())
}

/// Waits (at most 30 s) for the child to print `line`.
fn wait_for_line(child: &mut std::process::Child, line: &str) {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let want = line.to_owned();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout).lines() {
            if l.as_deref().is_ok_and(|l| l == want) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("the child never got there");
}

/// Bytes the namespace's queue files take in the file system (what `du`
/// shows).
fn du(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    ["queues", "extents"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(dir.join(sub)).unwrap())
        .map(|e| e.unwrap().metadata().unwrap().blocks() * 512)
        .sum()
}

fn extents(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir.join("extents")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Publishes `count` 64-byte messages in batches (never blocks: no budget).
fn fill(ns: &shmq::Namespace, queue: &str, count: usize) {
    let mut producer = ns.producer(queue).unwrap();
    let body = [5u8; 64];
    let bodies: Vec<&[u8]> = vec![&body[..]; 64];
    let mut done = 0;
    while done < count {
        done += producer.publish_batch(&bodies[..(count - done).min(64)]).unwrap();
    }
}

fn patch(path: &std::path::Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

/// Child: reserves room for a 600-byte message in a queue with a byte
/// limit, says so, and hangs there until killed.
#[test]
#[ignore = "run as a child process by the max_length_bytes kill test"]
fn child_reserves_and_hangs() {
    let Some(ns) = child_ns() else { return };
    let mut producer = ns.producer("bytes").unwrap();
    let mut slot = producer.reserve(&shmq::Properties::new(), 600).unwrap();
    slot.body_mut().fill(1);
    println!("reserved");
    std::thread::sleep(Duration::from_secs(60));
}

/// A producer killed -9 between its claim and its commit reserved its
/// message's bytes against `max_length_bytes`; recovery abandons the slot,
/// and must give the bytes back too, or every such death lowers the
/// queue's byte limit for good (down to a queue that refuses everything).
#[test]
fn a_producer_killed_holding_a_claim_gives_its_bytes_back_to_max_length_bytes() {
    let t = TempNs::in_shm("attack-bytes");
    t.ns.declare_queue("bytes", &QueueOptions::default().max_length_bytes(1000).overflow(Overflow::Reject)).unwrap();
    let mut publisher = child("child_reserves_and_hangs", t.path());
    wait_for_line(&mut publisher, "reserved");
    publisher.kill().unwrap();
    publisher.wait().unwrap();

    let recovered = t.ns.collect_garbage().unwrap();
    assert_eq!(recovered.abandoned, 1, "the dead producer's claim is abandoned");
    let mut producer = t.ns.producer("bytes").unwrap();
    assert_eq!(producer.publish(&[2u8; 600]), Ok(()), "the queue is empty: 600 of 1000 bytes fit");
    let consumer = t.ns.consumer("bytes", ConsumerOptions::default()).unwrap();
    let got = consumer.try_recv().unwrap();
    assert_eq!(got.body(), &[2u8; 600][..]);
    drop(got);
    assert_eq!(consumer.try_recv().err(), Some(shmq::RecvError::Empty));
}

/// A consumer that drains a grown queue and closes before its first sweep
/// (200 ms) retired nothing: the drained rings (their data pages full) and
/// the large idle tail stayed until some other consumer came by. Closing
/// does the sweep's chain upkeep.
#[test]
fn a_consumer_that_drains_a_grown_queue_and_closes_gives_the_memory_back() {
    let t = TempNs::in_shm("attack-close");
    t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(64 << 10)).unwrap();
    let empty = du(t.path());
    let total = 40_000;
    fill(&t.ns, "q", total);
    assert!(t.ns.queue_stats("q").unwrap().rings > 2, "the queue grew");
    let full = du(t.path());
    {
        let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
        let mut got = 0;
        while got < total {
            got += consumer.drain(4096, |_| {}).unwrap();
        }
    }
    let stats = t.ns.queue_stats("q").unwrap();
    assert_eq!((stats.ready, stats.unacked), (0, 0));
    let after = du(t.path());
    eprintln!("du: empty {empty}, full {full}, after close {after}; extents {:?}", extents(t.path()));
    assert!(after <= 2 * empty + (64 << 10), "memory did not go back: {after} bytes after the consumer closed, {empty} when empty");
}

/// A retirer killed -9 after moving `head` past a ring but before punching
/// and unlinking it leaves the ring's file, data and all, behind the head,
/// where no retirer looks again; `gc` skipped it too (its queue is live).
/// The state is made by putting back a copy of the ring's file after a
/// clean retirement: byte for byte what the killed retirer left.
#[test]
fn a_ring_left_by_a_retirer_killed_before_unlinking_it_is_removed_by_gc() {
    let t = TempNs::in_shm("attack-retire");
    t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(64 << 10)).unwrap();
    let total = 10_000;
    fill(&t.ns, "q", total);
    let names = extents(t.path());
    let ring1 = names.iter().find(|n| n.ends_with(".1")).expect("the queue grew").clone();
    let saved = std::fs::read(t.path().join("extents").join(&ring1)).unwrap();
    {
        let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
        let mut got = 0;
        while got < total {
            got += consumer.drain(4096, |_| {}).unwrap();
        }
    }
    t.ns.collect_garbage().unwrap();
    assert!(!extents(t.path()).contains(&ring1), "ring 1 was retired");
    // What a retirer killed between its `head` CAS and its unlink leaves.
    let left = t.path().join("extents").join(&ring1);
    std::fs::write(&left, &saved).unwrap();

    t.ns.collect_garbage().unwrap();
    assert!(!left.exists(), "a retired ring's file stays for ever: {:?}", extents(t.path()));
    // The queue still works.
    let mut producer = t.ns.producer("q").unwrap();
    producer.publish(b"after").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    assert_eq!(consumer.recv_timeout(Duration::from_secs(5)).unwrap().body(), b"after");
}

/// A hostile chain whose head and tail are the last sequence number, with
/// a valid ring planted under that number: growing past it must be a typed
/// error. It was an overflow (a panic in debug builds; in release the
/// grower "linked" the same ring again and the publish spun for ever).
#[test]
fn a_chain_at_the_last_sequence_number_is_a_typed_error_not_a_panic_or_a_hang() {
    let t = TempNs::in_shm("attack-maxseq");
    t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(64 << 10)).unwrap();
    fill(&t.ns, "q", 2_000);
    let names = extents(t.path());
    let ring1 = names.iter().find(|n| n.ends_with(".1")).expect("the queue grew").clone();
    let id = ring1.trim_end_matches(".1").to_owned();
    let mut bytes = std::fs::read(t.path().join("extents").join(&ring1)).unwrap();
    bytes[HEADER_SEQ..HEADER_SEQ + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(t.path().join("extents").join(format!("{id}.{}", u64::MAX)), &bytes).unwrap();
    let first = t.path().join("queues").join("q");
    patch(&first, CHAIN_LINE + 8, &u64::MAX.to_le_bytes());
    patch(&first, CHAIN_LINE + 16, &u64::MAX.to_le_bytes());

    let ns = t.ns.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut producer = ns.producer("q").unwrap();
        producer.set_publish_timeout(Some(Duration::from_secs(2)));
        let started = Instant::now();
        let outcome = loop {
            if let Err(e) = producer.publish(&[3u8; 1000]) {
                break Some(e);
            }
            if started.elapsed() > Duration::from_secs(5) {
                break None;
            }
        };
        let _ = tx.send(outcome);
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Some(e)) => eprintln!("publish refused: {e}"),
        Ok(None) => panic!("a full ring at the last sequence number took publishes for 5 s"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the publisher panicked"),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the publish hung"),
    }
}

const SPREAD: u32 = 3_000;

/// Child: takes every message of the `spread` queue and acks all but the
/// first (in ring 0) and the last (in the tail), then hangs until killed.
#[test]
#[ignore = "run as a child process by the two-ring kill test"]
fn child_holds_deliveries_in_two_rings() {
    let Some(ns) = child_ns() else { return };
    let consumer = ns.consumer("spread", ConsumerOptions::default().manual_ack()).unwrap();
    for i in 0..SPREAD {
        let d = consumer.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(u32::from_le_bytes(d.body()[..4].try_into().unwrap()), i);
        if i == 0 || i == SPREAD - 1 {
            drop(d); // held unacked
        } else {
            d.ack().unwrap();
        }
    }
    println!("holding");
    std::thread::sleep(Duration::from_secs(60));
}

/// A consumer killed -9 holding unacked deliveries in the oldest ring and
/// in the tail: both come back, once each, flagged redelivered, although
/// every live consumer is past the oldest ring; then every ring but the
/// tail retires.
#[test]
fn a_consumer_killed_holding_deliveries_in_two_rings_gets_both_redelivered_once() {
    let t = TempNs::in_shm("attack-tworings");
    t.ns.declare_queue("spread", &QueueOptions::default().capacity_bytes(64 << 10)).unwrap();
    let mut producer = t.ns.producer("spread").unwrap();
    for i in 0..SPREAD {
        let mut body = [0u8; 64];
        body[..4].copy_from_slice(&i.to_le_bytes());
        producer.publish(&body).unwrap();
    }
    drop(producer);
    assert!(t.ns.queue_stats("spread").unwrap().rings >= 2);
    let mut holder = child("child_holds_deliveries_in_two_rings", t.path());
    wait_for_line(&mut holder, "holding");
    holder.kill().unwrap();
    holder.wait().unwrap();

    let consumer = t.ns.consumer("spread", ConsumerOptions::default().manual_ack()).unwrap();
    let mut back = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while back.len() < 2 && Instant::now() < deadline {
        if let Ok(d) = consumer.recv_timeout(Duration::from_millis(100)) {
            assert!(d.redelivered(), "a redelivery is flagged");
            back.push(u32::from_le_bytes(d.body()[..4].try_into().unwrap()));
            d.ack().unwrap();
        }
    }
    back.sort();
    assert_eq!(back, vec![0, SPREAD - 1], "both held messages come back");
    // Nothing else comes, and the drained rings retire.
    let until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < until {
        if let Ok(d) = consumer.recv_timeout(Duration::from_millis(50)) {
            panic!("delivered again: {:?}", &d.body()[..4]);
        }
    }
    let stats = t.ns.queue_stats("spread").unwrap();
    assert_eq!((stats.ready, stats.unacked, stats.rings), (0, 0, 1), "{stats:?}");
}

/// A requeued message waits below `read`, outside the count a claim checks
/// against `max_length`: a queue of one with one requeued message took a
/// publish (two ready; RabbitMQ refuses it under reject-publish and drops
/// the head under drop-head).
#[test]
fn a_publish_into_a_queue_at_its_length_with_a_requeued_message_is_refused_or_drops_the_head() {
    let t = TempNs::new("attack-requeue-limit");
    for (queue, overflow) in [("reject", Overflow::Reject), ("drop", Overflow::DropOldest)] {
        t.ns.declare_queue(queue, &QueueOptions::default().max_length(1).overflow(overflow)).unwrap();
        let mut producer = t.ns.producer(queue).unwrap();
        producer.publish(b"a").unwrap();
        let consumer = t.ns.consumer(queue, ConsumerOptions::default().manual_ack()).unwrap();
        consumer.try_recv().unwrap().nack(true).unwrap();
        assert_eq!(t.ns.queue_stats(queue).unwrap().ready, 1);
        let published = producer.publish(b"c");
        assert_eq!(t.ns.queue_stats(queue).unwrap().ready, 1, "{queue}: over max_length");
        match overflow {
            Overflow::Reject => {
                assert_eq!(published, Err(shmq::PublishError::QueueFull));
                assert_eq!(consumer.try_recv().unwrap().body(), b"a");
            }
            _ => {
                assert_eq!(published, Ok(()));
                assert_eq!(consumer.try_recv().unwrap().body(), b"c");
            }
        }
    }
}

/// `publish_batch` took its messages' expiry once per call: a chunk that
/// waited for room (a `block` queue) entered the queue with a TTL already
/// partly or wholly spent. A TTL counts from the enqueue.
#[test]
fn a_batch_chunk_that_waited_for_room_gets_its_whole_ttl() {
    let t = TempNs::new("attack-batch-ttl");
    let options = QueueOptions::default().max_length(1).overflow(Overflow::Block).message_ttl(Duration::from_millis(1000));
    t.ns.declare_queue("q", &options).unwrap();
    let ns = t.ns.clone();
    let publishing = std::thread::spawn(move || {
        let mut producer = ns.producer("q").unwrap();
        producer.set_publish_timeout(Some(Duration::from_secs(10)));
        let bodies: [&[u8]; 2] = [b"a", b"b"];
        producer.publish_batch(&bodies).unwrap()
    });
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(consumer.recv_timeout(Duration::from_secs(1)).unwrap().body(), b"a");
    assert_eq!(publishing.join().unwrap(), 2);
    // "b" entered the queue just now: 1 s to live, not 400 ms.
    std::thread::sleep(Duration::from_millis(600));
    let b = consumer.recv_timeout(Duration::from_millis(200)).expect("b expired before its TTL had passed in the queue");
    assert_eq!(b.body(), b"b");
}

/// A ring grown after one of small records has fewer slots per byte: a
/// batch chunk sized for the full ring (its slot count) could not be
/// claimed in the new one (a debug assertion; in release one more ring).
#[test]
fn a_batch_chunk_fits_the_ring_grown_for_it() {
    let t = TempNs::new("attack-chunk-slots");
    t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(128)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    // Ring 0 (2 slots) of empty records: ring 1 gets a slot per 16 bytes
    // (32 for 512 bytes), then fills with 128-byte records.
    producer.publish(b"").unwrap();
    producer.publish(b"").unwrap();
    for _ in 0..4 {
        producer.publish(&[7u8; 128]).unwrap();
    }
    assert_eq!(t.ns.queue_stats("q").unwrap().rings, 2);
    // A chunk of 32 (ring 1's slots); ring 2 follows 128-byte records.
    let empty: [&[u8]; 32] = [b""; 32];
    assert_eq!(producer.publish_batch(&empty).unwrap(), 32);
    assert_eq!(t.ns.queue_stats("q").unwrap().rings, 3, "one ring for the chunk");
    assert_eq!(t.ns.queue_stats("q").unwrap().ready, 38);
}

/// A consumer took a requeued message from an older ring, and the tick of
/// that delivery swept before the delivery was counted in the ring's
/// `held`: the sweep's prune detached the ring, and the delivery was read
/// (and settled) through the first ring instead.
#[test]
fn a_requeued_message_taken_from_an_older_ring_on_a_sweeping_tick_is_read_from_its_ring() {
    let t = TempNs::new("attack-prune");
    t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(128)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    // 8-byte records: ring 0 takes 2 (its slots), ring 1 (32 slots) the
    // next 32, ring 2 the rest.
    for i in 0..40u64 {
        producer.publish(&i.to_le_bytes()).unwrap();
    }
    assert_eq!(t.ns.queue_stats("q").unwrap().rings, 3);
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(2)).unwrap();
    for i in 0..33u64 {
        let d = consumer.try_recv().unwrap();
        assert_eq!(d.body(), i.to_le_bytes());
        d.ack().unwrap();
    }
    // The last of ring 1, held; the first of ring 2 makes ring 2 current,
    // through a fresh agent whose tick count is now 1.
    let held = consumer.try_recv().unwrap();
    assert_eq!(held.body(), 33u64.to_le_bytes());
    let held = held.tag();
    let second = consumer.try_recv().unwrap();
    assert_eq!(second.body(), 34u64.to_le_bytes());
    drop(second);
    // 254 ticks (prefetch full); the 256th sweeps, 200 ms after the attach.
    for _ in 0..254 {
        assert_eq!(consumer.try_recv().err(), Some(shmq::RecvError::PrefetchFull(2)));
    }
    std::thread::sleep(Duration::from_millis(250));
    consumer.nack(held, true).unwrap();
    let again = consumer.try_recv().unwrap();
    assert!(again.redelivered());
    assert_eq!(again.body(), 33u64.to_le_bytes(), "read through another ring");
    again.ack().unwrap();
    assert_eq!(t.ns.queue_stats("q").unwrap().unacked, 1);
}

/// Under `block`, a message the limits can never take (max_length 0, or
/// alone over max_length_bytes) waited for room for ever (or until the
/// publish timeout), alone or in a batch.
#[test]
fn a_block_queue_refuses_a_message_its_limits_can_never_take() {
    let t = TempNs::new("attack-block-never");
    t.ns.declare_queue("zero", &QueueOptions::default().max_length(0).overflow(Overflow::Block)).unwrap();
    t.ns.declare_queue("bytes", &QueueOptions::default().max_length_bytes(4).overflow(Overflow::Block)).unwrap();
    for (queue, body) in [("zero", &b"x"[..]), ("bytes", &b"hello"[..])] {
        let mut producer = t.ns.producer(queue).unwrap();
        producer.set_publish_timeout(Some(Duration::from_secs(2)));
        let started = Instant::now();
        assert_eq!(producer.publish(body), Err(shmq::PublishError::QueueFull), "{queue}");
        assert_eq!(producer.publish_batch(&[body]), Err(shmq::PublishError::QueueFull), "{queue}");
        assert!(started.elapsed() < Duration::from_secs(1), "{queue}: waited for room that never comes");
        assert_eq!(t.ns.queue_stats(queue).unwrap().ready, 0);
    }
}

/// The `max_length` check loads `read` after the produce cursor: a
/// producer preempted between the two while others published and took past
/// its slot saw `read` ahead of its stale slot, and the wrapped count
/// refused the claim (`Limit`: a nack under reject-publish, a needless drop
/// under drop-head) in a queue that never held more than the bound. Each
/// thread here has at most one message out at a time, so `THREADS` ready
/// ones always fit.
#[test]
fn a_claim_with_a_stale_cursor_is_not_refused_by_the_length_limit() {
    use shmq::ring::heap::HeapMemory;
    use shmq::ring::{ClaimError, ClaimLimits, Geometry, ReclaimHint, Ring, Settle, Take};
    const THREADS: u32 = 4;
    let ring = std::sync::Arc::new(Ring::new(HeapMemory::new(Geometry { slot_count: 64, data_units: 1024 })));
    let stop = Instant::now() + Duration::from_millis(1500);
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let agent = ring.register_agent(0x9000 + u64::from(i), 1, i + 1, 0).unwrap();
                let mut hint = ReclaimHint::default();
                let limits = ClaimLimits { max_ready: THREADS, max_ready_bytes: u64::MAX, bytes: 0 };
                let mut refused = 0u64;
                for round in 0u64.. {
                    if round % 1024 == 0 && Instant::now() >= stop {
                        break;
                    }
                    match ring.try_claim(agent, &[1], &mut hint, limits) {
                        Ok(claim) => {
                            let (start, end) = ring.place(claim.data, 1);
                            ring.commit(claim.first, start, end, 0, 0, 0);
                            ring.claim_done(agent);
                        }
                        Err(ClaimError::Limit) => {
                            refused += 1;
                            continue;
                        }
                        Err(ClaimError::Full) => continue,
                        Err(other) => panic!("{other:?}"),
                    }
                    // Take one (ours or another's) before publishing again.
                    loop {
                        match ring.try_take(agent, false, &mut || 0) {
                            Take::Got(record) => {
                                assert!(ring.settle(agent, record.pos, Settle::Done));
                                break;
                            }
                            Take::Empty | Take::Stalled(_) => std::thread::yield_now(),
                            other => panic!("{other:?}"),
                        }
                    }
                }
                refused
            })
        })
        .collect();
    let refused: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(refused, 0, "claims refused by a limit the queue never reached");
}

/// An abandoned claim (a dropped reservation) between ready messages is
/// not a message, but `depth` counts it until a consumer passes it: the
/// trim after a requeue dropped the requeued message though the queue, as
/// RabbitMQ counts it, was within its `max_length`.
#[test]
fn a_requeue_trim_does_not_count_an_abandoned_reservation() {
    let t = TempNs::new("attack-trim-abandoned");
    t.ns.declare_queue("q", &QueueOptions::default().max_length(2)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    producer.publish(b"x").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let x = consumer.try_recv().unwrap().tag();
    producer.publish(b"m").unwrap();
    drop(producer.reserve(&shmq::Properties::new(), 1).unwrap());
    consumer.nack(x, true).unwrap();
    // RabbitMQ: [x, m], two of two.
    assert_eq!(consumer.try_recv().unwrap().body(), b"x");
    assert_eq!(consumer.try_recv().unwrap().body(), b"m");
}

/// The `max_length` check trusts a cached `read` only under the produce
/// epoch it was loaded in: across the 2^32 wrap of both cursors (an epoch
/// bump) it lets exactly `max_ready` messages be ready, never more, and
/// never refuses one once a take made room.
#[test]
fn the_cached_read_keeps_the_length_limit_exact_across_the_wrap() {
    use shmq::ring::heap::HeapMemory;
    use shmq::ring::{init_positions, ClaimError, ClaimLimits, Geometry, ReclaimHint, Ring, Settle, Take};
    let ring = Ring::new(HeapMemory::new(Geometry { slot_count: 8, data_units: 64 }));
    init_positions(ring.memory(), u32::MAX - 4, u32::MAX - 20);
    let producer = ring.register_agent(1, 1, 1, 0).unwrap();
    let consumer = ring.register_agent(2, 2, 2, 0).unwrap();
    let mut hint = ReclaimHint::default();
    let limits = ClaimLimits { max_ready: 3, max_ready_bytes: u64::MAX, bytes: 0 };
    let mut ready = 0;
    for _ in 0..64 {
        loop {
            match ring.try_claim(producer, &[1], &mut hint, limits) {
                Ok(claim) => {
                    let (start, end) = ring.place(claim.data, 1);
                    ring.commit(claim.first, start, end, 0, 0, 0);
                    ring.claim_done(producer);
                    ready += 1;
                    assert!(ready <= 3, "over the limit");
                }
                Err(ClaimError::Limit) => {
                    assert_eq!(ready, 3, "refused with room");
                    break;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        match ring.try_take(consumer, false, &mut || 0) {
            Take::Got(record) => assert!(ring.settle(consumer, record.pos, Settle::Done)),
            other => panic!("{other:?}"),
        }
        ready -= 1;
    }
}

/// A grower that died after creating ring 1 (and, in the second case, after
/// closing ring 0) but before storing `tail`: both states are made here from
/// a real growth step whose claim in ring 1 was given up, with `tail` (and
/// `closed`) written back. The next producer finishes the step, nothing is
/// lost and the order holds.
#[test]
fn a_growth_step_cut_off_after_each_of_its_writes_is_finished_by_the_next_producer() {
    for closed in [false, true] {
        let t = TempNs::in_shm("elastic-cut-growth");
        // 4 KiB of data: 32 slots of 128 bytes.
        t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(4096).max_message_bytes(256)).unwrap();
        let mut producer = t.ns.producer("q").unwrap();
        for i in 0..32u8 {
            producer.publish(&[i; 8]).unwrap();
        }
        assert_eq!(t.ns.queue_stats("q").unwrap().rings, 1, "ring 0 is full, not grown");
        // Grows: creates ring 1, closes ring 0, links it; the claim there is
        // given up, so ring 1 holds no message.
        drop(producer.reserve(&shmq::Properties::new(), 8).unwrap());
        drop(producer);
        assert_eq!(t.ns.queue_stats("q").unwrap().rings, 2);
        let first = t.path().join("queues/q");
        patch(&first, CHAIN_LINE + 16, &0u64.to_le_bytes());
        if !closed {
            patch(&first, CHAIN_LINE, &0u32.to_le_bytes());
        }
        assert_eq!(t.ns.queue_stats("q").unwrap().rings, 1, "the cut-off step left ring 1 unlinked");
        let mut producer = t.ns.producer("q").unwrap();
        producer.publish(&[100; 8]).unwrap();
        producer.publish(&[101; 8]).unwrap();
        assert_eq!(t.ns.queue_stats("q").unwrap().rings, 2, "the next producer linked the ring left behind");
        let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
        let mut got = Vec::new();
        consumer.drain(usize::MAX, |d| got.push(d.body()[0])).unwrap();
        let expected: Vec<u8> = (0..32).chain([100, 101]).collect();
        assert_eq!(got, expected, "closed={closed}");
    }
}
