//! The systems under test. Each measures throughput (parent sends, child
//! receives) and ping-pong latency (child echoes) across two processes,
//! except crossbeam-channel, the in-process reference, which uses threads.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use iceoryx2::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    ShmqBlocking,
    ShmqBusy,
    /// Busy-poll, publishing and draining in batches of 32.
    ShmqBatch,
    /// As `ShmqBatch`, with manual acks: one `ack_multiple` per batch.
    ShmqManualBatch,
    /// As `ShmqBusy`, each message published through a topic exchange with
    /// 1000 bindings (`Publisher::publish`) instead of to the queue.
    ShmqTopic,
    Iceoryx2,
    UnixSocket,
    Pipe,
    PosixMq,
    Crossbeam,
    BareRing,
    RabbitMq,
}

impl System {
    pub const ALL: [System; 12] = [
        System::ShmqBlocking,
        System::ShmqBusy,
        System::ShmqBatch,
        System::ShmqManualBatch,
        System::ShmqTopic,
        System::Iceoryx2,
        System::UnixSocket,
        System::Pipe,
        System::PosixMq,
        System::Crossbeam,
        System::BareRing,
        System::RabbitMq,
    ];

    pub fn label(self) -> &'static str {
        match self {
            System::ShmqBlocking => "shmq (blocking)",
            System::ShmqBusy => "shmq (busy-poll)",
            System::ShmqBatch => "shmq (batches of 32)",
            System::ShmqManualBatch => "shmq (manual ack, batches of 32)",
            System::ShmqTopic => "shmq (topic, 1000 bindings)",
            System::Iceoryx2 => "iceoryx2",
            System::UnixSocket => "unix socket",
            System::Pipe => "pipe",
            System::PosixMq => "POSIX mq",
            System::Crossbeam => "crossbeam (threads)",
            System::BareRing => "bare spsc ring",
            System::RabbitMq => "RabbitMQ (lapin)",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            System::ShmqBlocking => "shmq",
            System::ShmqBusy => "shmq-busy",
            System::ShmqBatch => "shmq-batch",
            System::ShmqManualBatch => "shmq-manual-batch",
            System::ShmqTopic => "shmq-topic",
            System::Iceoryx2 => "iceoryx2",
            System::UnixSocket => "uds",
            System::Pipe => "pipe",
            System::PosixMq => "mq",
            System::Crossbeam => "crossbeam",
            System::BareRing => "ring",
            System::RabbitMq => "rabbitmq",
        }
    }

    /// True for the rows that are shmq itself.
    pub fn is_shmq(self) -> bool {
        matches!(self, System::ShmqBlocking | System::ShmqBusy | System::ShmqBatch | System::ShmqManualBatch | System::ShmqTopic)
    }

    /// Publishes and drains in batches of [`BATCH`].
    fn batched(self) -> bool {
        matches!(self, System::ShmqBatch | System::ShmqManualBatch)
    }

    fn from_key(key: &str) -> Option<System> {
        System::ALL.into_iter().find(|s| s.key() == key)
    }
}

type R<T> = Result<T, Box<dyn std::error::Error>>;

static RUN: AtomicU64 = AtomicU64::new(0);

fn unique(tag: &str) -> String {
    format!("suite-{}-{}-{tag}", std::process::id(), RUN.fetch_add(1, Ordering::Relaxed))
}

fn spawn(system: System, mode: &str, size: usize, count: u64, path: &str, piped: bool) -> R<(Child, BufReader<ChildStderr>)> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["child", system.key(), mode, &size.to_string(), &count.to_string(), path]);
    cmd.stderr(Stdio::piped());
    if piped {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    }
    let mut child = cmd.spawn()?;
    let stderr = BufReader::new(child.stderr.take().ok_or("no stderr")?);
    Ok((child, stderr))
}

/// Waits for the child's control word on its stderr, skipping log lines
/// (iceoryx2 logs there too).
fn expect(reader: &mut impl BufRead, word: &str) -> R<()> {
    let mut last = String::new();
    for _ in 0..1000 {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(format!("child exited before saying {word} (its last words: {:?})", last.trim()).into());
        }
        if line.trim() == word {
            return Ok(());
        }
        if !line.trim().is_empty() {
            last = line;
        }
    }
    Err(format!("child never said {word}").into())
}

fn shm_dir(path: &str) -> String {
    format!("/dev/shm/{path}")
}

// ------------------------------------------------------------- throughput

/// One-way messages per second from this process to a child (threads for
/// crossbeam).
pub fn throughput(system: System, size: usize, count: u64) -> R<f64> {
    let body = vec![0xA5u8; size];
    if system == System::Crossbeam {
        let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(1024);
        let consumer = std::thread::spawn(move || {
            let mut bytes = 0usize;
            for _ in 0..count {
                bytes += rx.recv().map(|v| v.len()).unwrap_or(0);
            }
            bytes
        });
        let started = Instant::now();
        for _ in 0..count {
            tx.send(body.clone())?;
        }
        consumer.join().map_err(|_| "consumer thread panicked")?;
        return Ok(count as f64 / started.elapsed().as_secs_f64());
    }
    let path = unique("tp");
    let result = throughput_in(system, size, count, &path, &body);
    let _ = std::fs::remove_dir_all(shm_dir(&path));
    let _ = std::fs::remove_file(shm_dir(&path));
    result
}

fn throughput_in(system: System, size: usize, count: u64, path: &str, body: &[u8]) -> R<f64> {
    // Untimed warm-up: one ring's worth of messages first, so no system is
    // timed on first-touch page faults.
    let warmup = if system == System::RabbitMq { 0 } else { BareRing::slots_for(size) };
    match system {
        System::ShmqBlocking | System::ShmqBusy | System::ShmqBatch | System::ShmqManualBatch | System::ShmqTopic => {
            let ns = shmq::Namespace::open_dir(shm_dir(path))?;
            ns.declare_queue("q", &queue_options(size))?;
            let (mut child, mut ctl) = spawn(system, "sink", size, count + warmup, path, false)?;
            expect(&mut ctl, "ready")?;
            let mut producer = ns.producer("q")?;
            let mut publisher = ns.publisher();
            if system == System::ShmqTopic {
                bind_topic(&ns, "q", &mut publisher)?;
            }
            let bodies = [body; BATCH];
            let properties = shmq::Properties::new();
            let mut started = Instant::now();
            for (phase, n) in [warmup, count].into_iter().enumerate() {
                if phase == 1 {
                    started = Instant::now();
                }
                if system == System::ShmqTopic {
                    for _ in 0..n {
                        publisher.publish(TOPIC_EXCHANGE, TOPIC_KEY, &properties, body)?;
                    }
                } else if system.batched() {
                    let mut sent = 0;
                    while sent < n {
                        let k = (n - sent).min(BATCH as u64) as usize;
                        producer.publish_batch(&bodies[..k])?;
                        sent += k as u64;
                    }
                } else {
                    for _ in 0..n {
                        producer.publish(body)?;
                    }
                }
            }
            expect(&mut ctl, "done")?;
            let rate = count as f64 / started.elapsed().as_secs_f64();
            child.wait()?;
            Ok(rate)
        }
        System::Iceoryx2 => {
            let (mut child, mut ctl) = spawn(system, "sink", size, count + warmup, path, false)?;
            expect(&mut ctl, "ready")?;
            let node = NodeBuilder::new().create::<ipc::Service>()?;
            let service = ice_service(&node, path, size)?;
            let publisher = service
                .publisher_builder()
                .initial_max_slice_len(size)
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .create()?;
            let mut started = Instant::now();
            for i in 0..count + warmup {
                if i == warmup {
                    started = Instant::now();
                }
                let sample = publisher.loan_slice_uninit(size)?;
                let sample = sample.write_from_slice(body);
                sample.send()?;
            }
            expect(&mut ctl, "done")?;
            let rate = count as f64 / started.elapsed().as_secs_f64();
            child.wait()?;
            Ok(rate)
        }
        System::UnixSocket => {
            let sock = shm_dir(path);
            let listener = UnixListener::bind(&sock)?;
            let (mut child, mut ctl) = spawn(system, "sink", size, count + warmup, path, false)?;
            let (mut stream, _) = listener.accept()?;
            expect(&mut ctl, "ready")?;
            let mut started = Instant::now();
            for i in 0..count + warmup {
                if i == warmup {
                    started = Instant::now();
                }
                stream.write_all(body)?;
            }
            expect(&mut ctl, "done")?;
            let rate = count as f64 / started.elapsed().as_secs_f64();
            child.wait()?;
            Ok(rate)
        }
        System::Pipe => {
            let (mut child, mut ctl) = spawn(system, "sink", size, count + warmup, path, true)?;
            expect(&mut ctl, "ready")?;
            let mut stdin = child.stdin.take().ok_or("no stdin")?;
            let mut started = Instant::now();
            for i in 0..count + warmup {
                if i == warmup {
                    started = Instant::now();
                }
                stdin.write_all(body)?;
            }
            expect(&mut ctl, "done")?;
            let rate = count as f64 / started.elapsed().as_secs_f64();
            child.wait()?;
            Ok(rate)
        }
        System::PosixMq => {
            let mq = Mq::create(&format!("/{path}"), size)?;
            let (mut child, mut ctl) = spawn(system, "sink", size, count + warmup, path, false)?;
            expect(&mut ctl, "ready")?;
            let mut started = Instant::now();
            for i in 0..count + warmup {
                if i == warmup {
                    started = Instant::now();
                }
                mq.send(body)?;
            }
            expect(&mut ctl, "done")?;
            let rate = count as f64 / started.elapsed().as_secs_f64();
            child.wait()?;
            Ok(rate)
        }
        System::BareRing => {
            let ring = BareRing::create(&shm_dir(path), size)?;
            let (mut child, mut ctl) = spawn(system, "sink", size, count + warmup, path, false)?;
            expect(&mut ctl, "ready")?;
            let mut head = 0;
            let mut started = Instant::now();
            for i in 0..count + warmup {
                if i == warmup {
                    started = Instant::now();
                }
                ring.push(i, &mut head, body);
            }
            expect(&mut ctl, "done")?;
            let rate = count as f64 / started.elapsed().as_secs_f64();
            child.wait()?;
            Ok(rate)
        }
        System::RabbitMq => {
            let (mut child, mut ctl) = spawn(system, "sink", size, count + warmup, path, false)?;
            expect(&mut ctl, "ready")?;
            let rate = rabbit::block_on(async {
                let ch = rabbit::channel().await?;
                rabbit::enable_confirms(&ch).await?;
                let started = Instant::now();
                for i in 0..count {
                    rabbit::publish(&ch, path, body).await?;
                    // Publisher confirms in windows bound what is in flight:
                    // unbounded bursts made the broker block the connection
                    // (flow control) until the run stalled.
                    if (i + 1) % rabbit::CONFIRM_WINDOW == 0 {
                        ch.wait_for_confirms().await?;
                    }
                }
                ch.wait_for_confirms().await?;
                Ok::<_, Box<dyn std::error::Error>>(started)
            })?;
            expect(&mut ctl, "done")?;
            let rate = count as f64 / rate.elapsed().as_secs_f64();
            child.wait()?;
            Ok(rate)
        }
        System::Crossbeam => unreachable!("threads"),
    }
}

// ---------------------------------------------------------------- latency

/// One-way latency percentiles (p50, p99, p99.9) in ns, ping-pong / 2.
pub fn latency(system: System, size: usize, round_trips: u64) -> R<[f64; 3]> {
    let path = unique("lat");
    let result = latency_in(system, size, round_trips, &path);
    let _ = std::fs::remove_dir_all(shm_dir(&path));
    for suffix in ["", "-ping", "-pong"] {
        let _ = std::fs::remove_file(shm_dir(&format!("{path}{suffix}")));
    }
    result
}

fn latency_in(system: System, size: usize, round_trips: u64, path: &str) -> R<[f64; 3]> {
    let body = vec![0x5Au8; size];
    let mut back = vec![0u8; size];
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let warmup = round_trips / 10;
    let total = round_trips + warmup;
    let record = |i: u64, started: Instant, hist: &mut Histogram<u64>| {
        if i >= warmup {
            let _ = hist.record((started.elapsed().as_nanos() as u64 / 2).max(1));
        }
    };
    match system {
        System::ShmqBlocking | System::ShmqBusy | System::ShmqBatch | System::ShmqManualBatch | System::ShmqTopic => {
            let ns = shmq::Namespace::open_dir(shm_dir(path))?;
            ns.declare_queue("ping", &queue_options(size))?;
            ns.declare_queue("pong", &queue_options(size))?;
            let (mut child, mut ctl) = spawn(system, "echo", size, total, path, false)?;
            expect(&mut ctl, "ready")?;
            let mut producer = ns.producer("ping")?;
            let mut publisher = ns.publisher();
            if system == System::ShmqTopic {
                bind_topic(&ns, "ping", &mut publisher)?;
            }
            let properties = shmq::Properties::new();
            let consumer = ns.consumer("pong", consumer_options(system))?;
            for i in 0..total {
                let started = Instant::now();
                if system == System::ShmqTopic {
                    publisher.publish(TOPIC_EXCHANGE, TOPIC_KEY, &properties, &body)?;
                } else {
                    producer.publish(&body)?;
                }
                let d = consumer.recv()?;
                back[..d.body().len()].copy_from_slice(d.body());
                if system == System::ShmqManualBatch {
                    d.ack()?;
                } else {
                    drop(d);
                }
                record(i, started, &mut hist);
            }
            child.wait()?;
        }
        System::Iceoryx2 => {
            // Our pong subscriber exists before the child publishes.
            let node = NodeBuilder::new().create::<ipc::Service>()?;
            let ping = ice_service(&node, &format!("{path}-ping"), size)?;
            let pong = ice_service(&node, &format!("{path}-pong"), size)?;
            let subscriber = pong.subscriber_builder().create()?;
            let publisher = ping
                .publisher_builder()
                .initial_max_slice_len(size)
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .create()?;
            let (mut child, mut ctl) = spawn(system, "echo", size, total, path, false)?;
            expect(&mut ctl, "ready")?;
            for i in 0..total {
                let started = Instant::now();
                publisher.loan_slice_uninit(size)?.write_from_slice(&body).send()?;
                loop {
                    if let Some(sample) = subscriber.receive()? {
                        back.copy_from_slice(sample.payload());
                        break;
                    }
                    std::hint::spin_loop();
                }
                record(i, started, &mut hist);
            }
            child.wait()?;
        }
        System::UnixSocket => {
            let sock = shm_dir(path);
            let listener = UnixListener::bind(&sock)?;
            let (mut child, _ctl) = spawn(system, "echo", size, total, path, false)?; // control unused: accept() syncs
            let (mut stream, _) = listener.accept()?;
            for i in 0..total {
                let started = Instant::now();
                stream.write_all(&body)?;
                stream.read_exact(&mut back)?;
                record(i, started, &mut hist);
            }
            child.wait()?;
        }
        System::Pipe => {
            let (mut child, mut ctl) = spawn(system, "echo", size, total, path, true)?;
            expect(&mut ctl, "ready")?;
            let mut stdin = child.stdin.take().ok_or("no stdin")?;
            let mut stdout = child.stdout.take().ok_or("no stdout")?;
            for i in 0..total {
                let started = Instant::now();
                stdin.write_all(&body)?;
                stdout.read_exact(&mut back)?;
                record(i, started, &mut hist);
            }
            drop(stdin);
            child.wait()?;
        }
        System::PosixMq => {
            let ping = Mq::create(&format!("/{path}-ping"), size)?;
            let pong = Mq::create(&format!("/{path}-pong"), size)?;
            let (mut child, mut ctl) = spawn(system, "echo", size, total, path, false)?;
            expect(&mut ctl, "ready")?;
            for i in 0..total {
                let started = Instant::now();
                ping.send(&body)?;
                pong.receive(&mut back)?;
                record(i, started, &mut hist);
            }
            child.wait()?;
        }
        System::BareRing => {
            let to = BareRing::create(&shm_dir(&format!("{path}-ping")), size)?;
            let from = BareRing::create(&shm_dir(&format!("{path}-pong")), size)?;
            let (mut child, mut ctl) = spawn(system, "echo", size, total, path, false)?;
            expect(&mut ctl, "ready")?;
            let (mut head, mut tail) = (0, 0);
            for i in 0..total {
                let started = Instant::now();
                to.push(i, &mut head, &body);
                from.pop(i, &mut tail, &mut back);
                record(i, started, &mut hist);
            }
            child.wait()?;
        }
        System::RabbitMq => {
            let (mut child, mut ctl) = spawn(system, "echo", size, total, path, false)?;
            expect(&mut ctl, "ready")?;
            let pong = format!("{path}-pong");
            let ping = format!("{path}-ping");
            rabbit::block_on(async {
                let ch = rabbit::channel().await?;
                let mut consumer = rabbit::consume(&ch, &pong).await?;
                for i in 0..total {
                    let started = Instant::now();
                    rabbit::publish(&ch, &ping, &body).await?;
                    let d = rabbit::next(&mut consumer).await?;
                    back[..d.len().min(size)].copy_from_slice(&d[..d.len().min(size)]);
                    record(i, started, &mut hist);
                }
                Ok::<_, Box<dyn std::error::Error>>(())
            })?;
            child.wait()?;
        }
        System::Crossbeam => {
            let (ping_tx, ping_rx) = crossbeam_channel::bounded::<Vec<u8>>(1);
            let (pong_tx, pong_rx) = crossbeam_channel::bounded::<Vec<u8>>(1);
            let echo = std::thread::spawn(move || {
                for _ in 0..total {
                    let Ok(m) = ping_rx.recv() else { return };
                    let _ = pong_tx.send(m);
                }
            });
            for i in 0..total {
                let started = Instant::now();
                ping_tx.send(body.clone())?;
                let m = pong_rx.recv()?;
                back.copy_from_slice(&m);
                record(i, started, &mut hist);
            }
            echo.join().map_err(|_| "echo thread panicked")?;
        }
    }
    Ok([hist.value_at_quantile(0.5) as f64, hist.value_at_quantile(0.99) as f64, hist.value_at_quantile(0.999) as f64])
}

// ---------------------------------------------------------------- scaling

/// shmq fanout: messages published per second to a fanout exchange bound to
/// `queues` queues, each drained by a consumer thread in a child process.
pub fn fanout(queues: usize, count: u64) -> R<f64> {
    let path = unique("fanout");
    let ns = shmq::Namespace::open_dir(shm_dir(&path))?;
    ns.declare_exchange("f", &shmq::ExchangeOptions::new(shmq::ExchangeKind::Fanout))?;
    for q in 0..queues {
        ns.declare_queue(&format!("q{q}"), &queue_options(64))?;
        ns.bind_queue(&format!("q{q}"), "f", "", &[])?;
    }
    let (mut child, mut ctl) = spawn(System::ShmqBlocking, "fanout-sinks", 64, count, &format!("{path}:{queues}"), false)?;
    expect(&mut ctl, "ready")?;
    let mut publisher = ns.publisher();
    let body = [1u8; 64];
    let started = Instant::now();
    for _ in 0..count {
        publisher.publish("f", "", &shmq::Properties::new(), &body)?;
    }
    expect(&mut ctl, "done")?;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    child.wait()?;
    drop((publisher, ns));
    let _ = std::fs::remove_dir_all(shm_dir(&path));
    Ok(rate)
}

/// shmq competing consumers: messages per second through one work queue
/// drained by `workers` consumer threads in a child process.
pub fn competing(workers: usize, count: u64) -> R<f64> {
    let path = unique("work");
    let ns = shmq::Namespace::open_dir(shm_dir(&path))?;
    ns.declare_queue("work", &queue_options(64))?;
    let (mut child, mut ctl) = spawn(System::ShmqBlocking, "workers", 64, count, &format!("{path}:{workers}"), false)?;
    expect(&mut ctl, "ready")?;
    let mut producer = ns.producer("work")?;
    let body = [2u8; 64];
    let bodies: Vec<&[u8]> = (0..32).map(|_| &body[..]).collect();
    let started = Instant::now();
    let mut sent = 0;
    while sent < count {
        let n = (count - sent).min(32) as usize;
        producer.publish_batch(&bodies[..n])?;
        sent += n as u64;
    }
    expect(&mut ctl, "done")?;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    child.wait()?;
    drop((producer, ns));
    let _ = std::fs::remove_dir_all(shm_dir(&path));
    Ok(rate)
}

/// Messages per batch for `shmq (batches of 32)`.
const BATCH: usize = 32;

/// The topic exchange `shmq (topic, 1000 bindings)` publishes through, and
/// the routing key it publishes with: one of its 1000 bindings matches.
const TOPIC_EXCHANGE: &str = "t";
const TOPIC_KEY: &str = "stock.3.nyse";

/// Binds `queue` to a topic exchange with 1000 bindings (literal, `*` and
/// `#` patterns, as benches/routing.rs), of which one matches [`TOPIC_KEY`],
/// and checks the route.
fn bind_topic(ns: &shmq::Namespace, queue: &str, publisher: &mut shmq::Publisher) -> R<()> {
    ns.declare_exchange(TOPIC_EXCHANGE, &shmq::ExchangeOptions::new(shmq::ExchangeKind::Topic))?;
    for i in 0..1000u32 {
        let key = match i % 3 {
            0 => format!("stock.{i}.nyse"),
            1 => format!("stock.*.exchange{i}"),
            _ => format!("region{i}.#"),
        };
        ns.bind_queue(queue, TOPIC_EXCHANGE, &key, &[])?;
    }
    if publisher.route_count(TOPIC_EXCHANGE, TOPIC_KEY, &shmq::Properties::new())? != 1 {
        return Err("the topic key must reach exactly one queue".into());
    }
    Ok(())
}

/// How each shmq system's consumers receive: busy-poll but for the
/// blocking row; manual acks (no prefetch limit) for the manual row.
fn consumer_options(system: System) -> shmq::ConsumerOptions {
    let options = shmq::ConsumerOptions::default().busy_poll(system != System::ShmqBlocking);
    if system == System::ShmqManualBatch {
        options.manual_ack()
    } else {
        options
    }
}

/// Bytes of ring every shared-memory system gets: room for 64 messages (8
/// above 64 KiB) plus framing, at least 4 MiB; the bare ring and shmq use
/// the same memory.
fn ring_bytes(size: usize) -> u64 {
    let room = if size > 64 << 10 { 8 } else { 64 };
    ((size as u64 + 64) * room).next_power_of_two().max(1 << 22)
}

fn queue_options(size: usize) -> shmq::QueueOptions {
    // Bounded like the other systems' rings: at 4096 messages the publisher
    // waits (an unbounded queue would grow instead).
    shmq::QueueOptions::default()
        .capacity_bytes(ring_bytes(size))
        .max_message_bytes(size as u32 + 64)
        .max_length(4096)
        .overflow(shmq::Overflow::Block)
}

type IceService = iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>;

fn ice_service(node: &Node<ipc::Service>, name: &str, size: usize) -> R<IceService> {
    let _ = size;
    Ok(node
        .service_builder(&name.try_into()?)
        .publish_subscribe::<[u8]>()
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(256)
        .history_size(0)
        .open_or_create()?)
}

// ------------------------------------------------------------------ child

pub fn child(args: &[String]) -> R<()> {
    // Watchdog: a run that stalls (a throttled broker) ends after 60 s, and
    // the parent's wait for our word then fails with our last words. (It
    // used to be the parent killing our pid after 60 s: the failure then said
    // nothing, and a pid reused by a later child could have been hit.)
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(60));
        eprintln!("watchdog: this run took over 60 s");
        std::process::exit(3);
    });
    let system = System::from_key(&args[0]).ok_or("unknown system")?;
    let mode = args[1].as_str();
    let size: usize = args[2].parse()?;
    let count: u64 = args[3].parse()?;
    let path = args[4].as_str();
    let mut ctl = std::io::stderr();
    let mut say = |word: &str| -> R<()> {
        writeln!(ctl, "{word}")?;
        ctl.flush()?;
        Ok(())
    };
    let mut buf = vec![0u8; size];
    match (system, mode) {
        (System::ShmqBatch | System::ShmqManualBatch, "sink") => {
            let ns = shmq::Namespace::open_dir(shm_dir(path))?;
            let consumer = ns.consumer("q", consumer_options(system))?;
            say("ready")?;
            let mut got = 0;
            while got < count {
                let mut last = None;
                let n = consumer.drain(BATCH, |d| {
                    buf[..d.body().len()].copy_from_slice(d.body());
                    last = Some(d.tag());
                })?;
                if let (System::ShmqManualBatch, Some(tag)) = (system, last) {
                    consumer.ack_multiple(tag)?;
                }
                if n == 0 {
                    std::hint::spin_loop();
                }
                got += n as u64;
            }
            say("done")?;
        }
        (System::ShmqBlocking | System::ShmqBusy | System::ShmqTopic, "sink") => {
            let ns = shmq::Namespace::open_dir(shm_dir(path))?;
            let consumer = ns.consumer("q", consumer_options(system))?;
            say("ready")?;
            for _ in 0..count {
                let d = consumer.recv()?;
                buf[..d.body().len()].copy_from_slice(d.body());
            }
            say("done")?;
        }
        (s, "echo") if s.is_shmq() => {
            let ns = shmq::Namespace::open_dir(shm_dir(path))?;
            let consumer = ns.consumer("ping", consumer_options(system))?;
            let mut producer = ns.producer("pong")?;
            say("ready")?;
            for _ in 0..count {
                let d = consumer.recv()?;
                producer.publish(d.body())?;
                if system == System::ShmqManualBatch {
                    d.ack()?;
                }
            }
        }
        (_, "fanout-sinks") | (_, "workers") => {
            let (dir, n) = path.split_once(':').ok_or("bad path")?;
            let n: usize = n.parse()?;
            let ns = shmq::Namespace::open_dir(shm_dir(dir))?;
            let total = if mode == "workers" { count } else { count * n as u64 };
            let received = AtomicU64::new(0);
            let ready = std::sync::Barrier::new(n + 1);
            std::thread::scope(|scope| -> R<()> {
                for i in 0..n {
                    let (ns, received, ready) = (ns.clone(), &received, &ready);
                    let queue = if mode == "workers" { "work".to_string() } else { format!("q{i}") };
                    scope.spawn(move || {
                        // A consumer belongs to its thread.
                        let consumer = ns.consumer(&queue, shmq::ConsumerOptions::default()).expect("consumer");
                        ready.wait();
                        while received.load(Ordering::Relaxed) < total {
                            let got = consumer.drain(64, |_| {}).unwrap_or(0) as u64;
                            if got == 0 {
                                if consumer.recv_timeout(std::time::Duration::from_millis(5)).is_ok() {
                                    received.fetch_add(1, Ordering::Relaxed);
                                }
                            } else {
                                received.fetch_add(got, Ordering::Relaxed);
                            }
                        }
                    });
                }
                ready.wait();
                say("ready")?;
                Ok(())
            })?;
            say("done")?;
        }
        (System::Iceoryx2, "sink") => {
            let node = NodeBuilder::new().create::<ipc::Service>()?;
            let service = ice_service(&node, path, size)?;
            let subscriber = service.subscriber_builder().buffer_size(256).create()?;
            say("ready")?;
            let mut got = 0;
            while got < count {
                if let Some(sample) = subscriber.receive()? {
                    buf.copy_from_slice(sample.payload());
                    got += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
            say("done")?;
        }
        (System::Iceoryx2, "echo") => {
            let node = NodeBuilder::new().create::<ipc::Service>()?;
            let ping = ice_service(&node, &format!("{path}-ping"), size)?;
            let pong = ice_service(&node, &format!("{path}-pong"), size)?;
            let subscriber = ping.subscriber_builder().create()?;
            let publisher = pong
                .publisher_builder()
                .initial_max_slice_len(size)
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .create()?;
            say("ready")?;
            let mut done = 0;
            while done < count {
                if let Some(sample) = subscriber.receive()? {
                    publisher.loan_slice_uninit(size)?.write_from_slice(sample.payload()).send()?;
                    done += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        (System::UnixSocket, "sink") => {
            let mut stream = UnixStream::connect(shm_dir(path))?;
            say("ready")?;
            let mut left = count as usize * size;
            let mut chunk = vec![0u8; 1 << 16];
            while left > 0 {
                let n = stream.read(&mut chunk[..left.min(1 << 16)])?;
                if n == 0 {
                    return Err("socket closed".into());
                }
                left -= n;
            }
            say("done")?;
        }
        (System::UnixSocket, "echo") => {
            let mut stream = UnixStream::connect(shm_dir(path))?;
            for _ in 0..count {
                stream.read_exact(&mut buf)?;
                stream.write_all(&buf)?;
            }
        }
        (System::Pipe, "sink") => {
            say("ready")?;
            let mut stdin = std::io::stdin().lock();
            let mut left = count as usize * size;
            let mut chunk = vec![0u8; 1 << 16];
            while left > 0 {
                let n = stdin.read(&mut chunk[..left.min(1 << 16)])?;
                if n == 0 {
                    return Err("pipe closed".into());
                }
                left -= n;
            }
            say("done")?;
        }
        (System::Pipe, "echo") => {
            say("ready")?;
            let mut stdin = std::io::stdin().lock();
            let mut stdout = std::io::stdout().lock();
            for _ in 0..count {
                stdin.read_exact(&mut buf)?;
                stdout.write_all(&buf)?;
                stdout.flush()?;
            }
        }
        (System::RabbitMq, "sink") => {
            rabbit::block_on(async {
                let ch = rabbit::channel().await?;
                let mut consumer = rabbit::consume(&ch, path).await?;
                say("ready")?;
                for _ in 0..count {
                    let d = rabbit::next(&mut consumer).await?;
                    buf[..d.len().min(size)].copy_from_slice(&d[..d.len().min(size)]);
                }
                say("done")?;
                Ok::<_, Box<dyn std::error::Error>>(())
            })?;
        }
        (System::RabbitMq, "echo") => {
            rabbit::block_on(async {
                let ch = rabbit::channel().await?;
                let mut consumer = rabbit::consume(&ch, &format!("{path}-ping")).await?;
                rabbit::declare(&ch, &format!("{path}-pong")).await?;
                say("ready")?;
                for _ in 0..count {
                    let d = rabbit::next(&mut consumer).await?;
                    rabbit::publish(&ch, &format!("{path}-pong"), &d).await?;
                }
                Ok::<_, Box<dyn std::error::Error>>(())
            })?;
        }
        (System::PosixMq, "sink") => {
            let mq = Mq::open(&format!("/{path}"))?;
            say("ready")?;
            for _ in 0..count {
                mq.receive(&mut buf)?;
            }
            say("done")?;
        }
        (System::PosixMq, "echo") => {
            let ping = Mq::open(&format!("/{path}-ping"))?;
            let pong = Mq::open(&format!("/{path}-pong"))?;
            say("ready")?;
            for _ in 0..count {
                ping.receive(&mut buf)?;
                pong.send(&buf)?;
            }
        }
        (System::BareRing, "sink") => {
            let ring = BareRing::open(&shm_dir(path), size)?;
            say("ready")?;
            let mut tail = 0;
            for i in 0..count {
                ring.pop(i, &mut tail, &mut buf);
            }
            say("done")?;
        }
        (System::BareRing, "echo") => {
            let from = BareRing::open(&shm_dir(&format!("{path}-ping")), size)?;
            let to = BareRing::open(&shm_dir(&format!("{path}-pong")), size)?;
            say("ready")?;
            let (mut head, mut tail) = (0, 0);
            for i in 0..count {
                from.pop(i, &mut tail, &mut buf);
                to.push(i, &mut head, &buf);
            }
        }
        _ => return Err(format!("no child for {system:?} {mode}").into()),
    }
    Ok(())
}

// ------------------------------------------------------------- bare ring

/// The physical reference: single-producer single-consumer, fixed slots over
/// an mmap of /dev/shm, no framing. Trusted input only.
struct BareRing {
    _map: memmap2::MmapRaw,
    base: *mut u8,
    slot: usize,
    slots: u64,
}

const RING_HEADER: usize = 4096;

impl BareRing {
    /// As many slots as shmq's ring of the same byte size holds (at most
    /// 4096, shmq's `max_messages` here).
    fn slots_for(size: usize) -> u64 {
        (ring_bytes(size) / size.max(8) as u64).clamp(4, 4096)
    }

    fn create(path: &str, size: usize) -> std::io::Result<BareRing> {
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        file.set_len((RING_HEADER + Self::slots_for(size) as usize * size.max(8)) as u64)?;
        Self::map(&file, size)
    }

    fn open(path: &str, size: usize) -> std::io::Result<BareRing> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        Self::map(&file, size)
    }

    fn map(file: &std::fs::File, size: usize) -> std::io::Result<BareRing> {
        let map = memmap2::MmapRaw::map_raw(file)?;
        // Pre-faulted writable, as shmq's segments are: no first-touch
        // faults timed for either.
        let _ = map.advise(memmap2::Advice::PopulateWrite);
        let base = map.as_mut_ptr();
        Ok(BareRing { _map: map, base, slot: size.max(8), slots: Self::slots_for(size) })
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
        while pos - *head_cache >= self.slots {
            // SYNC POINT RING-HEAD: pairs with the Release store in `pop`.
            *head_cache = self.head().load(Ordering::Acquire);
            std::hint::spin_loop();
        }
        let at = RING_HEADER + (pos % self.slots) as usize * self.slot;
        // SAFETY: in the mapping; the consumer released this slot.
        unsafe { std::ptr::copy_nonoverlapping(body.as_ptr(), self.base.add(at), body.len()) };
        // SYNC POINT RING-TAIL: pairs with the Acquire load in `pop`.
        self.tail().store(pos + 1, Ordering::Release);
    }

    fn pop(&self, pos: u64, tail_cache: &mut u64, out: &mut [u8]) {
        while *tail_cache <= pos {
            // SYNC POINT RING-TAIL.
            *tail_cache = self.tail().load(Ordering::Acquire);
            std::hint::spin_loop();
        }
        let at = RING_HEADER + (pos % self.slots) as usize * self.slot;
        // SAFETY: in the mapping; the producer published this slot.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(at), out.as_mut_ptr(), out.len()) };
        // SYNC POINT RING-HEAD.
        self.head().store(pos + 1, Ordering::Release);
    }
}

// ------------------------------------------------------------ POSIX mq

/// A POSIX message queue (mq_open/mq_send/mq_receive). The creator unlinks
/// it on drop. Large messages need `run.sh`'s raised mqueue limits.
struct Mq {
    fd: libc::mqd_t,
    name: std::ffi::CString,
    owner: bool,
}

impl Mq {
    fn create(name: &str, size: usize) -> R<Mq> {
        // SAFETY: plain libc calls with valid pointers; the rlimit raise is
        // best effort (root may, others keep their limit).
        unsafe {
            let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
            libc::setrlimit(libc::RLIMIT_MSGQUEUE, &unlimited);
            let mut limit: libc::rlimit = std::mem::zeroed();
            libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut limit);
            // Two queues (ping and pong) must fit the per-user byte limit.
            let budget = if limit.rlim_cur == libc::RLIM_INFINITY { 64usize << 20 } else { limit.rlim_cur as usize / 2 };
            let per_message = size + std::mem::size_of::<usize>() * 8; // kernel accounting overhead, roughly
            if per_message > budget {
                return Err(format!(
                    "a {size}-byte POSIX message exceeds this machine's RLIMIT_MSGQUEUE ({} bytes per user, and the hard limit cannot be raised here)",
                    limit.rlim_cur
                )
                .into());
            }
            let name = std::ffi::CString::new(name)?;
            let mut attr: libc::mq_attr = std::mem::zeroed();
            attr.mq_maxmsg = (budget / per_message).clamp(1, 256) as libc::c_long;
            attr.mq_msgsize = size as libc::c_long;
            libc::mq_unlink(name.as_ptr());
            let fd = libc::mq_open(name.as_ptr(), libc::O_CREAT | libc::O_RDWR, 0o600 as libc::mode_t, &attr as *const libc::mq_attr);
            if fd < 0 {
                return Err(
                    format!("mq_open: {} (mqueue limits: msgsize_max, msg_max, RLIMIT_MSGQUEUE)", std::io::Error::last_os_error()).into()
                );
            }
            Ok(Mq { fd, name, owner: true })
        }
    }

    fn open(name: &str) -> R<Mq> {
        let name = std::ffi::CString::new(name)?;
        // SAFETY: valid C string.
        let fd = unsafe { libc::mq_open(name.as_ptr(), libc::O_RDWR) };
        if fd < 0 {
            return Err(format!("mq_open: {}", std::io::Error::last_os_error()).into());
        }
        Ok(Mq { fd, name, owner: false })
    }

    fn send(&self, body: &[u8]) -> R<()> {
        // SAFETY: body is valid for its length.
        if unsafe { libc::mq_send(self.fd, body.as_ptr() as *const libc::c_char, body.len(), 0) } < 0 {
            return Err(format!("mq_send: {}", std::io::Error::last_os_error()).into());
        }
        Ok(())
    }

    fn receive(&self, buf: &mut [u8]) -> R<usize> {
        // SAFETY: buf is valid for its length, which is the queue's msgsize.
        let n = unsafe { libc::mq_receive(self.fd, buf.as_mut_ptr() as *mut libc::c_char, buf.len(), std::ptr::null_mut()) };
        if n < 0 {
            return Err(format!("mq_receive: {}", std::io::Error::last_os_error()).into());
        }
        Ok(n as usize)
    }
}

impl Drop for Mq {
    fn drop(&mut self) {
        // SAFETY: our descriptor and name.
        unsafe {
            libc::mq_close(self.fd);
            if self.owner {
                libc::mq_unlink(self.name.as_ptr());
            }
        }
    }
}

// ------------------------------------------------------ RabbitMQ (lapin)

/// RabbitMQ on localhost through lapin: auto-delete queues, no-ack
/// consumers; throughput publishes with confirms awaited every
/// `CONFIRM_WINDOW` messages (what RabbitMQ's docs advise for throughput
/// with bounded memory).
pub mod rabbit {
    use futures_lite::stream::StreamExt;
    use lapin::options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

    type R<T> = Result<T, Box<dyn std::error::Error>>;

    /// True if a broker answers on localhost:5672.
    pub fn available() -> bool {
        std::net::TcpStream::connect_timeout(&"127.0.0.1:5672".parse().expect("address"), std::time::Duration::from_millis(300)).is_ok()
    }

    pub fn block_on<T>(f: impl std::future::Future<Output = R<T>>) -> R<T> {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(f)
    }

    pub async fn channel() -> R<Channel> {
        let conn = Connection::connect("amqp://127.0.0.1:5672/%2f", ConnectionProperties::default()).await?;
        // The connection must outlive the channel: leak it for this process.
        let conn = Box::leak(Box::new(conn));
        Ok(conn.create_channel().await?)
    }

    /// Publishes between two waits for confirms.
    pub const CONFIRM_WINDOW: u64 = 512;

    pub async fn enable_confirms(ch: &Channel) -> R<()> {
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(())
    }

    pub async fn declare(ch: &Channel, queue: &str) -> R<()> {
        let options = QueueDeclareOptions { auto_delete: true, ..QueueDeclareOptions::default() };
        ch.queue_declare(queue.into(), options, FieldTable::default()).await?;
        Ok(())
    }

    pub async fn consume(ch: &Channel, queue: &str) -> R<Consumer> {
        declare(ch, queue).await?;
        let options = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
        Ok(ch.basic_consume(queue.into(), "suite".into(), options, FieldTable::default()).await?)
    }

    pub async fn publish(ch: &Channel, queue: &str, body: &[u8]) -> R<()> {
        ch.basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body, BasicProperties::default()).await?;
        Ok(())
    }

    pub async fn next(consumer: &mut Consumer) -> R<Vec<u8>> {
        match consumer.next().await {
            Some(d) => Ok(d?.data),
            None => Err("consumer closed".into()),
        }
    }
}
