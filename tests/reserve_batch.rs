//! `Producer::reserve_batch`: messages written in place with one claim are
//! delivered in order with their properties once committed; a batch
//! dropped uncommitted, or held by a producer killed with -9 before its
//! commit, is never delivered and does not block what comes after it;
//! requests it cannot honour get `InvalidBatch`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempNs;
use shmq::{ConsumerOptions, Overflow, Properties, PublishError, QueueOptions};

fn bodies(ns: &shmq::Namespace) -> Vec<String> {
    let consumer = ns.consumer("q", ConsumerOptions::default()).unwrap();
    std::iter::from_fn(|| consumer.try_recv().ok().map(|d| String::from_utf8_lossy(d.body()).into_owned())).collect()
}

#[test]
fn a_committed_batch_arrives_in_order_with_its_properties() {
    let t = TempNs::new("resbatch-order");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let texts: Vec<String> = (0..64).map(|i| format!("message {i}")).collect();
    let lens: Vec<usize> = texts.iter().map(String::len).collect();
    let props = Properties::new().content_type("text/plain");
    let mut batch = producer.reserve_batch(&props, &lens).unwrap();
    assert_eq!(batch.len(), 64);
    for (i, text) in texts.iter().enumerate() {
        batch.body_mut(i).copy_from_slice(text.as_bytes());
    }
    // Nothing is visible before the commit.
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    assert!(consumer.try_recv().is_err());
    batch.commit();
    for text in &texts {
        let d = consumer.try_recv().unwrap();
        assert_eq!((d.body(), d.properties().content_type), (text.as_bytes(), Some("text/plain")));
    }
    assert_eq!(t.ns.queue_stats("q").unwrap().published, 64);
}

#[test]
fn a_dropped_batch_is_never_delivered_and_gives_its_room_back() {
    let t = TempNs::new("resbatch-drop");
    // Limited and blocking: the dropped batches' room must come back, or
    // the publishes after them would wait (they time out instead).
    let counted = QueueOptions::default().max_length(2).overflow(Overflow::Block);
    let sized = QueueOptions::default().max_length_bytes(100).overflow(Overflow::Block);
    for (queue, options, lens) in [("q", counted, &[40, 40][..]), ("bytes", sized, &[90][..])] {
        t.ns.declare_queue(queue, &options).unwrap();
        let mut producer = t.ns.producer(queue).unwrap();
        producer.set_publish_timeout(Some(Duration::from_secs(5)));
        for _ in 0..3 {
            drop(producer.reserve_batch(&Properties::new(), lens).unwrap());
        }
        for &len in lens {
            producer.publish(&vec![b'x'; len]).unwrap();
        }
    }
    assert_eq!(bodies(&t.ns), ["x".repeat(40), "x".repeat(40)]);
    let consumer = t.ns.consumer("bytes", ConsumerOptions::default()).unwrap();
    assert_eq!(consumer.try_recv().unwrap().body(), [b'x'; 90]);
}

#[test]
fn requests_a_batch_cannot_honour_are_refused_with_a_reason() {
    let t = TempNs::new("resbatch-bad");
    t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(64 << 10)).unwrap();
    t.ns.declare_queue("reject", &QueueOptions::default().max_length(10).overflow(Overflow::Reject)).unwrap();
    t.ns.declare_queue("three", &QueueOptions::default().max_length(3).overflow(Overflow::Block)).unwrap();
    t.ns.declare_queue("bytes", &QueueOptions::default().max_length_bytes(1000).overflow(Overflow::Block)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let refused = |r: Result<shmq::BatchReservation<'_>, PublishError>| matches!(r, Err(PublishError::InvalidBatch(_)));
    assert!(refused(producer.reserve_batch(&Properties::new(), &[])));
    assert!(refused(producer.reserve_batch(&Properties::new(), &[1; 65])));
    // Over half the ring's bytes in one claim.
    assert!(refused(producer.reserve_batch(&Properties::new(), &[20_000, 20_000])));
    let mut reject = t.ns.producer("reject").unwrap();
    assert!(refused(reject.reserve_batch(&Properties::new(), &[1, 1])));
    reject.reserve_batch(&Properties::new(), &[1]).unwrap().commit();
    // More than a blocking max-length holds could never be granted; a byte
    // limit takes one message per claim (recovery counts bytes per slot).
    let mut three = t.ns.producer("three").unwrap();
    assert!(refused(three.reserve_batch(&Properties::new(), &[1; 4])));
    three.reserve_batch(&Properties::new(), &[1; 3]).unwrap().commit();
    let mut bytes = t.ns.producer("bytes").unwrap();
    assert!(refused(bytes.reserve_batch(&Properties::new(), &[1, 1])));
    let err = PublishError::InvalidBatch("x").to_string();
    assert!(err.starts_with("invalid batch"), "{err}");
    // Nothing was claimed by the refusals.
    assert_eq!(bodies(&t.ns), Vec::<String>::new());
}

/// In the child: reserve a batch of 8 in queue "q" of `dir`, write half
/// of it, say so, and wait to be killed.
fn reserve_and_stall(dir: &str) {
    let ns = shmq::Namespace::open_dir(dir).unwrap();
    let mut producer = ns.producer("q").unwrap();
    let mut batch = producer.reserve_batch(&Properties::new(), &[4; 8]).unwrap();
    for i in 0..4 {
        batch.body_mut(i).copy_from_slice(b"part");
    }
    println!("stalled");
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_batch_held_by_a_producer_killed_before_its_commit_is_skipped() {
    if let Ok(dir) = std::env::var("SHMQ_TEST_BATCH_HOLDER") {
        reserve_and_stall(&dir);
        return;
    }
    let t = TempNs::in_shm("resbatch-kill");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    t.ns.producer("q").unwrap().publish(b"before").unwrap();
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_batch_held_by_a_producer_killed_before_its_commit_is_skipped", "--nocapture"])
        .env("SHMQ_TEST_BATCH_HOLDER", &t.dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap() == "stalled"), "the holder did not reserve its batch");
    t.ns.producer("q").unwrap().publish(b"after").unwrap();
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    let killed_at = Instant::now();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let d = consumer.recv_timeout(Duration::from_secs(10)).expect("the messages around the dead batch arrive");
        got.push(String::from_utf8_lossy(d.body()).into_owned());
    }
    assert_eq!(got, ["before", "after"]);
    assert!(killed_at.elapsed() < Duration::from_secs(1), "the queue resumed after {:?}", killed_at.elapsed());
    assert!(consumer.try_recv().is_err(), "nothing of the dead batch is delivered");
}
