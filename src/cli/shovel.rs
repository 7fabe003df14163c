//! `shmq shovel`: moves messages between a shmq queue and a RabbitMQ broker
//! (or another namespace), as RabbitMQ's dynamic shovels do, with their
//! parameter names: `declare`, `delete`, `list`, and `run` (the process
//! that moves them).

mod convert;
pub mod definition;
mod run;
mod tls;

use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use super::{Cli, CliResult};

#[derive(Subcommand, Debug)]
pub enum ShovelCommand {
    /// Define a shovel (replacing one of the same name), with RabbitMQ's
    /// dynamic-shovel parameters.
    Declare(Box<DeclareArgs>),
    /// Remove a shovel's definition (a runner running it stops at its next
    /// restart; stop the runner to stop it now).
    Delete { name: String },
    /// The shovels, with whether a runner runs them, their state, counts
    /// and last error.
    List,
    /// Run shovels (all of the namespace's if none is named) until each is
    /// done; faults are retried after reconnect-delay.
    Run { names: Vec<String> },
    /// The shovel benchmark's baseline: lapin alone against RabbitMQ, with
    /// the shovel's client settings (python/benchmarks/shovel.py).
    #[command(hide = true)]
    Baseline(run::BaselineArgs),
}

#[derive(Args, Debug)]
pub struct DeclareArgs {
    pub name: String,
    /// shm://NAMESPACE, shm:///directory, amqp://user:pass@host:port/vhost
    /// or amqps://...; repeat it for the nodes of a RabbitMQ cluster,
    /// connected to in turn.
    #[arg(long, required = true)]
    src_uri: Vec<String>,
    #[arg(long)]
    src_queue: Option<String>,
    /// Bind a server-named queue to this exchange for the shovel's life.
    #[arg(long)]
    src_exchange: Option<String>,
    /// With --src-exchange (default "#").
    #[arg(long)]
    src_exchange_key: Option<String>,
    /// Unacknowledged messages in flight (default 1000).
    #[arg(long)]
    src_prefetch_count: Option<u16>,
    /// never (default), queue-length, or a count: stop after that many.
    #[arg(long)]
    src_delete_after: Option<String>,
    /// As --src-uri.
    #[arg(long, required = true)]
    dest_uri: Vec<String>,
    #[arg(long)]
    dest_queue: Option<String>,
    #[arg(long)]
    dest_exchange: Option<String>,
    /// With --dest-exchange (default: the message's own routing key).
    #[arg(long)]
    dest_exchange_key: Option<String>,
    /// on-confirm (default), on-publish or no-ack.
    #[arg(long)]
    ack_mode: Option<String>,
    /// Seconds between a fault and the next try (default 5; 0: stop).
    #[arg(long)]
    reconnect_delay: Option<f64>,
    /// Add RabbitMQ's x-shovelled header.
    #[arg(long)]
    dest_add_forward_headers: bool,
    /// Add RabbitMQ's x-shovelled-timestamp header.
    #[arg(long)]
    dest_add_timestamp_header: bool,
}

/// One URI as a string, several (a cluster's nodes) as a list, as
/// RabbitMQ's shovel parameters have them.
fn uris(given: &[String]) -> Value {
    match given {
        [one] => Value::from(one.clone()),
        many => Value::from(many.to_vec()),
    }
}

impl DeclareArgs {
    /// The definition as RabbitMQ's parameter value object.
    fn value(&self) -> Map<String, Value> {
        let mut v = Map::new();
        let mut put = |k: &str, value: Option<Value>| {
            if let Some(value) = value {
                v.insert(k.to_owned(), value);
            }
        };
        put("src-uri", Some(uris(&self.src_uri)));
        put("src-queue", self.src_queue.clone().map(Value::from));
        put("src-exchange", self.src_exchange.clone().map(Value::from));
        put("src-exchange-key", self.src_exchange_key.clone().map(Value::from));
        put("src-prefetch-count", self.src_prefetch_count.map(Value::from));
        put(
            "src-delete-after",
            self.src_delete_after.as_ref().map(|d| d.parse::<u64>().map_or_else(|_| Value::from(d.clone()), Value::from)),
        );
        put("dest-uri", Some(uris(&self.dest_uri)));
        put("dest-queue", self.dest_queue.clone().map(Value::from));
        put("dest-exchange", self.dest_exchange.clone().map(Value::from));
        put("dest-exchange-key", self.dest_exchange_key.clone().map(Value::from));
        put("ack-mode", self.ack_mode.clone().map(Value::from));
        put("reconnect-delay", self.reconnect_delay.map(Value::from));
        put("dest-add-forward-headers", self.dest_add_forward_headers.then_some(Value::Bool(true)));
        put("dest-add-timestamp-header", self.dest_add_timestamp_header.then_some(Value::Bool(true)));
        v
    }
}

pub fn run(cli: &Cli, command: &ShovelCommand) -> CliResult {
    if let ShovelCommand::Baseline(args) = command {
        return run::baseline(args); // no namespace
    }
    let ns = super::namespace(cli)?;
    match command {
        ShovelCommand::Declare(args) => {
            let shovel = definition::Shovel::from_value(&args.name, args.value())?;
            definition::save(&ns, &shovel)?;
            println!("declared shovel {}", shovel.name);
            Ok(())
        }
        ShovelCommand::Delete { name } => {
            definition::remove(&ns, name)?;
            println!("deleted shovel {name}");
            Ok(())
        }
        ShovelCommand::List => list(cli, &ns),
        ShovelCommand::Run { names } => run::run(&ns, names),
        ShovelCommand::Baseline(args) => run::baseline(args),
    }
}

/// Whether a runner holds the shovel's lock, and its last status.
fn status(ns: &shmq::Namespace, name: &str) -> (bool, Value) {
    let dir = definition::shovels_dir(ns);
    let running = definition::open_owned(&dir.join(format!("{name}.lock")), false)
        .is_ok_and(|f| rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared).is_err());
    let status = definition::read_bounded(&dir.join(format!("{name}.status.json")))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .filter(Value::is_object)
        .unwrap_or(Value::Null);
    (running, status)
}

/// One shovel as `shovel list`, `status` and `top` show it.
#[derive(Clone, Debug)]
pub struct ShovelListing {
    pub name: String,
    /// "not running", "invalid", or the state its runner last wrote.
    pub state: String,
    /// Whether a runner holds the shovel's lock.
    pub running: bool,
    /// Source and destination as text, passwords hidden.
    pub src: String,
    pub dest: String,
    /// Messages moved, as its runner last wrote; `None` before any runner.
    pub transferred: Option<u64>,
    pub last_error: Option<String>,
    /// The definition with passwords hidden; `Null` if it does not load.
    pub definition: Value,
}

impl ShovelListing {
    /// The listing as `shovel list --json` prints it.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "name": self.name, "state": self.state, "running": self.running, "src": self.src, "dest": self.dest,
            "transferred": self.transferred, "last_error": self.last_error, "definition": self.definition,
        })
    }

    /// The transferred count for a table: `-` before any runner.
    pub fn transferred_text(&self) -> String {
        self.transferred.map_or_else(|| "-".to_owned(), |n| n.to_string())
    }
}

/// Every shovel of the namespace, by name, with its state, counts and last
/// error (stale as soon as read: a runner rewrites its status as it goes).
///
/// # Errors
/// The shovels folder cannot be read.
pub fn list_shovels(ns: &shmq::Namespace) -> Result<Vec<ShovelListing>, Box<dyn std::error::Error>> {
    let mut listings = Vec::new();
    for name in definition::names(ns)? {
        let (running, status) = status(ns, &name);
        let shovel = definition::load(ns, &name);
        let state = match (&shovel, running) {
            (Err(_), _) => "invalid".to_owned(),
            (Ok(_), true) => status.get("state").and_then(Value::as_str).unwrap_or("starting").to_owned(),
            (Ok(_), false) => "not running".to_owned(),
        };
        let (src, dest) = match &shovel {
            Ok(s) => (endpoint_text(&s.value, "src"), endpoint_text(&s.value, "dest")),
            Err(e) => (e.to_string(), String::new()),
        };
        listings.push(ShovelListing {
            state,
            running,
            src,
            dest,
            transferred: status.get("transferred").and_then(Value::as_u64),
            last_error: status.get("last_error").and_then(Value::as_str).map(str::to_owned),
            definition: shovel.as_ref().map(|s| redacted(&s.value)).unwrap_or(Value::Null),
            name,
        });
    }
    Ok(listings)
}

fn list(cli: &Cli, ns: &shmq::Namespace) -> CliResult {
    let listings = list_shovels(ns)?;
    if cli.json {
        println!("{}", Value::Array(listings.iter().map(ShovelListing::to_json).collect()));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = listings
        .into_iter()
        .map(|l| {
            let transferred = l.transferred_text();
            vec![l.name, l.state, l.src, l.dest, transferred, l.last_error.unwrap_or_default()]
        })
        .collect();
    print!("{}", super::table(&["name", "state", "source", "destination", "transferred", "last error"], &rows));
    Ok(())
}

/// A definition with its URIs' passwords hidden.
fn redacted(value: &Map<String, Value>) -> Value {
    let mut shown = value.clone();
    for key in ["src-uri", "dest-uri"] {
        let hidden = match shown.get(key) {
            Some(Value::String(uri)) => Value::String(definition::redact(uri)),
            // A cluster's nodes.
            Some(Value::Array(uris)) => {
                Value::Array(uris.iter().map(|u| u.as_str().map_or(Value::Null, |u| Value::String(definition::redact(u)))).collect())
            }
            _ => continue,
        };
        shown.insert(key.to_owned(), hidden);
    }
    Value::Object(shown)
}

/// "uri queue" or "uri exchange/key" for a listing (passwords hidden).
fn endpoint_text(value: &Map<String, Value>, side: &str) -> String {
    let get = |k: &str| value.get(&format!("{side}-{k}")).and_then(Value::as_str).unwrap_or("");
    let uri = match value.get(&format!("{side}-uri")) {
        // A cluster's nodes, space-separated.
        Some(Value::Array(uris)) => uris.iter().filter_map(Value::as_str).map(definition::redact).collect::<Vec<_>>().join(" "),
        _ => definition::redact(get("uri")),
    };
    match (get("queue"), get("exchange")) {
        (q, _) if !q.is_empty() => format!("{uri} queue {q}"),
        (_, x) if !x.is_empty() => format!("{uri} exchange {x}/{}", get("exchange-key")),
        _ => uri,
    }
}
