//! Priority queue throughput (issue 14), next to a plain queue in the same
//! run, rounds interleaved (the machines are shared and noisy):
//!
//! - `plain`: publish 64-byte messages to a queue without priorities, then
//!   consume and ack each;
//! - `prio-unused`: the same through a queue with `x-max-priority` 10,
//!   messages without a priority (level 0 only; the consumer still looks
//!   at the ten empty levels above it);
//! - `prio-random`: priorities drawn uniformly from 0..=10: eleven levels
//!   in use, each message taken from the highest level that has one.
//!
//! One thread, k messages published then k consumed (k = 1000). Prints the
//! median (min–max) of 7 rounds each. `cargo bench --bench priority`. The
//! plain queue's speed before and after priority queues existed is
//! compared by scripts/ab-hot-path.sh.

use std::time::Instant;

use shmq::{ConsumerOptions, Namespace, Properties, QueueOptions};

const BODY: [u8; 64] = [0x5A; 64];
const MESSAGES: usize = 200_000;
const K: usize = 1000;
const ROUNDS: usize = 7;
const MAX_PRIORITY: u8 = 10;

fn round(ns: &Namespace, workload: &str, priorities: &[Option<u8>]) -> f64 {
    let queue = if workload == "plain" { "plain" } else { "prio" };
    let mut producer = ns.producer(queue).unwrap();
    let consumer = ns.consumer(queue, ConsumerOptions::default().manual_ack()).unwrap();
    let mut props = Properties::new();
    let began = Instant::now();
    let mut moved = 0;
    while moved < MESSAGES {
        for i in 0..K {
            props.priority = if workload == "prio-random" { priorities[(moved + i) % priorities.len()] } else { None };
            producer.publish_with(&props, &BODY).unwrap();
        }
        for _ in 0..K {
            consumer.try_recv().unwrap().ack().unwrap();
        }
        moved += K;
    }
    moved as f64 / began.elapsed().as_secs_f64()
}

fn main() {
    let dir = std::path::PathBuf::from(format!("/dev/shm/shmq-bench-prio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ns = Namespace::open_dir(&dir).expect("open namespace");
    ns.declare_queue("plain", &QueueOptions::default()).unwrap();
    ns.declare_queue("prio", &QueueOptions::default().max_priority(MAX_PRIORITY)).unwrap();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let priorities: Vec<Option<u8>> = (0..4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            Some((seed % (u64::from(MAX_PRIORITY) + 1)) as u8)
        })
        .collect();
    let workloads = ["plain", "prio-unused", "prio-random"];
    let mut rates = vec![Vec::new(); workloads.len()];
    for _ in 0..ROUNDS {
        for (i, w) in workloads.iter().enumerate() {
            rates[i].push(round(&ns, w, &priorities));
        }
    }
    let median = |r: &mut Vec<f64>| {
        r.sort_by(f64::total_cmp);
        r[ROUNDS / 2]
    };
    let plain = median(&mut rates[0].clone());
    for (w, r) in workloads.iter().zip(&mut rates) {
        let m = median(r);
        println!("{w:12} {:>6.2} M msg/s (min {:.2}, max {:.2}), {:.2}x plain", m / 1e6, r[0] / 1e6, r[ROUNDS - 1] / 1e6, m / plain);
    }
    assert_eq!(ns.queue_stats("prio").unwrap().ready, 0);
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
}
