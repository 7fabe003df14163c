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
    let options = QueueOptions::default().capacity_bytes(32 << 20).max_messages(1 << 18);
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

#[test]
fn dead_consumers_messages_come_back_to_handles_that_only_poll() {
    if is_holder_child() {
        return;
    }
    let t = TempNs::in_shm("recovery-polling");
    t.ns.declare_queue("q", &QueueOptions::default().max_messages(4).overflow(Overflow::Reject)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    for i in 0..4u8 {
        producer.publish(&[i]).unwrap();
    }
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    // The dead consumer holds the whole (reject) queue.
    hold_then_kill("dead_consumers_messages_come_back_to_handles_that_only_poll", &t.dir, 4);
    let killed_at = Instant::now();
    let mut received = Vec::new();
    let mut full = 0;
    while received.len() < 4 {
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "nothing came back: no polling handle sweeps ({full} publishes found the queue full)"
        );
        match producer.publish(b"new") {
            Ok(()) | Err(PublishError::QueueFull) => full += 1,
            Err(e) => panic!("{e}"),
        }
        match consumer.try_recv() {
            Ok(delivery) => {
                if delivery.redelivered() {
                    received.push(delivery.body()[0]);
                }
                delivery.ack().unwrap();
            }
            Err(RecvError::Empty) => {}
            Err(e) => panic!("{e}"),
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    received.sort();
    assert_eq!(received, vec![0, 1, 2, 3]);
    eprintln!("polling handles: the dead consumer's 4 messages came back {:?} after the kill", killed_at.elapsed());
}
