//! `shmq publish` and `shmq consume`.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use super::{namespace, Cli, CliResult};

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// Queue to publish to (through the default exchange); with --exchange,
    /// the routing key.
    pub queue: String,
    /// Publish through this exchange, with QUEUE as the routing key.
    #[arg(long, short = 'e')]
    pub exchange: Option<String>,
    /// Fail if the message matches no queue.
    #[arg(long)]
    pub mandatory: bool,
    /// A header NAME=VALUE (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// Message bodies; `-` reads one body from stdin. With --count, the
    /// first body is a template where `{i}` becomes the message number.
    pub bodies: Vec<String>,
    /// Read the body from this file.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
    /// Publish this many messages from the template.
    #[arg(long)]
    pub count: Option<u64>,
    /// Pad each body with '.' to this many bytes.
    #[arg(long)]
    pub size: Option<usize>,
    /// Wait between messages, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub interval_ms: u64,
    /// Give up on a full blocking queue after this many milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    #[arg(long)]
    pub content_type: Option<String>,
    #[arg(long)]
    pub correlation_id: Option<String>,
    #[arg(long)]
    pub reply_to: Option<String>,
    #[arg(long)]
    pub message_id: Option<String>,
    /// Per-message TTL in milliseconds.
    #[arg(long)]
    pub expiration: Option<String>,
    /// Message priority, 0..=255 (delivered first from a priority queue).
    #[arg(long)]
    pub priority: Option<u8>,
    /// Print one line per published message.
    #[arg(long)]
    pub verbose: bool,
    /// Testing aid: reserve a message, write half of it, print "stalled"
    /// and sleep forever (to be killed mid-write).
    #[arg(long, hide = true)]
    pub stall_mid_write: bool,
}

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// Queue to consume from; "" with --bind declares a server-named
    /// exclusive queue.
    pub queue: String,
    /// Declare the queue if missing.
    #[arg(long)]
    pub declare: bool,
    /// Bind the queue to EXCHANGE:KEY before consuming (repeatable); the
    /// exchange must exist.
    #[arg(long)]
    pub bind: Vec<String>,
    /// Print "ready" on stderr once bound (for scripts that must not publish
    /// too early).
    #[arg(long)]
    pub announce: bool,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after no message came for this many milliseconds.
    #[arg(long)]
    pub idle_exit_ms: Option<u64>,
    /// Ack manually (after --work-ms), instead of auto-ack.
    #[arg(long)]
    pub manual_ack: bool,
    /// Most unacked messages (manual ack).
    #[arg(long, default_value_t = 0)]
    pub prefetch: u32,
    /// Be the queue's only consumer (refused if it has others; refuses
    /// others while it runs).
    #[arg(long)]
    pub exclusive: bool,
    /// Consumer priority (x-priority): messages go to the highest-priority
    /// consumers that have prefetch room.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i32,
    /// Simulated work per message, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub work_ms: u64,
    /// Requeue (nack) every message instead of acking it.
    #[arg(long)]
    pub requeue: bool,
    /// Spin instead of sleeping while waiting.
    #[arg(long)]
    pub busy_poll: bool,
    /// Print only a final count.
    #[arg(long)]
    pub quiet: bool,
    /// Label printed before each line (e.g. a worker name).
    #[arg(long, default_value = "")]
    pub label: String,
}

pub fn publish(cli: &Cli, args: &PublishArgs) -> CliResult {
    let ns = namespace(cli)?;
    let mut sink = match &args.exchange {
        Some(exchange) => {
            // Named, with a did-you-mean, before anything is sent (exit 3).
            if !exchange.is_empty() {
                ns.declare_exchange_passive(exchange)?;
            }
            Sink::Exchange(Box::new(ns.publisher()), exchange.clone())
        }
        None => Sink::Queue(Box::new(ns.producer(&args.queue)?)),
    };
    match &mut sink {
        Sink::Exchange(p, _) => p.set_publish_timeout(args.timeout_ms.map(Duration::from_millis)),
        Sink::Queue(p) => p.set_publish_timeout(args.timeout_ms.map(Duration::from_millis)),
    }
    let header_args = super::admin::parse_arguments(&args.headers)?;
    let headers: Vec<(&str, shmq::HeaderValue<'_>)> = header_args
        .iter()
        .map(|(k, v)| {
            let value = match v {
                shmq::ArgValue::Str(s) => shmq::HeaderValue::Str(s),
                shmq::ArgValue::Int(i) => shmq::HeaderValue::Int(*i),
                shmq::ArgValue::Bool(b) => shmq::HeaderValue::Bool(*b),
                shmq::ArgValue::Void => shmq::HeaderValue::Void,
            };
            (k.as_str(), value)
        })
        .collect();
    if args.stall_mid_write {
        let Sink::Queue(producer) = &mut sink else { return Err("--stall-mid-write needs a queue".into()) };
        let mut reservation = producer.reserve(&shmq::Properties::new(), 64)?;
        reservation.body_mut()[..32].fill(b'!');
        println!("stalled");
        std::io::stdout().flush()?;
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    if let Some(file) = &args.file {
        bodies.push(std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?);
    }
    for body in &args.bodies {
        if body == "-" {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            bodies.push(buf);
        } else {
            bodies.push(body.as_bytes().to_vec());
        }
    }
    if bodies.is_empty() {
        bodies.push(Vec::new());
    }
    let props = shmq::Properties {
        content_type: args.content_type.as_deref(),
        correlation_id: args.correlation_id.as_deref(),
        reply_to: args.reply_to.as_deref(),
        message_id: args.message_id.as_deref(),
        expiration: args.expiration.as_deref(),
        priority: args.priority,
        headers: &headers,
        ..shmq::Properties::new()
    };
    let pad = |mut body: Vec<u8>| {
        if let Some(size) = args.size {
            body.resize(size, b'.');
        }
        body
    };
    let mut published = 0u64;
    // Messages no queue took (unroutable), and refusals by full queues:
    // said, and the command fails, never a silent loss.
    let (mut unroutable, mut refused) = (0u64, 0u64);
    let started = Instant::now();
    let mut send = |body: Vec<u8>| -> CliResult {
        match &mut sink {
            Sink::Queue(p) => p.publish_with(&props, &body)?,
            Sink::Exchange(p, exchange) => {
                let routed = if args.mandatory {
                    p.publish_mandatory(exchange, &args.queue, &props, &body)?
                } else {
                    p.publish(exchange, &args.queue, &props, &body)?
                };
                refused += routed.full as u64;
                if routed.queues == 0 {
                    unroutable += 1;
                    return Ok(());
                }
            }
        }
        published += 1;
        if args.verbose {
            println!("published {}", String::from_utf8_lossy(&body));
        }
        if args.interval_ms > 0 {
            std::thread::sleep(Duration::from_millis(args.interval_ms));
        }
        Ok(())
    };
    match args.count {
        Some(count) => {
            let template = String::from_utf8_lossy(&bodies[0]).into_owned();
            for i in 0..count {
                send(pad(template.replace("{i}", &i.to_string()).into_bytes()))?;
            }
        }
        None => {
            for body in bodies {
                send(pad(body))?;
            }
        }
    }
    let elapsed = started.elapsed();
    if cli.json {
        println!(
            "{}",
            json!({"queue": args.queue, "published": published, "unroutable": unroutable, "refused": refused,
                   "seconds": elapsed.as_secs_f64()})
        );
    } else if !args.verbose {
        match &args.exchange {
            Some(exchange) => println!("published {published} messages to exchange '{exchange}' with routing key '{}'", args.queue),
            None => println!("published {published} messages to '{}'", args.queue),
        }
    }
    let mut lost = Vec::new();
    if unroutable > 0 {
        lost.push(format!("{unroutable} messages were unroutable (no queue is bound for routing key '{}') and were dropped", args.queue));
    }
    if refused > 0 {
        lost.push(format!("{refused} times a full queue (overflow reject-publish) refused a message"));
    }
    if lost.is_empty() {
        Ok(())
    } else {
        Err(lost.join("; ").into())
    }
}

enum Sink {
    // Both boxed: the two differ in size, and neither is small.
    Queue(Box<shmq::Producer>),
    Exchange(Box<shmq::Publisher>, String),
}

pub fn consume(cli: &Cli, args: &ConsumeArgs) -> CliResult {
    let ns = namespace(cli)?;
    let mut queue = args.queue.clone();
    if queue.is_empty() || args.declare {
        let options = shmq::QueueOptions::default().exclusive(queue.is_empty());
        queue = ns.declare_queue(&queue, &options)?.name;
    }
    for spec in &args.bind {
        let (exchange, key) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
        ns.bind_queue(&queue, exchange, key, &[])?;
    }
    if args.announce {
        eprintln!("ready {queue}");
    }
    let mut options = shmq::ConsumerOptions::default().prefetch(args.prefetch).busy_poll(args.busy_poll).priority(args.priority);
    if args.exclusive {
        options = options.exclusive();
    }
    if args.manual_ack || args.requeue {
        options = options.manual_ack();
    }
    let consumer = ns.consumer(&queue, options)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut received = 0u64;
    let idle = args.idle_exit_ms.map(Duration::from_millis);
    while args.count.is_none_or(|c| received < c) {
        let delivery = match idle {
            Some(idle) => match consumer.recv_timeout(idle) {
                Ok(d) => d,
                Err(shmq::RecvError::Timeout) => break,
                Err(e) => return Err(e.into()),
            },
            None => consumer.recv()?,
        };
        received += 1;
        if args.work_ms > 0 {
            std::thread::sleep(Duration::from_millis(args.work_ms));
        }
        if !args.quiet {
            let body = String::from_utf8_lossy(delivery.body());
            if cli.json {
                let p = delivery.properties();
                writeln!(
                    out,
                    "{}",
                    json!({"body": body, "redelivered": delivery.redelivered(), "correlation_id": p.correlation_id,
                           "reply_to": p.reply_to, "message_id": p.message_id, "content_type": p.content_type})
                )?;
            } else {
                writeln!(out, "{}{}\t{}", args.label, body, u8::from(delivery.redelivered()))?;
            }
            out.flush()?;
        }
        if args.requeue {
            delivery.nack(true)?;
        } else if args.manual_ack {
            delivery.ack()?;
        }
    }
    if args.quiet {
        writeln!(out, "{}received {received}", args.label)?;
    }
    Ok(())
}

fn message_json(body: &[u8], redelivered: bool, p: &shmq::PropertiesRef<'_>) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> = p.headers.iter().map(|(k, v)| (k.to_owned(), header_json(v))).collect();
    json!({"body": String::from_utf8_lossy(body), "redelivered": redelivered, "routing_key": p.routing_key,
           "exchange": p.exchange, "correlation_id": p.correlation_id, "reply_to": p.reply_to,
           "message_id": p.message_id, "content_type": p.content_type, "expiration": p.expiration,
           "headers": headers})
}

/// A header value as JSON: tables as objects, arrays as arrays, timestamps
/// as seconds, byte strings as `{"bytes": "<hex>"}`.
fn header_json(value: shmq::HeaderValue<'_>) -> serde_json::Value {
    use shmq::HeaderValue as V;
    match value {
        V::Str(s) => json!(s),
        V::Bytes(b) => json!({"bytes": b.iter().map(|x| format!("{x:02x}")).collect::<String>()}),
        V::Int(i) => json!(i),
        V::Float(f) => json!(f),
        V::Bool(b) => json!(b),
        V::Void => serde_json::Value::Null,
        V::Timestamp(t) => json!(t),
        V::Decimal { scale, value } => json!({"decimal": value, "scale": scale}),
        V::Table(t) => serde_json::Value::Object(t.iter().map(|(k, v)| (k.to_owned(), header_json(v))).collect()),
        V::Array(a) => serde_json::Value::Array(a.iter().map(header_json).collect()),
    }
}

/// `x-death` in one cell: `reason@queue×count`, newest first; `-` if none.
fn deaths_cell(p: &shmq::PropertiesRef<'_>) -> String {
    let Some(shmq::HeaderValue::Array(deaths)) = p.headers.get("x-death") else { return "-".to_owned() };
    let text = |t: &shmq::Headers<'_>, k: &str| match t.get(k) {
        Some(shmq::HeaderValue::Str(s)) => s.to_owned(),
        _ => "?".to_owned(),
    };
    let cells: Vec<String> = deaths
        .iter()
        .filter_map(|v| match v {
            shmq::HeaderValue::Table(t) => {
                let count = match t.get("count") {
                    Some(shmq::HeaderValue::Int(n)) => n,
                    _ => 0,
                };
                Some(format!("{}@{}×{count}", text(&t, "reason"), text(&t, "queue")))
            }
            _ => None,
        })
        .collect();
    cells.join(", ")
}

fn message_row(body: &[u8], redelivered: bool, p: &shmq::PropertiesRef<'_>) -> Vec<String> {
    vec![
        String::from_utf8_lossy(body).into_owned(),
        body.len().to_string(),
        redelivered.to_string(),
        p.routing_key.unwrap_or("").to_owned(),
        p.exchange.unwrap_or("").to_owned(),
        deaths_cell(p),
    ]
}

const MESSAGE_HEADERS: [&str; 6] = ["payload", "bytes", "redelivered", "routing_key", "exchange", "x-death"];

pub fn get(cli: &Cli, queue: &str, count: usize, ack: bool) -> CliResult {
    let ns = namespace(cli)?;
    // `get` is AMQP's basic.get: no consumer.
    let consumer = ns.consumer(queue, shmq::ConsumerOptions::default().manual_ack().for_get())?;
    let mut rows = Vec::new();
    let mut values = Vec::new();
    let mut tags = Vec::new();
    while rows.len() < count {
        let Ok(d) = consumer.try_recv() else { break };
        let p = d.properties();
        values.push(message_json(d.body(), d.redelivered(), &p));
        rows.push(message_row(d.body(), d.redelivered(), &p));
        tags.push(d.tag());
    }
    for tag in tags {
        if ack {
            consumer.ack(tag)?;
        } else {
            consumer.nack(tag, true)?;
        }
    }
    if cli.json {
        println!("{}", serde_json::Value::Array(values));
    } else if rows.is_empty() {
        println!("queue '{queue}' has no ready messages");
    } else {
        print!("{}", super::table(&MESSAGE_HEADERS, &rows));
    }
    Ok(())
}

pub fn peek(cli: &Cli, queue: &str, count: usize) -> CliResult {
    let ns = namespace(cli)?;
    let seen = ns.peek(queue, count)?;
    if cli.json {
        let v: Vec<_> = seen.iter().map(|m| message_json(&m.body, m.redelivered, &m.properties())).collect();
        println!("{}", serde_json::Value::Array(v));
    } else if seen.is_empty() {
        println!("queue '{queue}' has no ready messages");
    } else {
        let rows: Vec<_> = seen.iter().map(|m| message_row(&m.body, m.redelivered, &m.properties())).collect();
        print!("{}", super::table(&MESSAGE_HEADERS, &rows));
    }
    Ok(())
}
