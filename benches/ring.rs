//! criterion micro-benchmarks: publish+consume in one thread (uncontended),
//! one producer to one consumer across threads and across processes, and
//! two producers against two consumers. `shmq bench` is the cross-process
//! load tool with baselines; these track regressions.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shmq::{ConsumerOptions, Namespace, QueueOptions};

const SIZES: [usize; 4] = [16, 256, 4096, 65536];

fn namespace(tag: &str) -> (std::path::PathBuf, Namespace) {
    let dir = std::path::PathBuf::from(format!("/dev/shm/shmq-criterion-{tag}-{}", std::process::id()));
    let ns = Namespace::open_dir(&dir).unwrap();
    (dir, ns)
}

fn options(size: usize) -> QueueOptions {
    QueueOptions::default().capacity_bytes(((size as u64 + 64) * 1024).max(1 << 20)).max_message_bytes(size as u32 + 64)
}

fn single_thread(c: &mut Criterion) {
    let (dir, ns) = namespace("single");
    let mut group = c.benchmark_group("uncontended/publish_consume");
    for size in SIZES {
        let queue = format!("q{size}");
        ns.declare_queue(&queue, &options(size)).unwrap();
        let mut producer = ns.producer(&queue).unwrap();
        let consumer = ns.consumer(&queue, ConsumerOptions::default()).unwrap();
        let body = vec![1u8; size];
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                producer.publish(&body).unwrap();
                drop(consumer.try_recv().unwrap());
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

fn across_threads(c: &mut Criterion) {
    let (dir, ns) = namespace("threads");
    let mut group = c.benchmark_group("contended/1p1c_threads");
    for size in SIZES {
        let queue = format!("q{size}");
        ns.declare_queue(&queue, &options(size)).unwrap();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter_custom(|iters| {
                let barrier = Arc::new(Barrier::new(2));
                let consumer_thread = {
                    let (ns, queue, barrier) = (ns.clone(), queue.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let consumer = ns.consumer(&queue, ConsumerOptions::default()).unwrap();
                        barrier.wait();
                        for _ in 0..iters {
                            drop(consumer.recv().unwrap());
                        }
                        Instant::now()
                    })
                };
                let mut producer = ns.producer(&queue).unwrap();
                let body = vec![2u8; size];
                barrier.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    producer.publish(&body).unwrap();
                }
                consumer_thread.join().unwrap() - start
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

fn competing_two_by_two(c: &mut Criterion) {
    let (dir, ns) = namespace("competing");
    let mut group = c.benchmark_group("contended/2p2c_threads");
    for size in SIZES {
        let queue = format!("q{size}");
        ns.declare_queue(&queue, &options(size)).unwrap();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(2);
                let barrier = Arc::new(Barrier::new(4));
                let consumers: Vec<_> = (0..2)
                    .map(|_| {
                        let (ns, queue, barrier) = (ns.clone(), queue.clone(), barrier.clone());
                        std::thread::spawn(move || {
                            let consumer = ns.consumer(&queue, ConsumerOptions::default()).unwrap();
                            barrier.wait();
                            let mut got = 0;
                            // Both consumers together take 2 * per messages.
                            while got < per {
                                match consumer.recv_timeout(Duration::from_millis(200)) {
                                    Ok(_) => got += 1,
                                    Err(_) => break,
                                }
                            }
                            Instant::now()
                        })
                    })
                    .collect();
                let start = Instant::now();
                let producers: Vec<_> = (0..2)
                    .map(|_| {
                        let (ns, queue, barrier) = (ns.clone(), queue.clone(), barrier.clone());
                        std::thread::spawn(move || {
                            let mut producer = ns.producer(&queue).unwrap();
                            let body = vec![3u8; size];
                            barrier.wait();
                            for _ in 0..per {
                                producer.publish(&body).unwrap();
                            }
                        })
                    })
                    .collect();
                for p in producers {
                    p.join().unwrap();
                }
                let end = consumers.into_iter().map(|c| c.join().unwrap()).max().unwrap();
                let _ = ns.purge_queue(&queue);
                end - start
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

fn across_processes(c: &mut Criterion) {
    let (dir, ns) = namespace("processes");
    let mut group = c.benchmark_group("contended/1p1c_processes");
    group.sample_size(20);
    for size in SIZES {
        let queue = format!("q{size}");
        ns.declare_queue(&queue, &options(size)).unwrap();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter_custom(|iters| {
                // A fresh consumer process per sample, started before timing.
                let mut child = Command::new(env!("CARGO_BIN_EXE_shmq"))
                    .args(["--namespace", &dir.display().to_string(), "bench-child", "shmq-sink"])
                    .args([&size.to_string(), &iters.to_string(), "--path", &queue])
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut reader = BufReader::new(child.stdout.take().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                assert_eq!(line, "ready\n");
                let mut producer = ns.producer(&queue).unwrap();
                let body = vec![4u8; size];
                let start = Instant::now();
                for _ in 0..iters {
                    producer.publish(&body).unwrap();
                }
                line.clear();
                reader.read_line(&mut line).unwrap();
                let elapsed = start.elapsed();
                assert!(line.starts_with("done"));
                child.wait().unwrap();
                elapsed
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, single_thread, across_threads, competing_two_by_two, across_processes);
criterion_main!(benches);
