//! `shmq export` / `shmq import`: a namespace's topology in RabbitMQ's
//! definitions JSON (the format of `rabbitmqctl export_definitions` and the
//! management UI), so that a topology moves between shmq and RabbitMQ.

use serde_json::{json, Map, Value};

use super::{namespace, Cli, CliResult};

/// A queue definition's key for shmq's own settings (first-ring size,
/// largest message, a `block` overflow): RabbitMQ's import ignores it, so
/// the queue's `arguments` stay exactly RabbitMQ's and an export imports
/// back here exactly.
const SHMQ_SETTINGS: &str = "shmq";

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
pub fn export_value(ns: &shmq::Namespace, vhost: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let mut queues = Vec::new();
    for name in ns.list_queues()? {
        let stats = match ns.queue_stats(&name) {
            Ok(s) => s,
            Err(shmq::Error::QueueNotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let o = &stats.options;
        // Exclusive queues belong to a connection, and RabbitMQ leaves them
        // out too.
        if o.exclusive {
            continue;
        }
        let mut args: Map<String, Value> = o.arguments().iter().map(|(k, v)| (k.clone(), arg_json(v))).collect();
        let mut ours = json!({"capacity_bytes": o.capacity_bytes, "max_message_bytes": o.max_message_bytes});
        if o.overflow == Some(shmq::Overflow::Block) {
            // RabbitMQ has no `block`; its nearest is reject-publish (the
            // publisher hears no at once instead of waiting).
            args.insert("x-overflow".into(), json!("reject-publish"));
            ours["overflow"] = json!("block");
            eprintln!("warning: queue '{name}' has overflow 'block', which RabbitMQ lacks: exported as 'reject-publish' (shmq re-imports 'block')");
        }
        queues.push(json!({"name": name, "vhost": vhost, "durable": o.durable, "auto_delete": o.auto_delete, "arguments": args,
                           SHMQ_SETTINGS: ours}));
    }
    let exclusive: std::collections::HashSet<String> =
        ns.list_queues()?.into_iter().filter(|q| ns.queue_stats(q).is_ok_and(|s| s.options.exclusive)).collect();
    let exchanges: Vec<Value> = ns
        .list_exchanges()?
        .into_iter()
        .filter(|e| !e.builtin)
        .map(|e| {
            let mut args = Map::new();
            if let Some(a) = &e.options.alternate_exchange {
                args.insert("alternate-exchange".into(), json!(a));
            }
            json!({"name": e.name, "vhost": vhost, "type": e.options.kind.to_string(), "durable": e.options.durable,
                   "auto_delete": e.options.auto_delete, "internal": e.options.internal, "arguments": args})
        })
        .collect();
    let bindings: Vec<Value> = ns
        .list_bindings()?
        .into_iter()
        .filter(|b| !matches!(&b.destination, shmq::Destination::Queue(q) if exclusive.contains(q)))
        .map(|b| {
            let kind = if matches!(b.destination, shmq::Destination::Queue(_)) { "queue" } else { "exchange" };
            let args: Map<String, Value> = b.arguments.iter().map(|(k, v)| (k.clone(), arg_json(v))).collect();
            json!({"source": b.source, "vhost": vhost, "destination": b.destination.name(), "destination_type": kind,
                   "routing_key": b.key, "arguments": args})
        })
        .collect();
    // Shovels as RabbitMQ's runtime parameters of component "shovel".
    let mut parameters = Vec::new();
    for name in super::shovel::definition::names(ns)? {
        let shovel = super::shovel::definition::load(ns, &name)?;
        parameters.push(json!({"vhost": vhost, "component": "shovel", "name": name, "value": Value::Object(shovel.value)}));
    }
    Ok(json!({
        "rabbit_version": "3.13.0",
        "rabbitmq_version": "3.13.0",
        "product_name": "shmq",
        "product_version": env!("CARGO_PKG_VERSION"),
        "users": [], "vhosts": [{"name": vhost}], "permissions": [], "topic_permissions": [],
        "parameters": parameters, "global_parameters": [], "policies": [],
        "queues": queues, "exchanges": exchanges, "bindings": bindings,
    }))
}

/// Declares what RabbitMQ definitions JSON holds for one vhost, all or
/// nothing: everything is checked first (every problem reported, not just
/// the first), then applied; if applying fails midway, what this import
/// created is removed again. What shmq cannot honour (policies, users,
/// permissions, runtime parameters, unsupported arguments and exchange
/// types) is named and refused, unless `skip_unsupported`, when it is left
/// out and listed on stderr.
///
/// # Errors
/// The problems found, or the failure that rolled the import back.
pub fn import_value(ns: &shmq::Namespace, defs: &Value, options: &ImportOptions) -> Result<Imported, Box<dyn std::error::Error>> {
    let plan = Plan::of(ns, defs, options)?;
    for skipped in &plan.skipped {
        eprintln!("skipped (not supported by shmq): {skipped}");
    }
    plan.apply(ns)
}

/// How to import.
#[derive(Debug, Default)]
pub struct ImportOptions {
    /// The vhost to import; `None`: the file's only one.
    pub vhost: Option<String>,
    /// Leave out (and list) what shmq cannot honour instead of refusing.
    pub skip_unsupported: bool,
}

/// What an import declared.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub queues: usize,
    pub exchanges: usize,
    pub bindings: usize,
    pub shovels: usize,
    pub skipped: usize,
}

/// A checked import, ready to apply.
struct Plan {
    queues: Vec<(String, shmq::QueueOptions)>,
    exchanges: Vec<(String, shmq::ExchangeOptions)>,
    bindings: Vec<shmq::Binding>,
    shovels: Vec<super::shovel::definition::Shovel>,
    skipped: Vec<String>,
}

/// The vhost an item of the file belongs to (`/` if it names none).
fn vhost_of(item: &Value) -> &str {
    item.get("vhost").and_then(Value::as_str).unwrap_or("/")
}

impl Plan {
    fn of(ns: &shmq::Namespace, defs: &Value, options: &ImportOptions) -> Result<Plan, Box<dyn std::error::Error>> {
        let list = |key: &str| defs.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        // Which vhost: the one asked for, or the file's only one.
        let mut vhosts: Vec<String> = list("vhosts").iter().map(|v| text(v, "name")).collect();
        for key in ["queues", "exchanges", "bindings", "policies", "parameters", "permissions", "topic_permissions"] {
            vhosts.extend(list(key).iter().map(|item| vhost_of(item).to_owned()));
        }
        vhosts.sort();
        vhosts.dedup();
        let vhost = match (&options.vhost, vhosts.as_slice()) {
            (Some(wanted), _) if vhosts.contains(wanted) || vhosts.is_empty() => wanted.clone(),
            (Some(wanted), _) => return Err(printable(&format!("the file has no vhost '{wanted}'; it has: {}", vhosts.join(", "))).into()),
            (None, []) => "/".to_owned(),
            (None, [only]) => only.clone(),
            (None, many) => {
                return Err(
                    printable(&format!("the file has {} vhosts ({}): pick one with --vhost NAME", many.len(), many.join(", "))).into()
                );
            }
        };
        let mine = |key: &str| list(key).into_iter().filter(|item| vhost_of(item) == vhost).collect::<Vec<_>>();
        let mut plan = Plan { queues: Vec::new(), exchanges: Vec::new(), bindings: Vec::new(), shovels: Vec::new(), skipped: Vec::new() };
        let mut unsupported = Vec::new();
        let mut problems = Vec::new();
        // Entities shmq has nothing for: access control is the file
        // system's, and policies and runtime parameters are not
        // implemented.
        for user in list("users") {
            unsupported.push(format!("user '{}' (access is the namespace directory's permissions)", text(&user, "name")));
        }
        for p in mine("permissions").into_iter().chain(mine("topic_permissions")) {
            unsupported.push(format!("permissions of user '{}' in vhost '{vhost}'", text(&p, "user")));
        }
        for p in mine("policies") {
            unsupported.push(format!("policy '{}' (pattern '{}')", text(&p, "name"), text(&p, "pattern")));
        }
        for p in mine("parameters") {
            let name = text(&p, "name");
            if text(&p, "component") != "shovel" {
                unsupported.push(format!("{} parameter '{name}'", text(&p, "component")));
                continue;
            }
            match p.get("value").and_then(Value::as_object) {
                Some(value) => match super::shovel::definition::Shovel::from_value(&name, value.clone()) {
                    Ok(shovel) => plan.shovels.push(shovel),
                    Err(e) => problems.push(format!("shovel '{name}': {e}")),
                },
                None => problems.push(format!("shovel '{name}': its value is not an object")),
            }
        }
        for p in list("global_parameters") {
            unsupported.push(format!("global parameter '{}'", text(&p, "name")));
        }
        for q in mine("queues") {
            let name = text(&q, "name");
            match queue_options(&name, &q, &mut unsupported) {
                Ok(o) => match ns.queue_stats(&name) {
                    // There already, as the file has it (RabbitMQ's view):
                    // left as it is.
                    Ok(existing)
                        if existing.options.arguments() == o.arguments()
                            && (existing.options.auto_delete, existing.options.durable) == (o.auto_delete, o.durable) => {}
                    Ok(existing) => problems.push(format!(
                        "queue '{name}' exists with other settings (arguments {}, auto_delete {}, durable {})",
                        Value::Object(existing.options.arguments().iter().map(|(k, v)| (k.clone(), arg_json(v))).collect()),
                        existing.options.auto_delete,
                        existing.options.durable
                    )),
                    Err(_) => plan.queues.push((name, o)),
                },
                Err(e) => problems.push(format!("queue '{name}': {e}")),
            }
        }
        for x in mine("exchanges") {
            let name = text(&x, "name");
            if name.is_empty() || name.starts_with("amq.") {
                continue; // built in
            }
            let kind = match text(&x, "type").parse::<shmq::ExchangeKind>() {
                Ok(kind) => kind,
                Err(_) => {
                    unsupported.push(format!("exchange '{name}' of type '{}'", text(&x, "type")));
                    continue;
                }
            };
            let flag = |key: &str| x.get(key).and_then(Value::as_bool).unwrap_or(false);
            let mut o =
                shmq::ExchangeOptions::new(kind).auto_delete(flag("auto_delete")).internal(flag("internal")).durable(flag("durable"));
            for (key, value) in x.get("arguments").and_then(Value::as_object).into_iter().flatten() {
                match (key.as_str(), value.as_str()) {
                    ("alternate-exchange", Some(a)) => o = o.alternate_exchange(a),
                    _ => unsupported.push(format!("exchange '{name}': argument '{key}'")),
                }
            }
            match ns.declare_exchange_passive(&name) {
                Ok(existing) if existing.options != o => {
                    problems.push(format!("exchange '{name}' exists as a {} exchange with other settings", existing.options.kind))
                }
                _ => plan.exchanges.push((name, o)),
            }
        }
        let queue_known = |q: &str| plan.queues.iter().any(|(n, _)| n == q) || ns.queue_stats(q).is_ok();
        let exchange_known = |x: &str| x.is_empty() || plan.exchanges.iter().any(|(n, _)| n == x) || ns.declare_exchange_passive(x).is_ok();
        for b in mine("bindings") {
            let (source, destination) = (text(&b, "source"), text(&b, "destination"));
            let arguments: Vec<(String, shmq::ArgValue)> = b
                .get("arguments")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), json_arg(v))).collect())
                .unwrap_or_default();
            let to_exchange = text(&b, "destination_type") == "exchange";
            let what = format!("binding '{source}' -> {} '{destination}'", if to_exchange { "exchange" } else { "queue" });
            if source.is_empty() {
                continue; // the default exchange's implicit bindings
            }
            if !exchange_known(&source) {
                problems.push(format!("{what}: no exchange '{source}' in the file or the namespace"));
            } else if if to_exchange { !exchange_known(&destination) } else { !queue_known(&destination) } {
                problems.push(format!("{what}: no such destination in the file or the namespace"));
            } else {
                let destination =
                    if to_exchange { shmq::Destination::Exchange(destination) } else { shmq::Destination::Queue(destination) };
                plan.bindings.push(shmq::Binding { source, destination, key: text(&b, "routing_key"), arguments });
            }
        }
        // Names from the file reach the terminal: no control characters.
        let problems: Vec<String> = problems.iter().map(|p| printable(p)).collect();
        let unsupported: Vec<String> = unsupported.iter().map(|u| printable(u)).collect();
        if !problems.is_empty() {
            return Err(format!("nothing imported; fix these first:\n  {}", problems.join("\n  ")).into());
        }
        if !unsupported.is_empty() && !options.skip_unsupported {
            return Err(format!(
                "nothing imported: shmq cannot honour these (import the rest with --skip-unsupported):\n  {}",
                unsupported.join("\n  ")
            )
            .into());
        }
        plan.skipped = unsupported;
        Ok(plan)
    }

    /// Declares the plan; on a failure, removes what it had created.
    fn apply(self, ns: &shmq::Namespace) -> Result<Imported, Box<dyn std::error::Error>> {
        let existing_queues = ns.list_queues()?;
        let existing_exchanges: Vec<String> = ns.list_exchanges()?.into_iter().map(|x| x.name).collect();
        let existing_bindings = ns.list_bindings()?;
        let mut done = Imported { skipped: self.skipped.len(), ..Imported::default() };
        let mut created: Vec<Undo> = Vec::new();
        let result = (|| -> Result<(), shmq::Error> {
            for (name, o) in &self.queues {
                ns.declare_queue(name, o)?;
                if !existing_queues.contains(name) {
                    created.push(Undo::Queue(name.clone()));
                }
                done.queues += 1;
            }
            // Exchanges with an alternate exchange after the others.
            let mut exchanges: Vec<&(String, shmq::ExchangeOptions)> = self.exchanges.iter().collect();
            exchanges.sort_by_key(|(_, o)| o.alternate_exchange.is_some());
            for (name, o) in exchanges {
                ns.declare_exchange(name, o)?;
                if !existing_exchanges.contains(name) {
                    created.push(Undo::Exchange(name.clone()));
                }
                done.exchanges += 1;
            }
            for b in &self.bindings {
                match &b.destination {
                    shmq::Destination::Queue(q) => ns.bind_queue(q, &b.source, &b.key, &b.arguments)?,
                    shmq::Destination::Exchange(x) => ns.bind_exchange(x, &b.source, &b.key, &b.arguments)?,
                }
                if !existing_bindings.contains(b) {
                    created.push(Undo::Binding(b.clone()));
                }
                done.bindings += 1;
            }
            Ok(())
        })();
        // Shovels last: they name queues the import may just have declared.
        let existing_shovels = super::shovel::definition::names(ns)?;
        let result = result.map_err(|e| e.to_string()).and_then(|()| {
            for shovel in &self.shovels {
                super::shovel::definition::save(ns, shovel).map_err(|e| format!("shovel '{}': {e}", shovel.name))?;
                if !existing_shovels.contains(&shovel.name) {
                    created.push(Undo::Shovel(shovel.name.clone()));
                }
                done.shovels += 1;
            }
            Ok(())
        });
        if let Err(e) = result {
            for undo in created.into_iter().rev() {
                let _ = match undo {
                    Undo::Queue(q) => ns.delete_queue(&q),
                    Undo::Exchange(x) => ns.delete_exchange(&x, false),
                    Undo::Binding(b) => match &b.destination {
                        shmq::Destination::Queue(q) => ns.unbind_queue(q, &b.source, &b.key, &b.arguments),
                        shmq::Destination::Exchange(x) => ns.unbind_exchange(x, &b.source, &b.key, &b.arguments),
                    },
                    Undo::Shovel(name) => {
                        let _ = super::shovel::definition::remove(ns, &name);
                        Ok(())
                    }
                };
            }
            return Err(printable(&format!("nothing imported (what this import had declared was removed again): {e}")).into());
        }
        Ok(done)
    }
}

/// `text` with control characters shown as escapes (`\u{1b}`): names
/// from a file must not drive the terminal.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

/// What an import created, to remove if it fails.
enum Undo {
    Queue(String),
    Exchange(String),
    Binding(shmq::Binding),
    Shovel(String),
}

/// A queue's options from its definition; arguments shmq does not
/// implement go to `unsupported`, by name.
fn queue_options(name: &str, q: &Value, unsupported: &mut Vec<String>) -> Result<shmq::QueueOptions, Box<dyn std::error::Error>> {
    shmq::validate_queue_name(name)?;
    let mut theirs = Vec::new();
    for (key, value) in q.get("arguments").and_then(Value::as_object).into_iter().flatten() {
        if shmq::QUEUE_ARGUMENTS.contains(&key.as_str()) {
            theirs.push((key.clone(), json_arg(value)));
        } else {
            unsupported.push(format!("queue '{name}': argument '{key}'"));
        }
    }
    let mut options = shmq::QueueOptions::default().with_arguments(name, &theirs)?;
    // shmq's own settings, from its export: RabbitMQ ignores this key.
    if let Some(ours) = q.get(SHMQ_SETTINGS) {
        if let Some(bytes) = ours.get("capacity_bytes") {
            options.capacity_bytes = bytes.as_u64().ok_or("shmq.capacity_bytes must be a byte count")?;
        }
        if let Some(bytes) = ours.get("max_message_bytes") {
            options.max_message_bytes =
                bytes.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or("shmq.max_message_bytes must be a byte count below 4 GiB")?;
        }
        if let Some(overflow) = ours.get("overflow").and_then(Value::as_str) {
            options.overflow = Some(overflow.parse()?);
        }
    }
    options.auto_delete = q.get("auto_delete").and_then(Value::as_bool).unwrap_or(false);
    options.durable = q.get("durable").and_then(Value::as_bool).unwrap_or(false);
    options.normalized()?;
    Ok(options)
}

pub fn export(cli: &Cli, file: Option<&std::path::Path>, vhost: &str) -> CliResult {
    let value = export_value(&namespace(cli)?, vhost)?;
    let text = serde_json::to_string_pretty(&value)?;
    match file {
        Some(path) => std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}

pub fn import(cli: &Cli, file: &std::path::Path, options: &ImportOptions) -> CliResult {
    let text = if file == std::path::Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?
    };
    let defs: Value = serde_json::from_str(&text).map_err(|e| format!("{} is not definitions JSON: {e}", file.display()))?;
    let done = import_value(&namespace(cli)?, &defs, options)?;
    if cli.json {
        println!(
            "{}",
            json!({"queues": done.queues, "exchanges": done.exchanges, "bindings": done.bindings, "shovels": done.shovels,
                   "skipped": done.skipped})
        );
    } else {
        println!(
            "imported {} queues, {} exchanges, {} bindings, {} shovels{}",
            done.queues,
            done.exchanges,
            done.bindings,
            done.shovels,
            if done.skipped > 0 { format!("; skipped {} unsupported (listed above)", done.skipped) } else { String::new() }
        );
    }
    Ok(())
}
