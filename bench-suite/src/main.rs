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

/// One measurement.
#[derive(Clone, Debug)]
pub struct Row {
    pub system: System,
    pub size: usize,
    /// Median, min, max over the repetitions, in messages per second.
    pub rate: [f64; 3],
    /// One-way latency percentiles in ns: p50, p99, p99.9 (median run).
    pub latency: [f64; 3],
}

fn median3(mut v: Vec<f64>) -> [f64; 3] {
    v.sort_by(f64::total_cmp);
    [v[v.len() / 2], v[0], v[v.len() - 1]]
}

/// Messages per throughput run: about 256 MB or 2 M messages, whichever is
/// fewer, so a run stays well under a second or two.
fn messages_for(size: usize) -> u64 {
    ((256usize << 20) / size).clamp(500, 2_000_000) as u64
}

fn round_trips_for(size: usize) -> u64 {
    ((64usize << 20) / size).clamp(300, 20_000) as u64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return systems::child(&args[2..]);
    }
    let out_dir = std::path::PathBuf::from(args.get(1).cloned().unwrap_or_else(|| "docs/bench".into()));
    let repeat: usize = std::env::var("SUITE_REPEAT").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    // SUITE_ONLY=key,key and SUITE_SIZES=64,1024 narrow a run (for debugging).
    let only: Option<Vec<String>> = std::env::var("SUITE_ONLY").ok().map(|s| s.split(',').map(str::to_owned).collect());
    let sizes: Vec<usize> = std::env::var("SUITE_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![64, 1024, 65536, 1 << 20]);
    let mut rows = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for &size in &sizes {
        for system in System::ALL {
            if only.as_ref().is_some_and(|o| !o.iter().any(|k| k == system.key())) {
                continue;
            }
            if system == System::RabbitMq && !systems::rabbit::available() {
                skipped.push("RabbitMQ (lapin): no broker on localhost:5672 (run.sh starts Debian's rabbitmq-server if installed)".into());
                continue;
            }
            // A broker moves ~10^4 msg/s: keep its runs short.
            let (messages, round_trips) = if system == System::RabbitMq {
                (messages_for(size).min(20_000).min(((32usize << 20) / size).max(32) as u64), round_trips_for(size).min(1_000))
            } else {
                (messages_for(size), round_trips_for(size))
            };
            let mut rates = Vec::new();
            let mut latencies = Vec::new();
            let mut failed = None;
            for _ in 0..repeat {
                match systems::throughput(system, size, messages).and_then(|r| Ok((r, systems::latency(system, size, round_trips)?))) {
                    Ok((rate, latency)) => {
                        rates.push(rate);
                        latencies.push(latency);
                    }
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
            }
            if let Some(reason) = failed {
                eprintln!("{:<18} {:>8} B  failed: {reason}", system.label(), size);
                skipped.push(format!("{} at {} B: {reason}", system.label(), size));
                continue;
            }
            latencies.sort_by(|a, b| a[0].total_cmp(&b[0]));
            let row = Row { system, size, rate: median3(rates), latency: latencies[latencies.len() / 2] };
            eprintln!("{:<18} {:>8} B  {:>12.0} msg/s  p50 {:>10.0} ns", system.label(), size, row.rate[0], row.latency[0]);
            rows.push(row);
        }
    }
    let mut fanout = Vec::new();
    for queues in [1usize, 2, 4, 8, 16] {
        fanout.push((queues, median3((0..repeat).map(|_| systems::fanout(queues, 200_000)).collect::<Result<_, _>>()?)));
    }
    let mut workers = Vec::new();
    for n in [1usize, 2, 3, 4] {
        workers.push((n, median3((0..repeat).map(|_| systems::competing(n, 1_000_000)).collect::<Result<_, _>>()?)));
    }
    std::fs::create_dir_all(&out_dir)?;
    report::write(&out_dir, &rows, &fanout, &workers, repeat, &skipped)?;
    std::thread::sleep(Duration::from_millis(10));
    Ok(())
}
