//! kill -9 chaos with a single consumer, the case a second consumer hides:
//! nobody else moves the read cursor past what a killed consumer left, so
//! a delivery stranded between its claim and the cursor move is lost unless
//! recovery finds it. After each kill, the first recovery comes from `shmq
//! gc` or from the blocked publisher's own sweep, before a new consumer
//! starts (which would otherwise help the read cursor past the stranded
//! slot and hide the loss). Both consumer paths run: one `recv` at a time,
//! and `drain` batches.
//!
//! Accounting: every message whose publish returned is consumed; a message
//! is delivered again only with the redelivered flag; nothing unpublished
//! is delivered. 8 s per mode by default; `SHMQ_SOAK_SECS=600` soaks.

mod common;

use std::collections::{HashMap, HashSet};

use std::time::{Duration, Instant};

use common::{kill, TempNs};
use shmq::{Overflow, QueueOptions};

fn run_chaos(batch: bool, growing: bool) {
    let secs: u64 = std::env::var("SHMQ_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let t = TempNs::in_shm(if batch { "chaos1-batch" } else { "chaos1-recv" });
    // A small ring, so a dead consumer's held slot blocks the publisher soon
    // and the wrap is reached many times.
    // Growing: no limit, so the queue grows past its 16 KiB first ring
    // while the producer outpaces the consumer, and shrinks as it drains;
    // the producer is killed too.
    let options = if growing {
        QueueOptions::default().capacity_bytes(16 << 10).max_message_bytes(64)
    } else {
        QueueOptions::default().capacity_bytes(16 << 10).max_length(64).max_message_bytes(64).overflow(Overflow::Block)
    };
    t.ns.declare_queue("work", &options).unwrap();
    let producer_log = t.path().join("producer.log");
    let consumer_log = t.path().join("consumer.log");
    // The consumer holds each message (or batch) 50 µs before acking, so
    // kills land while it holds deliveries; the producer outpaces it.
    // Growing: the batched consumer, so the backlog a dead consumer leaves
    // is worked off between kills and the drain at the end stays short.
    let consumer_args: &[&str] = if batch || growing { &["--batch", "--hold-us", "50"] } else { &["--hold-us", "50"] };
    let mut producer = t.stress_agent("producer-queue", "work", &producer_log, "p", &["--interval-us", "10"]);
    let mut consumer = t.stress_agent("consumer", "work", &consumer_log, "c", consumer_args);
    let (seed, mut next) = common::seeded_rng();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut kills, mut by_gc, mut by_publisher) = (0u32, 0u32, 0u32);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(2_000 + next() % 40_000));
        kill(&mut consumer);
        kills += 1;
        if next() % 2 == 0 {
            t.run(&["gc"]);
            by_gc += 1;
        } else {
            // The ring fills within milliseconds; the blocked publisher
            // sweeps every 200 ms.
            std::thread::sleep(Duration::from_millis(450));
            by_publisher += 1;
        }
        consumer = t.stress_agent("consumer", "work", &consumer_log, &format!("c{kills}"), consumer_args);
        if growing && kills % 3 == 0 {
            kill(&mut producer);
            producer = t.stress_agent("producer-queue", "work", &producer_log, &format!("p{kills}"), &["--interval-us", "10"]);
        }
    }
    kill(&mut producer);
    // A soak's backlog takes longer to drain than the default run's.
    t.wait_drained("work", Duration::from_secs(30 + secs), &format!("after {kills} kills, seed {seed}"));
    std::thread::sleep(Duration::from_millis(200));
    kill(&mut consumer);

    let mut attempted = HashSet::new();
    let mut published = HashSet::new();
    for l in std::fs::read_to_string(&producer_log).unwrap().lines() {
        match l.split(' ').collect::<Vec<_>>().as_slice() {
            ["attempt", id] => attempted.insert((*id).to_owned()),
            ["ok", id] => published.insert((*id).to_owned()),
            _ => panic!("torn producer log line {l:?}"),
        };
    }
    let mut deliveries: HashMap<String, Vec<bool>> = HashMap::new();
    let mut total = 0;
    for l in std::fs::read_to_string(&consumer_log).unwrap().lines() {
        let ["got", "work", id, flag] = l.split(' ').collect::<Vec<_>>()[..] else { panic!("torn consumer log line {l:?}") };
        assert!(attempted.contains(id), "delivered {id}, which was never published (seed {seed})");
        deliveries.entry(id.to_owned()).or_default().push(flag == "1");
        total += 1;
    }
    let lost: Vec<&String> = published.iter().filter(|id| !deliveries.contains_key(*id)).collect();
    assert!(lost.is_empty(), "{} published messages were never consumed, e.g. {:?} (seed {seed})", lost.len(), &lost[..lost.len().min(5)]);
    let mut duplicates = 0;
    for (id, flags) in &deliveries {
        let first_time = flags.iter().filter(|r| !**r).count();
        assert!(first_time <= 1, "{id} delivered {first_time} times without the redelivered flag (seed {seed})");
        duplicates += flags.len() - 1;
    }
    assert!(kills >= 10 && published.len() > 1000, "too little happened: {kills} kills, {} published", published.len());
    eprintln!(
        "chaos, single {} consumer: {secs} s, {kills} kills ({by_gc} recovered by gc, {by_publisher} by a publisher's sweep), \
         {} published, all consumed, {total} deliveries, {duplicates} duplicates (all flagged), seed {seed}",
        if growing {
            "batched, growing queue,"
        } else if batch {
            "batched"
        } else {
            "recv"
        },
        published.len()
    );
}

#[test]
fn single_recv_consumer_killed_repeatedly_loses_nothing() {
    run_chaos(false, false);
}

#[test]
fn single_batched_consumer_killed_repeatedly_loses_nothing() {
    run_chaos(true, false);
}

/// kill -9 of the consumer, and of the producer every third round, while
/// the queue grows past its first ring and shrinks again: every message
/// published is consumed.
#[test]
fn consumer_and_producer_killed_while_the_queue_grows_and_shrinks_lose_nothing() {
    run_chaos(false, true);
}
