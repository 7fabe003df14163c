//! Attacks on elastic queues (issue 12): processes killed mid-step, state
//! left behind by a killed retirer, hostile chain words. Each test failed
//! before the fix it names.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempNs;
use shmq::{ConsumerOptions, Overflow, QueueOptions};

/// The chain line in a queue's first segment: RING_OFFSET (512) + 7 lines
/// of 128 bytes (docs/LAYOUT.md); `head` at +8, `tail` at +16.
const CHAIN_LINE: u64 = 512 + 7 * 128;
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
