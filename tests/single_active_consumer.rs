//! Single active consumer (`x-single-active-consumer`) across real
//! processes, with kill -9 and full accounting. Three consumer processes
//! attach; the test kills whichever is active, again and again, and starts
//! a new one each time. Checked:
//! - every published message reaches some consumer;
//! - at most one consumer is ever shown active (`list_consumers`);
//! - one consumer at a time receives: in publish order, the first
//!   deliveries change hands only when the active consumer was killed, so
//!   the owner changes at most once per kill;
//! - a dead active consumer's unacked messages come back, flagged
//!   redelivered, to the next one.
//!
//! 6 s by default; `SHMQ_SOAK_SECS` soaks. The loom model of the election
//! is loom-tests/tests/single_active.rs.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::{kill, TempNs};
use shmq::{ConsumerOptions, QueueOptions};

/// The sequence number of a producer id `p-<seq>`.
fn seq_of(id: &str) -> u64 {
    id.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad id {id:?}"))
}

/// `(id, redelivered)` for each delivery a consumer logged.
fn deliveries(log: &Path) -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(|l| match l.split(' ').collect::<Vec<_>>().as_slice() {
            ["got", _queue, id, redelivered] => ((*id).to_owned(), *redelivered == "1"),
            _ => panic!("torn consumer log line {l:?}"),
        })
        .collect()
}

fn published(log: &Path) -> HashSet<String> {
    std::fs::read_to_string(log).unwrap().lines().filter_map(|l| l.strip_prefix("ok ").map(str::to_owned)).collect()
}

struct Worker {
    child: Child,
    log: PathBuf,
}

#[test]
fn killing_the_active_consumer_hands_over_with_nothing_lost_and_one_receiver_at_a_time() {
    let secs: u64 = std::env::var("SHMQ_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let t = TempNs::in_shm("sac-crash");
    t.ns.declare_queue("work", &QueueOptions::default().single_active_consumer(true)).unwrap();
    let producer_log = t.path().join("producer.log");
    let mut producer = t.stress_agent("producer-queue", "work", &producer_log, "p", &["--interval-us", "50"]);
    let spawn = |n: u32| {
        let log = t.path().join(format!("consumer-{n}.log"));
        Worker { child: t.stress_agent("consumer", "work", &log, "c", &["--hold-us", "20"]), log }
    };
    let mut workers: Vec<Worker> = (0..3).map(spawn).collect();
    let mut logs: Vec<PathBuf> = workers.iter().map(|w| w.log.clone()).collect();
    let (seed, mut next) = common::seeded_rng();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut kills, mut samples, mut spawned) = (0u32, 0u32, 3u32);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20 + next() % 250));
        let active: Vec<u32> = t.ns.list_consumers().unwrap().iter().filter(|h| h.queue == "work" && h.active).map(|h| h.pid).collect();
        samples += 1;
        assert!(active.len() <= 1, "{} consumers shown active at once: {active:?} (seed {seed})", active.len());
        let Some(&pid) = active.first() else { continue };
        let Some(index) = workers.iter().position(|w| w.child.id() == pid) else { continue };
        let mut dead = workers.remove(index);
        kill(&mut dead.child);
        kills += 1;
        let fresh = spawn(spawned);
        spawned += 1;
        logs.push(fresh.log.clone());
        workers.push(fresh);
    }
    kill(&mut producer);
    t.wait_drained("work", Duration::from_secs(30), &format!("after {kills} kills, seed {seed}"));
    for w in &mut workers {
        kill(&mut w.child);
    }

    let sent = published(&producer_log);
    let mut seen: HashMap<String, u32> = HashMap::new();
    // (seq, consumer) of every first delivery.
    let mut firsts: Vec<(u64, usize)> = Vec::new();
    let mut redelivered = 0;
    for (consumer, log) in logs.iter().enumerate() {
        for (id, again) in deliveries(log) {
            *seen.entry(id.clone()).or_default() += 1;
            if again {
                redelivered += 1;
            } else {
                firsts.push((seq_of(&id), consumer));
            }
        }
    }
    let lost: Vec<&String> = sent.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} published messages were never delivered, e.g. {:?} (seed {seed})",
        lost.len(),
        sent.len(),
        &lost[..lost.len().min(5)]
    );
    firsts.sort_unstable();
    let handovers = firsts.windows(2).filter(|w| w[0].1 != w[1].1).count();
    assert!(
        handovers <= kills as usize,
        "first deliveries changed consumer {handovers} times but only {kills} active consumers were killed: more than one received (seed {seed})"
    );
    assert!(kills >= 5 && sent.len() > 1000, "too little happened: {kills} kills, {} published", sent.len());
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "single active consumer chaos: {secs} s, {kills} kills of the active consumer, {samples} samples with at most one active, \
         {} published, all delivered, {handovers} handovers, {redelivered} redeliveries, {duplicates} duplicates, seed {seed}",
        sent.len()
    );
}

/// In one process: the first registered consumer receives; when it goes,
/// its unacked message is redelivered first to the next registered one;
/// `basic.get` is no consumer and is never held back.
#[test]
fn the_next_registered_consumer_takes_over_with_the_unacked_first() {
    let t = TempNs::new("sac-order");
    t.ns.declare_queue("q", &QueueOptions::default().single_active_consumer(true)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let first = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let second = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let third = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    for body in [b"a", b"b", b"c"] {
        producer.publish(body).unwrap();
    }
    assert!(matches!(second.try_recv(), Err(shmq::RecvError::Empty)), "a standby received");
    assert_eq!(third.drain(10, |_| {}).unwrap(), 0, "a standby drained");
    let held = first.try_recv().unwrap();
    assert_eq!(held.body(), b"a");
    std::mem::forget(held);
    assert!(first.is_active() && !second.is_active() && !third.is_active());
    let getter = t.ns.consumer("q", ConsumerOptions::default().for_get()).unwrap();
    assert_eq!(getter.try_recv().unwrap().body(), b"b", "basic.get is no consumer: never held back");
    drop(first);
    assert!(second.is_active() && !third.is_active());
    let again = second.try_recv().unwrap();
    assert_eq!((again.body(), again.redelivered()), (&b"a"[..], true));
    again.ack().unwrap();
    assert_eq!(second.try_recv().unwrap().body(), b"c");
    let listed: Vec<bool> = t.ns.list_consumers().unwrap().iter().filter(|h| h.role == "consumer").map(|h| h.active).collect();
    assert_eq!(listed.iter().filter(|a| **a).count(), 1, "list_consumers shows one active: {listed:?}");
}

/// Redeclaring with a different setting is refused, naming it.
#[test]
fn single_active_consumer_is_part_of_declare_equivalence() {
    let t = TempNs::new("sac-declare");
    t.ns.declare_queue("q", &QueueOptions::default().single_active_consumer(true)).unwrap();
    let err = t.ns.declare_queue("q", &QueueOptions::default()).unwrap_err();
    assert!(err.to_string().contains("single_active_consumer"), "{err}");
}
