//! Exchanges, bindings and routing.
//!
//! The table (exchanges, the queue registry, bindings) lives in the
//! namespace's routing segment ([`table`]); every process routes through its
//! own compiled snapshot ([`Router`]) and refreshes it when the segment's
//! generation counter moves.

pub(crate) mod table;
pub(crate) mod topic;

use std::collections::HashMap as StdHashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::message::HeaderValue;
use topic::{TopicScratch, TopicTrie};

/// FNV-1a: routing keys and names are short, and SipHash's DoS resistance
/// buys nothing against processes that can write the segment anyway.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub(crate) type HashMap<K, V> = StdHashMap<K, V, BuildHasherDefault<Fnv>>;

/// The kind of an exchange.
///
/// # Examples
/// ```
/// assert_eq!("topic".parse::<shmq::ExchangeKind>(), Ok(shmq::ExchangeKind::Topic));
/// assert_eq!(shmq::ExchangeKind::Fanout.to_string(), "fanout");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    /// Routes to bindings whose key equals the routing key.
    Direct,
    /// Routes to every binding.
    Fanout,
    /// Routes by `*`/`#` patterns ([`topic_matches`](crate::topic_matches)).
    Topic,
    /// Routes by message headers (`x-match` = `all` or `any`).
    Headers,
}

impl ExchangeKind {
    fn code(self) -> u8 {
        match self {
            Self::Direct => 1,
            Self::Fanout => 2,
            Self::Topic => 3,
            Self::Headers => 4,
        }
    }
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Direct,
            2 => Self::Fanout,
            3 => Self::Topic,
            4 => Self::Headers,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Direct => "direct",
            Self::Fanout => "fanout",
            Self::Topic => "topic",
            Self::Headers => "headers",
        })
    }
}

impl std::str::FromStr for ExchangeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "direct" => Ok(Self::Direct),
            "fanout" => Ok(Self::Fanout),
            "topic" => Ok(Self::Topic),
            "headers" | "match" => Ok(Self::Headers),
            other => Err(format!("unknown exchange type '{other}': use direct, fanout, topic or headers")),
        }
    }
}

/// Options of an exchange, fixed when it is declared.
///
/// # Examples
/// ```
/// let options = shmq::ExchangeOptions::new(shmq::ExchangeKind::Fanout).auto_delete(true);
/// assert!(options.auto_delete);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeOptions {
    /// The exchange type.
    pub kind: ExchangeKind,
    /// Deleted when its last binding is removed (after it had one).
    pub auto_delete: bool,
    /// Only reachable through exchange-to-exchange bindings.
    pub internal: bool,
    /// Where messages go that match no binding.
    pub alternate_exchange: Option<String>,
    /// Declared durable (AMQP's `durable`): kept and compared on
    /// redeclare, and exported, as RabbitMQ does. Every exchange lives as
    /// long as its namespace.
    pub durable: bool,
}

impl ExchangeOptions {
    /// Options of a plain exchange of `kind`.
    ///
    /// # Examples
    /// See [`ExchangeOptions`].
    pub fn new(kind: ExchangeKind) -> Self {
        Self { kind, auto_delete: false, internal: false, alternate_exchange: None, durable: false }
    }

    /// Sets durable.
    ///
    /// # Examples
    /// ```
    /// assert!(shmq::ExchangeOptions::new(shmq::ExchangeKind::Direct).durable(true).durable);
    /// ```
    #[must_use]
    pub fn durable(mut self, on: bool) -> Self {
        self.durable = on;
        self
    }

    /// Sets auto-delete.
    ///
    /// # Examples
    /// See [`ExchangeOptions`].
    #[must_use]
    pub fn auto_delete(mut self, on: bool) -> Self {
        self.auto_delete = on;
        self
    }

    /// Sets internal.
    ///
    /// # Examples
    /// ```
    /// assert!(shmq::ExchangeOptions::new(shmq::ExchangeKind::Direct).internal(true).internal);
    /// ```
    #[must_use]
    pub fn internal(mut self, on: bool) -> Self {
        self.internal = on;
        self
    }

    /// Sets the alternate exchange.
    ///
    /// # Examples
    /// ```
    /// let o = shmq::ExchangeOptions::new(shmq::ExchangeKind::Direct).alternate_exchange("unrouted");
    /// assert_eq!(o.alternate_exchange.as_deref(), Some("unrouted"));
    /// ```
    #[must_use]
    pub fn alternate_exchange(mut self, name: &str) -> Self {
        self.alternate_exchange = Some(name.to_owned());
        self
    }
}

/// A binding argument value (for headers exchanges: what a header must
/// equal; `Void` means "must be present").
///
/// # Examples
/// ```
/// let v = shmq::ArgValue::Str("pdf".into());
/// assert_eq!(v.to_string(), "pdf");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum ArgValue {
    /// Text.
    Str(String),
    /// Integer.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// Presence only.
    Void,
}

impl ArgValue {
    /// The AMQP field type RabbitMQ names in its errors for a value like this.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shmq::ArgValue::Str("x".into()).amqp_type(), "longstr");
    /// ```
    pub fn amqp_type(&self) -> &'static str {
        match self {
            Self::Str(_) => "longstr",
            Self::Int(_) => "long",
            Self::Bool(_) => "bool",
            Self::Void => "void",
        }
    }
}

impl std::fmt::Display for ArgValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Str(s) => f.write_str(s),
            Self::Int(i) => write!(f, "{i}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Void => f.write_str("(void)"),
        }
    }
}

/// Where a binding leads.
///
/// # Examples
/// ```
/// let d = shmq::Destination::Queue("q".into());
/// assert_eq!(d.name(), "q");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Destination {
    /// A queue.
    Queue(String),
    /// Another exchange.
    Exchange(String),
}

impl Destination {
    /// The destination's name.
    ///
    /// # Examples
    /// See [`Destination`].
    pub fn name(&self) -> &str {
        match self {
            Self::Queue(n) | Self::Exchange(n) => n,
        }
    }
}

/// A binding, as listed by [`Namespace::list_bindings`](crate::Namespace::list_bindings).
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    /// The source exchange.
    pub source: String,
    /// The destination.
    pub destination: Destination,
    /// The binding key.
    pub key: String,
    /// Arguments (headers exchanges: `x-match` and header values).
    pub arguments: Vec<(String, ArgValue)>,
}

/// An exchange, as listed by [`Namespace::list_exchanges`](crate::Namespace::list_exchanges).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeInfo {
    /// Its name.
    pub name: String,
    /// Its options.
    pub options: ExchangeOptions,
    /// True for the predeclared `amq.*` exchanges.
    pub builtin: bool,
}

/// Registry metadata of a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QueueMeta {
    pub(crate) name: String,
    /// Liveness token of the owning process for exclusive queues, else 0.
    pub(crate) exclusive_owner: u64,
    pub(crate) auto_delete: bool,
}

/// The whole routing table, as stored in the segment.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Table {
    pub(crate) exchanges: Vec<ExchangeInfo>,
    pub(crate) queues: Vec<QueueMeta>,
    pub(crate) bindings: Vec<Binding>,
}

/// The exchanges every namespace has, as in RabbitMQ.
pub(crate) const BUILTIN_EXCHANGES: &[(&str, ExchangeKind)] = &[
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

impl Table {
    pub(crate) fn with_builtins() -> Self {
        let exchanges = BUILTIN_EXCHANGES
            .iter()
            // Durable, as RabbitMQ's.
            .map(|(name, kind)| ExchangeInfo {
                name: (*name).to_owned(),
                options: ExchangeOptions::new(*kind).durable(true),
                builtin: true,
            })
            .collect();
        Table { exchanges, queues: Vec::new(), bindings: Vec::new() }
    }

    pub(crate) fn exchange(&self, name: &str) -> Option<&ExchangeInfo> {
        self.exchanges.iter().find(|e| e.name == name)
    }

    pub(crate) fn queue(&self, name: &str) -> Option<&QueueMeta> {
        self.queues.iter().find(|q| q.name == name)
    }

    /// Removes a queue and every binding to it.
    pub(crate) fn remove_queue(&mut self, name: &str) {
        self.queues.retain(|q| q.name != name);
        self.remove_bindings(|b| b.destination == Destination::Queue(name.to_owned()));
    }

    /// Removes the bindings `gone` picks. An auto-delete exchange that
    /// loses its last binding (as source) goes too, with its own bindings,
    /// as in RabbitMQ; one that never had a binding stays.
    pub(crate) fn remove_bindings(&mut self, gone: impl Fn(&Binding) -> bool) {
        let mut sources: Vec<String> = self.bindings.iter().filter(|b| gone(b)).map(|b| b.source.clone()).collect();
        self.bindings.retain(|b| !gone(b));
        while !sources.is_empty() {
            let unused: Vec<String> = self
                .exchanges
                .iter()
                .filter(|e| e.options.auto_delete && sources.contains(&e.name) && !self.bindings.iter().any(|b| b.source == e.name))
                .map(|e| e.name.clone())
                .collect();
            sources.clear();
            for name in unused {
                self.exchanges.retain(|e| e.name != name);
                let destination = Destination::Exchange(name);
                sources.extend(self.bindings.iter().filter(|b| b.destination == destination).map(|b| b.source.clone()));
                self.bindings.retain(|b| b.destination != destination);
            }
        }
    }
}

/// A compiled destination: an index into the router's queues or exchanges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Dest {
    Queue(usize),
    Exchange(usize),
}

#[derive(Debug)]
struct HeadersBinding {
    match_all: bool,
    args: Vec<(String, ArgValue)>,
    dest: Dest,
}

#[derive(Debug)]
struct CompiledExchange {
    kind: ExchangeKind,
    internal: bool,
    alternate: Option<usize>,
    direct: HashMap<String, Vec<Dest>>,
    fanout: Vec<Dest>,
    topic: TopicTrie<Dest>,
    headers: Vec<HeadersBinding>,
}

/// A routing-table snapshot compiled for fast routing: a hash map per direct
/// exchange, a trie per topic exchange.
#[derive(Debug)]
pub(crate) struct Router {
    pub(crate) generation: u64,
    exchange_index: HashMap<String, usize>,
    exchanges: Vec<CompiledExchange>,
    pub(crate) queue_names: Vec<String>,
    queue_index: HashMap<String, usize>,
    /// Per queue: the exclusive owner's token (0 = none) and auto-delete.
    pub(crate) queue_meta: Vec<(u64, bool)>,
}

/// Scratch space for routing, reused across publishes so that routing
/// allocates nothing in the steady state.
#[derive(Debug, Default)]
pub(crate) struct RouteScratch {
    topic: TopicScratch,
    dests: Vec<Dest>,
    pending: Vec<usize>,
    visited: Vec<usize>,
}

/// Why a route could not be computed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RouteError {
    NoExchange,
    Internal,
}

impl Router {
    pub(crate) fn compile(table: &Table, generation: u64) -> Router {
        let queue_names: Vec<String> = table.queues.iter().map(|q| q.name.clone()).collect();

        let queue_index: HashMap<String, usize> = queue_names.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
        let exchange_index: HashMap<String, usize> = table.exchanges.iter().enumerate().map(|(i, e)| (e.name.clone(), i)).collect();
        let mut exchanges: Vec<CompiledExchange> = table
            .exchanges
            .iter()
            .map(|e| CompiledExchange {
                kind: e.options.kind,
                internal: e.options.internal,
                alternate: e.options.alternate_exchange.as_ref().and_then(|a| exchange_index.get(a).copied()),
                direct: HashMap::default(),
                fanout: Vec::new(),
                topic: TopicTrie::new(),
                headers: Vec::new(),
            })
            .collect();
        for b in &table.bindings {
            let Some(&source) = exchange_index.get(&b.source) else { continue };
            let dest = match &b.destination {
                Destination::Queue(q) => match queue_index.get(q) {
                    Some(&i) => Dest::Queue(i),
                    None => continue,
                },
                Destination::Exchange(x) => match exchange_index.get(x) {
                    Some(&i) => Dest::Exchange(i),
                    None => continue,
                },
            };
            let x = &mut exchanges[source];
            match x.kind {
                ExchangeKind::Direct => x.direct.entry(b.key.clone()).or_default().push(dest),
                ExchangeKind::Fanout => x.fanout.push(dest),
                ExchangeKind::Topic => x.topic.insert(&b.key, dest),
                ExchangeKind::Headers => {
                    // `x-match`: all (the default), any, all-with-x or
                    // any-with-x (bind refuses anything else); `x-` arguments
                    // take part only with the `-with-x` forms, as in RabbitMQ.
                    let x_match = x_match(&b.arguments).unwrap_or(Some("all")).unwrap_or("all");
                    let with_x = x_match.ends_with("-with-x");
                    let args = b.arguments.iter().filter(|(k, _)| k != "x-match" && (with_x || !k.starts_with("x-"))).cloned().collect();
                    x.headers.push(HeadersBinding { match_all: x_match.starts_with("all"), args, dest });
                }
            }
        }
        let queue_meta = table.queues.iter().map(|q| (q.exclusive_owner, q.auto_delete)).collect();
        Router { generation, exchange_index, exchanges, queue_names, queue_index, queue_meta }
    }

    /// The index of queue `name` in `queue_names`.
    pub(crate) fn queue_position(&self, name: &str) -> Option<usize> {
        self.queue_index.get(name).copied()
    }

    /// Registry metadata of a queue: `(exclusive owner, auto-delete)`.
    pub(crate) fn queue_meta(&self, name: &str) -> Option<(u64, bool)> {
        self.queue_index.get(name).map(|&i| self.queue_meta[i])
    }

    /// Queues a message published to `exchange` with `routing_key` and
    /// `headers` goes to, as indices into `queue_names`, deduplicated.
    /// Follows exchange-to-exchange bindings (each exchange once) and
    /// alternate exchanges.
    pub(crate) fn route<H: HeaderSource>(
        &self,
        exchange: &str,
        routing_key: &str,
        headers: &H,
        scratch: &mut RouteScratch,
        out: &mut Vec<usize>,
    ) -> Result<(), RouteError> {
        out.clear();
        if exchange.is_empty() {
            // The default exchange: straight to the queue named by the key.
            if let Some(&q) = self.queue_index.get(routing_key) {
                out.push(q);
            }
            return Ok(());
        }
        let &start = self.exchange_index.get(exchange).ok_or(RouteError::NoExchange)?;
        if self.exchanges[start].internal {
            return Err(RouteError::Internal);
        }
        scratch.pending.clear();
        scratch.visited.clear();
        scratch.pending.push(start);
        while let Some(x) = scratch.pending.pop() {
            if scratch.visited.contains(&x) {
                continue;
            }
            scratch.visited.push(x);
            let compiled = &self.exchanges[x];
            scratch.dests.clear();
            match compiled.kind {
                ExchangeKind::Direct => {
                    if let Some(d) = compiled.direct.get(routing_key) {
                        scratch.dests.extend_from_slice(d);
                    }
                }
                ExchangeKind::Fanout => scratch.dests.extend_from_slice(&compiled.fanout),
                ExchangeKind::Topic => compiled.topic.matches(routing_key, &mut scratch.topic, &mut scratch.dests),
                ExchangeKind::Headers => {
                    for b in &compiled.headers {
                        if headers_match(b, headers) {
                            scratch.dests.push(b.dest);
                        }
                    }
                }
            }
            if scratch.dests.is_empty() {
                if let Some(alternate) = compiled.alternate {
                    scratch.pending.push(alternate);
                }
            }
            for d in scratch.dests.iter() {
                match *d {
                    Dest::Queue(q) => out.push(q),
                    Dest::Exchange(e) => scratch.pending.push(e),
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(())
    }
}

/// Where a headers exchange looks message headers up.
pub(crate) trait HeaderSource {
    fn header(&self, key: &str) -> Option<HeaderValue<'_>>;
}

impl HeaderSource for &[(&str, HeaderValue<'_>)] {
    fn header(&self, key: &str) -> Option<HeaderValue<'_>> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl HeaderSource for crate::message::Headers<'_> {
    fn header(&self, key: &str) -> Option<HeaderValue<'_>> {
        self.get(key)
    }
}

/// A headers binding's `x-match`: `None` if absent, `Some(Some(v))` for one
/// of RabbitMQ's four values, `Some(None)` for anything else.
pub(crate) fn x_match(arguments: &[(String, ArgValue)]) -> Option<Option<&str>> {
    let (_, value) = arguments.iter().find(|(k, _)| k == "x-match")?;
    Some(match value {
        ArgValue::Str(s) if matches!(s.as_str(), "all" | "any" | "all-with-x" | "any-with-x") => Some(s.as_str()),
        _ => None,
    })
}

fn headers_match<H: HeaderSource>(binding: &HeadersBinding, headers: &H) -> bool {
    let mut any = false;
    for (key, want) in &binding.args {
        let ok = match headers.header(key) {
            None => false,
            Some(got) => match want {
                ArgValue::Void => true,
                ArgValue::Str(s) => got == HeaderValue::Str(s),
                ArgValue::Int(i) => got == HeaderValue::Int(*i),
                ArgValue::Bool(b) => got == HeaderValue::Bool(*b),
            },
        };
        if binding.match_all && !ok {
            return false;
        }
        any |= ok;
    }
    binding.match_all || any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::with_builtins();
        for q in ["a", "b", "c"] {
            t.queues.push(QueueMeta { name: q.into(), exclusive_owner: 0, auto_delete: false });
        }
        t.exchanges.push(ExchangeInfo { name: "logs".into(), options: ExchangeOptions::new(ExchangeKind::Fanout), builtin: false });
        t.exchanges.push(ExchangeInfo {
            name: "direct".into(),
            options: ExchangeOptions::new(ExchangeKind::Direct).alternate_exchange("logs"),
            builtin: false,
        });
        let bind = |source: &str, dest: Destination, key: &str| Binding {
            source: source.into(),
            destination: dest,
            key: key.into(),
            arguments: vec![],
        };
        t.bindings.push(bind("logs", Destination::Queue("a".into()), ""));
        t.bindings.push(bind("logs", Destination::Queue("b".into()), ""));
        t.bindings.push(bind("direct", Destination::Queue("c".into()), "error"));
        t.bindings.push(bind("direct", Destination::Queue("c".into()), "warning"));
        t.bindings.push(bind("amq.topic", Destination::Exchange("logs".into()), "kern.*"));
        t.bindings.push(bind("logs", Destination::Exchange("amq.topic".into()), "")); // a cycle
        t.bindings.push(Binding {
            source: "amq.headers".into(),
            destination: Destination::Queue("a".into()),
            key: String::new(),
            arguments: vec![("x-match".into(), ArgValue::Str("any".into())), ("format".into(), ArgValue::Str("pdf".into()))],
        });
        t
    }

    use crate::message::Headers;

    fn route(r: &Router, exchange: &str, key: &str, headers: &Headers<'_>) -> Vec<String> {
        let mut scratch = RouteScratch::default();
        let mut out = Vec::new();
        r.route(exchange, key, headers, &mut scratch, &mut out).unwrap();
        out.iter().map(|&i| r.queue_names[i].clone()).collect()
    }

    #[test]
    fn routes_each_exchange_kind() {
        let r = Router::compile(&table(), 1);
        let none = Headers::default();
        assert_eq!(route(&r, "", "b", &none), vec!["b"]);
        assert!(route(&r, "", "missing", &none).is_empty());
        assert_eq!(route(&r, "logs", "anything", &none), vec!["a", "b"]);
        assert_eq!(route(&r, "direct", "error", &none), vec!["c"]);
        // Unmatched: the alternate exchange takes it.
        assert_eq!(route(&r, "direct", "info", &none), vec!["a", "b"]);
        // Exchange-to-exchange, with a cycle back: each queue once.
        assert_eq!(route(&r, "amq.topic", "kern.disk", &none), vec!["a", "b"]);
        assert!(route(&r, "amq.topic", "user.disk", &none).is_empty());
        assert_eq!(r.route("nope", "", &none, &mut RouteScratch::default(), &mut Vec::new()), Err(RouteError::NoExchange));
    }

    #[test]
    fn headers_exchange_matches_all_and_any() {
        let b = |all: bool, args: Vec<(String, ArgValue)>| HeadersBinding { match_all: all, args, dest: Dest::Queue(0) };
        let props_headers = [("format", HeaderValue::Str("pdf")), ("type", HeaderValue::Str("report"))];
        let props = crate::Properties::new().headers(&props_headers);
        let mut buf = vec![0u8; props.encoded_len().unwrap()];
        props.encode(&mut buf);
        let parsed = crate::PropertiesRef::parse(&buf).unwrap();
        let h = parsed.headers;
        let pdf = ("format".to_string(), ArgValue::Str("pdf".into()));
        let log = ("type".to_string(), ArgValue::Str("log".into()));
        let present = ("type".to_string(), ArgValue::Void);
        assert!(headers_match(&b(true, vec![pdf.clone(), present.clone()]), &h));
        assert!(!headers_match(&b(true, vec![pdf.clone(), log.clone()]), &h));
        assert!(headers_match(&b(false, vec![pdf, log.clone()]), &h));
        assert!(!headers_match(&b(false, vec![log]), &h));
    }

    #[test]
    fn x_match_modes_and_x_arguments() {
        let arg = |k: &str, v: &str| (k.to_owned(), ArgValue::Str(v.into()));
        let binding = |mode: &str| vec![arg("x-match", mode), arg("format", "pdf"), arg("x-tenant", "acme")];
        for (mode, valid) in [("all", true), ("any", true), ("all-with-x", true), ("any-with-x", true), ("sometimes", false)] {
            assert_eq!(x_match(&binding(mode)), Some(valid.then_some(mode)), "{mode}");
        }
        assert_eq!(x_match(&[arg("format", "pdf")]), None);
        // Compiled: `x-` arguments take part only in the -with-x modes
        // (python/tests/test_headers_exchange_vs_rabbitmq.py compares the
        // routing itself with RabbitMQ's).
        let mut t = Table::with_builtins();
        t.queues.push(QueueMeta { name: "q".into(), exclusive_owner: 0, auto_delete: false });
        for mode in ["all", "all-with-x"] {
            t.bindings = vec![Binding {
                source: "amq.headers".into(),
                destination: Destination::Queue("q".into()),
                key: String::new(),
                arguments: binding(mode),
            }];
            let router = Router::compile(&t, 1);
            let headers = [("format", HeaderValue::Str("pdf"))];
            let (mut scratch, mut targets) = (RouteScratch::default(), Vec::new());
            router.route("amq.headers", "", &&headers[..], &mut scratch, &mut targets).unwrap();
            assert_eq!(targets.len(), usize::from(mode == "all"), "{mode}: x-tenant is absent");
        }
    }
}
