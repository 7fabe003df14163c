//! A consumer killed with -9 while holding unacked messages gets them
//! redelivered within the sweep interval even when no surviving handle ever
//! waits: a consumer working through a backlog of 100 000 messages, or
//! handles that only poll (`try_recv` finding nothing, a `reject` queue's
//! publisher finding it full). Busy and polling handles look at the clock
//! every 256 operations.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempNs;
use shmq::{ConsumerOptions, Overflow, PublishError, QueueOptions, RecvError};

const HELD: u32 = 100;
const BACKLOG: u32 = 100_000;

/// In the child: take `count` messages unacked, say so, and wait to be killed.
fn hold_messages(dir: &str, count: u32) {
    let ns = shmq::Namespace::open_dir(dir).unwrap();
    let consumer = ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(count)).unwrap();
    for _ in 0..count {
        let delivery = consumer.recv().unwrap();
        std::mem::forget(delivery); // unacked, and stays so
    }
    println!("held");
    std::thread::sleep(Duration::from_secs(600));
}

/// True in the child that `hold_then_kill` runs, after holding its
/// messages until it is killed: each test returns at once then.
fn is_holder_child() -> bool {
    let Ok(spec) = std::env::var("SHMQ_TEST_HOLDER") else { return false };
    let (dir, count) = spec.split_once('|').unwrap();
    hold_messages(dir, count.parse().unwrap());
    true
}

/// Runs this test binary's test `test` as a child that holds `count`
/// messages of queue "q" in namespace `dir`, and kills it with -9 once it
/// holds them.
fn hold_then_kill(test: &str, dir: &std::path::Path, count: u32) {
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env("SHMQ_TEST_HOLDER", format!("{}|{count}", dir.display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap() == "held"), "the holder did not take its messages");
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
}

#[test]
fn dead_consumers_messages_come_back_while_a_busy_consumer_works_a_100k_backlog() {
    if is_holder_child() {
        return;
    }
    let t = TempNs::in_shm("recovery-latency");
    let options = QueueOptions::default().capacity_bytes(32 << 20).max_length(1 << 18);
    t.ns.declare_queue("q", &options).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    for i in 0..HELD + BACKLOG {
        producer.publish(&i.to_le_bytes()).unwrap();
    }
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(64)).unwrap();
    hold_then_kill("dead_consumers_messages_come_back_while_a_busy_consumer_works_a_100k_backlog", &t.dir, HELD);
    let killed_at = Instant::now();
    let mut redelivered = 0;
    let mut consumed = 0;
    let mut latency = None;
    // Work through the backlog without ever waiting: try_recv only, with
    // 5 µs of work per message, so the backlog lasts well over a second.
    while consumed < HELD + BACKLOG {
        let delivery = consumer.try_recv().expect("the backlog ran out before the dead consumer's messages came back");
        if delivery.redelivered() {
            let value = u32::from_le_bytes(delivery.body().try_into().unwrap());
            assert!(value < HELD, "message {value} was never held, yet came back redelivered");
            redelivered += 1;
            if redelivered == HELD {
                latency = Some(killed_at.elapsed());
            }
        }
        delivery.ack().unwrap();
        consumed += 1;
        let work = Instant::now();
        while work.elapsed() < Duration::from_micros(5) {}
        if latency.is_some() {
            break;
        }
    }
    let latency = latency.expect("every held message comes back");
    let left = t.ns.queue_stats("q").unwrap().ready;
    assert!(left > 0, "the backlog was empty when they came back: the busy path did not sweep");
    eprintln!("recovery under load: all {HELD} messages of the killed consumer redelivered {latency:?} after the kill, {consumed} consumed by then, {left} still queued");
}

/// A reject queue of 4 whose every message a consumer killed with -9
/// holds; then `poll` is called until the 4 come back redelivered, with no
/// other handle of this process doing anything.
fn held_messages_come_back_through(test: &str, poll: impl Fn(&shmq::Namespace) -> Vec<u8>) {
    let t = TempNs::in_shm(&test[..20]);
    t.ns.declare_queue("q", &QueueOptions::default().max_length(4).overflow(Overflow::Reject)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    for i in 0..4u8 {
        producer.publish(&[i]).unwrap();
    }
    drop(producer);
    hold_then_kill(test, &t.dir, 4);
    let killed_at = Instant::now();
    let mut redelivered = poll(&t.ns);
    redelivered.sort();
    assert_eq!(redelivered, vec![0, 1, 2, 3]);
    eprintln!("{test}: the dead consumer's 4 messages came back {:?} after the kill", killed_at.elapsed());
}

/// Calls `step` every millisecond until it returns true; panics after 30 s.
fn poll_until(what: &str, mut step: impl FnMut() -> bool) {
    let start = Instant::now();
    while !step() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}: nothing came back in 30 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Takes every ready message, acking; the redelivered ones' first bytes.
fn take_redelivered(consumer: &shmq::Consumer) -> Vec<u8> {
    let mut got = Vec::new();
    while let Ok(delivery) = consumer.try_recv() {
        if delivery.redelivered() {
            got.push(delivery.body()[0]);
        }
        delivery.ack().unwrap();
    }
    got
}

#[test]
fn a_consumer_that_only_polls_an_empty_queue_recovers_a_dead_consumers_messages() {
    if is_holder_child() {
        return;
    }
    let test = "a_consumer_that_only_polls_an_empty_queue_recovers_a_dead_consumers_messages";
    held_messages_come_back_through(test, |ns| {
        let consumer = ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
        let mut got = Vec::new();
        poll_until("try_recv on an empty queue", || {
            got.extend(take_redelivered(&consumer));
            got.len() == 4
        });
        got
    });
}

#[test]
fn a_publisher_that_only_finds_the_queue_full_recovers_a_dead_consumers_messages() {
    if is_holder_child() {
        return;
    }
    let test = "a_publisher_that_only_finds_the_queue_full_recovers_a_dead_consumers_messages";
    held_messages_come_back_through(test, |ns| {
        let mut producer = ns.producer("q").unwrap();
        // Unacked messages do not count against max_length: four more fit.
        for i in 10..14u8 {
            producer.publish(&[i]).unwrap();
        }
        // Nothing else runs: only this publisher's QueueFull path can sweep.
        // The dead consumer's four come back on top of the four ready ones
        // (a requeue is never refused).
        poll_until("publish to a full reject queue", || match producer.publish(b"new") {
            Err(PublishError::QueueFull) => ns.queue_stats("q").unwrap().ready == 8,
            other => panic!("expected QueueFull while the queue is at max_length, got {other:?}"),
        });
        let consumer = ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
        take_redelivered(&consumer)
    });
}

#[test]
fn a_consumer_at_its_prefetch_limit_recovers_a_dead_consumers_messages() {
    if is_holder_child() {
        return;
    }
    let t = TempNs::in_shm("recovery-prefetch");
    t.ns.declare_queue("q", &QueueOptions::default().max_length(8)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    for i in 0..5u8 {
        producer.publish(&[i]).unwrap();
    }
    drop(producer);
    // This consumer holds message 0 unacked, so every poll of it is
    // PrefetchFull; the dead one holds 1..=4.
    let full = t.ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(1)).unwrap();
    let held = full.try_recv().unwrap();
    assert_eq!(held.body(), [0]);
    hold_then_kill("a_consumer_at_its_prefetch_limit_recovers_a_dead_consumers_messages", &t.dir, 4);
    let killed_at = Instant::now();
    poll_until("try_recv at the prefetch limit", || {
        assert_eq!(full.try_recv().err(), Some(RecvError::PrefetchFull(1)));
        t.ns.queue_stats("q").unwrap().ready == 4
    });
    eprintln!("prefetch-full polls: the dead consumer's 4 messages came back {:?} after the kill", killed_at.elapsed());
    held.ack().unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let mut got = take_redelivered(&consumer);
    got.sort();
    assert_eq!(got, vec![1, 2, 3, 4]);
}
