//! Dead-lettering throughput (issue 13), next to plain publish + consume in
//! the same run, rounds interleaved (the machines are shared and noisy):
//!
//! - `plain`: publish 64-byte messages to a queue, consume and ack each;
//! - `dlx-unused`: the same through a queue that has a dead-letter
//!   exchange, every message acked (the cost of having one configured);
//! - `reject-to-dlx`: publish, consume and reject each (`requeue=false`):
//!   the consumer publishes its dead-lettered copy, with `x-death`, into the
//!   dead-letter queue, then settles it; the dead-letter queue's consumer
//!   then acks each. Rate = messages that went all the way through / time.
//!
//! One thread, k messages published then k consumed (k = 1000). Prints the
//! median (min–max) of 7 rounds each. `cargo bench --bench dead_letter`.

use std::time::Instant;

use shmq::{ConsumerOptions, Namespace, Properties, QueueOptions};

const BODY: [u8; 64] = [0x5A; 64];
const MESSAGES: usize = 200_000;
const K: usize = 1000;
const ROUNDS: usize = 7;

fn round(ns: &Namespace, workload: &str) -> f64 {
    let (queue, reject) = match workload {
        "plain" => ("plain", false),
        "dlx-unused" => ("work", false),
        _ => ("work", true),
    };
    let mut producer = ns.producer(queue).unwrap();
    let consumer = ns.consumer(queue, ConsumerOptions::default().manual_ack()).unwrap();
    let dead = ns.consumer("dead", ConsumerOptions::default().manual_ack()).unwrap();
    let props = Properties::new().routing_key(queue).exchange("");
    let began = Instant::now();
    let mut moved = 0;
    while moved < MESSAGES {
        for _ in 0..K {
            producer.publish_with(&props, &BODY).unwrap();
        }
        for _ in 0..K {
            let d = consumer.try_recv().unwrap();
            if reject {
                d.reject(false).unwrap();
            } else {
                d.ack().unwrap();
            }
        }
        if reject {
            for _ in 0..K {
                dead.try_recv().unwrap().ack().unwrap();
            }
        }
        moved += K;
    }
    moved as f64 / began.elapsed().as_secs_f64()
}

fn main() {
    let dir = std::path::PathBuf::from(format!("/dev/shm/shmq-bench-dlx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ns = Namespace::open_dir(&dir).expect("open namespace");
    ns.declare_queue("plain", &QueueOptions::default()).unwrap();
    ns.declare_queue("dead", &QueueOptions::default()).unwrap();
    ns.declare_queue("work", &QueueOptions::default().dead_letter_exchange("").dead_letter_routing_key("dead")).unwrap();
    let workloads = ["plain", "dlx-unused", "reject-to-dlx"];
    let mut rates = vec![Vec::new(); workloads.len()];
    for _ in 0..ROUNDS {
        for (i, w) in workloads.iter().enumerate() {
            rates[i].push(round(&ns, w));
        }
    }
    let plain = {
        let mut p = rates[0].clone();
        p.sort_by(f64::total_cmp);
        p[ROUNDS / 2]
    };
    for (w, r) in workloads.iter().zip(&mut rates) {
        r.sort_by(f64::total_cmp);
        let m = r[ROUNDS / 2];
        println!("{w:14} {:>6.2} M msg/s (min {:.2}, max {:.2}), {:.2}x plain", m / 1e6, r[0] / 1e6, r[ROUNDS - 1] / 1e6, m / plain);
    }
    assert_eq!(ns.queue_stats("work").unwrap().dead_lettered, (ROUNDS * MESSAGES) as u64);
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
}
