//! Management subcommands: the rabbitmqctl side of shmq.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::{namespace, table, Cli, CliResult, Command};

#[derive(Args, Debug)]
pub struct DeclareArgs {
    /// Queue name.
    pub name: String,
    /// Bytes of the queue's first ring (default 8 MiB); it grows beyond.
    #[arg(long)]
    pub capacity: Option<u64>,
    /// Most ready messages (RabbitMQ's x-max-length).
    #[arg(long)]
    pub max_length: Option<u64>,
    /// Most body bytes of ready messages (RabbitMQ's x-max-length-bytes).
    #[arg(long)]
    pub max_length_bytes: Option<u64>,
    /// Largest message (body plus properties) in bytes.
    #[arg(long)]
    pub max_message: Option<u32>,
    /// At max-length/max-length-bytes: drop-head (RabbitMQ's default),
    /// reject-publish, reject-publish-dlx or block.
    #[arg(long)]
    pub overflow: Option<shmq::Overflow>,
    /// Message TTL in milliseconds.
    #[arg(long)]
    pub ttl_ms: Option<u64>,
    /// Republish rejected, expired, dropped and over-delivered messages to
    /// this exchange ("" is the default exchange): x-dead-letter-exchange.
    #[arg(long)]
    pub dead_letter_exchange: Option<String>,
    /// The routing key dead-lettered messages get (x-dead-letter-routing-key).
    #[arg(long)]
    pub dead_letter_routing_key: Option<String>,
    /// Dead-letter (or drop) a message requeued more than this many times
    /// (x-delivery-limit).
    #[arg(long)]
    pub delivery_limit: Option<u32>,
    /// Delete the queue once unused this many milliseconds (x-expires).
    #[arg(long = "expires", alias = "expires-ms", value_name = "MS")]
    pub expires_ms: Option<u64>,
    /// Make it a priority queue of levels 0..=N, N in 1..=255
    /// (x-max-priority): higher priorities are delivered first.
    #[arg(long, value_name = "N")]
    pub max_priority: Option<u8>,
    /// Declare it durable (AMQP's durable flag: kept and compared on
    /// redeclare, as RabbitMQ does).
    #[arg(long)]
    pub durable: bool,
    /// Delete the queue when its last consumer goes (after it had one).
    #[arg(long)]
    pub auto_delete: bool,
    /// One consumer at a time receives; the next registered takes over when
    /// it goes (x-single-active-consumer).
    #[arg(long)]
    pub single_active_consumer: bool,
    /// Any RabbitMQ queue argument, as KEY=VALUE (an integer, true/false,
    /// or text); repeat for more. Unsupported arguments are refused.
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    pub arguments: Vec<String>,
    /// Only check that the queue exists.
    #[arg(long)]
    pub passive: bool,
}

impl DeclareArgs {
    /// The queue options these flags ask for.
    ///
    /// # Errors
    /// A malformed `--arg`, or an argument `QueueOptions::with_arguments`
    /// refuses.
    pub fn options(&self) -> Result<shmq::QueueOptions, Box<dyn std::error::Error>> {
        let mut options = shmq::QueueOptions {
            overflow: self.overflow,
            dead_letter_exchange: self.dead_letter_exchange.clone(),
            dead_letter_routing_key: self.dead_letter_routing_key.clone(),
            delivery_limit: self.delivery_limit,
            expires: self.expires_ms.map(Duration::from_millis),
            single_active_consumer: self.single_active_consumer,
            durable: self.durable,
            auto_delete: self.auto_delete,
            max_priority: self.max_priority,
            ..Default::default()
        };
        if let Some(bytes) = self.capacity {
            options = options.capacity_bytes(bytes);
        }
        if let Some(n) = self.max_length {
            options = options.max_length(n);
        }
        if let Some(n) = self.max_length_bytes {
            options = options.max_length_bytes(n);
        }
        if let Some(n) = self.max_message {
            options = options.max_message_bytes(n);
        }
        if let Some(ms) = self.ttl_ms {
            options = options.message_ttl(Duration::from_millis(ms));
        }
        Ok(options.with_arguments(&self.name, &parse_arguments(&self.arguments)?)?)
    }
}

#[derive(Args, Debug)]
pub struct ExchangeArgs {
    /// Exchange name.
    pub name: String,
    /// direct, fanout, topic or headers.
    #[arg(long = "type", short = 't', default_value = "direct")]
    pub kind: shmq::ExchangeKind,
    /// Delete when the last binding goes.
    #[arg(long)]
    pub auto_delete: bool,
    /// Only other exchanges may publish to it.
    #[arg(long)]
    pub internal: bool,
    /// Declare it durable (kept, compared on redeclare and exported, as
    /// RabbitMQ does).
    #[arg(long)]
    pub durable: bool,
    /// Where unroutable messages go.
    #[arg(long)]
    pub alternate_exchange: Option<String>,
}

#[derive(Args, Debug)]
pub struct BindArgs {
    /// Source exchange.
    pub exchange: String,
    /// Destination queue (or exchange, with --to-exchange).
    pub destination: String,
    /// Binding key.
    #[arg(long, short = 'k', default_value = "")]
    pub key: String,
    /// The destination is an exchange.
    #[arg(long)]
    pub to_exchange: bool,
    /// Binding arguments as NAME=VALUE (headers exchanges; x-match=all|any).
    #[arg(long = "arg")]
    pub arguments: Vec<String>,
}

/// Parses NAME=VALUE binding arguments: integers and true/false are typed.
pub fn parse_arguments(raw: &[String]) -> Result<Vec<(String, shmq::ArgValue)>, String> {
    raw.iter()
        .map(|a| {
            let (k, v) = a.split_once('=').ok_or_else(|| format!("argument '{a}' is not NAME=VALUE"))?;
            let value = if let Ok(i) = v.parse::<i64>() {
                shmq::ArgValue::Int(i)
            } else if let Ok(b) = v.parse::<bool>() {
                shmq::ArgValue::Bool(b)
            } else {
                shmq::ArgValue::Str(v.to_owned())
            };
            Ok((k.to_owned(), value))
        })
        .collect()
}

pub fn run(cli: &Cli) -> CliResult {
    match &cli.command {
        Command::DeclareExchange(args) => {
            let mut options =
                shmq::ExchangeOptions::new(args.kind).auto_delete(args.auto_delete).internal(args.internal).durable(args.durable);
            if let Some(a) = &args.alternate_exchange {
                options = options.alternate_exchange(a);
            }
            namespace(cli)?.declare_exchange(&args.name, &options)?;
            say(
                cli,
                &format!("exchange '{}' ({}) ready", args.name, args.kind),
                json!({"exchange": args.name, "type": args.kind.to_string()}),
            );
            Ok(())
        }
        Command::DeleteExchange { name, if_unused } => {
            namespace(cli)?.delete_exchange(name, *if_unused)?;
            say(cli, &format!("deleted exchange '{name}'"), json!({"deleted": name}));
            Ok(())
        }
        Command::Bind(args) | Command::Unbind(args) => {
            let ns = namespace(cli)?;
            let arguments = parse_arguments(&args.arguments)?;
            let bind = matches!(cli.command, Command::Bind(_));
            match (bind, args.to_exchange) {
                (true, false) => ns.bind_queue(&args.destination, &args.exchange, &args.key, &arguments)?,
                (false, false) => ns.unbind_queue(&args.destination, &args.exchange, &args.key, &arguments)?,
                (true, true) => ns.bind_exchange(&args.destination, &args.exchange, &args.key, &arguments)?,
                (false, true) => ns.unbind_exchange(&args.destination, &args.exchange, &args.key, &arguments)?,
            }
            let verb = if bind { "bound" } else { "unbound" };
            say(
                cli,
                &format!("{verb} '{}' to '{}' with key '{}'", args.destination, args.exchange, args.key),
                json!({verb: {"source": args.exchange, "destination": args.destination, "key": args.key}}),
            );
            Ok(())
        }
        Command::ListConsumers => {
            let ns = namespace(cli)?;
            let handles = ns.list_consumers()?;
            if cli.json {
                println!("{}", serde_json::Value::Array(handles.iter().map(handle_json).collect()));
                return Ok(());
            }
            println!("Listing consumers and producers for namespace '{}' ...", ns.name());
            let rows: Vec<Vec<String>> = handles
                .iter()
                .map(|h| {
                    vec![
                        h.queue.clone(),
                        h.role.to_string(),
                        h.pid.to_string(),
                        if h.alive { "alive" } else { "dead" }.to_string(),
                        h.prefetch.to_string(),
                        h.unacked.to_string(),
                        h.published.to_string(),
                        h.delivered.to_string(),
                        h.acked.to_string(),
                        if h.role == "consumer" { h.active.to_string() } else { String::new() },
                    ]
                })
                .collect();
            print!(
                "{}",
                table(&["queue", "role", "pid", "state", "prefetch", "unacked", "published", "delivered", "acked", "active"], &rows)
            );
            Ok(())
        }
        Command::ListExchanges => {
            let ns = namespace(cli)?;
            let exchanges = ns.list_exchanges()?;
            if cli.json {
                println!("{}", serde_json::Value::Array(exchanges.iter().map(|e| exchange_json(&ns, e)).collect()));
                return Ok(());
            }
            println!("Listing exchanges for namespace '{}' ...", ns.name());
            let (dp, du) = ns.exchange_stats("");
            let mut rows = vec![vec!["(default)".to_string(), "direct".to_string(), String::new(), dp.to_string(), du.to_string()]];
            rows.extend(exchanges.iter().map(|e| {
                let (published, unroutable) = ns.exchange_stats(&e.name);
                vec![e.name.clone(), e.options.kind.to_string(), exchange_flags(e), published.to_string(), unroutable.to_string()]
            }));
            print!("{}", table(&["name", "type", "flags", "published", "unroutable"], &rows));
            Ok(())
        }
        Command::ListBindings => {
            let ns = namespace(cli)?;
            let bindings = ns.list_bindings()?;
            let kind = |d: &shmq::Destination| if matches!(d, shmq::Destination::Queue(_)) { "queue" } else { "exchange" };
            if cli.json {
                let v: Vec<_> = bindings
                    .iter()
                    .map(|b| json!({"source": b.source, "destination": b.destination.name(), "destination_type": kind(&b.destination),
                                     "routing_key": b.key, "arguments": b.arguments.iter().map(|(k, v)| (k.clone(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>()}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
                return Ok(());
            }
            println!("Listing bindings for namespace '{}' ...", ns.name());
            let rows: Vec<Vec<String>> = bindings
                .iter()
                .map(|b| {
                    let args: Vec<String> = b.arguments.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    vec![
                        b.source.clone(),
                        b.destination.name().to_string(),
                        kind(&b.destination).to_string(),
                        b.key.clone(),
                        args.join(","),
                    ]
                })
                .collect();
            print!("{}", table(&["source", "destination", "destination_type", "routing_key", "arguments"], &rows));
            Ok(())
        }
        Command::Status => status(cli),
        Command::ListQueues { rates, columns } if !columns.is_empty() => {
            if *rates {
                return Err("--rates shows the full table; leave out the columns, or --rates".into());
            }
            list_queue_columns(cli, columns)
        }
        Command::ListQueues { rates, .. } => list_queues(cli, *rates),
        Command::ListPeers => list_peers(cli),
        Command::DeclareQueue(args) => declare(cli, args),
        Command::DeleteQueue { name, if_unused, if_empty } => {
            namespace(cli)?.delete_queue_if(name, *if_unused, *if_empty)?;
            say(cli, &format!("deleted queue '{name}'"), json!({"deleted": name}));
            Ok(())
        }
        Command::Purge { name } => {
            let purged = namespace(cli)?.purge_queue(name)?;
            say(cli, &format!("purged {purged} messages from '{name}'"), json!({"queue": name, "purged": purged}));
            Ok(())
        }
        Command::Gc => {
            let ns = namespace(cli)?;
            let report = ns.collect_garbage()?;
            let kept = ns.housekeep()?;
            say(
                cli,
                &format!(
                    "requeued {} unacked messages of dead consumers, skipped {} half-written messages of dead producers, freed {} handles, \
                     dead-lettered {} expired messages, deleted {} queues unused past their x-expires",
                    report.requeued, report.abandoned, report.agents_freed, kept.dead_lettered, kept.queues_expired
                ),
                json!({"requeued": report.requeued, "abandoned": report.abandoned, "agents_freed": report.agents_freed,
                       "dead_lettered": kept.dead_lettered, "queues_expired": kept.queues_expired}),
            );
            Ok(())
        }
        Command::Reset { force } => reset(cli, *force),
        _ => unreachable!("dispatched elsewhere"),
    }
}

/// An attached handle as `list-consumers --json` prints it.
pub(super) fn handle_json(h: &shmq::HandleInfo) -> serde_json::Value {
    json!({"queue": h.queue, "role": h.role, "pid": h.pid, "alive": h.alive, "prefetch": h.prefetch,
           "unacked": h.unacked, "published": h.published, "delivered": h.delivered, "acked": h.acked,
           "active": h.active})
}

/// An exchange as `list-exchanges --json` prints it, with its counters.
pub(super) fn exchange_json(ns: &shmq::Namespace, e: &shmq::ExchangeInfo) -> serde_json::Value {
    let (published, unroutable) = ns.exchange_stats(&e.name);
    json!({"name": e.name, "type": e.options.kind.to_string(), "auto_delete": e.options.auto_delete,
           "internal": e.options.internal, "alternate_exchange": e.options.alternate_exchange, "builtin": e.builtin,
           "published": published, "unroutable": unroutable})
}

/// An exchange's flags for a table: `auto-delete,internal,alternate-exchange=X`.
pub(super) fn exchange_flags(e: &shmq::ExchangeInfo) -> String {
    let mut flags = Vec::new();
    if e.options.auto_delete {
        flags.push("auto-delete".to_string());
    }
    if e.options.internal {
        flags.push("internal".to_string());
    }
    if let Some(a) = &e.options.alternate_exchange {
        flags.push(format!("alternate-exchange={a}"));
    }
    flags.join(",")
}

fn say(cli: &Cli, text: &str, value: serde_json::Value) {
    if cli.json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

fn declare(cli: &Cli, args: &DeclareArgs) -> CliResult {
    let ns = namespace(cli)?;
    let stats = if args.passive { ns.declare_queue_passive(&args.name)? } else { ns.declare_queue(&args.name, &args.options()?)? };
    say(
        cli,
        &format!("queue '{}' ready: {} messages, {} consumers", stats.name, stats.ready, stats.consumers),
        json!({"queue": stats.name, "messages": stats.ready, "consumers": stats.consumers}),
    );
    Ok(())
}

/// A queue as `list-queues --json` prints it.
pub(super) fn stats_json(s: &shmq::QueueStats) -> serde_json::Value {
    json!({
        "name": s.name, "messages_ready": s.ready, "messages_unacked": s.unacked,
        "consumers": s.consumers, "producers": s.producers, "bytes_used": s.bytes_used,
        "capacity_bytes": s.capacity_bytes, "rings": s.rings,
        "max_length": s.options.max_length, "max_length_bytes": s.options.max_length_bytes,
        "max_message_bytes": s.options.max_message_bytes, "overflow": s.options.overflow_policy().to_string(),
        "message_ttl_ms": s.options.message_ttl.map(|d| d.as_millis() as u64),
        "published": s.published, "delivered": s.delivered, "acked": s.acked,
        "redelivered": s.redelivered, "dropped": s.dropped, "expired": s.expired,
        "dead_lettered": s.dead_lettered,
        "dead_letter_exchange": s.options.dead_letter_exchange, "dead_letter_routing_key": s.options.dead_letter_routing_key,
        "delivery_limit": s.options.delivery_limit, "expires_ms": s.options.expires.map(|d| d.as_millis() as u64),
        "type": s.options.queue_type.to_string(),
        "single_active_consumer": s.options.single_active_consumer, "max_priority": s.options.max_priority,
        "arguments": s.options.arguments().iter().map(|(k, v)| (k.clone(), super::definitions::arg_json(v))).collect::<serde_json::Map<_, _>>(),
    })
}

/// Stats of every queue, by name; queues deleted meanwhile are left out.
pub(super) fn all_stats(ns: &shmq::Namespace) -> Result<Vec<shmq::QueueStats>, shmq::Error> {
    let mut out = Vec::new();
    for name in ns.list_queues()? {
        match ns.queue_stats(&name) {
            Ok(s) => out.push(s),
            // Deleted between listing and opening: not an error.
            Err(shmq::Error::QueueNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn list_queues(cli: &Cli, with_rates: bool) -> CliResult {
    let ns = namespace(cli)?;
    let stats = all_stats(&ns)?;
    // Rates: the same counters one second later.
    let rates: Vec<Option<(f64, f64, f64)>> = if with_rates {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let later = all_stats(&ns)?;
        stats
            .iter()
            .map(|s| {
                later.iter().find(|l| l.name == s.name).map(|l| {
                    let d = |a: u64, b: u64| a.saturating_sub(b) as f64;
                    (d(l.published, s.published), d(l.delivered, s.delivered), d(l.acked, s.acked))
                })
            })
            .collect()
    } else {
        vec![None; stats.len()]
    };
    if cli.json {
        let v: Vec<_> = stats
            .iter()
            .zip(&rates)
            .map(|(s, r)| {
                let mut v = stats_json(s);
                if let Some((p, d, a)) = r {
                    v["publish_rate"] = json!(p);
                    v["deliver_rate"] = json!(d);
                    v["ack_rate"] = json!(a);
                }
                v
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    println!("Listing queues for namespace '{}' ...", ns.name());
    let mut headers =
        vec!["name", "messages_ready", "messages_unacked", "consumers", "bytes", "rings", "overflow", "published", "acked", "dead_letter"];
    if with_rates {
        headers.extend(["publish/s", "deliver/s", "ack/s"]);
    }
    let rows: Vec<Vec<String>> = stats
        .iter()
        .zip(&rates)
        .map(|(s, r)| {
            let mut row = vec![
                s.name.clone(),
                s.ready.to_string(),
                s.unacked.to_string(),
                s.consumers.to_string(),
                format!("{}/{}", s.bytes_used, s.capacity_bytes),
                s.rings.to_string(),
                s.options.overflow_policy().to_string(),
                s.published.to_string(),
                s.acked.to_string(),
                dead_letter_summary(s),
            ];
            if let Some((p, d, a)) = r {
                row.extend([format!("{p:.0}"), format!("{d:.0}"), format!("{a:.0}")]);
            }
            row
        })
        .collect();
    print!("{}", table(&headers, &rows));
    let (in_use, budget) = (ns.memory_in_use(), ns.memory_budget());
    println!("Memory: {in_use} of a {budget}-byte budget in queue rings ({})", percent(in_use, budget));
    Ok(())
}

/// The columns `list-queues COLUMN...` knows: rabbitmqctl's names first.
const QUEUE_COLUMNS: &[&str] = &[
    "name",
    "messages",
    "messages_ready",
    "messages_unacknowledged",
    "consumers",
    "durable",
    "auto_delete",
    "exclusive",
    "arguments",
    "type",
    "message_bytes",
    "published",
    "delivered",
    "acked",
    "redelivered",
    "dropped",
    "expired",
    "dead_lettered",
];

/// One column of a queue, as JSON (for `--json`) and as shown.
fn queue_column(s: &shmq::QueueStats, column: &str) -> serde_json::Value {
    let o = &s.options;
    match column {
        "name" => json!(s.name),
        "messages" => json!(s.ready + s.unacked),
        "messages_ready" => json!(s.ready),
        "messages_unacknowledged" => json!(s.unacked),
        "consumers" => json!(s.consumers),
        "durable" => json!(o.durable),
        "auto_delete" => json!(o.auto_delete),
        "exclusive" => json!(o.exclusive),
        "arguments" => {
            json!(o.arguments().iter().map(|(k, v)| (k.clone(), super::definitions::arg_json(v))).collect::<serde_json::Map<_, _>>())
        }
        "type" => json!(o.queue_type.to_string()),
        "message_bytes" => json!(s.bytes_used),
        "published" => json!(s.published),
        "delivered" => json!(s.delivered),
        "acked" => json!(s.acked),
        "redelivered" => json!(s.redelivered),
        "dropped" => json!(s.dropped),
        "expired" => json!(s.expired),
        "dead_lettered" => json!(s.dead_lettered),
        _ => serde_json::Value::Null,
    }
}

/// `list-queues COLUMN...`: only those columns, as rabbitmqctl prints them.
fn list_queue_columns(cli: &Cli, columns: &[String]) -> CliResult {
    if let Some(unknown) = columns.iter().find(|c| !QUEUE_COLUMNS.contains(&c.as_str())) {
        let message = format!("unknown column '{unknown}': use any of {}", QUEUE_COLUMNS.join(", "));
        return Err(Box::new(super::Refused { code: 2, message }));
    }
    let ns = namespace(cli)?;
    let stats = all_stats(&ns)?;
    if cli.json {
        let v: Vec<_> =
            stats.iter().map(|s| serde_json::Value::Object(columns.iter().map(|c| (c.clone(), queue_column(s, c))).collect())).collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    println!("Listing queues for namespace '{}' ...", ns.name());
    let shown = |v: serde_json::Value| match v {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = stats.iter().map(|s| columns.iter().map(|c| shown(queue_column(s, c))).collect()).collect();
    let headers: Vec<&str> = columns.iter().map(String::as_str).collect();
    print!("{}", table(&headers, &rows));
    Ok(())
}

/// A queue's dead-letter settings and count for `list-queues`: `-` if none.
fn dead_letter_summary(s: &shmq::QueueStats) -> String {
    let o = &s.options;
    let mut parts = Vec::new();
    if let Some(x) = &o.dead_letter_exchange {
        let key = o.dead_letter_routing_key.as_deref().map(|k| format!(" key '{k}'")).unwrap_or_default();
        parts.push(format!("to '{x}'{key}: {}", s.dead_lettered));
    }
    if let Some(n) = o.delivery_limit {
        parts.push(format!("limit {n}"));
    }
    if let Some(d) = o.expires {
        parts.push(format!("expires {}ms", d.as_millis()));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

/// A peer (token, alive, pid) as `list-peers --json` prints it.
pub(super) fn peer_json((token, alive, pid): (u64, bool, Option<u32>)) -> serde_json::Value {
    json!({"token": format!("{token:016x}"), "alive": alive, "pid": pid})
}

fn list_peers(cli: &Cli) -> CliResult {
    let ns = namespace(cli)?;
    let peers = ns.peers();
    if cli.json {
        println!("{}", serde_json::Value::Array(peers.iter().map(|p| peer_json(*p)).collect()));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = peers
        .iter()
        .map(|(t, alive, pid)| {
            vec![format!("{t:016x}"), pid.map_or("-".into(), |p| p.to_string()), if *alive { "alive" } else { "dead" }.into()]
        })
        .collect();
    print!("{}", table(&["token", "pid", "state"], &rows));
    Ok(())
}

fn status(cli: &Cli) -> CliResult {
    let ns = namespace(cli)?;
    let stats = all_stats(&ns)?;
    let peers = ns.peers();
    let live = peers.iter().filter(|p| p.1).count();
    // Figures from shared memory: saturate, never overflow.
    let used = stats.iter().fold(0u64, |sum, s| sum.saturating_add(s.bytes_used));
    let (in_use, budget) = (ns.memory_in_use(), ns.memory_budget());
    let shovels = super::shovel::list_shovels(&ns)?;
    if cli.json {
        println!(
            "{}",
            json!({"namespace": ns.name(), "path": ns.path(), "layout_version": shmq::LAYOUT_VERSION, "queues": stats.len(),
                   "live_peers": live, "dead_peers": peers.len() - live, "bytes_used": used,
                   "memory_in_use": in_use, "memory_budget": budget,
                   "shovels": shovels.iter().map(super::shovel::ShovelListing::to_json).collect::<Vec<_>>()})
        );
        return Ok(());
    }
    println!("Status of namespace '{}' ({})", ns.name(), ns.path().display());
    println!("  layout version: {}", shmq::LAYOUT_VERSION);
    println!("  queues:         {}", stats.len());
    println!("  peers:          {live} alive, {} dead", peers.len() - live);
    println!("  message bytes:  {used} in use");
    println!("  memory:         {in_use} of a {budget}-byte budget in queue rings ({})", percent(in_use, budget));
    if !shovels.is_empty() {
        println!("  shovels:        {}", shovels.len());
        let rows: Vec<Vec<String>> = shovels
            .into_iter()
            .map(|l| {
                let transferred = l.transferred_text();
                vec![l.name, l.state, transferred, l.last_error.unwrap_or_default()]
            })
            .collect();
        for line in table(&["name", "state", "transferred", "last error"], &rows).lines() {
            println!("    {line}");
        }
    }
    Ok(())
}

/// `part` as a percentage of `whole`, for display.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.1} %", part as f64 * 100.0 / whole as f64)
}

fn reset(cli: &Cli, force: bool) -> CliResult {
    let ns = namespace(cli)?;
    let live: Vec<_> = ns.peers().into_iter().filter(|p| p.1).collect();
    if !live.is_empty() && !force {
        let message = format!(
            "namespace '{}' has {} live processes attached (pids {:?}): stop them, or pass --force",
            ns.name(),
            live.len(),
            live.iter().filter_map(|p| p.2).collect::<Vec<_>>()
        );
        return Err(Box::new(super::Refused { code: 4, message }));
    }
    for name in ns.list_queues()? {
        let _ = ns.delete_queue(&name);
    }
    let path = ns.path().to_path_buf();
    std::fs::remove_dir_all(&path).map_err(|e| format!("could not remove {}: {e}", path.display()))?;
    say(cli, &format!("reset namespace '{}'", ns.name()), json!({"reset": ns.name()}));
    Ok(())
}
