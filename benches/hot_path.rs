//! The publish/consume hot path of a queue without dead-lettering, in one
//! thread: what issue 13 must not slow down. Uses only API that shmq had
//! before dead-lettering, so that scripts/ab-hot-path.sh can build this
//! same file against an older commit and alternate the two builds.
//!
//! Workloads (64-byte bodies, a default queue, publish k then consume k):
//! - `one`: `publish` / `try_recv`, auto-ack, k = 1;
//! - `batch`: `publish_batch` / `drain`, auto-ack, k = 32;
//! - `manual`: `publish` / `try_recv` + `ack`, k = 1.
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
    let manual = workload == "manual";
    let options = if manual { ConsumerOptions::default().manual_ack() } else { ConsumerOptions::default() };
    let consumer = ns.consumer(queue, options).unwrap();
    let bodies: Vec<&[u8]> = vec![&BODY[..]; 32];
    let began = Instant::now();
    let mut moved = 0;
    while moved < MESSAGES {
        if workload == "batch" {
            producer.publish_batch(&bodies).unwrap();
            let mut got = 0;
            while got < 32 {
                got += consumer.drain(32 - got, |d| assert_eq!(d.body().len(), 64)).unwrap();
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
    for workload in ["one", "batch", "manual"] {
        let mut rates: Vec<f64> = (0..REPS).map(|_| run(&ns, "q", workload)).collect();
        rates.sort_by(f64::total_cmp);
        println!("{workload} {:.0}", rates[REPS / 2]);
    }
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
}
