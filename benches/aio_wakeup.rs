//! Wake-up latency of a sleeping consumer: how long from a publish to the
//! consumer holding the message, when the consumer was asleep (no message
//! for 1 ms before each one, so it waits in the futex, not in its spin).
//!
//! Three consumers, measured in turns (interleaved, so machine noise hits
//! all alike), each against the same publisher thread:
//! - `blocking`: `Consumer::recv` in its own thread (futex wait);
//! - `async-current`: `AsyncConsumer::recv` on a tokio current-thread
//!   runtime (reactor thread, then the runtime's wake-up);
//! - `async-multi`: the same on a 2-worker multi-thread runtime.
//!
//! Prints p50 and p99 per consumer per trial, then the medians over trials
//! and the ratios to `blocking`. `cargo bench --bench aio_wakeup`.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use shmq::aio::AsyncConsumer;
use shmq::{ConsumerOptions, Namespace, QueueOptions};

const SAMPLES: usize = 1500;
const TRIALS: usize = 3;
const GAP: Duration = Duration::from_millis(1);

/// Nanoseconds since `base`, as a body.
fn stamp(base: Instant) -> [u8; 8] {
    (base.elapsed().as_nanos() as u64).to_le_bytes()
}

fn latency(base: Instant, body: &[u8]) -> u64 {
    let sent = u64::from_le_bytes(body.try_into().unwrap());
    (base.elapsed().as_nanos() as u64).saturating_sub(sent)
}

/// Publishes `SAMPLES` stamped messages, `GAP` apart.
fn publish(ns: &Namespace, queue: &str, base: Instant) {
    let mut producer = ns.producer(queue).unwrap();
    for _ in 0..SAMPLES {
        std::thread::sleep(GAP);
        producer.publish(&stamp(base)).unwrap();
    }
}

fn percentiles(mut samples: Vec<u64>) -> (u64, u64) {
    samples.sort_unstable();
    (samples[samples.len() / 2], samples[samples.len() * 99 / 100])
}

fn measure(ns: &Namespace, kind: &str, base: Instant) -> (u64, u64) {
    let queue = format!("wake-{kind}");
    ns.declare_queue(&queue, &QueueOptions::default()).unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let consumer_ns = ns.clone();
    let consumer_queue = queue.clone();
    let kind_owned = kind.to_owned();
    let consumer = std::thread::spawn(move || {
        let consumer = consumer_ns.consumer(&consumer_queue, ConsumerOptions::default()).unwrap();
        ready_tx.send(()).unwrap();
        let mut samples = Vec::with_capacity(SAMPLES);
        match kind_owned.as_str() {
            "blocking" => {
                for _ in 0..SAMPLES {
                    let d = consumer.recv().unwrap();
                    samples.push(latency(base, d.body()));
                }
            }
            runtime => {
                let rt = if runtime == "async-current" {
                    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
                } else {
                    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
                };
                samples = rt.block_on(async move {
                    let task = tokio::spawn(async move {
                        let mut consumer = AsyncConsumer::new(consumer);
                        let mut samples = Vec::with_capacity(SAMPLES);
                        for _ in 0..SAMPLES {
                            let d = consumer.recv().await.unwrap();
                            samples.push(latency(base, d.body()));
                        }
                        samples
                    });
                    task.await.unwrap()
                });
            }
        }
        samples
    });
    ready_rx.recv().unwrap();
    publish(ns, &queue, base);
    let samples = consumer.join().unwrap();
    ns.delete_queue(&queue).unwrap();
    percentiles(samples)
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("shmq-bench-aio-{}", std::process::id()));
    let ns = Namespace::open_dir(&dir).unwrap();
    let base = Instant::now();
    let kinds = ["blocking", "async-current", "async-multi"];
    let mut results: Vec<Vec<(u64, u64)>> = vec![Vec::new(); kinds.len()];
    for trial in 0..TRIALS {
        for (i, kind) in kinds.iter().enumerate() {
            let (p50, p99) = measure(&ns, kind, base);
            println!("trial {trial} {kind:>14}: p50 {:>6.1} us  p99 {:>6.1} us", p50 as f64 / 1e3, p99 as f64 / 1e3);
            results[i].push((p50, p99));
        }
    }
    let blocking = median(results[0].iter().map(|r| r.0).collect());
    for (i, kind) in kinds.iter().enumerate() {
        let p50 = median(results[i].iter().map(|r| r.0).collect());
        let p99 = median(results[i].iter().map(|r| r.1).collect());
        println!(
            "median {kind:>14}: p50 {:>6.1} us  p99 {:>6.1} us  p50 / blocking {:.2}",
            p50 as f64 / 1e3,
            p99 as f64 / 1e3,
            p50 as f64 / blocking as f64
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
