//! kill -9 during dead-lettering, with full accounting: a message leaves
//! its queue only after its dead-lettered copy is published, so a process
//! killed at any instruction of the handoff leaves at most a duplicate in
//! the dead-letter queue, never a loss (loom-tests/tests/dead_letter.rs
//! models the same handoff with a death after each atomic step).
//!
//! Two processes die here, each the only one doing its job (the single-
//! consumer case, where nobody else would help past what it left):
//! - a consumer that rejects every message of `work` (reason `rejected`);
//! - the process whose housekeeping dead-letters the expired messages of
//!   `ttl`, a queue nobody consumes from (reason `expired`).
//!
//! Every id a producer published must reach `dead`. 6 s per mode by
//! default; `SHMQ_SOAK_SECS` soaks.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{kill, TempNs};
use shmq::{ConsumerOptions, QueueOptions};

/// `(attempted, published)` ids from a producer's log.
fn published_ids(log: &std::path::Path) -> (HashSet<String>, HashSet<String>) {
    let (mut attempted, mut ok) = (HashSet::new(), HashSet::new());
    for l in std::fs::read_to_string(log).unwrap().lines() {
        match l.split(' ').collect::<Vec<_>>().as_slice() {
            ["attempt", id] => attempted.insert((*id).to_owned()),
            ["ok", id] => ok.insert((*id).to_owned()),
            _ => panic!("torn producer log line {l:?}"),
        };
    }
    (attempted, ok)
}

/// Drains `dead` in this process; counts each body.
fn drain_dead(t: &TempNs, seen: &mut HashMap<String, u32>) {
    let consumer = t.ns.consumer("dead", ConsumerOptions::default()).unwrap();
    consumer.drain(usize::MAX, |d| *seen.entry(String::from_utf8_lossy(d.body()).into_owned()).or_default() += 1).unwrap();
}

fn run(mode: &str) {
    let secs: u64 = std::env::var("SHMQ_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let t = TempNs::in_shm(&format!("dl-crash-{mode}"));
    t.ns.declare_queue("dead", &QueueOptions::default()).unwrap();
    let source = match mode {
        "rejected" => QueueOptions::default().dead_letter_exchange("").dead_letter_routing_key("dead"),
        _ => QueueOptions::default().message_ttl(Duration::from_millis(1)).dead_letter_exchange("").dead_letter_routing_key("dead"),
    };
    t.ns.declare_queue("work", &source).unwrap();
    // Keeps `dead` busy for the expired mode's housekeeper, and is the
    // housekeeper: an idle consumer of another queue, whose sweeps run it.
    t.ns.declare_queue("idle", &QueueOptions::default()).unwrap();
    let producer_log = t.path().join("producer.log");
    let worker_log = t.path().join("worker.log");
    let (role, queue, extra): (&str, &str, &[&str]) =
        if mode == "rejected" { ("consumer", "work", &["--reject", "--hold-us", "50"]) } else { ("consumer", "idle", &[]) };
    let mut producer = t.stress_agent("producer-queue", "work", &producer_log, "p", &["--interval-us", "20"]);
    let mut worker = t.stress_agent(role, queue, &worker_log, "w", extra);
    let (seed, mut next) = common::seeded_rng();
    let mut seen = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut kills = 0u32;
    while Instant::now() < deadline {
        // Housekeeping runs every 100-200 ms: kill within and across runs.
        std::thread::sleep(Duration::from_micros(2_000 + next() % 300_000));
        kill(&mut worker);
        kills += 1;
        if next() % 2 == 0 {
            t.run(&["gc"]);
        }
        worker = t.stress_agent(role, queue, &worker_log, &format!("w{kills}"), extra);
        if kills.is_multiple_of(4) {
            drain_dead(&t, &mut seen);
        }
    }
    kill(&mut producer);
    // Let the last worker finish what is left, then stop it.
    t.wait_drained("work", Duration::from_secs(30), &format!("after {kills} kills, seed {seed}"));
    kill(&mut worker);
    t.run(&["gc"]);
    drain_dead(&t, &mut seen);
    let (attempted, published) = published_ids(&producer_log);
    let lost: Vec<&String> = published.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} published messages never reached dead, e.g. {:?} (seed {seed})",
        lost.len(),
        published.len(),
        &lost[..lost.len().min(5)]
    );
    let strangers: Vec<&String> = seen.keys().filter(|id| !attempted.contains(*id)).collect();
    assert!(strangers.is_empty(), "dead holds messages nobody published: {strangers:?}");
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    assert!(kills >= 10 && published.len() > 1000, "too little happened: {kills} kills, {} published", published.len());
    let stats = t.ns.queue_stats("work").unwrap();
    // Each kill can lose the count of the one message in hand (counted after
    // it is settled), never more.
    assert!(
        stats.dead_lettered + u64::from(kills) >= published.len() as u64,
        "dead_lettered {} + {kills} kills < published {}",
        stats.dead_lettered,
        published.len()
    );
    eprintln!(
        "dead-letter chaos ({mode}): {secs} s, {kills} kills of the only {}, {} published, all reached dead, {duplicates} duplicates, seed {seed}",
        if mode == "rejected" { "consumer" } else { "housekeeping process" },
        published.len()
    );
}

#[test]
fn a_rejecting_consumer_killed_repeatedly_loses_no_dead_letter() {
    run("rejected");
}

#[test]
fn a_housekeeper_killed_while_dead_lettering_expired_messages_loses_none() {
    run("expired");
}

/// Delivery limits across kill -9: a consumer process that holds the
/// message unacked is killed, again and again. Each death requeues it (the
/// sweep counts the requeue); past the limit it is dead-lettered with
/// reason `delivery_limit`, by the housekeeping of whichever process looks
/// next, here `shmq gc`.
#[test]
fn consumers_killed_holding_a_message_count_toward_its_delivery_limit() {
    let t = TempNs::in_shm("dl-crash-limit");
    t.ns.declare_queue("dead", &QueueOptions::default()).unwrap();
    t.ns.declare_queue("work", &QueueOptions::default().delivery_limit(2).dead_letter_exchange("").dead_letter_routing_key("dead"))
        .unwrap();
    t.ns.producer("work").unwrap().publish(b"poison").unwrap();
    for death in 1..=3 {
        let mut holder = t
            .shmq()
            .args(["consume", "work", "--manual-ack", "--count", "1", "--work-ms", "30000"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until it holds the message.
        let deadline = Instant::now() + Duration::from_secs(10);
        while t.ns.queue_stats("work").unwrap().unacked == 0 {
            assert!(Instant::now() < deadline, "consumer {death} never took the message");
            std::thread::sleep(Duration::from_millis(10));
        }
        kill(&mut holder);
        t.run(&["gc"]);
        let stats = t.ns.queue_stats("work").unwrap();
        if death < 3 {
            assert_eq!((stats.ready, stats.unacked), (1, 0), "after death {death} the message is back");
        }
    }
    // Requeued three times, over the limit of 2: dead-lettered, not delivered.
    assert_eq!(t.ns.queue_stats("work").unwrap().ready, 0);
    let dead = t.ns.consumer("dead", ConsumerOptions::default()).unwrap();
    let d = dead.try_recv().expect("the poison message was dead-lettered");
    assert_eq!(d.body(), b"poison");
    assert_eq!(d.properties().headers.get("x-first-death-reason"), Some(shmq::HeaderValue::Str("delivery_limit")));
}
