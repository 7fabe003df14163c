//! `shmq compare`: throughput and one-way latency between two processes, for
//! shmq and, in the same run, a Unix domain socket and a bare SPSC ring over
//! the same kind of /dev/shm mapping. Ratios against those baselines are what
//! to quote; absolute numbers move with the machine's load.
#![allow(clippy::disallowed_types)] // the bare-ring baseline is not part of the modelled library

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::json;

use super::{table, Cli, CliResult};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Message sizes in bytes.
    #[arg(long, value_delimiter = ',', default_value = "64,1024")]
    pub sizes: Vec<usize>,
    /// Messages per throughput run.
    #[arg(long, default_value_t = 2_000_000)]
    pub messages: u64,
    /// Round trips per latency run.
    #[arg(long, default_value_t = 50_000)]
    pub round_trips: u64,
    /// Messages per publish_batch/drain call in the batched shmq run.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Systems to run.
    #[arg(long, value_delimiter = ',', default_value = "shmq,shmq-busy,uds,bare-ring")]
    pub systems: Vec<System>,
    /// Skip the latency runs.
    #[arg(long)]
    pub no_latency: bool,
    /// Repetitions of each throughput run; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum System {
    /// shmq, blocking receive (futex sleep when idle).
    Shmq,
    /// shmq with busy-poll receive.
    ShmqBusy,
    /// A Unix domain stream socket.
    Uds,
    /// A bare SPSC ring of fixed slots over a /dev/shm mapping.
    BareRing,
}

impl System {
    fn label(self) -> &'static str {
        match self {
            System::Shmq => "shmq (blocking)",
            System::ShmqBusy => "shmq (busy-poll)",
            System::Uds => "unix socket",
            System::BareRing => "bare spsc ring",
        }
    }
}

#[derive(Args, Debug)]
pub struct ChildArgs {
    pub role: String,
    pub size: usize,
    pub messages: u64,
    #[arg(long, default_value = "")]
    pub path: String,
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    #[arg(long)]
    pub busy_poll: bool,
}

struct Row {
    system: System,
    size: usize,
    batch: usize,
    rate: Option<f64>,
    rate_min: f64,
    rate_max: f64,
    latency: Option<[f64; 4]>,
}

pub fn run(cli: &Cli, args: &BenchArgs) -> CliResult {
    // A fresh namespace in this user's own root (checked: never another
    // user's directory), removed afterwards.
    let ns = shmq::Namespace::open(&format!("bench-{}", std::process::id()))?;
    let dir = ns.path().to_path_buf();
    let result = run_all(cli, args, &ns);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_all(cli: &Cli, args: &BenchArgs, ns: &shmq::Namespace) -> CliResult {
    let mut rows = Vec::new();
    for &size in &args.sizes {
        for &system in &args.systems {
            let batches: &[usize] = if system == System::Shmq || system == System::ShmqBusy { &[1, args.batch] } else { &[1] };
            for &batch in batches {
                let mut rates = Vec::new();
                for _ in 0..args.repeat.max(1) {
                    rates.push(throughput(ns, system, size, args.messages, batch)?);
                }
                rates.sort_by(f64::total_cmp);
                let rate = rates[rates.len() / 2];
                let latency = if args.no_latency || batch != 1 { None } else { Some(latency(ns, system, size, args.round_trips)?) };
                if !cli.json {
                    eprintln!("  measured {} {size} B batch {batch}", system.label());
                }
                rows.push(Row { system, size, batch, rate: Some(rate), rate_min: rates[0], rate_max: rates[rates.len() - 1], latency });
            }
        }
    }
    report(cli, args, &rows);
    Ok(())
}

fn report(cli: &Cli, args: &BenchArgs, rows: &[Row]) {
    let baseline = |system: System, size: usize| rows.iter().find(|r| r.system == system && r.size == size && r.batch == 1);
    if cli.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({"system": r.system.label(), "size": r.size, "batch": r.batch, "msgs_per_sec": r.rate,
                       "msgs_per_sec_min": r.rate_min, "msgs_per_sec_max": r.rate_max,
                       "one_way_ns": r.latency.map(|l| json!({"p50": l[0], "p99": l[1], "p999": l[2], "max": l[3]}))})
            })
            .collect();
        println!("{}", json!({"messages": args.messages, "round_trips": args.round_trips, "results": v}));
        return;
    }
    let mut out = Vec::new();
    for r in rows {
        let ratio = |base: Option<&Row>| match (r.rate, base.and_then(|b| b.rate)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "-".into(),
        };
        let lat = r.latency.map_or(["-".into(), "-".into(), "-".into(), "-".into()], |l| l.map(|v| format!("{v:.0}")));
        out.push(vec![
            r.system.label().to_string(),
            r.size.to_string(),
            r.batch.to_string(),
            r.rate.map_or("-".into(), |v| format!("{:.2}M", v / 1e6)),
            format!("{:.1}-{:.1}M", r.rate_min / 1e6, r.rate_max / 1e6),
            ratio(baseline(System::Uds, r.size)),
            ratio(baseline(System::BareRing, r.size)),
            lat[0].clone(),
            lat[1].clone(),
            lat[2].clone(),
            lat[3].clone(),
        ]);
    }
    println!(
        "throughput: median of {} runs of {} messages; latency: {} round trips, one-way = round trip / 2, in ns",
        args.repeat, args.messages, args.round_trips
    );
    print!(
        "{}",
        table(&["system", "size", "batch", "msgs/s", "min-max", "vs uds", "vs ring", "p50 ns", "p99 ns", "p99.9 ns", "max ns"], &out)
    );
}

fn spawn_child(cli_ns: &str, role: &str, size: usize, messages: u64, path: &str, batch: usize, busy: bool) -> std::io::Result<Child> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--namespace", cli_ns, "bench-child", role, &size.to_string(), &messages.to_string(), "--path", path]);
    cmd.args(["--batch", &batch.to_string()]);
    if busy {
        cmd.arg("--busy-poll");
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()
}

fn expect_line(reader: &mut impl BufRead, want: &str) -> Result<String, Box<dyn std::error::Error>> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.starts_with(want) {
        return Err(format!("bench child said {line:?}, expected {want:?}").into());
    }
    Ok(line)
}

fn throughput(ns: &shmq::Namespace, system: System, size: usize, messages: u64, batch: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let ns_path = ns.path().display().to_string();
    let body = vec![0xA5u8; size];
    let busy = system != System::Shmq;
    match system {
        System::Shmq | System::ShmqBusy => {
            let queue = format!("tp-{size}-{batch}-{}", u8::from(busy));
            ns.declare_queue(&queue, &queue_options(size))?;
            let mut child = spawn_child(&ns_path, "shmq-sink", size, messages, &queue, batch, busy)?;
            let mut reader = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
            expect_line(&mut reader, "ready")?;
            let mut producer = ns.producer(&queue)?;
            let started = Instant::now();
            if batch > 1 {
                let bodies: Vec<&[u8]> = (0..batch).map(|_| &body[..]).collect();
                let mut sent = 0;
                while sent < messages {
                    let n = (messages - sent).min(batch as u64) as usize;
                    producer.publish_batch(&bodies[..n])?;
                    sent += n as u64;
                }
            } else {
                for _ in 0..messages {
                    producer.publish(&body)?;
                }
            }
            expect_line(&mut reader, "done")?;
            let elapsed = started.elapsed();
            child.wait()?;
            ns.delete_queue(&queue)?;
            Ok(messages as f64 / elapsed.as_secs_f64())
        }
        System::Uds => {
            let path = format!("{ns_path}/tp-{size}.sock");
            let listener = UnixListener::bind(&path)?;
            let mut child = spawn_child(&ns_path, "uds-sink", size, messages, &path, 1, false)?;
            let mut reader = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
            let (mut stream, _) = listener.accept()?;
            expect_line(&mut reader, "ready")?;
            let started = Instant::now();
            for _ in 0..messages {
                stream.write_all(&body)?;
            }
            expect_line(&mut reader, "done")?;
            let elapsed = started.elapsed();
            child.wait()?;
            let _ = std::fs::remove_file(&path);
            Ok(messages as f64 / elapsed.as_secs_f64())
        }
        System::BareRing => {
            let path = format!("{ns_path}/tp-{size}.ring");
            let ring = BareRing::create(&path, size)?;
            let mut child = spawn_child(&ns_path, "ring-sink", size, messages, &path, 1, true)?;
            let mut reader = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
            expect_line(&mut reader, "ready")?;
            let started = Instant::now();
            let mut head_cache = 0;
            for i in 0..messages {
                ring.push(i, &mut head_cache, &body);
            }
            expect_line(&mut reader, "done")?;
            let elapsed = started.elapsed();
            child.wait()?;
            let _ = std::fs::remove_file(&path);
            Ok(messages as f64 / elapsed.as_secs_f64())
        }
    }
}

fn queue_options(size: usize) -> shmq::QueueOptions {
    let capacity = ((size as u64 + 64) * 4096).next_power_of_two().max(1 << 20);
    // A bounded queue, as the other systems' rings are: at 4096 messages the
    // publisher waits (an unbounded queue would grow instead).
    shmq::QueueOptions::default()
        .capacity_bytes(capacity)
        .max_message_bytes(size as u32 + 64)
        .max_length(4096)
        .overflow(shmq::Overflow::Block)
}

fn latency(ns: &shmq::Namespace, system: System, size: usize, round_trips: u64) -> Result<[f64; 4], Box<dyn std::error::Error>> {
    let ns_path = ns.path().display().to_string();
    let body = vec![0x5Au8; size];
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let warmup = (round_trips / 10).max(100);
    let busy = system != System::Shmq;
    match system {
        System::Shmq | System::ShmqBusy => {
            let (ping, pong) = (format!("ping-{size}-{}", u8::from(busy)), format!("pong-{size}-{}", u8::from(busy)));
            ns.declare_queue(&ping, &queue_options(size))?;
            ns.declare_queue(&pong, &queue_options(size))?;
            let mut child = spawn_child(&ns_path, "shmq-echo", size, round_trips + warmup, &format!("{ping}/{pong}"), 1, busy)?;
            let mut reader = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
            expect_line(&mut reader, "ready")?;
            let mut producer = ns.producer(&ping)?;
            let consumer = ns.consumer(&pong, shmq::ConsumerOptions::default().busy_poll(busy))?;
            for i in 0..round_trips + warmup {
                let started = Instant::now();
                producer.publish(&body)?;
                drop(consumer.recv()?);
                if i >= warmup {
                    hist.record((started.elapsed().as_nanos() as u64 / 2).max(1))?;
                }
            }
            child.wait()?;
            drop((producer, consumer));
            ns.delete_queue(&ping)?;
            ns.delete_queue(&pong)?;
        }
        System::Uds => {
            let path = format!("{ns_path}/lat-{size}.sock");
            let listener = UnixListener::bind(&path)?;
            let mut child = spawn_child(&ns_path, "uds-echo", size, round_trips + warmup, &path, 1, false)?;
            let (mut stream, _) = listener.accept()?;
            let mut back = vec![0u8; size];
            for i in 0..round_trips + warmup {
                let started = Instant::now();
                stream.write_all(&body)?;
                stream.read_exact(&mut back)?;
                if i >= warmup {
                    hist.record((started.elapsed().as_nanos() as u64 / 2).max(1))?;
                }
            }
            child.wait()?;
            let _ = std::fs::remove_file(&path);
        }
        System::BareRing => {
            let (ping, pong) = (format!("{ns_path}/ping-{size}.ring"), format!("{ns_path}/pong-{size}.ring"));
            let to = BareRing::create(&ping, size)?;
            let from = BareRing::create(&pong, size)?;
            let mut child = spawn_child(&ns_path, "ring-echo", size, round_trips + warmup, &format!("{ping}|{pong}"), 1, true)?;
            let mut reader = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
            expect_line(&mut reader, "ready")?;
            let (mut head_cache, mut tail_cache) = (0, 0);
            let mut back = vec![0u8; size];
            for i in 0..round_trips + warmup {
                let started = Instant::now();
                to.push(i, &mut head_cache, &body);
                from.pop(i, &mut tail_cache, &mut back);
                if i >= warmup {
                    hist.record((started.elapsed().as_nanos() as u64 / 2).max(1))?;
                }
            }
            child.wait()?;
            let _ = std::fs::remove_file(&ping);
            let _ = std::fs::remove_file(&pong);
        }
    }
    Ok([hist.value_at_quantile(0.5) as f64, hist.value_at_quantile(0.99) as f64, hist.value_at_quantile(0.999) as f64, hist.max() as f64])
}

/// The child side of each measurement.
pub fn child(cli: &Cli, args: &ChildArgs) -> CliResult {
    let mut out = std::io::stdout();
    let n = args.messages;
    match args.role.as_str() {
        "shmq-sink" => {
            let ns = shmq::Namespace::open(&cli.namespace)?;
            let consumer = ns.consumer(&args.path, shmq::ConsumerOptions::default().busy_poll(args.busy_poll))?;
            writeln!(out, "ready")?;
            out.flush()?;
            let mut got = 0u64;
            let mut bytes = 0usize;
            while got < n {
                if args.batch > 1 {
                    let drained = consumer.drain(args.batch, |d| bytes += d.body().len())? as u64;
                    if drained > 0 {
                        got += drained;
                        continue;
                    }
                }
                bytes += consumer.recv()?.body().len();
                got += 1;
            }
            writeln!(out, "done {bytes}")?;
        }
        "shmq-echo" => {
            let ns = shmq::Namespace::open(&cli.namespace)?;
            let (ping, pong) = args.path.split_once('/').ok_or("bad queue pair")?;
            let consumer = ns.consumer(ping, shmq::ConsumerOptions::default().busy_poll(args.busy_poll))?;
            let mut producer = ns.producer(pong)?;
            writeln!(out, "ready")?;
            out.flush()?;
            for _ in 0..n {
                let d = consumer.recv()?;
                producer.publish(d.body())?;
            }
        }
        "uds-sink" => {
            let mut stream = UnixStream::connect(&args.path)?;
            writeln!(out, "ready")?;
            out.flush()?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut left = n as usize * args.size;
            while left > 0 {
                let want = left.min(buf.len());
                let got = stream.read(&mut buf[..want])?;
                if got == 0 {
                    return Err("socket closed early".into());
                }
                left -= got;
            }
            writeln!(out, "done")?;
        }
        "uds-echo" => {
            let mut stream = UnixStream::connect(&args.path)?;
            let mut buf = vec![0u8; args.size];
            for _ in 0..n {
                stream.read_exact(&mut buf)?;
                stream.write_all(&buf)?;
            }
        }
        "ring-sink" => {
            let ring = BareRing::open(&args.path, args.size)?;
            writeln!(out, "ready")?;
            out.flush()?;
            let mut buf = vec![0u8; args.size];
            let mut tail_cache = 0;
            for i in 0..n {
                ring.pop(i, &mut tail_cache, &mut buf);
            }
            writeln!(out, "done")?;
        }
        "ring-echo" => {
            let (ping, pong) = args.path.split_once('|').ok_or("bad ring pair")?;
            let from = BareRing::open(ping, args.size)?;
            let to = BareRing::open(pong, args.size)?;
            writeln!(out, "ready")?;
            out.flush()?;
            let mut buf = vec![0u8; args.size];
            let (mut head_cache, mut tail_cache) = (0, 0);
            for i in 0..n {
                from.pop(i, &mut tail_cache, &mut buf);
                to.push(i, &mut head_cache, &buf);
            }
        }
        other => return Err(format!("unknown bench role {other}").into()),
    }
    out.flush()?;
    Ok(())
}

/// The physical reference: a single-producer single-consumer ring of
/// fixed-size slots over an mmap, no framing, no features. Trusted input
/// only (it maps a file this benchmark just created).
struct BareRing {
    _map: memmap2::MmapRaw,
    base: *mut u8,
    slot: usize,
}

const BARE_SLOTS: u64 = 4096;
const BARE_DATA: usize = 256;

impl BareRing {
    fn create(path: &str, size: usize) -> std::io::Result<BareRing> {
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        file.set_len((BARE_DATA + BARE_SLOTS as usize * size.max(8)) as u64)?;
        Self::map(&file, size)
    }

    fn open(path: &str, size: usize) -> std::io::Result<BareRing> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        Self::map(&file, size)
    }

    fn map(file: &std::fs::File, size: usize) -> std::io::Result<BareRing> {
        let map = memmap2::MmapRaw::map_raw(file)?;
        let base = map.as_mut_ptr();
        Ok(BareRing { _map: map, base, slot: size.max(8) })
    }

    fn head(&self) -> &AtomicU64 {
        // SAFETY: offset 0 of a page-aligned mapping of at least 256 bytes.
        unsafe { &*(self.base as *const AtomicU64) }
    }

    fn tail(&self) -> &AtomicU64 {
        // SAFETY: offset 128, 8-aligned, inside the mapping.
        unsafe { &*(self.base.add(128) as *const AtomicU64) }
    }

    fn push(&self, pos: u64, head_cache: &mut u64, body: &[u8]) {
        while pos - *head_cache >= BARE_SLOTS {
            // SYNC POINT BARE-HEAD: pairs with the Release store in `pop`.
            *head_cache = self.head().load(Ordering::Acquire);
            std::hint::spin_loop();
        }
        let at = BARE_DATA + (pos % BARE_SLOTS) as usize * self.slot;
        // SAFETY: the slot lies inside the mapping and the consumer has
        // released it (head > pos - BARE_SLOTS).
        unsafe { std::ptr::copy_nonoverlapping(body.as_ptr(), self.base.add(at), body.len()) };
        // SYNC POINT BARE-TAIL: pairs with the Acquire load in `pop`.
        self.tail().store(pos + 1, Ordering::Release);
    }

    fn pop(&self, pos: u64, tail_cache: &mut u64, out: &mut [u8]) {
        while *tail_cache <= pos {
            // SYNC POINT BARE-TAIL.
            *tail_cache = self.tail().load(Ordering::Acquire);
            std::hint::spin_loop();
        }
        let at = BARE_DATA + (pos % BARE_SLOTS) as usize * self.slot;
        // SAFETY: the slot is inside the mapping and was published (tail > pos).
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(at), out.as_mut_ptr(), out.len()) };
        // SYNC POINT BARE-HEAD.
        self.head().store(pos + 1, Ordering::Release);
    }
}
