//! The publish/consume hot path of a queue without dead-lettering, in one
//! thread: what issue 13 must not slow down. Uses only API that shmq had
//! before dead-lettering, so that scripts/ab-hot-path.sh can build this
//! same file against an older commit and alternate the two builds.
//!
//! Workloads (64-byte bodies, a default queue, publish k then consume k):
//! - `one`: `publish` / `try_recv`, auto-ack, k = 1;
//! - `batch`: `publish_batch` / `drain`, auto-ack, k = 32;
//! - `manual`: `publish` / `try_recv` + `ack`, k = 1;
//! - `manual-batch`: `publish_batch` / `drain`, manual acks settled with
//!   one `ack_multiple`, k = 32 (scripts/ab-hot-path.sh needs a commit
//!   with `ack_multiple` for it).
//!
//! Prints one line per workload: name, then the median of 5 repetitions in
//! messages per second. `cargo bench --bench hot_path`.

use std::time::Instant;

use shmq::{ConsumerOptions, Namespace, QueueOptions};

const BODY: [u8; 64] = [0x5A; 64];
const MESSAGES: usize = 2_000_000;
const REPS: usize = 5;

fn run(ns: &Namespace, queue: &str, workload: &str) -> f64 {
    let mut producer = ns.producer(queue).unwrap();
    let manual = workload.starts_with("manual");
    let options = if manual { ConsumerOptions::default().manual_ack() } else { ConsumerOptions::default() };
    let consumer = ns.consumer(queue, options).unwrap();
    let bodies: Vec<&[u8]> = vec![&BODY[..]; 32];
    let began = Instant::now();
    let mut moved = 0;
    while moved < MESSAGES {
        if workload == "batch" || workload == "manual-batch" {
            producer.publish_batch(&bodies).unwrap();
            let mut got = 0;
            let mut last = None;
            while got < 32 {
                got += consumer
                    .drain(32 - got, |d| {
                        assert_eq!(d.body().len(), 64);
                        last = Some(d.tag());
                    })
                    .unwrap();
            }
            if manual {
                assert_eq!(consumer.ack_multiple(last.unwrap()).unwrap(), 32);
            }
            moved += 32;
        } else {
            producer.publish(&BODY).unwrap();
            let d = consumer.try_recv().unwrap();
            assert_eq!(d.body().len(), 64);
            if manual {
                d.ack().unwrap();
            }
            moved += 1;
        }
    }
    moved as f64 / began.elapsed().as_secs_f64()
}

fn main() {
    let dir = std::path::PathBuf::from(format!("/dev/shm/shmq-hot-path-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ns = Namespace::open_dir(&dir).expect("open namespace");
    ns.declare_queue("q", &QueueOptions::default()).unwrap();
    // Interleaved: repetition 1 of every workload, then repetition 2, ...
    let workloads = ["one", "batch", "manual", "manual-batch"];
    if let Ok(only) = std::env::var("SHMQ_HOT_PATH_ONLY") {
        // For a profiler: one workload, nothing else.
        for _ in 0..REPS {
            println!("{only} {:.0}", run(&ns, "q", &only));
        }
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); workloads.len()];
    for _ in 0..REPS {
        for (i, workload) in workloads.iter().enumerate() {
            rates[i].push(run(&ns, "q", workload));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (workload, rates) in workloads.iter().zip(&rates) {
        println!("{workload} {:.0}", median(rates.clone()));
    }
    // Manual acks against auto acks, both batched: paired per repetition.
    let paired: Vec<f64> = rates[3].iter().zip(&rates[1]).map(|(m, a)| m / a).collect();
    println!("manual-batch/batch {:.2}", median(paired));
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
}
