//! A consumer killed with -9 while holding unacked messages gets them
//! redelivered within the sweep interval even when the surviving consumer
//! never waits: it works through a backlog of 100 000 messages and looks at
//! the clock every 256 messages.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempNs;
use shmq::{ConsumerOptions, QueueOptions};

const HELD: u32 = 100;
const BACKLOG: u32 = 100_000;

/// In the child: take `HELD` messages unacked, say so, and wait to be killed.
fn hold_messages(dir: &str) {
    let ns = shmq::Namespace::open_dir(dir).unwrap();
    let consumer = ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(HELD)).unwrap();
    for _ in 0..HELD {
        let delivery = consumer.recv().unwrap();
        std::mem::forget(delivery); // unacked, and stays so
    }
    println!("held");
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn dead_consumers_messages_come_back_while_a_busy_consumer_works_a_100k_backlog() {
    if let Ok(dir) = std::env::var("SHMQ_TEST_HOLDER") {
        return hold_messages(&dir);
    }
    let t = TempNs::in_shm("recovery-latency");
    let options = QueueOptions::default().capacity_bytes(32 << 20).max_messages(1 << 18);
    t.ns.declare_queue("q", &options).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    for i in 0..HELD + BACKLOG {
        producer.publish(&i.to_le_bytes()).unwrap();
    }
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "dead_consumers_messages_come_back_while_a_busy_consumer_works_a_100k_backlog", "--nocapture"])
        .env("SHMQ_TEST_HOLDER", &t.dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap() == "held"), "the holder did not take its messages");
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(64)).unwrap();
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
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
