//! `shmq export` / `shmq import`: a namespace's topology in RabbitMQ's
//! definitions JSON (the format of `rabbitmqctl export_definitions` and the
//! management UI), so that a topology moves between shmq and RabbitMQ.

use serde_json::{json, Map, Value};

use super::{namespace, Cli, CliResult};

/// shmq's own overflow policy, kept beside the RabbitMQ one so that an
/// export imports back exactly (RabbitMQ has no queue-level `block`).
const SHMQ_OVERFLOW: &str = "x-shmq-overflow";
const SHMQ_MAX_MESSAGE: &str = "x-shmq-max-message-bytes";
/// shmq's first-ring size, kept across export and import.
const SHMQ_CAPACITY: &str = "x-shmq-capacity-bytes";

pub(crate) fn arg_json(v: &shmq::ArgValue) -> Value {
    match v {
        shmq::ArgValue::Str(s) => json!(s),
        shmq::ArgValue::Int(i) => json!(i),
        shmq::ArgValue::Bool(b) => json!(b),
        shmq::ArgValue::Void => Value::Null,
    }
}

fn json_arg(v: &Value) -> shmq::ArgValue {
    match v {
        Value::String(s) => shmq::ArgValue::Str(s.clone()),
        Value::Bool(b) => shmq::ArgValue::Bool(*b),
        Value::Number(n) => n.as_i64().map_or_else(|| shmq::ArgValue::Str(n.to_string()), shmq::ArgValue::Int),
        Value::Null => shmq::ArgValue::Void,
        other => shmq::ArgValue::Str(other.to_string()),
    }
}

/// The namespace's definitions as RabbitMQ definitions JSON.
pub fn export_value(ns: &shmq::Namespace) -> Result<Value, Box<dyn std::error::Error>> {
    let mut queues = Vec::new();
    for name in ns.list_queues()? {
        let stats = match ns.queue_stats(&name) {
            Ok(s) => s,
            Err(shmq::Error::QueueNotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        // Exclusive (server-named) queues are transient, as in RabbitMQ.
        if name.starts_with("amq.gen-") {
            continue;
        }
        let o = &stats.options;
        let mut args: Map<String, Value> = o.arguments().iter().map(|(k, v)| (k.clone(), arg_json(v))).collect();
        if o.overflow == Some(shmq::Overflow::Block) {
            // RabbitMQ has no `block`: it refuses instead; shmq's own key
            // keeps the policy for a re-import here.
            args.insert("x-overflow".into(), json!("reject-publish"));
            args.insert(SHMQ_OVERFLOW.into(), json!("block"));
        }
        args.insert(SHMQ_CAPACITY.into(), json!(o.capacity_bytes));
        args.insert(SHMQ_MAX_MESSAGE.into(), json!(o.max_message_bytes));
        queues.push(json!({"name": name, "vhost": "/", "durable": true, "auto_delete": false, "arguments": args}));
    }
    let exchanges: Vec<Value> = ns
        .list_exchanges()?
        .into_iter()
        .filter(|e| !e.builtin)
        .map(|e| {
            let mut args = Map::new();
            if let Some(a) = &e.options.alternate_exchange {
                args.insert("alternate-exchange".into(), json!(a));
            }
            json!({"name": e.name, "vhost": "/", "type": e.options.kind.to_string(), "durable": true,
                   "auto_delete": e.options.auto_delete, "internal": e.options.internal, "arguments": args})
        })
        .collect();
    let bindings: Vec<Value> = ns
        .list_bindings()?
        .into_iter()
        .filter(|b| !b.destination.name().starts_with("amq.gen-"))
        .map(|b| {
            let kind = if matches!(b.destination, shmq::Destination::Queue(_)) { "queue" } else { "exchange" };
            let args: Map<String, Value> = b.arguments.iter().map(|(k, v)| (k.clone(), arg_json(v))).collect();
            json!({"source": b.source, "vhost": "/", "destination": b.destination.name(), "destination_type": kind,
                   "routing_key": b.key, "arguments": args})
        })
        .collect();
    Ok(json!({
        "rabbit_version": "3.13.0",
        "rabbitmq_version": "3.13.0",
        "product_name": "shmq",
        "product_version": env!("CARGO_PKG_VERSION"),
        "users": [], "vhosts": [{"name": "/"}], "permissions": [], "topic_permissions": [],
        "parameters": [], "global_parameters": [], "policies": [],
        "queues": queues, "exchanges": exchanges, "bindings": bindings,
    }))
}

/// Declares everything in RabbitMQ definitions JSON; returns counts.
pub fn import_value(ns: &shmq::Namespace, defs: &Value) -> Result<(usize, usize, usize), Box<dyn std::error::Error>> {
    let list = |key: &str| defs.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let str_of = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut counts = (0, 0, 0);
    for q in list("queues") {
        let name = str_of(&q, "name");
        let args = q.get("arguments").cloned().unwrap_or(Value::Null);
        // Refused, not dropped silently: arguments shmq does not implement
        // (QueueOptions::with_arguments names them).
        let mut theirs = Vec::new();
        let mut options = shmq::QueueOptions::default();
        for (key, value) in args.as_object().into_iter().flatten() {
            match key.as_str() {
                SHMQ_OVERFLOW => options.overflow = Some(value.as_str().unwrap_or_default().parse()?),
                SHMQ_CAPACITY => options.capacity_bytes = value.as_u64().ok_or(format!("queue '{name}': {key} must be a byte count"))?,
                SHMQ_MAX_MESSAGE => {
                    let n = value.as_u64().and_then(|n| u32::try_from(n).ok());
                    options.max_message_bytes = n.ok_or(format!("queue '{name}': {key} must be a byte count below 4 GiB"))?;
                }
                _ => theirs.push((key.clone(), json_arg(value))),
            }
        }
        let ours_overflow = options.overflow.filter(|_| args.get(SHMQ_OVERFLOW).is_some());
        options = options.with_arguments(&name, &theirs)?;
        if ours_overflow.is_some() {
            options.overflow = ours_overflow;
        }
        options = options.auto_delete(q.get("auto_delete").and_then(Value::as_bool).unwrap_or(false));
        ns.declare_queue(&name, &options).map_err(|e| format!("queue '{name}': {e}"))?;
        counts.0 += 1;
    }
    // Exchanges with an alternate exchange after the others, so it exists.
    let mut exchanges = list("exchanges");
    exchanges.sort_by_key(|x| x.get("arguments").and_then(|a| a.get("alternate-exchange")).is_some());
    for x in exchanges {
        let name = str_of(&x, "name");
        if name.is_empty() || name.starts_with("amq.") {
            continue;
        }
        let kind: shmq::ExchangeKind = str_of(&x, "type").parse()?;
        let mut options = shmq::ExchangeOptions::new(kind)
            .auto_delete(x.get("auto_delete").and_then(Value::as_bool).unwrap_or(false))
            .internal(x.get("internal").and_then(Value::as_bool).unwrap_or(false));
        if let Some(a) = x.get("arguments").and_then(|a| a.get("alternate-exchange")).and_then(Value::as_str) {
            options = options.alternate_exchange(a);
        }
        ns.declare_exchange(&name, &options).map_err(|e| format!("exchange '{name}': {e}"))?;
        counts.1 += 1;
    }
    for b in list("bindings") {
        let (source, destination, key) = (str_of(&b, "source"), str_of(&b, "destination"), str_of(&b, "routing_key"));
        let args: Vec<(String, shmq::ArgValue)> = b
            .get("arguments")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), json_arg(v))).collect())
            .unwrap_or_default();
        let result = if str_of(&b, "destination_type") == "exchange" {
            ns.bind_exchange(&destination, &source, &key, &args)
        } else {
            ns.bind_queue(&destination, &source, &key, &args)
        };
        result.map_err(|e| format!("binding {source} -> {destination}: {e}"))?;
        counts.2 += 1;
    }
    Ok(counts)
}

pub fn export(cli: &Cli, file: Option<&std::path::Path>) -> CliResult {
    let value = export_value(&namespace(cli)?)?;
    let text = serde_json::to_string_pretty(&value)?;
    match file {
        Some(path) => std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}

pub fn import(cli: &Cli, file: &std::path::Path) -> CliResult {
    let text = if file == std::path::Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?
    };
    let defs: Value = serde_json::from_str(&text).map_err(|e| format!("{} is not definitions JSON: {e}", file.display()))?;
    let (q, x, b) = import_value(&namespace(cli)?, &defs)?;
    if cli.json {
        println!("{}", json!({"queues": q, "exchanges": x, "bindings": b}));
    } else {
        println!("imported {q} queues, {x} exchanges, {b} bindings");
    }
    Ok(())
}
