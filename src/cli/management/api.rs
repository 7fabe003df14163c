//! The routes of `shmq management`: the part of RabbitMQ's management HTTP
//! API (`/api/...`) that its tools use, with RabbitMQ's paths, JSON field
//! names, status codes and error shapes, reading and writing namespaces
//! through the shmq library only. docs/MANAGEMENT.md lists every endpoint
//! with its RabbitMQ counterpart and what differs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::super::definitions;
use super::super::shovel;
use super::auth::{Denied, Users};
use super::http::{Request, Response};
use super::metrics;
use super::stats::{figures, Counters, Rates, Sampler, VhostSnapshot};
use super::ui;

/// The RabbitMQ version whose management API this one follows (what its
/// tests compare against); shmq's own is `product_version`.
pub const API_VERSION: &str = "3.10.8";

/// The most messages one `POST .../get` returns.
const MAX_GET: u64 = 10_000;

/// How long a publish through the API waits for room in a full queue.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// A served namespace.
pub struct Vhost {
    /// The vhost's name: the namespace's name.
    pub name: String,
    /// The namespace.
    pub ns: shmq::Namespace,
    /// Publishes through `/api/exchanges/.../publish`.
    publisher: Mutex<shmq::Publisher>,
}

impl Vhost {
    /// Serves `ns` as vhost `name`.
    pub fn new(name: String, ns: shmq::Namespace) -> Vhost {
        let mut publisher = ns.publisher();
        publisher.set_publish_timeout(Some(PUBLISH_TIMEOUT));
        Vhost { name, ns, publisher: Mutex::new(publisher) }
    }
}

/// The API: served vhosts, users, samples.
pub struct Api {
    /// The vhosts; the first is also vhost `/`.
    pub vhosts: Vec<Vhost>,
    /// Who may log in.
    pub users: Users,
    /// Rates and monotonic totals.
    pub sampler: Sampler,
    /// This node's name, as RabbitMQ's `rabbit@host`: `shmq@host`.
    pub node: String,
    /// Serve `/metrics` only.
    pub prometheus_only: bool,
    /// Where the server listens (for `listeners`).
    pub listen: std::net::SocketAddr,
}

/// A failed request: its status and JSON body (none for a bare status).
#[derive(Debug)]
struct ApiError {
    status: u16,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
}

type ApiResult = Result<Response, ApiError>;

impl ApiError {
    fn new(status: u16, error: &str, reason: impl Into<Value>) -> ApiError {
        ApiError { status, body: Some(json!({"error": error, "reason": reason.into()})), headers: Vec::new() }
    }

    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => Response::new(self.status, "application/json", body.to_string().into_bytes()),
            None => Response::empty(self.status),
        };
        response.headers.extend(self.headers);
        response
    }
}

/// RabbitMQ's 404 for a path that names nothing.
fn not_found() -> ApiError {
    ApiError::new(404, "Object Not Found", "Not Found")
}

fn bad_request(reason: impl Into<Value>) -> ApiError {
    ApiError::new(400, "bad_request", reason)
}

/// 405, with the methods the path allows.
fn method_not_allowed(allow: &str) -> ApiError {
    ApiError { status: 405, body: None, headers: vec![("allow", allow.to_owned())] }
}

fn ok_json(value: &Value) -> ApiResult {
    Ok(Response::new(200, "application/json", value.to_string().into_bytes()).with_header("cache-control", "no-cache"))
}

/// A library error as RabbitMQ's management API words it, in `vhost`.
fn library_error(e: shmq::Error, vhost: &str) -> ApiError {
    use shmq::Error as E;
    match e {
        E::QueueNotFound { queue, .. } => ApiError::new(404, "not_found", format!("no queue '{queue}' in vhost '{vhost}'")),
        E::ExchangeNotFound { exchange, .. } => ApiError::new(404, "not_found", format!("no exchange '{exchange}' in vhost '{vhost}'")),
        E::PreconditionFailed { queue, field, existing, requested } => bad_request(format!(
            "inequivalent arg '{field}' for queue '{queue}' in vhost '{vhost}': received '{requested}' but current is '{existing}'"
        )),
        E::ExchangeConflict { exchange, existing, requested } => bad_request(format!(
            "inequivalent arg for exchange '{exchange}' in vhost '{vhost}': received '{requested}' but current is '{existing}'"
        )),
        E::ExchangeInUse { exchange, .. } => bad_request(format!("exchange '{exchange}' in vhost '{vhost}' in use")),
        E::QueueInUse { queue, reason } => bad_request(format!("queue '{queue}' in vhost '{vhost}' {reason}")),
        // RabbitMQ answers a reserved name (amq.*) with a 401.
        E::AccessRefused { .. } => ApiError::new(401, "not_authorised", "Access refused."),
        e @ (E::InvalidName { .. }
        | E::InvalidOptions(_)
        | E::InvalidArgument { .. }
        | E::InvalidArgumentType { .. }
        | E::ExclusiveQueue { .. }
        | E::ExclusiveConsumer { .. }
        | E::QueueDeleted { .. }) => bad_request(e.to_string()),
        e @ (E::TableFull { .. } | E::NoSpace { .. } | E::MemoryBudget { .. } | E::TooManyHandles { .. } | E::LockTimeout { .. }) => {
            ApiError::new(503, "unavailable", e.to_string())
        }
        e => ApiError::new(500, "internal_server_error", e.to_string()),
    }
}

/// RabbitMQ's reason for a `PUT /api/queues/...` that redeclares `name`
/// with settings other than the `existing` ones, as
/// `rabbit_misc:assert_args_equivalence` words it: both values plainly, or
/// one side `none` and the other "the value '…' of type '…'" (the types
/// the management API gives JSON values: `long`, `longstr`, `bool`).
/// `None` if nothing RabbitMQ has an argument for differs (shmq's own
/// sizes, say).
fn queue_inequivalent(name: &str, vhost: &str, existing: &shmq::QueueOptions, requested: &shmq::QueueOptions) -> Option<String> {
    let differs = existing.inequivalence(requested)?;
    // Typed as they arrive in JSON: numbers as longs.
    let shown = |v: &shmq::ArgValue| {
        let kind = match v {
            shmq::ArgValue::Int(_) => "long",
            shmq::ArgValue::Bool(_) => "bool",
            shmq::ArgValue::Str(_) | shmq::ArgValue::Void => "longstr",
        };
        (v.to_string(), kind)
    };
    let text = match (differs.received.as_ref().map(shown), differs.current.as_ref().map(shown)) {
        (Some((r, _)), Some((c, _))) => format!("received '{r}' but current is '{c}'"),
        (Some((r, kind)), None) => format!("received the value '{r}' of type '{kind}' but current is none"),
        (None, Some((c, kind))) => format!("received none but current is the value '{c}' of type '{kind}'"),
        (None, None) => return None,
    };
    Some(format!("inequivalent arg '{}' for queue '{name}' in vhost '{vhost}': {text}", differs.key))
}

/// Decodes one percent-encoded path segment; `None` if malformed or not
/// UTF-8.
pub fn decode_segment(segment: &str) -> Option<String> {
    decode(segment, false)
}

fn decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes all but RFC 3986's unreserved characters.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RabbitMQ's `quote_plus`: unreserved characters stay, a space is `+`.
fn quote_plus(text: &str) -> String {
    encode_component(text).replace("%20", "+")
}

/// A binding's `properties_key`, as RabbitMQ makes it: the routing key
/// quoted, then `~` and a hash of the arguments if there are any (`~`
/// alone for an empty key without arguments). RabbitMQ hashes the
/// arguments' Erlang term; this hash is shmq's own (FNV-1a over the sorted
/// arguments), so keys of bindings with arguments differ between the two:
/// clients take them from the listing, as RabbitMQ's own tools do.
pub fn properties_key(key: &str, arguments: &[(String, shmq::ArgValue)]) -> String {
    if arguments.is_empty() {
        return if key.is_empty() { "~".to_owned() } else { quote_plus(key) };
    }
    let mut sorted: Vec<&(String, shmq::ArgValue)> = arguments.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hash: u32 = 0x811c_9dc5;
    for (k, v) in sorted {
        for b in k.bytes().chain([0]).chain(v.amqp_type().bytes()).chain([0]).chain(v.to_string().into_bytes()).chain([0]) {
            hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
    }
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.to_be_bytes());
    format!("{}~{encoded}", quote_plus(key))
}

/// A decoded query string.
struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a query string; `None` if malformed.
    fn parse(query: &str) -> Option<Query> {
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                Some((decode(k, true)?, decode(v, true)?))
            })
            .collect::<Option<Vec<_>>>()
            .map(Query)
    }

    /// The first value of `key`.
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn arg_json(v: &shmq::ArgValue) -> Value {
    match v {
        shmq::ArgValue::Str(s) => json!(s),
        shmq::ArgValue::Int(i) => json!(i),
        shmq::ArgValue::Bool(b) => json!(b),
        shmq::ArgValue::Void => Value::Null,
    }
}

fn args_json(args: &[(String, shmq::ArgValue)]) -> Value {
    Value::Object(args.iter().map(|(k, v)| (k.clone(), arg_json(v))).collect())
}

/// JSON arguments as shmq's (strings, integers, booleans, null).
fn json_args(value: Option<&Value>) -> Result<Vec<(String, shmq::ArgValue)>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let object = value.as_object().ok_or_else(|| bad_request("arguments must be a JSON object"))?;
    object
        .iter()
        .map(|(k, v)| {
            let arg = match v {
                Value::String(s) => shmq::ArgValue::Str(s.clone()),
                Value::Bool(b) => shmq::ArgValue::Bool(*b),
                Value::Null => shmq::ArgValue::Void,
                Value::Number(n) => match n.as_i64() {
                    Some(i) => shmq::ArgValue::Int(i),
                    None => {
                        return Err(bad_request(format!("argument '{k}' is {n}: shmq takes integer, string, boolean or null arguments")))
                    }
                },
                other => {
                    return Err(bad_request(format!("argument '{k}' is {other}: shmq takes integer, string, boolean or null arguments")))
                }
            };
            Ok((k.clone(), arg))
        })
        .collect()
}

/// The request body as a JSON object (an empty body is `{}`).
fn body_object(request: &Request) -> Result<Map<String, Value>, ApiError> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(bad_request("not_json")),
    }
}

/// A boolean field, `false` if absent; RabbitMQ's reason if not a boolean.
fn flag(body: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        // RabbitMQ also takes the strings "true" and "false".
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(other) => Err(bad_request(json!(["not_boolean", other]))),
    }
}

/// `rate` objects for `*_details`.
fn details(rate: f64) -> Value {
    json!({"rate": (rate * 10.0).round() / 10.0})
}

/// RabbitMQ's `message_stats` of counters with their rates.
fn message_stats(c: &Counters, rates: &Rates, unroutable: Option<u64>) -> Value {
    let mut m = Map::new();
    let mut put = |name: &str, value: u64, rate: f64| {
        m.insert(name.to_owned(), json!(value));
        m.insert(format!("{name}_details"), details(rate));
    };
    put("publish", c.published, rates[0]);
    put("deliver_get", c.delivered, rates[1]);
    put("ack", c.acked, rates[2]);
    put("redeliver", c.redelivered, rates[3]);
    if let Some(u) = unroutable {
        put("drop_unroutable", u, rates[4]);
    }
    Value::Object(m)
}

/// `messages`, `messages_ready`, `messages_unacknowledged` and their
/// `*_details`, into `m`.
fn put_depths(m: &mut Map<String, Value>, ready: u64, unacked: u64, rates: &Rates) {
    m.insert("messages".into(), json!(ready.saturating_add(unacked)));
    m.insert("messages_details".into(), details(rates[5]));
    m.insert("messages_ready".into(), json!(ready));
    m.insert("messages_ready_details".into(), details(rates[6]));
    m.insert("messages_unacknowledged".into(), json!(unacked));
    m.insert("messages_unacknowledged_details".into(), details(rates[7]));
}

/// A header value as JSON: tables as objects, arrays as arrays.
fn header_json(value: shmq::HeaderValue<'_>) -> Value {
    use shmq::HeaderValue as V;
    match value {
        V::Str(s) => json!(s),
        V::Bytes(b) => json!(String::from_utf8_lossy(b)),
        V::Int(i) => json!(i),
        V::Float(f) => json!(f),
        V::Bool(b) => json!(b),
        V::Void => Value::Null,
        V::Timestamp(t) => json!(t),
        V::Decimal { scale, value } => json!(f64::from(value) / 10f64.powi(i32::from(scale))),
        V::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.to_owned(), header_json(v))).collect()),
        V::Array(a) => Value::Array(a.iter().map(header_json).collect()),
    }
}

/// A header value built from JSON, owning the encoding of nested tables.
enum OwnedHeader {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Void,
    Table(Vec<u8>),
    Array(Vec<u8>),
}

impl OwnedHeader {
    fn from_json(v: &Value) -> Result<OwnedHeader, String> {
        Ok(match v {
            Value::String(s) => OwnedHeader::Str(s.clone()),
            Value::Bool(b) => OwnedHeader::Bool(*b),
            Value::Null => OwnedHeader::Void,
            Value::Number(n) => match n.as_i64() {
                Some(i) => OwnedHeader::Int(i),
                None => OwnedHeader::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::Object(m) => {
                let kids: Vec<(&str, OwnedHeader)> =
                    m.iter().map(|(k, v)| Ok((k.as_str(), OwnedHeader::from_json(v)?))).collect::<Result<_, String>>()?;
                let entries: Vec<(&str, shmq::HeaderValue<'_>)> = kids.iter().map(|(k, v)| (*k, v.as_value())).collect();
                OwnedHeader::Table(shmq::Headers::encode(&entries).map_err(|e| e.to_string())?)
            }
            Value::Array(a) => {
                let kids: Vec<OwnedHeader> = a.iter().map(OwnedHeader::from_json).collect::<Result<_, String>>()?;
                let values: Vec<shmq::HeaderValue<'_>> = kids.iter().map(OwnedHeader::as_value).collect();
                OwnedHeader::Array(shmq::HeaderArray::encode(&values).map_err(|e| e.to_string())?)
            }
        })
    }

    fn as_value(&self) -> shmq::HeaderValue<'_> {
        match self {
            OwnedHeader::Str(s) => shmq::HeaderValue::Str(s),
            OwnedHeader::Int(i) => shmq::HeaderValue::Int(*i),
            OwnedHeader::Float(f) => shmq::HeaderValue::Float(*f),
            OwnedHeader::Bool(b) => shmq::HeaderValue::Bool(*b),
            OwnedHeader::Void => shmq::HeaderValue::Void,
            // Encoded just above by the library's own encoder.
            OwnedHeader::Table(b) => shmq::Headers::from_encoded(b).map_or(shmq::HeaderValue::Void, shmq::HeaderValue::Table),
            OwnedHeader::Array(b) => shmq::HeaderArray::from_encoded(b).map_or(shmq::HeaderValue::Void, shmq::HeaderValue::Array),
        }
    }
}

/// A message's properties as RabbitMQ shows them (an empty list, as
/// RabbitMQ's JSON has it, when there are none).
fn properties_json(p: &shmq::PropertiesRef<'_>) -> Value {
    let mut m = Map::new();
    let mut text = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), json!(v));
        }
    };
    text("content_type", p.content_type);
    text("content_encoding", p.content_encoding);
    text("correlation_id", p.correlation_id);
    text("reply_to", p.reply_to);
    text("expiration", p.expiration);
    text("message_id", p.message_id);
    text("type", p.kind);
    text("user_id", p.user_id);
    text("app_id", p.app_id);
    if let Some(t) = p.timestamp {
        m.insert("timestamp".into(), json!(t));
    }
    if let Some(n) = p.priority {
        m.insert("priority".into(), json!(n));
    }
    if let Some(n) = p.delivery_mode {
        m.insert("delivery_mode".into(), json!(n));
    }
    if !p.headers.is_empty() {
        m.insert("headers".into(), Value::Object(p.headers.iter().map(|(k, v)| (k.to_owned(), header_json(v))).collect()));
    }
    if m.is_empty() {
        json!([])
    } else {
        Value::Object(m)
    }
}

/// The figures of one queue for its rates.
fn queue_figures(s: &shmq::QueueStats) -> super::stats::Figures {
    figures(&Counters::of(s), s.ready, s.unacked, 0)
}

/// Looks a value up by a dotted path (`message_stats.publish`).
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

/// Orders JSON values: numbers by value, then strings, then the rest.
fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64().unwrap_or(0.0).total_cmp(&y.as_f64().unwrap_or(0.0)),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (x, y) => x.map(Value::to_string).cmp(&y.map(Value::to_string)),
    }
}

impl Api {
    /// Answers one request.
    pub fn handle(&self, request: &Request) -> Response {
        // The UI's files hold no data: served to anyone, as RabbitMQ's are.
        if !self.prometheus_only {
            if let Some(page) = ui::serve(request) {
                return page;
            }
        }
        if let Err(denied) = self.authenticate(request) {
            return denied.into_response();
        }
        self.route(request).unwrap_or_else(ApiError::into_response)
    }

    fn authenticate(&self, request: &Request) -> Result<String, ApiError> {
        // A script's request (the UI's: `X-Requested-With: XMLHttpRequest`)
        // gets no challenge, so that the browser shows the UI's own login
        // error instead of its password dialog.
        let script = request.header("x-requested-with").is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest"));
        let challenge = || {
            if script {
                Vec::new()
            } else {
                vec![("www-authenticate", "Basic realm=\"RabbitMQ Management\"".to_owned())]
            }
        };
        match self.users.check(request.header("authorization"), request.peer.ip()) {
            Ok(user) => Ok(user),
            Err(Denied::NoCredentials) => Err(ApiError { status: 401, body: None, headers: challenge() }),
            Err(Denied::LoginFailed) => Err(ApiError { headers: challenge(), ..ApiError::new(401, "not_authorized", "Login failed") }),
            Err(Denied::LoopbackOnly) => {
                Err(ApiError { headers: challenge(), ..ApiError::new(401, "not_authorized", "User can only log in via localhost") })
            }
        }
    }

    /// The vhost a path names: by name, or `/` for the first.
    fn vhost(&self, name: &str) -> Option<&Vhost> {
        self.vhosts.iter().find(|v| v.name == name).or_else(|| if name == "/" { self.vhosts.first() } else { None })
    }

    /// As [`vhost`](Api::vhost), for a read: RabbitMQ's plain 404.
    fn vhost_or_404(&self, name: &str) -> Result<&Vhost, ApiError> {
        self.vhost(name).ok_or_else(not_found)
    }

    /// As [`vhost`](Api::vhost), for a write: RabbitMQ's `vhost_not_found`.
    fn vhost_for_write(&self, name: &str) -> Result<&Vhost, ApiError> {
        self.vhost(name).ok_or_else(|| ApiError::new(404, "not_found", "vhost_not_found"))
    }

    /// The vhosts a list covers: one, or all for `None`.
    fn vhosts_of(&self, name: Option<&str>) -> Result<Vec<&Vhost>, ApiError> {
        match name {
            Some(n) => Ok(vec![self.vhost_or_404(n)?]),
            None => Ok(self.vhosts.iter().collect()),
        }
    }

    fn route(&self, request: &Request) -> ApiResult {
        let mut segments: Vec<String> = Vec::new();
        for raw in request.path.trim_start_matches('/').split('/') {
            segments.push(decode_segment(raw).ok_or_else(|| bad_request("the path is not valid percent-encoded UTF-8"))?);
        }
        // `/api/exchanges/%2F/` lists, as `/api/exchanges/%2F` does.
        if segments.len() > 1 && segments.last().is_some_and(String::is_empty) {
            segments.pop();
        }
        let query = Query::parse(&request.query).ok_or_else(|| bad_request("the query string is not valid percent-encoded UTF-8"))?;
        let q = |key: &str| query.get(key);
        let method = request.method.as_str();
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        if s == ["metrics"] {
            return match method {
                "GET" => self.metrics(),
                _ => Err(method_not_allowed("HEAD, GET")),
            };
        }
        if self.prometheus_only || s.first() != Some(&"api") {
            return Err(not_found());
        }
        let get = |f: &dyn Fn() -> ApiResult| if method == "GET" { f() } else { Err(method_not_allowed("HEAD, GET, OPTIONS")) };
        let list = |items: Result<Vec<Value>, ApiError>| -> ApiResult { ok_json(&finish_list(items?, &query)?) };
        // An exchange name in a path: `amq.default` is the default exchange.
        let exchange_name = |n: &str| if n == "amq.default" { String::new() } else { n.to_owned() };
        match s[1..] {
            ["overview"] => get(&|| self.overview()),
            ["whoami"] => get(&|| {
                let user = self.authenticate(request)?;
                ok_json(&json!({"name": user, "tags": ["administrator"]}))
            }),
            ["vhosts"] => get(&|| list(self.vhosts.iter().map(|v| self.vhost_json(v)).collect())),
            ["vhosts", vh] => get(&|| ok_json(&self.vhost_json(self.vhost_or_404(vh)?)?)),
            ["queues"] => get(&|| list(self.queues_json(None))),
            ["queues", vh] => get(&|| list(self.queues_json(Some(vh)))),
            ["queues", vh, name] => match method {
                "GET" => self.queue_get(vh, name),
                "PUT" => self.queue_put(vh, name, request),
                "DELETE" => self.queue_delete(vh, name, q("if-unused") == Some("true"), q("if-empty") == Some("true")),
                _ => Err(method_not_allowed("HEAD, GET, PUT, DELETE, OPTIONS")),
            },
            ["queues", vh, name, "contents"] => match method {
                "DELETE" => self.queue_purge(vh, name),
                _ => Err(method_not_allowed("DELETE, OPTIONS")),
            },
            ["queues", vh, name, "get"] => match method {
                "POST" => self.queue_get_messages(vh, name, request),
                _ => Err(method_not_allowed("POST, OPTIONS")),
            },
            ["queues", vh, name, "bindings"] => {
                get(&|| list(self.bindings_json(Some(vh), &|b| b.destination_type == "queue" && b.destination == name)))
            }
            ["exchanges"] => get(&|| list(self.exchanges_json(None))),
            ["exchanges", vh] => get(&|| list(self.exchanges_json(Some(vh)))),
            ["exchanges", vh, name] => match method {
                "GET" => self.exchange_get(vh, &exchange_name(name)),
                "PUT" => self.exchange_put(vh, &exchange_name(name), request),
                "DELETE" => self.exchange_delete(vh, &exchange_name(name), q("if-unused") == Some("true")),
                _ => Err(method_not_allowed("HEAD, GET, PUT, DELETE, OPTIONS")),
            },
            ["exchanges", vh, name, "publish"] => match method {
                "POST" => self.exchange_publish(vh, &exchange_name(name), request),
                _ => Err(method_not_allowed("POST, OPTIONS")),
            },
            ["exchanges", vh, name, "bindings", "source"] => get(&|| {
                let name = exchange_name(name);
                self.exchange_exists(self.vhost_or_404(vh)?, &name)?;
                list(self.bindings_json(Some(vh), &|b| b.source == name))
            }),
            ["exchanges", vh, name, "bindings", "destination"] => get(&|| {
                let name = exchange_name(name);
                self.exchange_exists(self.vhost_or_404(vh)?, &name)?;
                list(self.bindings_json(Some(vh), &|b| b.destination_type == "exchange" && b.destination == name))
            }),
            ["bindings"] => get(&|| list(self.bindings_json(None, &|_| true))),
            ["bindings", vh] => get(&|| list(self.bindings_json(Some(vh), &|_| true))),
            ["bindings", vh, "e", source, kind @ ("q" | "e"), destination] => match method {
                "GET" => {
                    let vhost = self.vhost_or_404(vh)?;
                    let source = exchange_name(source);
                    self.binding_ends_exist(vhost, &source, kind, destination).map_err(|_| not_found())?;
                    list(self.binding_list(vhost, &source, kind, destination))
                }
                "POST" => self.binding_post(vh, &exchange_name(source), kind, destination, request),
                _ => Err(method_not_allowed("HEAD, GET, POST, OPTIONS")),
            },
            ["bindings", vh, "e", source, kind @ ("q" | "e"), destination, props] => {
                let vhost = self.vhost_or_404(vh)?;
                let source = exchange_name(source);
                let found = self.binding_list(vhost, &source, kind, destination)?.into_iter().find(|b| b["properties_key"] == props);
                let found = found.ok_or_else(not_found)?;
                match method {
                    "GET" => ok_json(&found),
                    "DELETE" => self.binding_delete(vhost, &source, kind, destination, &found),
                    _ => Err(method_not_allowed("HEAD, GET, DELETE, OPTIONS")),
                }
            }
            ["consumers"] => get(&|| list(self.consumers_json(None))),
            ["consumers", vh] => get(&|| list(self.consumers_json(Some(vh)))),
            ["definitions"] => match method {
                "GET" => self.definitions_get(None),
                "POST" => self.definitions_post(None, request, q("skip-unsupported") == Some("true")),
                _ => Err(method_not_allowed("HEAD, GET, POST, OPTIONS")),
            },
            ["definitions", vh] => match method {
                "GET" => self.definitions_get(Some(vh)),
                "POST" => self.definitions_post(Some(vh), request, q("skip-unsupported") == Some("true")),
                _ => Err(method_not_allowed("HEAD, GET, POST, OPTIONS")),
            },
            ["shovels"] => get(&|| list(self.shovels_json(None))),
            ["shovels", vh] => get(&|| list(self.shovels_json(Some(vh)))),
            ["connections"] => get(&|| list(self.clients_json(None).map(|c| c.0))),
            ["vhosts", vh, "connections"] => get(&|| list(self.clients_json(Some(vh)).map(|c| c.0))),
            // RabbitMQ's DELETE closes a connection; another process's
            // handles are not this server's to close, so it is refused.
            ["connections", name] => get(&|| ok_json(&self.connection_named(name)?)),
            ["connections", name, "channels"] => get(&|| {
                self.connection_named(name)?;
                let (_, channels) = self.clients_json(None)?;
                list(Ok(channels.into_iter().filter(|c| c["connection_details"]["name"] == name).collect()))
            }),
            ["channels"] => get(&|| list(self.clients_json(None).map(|c| c.1))),
            ["vhosts", vh, "channels"] => get(&|| list(self.clients_json(Some(vh)).map(|c| c.1))),
            ["channels", name] => get(&|| {
                let found = self.clients_json(None)?.1.into_iter().find(|c| c["name"] == name);
                ok_json(&found.ok_or_else(not_found)?)
            }),
            ["shmq", "peers"] => get(&|| list(self.peers_json(None))),
            ["shmq", "peers", vh] => get(&|| list(self.peers_json(Some(vh)))),
            ["healthchecks", "node"] => get(&|| self.healthcheck()),
            ["aliveness-test", vh] => get(&|| self.aliveness(vh)),
            _ => Err(not_found()),
        }
    }

    /// Every vhost's snapshot.
    fn snapshots(&self) -> Result<Vec<VhostSnapshot>, ApiError> {
        self.vhosts.iter().map(|v| VhostSnapshot::take(&v.name, &v.ns, &self.sampler).map_err(|e| library_error(e, &v.name))).collect()
    }

    /// Takes a sample of every vhost, as RabbitMQ's statistics collection
    /// does in the background: keeps totals monotonic across deleted
    /// queues and rates fresh for clients that ask rarely.
    pub fn sample(&self) {
        let Ok(snapshots) = self.snapshots() else { return };
        let now = Instant::now();
        let mut all = Counters::default();
        let (mut ready, mut unacked, mut unroutable) = (0u64, 0u64, 0u64);
        for snap in &snapshots {
            let (r, u) = snap.depth();
            self.sampler.rates(&format!("v\0{}", snap.name), now, figures(&snap.totals, r, u, snap.unroutable));
            for q in &snap.queues {
                self.sampler.rates(&format!("q\0{}\0{}", snap.name, q.name), now, queue_figures(q));
            }
            self.forget_deleted(snap);
            all.add(&snap.totals);
            ready += r;
            unacked += u;
            unroutable += snap.unroutable;
        }
        self.sampler.rates("o", now, figures(&all, ready, unacked, unroutable));
    }

    fn metrics(&self) -> ApiResult {
        let snapshots = self.snapshots()?;
        let text = metrics::render(&self.node, &self.node, &snapshots);
        Ok(Response::new(200, metrics::CONTENT_TYPE, text.into_bytes()))
    }

    fn overview(&self) -> ApiResult {
        let snapshots = self.snapshots()?;
        let now = Instant::now();
        let mut totals = Counters::default();
        let (mut ready, mut unacked, mut unroutable, mut consumers, mut queues, mut exchanges) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        for (snap, vhost) in snapshots.iter().zip(&self.vhosts) {
            totals.add(&snap.totals);
            let (r, u) = snap.depth();
            ready += r;
            unacked += u;
            unroutable += snap.unroutable;
            consumers += snap.consumers();
            queues += snap.queues.len() as u64;
            // The default exchange is one more, as RabbitMQ counts it.
            exchanges += vhost.ns.list_exchanges().map_or(0, |x| x.len() as u64 + 1);
            self.forget_deleted(snap);
        }
        let rates = self.sampler.rates("o", now, figures(&totals, ready, unacked, unroutable));
        let clients = self.clients_json(None)?;
        let mut queue_totals = Map::new();
        put_depths(&mut queue_totals, ready, unacked, &rates);
        let exchange_types: Vec<Value> = ["direct", "fanout", "headers", "topic"]
            .iter()
            .map(|t| json!({"name": t, "description": format!("AMQP {t} exchange, as per the AMQP specification"), "enabled": true}))
            .collect();
        ok_json(&json!({
            "management_version": API_VERSION,
            "rabbitmq_version": API_VERSION,
            "product_name": "shmq",
            "product_version": env!("CARGO_PKG_VERSION"),
            "rates_mode": "basic",
            "cluster_name": self.node,
            "node": self.node,
            "disable_stats": false,
            "enable_queue_totals": false,
            "exchange_types": exchange_types,
            "message_stats": message_stats(&totals, &rates, Some(unroutable)),
            "queue_totals": queue_totals,
            // A process attached to a namespace stands for a connection.
            // As `/api/connections` and `/api/channels` list them.
            "object_totals": {"channels": clients.1.len(), "connections": clients.0.len(),
                              "consumers": consumers, "exchanges": exchanges, "queues": queues},
            "statistics_db_event_queue": 0,
            "listeners": [{"node": self.node, "protocol": "http", "ip_address": self.listen.ip().to_string(), "port": self.listen.port(),
                           "socket_opts": {}}],
            "contexts": [{"node": self.node, "description": "shmq management", "path": "/", "port": self.listen.port().to_string()}],
        }))
    }

    /// Drops samples of the snapshot's vhost's queues that are gone.
    fn forget_deleted(&self, snap: &VhostSnapshot) {
        let names: std::collections::HashSet<String> = snap.queues.iter().map(|q| format!("q\0{}\0{}", snap.name, q.name)).collect();
        self.sampler.retain(&format!("q\0{}\0", snap.name), &|k| names.contains(k));
    }

    fn vhost_json(&self, v: &Vhost) -> Result<Value, ApiError> {
        let snap = VhostSnapshot::take(&v.name, &v.ns, &self.sampler).map_err(|e| library_error(e, &v.name))?;
        self.forget_deleted(&snap);
        let (ready, unacked) = snap.depth();
        let rates = self.sampler.rates(&format!("v\0{}", v.name), Instant::now(), figures(&snap.totals, ready, unacked, snap.unroutable));
        let description = format!("shmq namespace {}", v.ns.path().display());
        let mut m = Map::new();
        m.insert("name".into(), json!(v.name));
        m.insert("description".into(), json!(description));
        m.insert("tags".into(), json!([]));
        m.insert("metadata".into(), json!({"description": description, "tags": []}));
        m.insert("default_queue_type".into(), json!("classic"));
        m.insert("tracing".into(), json!(false));
        m.insert("cluster_state".into(), json!({self.node.clone(): "running"}));
        put_depths(&mut m, ready, unacked, &rates);
        m.insert("message_stats".into(), message_stats(&snap.totals, &rates, Some(snap.unroutable)));
        Ok(Value::Object(m))
    }

    fn queue_json(&self, vhost: &str, s: &shmq::QueueStats, now: Instant) -> Value {
        let rates = self.sampler.rates(&format!("q\0{vhost}\0{}", s.name), now, queue_figures(s));
        let o = &s.options;
        let mut m = Map::new();
        m.insert("name".into(), json!(s.name));
        m.insert("vhost".into(), json!(vhost));
        m.insert("durable".into(), json!(o.durable));
        m.insert("auto_delete".into(), json!(o.auto_delete));
        m.insert("exclusive".into(), json!(o.exclusive));
        m.insert("arguments".into(), args_json(&o.arguments()));
        m.insert("node".into(), json!(self.node));
        m.insert("state".into(), json!("running"));
        m.insert("type".into(), json!(o.queue_type.to_string()));
        m.insert("consumers".into(), json!(s.consumers));
        put_depths(&mut m, s.ready, s.unacked, &rates);
        m.insert("message_bytes".into(), json!(s.bytes_used));
        m.insert("memory".into(), json!(s.capacity_bytes));
        m.insert("policy".into(), Value::Null);
        m.insert("operator_policy".into(), Value::Null);
        m.insert("effective_policy_definition".into(), json!({}));
        m.insert("exclusive_consumer_tag".into(), Value::Null);
        m.insert("single_active_consumer_tag".into(), Value::Null);
        let c = Counters::of(s);
        // RabbitMQ leaves message_stats out until the queue saw traffic.
        if c != Counters::default() {
            m.insert("message_stats".into(), message_stats(&c, &rates, None));
        }
        m.insert(
            "shmq".into(),
            json!({"producers": s.producers, "bytes_used": s.bytes_used, "capacity_bytes": s.capacity_bytes, "rings": s.rings,
                   "overflow": o.overflow_policy().to_string(), "dropped": s.dropped, "expired": s.expired,
                   "dead_lettered": s.dead_lettered, "delivered": s.delivered}),
        );
        Value::Object(m)
    }

    fn queues_json(&self, vh: Option<&str>) -> Result<Vec<Value>, ApiError> {
        let now = Instant::now();
        let mut out = Vec::new();
        for v in self.vhosts_of(vh)? {
            for name in v.ns.list_queues().map_err(|e| library_error(e, &v.name))? {
                match v.ns.queue_stats(&name) {
                    Ok(s) => out.push(self.queue_json(&v.name, &s, now)),
                    Err(shmq::Error::QueueNotFound { .. } | shmq::Error::QueueDeleted { .. }) => {}
                    Err(e) => return Err(library_error(e, &v.name)),
                }
            }
        }
        Ok(out)
    }

    /// A queue's stats, or RabbitMQ's plain 404.
    fn queue_stats(&self, v: &Vhost, name: &str) -> Result<shmq::QueueStats, ApiError> {
        match v.ns.queue_stats(name) {
            Ok(s) => Ok(s),
            Err(shmq::Error::QueueNotFound { .. } | shmq::Error::QueueDeleted { .. } | shmq::Error::InvalidName { .. }) => Err(not_found()),
            Err(e) => Err(library_error(e, &v.name)),
        }
    }

    fn queue_get(&self, vh: &str, name: &str) -> ApiResult {
        let v = self.vhost_or_404(vh)?;
        let s = self.queue_stats(v, name)?;
        ok_json(&self.queue_json(&v.name, &s, Instant::now()))
    }

    fn queue_put(&self, vh: &str, name: &str, request: &Request) -> ApiResult {
        let v = self.vhost_for_write(vh)?;
        let body = body_object(request)?;
        let arguments = json_args(body.get("arguments"))?;
        let options = shmq::QueueOptions::default()
            .with_arguments(name, &arguments)
            .map_err(|e| library_error(e, &v.name))?
            .durable(flag(&body, "durable")?)
            .auto_delete(flag(&body, "auto_delete")?);
        let existing = v.ns.queue_stats(name).ok();
        v.ns.declare_queue(name, &options).map_err(|e| match (&e, &existing) {
            (shmq::Error::PreconditionFailed { .. }, Some(s)) => {
                queue_inequivalent(name, &v.name, &s.options, &options).map_or_else(|| library_error(e, &v.name), bad_request)
            }
            _ => library_error(e, &v.name),
        })?;
        Ok(Response::empty(if existing.is_some() { 204 } else { 201 }))
    }

    fn queue_delete(&self, vh: &str, name: &str, if_unused: bool, if_empty: bool) -> ApiResult {
        let v = self.vhost_or_404(vh)?;
        self.queue_stats(v, name)?;
        match v.ns.delete_queue_if(name, if_unused, if_empty) {
            Ok(()) => Ok(Response::empty(204)),
            Err(shmq::Error::QueueNotFound { .. }) => Err(not_found()),
            Err(e) => Err(library_error(e, &v.name)),
        }
    }

    fn queue_purge(&self, vh: &str, name: &str) -> ApiResult {
        let v = self.vhost_or_404(vh)?;
        self.queue_stats(v, name)?;
        v.ns.purge_queue(name).map_err(|e| library_error(e, &v.name))?;
        Ok(Response::empty(204))
    }

    /// `POST .../get`: basic.get of up to `count` messages, then ack or
    /// requeue/reject them all, as RabbitMQ's `ackmode` says.
    fn queue_get_messages(&self, vh: &str, name: &str, request: &Request) -> ApiResult {
        let v = self.vhost_or_404(vh)?;
        let body = body_object(request)?;
        let missing = |key: &str| bad_request(format!("[{{key_missing,{key}}}]"));
        let count = body.get("count").ok_or_else(|| missing("count"))?;
        let count =
            count.as_u64().or_else(|| count.as_str().and_then(|s| s.parse().ok())).ok_or_else(|| bad_request("count must be a number"))?;
        let ackmode = body.get("ackmode").ok_or_else(|| missing("ackmode"))?.as_str().unwrap_or("");
        let (ack, requeue) = match ackmode {
            "ack_requeue_true" | "reject_requeue_true" => (false, true),
            "ack_requeue_false" => (true, false),
            "reject_requeue_false" => (false, false),
            other => {
                return Err(bad_request(format!(
                    "unknown ackmode '{other}': use ack_requeue_true, ack_requeue_false, reject_requeue_true or reject_requeue_false"
                )))
            }
        };
        let encoding = body.get("encoding").ok_or_else(|| missing("encoding"))?.as_str().unwrap_or("");
        if encoding != "auto" && encoding != "base64" {
            return Err(bad_request("Unsupported encoding. Please use auto or base64."));
        }
        let truncate = match body.get("truncate") {
            None | Some(Value::Null) => None,
            Some(t) => Some(
                t.as_u64().or_else(|| t.as_str().and_then(|s| s.parse().ok())).ok_or_else(|| bad_request("truncate must be a number"))?,
            ),
        };
        let before = self.queue_stats(v, name)?.ready;
        let consumer =
            v.ns.consumer(name, shmq::ConsumerOptions::default().manual_ack().for_get()).map_err(|e| library_error(e, &v.name))?;
        let mut out = Vec::new();
        let mut tags = Vec::new();
        while (out.len() as u64) < count.min(MAX_GET) {
            let Ok(d) = consumer.try_recv() else { break };
            let body = d.body();
            let shown = truncate.map_or(body, |t| &body[..body.len().min(usize::try_from(t).unwrap_or(usize::MAX))]);
            let (payload, payload_encoding) = match std::str::from_utf8(shown) {
                Ok(text) if encoding == "auto" => (text.to_owned(), "string"),
                _ => (STANDARD.encode(shown), "base64"),
            };
            let p = d.properties();
            out.push(json!({
                "payload_bytes": body.len(), "redelivered": d.redelivered(),
                "exchange": p.exchange.unwrap_or(""), "routing_key": p.routing_key.unwrap_or(""),
                // Ready messages left, as this handle counts them.
                "message_count": before.saturating_sub(out.len() as u64 + 1),
                "properties": properties_json(&p), "payload": payload, "payload_encoding": payload_encoding,
            }));
            tags.push(d.tag());
        }
        for tag in tags {
            let settled = if ack { consumer.ack(tag) } else { consumer.nack(tag, requeue) };
            settled.map_err(|e| ApiError::new(500, "internal_server_error", e.to_string()))?;
        }
        ok_json(&Value::Array(out))
    }

    fn exchange_json(&self, vhost: &str, name: &str, options: &shmq::ExchangeOptions, builtin: bool, ns: &shmq::Namespace) -> Value {
        let mut arguments = Map::new();
        if let Some(a) = &options.alternate_exchange {
            arguments.insert("alternate-exchange".into(), json!(a));
        }
        let mut m = Map::new();
        m.insert("name".into(), json!(name));
        m.insert("vhost".into(), json!(vhost));
        m.insert("type".into(), json!(options.kind.to_string()));
        m.insert("durable".into(), json!(options.durable || builtin));
        m.insert("auto_delete".into(), json!(options.auto_delete));
        m.insert("internal".into(), json!(options.internal));
        m.insert("arguments".into(), Value::Object(arguments));
        // Who declared it is not recorded in shmq.
        m.insert("user_who_performed_action".into(), json!(if builtin { "rmq-internal" } else { "unknown" }));
        let (published, unroutable) = ns.exchange_stats(name);
        if published > 0 {
            let routed = published.saturating_sub(unroutable);
            let rates = self.sampler.rates(&format!("x\0{vhost}\0{name}"), Instant::now(), [published, routed, 0, 0, 0, 0, 0, 0]);
            m.insert(
                "message_stats".into(),
                json!({"publish_in": published, "publish_in_details": details(rates[0]),
                       "publish_out": routed, "publish_out_details": details(rates[1])}),
            );
        }
        Value::Object(m)
    }

    /// Every exchange of a vhost as JSON, the default one first.
    fn vhost_exchanges(&self, v: &Vhost) -> Result<Vec<Value>, ApiError> {
        let mut out = vec![self.exchange_json(&v.name, "", &shmq::ExchangeOptions::new(shmq::ExchangeKind::Direct), true, &v.ns)];
        let mut exchanges = v.ns.list_exchanges().map_err(|e| library_error(e, &v.name))?;
        exchanges.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(exchanges.iter().map(|x| self.exchange_json(&v.name, &x.name, &x.options, x.builtin, &v.ns)));
        Ok(out)
    }

    fn exchanges_json(&self, vh: Option<&str>) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        for v in self.vhosts_of(vh)? {
            out.extend(self.vhost_exchanges(v)?);
        }
        Ok(out)
    }

    /// Ok if exchange `name` exists (`""` always does); RabbitMQ's plain 404 if not.
    fn exchange_exists(&self, v: &Vhost, name: &str) -> Result<(), ApiError> {
        if name.is_empty() || v.ns.declare_exchange_passive(name).is_ok() {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    fn exchange_get(&self, vh: &str, name: &str) -> ApiResult {
        let v = self.vhost_or_404(vh)?;
        let found = self.vhost_exchanges(v)?.into_iter().find(|x| x["name"] == name).ok_or_else(not_found)?;
        ok_json(&found)
    }

    fn exchange_put(&self, vh: &str, name: &str, request: &Request) -> ApiResult {
        let v = self.vhost_for_write(vh)?;
        if name.is_empty() {
            return Err(ApiError::new(401, "not_authorised", "Access refused."));
        }
        let body = body_object(request)?;
        let kind = match body.get("type") {
            None | Some(Value::Null) => shmq::ExchangeKind::Direct,
            Some(t) => {
                let t = t.as_str().unwrap_or("");
                t.parse().map_err(|_| bad_request(format!("invalid exchange type '{t}'")))?
            }
        };
        let mut options = shmq::ExchangeOptions::new(kind)
            .durable(flag(&body, "durable")?)
            .auto_delete(flag(&body, "auto_delete")?)
            .internal(flag(&body, "internal")?);
        for (key, value) in json_args(body.get("arguments"))? {
            match (key.as_str(), value) {
                ("alternate-exchange", shmq::ArgValue::Str(a)) => options = options.alternate_exchange(&a),
                (key, _) => {
                    return Err(bad_request(format!("exchange argument '{key}' is not supported by shmq (only alternate-exchange)")))
                }
            }
        }
        let existed = v.ns.declare_exchange_passive(name).is_ok();
        v.ns.declare_exchange(name, &options).map_err(|e| library_error(e, &v.name))?;
        Ok(Response::empty(if existed { 204 } else { 201 }))
    }

    fn exchange_delete(&self, vh: &str, name: &str, if_unused: bool) -> ApiResult {
        let v = self.vhost_or_404(vh)?;
        if name.is_empty() {
            return Err(ApiError::new(401, "not_authorised", "Access refused."));
        }
        self.exchange_exists(v, name)?;
        match v.ns.delete_exchange(name, if_unused) {
            Ok(()) => Ok(Response::empty(204)),
            Err(shmq::Error::ExchangeNotFound { .. }) => Err(not_found()),
            Err(e) => Err(library_error(e, &v.name)),
        }
    }

    /// `POST .../publish`: one message through the exchange.
    fn exchange_publish(&self, vh: &str, name: &str, request: &Request) -> ApiResult {
        let v = self.vhost_or_404(vh)?;
        let body = body_object(request)?;
        let missing = |key: &str| bad_request(format!("[{{key_missing,{key}}}]"));
        let properties = body.get("properties").ok_or_else(|| missing("properties"))?;
        let routing_key = body
            .get("routing_key")
            .ok_or_else(|| missing("routing_key"))?
            .as_str()
            .ok_or_else(|| bad_request("routing_key must be a string"))?;
        let payload =
            body.get("payload").ok_or_else(|| missing("payload"))?.as_str().ok_or_else(|| bad_request("payload must be a string"))?;
        let encoding = body.get("payload_encoding").ok_or_else(|| missing("payload_encoding"))?.as_str().unwrap_or("");
        let payload: Vec<u8> = match encoding {
            "string" => payload.as_bytes().to_vec(),
            "base64" => STANDARD.decode(payload).map_err(|_| bad_request("payload is not valid base64"))?,
            other => return Err(bad_request(format!("unsupported payload_encoding '{other}': use string or base64"))),
        };
        let empty = Map::new();
        let p = match properties {
            Value::Object(m) => m,
            // RabbitMQ's own empty properties are an empty list.
            Value::Array(a) if a.is_empty() => &empty,
            _ => return Err(bad_request("properties must be a JSON object")),
        };
        let text = |key: &str| -> Result<Option<&str>, ApiError> {
            match p.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(bad_request(format!("property {key} must be a string"))),
            }
        };
        let number = |key: &str, max: u64| -> Result<Option<u64>, ApiError> {
            match p.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(n) => n
                    .as_u64()
                    .filter(|n| *n <= max)
                    .map(Some)
                    .ok_or_else(|| bad_request(format!("property {key} must be a number up to {max}"))),
            }
        };
        let headers_owned: Vec<(&str, OwnedHeader)> = match p.get("headers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(h)) => h
                .iter()
                .map(|(k, v)| OwnedHeader::from_json(v).map(|o| (k.as_str(), o)))
                .collect::<Result<_, String>>()
                .map_err(|e| bad_request(format!("headers: {e}")))?,
            Some(_) => return Err(bad_request("property headers must be a JSON object")),
        };
        let headers: Vec<(&str, shmq::HeaderValue<'_>)> = headers_owned.iter().map(|(k, v)| (*k, v.as_value())).collect();
        let props = shmq::Properties {
            content_type: text("content_type")?,
            content_encoding: text("content_encoding")?,
            correlation_id: text("correlation_id")?,
            reply_to: text("reply_to")?,
            expiration: text("expiration")?,
            message_id: text("message_id")?,
            kind: text("type")?,
            user_id: text("user_id")?,
            app_id: text("app_id")?,
            timestamp: number("timestamp", u64::MAX)?,
            priority: number("priority", 255)?.map(|n| n as u8),
            delivery_mode: number("delivery_mode", 2)?.map(|n| n as u8),
            headers: &headers,
            ..shmq::Properties::new()
        };
        let mut publisher = v.publisher.lock().unwrap_or_else(|e| e.into_inner());
        match publisher.publish(name, routing_key, &props, &payload) {
            Ok(routed) => ok_json(&json!({"routed": routed.queues > 0})),
            Err(shmq::PublishError::ExchangeNotFound) => {
                Err(bad_request(format!("404 NOT_FOUND - no exchange '{name}' in vhost '{}'", v.name)))
            }
            Err(e) => Err(bad_request(e.to_string())),
        }
    }

    /// Bindings of the vhosts as JSON, those `keep` keeps; the default
    /// exchange's implicit binding of every queue first, as RabbitMQ lists
    /// them.
    fn bindings_json(&self, vh: Option<&str>, keep: &dyn Fn(&BindingView<'_>) -> bool) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        for v in self.vhosts_of(vh)? {
            let queues = v.ns.list_queues().map_err(|e| library_error(e, &v.name))?;
            let mut views: Vec<BindingView<'_>> = queues
                .iter()
                .map(|q| BindingView { source: "", destination: q, destination_type: "queue", key: q, arguments: &[] })
                .collect();
            let bindings = v.ns.list_bindings().map_err(|e| library_error(e, &v.name))?;
            let mut explicit: Vec<BindingView<'_>> = bindings
                .iter()
                .map(|b| BindingView {
                    source: &b.source,
                    destination: b.destination.name(),
                    destination_type: if matches!(b.destination, shmq::Destination::Queue(_)) { "queue" } else { "exchange" },
                    key: &b.key,
                    arguments: &b.arguments,
                })
                .collect();
            explicit.sort_by(|a, b| (a.source, a.destination, a.key).cmp(&(b.source, b.destination, b.key)));
            views.extend(explicit);
            out.extend(views.iter().filter(|b| keep(b)).map(|b| b.json(&v.name)));
        }
        Ok(out)
    }

    /// Checks both ends of a binding path: the source exchange and the
    /// destination queue (`q`) or exchange (`e`).
    fn binding_ends_exist(&self, v: &Vhost, source: &str, kind: &str, destination: &str) -> Result<(), ApiError> {
        if !source.is_empty() && v.ns.declare_exchange_passive(source).is_err() {
            return Err(ApiError::new(404, "not_found", format!("no exchange '{source}' in vhost '{}'", v.name)));
        }
        let exists = if kind == "q" { v.ns.queue_stats(destination).is_ok() } else { v.ns.declare_exchange_passive(destination).is_ok() };
        if !exists {
            let what = if kind == "q" { "queue" } else { "exchange" };
            return Err(ApiError::new(404, "not_found", format!("no {what} '{destination}' in vhost '{}'", v.name)));
        }
        Ok(())
    }

    fn binding_list(&self, v: &Vhost, source: &str, kind: &str, destination: &str) -> Result<Vec<Value>, ApiError> {
        let destination_type = if kind == "q" { "queue" } else { "exchange" };
        self.bindings_json(Some(&v.name), &|b| b.source == source && b.destination_type == destination_type && b.destination == destination)
    }

    fn binding_post(&self, vh: &str, source: &str, kind: &str, destination: &str, request: &Request) -> ApiResult {
        let v = self.vhost_for_write(vh)?;
        let body = body_object(request)?;
        let key = match body.get("routing_key") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(bad_request("routing_key must be a string")),
        };
        let arguments = json_args(body.get("arguments"))?;
        self.binding_ends_exist(v, source, kind, destination)?;
        if source.is_empty() {
            return Err(ApiError::new(401, "not_authorised", "Access refused."));
        }
        let bound = if kind == "q" {
            v.ns.bind_queue(destination, source, key, &arguments)
        } else {
            v.ns.bind_exchange(destination, source, key, &arguments)
        };
        bound.map_err(|e| library_error(e, &v.name))?;
        let location = format!("{}/{}", encode_component(destination), encode_component(&properties_key(key, &arguments)));
        Ok(Response::empty(201).with_header("location", location))
    }

    fn binding_delete(&self, v: &Vhost, source: &str, kind: &str, destination: &str, found: &Value) -> ApiResult {
        if source.is_empty() {
            return Err(ApiError::new(401, "not_authorised", "Access refused."));
        }
        let key = found["routing_key"].as_str().unwrap_or("");
        let arguments = json_args(found.get("arguments"))?;
        let unbound = if kind == "q" {
            v.ns.unbind_queue(destination, source, key, &arguments)
        } else {
            v.ns.unbind_exchange(destination, source, key, &arguments)
        };
        unbound.map_err(|e| library_error(e, &v.name))?;
        Ok(Response::empty(204))
    }

    fn consumers_json(&self, vh: Option<&str>) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        for v in self.vhosts_of(vh)? {
            let handles = v.ns.list_consumers().map_err(|e| library_error(e, &v.name))?;
            for (index, h) in handles.iter().enumerate().filter(|(_, h)| h.role == "consumer") {
                let connection = self.connection_name(v, h.pid);
                out.push(json!({
                    "queue": {"name": h.queue, "vhost": v.name},
                    // shmq has no consumer tags: a name from the process and the row.
                    "consumer_tag": format!("shmq-{}-{index}", h.pid),
                    "prefetch_count": h.prefetch,
                    "active": h.active,
                    "activity_status": if h.active { "up" } else { "waiting" },
                    // Not recorded in shmq's handle table.
                    "ack_required": Value::Null,
                    "exclusive": Value::Null,
                    "arguments": {},
                    "channel_details": {"name": connection, "connection_name": connection, "node": self.node, "number": 1,
                                        "peer_host": "local", "peer_port": Value::Null, "user": Value::Null},
                    "shmq": {"pid": h.pid, "alive": h.alive, "unacked": h.unacked, "delivered": h.delivered, "acked": h.acked},
                }));
            }
        }
        Ok(out)
    }

    fn definitions_get(&self, vh: Option<&str>) -> ApiResult {
        let mut merged: Option<Value> = None;
        for v in self.vhosts_of(vh).map_err(|_| bad_request("vhost_not_found"))? {
            let defs = definitions::export_value(&v.ns, &v.name).map_err(|e| ApiError::new(500, "internal_server_error", e.to_string()))?;
            match &mut merged {
                None => merged = Some(defs),
                Some(all) => {
                    for key in ["vhosts", "queues", "exchanges", "bindings"] {
                        let extra = defs[key].as_array().cloned().unwrap_or_default();
                        if let Some(into) = all[key].as_array_mut() {
                            into.extend(extra);
                        }
                    }
                }
            }
        }
        let mut defs = merged.unwrap_or_else(|| json!({}));
        if vh.is_some() {
            // RabbitMQ's per-vhost export names no vhost.
            if let Some(m) = defs.as_object_mut() {
                for key in ["users", "vhosts", "permissions", "topic_permissions", "global_parameters"] {
                    m.remove(key);
                }
                for key in ["queues", "exchanges", "bindings"] {
                    for item in m.get_mut(key).and_then(Value::as_array_mut).into_iter().flatten() {
                        if let Some(item) = item.as_object_mut() {
                            item.remove("vhost");
                        }
                    }
                }
            }
        }
        ok_json(&defs)
    }

    /// `POST /api/definitions[/{vhost}]`: imports with `shmq import`'s
    /// plan, all or nothing per vhost; what shmq cannot honour is refused
    /// by name (400) unless `?skip-unsupported=true`.
    fn definitions_post(&self, vh: Option<&str>, request: &Request, skip_unsupported: bool) -> ApiResult {
        let Ok(Value::Object(mut defs)) = serde_json::from_slice::<Value>(&request.body) else {
            return Err(bad_request("failed_to_parse_json"));
        };
        let mut imports: Vec<(&Vhost, String)> = Vec::new();
        match vh {
            Some(vh) => {
                let v = self.vhost(vh).ok_or_else(|| bad_request("vhost_not_found"))?;
                // Every item belongs to this vhost, whatever it names.
                for key in ["queues", "exchanges", "bindings", "policies", "parameters", "permissions", "topic_permissions"] {
                    for item in defs.get_mut(key).and_then(Value::as_array_mut).into_iter().flatten() {
                        if let Some(item) = item.as_object_mut() {
                            item.insert("vhost".into(), json!(v.name));
                        }
                    }
                }
                defs.insert("vhosts".into(), json!([{"name": v.name}]));
                imports.push((v, v.name.clone()));
            }
            None => {
                let mut names: Vec<String> = Vec::new();
                let list = |key: &str| defs.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
                for v in list("vhosts") {
                    names.push(v.get("name").and_then(Value::as_str).unwrap_or("/").to_owned());
                }
                for key in ["queues", "exchanges", "bindings", "policies", "parameters", "permissions", "topic_permissions"] {
                    names.extend(list(key).iter().map(|i| i.get("vhost").and_then(Value::as_str).unwrap_or("/").to_owned()));
                }
                names.sort();
                names.dedup();
                let unknown: Vec<&String> = names.iter().filter(|n| self.vhost(n).is_none()).collect();
                if !unknown.is_empty() {
                    let unknown: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
                    return Err(bad_request(format!(
                        "vhost_not_found: shmq serves a fixed set of namespaces; not served: {}",
                        unknown.join(", ")
                    )));
                }
                for name in names {
                    let v = self.vhost(&name).ok_or_else(|| bad_request("vhost_not_found"))?;
                    imports.push((v, name));
                }
            }
        }
        let defs = Value::Object(defs);
        for (v, name) in imports {
            let options = definitions::ImportOptions { vhost: Some(name.clone()), skip_unsupported };
            definitions::import_value(&v.ns, &defs, &options).map_err(|e| bad_request(e.to_string()))?;
        }
        Ok(Response::empty(204))
    }

    /// `GET /api/shovels[/{vhost}]`, as RabbitMQ's shovel_management
    /// plugin: every shovel `shmq shovel declare` stored in the vhost's
    /// namespace, as `shmq shovel list` lists them, with the state its
    /// runner (`shmq shovel run`) last wrote in RabbitMQ's terms
    /// (`starting`, `running`, `terminated` with a `reason`), URIs with
    /// their passwords hidden, and shmq's own figures under `shmq`.
    fn shovels_json(&self, vh: Option<&str>) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        for v in self.vhosts_of(vh)? {
            let listings = shovel::list_shovels(&v.ns).map_err(|e| ApiError::new(500, "internal_server_error", e.to_string()))?;
            out.extend(listings.iter().map(|l| self.shovel_json(&v.name, l)));
        }
        Ok(out)
    }

    fn shovel_json(&self, vhost: &str, l: &shovel::ShovelListing) -> Value {
        // RabbitMQ's states: a shovel waiting to reconnect, stopped, done,
        // invalid or without a runner is `terminated`, with why.
        let (state, reason) = match l.state.as_str() {
            "starting" => ("starting", None),
            "running" => ("running", None),
            "not running" => ("terminated", Some("no `shmq shovel run` process runs it".to_owned())),
            "invalid" => ("terminated", Some(format!("invalid definition: {}", l.src))),
            "terminated" => ("terminated", Some("done (src-delete-after reached)".to_owned())),
            other => ("terminated", Some(l.last_error.as_ref().map_or_else(|| other.to_owned(), |e| format!("{other}: {e}")))),
        };
        let mut m = Map::new();
        m.insert("name".into(), json!(l.name));
        m.insert("vhost".into(), json!(vhost));
        m.insert("type".into(), json!("dynamic"));
        m.insert("state".into(), json!(state));
        m.insert("node".into(), json!(self.node));
        if let Some(reason) = reason {
            m.insert("reason".into(), json!(reason));
        }
        if let Some(definition) = l.definition.as_object() {
            for side in ["src", "dest"] {
                let text = |k: &str| definition.get(&format!("{side}-{k}")).and_then(Value::as_str);
                // Already redacted by the listing.
                let uri = text("uri").unwrap_or("");
                m.insert(format!("{side}_uri"), json!(uri));
                m.insert(format!("{side}_protocol"), json!(if uri.starts_with("amqp") { "amqp091" } else { "shm" }));
                for key in ["queue", "exchange", "exchange-key"] {
                    if let Some(value) = text(key) {
                        m.insert(format!("{side}_{}", key.replace('-', "_")), json!(value));
                    }
                }
            }
        }
        if state == "running" {
            m.insert("blocked_status".into(), json!("running"));
        }
        // RabbitMQ 4.1's count of moved messages.
        if let Some(n) = l.transferred {
            m.insert("forwarded".into(), json!(n));
        }
        m.insert(
            "shmq".into(),
            json!({"state": l.state, "runner": l.running, "transferred": l.transferred, "last_error": l.last_error,
                   "src": l.src, "dest": l.dest}),
        );
        Value::Object(m)
    }

    /// `GET /api/shmq/peers[/{vhost}]` (shmq's own): the processes attached
    /// to each namespace, from the library's liveness records, with the
    /// queue handles each holds and its command name. A process that opened
    /// the namespace more than once (a shovel between two queues of it) has
    /// one row, with each of its liveness tokens in `tokens`.
    /// A vhost's attached processes: `(pid, alive, liveness tokens)`; a
    /// token without a pid stands alone.
    fn processes(v: &Vhost) -> Vec<(Option<u32>, bool, Vec<u64>)> {
        let mut processes: Vec<(Option<u32>, bool, Vec<u64>)> = Vec::new();
        for (token, alive, pid) in v.ns.peers() {
            match processes.iter_mut().find(|p| pid.is_some() && p.0 == pid) {
                Some(p) => {
                    p.1 |= alive;
                    p.2.push(token);
                }
                None => processes.push((pid, alive, vec![token])),
            }
        }
        processes
    }

    /// RabbitMQ's connections and channels, in one pass over each vhost's
    /// handles and liveness files. A shmq client is a process attached to
    /// a namespace (no socket, no login): each live process but this
    /// server is a connection per vhost it is attached to, named as in
    /// the consumers' channel details (`connection_name`), and each of its
    /// handles there (consumer or producer) a channel, numbered from 1.
    fn clients_json(&self, vh: Option<&str>) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
        let (mut connections, mut channels) = (Vec::new(), Vec::new());
        let mut users = ProcessUsers::default();
        for v in self.vhosts_of(vh)? {
            let handles = v.ns.list_consumers().map_err(|e| library_error(e, &v.name))?;
            for (pid, alive, tokens) in Self::processes(v) {
                let Some(pid) = pid.filter(|&p| alive && p != std::process::id()) else { continue };
                let name = self.connection_name(v, pid);
                let user = users.of(pid);
                let mine: Vec<&shmq::HandleInfo> = handles.iter().filter(|h| h.pid == pid && h.alive).collect();
                for (number, h) in (1u32..).zip(&mine) {
                    let consumer = h.role == "consumer";
                    channels.push(json!({
                        "name": format!("{name} ({number})"), "number": number, "vhost": v.name, "node": self.node,
                        "state": "running", "user": user,
                        "connection_details": {"name": name, "peer_host": "local", "peer_port": 0},
                        "consumer_count": u32::from(consumer), "prefetch_count": h.prefetch,
                        "messages_unacknowledged": h.unacked, "messages_unconfirmed": 0,
                        // A shmq publish returns once the message is in the
                        // queue: there is nothing left to confirm.
                        "confirm": false, "transactional": false,
                        "shmq": {"queue": h.queue, "role": h.role},
                    }));
                }
                // When it attached: its oldest liveness file's time.
                let connected_at = tokens
                    .iter()
                    .filter_map(|t| std::fs::metadata(v.ns.path().join("peers").join(format!("{t:016x}"))).ok()?.modified().ok())
                    .min()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as u64);
                connections.push(json!({
                    "name": name, "vhost": v.name, "node": self.node, "state": "running",
                    "type": "direct", "protocol": "shmq (shared memory)", "user": user,
                    "connected_at": connected_at, "host": Value::Null, "port": Value::Null,
                    "peer_host": "local", "peer_port": Value::Null, "ssl": false, "auth_mechanism": "none",
                    // rabbitmqadmin reads it as a u16.
                    "channels": mine.len().min(usize::from(u16::MAX)), "channel_max": Value::Null,
                    "client_properties": {"product": "shmq", "version": env!("CARGO_PKG_VERSION"), "platform": "Rust",
                                          "connection_name": process_name(pid).unwrap_or_default()},
                    "shmq": {"pid": pid, "tokens": tokens.iter().map(|t| format!("{t:016x}")).collect::<Vec<_>>()},
                }));
            }
        }
        Ok((connections, channels))
    }

    /// The connection name of process `pid` in vhost `v`: `pid N` in the
    /// first vhost (`/`), `pid N on VHOST` in the others, so that a process
    /// attached to several namespaces (a shovel) has a name in each.
    fn connection_name(&self, v: &Vhost, pid: u32) -> String {
        if self.vhosts.first().is_some_and(|first| std::ptr::eq(first, v)) {
            format!("pid {pid}")
        } else {
            format!("pid {pid} on {}", v.name)
        }
    }

    /// One connection by name, in any vhost.
    fn connection_named(&self, name: &str) -> Result<Value, ApiError> {
        self.clients_json(None)?.0.into_iter().find(|c| c["name"] == name).ok_or_else(not_found)
    }

    fn peers_json(&self, vh: Option<&str>) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        for v in self.vhosts_of(vh)? {
            let handles = v.ns.list_consumers().map_err(|e| library_error(e, &v.name))?;
            for (pid, alive, tokens) in Self::processes(v) {
                let mine: Vec<&shmq::HandleInfo> = handles.iter().filter(|h| Some(h.pid) == pid).collect();
                let count = |role: &str| mine.iter().filter(|h| h.role == role).count();
                let mut queues: Vec<Value> = mine.iter().map(|h| json!({"name": h.queue, "role": h.role})).collect();
                queues.dedup();
                let tokens: Vec<String> = tokens.iter().map(|t| format!("{t:016x}")).collect();
                out.push(json!({
                    "name": pid.map_or_else(|| format!("token {}", tokens[0]), |p| format!("pid {p}")),
                    "vhost": v.name, "pid": pid, "tokens": tokens, "alive": alive,
                    "state": if alive { "running" } else { "dead" },
                    "command": pid.and_then(process_name),
                    "consumers": count("consumer"), "producers": count("producer"), "queues": queues,
                    "delivered": mine.iter().map(|h| h.delivered).sum::<u64>(),
                    "acked": mine.iter().map(|h| h.acked).sum::<u64>(),
                    "published": mine.iter().map(|h| h.published).sum::<u64>(),
                }));
            }
        }
        Ok(out)
    }

    fn healthcheck(&self) -> ApiResult {
        for v in &self.vhosts {
            if let Err(e) = v.ns.list_queues().and_then(|_| v.ns.list_exchanges()) {
                let body = json!({"status": "failed", "reason": format!("namespace '{}': {e}", v.name)});
                return Ok(Response::new(503, "application/json", body.to_string().into_bytes()));
            }
        }
        ok_json(&json!({"status": "ok"}))
    }

    /// RabbitMQ's aliveness test: declare `aliveness-test`, publish a
    /// message to it and get it back.
    fn aliveness(&self, vh: &str) -> ApiResult {
        let v = self.vhost_or_404(vh)?;
        let check = || -> Result<(), String> {
            let queue = "aliveness-test";
            v.ns.declare_queue(queue, &shmq::QueueOptions::default().capacity_bytes(64 * 1024)).map_err(|e| e.to_string())?;
            let consumer = v.ns.consumer(queue, shmq::ConsumerOptions::default().manual_ack().for_get()).map_err(|e| e.to_string())?;
            // Left-overs of an earlier test that died first.
            while let Ok(d) = consumer.try_recv() {
                d.ack().map_err(|e| e.to_string())?;
            }
            let token = format!("test_message {:?}", Instant::now());
            v.ns.producer(queue)
                .and_then(|mut p| p.publish(token.as_bytes()).map_err(|e| shmq::Error::InvalidOptions(e.to_string())))
                .map_err(|e| e.to_string())?;
            let d = consumer.recv_timeout(Duration::from_secs(5)).map_err(|e| e.to_string())?;
            let same = d.body() == token.as_bytes();
            d.ack().map_err(|e| e.to_string())?;
            if same {
                Ok(())
            } else {
                Err("got another message than the one published".into())
            }
        };
        match check() {
            Ok(()) => ok_json(&json!({"status": "ok"})),
            Err(reason) => {
                let body = json!({"status": "failed", "reason": reason});
                Ok(Response::new(503, "application/json", body.to_string().into_bytes()))
            }
        }
    }
}

/// The users processes run as, for one request: `/etc/passwd` is read
/// once, each pid looked up once.
#[derive(Default)]
struct ProcessUsers {
    passwd: Option<String>,
    by_pid: Vec<(u32, String)>,
}

impl ProcessUsers {
    /// The user process `pid` runs as: its uid's name in `/etc/passwd`,
    /// else the uid, else "" (the process is gone, or procfs is missing).
    fn of(&mut self, pid: u32) -> String {
        use std::os::unix::fs::MetadataExt;
        if let Some((_, user)) = self.by_pid.iter().find(|(p, _)| *p == pid) {
            return user.clone();
        }
        let user = match std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid()) {
            Err(_) => String::new(),
            Ok(uid) => {
                let passwd = self.passwd.get_or_insert_with(|| std::fs::read_to_string("/etc/passwd").unwrap_or_default());
                let uid = uid.to_string();
                let named = passwd.lines().find_map(|line| {
                    let mut fields = line.split(':');
                    let name = fields.next()?;
                    (fields.nth(1)? == uid).then(|| name.to_owned())
                });
                named.unwrap_or(uid)
            }
        };
        self.by_pid.push((pid, user.clone()));
        user
    }
}

/// A process's command name (`/proc/PID/comm`: its executable's name, at
/// most 15 bytes; not its arguments, which may hold passwords).
fn process_name(pid: u32) -> Option<String> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(name.trim_end().chars().take(64).collect())
}

/// A binding, explicit or the default exchange's implicit one.
pub struct BindingView<'a> {
    pub source: &'a str,
    pub destination: &'a str,
    pub destination_type: &'static str,
    pub key: &'a str,
    pub arguments: &'a [(String, shmq::ArgValue)],
}

impl BindingView<'_> {
    fn json(&self, vhost: &str) -> Value {
        json!({"source": self.source, "vhost": vhost, "destination": self.destination, "destination_type": self.destination_type,
               "routing_key": self.key, "arguments": args_json(self.arguments),
               "properties_key": properties_key(self.key, self.arguments)})
    }
}

/// Applies a list endpoint's query: `name` (a substring; `use_regex` is
/// refused), `sort` and `sort_reverse`, `columns`, and pagination with
/// `page` and `page_size` (at most 500), in RabbitMQ's paged shape.
fn finish_list(mut items: Vec<Value>, query: &Query) -> Result<Value, ApiError> {
    let q = |key: &str| query.get(key);
    let total = items.len();
    if q("use_regex") == Some("true") {
        return Err(bad_request("use_regex is not supported by shmq: name filters by substring"));
    }
    if let Some(name) = q("name").filter(|n| !n.is_empty()) {
        items.retain(|i| i["name"].as_str().is_some_and(|n| n.contains(name)));
    }
    if let Some(key) = q("sort").filter(|k| !k.is_empty()) {
        items.sort_by(|a, b| compare(lookup(a, key), lookup(b, key)));
        if q("sort_reverse") == Some("true") {
            items.reverse();
        }
    }
    if let Some(columns) = q("columns").filter(|c| !c.is_empty()) {
        let columns: Vec<&str> = columns.split(',').map(str::trim).collect();
        items = items
            .into_iter()
            .map(|item| {
                let mut out = Map::new();
                for column in &columns {
                    if let Some(value) = lookup(&item, column) {
                        // `a.b` keeps the nesting: {"a": {"b": ...}}.
                        let mut parts = column.split('.').peekable();
                        let mut at = &mut out;
                        while let Some(part) = parts.next() {
                            if parts.peek().is_none() {
                                at.insert(part.to_owned(), value.clone());
                            } else {
                                let next = at.entry(part.to_owned()).or_insert_with(|| json!({}));
                                let Some(next) = next.as_object_mut() else { break };
                                at = next;
                            }
                        }
                    }
                }
                Value::Object(out)
            })
            .collect();
    }
    let Some(page) = q("page") else { return Ok(Value::Array(items)) };
    let page: usize = page.parse().ok().filter(|p| *p >= 1).ok_or_else(|| bad_request("page must be a positive integer"))?;
    let page_size: usize = q("page_size")
        .map_or(Ok(100), |s| s.parse().ok().filter(|n| (1..=500).contains(n)).ok_or_else(|| bad_request("page_size must be 1 to 500")))?;
    let filtered = items.len();
    let page_count = filtered.div_ceil(page_size);
    if page > page_count.max(1) {
        return Err(bad_request("page out of range"));
    }
    let shown: Vec<Value> = items.into_iter().skip((page - 1) * page_size).take(page_size).collect();
    Ok(json!({"filtered_count": filtered, "item_count": shown.len(), "items": shown, "page": page,
              "page_count": page_count, "page_size": page_size, "total_count": total}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_keys_as_rabbitmq_quotes_them() {
        assert_eq!(properties_key("", &[]), "~");
        assert_eq!(properties_key("k1", &[]), "k1");
        assert_eq!(properties_key("a*b c", &[]), "a%2Ab+c");
        assert_eq!(properties_key("orders/eu", &[]), "orders%2Feu");
        assert_eq!(properties_key("#", &[]), "%23");
        let with = properties_key("k1", &[("x".into(), shmq::ArgValue::Str("y".into()))]);
        assert!(with.starts_with("k1~") && with.len() == 3 + 6, "{with}");
        let other = properties_key("k1", &[("x".into(), shmq::ArgValue::Str("z".into()))]);
        assert_ne!(with, other);
        // Argument order does not matter.
        let ab = [("a".into(), shmq::ArgValue::Int(1)), ("b".into(), shmq::ArgValue::Bool(true))];
        let ba = [ab[1].clone(), ab[0].clone()];
        assert_eq!(properties_key("", &ab), properties_key("", &ba));
    }

    #[test]
    fn decodes_paths_strictly_and_queries_with_plus() {
        assert_eq!(decode_segment("%2F").as_deref(), Some("/"));
        assert_eq!(decode_segment("orders%2Feu").as_deref(), Some("orders/eu"));
        assert_eq!(decode_segment("a+b").as_deref(), Some("a+b"));
        assert_eq!(decode_segment("%ZZ"), None);
        assert_eq!(decode_segment("%2"), None);
        assert_eq!(decode_segment("%FF"), None, "not UTF-8");
        let query = Query::parse("if-unused=true&name=a+b%21").unwrap();
        assert_eq!((query.get("if-unused"), query.get("name"), query.get("x")), (Some("true"), Some("a b!"), None));
        assert!(Query::parse("a=%G1").is_none());
        assert_eq!(encode_component("a%2Ab+c"), "a%252Ab%2Bc");
    }

    #[test]
    fn lists_page_sort_and_pick_columns() {
        let items =
            vec![json!({"name": "b", "n": 2, "s": {"x": 1}}), json!({"name": "a", "n": 10, "s": {"x": 2}}), json!({"name": "ab", "n": 1})];
        let q = |pairs: &[(&str, &str)]| Query(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let sorted = finish_list(items.clone(), &q(&[("sort", "n"), ("sort_reverse", "true")])).unwrap();
        assert_eq!(sorted.as_array().unwrap().iter().map(|i| i["n"].as_i64().unwrap()).collect::<Vec<_>>(), [10, 2, 1]);
        let picked = finish_list(items.clone(), &q(&[("columns", "name,s.x"), ("name", "a")])).unwrap();
        assert_eq!(picked, json!([{"name": "a", "s": {"x": 2}}, {"name": "ab"}]));
        let paged = finish_list(items.clone(), &q(&[("page", "2"), ("page_size", "2")])).unwrap();
        assert_eq!(
            (paged["page_count"].as_u64(), paged["item_count"].as_u64(), paged["total_count"].as_u64()),
            (Some(2), Some(1), Some(3))
        );
        assert_eq!(finish_list(items.clone(), &q(&[("page", "3"), ("page_size", "2")])).unwrap_err().status, 400);
        assert_eq!(finish_list(items, &q(&[("page", "x")])).unwrap_err().status, 400);
    }

    #[test]
    fn headers_round_trip_through_json() {
        let json_headers = json!({"n": 1, "f": 1.5, "s": "x", "b": true, "nil": null, "t": {"deep": [1, "two", {"k": false}]}});
        let owned: Vec<(String, OwnedHeader)> =
            json_headers.as_object().unwrap().iter().map(|(k, v)| (k.clone(), OwnedHeader::from_json(v).unwrap())).collect();
        let entries: Vec<(&str, shmq::HeaderValue<'_>)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_value())).collect();
        let bytes = shmq::Headers::encode(&entries).unwrap();
        let table = shmq::Headers::from_encoded(&bytes).unwrap();
        let back = Value::Object(table.iter().map(|(k, v)| (k.to_owned(), header_json(v))).collect());
        assert_eq!(back, json_headers);
    }
}
