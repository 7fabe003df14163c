//! The comparison suite: one-way throughput and latency (ping-pong / 2)
//! between two processes for shmq and other IPC, side by side in one run,
//! plus shmq's fanout and competing-consumer scaling; writes SVG plots and a
//! Markdown report. `bench-suite/run.sh` is the one command.
//!
//! Every system moves the same bytes: a message of `size` bytes, copied in
//! by the sender and read by the receiver.
#![allow(clippy::disallowed_types)]

mod report;
mod systems;

use std::time::Duration;

use systems::System;

/// One system at one size, over all repetitions.
#[derive(Clone, Debug)]
pub struct Row {
    pub system: System,
    pub size: usize,
    /// Median, min, max over the repetitions, in messages per second.
    pub rate: [f64; 3],
    /// One-way latency percentiles in ns: p50, p99, p99.9 (the run with the
    /// median p50).
    pub latency: [f64; 3],
    /// Messages per second of each repetition, in run order (NaN: that
    /// repetition failed).
    pub rates: Vec<f64>,
    /// One-way p50 of each repetition, in run order (NaN: that repetition
    /// failed).
    pub p50s: Vec<f64>,
    /// One-way p50, p99, p99.9 of each repetition, in run order.
    pub latencies: Vec<[f64; 3]>,
}

fn median3(mut v: Vec<f64>) -> [f64; 3] {
    v.sort_by(f64::total_cmp);
    [v[v.len() / 2], v[0], v[v.len() - 1]]
}

/// How much work each run does.
#[derive(Clone, Copy)]
struct Budget {
    /// Bytes per throughput run (capped by `max_messages`).
    bytes: usize,
    max_messages: usize,
    /// Bytes of round trips per latency run (capped by `max_round_trips`).
    round_trip_bytes: usize,
    max_round_trips: usize,
    /// Messages per fanout and work-queue run.
    scaling_messages: u64,
}

impl Budget {
    /// About 256 MB or 2 M messages per throughput run: a run takes well
    /// under a second or two.
    const FULL: Budget = Budget {
        bytes: 256 << 20,
        max_messages: 2_000_000,
        round_trip_bytes: 64 << 20,
        max_round_trips: 20_000,
        scaling_messages: 1_000_000,
    };
    /// SUITE_QUICK=1: a smoke run (tests, CI).
    const QUICK: Budget =
        Budget { bytes: 8 << 20, max_messages: 20_000, round_trip_bytes: 2 << 20, max_round_trips: 1_000, scaling_messages: 20_000 };

    fn messages(&self, size: usize) -> u64 {
        (self.bytes / size).clamp(100, self.max_messages) as u64
    }

    fn round_trips(&self, size: usize) -> u64 {
        (self.round_trip_bytes / size).clamp(100, self.max_round_trips) as u64
    }
}

fn env_list<T: std::str::FromStr>(name: &str) -> Option<Vec<T>> {
    std::env::var(name).ok().map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return systems::child(&args[2..]);
    }
    let out_dir = std::path::PathBuf::from(args.get(1).cloned().unwrap_or_else(|| "docs/bench".into()));
    let repeat: usize = std::env::var("SUITE_REPEAT").ok().and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let budget = if std::env::var("SUITE_QUICK").is_ok_and(|v| v == "1") { Budget::QUICK } else { Budget::FULL };
    // SUITE_ONLY=key,key and SUITE_SIZES=64,1024 narrow a run.
    let only: Option<Vec<String>> = env_list("SUITE_ONLY");
    let sizes: Vec<usize> = env_list("SUITE_SIZES").unwrap_or_else(|| vec![64, 1024, 65536, 1 << 20]);
    let scaling = std::env::var("SUITE_SCALING").map(|v| v != "0").unwrap_or(true);
    let pika = std::env::var("SUITE_PIKA_JSON").ok().and_then(|p| report::Pika::load(std::path::Path::new(&p)));

    let mut systems: Vec<System> =
        System::ALL.into_iter().filter(|s| only.as_ref().is_none_or(|o| o.iter().any(|k| k == s.key()))).collect();
    let mut skipped: Vec<String> = Vec::new();
    if systems.contains(&System::RabbitMq) && !systems::rabbit::available() {
        systems.retain(|s| *s != System::RabbitMq);
        skipped.push("RabbitMQ (lapin): no broker on localhost:5672 (run.sh starts Debian's rabbitmq-server if installed)".into());
    }
    // Repetitions are interleaved (rep 1 of every system, then rep 2, ...)
    // so that this VM's slow and fast minutes hit all systems alike, and
    // ratios are taken between runs next to each other in time.
    let mut rows: Vec<Row> = Vec::new();
    let mut failed: Vec<(System, usize)> = Vec::new();
    let mut retried: Vec<String> = Vec::new();
    // RabbitMQ runs last, in a pass of its own: a busy broker (an Erlang VM
    // on the same 2 cores) must not slow the systems measured after it.
    let passes: Vec<Vec<System>> = {
        let (broker, local): (Vec<System>, Vec<System>) = systems.iter().partition(|s| **s == System::RabbitMq);
        [local, broker].into_iter().filter(|p| !p.is_empty()).collect()
    };
    for pass in &passes {
        for rep in 0..repeat {
            for &size in &sizes {
                for &system in pass {
                    if failed.contains(&(system, size)) {
                        continue;
                    }
                    // A broker moves ~10^4 msg/s: keep its runs short.
                    let (messages, round_trips) = if system == System::RabbitMq {
                        (
                            budget.messages(size).min(20_000).min(((32usize << 20) / size).max(32) as u64),
                            budget.round_trips(size).min(1_000),
                        )
                    } else {
                        (budget.messages(size), budget.round_trips(size))
                    };
                    let run =
                        || systems::throughput(system, size, messages).and_then(|r| Ok((r, systems::latency(system, size, round_trips)?)));
                    // One retry: a competitor's child that dies once (iceoryx2
                    // did, now and then) should not erase the whole row; the
                    // retry is reported.
                    let outcome = run().or_else(|e| {
                        eprintln!("{:<22} {:>8} B  failed once ({e}); retrying", system.label(), size);
                        retried.push(format!("{} at {} B, repetition {}: {e}", system.label(), size, rep + 1));
                        run()
                    });
                    let (rate, latency) = match outcome {
                        Ok((rate, latency)) => {
                            eprintln!(
                                "rep {}/{repeat} {:<22} {:>8} B  {:>12.0} msg/s  p50 {:>10.0} ns",
                                rep + 1,
                                system.label(),
                                size,
                                rate,
                                latency[0]
                            );
                            (rate, latency)
                        }
                        Err(e) => {
                            eprintln!("{:<22} {:>8} B  failed: {e}", system.label(), size);
                            skipped.push(format!("{} at {} B, repetition {}: {e}", system.label(), size, rep + 1));
                            if rep == 0 {
                                // Failing from the start (a machine limit, say):
                                // not tried again.
                                failed.push((system, size));
                            }
                            (f64::NAN, [f64::NAN; 3])
                        }
                    };
                    // A failed repetition stays in place as NaN so that the
                    // other systems' repetitions still pair by index.
                    match rows.iter_mut().find(|r| r.system == system && r.size == size) {
                        Some(row) => {
                            row.rates.push(rate);
                            row.p50s.push(latency[0]);
                            row.latencies.push(latency);
                        }
                        None => rows.push(Row {
                            system,
                            size,
                            rate: [0.0; 3],
                            latency,
                            rates: vec![rate],
                            p50s: vec![latency[0]],
                            latencies: vec![latency],
                        }),
                    }
                }
            }
        }
    }
    rows.retain(|r| r.rates.iter().any(|v| v.is_finite()));
    for row in &mut rows {
        row.rate = median3(row.rates.iter().copied().filter(|v| v.is_finite()).collect());
        // Percentiles of the repetition whose p50 is the median p50.
        let median_p50 = median3(row.p50s.iter().copied().filter(|v| v.is_finite()).collect())[0];
        row.latency = row.latencies.iter().copied().find(|l| l[0] == median_p50).unwrap_or(row.latency);
    }
    rows.sort_by_key(|r| (r.size, System::ALL.iter().position(|s| *s == r.system)));
    let mut fanout = Vec::new();
    let mut workers = Vec::new();
    if scaling {
        for queues in [1usize, 2, 4, 8, 16] {
            let per_queue = (budget.scaling_messages / 5).max(1_000);
            fanout.push((queues, median3((0..repeat).map(|_| systems::fanout(queues, per_queue)).collect::<Result<_, _>>()?)));
        }
        for n in [1usize, 2, 3, 4] {
            workers.push((n, median3((0..repeat).map(|_| systems::competing(n, budget.scaling_messages)).collect::<Result<_, _>>()?)));
        }
    }
    std::fs::create_dir_all(&out_dir)?;
    skipped.extend(retried.into_iter().map(|r| format!("failed once, then retried: {r}")));
    report::write(&out_dir, &rows, &fanout, &workers, repeat, &skipped, pika.as_ref())?;
    std::thread::sleep(Duration::from_millis(10));
    Ok(())
}
