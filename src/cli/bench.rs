//! `shmq bench`: a load tool in the spirit of RabbitMQ's PerfTest. Producers
//! and consumers (processes by default, threads with `--threads`) run
//! against a topology of your choosing; every second it prints publish and
//! consume rates and end-to-end latency percentiles, then a summary.
//!
//! Latency is end to end: each message carries its CLOCK_MONOTONIC send time
//! (comparable across processes on one machine) in its first 8 bytes.
#![allow(clippy::disallowed_types)] // a stop flag between this tool's own threads; nothing loom models

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::json;

use super::{Cli, CliResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExchangeType {
    /// Publish to the queues by name.
    Default,
    Direct,
    Fanout,
    Topic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AckArg {
    Auto,
    Manual,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Producers.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Consumers (spread over the queues).
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Run producers and consumers as threads of this process instead of
    /// separate processes.
    #[arg(long)]
    pub threads: bool,
    /// Message size in bytes ("64"), or a range for random sizes ("64-4096").
    /// At least 8 (the timestamp).
    #[arg(long, default_value = "64")]
    pub size: String,
    /// How producers address the queues.
    #[arg(long, value_enum, default_value = "default")]
    pub exchange_type: ExchangeType,
    /// Queues.
    #[arg(long, default_value_t = 1)]
    pub queues: usize,
    /// Bindings per queue (direct and topic exchanges).
    #[arg(long, default_value_t = 1)]
    pub bindings: usize,
    /// Acknowledgement mode of the consumers.
    #[arg(long, value_enum, default_value = "auto")]
    pub ack: AckArg,
    /// Prefetch of manual-ack consumers (0: unlimited).
    #[arg(long, default_value_t = 0)]
    pub prefetch: u32,
    /// Publish rate per producer in messages per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Seconds to publish for.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Messages per producer (instead of --duration).
    #[arg(long)]
    pub messages: Option<u64>,
    /// Messages per publish call (default exchange only) and per consume call.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Consumers spin instead of sleeping when idle.
    #[arg(long)]
    pub busy_poll: bool,
}

/// Hidden: one producer or consumer process of `shmq bench`.
#[derive(Args, Debug)]
pub struct AgentArgs {
    /// "producer" or "consumer".
    pub role: String,
    /// Index of this agent.
    pub index: usize,
    /// The run's settings, as JSON.
    pub settings: String,
}

/// What agents report each second.
#[derive(Debug, Default)]
struct Tick {
    sent: u64,
    received: u64,
    latency: Vec<(u64, u64)>,
    done: bool,
}

fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn size_range(spec: &str) -> Result<(usize, usize), String> {
    let parse = |s: &str| s.trim().parse::<usize>().map_err(|_| format!("bad size '{spec}': use 64 or 64-4096"));
    let (lo, hi) = match spec.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(spec)?, parse(spec)?),
    };
    if lo < 8 || hi < lo {
        return Err(format!("bad size '{spec}': at least 8 bytes (the timestamp), and low <= high"));
    }
    Ok((lo, hi))
}

fn queue_name(q: usize) -> String {
    format!("perf-{q}")
}

/// The routing keys a producer cycles through, and its exchange.
fn targets(args: &BenchArgs) -> (String, Vec<String>) {
    match args.exchange_type {
        ExchangeType::Default => (String::new(), (0..args.queues).map(queue_name).collect()),
        ExchangeType::Fanout => ("perf".into(), vec![String::new()]),
        ExchangeType::Direct => {
            ("perf".into(), (0..args.queues).flat_map(|q| (0..args.bindings.max(1)).map(move |b| format!("k{q}-{b}"))).collect())
        }
        ExchangeType::Topic => {
            ("perf".into(), (0..args.queues).flat_map(|q| (0..args.bindings.max(1)).map(move |b| format!("perf.{q}.{b}"))).collect())
        }
    }
}

fn setup(ns: &shmq::Namespace, args: &BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (lo, hi) = size_range(&args.size)?;
    let options = shmq::QueueOptions::default().capacity_bytes(((hi as u64 + 64) * 4096).max(16 << 20)).max_message_bytes(hi as u32 + 64);
    let kind = match args.exchange_type {
        ExchangeType::Default => None,
        ExchangeType::Direct => Some(shmq::ExchangeKind::Direct),
        ExchangeType::Fanout => Some(shmq::ExchangeKind::Fanout),
        ExchangeType::Topic => Some(shmq::ExchangeKind::Topic),
    };
    if let Some(kind) = kind {
        ns.declare_exchange("perf", &shmq::ExchangeOptions::new(kind))?;
    }
    for q in 0..args.queues {
        let name = queue_name(q);
        ns.declare_queue(&name, &options)?;
        match args.exchange_type {
            ExchangeType::Default => {}
            ExchangeType::Fanout => ns.bind_queue(&name, "perf", "", &[])?,
            ExchangeType::Direct => {
                for b in 0..args.bindings.max(1) {
                    ns.bind_queue(&name, "perf", &format!("k{q}-{b}"), &[])?;
                }
            }
            ExchangeType::Topic => {
                for b in 0..args.bindings.max(1) {
                    ns.bind_queue(&name, "perf", &format!("perf.{q}.{b}.#"), &[])?;
                }
            }
        }
    }
    debug_assert!(lo <= hi);
    Ok(())
}

/// Runs one producer until its budget is spent or `stop` is set.
fn produce(ns: &shmq::Namespace, args: &BenchArgs, index: usize, stop: &AtomicBool, report: &mut dyn FnMut(Tick)) -> CliResult {
    let (lo, hi) = size_range(&args.size)?;
    let (exchange, keys) = targets(args);
    let mut publisher = ns.publisher();
    let mut producer = if args.exchange_type == ExchangeType::Default && args.queues == 1 { Some(ns.producer(&keys[0])?) } else { None };
    let mut body = vec![0u8; hi];
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (index as u64 + 1);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut next_tick = started + Duration::from_secs(1);
    let (mut sent, mut sent_tick) = (0u64, 0u64);
    let mut key = index % keys.len().max(1);
    let batch = args.batch.max(1);
    loop {
        if stop.load(Ordering::Relaxed) || args.messages.map_or(Instant::now() >= deadline, |n| sent >= n) {
            break;
        }
        if let Some(offset) = (sent * 1_000_000_000).checked_div(args.rate) {
            let due = started + Duration::from_nanos(offset);
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        }
        let n = args.messages.map_or(batch as u64, |m| (m - sent).min(batch as u64)) as usize;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let size = if hi > lo { lo + (rng as usize % (hi - lo + 1)) } else { lo };
        body[..8].copy_from_slice(&monotonic_ns().to_le_bytes());
        match &mut producer {
            Some(p) if n > 1 => {
                // No allocation per batch: the load tool must not measure itself.
                let bodies = [&body[..size]; shmq::MAX_BATCH];
                let mut left = n;
                while left > 0 {
                    let k = left.min(shmq::MAX_BATCH);
                    p.publish_batch(&bodies[..k])?;
                    left -= k;
                }
            }
            Some(p) => p.publish(&body[..size])?,
            None => {
                for _ in 0..n {
                    publisher.publish(&exchange, &keys[key], &shmq::Properties::new(), &body[..size])?;
                    key = (key + 1) % keys.len();
                }
            }
        }
        sent += n as u64;
        sent_tick += n as u64;
        if Instant::now() >= next_tick {
            report(Tick { sent: sent_tick, ..Tick::default() });
            sent_tick = 0;
            next_tick += Duration::from_secs(1);
        }
    }
    report(Tick { sent: sent_tick, done: true, ..Tick::default() });
    Ok(())
}

/// Runs one consumer until `stop` is set and its queue stays empty.
fn consume(ns: &shmq::Namespace, args: &BenchArgs, index: usize, stop: &AtomicBool, report: &mut dyn FnMut(Tick)) -> CliResult {
    let queue = queue_name(index % args.queues.max(1));
    let mut options = shmq::ConsumerOptions::default().busy_poll(args.busy_poll).prefetch(args.prefetch);
    if args.ack == AckArg::Manual {
        options = options.manual_ack();
    }
    let consumer = ns.consumer(&queue, options)?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut received = 0u64;
    let mut next_tick = Instant::now() + Duration::from_secs(1);
    let manual = args.ack == AckArg::Manual;
    let mut flush = |hist: &mut Histogram<u64>, received: &mut u64, done: bool| {
        let latency = hist.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect();
        report(Tick { received: *received, latency, done, ..Tick::default() });
        hist.reset();
        *received = 0;
    };
    loop {
        let mut handle = |d: shmq::Delivery<'_>| {
            let body = d.body();
            if body.len() >= 8 {
                let sent = u64::from_le_bytes(body[..8].try_into().unwrap_or([0; 8]));
                let _ = hist.record(monotonic_ns().saturating_sub(sent).max(1));
            }
            received += 1;
            if manual {
                let _ = d.ack();
            }
        };
        let got = consumer.drain(args.batch.max(1), &mut handle)?;
        if got == 0 {
            match consumer.recv_timeout(Duration::from_millis(100)) {
                Ok(d) => handle(d),
                Err(shmq::RecvError::Timeout) => {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        if Instant::now() >= next_tick {
            flush(&mut hist, &mut received, false);
            next_tick += Duration::from_secs(1);
        }
    }
    flush(&mut hist, &mut received, true);
    Ok(())
}

fn tick_json(t: &Tick) -> String {
    json!({"sent": t.sent, "received": t.received, "latency": t.latency, "done": t.done}).to_string()
}

fn parse_tick(line: &str) -> Option<Tick> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(Tick {
        sent: v["sent"].as_u64()?,
        received: v["received"].as_u64()?,
        latency: v["latency"].as_array()?.iter().filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()?))).collect(),
        done: v["done"].as_bool()?,
    })
}

/// The child side: runs one agent and prints its ticks as JSON lines; a
/// line on stdin (or EOF) asks it to stop.
pub fn agent(cli: &Cli, args: &AgentArgs) -> CliResult {
    let settings: BenchArgs = bench_args_from_json(&args.settings)?;
    let ns = shmq::Namespace::open(&cli.namespace)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            stop.store(true, Ordering::Relaxed);
        });
    }
    let mut out = std::io::stdout();
    let mut report = |t: Tick| {
        let _ = writeln!(out, "{}", tick_json(&t));
        let _ = out.flush();
    };
    println!("ready");
    match args.role.as_str() {
        "producer" => produce(&ns, &settings, args.index, &stop, &mut report),
        _ => consume(&ns, &settings, args.index, &stop, &mut report),
    }
}

fn bench_args_json(a: &BenchArgs) -> String {
    json!({"producers": a.producers, "consumers": a.consumers, "size": a.size, "exchange_type": format!("{:?}", a.exchange_type),
           "queues": a.queues, "bindings": a.bindings, "manual": a.ack == AckArg::Manual, "prefetch": a.prefetch, "rate": a.rate,
           "duration": a.duration, "messages": a.messages, "batch": a.batch, "busy_poll": a.busy_poll})
    .to_string()
}

fn bench_args_from_json(s: &str) -> Result<BenchArgs, Box<dyn std::error::Error>> {
    let v: serde_json::Value = serde_json::from_str(s)?;
    let exchange_type = match v["exchange_type"].as_str().unwrap_or("Default") {
        "Direct" => ExchangeType::Direct,
        "Fanout" => ExchangeType::Fanout,
        "Topic" => ExchangeType::Topic,
        _ => ExchangeType::Default,
    };
    Ok(BenchArgs {
        producers: v["producers"].as_u64().unwrap_or(1) as usize,
        consumers: v["consumers"].as_u64().unwrap_or(1) as usize,
        threads: false,
        size: v["size"].as_str().unwrap_or("64").to_owned(),
        exchange_type,
        queues: v["queues"].as_u64().unwrap_or(1) as usize,
        bindings: v["bindings"].as_u64().unwrap_or(1) as usize,
        ack: if v["manual"].as_bool().unwrap_or(false) { AckArg::Manual } else { AckArg::Auto },
        prefetch: v["prefetch"].as_u64().unwrap_or(0) as u32,
        rate: v["rate"].as_u64().unwrap_or(0),
        duration: v["duration"].as_u64().unwrap_or(10),
        messages: v["messages"].as_u64(),
        batch: v["batch"].as_u64().unwrap_or(1) as usize,
        busy_poll: v["busy_poll"].as_bool().unwrap_or(false),
    })
}

enum Role {
    Producer,
    Consumer,
}

pub fn run(cli: &Cli, args: &BenchArgs) -> CliResult {
    size_range(&args.size)?;
    if args.queues == 0 || args.producers == 0 || args.consumers == 0 {
        return Err("--queues, --producers and --consumers must be at least 1".into());
    }
    if args.consumers < args.queues {
        return Err(format!("{} queues need at least as many consumers (one queue each): raise --consumers", args.queues).into());
    }
    // A fresh namespace in this user's own root (checked: never another
    // user's directory), removed afterwards.
    let ns = shmq::Namespace::open(&format!("perf-{}", std::process::id()))?;
    let dir = ns.path().to_path_buf();
    let result = run_in(cli, args, &ns);
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(cli: &Cli, args: &BenchArgs, ns: &shmq::Namespace) -> CliResult {
    setup(ns, args)?;
    let (tx, rx) = mpsc::channel::<(Role, Tick)>();
    let producers_stop = Arc::new(AtomicBool::new(false));
    let consumers_stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let mut children = Vec::new();
    let roles = (0..args.consumers).map(|i| ("consumer", i)).chain((0..args.producers).map(|i| ("producer", i)));
    for (role, index) in roles {
        let is_producer = role == "producer";
        if args.threads {
            let (ns, args, tx) = (ns.clone(), args.clone(), tx.clone());
            let stop = if is_producer { producers_stop.clone() } else { consumers_stop.clone() };
            threads.push(std::thread::spawn(move || {
                let mut report = |t: Tick| {
                    let _ = tx.send((if is_producer { Role::Producer } else { Role::Consumer }, t));
                };
                let result = if is_producer {
                    produce(&ns, &args, index, &stop, &mut report)
                } else {
                    consume(&ns, &args, index, &stop, &mut report)
                };
                if let Err(e) = result {
                    eprintln!("shmq bench: {role} {index}: {e}");
                    report(Tick { done: true, ..Tick::default() });
                }
            }));
        } else {
            let mut child = Command::new(std::env::current_exe()?)
                .args(["--namespace", &ns.path().display().to_string(), "bench-agent", role, &index.to_string(), &bench_args_json(args)])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let mut reader = BufReader::new(child.stdout.take().ok_or("no agent stdout")?);
            let mut line = String::new();
            reader.read_line(&mut line)?;
            if line.trim() != "ready" {
                return Err(format!("bench agent failed to start: {line}").into());
            }
            let tx = tx.clone();
            threads.push(std::thread::spawn(move || {
                for line in reader.lines().map_while(Result::ok) {
                    if let Some(t) = parse_tick(&line) {
                        let _ = tx.send((if is_producer { Role::Producer } else { Role::Consumer }, t));
                    }
                }
            }));
            children.push((is_producer, child));
        }
    }
    drop(tx);
    let started = Instant::now();
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut second = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let (mut sent, mut received, mut sent_s, mut received_s) = (0u64, 0u64, 0u64, 0u64);
    let (mut producers_done, mut consumers_done) = (0, 0);
    let mut next_print = started + Duration::from_secs(1);
    let mut per_second = Vec::new();
    let percentile = |h: &Histogram<u64>, q: f64| if h.is_empty() { 0 } else { h.value_at_quantile(q) };
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok((role, tick)) => {
                sent += tick.sent;
                sent_s += tick.sent;
                received += tick.received;
                received_s += tick.received;
                for (v, c) in &tick.latency {
                    let _ = total.record_n(*v, *c);
                    let _ = second.record_n(*v, *c);
                }
                if tick.done {
                    match role {
                        Role::Producer => producers_done += 1,
                        Role::Consumer => consumers_done += 1,
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if producers_done == args.producers && !consumers_stop.load(Ordering::Relaxed) {
            // Publishing is over: let the consumers drain, then stop them.
            consumers_stop.store(true, Ordering::Relaxed);
            for (is_producer, child) in children.iter_mut() {
                if !*is_producer {
                    if let Some(stdin) = child.stdin.as_mut() {
                        let _ = writeln!(stdin, "stop");
                    }
                }
            }
        }
        if Instant::now() >= next_print {
            let t = started.elapsed().as_secs();
            let row = json!({"time_s": t, "sent_per_s": sent_s, "received_per_s": received_s,
                             "latency_ns": {"p50": percentile(&second, 0.5), "p99": percentile(&second, 0.99),
                                            "p999": percentile(&second, 0.999), "max": second.max()}});
            if cli.json {
                println!("{row}");
            } else {
                println!(
                    "time {t:>3} s  sent {:>11} msg/s  received {:>11} msg/s  latency p50 {} p99 {} p99.9 {} max {}",
                    sent_s,
                    received_s,
                    fmt_ns(percentile(&second, 0.5)),
                    fmt_ns(percentile(&second, 0.99)),
                    fmt_ns(percentile(&second, 0.999)),
                    fmt_ns(second.max())
                );
            }
            per_second.push(row);
            sent_s = 0;
            received_s = 0;
            second.reset();
            next_print += Duration::from_secs(1);
        }
        if consumers_done == args.consumers && producers_done == args.producers {
            break;
        }
    }
    for t in threads {
        let _ = t.join();
    }
    for (_, mut child) in children {
        let _ = child.wait();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let summary = json!({"sent": sent, "received": received, "seconds": elapsed,
                         "send_rate": sent as f64 / elapsed, "receive_rate": received as f64 / elapsed,
                         "latency_ns": {"p50": percentile(&total, 0.5), "p99": percentile(&total, 0.99),
                                        "p999": percentile(&total, 0.999), "max": total.max()},
                         "settings": serde_json::from_str::<serde_json::Value>(&bench_args_json(args))?});
    if cli.json {
        println!("{}", json!({"summary": summary}));
    } else {
        println!(
            "summary: sent {sent} ({:.0} msg/s), received {received} ({:.0} msg/s) in {elapsed:.1} s; latency p50 {} p99 {} p99.9 {} max {}",
            sent as f64 / elapsed,
            received as f64 / elapsed,
            fmt_ns(percentile(&total, 0.5)),
            fmt_ns(percentile(&total, 0.99)),
            fmt_ns(percentile(&total, 0.999)),
            fmt_ns(total.max())
        );
    }
    Ok(())
}

fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}
