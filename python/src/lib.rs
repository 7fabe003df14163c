//! `shmq._native`: the Rust side of the Python package. The pika-style API
//! (`shmq.BlockingConnection`) and the Pythonic one are written in Python on
//! top of these few classes. Blocking calls release the GIL and wake every
//! 100 ms to let Python handle signals, so Ctrl-C interrupts them promptly.
//! A publish that waits for room (flow control at the namespace's memory
//! budget, or a `block` queue at its limit) releases the GIL too, and looks
//! at signals and its wait callback every 10-50 ms while it waits.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType, PyWeakrefReference};

create_exception!(_native, ShmqError, PyException, "An shmq operation failed; the message says what to do.");
create_exception!(_native, QueueNotFound, ShmqError, "The queue does not exist.");
create_exception!(_native, ExchangeNotFound, ShmqError, "The exchange does not exist.");
create_exception!(_native, PreconditionFailed, ShmqError, "A declare conflicts with what exists.");
create_exception!(
    _native,
    InvalidArgument,
    PreconditionFailed,
    "A queue argument shmq does not implement, or one of the wrong type or value (RabbitMQ's 406 \"invalid arg\")."
);
create_exception!(_native, AccessRefused, ShmqError, "Refused: the queue is in exclusive use (RabbitMQ's 403).");
create_exception!(_native, QueueFull, ShmqError, "The queue is full (reject policy, or a blocking publish timed out).");
create_exception!(_native, Unroutable, ShmqError, "A mandatory message matched no queue.");
create_exception!(_native, UnknownDeliveryTag, ShmqError, "The delivery tag is not held by this consumer.");

fn err(e: shmq::Error) -> PyErr {
    let text = e.to_string();
    match e {
        // RabbitMQ's 404 texts for the channel error pika raises.
        shmq::Error::QueueNotFound { queue, .. } => {
            let reply = format!("NOT_FOUND - no queue '{queue}' in vhost '/'");
            Python::with_gil(|py| with_reply_text(py, QueueNotFound::new_err(text), &reply))
        }
        shmq::Error::ExchangeNotFound { exchange, .. } => {
            let reply = format!("NOT_FOUND - no exchange '{exchange}' in vhost '/'");
            Python::with_gil(|py| with_reply_text(py, ExchangeNotFound::new_err(text), &reply))
        }
        shmq::Error::PreconditionFailed { .. } | shmq::Error::ExchangeConflict { .. } | shmq::Error::ExchangeInUse { .. } => {
            PreconditionFailed::new_err(text)
        }
        shmq::Error::ExclusiveConsumer { queue } => {
            let reply = format!("ACCESS_REFUSED - queue '{queue}' in vhost '/' in exclusive use");
            let e = AccessRefused::new_err(reply.clone());
            Python::with_gil(|py| with_reply_text(py, e, &reply))
        }
        // Outside a declare (which words them as RabbitMQ does, see
        // `invalid_argument`): a bind's invalid `x-match`, say.
        shmq::Error::InvalidArgument { .. } | shmq::Error::InvalidArgumentType { .. } => InvalidArgument::new_err(text),
        _ => ShmqError::new_err(text),
    }
}

fn publish_err(e: shmq::PublishError) -> PyErr {
    let text = e.to_string();
    match e {
        shmq::PublishError::QueueFull | shmq::PublishError::Timeout => QueueFull::new_err(text),
        shmq::PublishError::Unroutable => Unroutable::new_err(text),
        shmq::PublishError::ExchangeNotFound => ExchangeNotFound::new_err(text),
        shmq::PublishError::TooLarge { .. } | shmq::PublishError::InvalidProperty(_) => PyValueError::new_err(text),
        _ => ShmqError::new_err(text),
    }
}

/// A namespace handle. Cheap; share it between threads freely.
#[pyclass(module = "shmq._native")]
struct Namespace {
    inner: shmq::Namespace,
}

fn arg_value(v: &Bound<'_, PyAny>) -> PyResult<shmq::ArgValue> {
    if v.is_none() {
        Ok(shmq::ArgValue::Void)
    } else if let Ok(b) = v.extract::<bool>() {
        Ok(shmq::ArgValue::Bool(b))
    } else if let Ok(i) = v.extract::<i64>() {
        Ok(shmq::ArgValue::Int(i))
    } else {
        Ok(shmq::ArgValue::Str(v.str()?.to_string()))
    }
}

fn arguments(args: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, shmq::ArgValue)>> {
    let mut out = Vec::new();
    if let Some(d) = args {
        for (k, v) in d.iter() {
            out.push((k.str()?.to_string(), arg_value(&v)?));
        }
    }
    Ok(out)
}

/// The AMQP field type pika encodes `v` as, in RabbitMQ's names (what its
/// errors show): an int that fits 32 bits goes as `signedint`, a larger
/// one as `long`.
fn amqp_type(v: &Bound<'_, PyAny>) -> &'static str {
    if v.is_none() {
        "void"
    } else if v.is_instance_of::<PyBool>() {
        "bool"
    } else if v.is_instance_of::<PyInt>() {
        if v.extract::<i32>().is_ok() {
            "signedint"
        } else {
            "long"
        }
    } else if v.is_instance_of::<PyString>() {
        "longstr"
    } else if v.is_instance_of::<PyBytes>() {
        "binary"
    } else if v.is_instance_of::<PyFloat>() {
        "double"
    } else if v.is_instance_of::<PyDict>() {
        "table"
    } else if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        "array"
    } else if is_datetime(v) {
        "timestamp"
    } else {
        "decimal"
    }
}

/// Queue arguments as given (`queue.declare`'s table), each with the AMQP
/// type pika would send it as.
struct QueueArguments {
    args: Vec<(String, shmq::ArgValue)>,
    /// Per entry: the AMQP type, and the value as RabbitMQ prints it.
    given: Vec<(&'static str, String)>,
}

impl QueueArguments {
    fn from_py(d: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut out = Self { args: Vec::new(), given: Vec::new() };
        let Some(d) = d else { return Ok(out) };
        for (k, v) in d.iter() {
            let kind = amqp_type(&v);
            // A value of a type queue arguments never take stands in as
            // void: every argument shmq implements refuses that, and the
            // error is then given the real type (see `invalid_argument`).
            let value = match kind {
                "void" => shmq::ArgValue::Void,
                "bool" => shmq::ArgValue::Bool(v.extract()?),
                "signedint" | "long" => match v.extract::<i64>() {
                    Ok(i) => shmq::ArgValue::Int(i),
                    Err(_) => shmq::ArgValue::Void, // beyond 64 bits: pika cannot send it either
                },
                "longstr" => shmq::ArgValue::Str(v.extract()?),
                _ => shmq::ArgValue::Void,
            };
            let shown = match &value {
                shmq::ArgValue::Bool(b) => b.to_string(),
                shmq::ArgValue::Void => "undefined".to_owned(),
                other => other.to_string(),
            };
            out.args.push((k.str()?.to_string(), value));
            out.given.push((kind, shown));
        }
        Ok(out)
    }

    /// The type and printed value of argument `key` as given, if it was.
    fn given(&self, key: &str) -> Option<(&'static str, &str)> {
        let i = self.args.iter().position(|(k, _)| k == key)?;
        Some((self.given[i].0, self.given[i].1.as_str()))
    }
}

/// The reply text RabbitMQ closes the channel with, for `text`.
fn precondition_failed(text: &str) -> String {
    format!("PRECONDITION_FAILED - {text}")
}

/// A native exception carrying `reply_text`, the text RabbitMQ's 406 would
/// carry in the same case (the pika layer raises it as
/// `ChannelClosedByBroker(406, reply_text)`).
fn with_reply_text(py: Python<'_>, e: PyErr, reply_text: &str) -> PyErr {
    // Setting an attribute on a fresh exception instance cannot fail in
    // practice; if it did, the exception still says what went wrong.
    let _ = e.value(py).setattr("reply_text", reply_text);
    e
}

/// `Error::InvalidArgument` and `InvalidArgumentType` as RabbitMQ words
/// them, with the type of the value as pika sent it (the Rust side only
/// sees shmq's `ArgValue`).
fn invalid_argument(py: Python<'_>, e: shmq::Error, given: &QueueArguments) -> PyErr {
    let text = match e {
        shmq::Error::InvalidArgument { queue, argument, mut reason } => {
            if let (Some((kind, _)), Some((_, value))) = (given.given(&argument), given.args.iter().find(|(k, _)| *k == argument)) {
                let ours = value.amqp_type();
                reason = reason
                    .replace(&format!("{{unacceptable_type,{ours}}}"), &format!("{{unacceptable_type,{kind}}}"))
                    .replace(&format!("got {ours}\""), &format!("got {kind}\""));
            }
            format!("invalid arg '{argument}' for queue '{queue}' in vhost '/': {reason}")
        }
        shmq::Error::InvalidArgumentType { queue, argument, found } => {
            let kind = given.given(&argument).map_or(found, |(kind, _)| kind);
            format!("invalid type '{kind}' for arg '{argument}' in queue '{queue}' in vhost '/'")
        }
        other => return err(other),
    };
    let reply = precondition_failed(&text);
    with_reply_text(py, InvalidArgument::new_err(text), &reply)
}

/// RabbitMQ's "inequivalent arg" text for a redeclare of exchange `name`
/// with `requested` options that conflict with `existing`, in its order
/// (type, durable, auto_delete, internal, then arguments).
fn exchange_inequivalent(name: &str, existing: &shmq::ExchangeOptions, requested: &shmq::ExchangeOptions) -> Option<String> {
    let lead = |key: &str| format!("inequivalent arg '{key}' for exchange '{name}' in vhost '/'");
    let plain =
        |key: &str, received: String, current: String| Some(format!("{}: received '{received}' but current is '{current}'", lead(key)));
    if existing.kind != requested.kind {
        return plain("type", requested.kind.to_string(), existing.kind.to_string());
    }
    for (key, current, received) in [
        ("durable", existing.durable, requested.durable),
        ("auto_delete", existing.auto_delete, requested.auto_delete),
        ("internal", existing.internal, requested.internal),
    ] {
        if current != received {
            return plain(key, received.to_string(), current.to_string());
        }
    }
    let key = "alternate-exchange";
    match (&existing.alternate_exchange, &requested.alternate_exchange) {
        (a, b) if a == b => None,
        (Some(current), Some(received)) => plain(key, received.clone(), current.clone()),
        (None, Some(received)) => Some(format!("{}: received the value '{received}' of type 'longstr' but current is none", lead(key))),
        (Some(current), None) => Some(format!("{}: received none but current is the value '{current}' of type 'longstr'", lead(key))),
        (None, None) => None,
    }
}

/// The type RabbitMQ would show for a stored argument: what pika sends such
/// a value as (shmq keeps values, not their wire types).
fn stored_type(v: &shmq::ArgValue) -> &'static str {
    match v {
        shmq::ArgValue::Int(i) if i32::try_from(*i).is_ok() => "signedint",
        other => other.amqp_type(),
    }
}

/// RabbitMQ's "inequivalent arg" text for a redeclare of `name` with
/// `requested` options (given as `given`) that conflicts with the existing
/// queue's `existing` ones; `None` if the difference is in nothing
/// RabbitMQ has an argument for (e.g. `capacity_bytes`).
fn inequivalent(name: &str, existing: &shmq::QueueOptions, requested: &shmq::QueueOptions, given: &QueueArguments) -> Option<String> {
    let differs = existing.inequivalence(requested)?;
    // As rabbit_misc:assert_args_equivalence prints them: a value on both
    // sides plainly, one side missing as "none" and the other as "the value
    // '…' of type '…'". The received side as given (`x-queue-type: classic`
    // is no setting in shmq's options, but RabbitMQ shows it received).
    let received = match (&differs.received, given.given(differs.key)) {
        (_, Some((kind, shown))) => Some((shown.to_owned(), kind)),
        (Some(v), None) => Some((v.to_string(), stored_type(v))),
        (None, None) => None,
    };
    let current = differs.current.as_ref().map(|v| (v.to_string(), stored_type(v)));
    let text = match (received, current) {
        (Some((r, _)), Some((c, _))) => format!("received '{r}' but current is '{c}'"),
        (Some((r, kind)), None) => format!("received the value '{r}' of type '{kind}' but current is none"),
        (None, Some((c, kind))) => format!("received none but current is the value '{c}' of type '{kind}'"),
        (None, None) => return None,
    };
    Some(format!("inequivalent arg '{}' for queue '{name}' in vhost '/': {text}", differs.key))
}

#[pymethods]
impl Namespace {
    /// Opens (creating) a namespace: a name under /dev/shm/shmq-<uid>, or a path;
    /// None means $SHMQ_NAMESPACE, else "default". `memory_budget` (bytes)
    /// caps what its queues may take in all, beyond which publishes wait
    /// (flow control); it is fixed when the namespace is created, and a
    /// different one for an existing namespace is refused (ShmqError).
    /// None: 40 % of the file system's free space, or the existing budget.
    #[new]
    #[pyo3(signature = (name=None, memory_budget=None))]
    fn new(name: Option<&str>, memory_budget: Option<u64>) -> PyResult<Self> {
        let mut options = shmq::NamespaceOptions::default();
        if let Some(bytes) = memory_budget {
            options = options.memory_budget(bytes);
        }
        let name = match name {
            Some(n) => n.to_owned(),
            None => std::env::var(shmq::NAMESPACE_ENV).unwrap_or_else(|_| "default".to_owned()),
        };
        let inner = shmq::Namespace::open_with(&name, options).map_err(err)?;
        Ok(Self { inner })
    }

    /// The namespace's directory.
    #[getter]
    fn path(&self) -> String {
        self.inner.path().display().to_string()
    }

    /// Declares a queue; returns (name, ready messages, consumers). An empty
    /// name with exclusive=True generates one. `max_length` and
    /// `max_length_bytes` are RabbitMQ's x-max-length and x-max-length-bytes
    /// (ready messages only); `overflow` is "drop-head" (the default),
    /// "reject-publish", "reject-publish-dlx" or "block" (shmq's own: wait
    /// for room). `arguments` takes RabbitMQ's queue arguments (those in
    /// `QUEUE_ARGUMENTS`: x-dead-letter-exchange, x-delivery-limit,
    /// x-expires, ...), checked as RabbitMQ checks them: a bad one raises
    /// `InvalidArgument`, a redeclare with other options
    /// `PreconditionFailed`; both carry `reply_text`, RabbitMQ's 406 text
    /// for the case. A passive declare ignores the options.
    #[pyo3(signature = (name, passive=false, exclusive=false, auto_delete=false, durable=false, capacity_bytes=None, max_length=None, max_length_bytes=None, max_message_bytes=None, overflow=None, message_ttl_ms=None, arguments=None))]
    #[allow(clippy::too_many_arguments)]
    fn declare_queue(
        &self,
        py: Python<'_>,
        name: &str,
        passive: bool,
        exclusive: bool,
        auto_delete: bool,
        durable: bool,
        capacity_bytes: Option<u64>,
        max_length: Option<u64>,
        max_length_bytes: Option<u64>,
        max_message_bytes: Option<u32>,
        overflow: Option<&str>,
        message_ttl_ms: Option<u64>,
        arguments: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(String, u64, u32)> {
        let stats = if passive {
            self.inner.declare_queue_passive(name).map_err(err)?
        } else {
            let mut o = shmq::QueueOptions::default().exclusive(exclusive).auto_delete(auto_delete).durable(durable);
            if let Some(c) = capacity_bytes {
                o = o.capacity_bytes(c);
            }
            if let Some(n) = max_length {
                o = o.max_length(n);
            }
            if let Some(b) = max_length_bytes {
                o = o.max_length_bytes(b);
            }
            if let Some(m) = max_message_bytes {
                o = o.max_message_bytes(m);
            }
            if let Some(p) = overflow {
                o = o.overflow(p.parse().map_err(PyValueError::new_err)?);
            }
            if let Some(ms) = message_ttl_ms {
                o = o.message_ttl(Duration::from_millis(ms));
            }
            let given = QueueArguments::from_py(arguments)?;
            let o = o.with_arguments(name, &given.args).map_err(|e| invalid_argument(py, e, &given))?;
            match self.inner.declare_queue(name, &o) {
                Ok(stats) => stats,
                Err(e @ shmq::Error::PreconditionFailed { .. }) => {
                    let existing = self.inner.queue_stats(name).ok().map(|s| s.options);
                    let text = existing.and_then(|existing| inequivalent(name, &existing, &o, &given));
                    return Err(match text {
                        Some(text) => with_reply_text(py, err(e), &precondition_failed(&text)),
                        None => err(e),
                    });
                }
                Err(e) => return Err(err(e)),
            }
        };
        Ok((stats.name, stats.ready, stats.consumers))
    }

    /// Deletes a queue (its messages go with it); with `if_unused` or
    /// `if_empty`, only if it has no consumer or no message (else
    /// `QueueInUse`, whose `reply_text` is RabbitMQ's 406 text).
    #[pyo3(signature = (name, if_unused=false, if_empty=false))]
    fn delete_queue(&self, py: Python<'_>, name: &str, if_unused: bool, if_empty: bool) -> PyResult<()> {
        self.inner.delete_queue_if(name, if_unused, if_empty).map_err(|e| match e {
            shmq::Error::QueueInUse { queue, reason } => {
                let reply = precondition_failed(&format!("queue '{queue}' in vhost '/' {reason}"));
                with_reply_text(py, PreconditionFailed::new_err(reply.clone()), &reply)
            }
            other => err(other),
        })
    }

    /// Discards a queue's ready messages; returns how many.
    fn purge_queue(&self, name: &str) -> PyResult<u64> {
        self.inner.purge_queue(name).map_err(err)
    }

    /// Names of every queue.
    fn list_queues(&self) -> PyResult<Vec<String>> {
        self.inner.list_queues().map_err(err)
    }

    /// A dict of the queue's counts.
    fn queue_stats<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.queue_stats(name).map_err(err)?;
        let d = PyDict::new(py);
        d.set_item("name", s.name)?;
        d.set_item("ready", s.ready)?;
        d.set_item("unacked", s.unacked)?;
        d.set_item("consumers", s.consumers)?;
        d.set_item("published", s.published)?;
        d.set_item("delivered", s.delivered)?;
        d.set_item("acked", s.acked)?;
        d.set_item("redelivered", s.redelivered)?;
        d.set_item("dropped", s.dropped)?;
        d.set_item("expired", s.expired)?;
        d.set_item("dead_lettered", s.dead_lettered)?;
        let args = PyDict::new(py);
        for (k, v) in s.options.arguments() {
            match v {
                shmq::ArgValue::Str(s) => args.set_item(k, s)?,
                shmq::ArgValue::Int(i) => args.set_item(k, i)?,
                shmq::ArgValue::Bool(b) => args.set_item(k, b)?,
                shmq::ArgValue::Void => args.set_item(k, py.None())?,
            }
        }
        d.set_item("arguments", args)?;
        Ok(d)
    }

    /// Runs the namespace's timers now, as a broker's run on their own:
    /// dead-letters expired messages at the head of queues nobody consumes
    /// and deletes queues unused past their x-expires. Attached consumers
    /// that wait run it every 100-200 ms; this is for callers that only
    /// poll. Returns (messages dead-lettered, queues deleted).
    fn housekeep(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        let ns = &self.inner;
        let done = py.allow_threads(|| ns.housekeep()).map_err(err)?;
        Ok((done.dead_lettered, done.queues_expired))
    }

    /// Declares an exchange (direct, fanout, topic or headers).
    #[pyo3(signature = (name, kind="direct", passive=false, auto_delete=false, internal=false, alternate_exchange=None, durable=false))]
    #[allow(clippy::too_many_arguments)] // pika's keyword arguments, one each
    fn declare_exchange(
        &self,
        name: &str,
        kind: &str,
        passive: bool,
        auto_delete: bool,
        internal: bool,
        alternate_exchange: Option<&str>,
        durable: bool,
    ) -> PyResult<()> {
        if passive {
            return self.inner.declare_exchange_passive(name).map(|_| ()).map_err(err);
        }
        let mut o = shmq::ExchangeOptions::new(kind.parse().map_err(PyValueError::new_err)?)
            .auto_delete(auto_delete)
            .internal(internal)
            .durable(durable);
        if let Some(a) = alternate_exchange {
            o = o.alternate_exchange(a);
        }
        match self.inner.declare_exchange(name, &o) {
            Err(e @ shmq::Error::ExchangeConflict { .. }) => {
                let existing = self.inner.declare_exchange_passive(name).ok().map(|x| x.options);
                Err(match existing.and_then(|existing| exchange_inequivalent(name, &existing, &o)) {
                    Some(text) => Python::with_gil(|py| with_reply_text(py, err(e), &precondition_failed(&text))),
                    None => err(e),
                })
            }
            other => other.map_err(err),
        }
    }

    /// Deletes an exchange and its bindings.
    #[pyo3(signature = (name, if_unused=false))]
    fn delete_exchange(&self, name: &str, if_unused: bool) -> PyResult<()> {
        self.inner.delete_exchange(name, if_unused).map_err(err)
    }

    /// Binds a queue to an exchange with a key (and headers arguments).
    #[pyo3(signature = (queue, exchange, key="", arguments=None))]
    fn bind_queue(&self, queue: &str, exchange: &str, key: &str, arguments: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        self.inner.bind_queue(queue, exchange, key, &self::arguments(arguments)?).map_err(err)
    }

    /// Removes a binding.
    #[pyo3(signature = (queue, exchange, key="", arguments=None))]
    fn unbind_queue(&self, queue: &str, exchange: &str, key: &str, arguments: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        self.inner.unbind_queue(queue, exchange, key, &self::arguments(arguments)?).map_err(err)
    }

    /// Binds exchange `destination` to exchange `source` (exchange-to-exchange).
    #[pyo3(signature = (destination, source, key="", arguments=None))]
    fn bind_exchange(&self, destination: &str, source: &str, key: &str, arguments: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        self.inner.bind_exchange(destination, source, key, &self::arguments(arguments)?).map_err(err)
    }

    /// Removes an exchange-to-exchange binding.
    #[pyo3(signature = (destination, source, key="", arguments=None))]
    fn unbind_exchange(&self, destination: &str, source: &str, key: &str, arguments: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        self.inner.unbind_exchange(destination, source, key, &self::arguments(arguments)?).map_err(err)
    }

    /// Declares a reply queue for direct reply-to (`amq.rabbitmq.reply-to.…`):
    /// exclusive to this namespace handle, auto-delete; returns its name.
    fn declare_reply_queue(&self) -> PyResult<String> {
        self.inner.declare_reply_queue().map_err(err)
    }

    /// A publisher (one per thread).
    fn publisher(&self) -> Publisher {
        Publisher::new(self.inner.publisher())
    }

    /// A consumer of `queue` (one per thread). `delivery_count_header`
    /// adds RabbitMQ's quorum-queue header `x-delivery-count` (how many
    /// times the message was requeued before) to the headers of what it
    /// receives: "redelivered" on redeliveries only (as RabbitMQ 3.10 does
    /// for a consumer), "always" on every delivery (as it does for
    /// basic.get); None never. `priority` is the consumer's x-priority.
    #[pyo3(signature = (queue, manual_ack=false, prefetch=0, delivery_count_header=None, get_only=false, exclusive=false, priority=0))]
    #[allow(clippy::too_many_arguments)] // pika's keyword arguments, one each
    fn consumer(
        &self,
        queue: &str,
        manual_ack: bool,
        prefetch: u32,
        delivery_count_header: Option<&str>,
        get_only: bool,
        exclusive: bool,
        priority: i32,
    ) -> PyResult<Consumer> {
        let count_header = match delivery_count_header {
            None => CountHeader::Never,
            Some("redelivered") => CountHeader::Redelivered,
            Some("always") => CountHeader::Always,
            Some(other) => {
                return Err(PyValueError::new_err(format!("delivery_count_header {other:?}: use None, 'redelivered' or 'always'")))
            }
        };
        let mut o = shmq::ConsumerOptions::default().prefetch(prefetch);
        if manual_ack {
            o = o.manual_ack();
        }
        if get_only {
            // basic.get's handle: no consumer in the queue's count.
            o = o.for_get();
        }
        if exclusive {
            o = o.exclusive();
        }
        o = o.priority(priority);
        Ok(Consumer { inner: self.inner.consumer(queue, o).map_err(err)?, count_header, thread: std::thread::current().id() })
    }
}

/// Publishes through exchanges. One per thread (it is not thread-safe).
#[pyclass(module = "shmq._native", unsendable)]
struct Publisher {
    inner: shmq::Publisher,
    wait: Arc<WaitState>,
}

/// What a waiting publish's hook shares with [`Publisher::publish_routed`].
#[derive(Default)]
struct WaitState {
    /// Called with the wait's reason ("memory" or "queue-full") on every
    /// look while a publish waits; an exception it raises stops the publish.
    callback: Mutex<Option<Py<PyAny>>>,
    /// The Python exception (Ctrl-C's KeyboardInterrupt, or the callback's)
    /// that stopped the current publish, to be raised by it.
    error: Mutex<Option<PyErr>>,
}

/// The name a wait callback is given for `reason`.
fn reason_name(reason: shmq::WaitReason) -> &'static str {
    match reason {
        shmq::WaitReason::MemoryBudget => "memory",
        shmq::WaitReason::QueueFull => "queue-full",
    }
}

impl Publisher {
    fn new(mut inner: shmq::Publisher) -> Self {
        let wait = Arc::new(WaitState::default());
        let state = Arc::clone(&wait);
        // Runs on the publishing thread, with the GIL released by `publish`:
        // take it for a moment to run signal handlers (Ctrl-C) and the wait
        // callback; an exception from either ends the wait.
        let hook: shmq::WaitHook = Arc::new(move |reason| {
            Python::with_gil(|py| {
                let outcome = py.check_signals().and_then(|()| {
                    let callback = state.callback.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|c| c.clone_ref(py));
                    match callback {
                        Some(c) => c.call1(py, (reason_name(reason),)).map(drop),
                        None => Ok(()),
                    }
                });
                match outcome {
                    Ok(()) => true,
                    Err(e) => {
                        *state.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                        false
                    }
                }
            })
        });
        inner.set_wait_hook(Some(hook));
        Self { inner, wait }
    }

    /// A publish's result for Python: `(queues reached, queues that
    /// refused)`, or the exception that interrupted its wait.
    fn outcome(&self, routed: Result<shmq::Routed, shmq::PublishError>) -> PyResult<(usize, usize)> {
        match routed {
            Ok(routed) => Ok((routed.queues, routed.full)),
            Err(shmq::PublishError::Interrupted) => match self.wait.error.lock().unwrap_or_else(PoisonError::into_inner).take() {
                Some(e) => Err(e),
                None => Err(publish_err(shmq::PublishError::Interrupted)),
            },
            Err(e) => Err(publish_err(e)),
        }
    }
}

/// `datetime.datetime`, `calendar.timegm` and `datetime.timezone.utc`,
/// looked up once: header timestamps are converted as pika converts them.
static DATETIME: GILOnceCell<Py<PyType>> = GILOnceCell::new();
static TIMEGM: GILOnceCell<Py<PyAny>> = GILOnceCell::new();
static UTC: GILOnceCell<Py<PyAny>> = GILOnceCell::new();

fn is_datetime(v: &Bound<'_, PyAny>) -> bool {
    DATETIME.import(v.py(), "datetime", "datetime").is_ok_and(|t| v.is_instance(t).unwrap_or(false))
}

/// Seconds since the epoch of a `datetime`, as pika encodes an AMQP
/// timestamp: `calendar.timegm(value.utctimetuple())`, so a naive datetime
/// counts as UTC and an aware one is converted.
fn timestamp_of(v: &Bound<'_, PyAny>) -> PyResult<u64> {
    let py = v.py();
    let timegm = TIMEGM.get_or_try_init(py, || py.import("calendar")?.getattr("timegm").map(Bound::unbind))?;
    let seconds: i64 = timegm.bind(py).call1((v.call_method0("utctimetuple")?,))?.extract()?;
    u64::try_from(seconds).map_err(|_| PyValueError::new_err(format!("header timestamp {v} is before 1970: AMQP timestamps are unsigned")))
}

/// A `datetime` in UTC for an AMQP timestamp, as pika 1.4 decodes one
/// (`datetime.fromtimestamp(seconds, timezone.utc)`); the number itself if
/// Python cannot represent it (beyond the year 9999).
fn datetime_of(py: Python<'_>, seconds: u64) -> PyResult<PyObject> {
    let utc = UTC.get_or_try_init(py, || py.import("datetime")?.getattr("timezone")?.getattr("utc").map(Bound::unbind))?;
    let datetime = DATETIME.import(py, "datetime", "datetime")?;
    match datetime.call_method1("fromtimestamp", (seconds, utc.bind(py))) {
        Ok(d) => Ok(d.unbind()),
        Err(_) => Ok(seconds.into_pyobject(py)?.into_any().unbind()),
    }
}

/// A header value taken from Python, owning its bytes; nested tables and
/// arrays are encoded as they are read.
enum PyHeader {
    Str(String),
    Bytes(Vec<u8>),
    /// Int, Float, Bool, Void, Timestamp or Decimal.
    Scalar(shmq::HeaderValue<'static>),
    Table(Vec<u8>),
    Array(Vec<u8>),
}

impl PyHeader {
    fn value(&self) -> PyResult<shmq::HeaderValue<'_>> {
        let malformed = || ShmqError::new_err("a nested header table did not encode: report this as a bug");
        Ok(match self {
            Self::Str(s) => shmq::HeaderValue::Str(s),
            Self::Bytes(b) => shmq::HeaderValue::Bytes(b),
            Self::Scalar(v) => *v,
            Self::Table(t) => shmq::HeaderValue::Table(shmq::Headers::from_encoded(t).ok_or_else(malformed)?),
            Self::Array(a) => shmq::HeaderValue::Array(shmq::HeaderArray::from_encoded(a).ok_or_else(malformed)?),
        })
    }
}

/// Converts a header value from Python, as pika encodes it: str, bytes,
/// bool, int (64 bits), float, None, `datetime.datetime` (a timestamp),
/// dict (a table), list or tuple (an array). `depth` is the nesting of the
/// table or array that holds it (0: the headers themselves); deeper than
/// `shmq.MAX_HEADER_DEPTH` is refused, which also stops a dict that
/// contains itself.
fn py_header(v: &Bound<'_, PyAny>, depth: usize) -> PyResult<PyHeader> {
    if let Ok(b) = v.downcast::<PyBytes>() {
        return Ok(PyHeader::Bytes(b.as_bytes().to_vec()));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(PyHeader::Str(v.extract()?));
    }
    if v.is_none() {
        return Ok(PyHeader::Scalar(shmq::HeaderValue::Void));
    }
    if v.is_instance_of::<PyBool>() {
        return Ok(PyHeader::Scalar(shmq::HeaderValue::Bool(v.extract()?)));
    }
    if v.is_instance_of::<PyInt>() {
        let i = v.extract::<i64>().map_err(|_| PyValueError::new_err(format!("header integer {v} does not fit in 64 bits")))?;
        return Ok(PyHeader::Scalar(shmq::HeaderValue::Int(i)));
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(PyHeader::Scalar(shmq::HeaderValue::Float(v.extract()?)));
    }
    let nested = depth + 1;
    let too_deep = || PyValueError::new_err(format!("headers nest deeper than {} tables and arrays", shmq::MAX_HEADER_DEPTH));
    if let Ok(d) = v.downcast::<PyDict>() {
        if nested > shmq::MAX_HEADER_DEPTH {
            return Err(too_deep());
        }
        return Ok(PyHeader::Table(encode_table(&py_table(d, nested)?)?));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        if nested > shmq::MAX_HEADER_DEPTH {
            return Err(too_deep());
        }
        let items = v.try_iter()?.map(|item| py_header(&item?, nested)).collect::<PyResult<Vec<_>>>()?;
        let values = items.iter().map(PyHeader::value).collect::<PyResult<Vec<_>>>()?;
        return Ok(PyHeader::Array(shmq::HeaderArray::encode(&values).map_err(publish_err)?));
    }
    if is_datetime(v) {
        return Ok(PyHeader::Scalar(shmq::HeaderValue::Timestamp(timestamp_of(v)?)));
    }
    let decimal = v.py().import("decimal")?.getattr("Decimal")?;
    if v.is_instance(&decimal)? {
        // As pika encodes it: normalised, then its digits after the point
        // as the scale and the unscaled value in 32 bits.
        let normal = v.call_method0("normalize")?;
        let exponent: i64 = normal.call_method0("as_tuple")?.getattr("exponent")?.extract()?;
        let scale = u8::try_from(-exponent.min(0)).map_err(|_| PyValueError::new_err(format!("decimal header {v} has too many digits")))?;
        let unscaled = normal.call_method1("scaleb", (i64::from(scale),))?.call_method0("__int__")?;
        let value =
            unscaled.extract::<i32>().map_err(|_| PyValueError::new_err(format!("decimal header {v} does not fit AMQP's 32 bits")))?;
        return Ok(PyHeader::Scalar(shmq::HeaderValue::Decimal { scale, value }));
    }
    Err(PyValueError::new_err(format!(
        "header values must be str, bytes, int, float, bool, None, datetime.datetime, decimal.Decimal, dict, list or tuple, not {}",
        v.get_type().name()?
    )))
}

/// The entries of a headers table (`depth` 0) or of a nested one.
fn py_table(d: &Bound<'_, PyDict>, depth: usize) -> PyResult<Vec<(String, PyHeader)>> {
    let mut out = Vec::with_capacity(d.len());
    for (k, v) in d.iter() {
        out.push((k.str()?.to_string(), py_header(&v, depth)?));
    }
    Ok(out)
}

fn encode_table(entries: &[(String, PyHeader)]) -> PyResult<Vec<u8>> {
    let values = entries.iter().map(|(k, v)| Ok((k.as_str(), v.value()?))).collect::<PyResult<Vec<_>>>()?;
    shmq::Headers::encode(&values).map_err(publish_err)
}

/// A message body (str, bytes, bytearray or memoryview), as bytes.
fn body_bytes<'py>(item: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let py = item.py();
    if let Ok(bytes) = item.downcast::<PyBytes>() {
        Ok(bytes.clone())
    } else if let Ok(text) = item.downcast::<pyo3::types::PyString>() {
        Ok(PyBytes::new(py, text.to_cow()?.as_bytes()))
    } else if item.is_instance_of::<pyo3::types::PyByteArray>() || item.is_instance_of::<pyo3::types::PyMemoryView>() {
        Ok(py.get_type::<PyBytes>().call1((item,))?.downcast_into::<PyBytes>()?)
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "body must be str, bytes, bytearray or memoryview, not {}",
            item.get_type().name()?
        )))
    }
}

/// Runs `f` with `props` (a dict of AMQP basic properties: content_type,
/// correlation_id, reply_to, headers, ...) as `shmq::Properties`.
fn with_properties<R>(props: Option<&Bound<'_, PyDict>>, f: impl FnOnce(&shmq::Properties<'_>) -> PyResult<R>) -> PyResult<R> {
    let get = |k: &str| -> PyResult<Option<String>> {
        match props.map(|p| p.get_item(k)).transpose()?.flatten() {
            Some(v) if !v.is_none() => Ok(Some(v.str()?.to_string())),
            _ => Ok(None),
        }
    };
    let get_int = |k: &str| -> PyResult<Option<u64>> {
        match props.map(|p| p.get_item(k)).transpose()?.flatten() {
            Some(v) if !v.is_none() => Ok(Some(v.extract::<u64>()?)),
            _ => Ok(None),
        }
    };
    let (content_type, content_encoding, correlation_id, reply_to, message_id, expiration, kind, user_id, app_id) = (
        get("content_type")?,
        get("content_encoding")?,
        get("correlation_id")?,
        get("reply_to")?,
        get("message_id")?,
        get("expiration")?,
        get("type")?,
        get("user_id")?,
        get("app_id")?,
    );
    let (timestamp, priority, delivery_mode) = (get_int("timestamp")?, get_int("priority")?, get_int("delivery_mode")?);
    // Headers: owned copies, nested tables and arrays encoded; the
    // properties borrow from them.
    let owned_headers = match props.map(|p| p.get_item("headers")).transpose()?.flatten() {
        Some(h) if !h.is_none() => py_table(h.downcast::<PyDict>()?, 0)?,
        _ => Vec::new(),
    };
    let headers = owned_headers.iter().map(|(k, v)| Ok((k.as_str(), v.value()?))).collect::<PyResult<Vec<_>>>()?;
    let properties = shmq::Properties {
        content_type: content_type.as_deref(),
        content_encoding: content_encoding.as_deref(),
        correlation_id: correlation_id.as_deref(),
        reply_to: reply_to.as_deref(),
        message_id: message_id.as_deref(),
        expiration: expiration.as_deref(),
        kind: kind.as_deref(),
        user_id: user_id.as_deref(),
        app_id: app_id.as_deref(),
        timestamp,
        priority: priority.map(|p| p.min(255) as u8),
        delivery_mode: delivery_mode.map(|m| m.min(255) as u8),
        headers: &headers,
        ..shmq::Properties::new()
    };
    f(&properties)
}

#[pymethods]
impl Publisher {
    /// Publishes; returns the number of queues reached (queues that refused
    /// the message, at their limit with overflow reject-publish, are not
    /// counted). `props` is a dict of AMQP basic properties (content_type,
    /// correlation_id, reply_to, headers, ...). A publish that must wait for
    /// room waits with the GIL released; Ctrl-C (or an exception from the
    /// wait callback) stops it and is raised here.
    #[pyo3(signature = (exchange, routing_key, body, props=None, mandatory=false))]
    fn publish(
        &mut self,
        py: Python<'_>,
        exchange: &str,
        routing_key: &str,
        body: &Bound<'_, PyAny>,
        props: Option<&Bound<'_, PyDict>>,
        mandatory: bool,
    ) -> PyResult<usize> {
        Ok(self.publish_routed(py, exchange, routing_key, body, props, mandatory)?.0)
    }

    /// As `publish`, but returns `(queues reached, queues that refused it)`:
    /// a queue at its limit with overflow reject-publish refuses (RabbitMQ
    /// nacks such a publish under publisher confirms), as does a `block`
    /// queue or the memory budget when the publish timeout expires.
    #[pyo3(signature = (exchange, routing_key, body, props=None, mandatory=false))]
    fn publish_routed(
        &mut self,
        py: Python<'_>,
        exchange: &str,
        routing_key: &str,
        body: &Bound<'_, PyAny>,
        props: Option<&Bound<'_, PyDict>>,
        mandatory: bool,
    ) -> PyResult<(usize, usize)> {
        let body = body_bytes(body)?;
        let body = body.as_bytes();
        with_properties(props, |properties| {
            self.wait.error.lock().unwrap_or_else(PoisonError::into_inner).take();
            let publisher = &mut self.inner;
            // Publishing copies into shared memory and may wait for room (flow
            // control): both without the GIL. The wait hook takes it back briefly.
            let routed = py.allow_threads(move || {
                if mandatory {
                    publisher.publish_mandatory(exchange, routing_key, properties, body)
                } else {
                    publisher.publish(exchange, routing_key, properties, body)
                }
            });
            self.outcome(routed)
        })
    }

    /// Publishes every body of `bodies` (a sequence of bytes-like objects)
    /// with the same exchange, routing key and properties: routed once and
    /// copied into each matched queue a chunk per claim, with the GIL
    /// released. Returns `(copies enqueued, copies refused)` summed over the
    /// messages (a refusal does not stop the rest). With `mandatory`, a
    /// batch that no queue would take raises `Unroutable` and nothing is
    /// published.
    #[pyo3(signature = (exchange, routing_key, bodies, props=None, mandatory=false))]
    fn publish_many(
        &mut self,
        py: Python<'_>,
        exchange: &str,
        routing_key: &str,
        bodies: &Bound<'_, PyAny>,
        props: Option<&Bound<'_, PyDict>>,
        mandatory: bool,
    ) -> PyResult<(usize, usize)> {
        // Bytes are borrowed in place; str, bytearray and memoryview are
        // copied to bytes first, as `publish` takes them.
        if bodies.is_instance_of::<PyBytes>()
            || bodies.is_instance_of::<PyString>()
            || bodies.is_instance_of::<pyo3::types::PyByteArray>()
            || bodies.is_instance_of::<pyo3::types::PyMemoryView>()
        {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "bodies must be an iterable of message bodies, not a single body: wrap one body in a list (or use publish)",
            ));
        }
        let owned = bodies.try_iter()?.map(|item| body_bytes(&item?)).collect::<PyResult<Vec<_>>>()?;
        let refs: Vec<&[u8]> = owned.iter().map(|b| b.as_bytes()).collect();
        with_properties(props, |properties| {
            if mandatory && self.inner.route_count(exchange, routing_key, properties).map_err(publish_err)? == 0 {
                return Err(publish_err(shmq::PublishError::Unroutable));
            }
            self.wait.error.lock().unwrap_or_else(PoisonError::into_inner).take();
            let publisher = &mut self.inner;
            let refs = &refs;
            let routed = py.allow_threads(move || publisher.publish_batch(exchange, routing_key, properties, refs));
            self.outcome(routed)
        })
    }

    /// Sets the callable called with the reason ("memory": the namespace is
    /// at its memory budget; "queue-full": a `block` queue is at its limit)
    /// about every 10-50 ms while a publish waits for room, on the
    /// publishing thread; an exception it raises stops the publish, which
    /// raises it. None removes it.
    #[pyo3(signature = (callback=None))]
    fn set_wait_callback(&self, callback: Option<Py<PyAny>>) {
        *self.wait.callback.lock().unwrap_or_else(PoisonError::into_inner) = callback;
    }

    /// How long a publish may wait for room, in seconds (None: as long as it
    /// takes). A publish that times out is refused by the queues it waited
    /// for (counted in `publish_routed`'s second figure).
    #[pyo3(signature = (timeout=None))]
    fn set_publish_timeout(&mut self, timeout: Option<f64>) -> PyResult<()> {
        self.inner.set_publish_timeout(timeout_of(timeout)?);
        Ok(())
    }

    /// True while flow control holds this publisher back: its last publish
    /// to some queue waited for the namespace's memory budget and has not
    /// had room since.
    fn is_blocked(&self) -> bool {
        self.inner.is_blocked()
    }
}

/// A received message: `body` (bytes, copied out of shared memory, so it
/// stays valid after the ack), `properties` (`BasicProperties`, decoded on
/// first use: most consumers never look at them), `routing_key`,
/// `exchange`, `redelivered`, `delivery_count` (RabbitMQ's
/// `x-delivery-count`: requeues before this delivery), and
/// `ack(multiple=False)`, `nack(requeue=True, multiple=False)`,
/// `reject(requeue=True)` for manual-ack consumers (`multiple`: every
/// delivery the consumer holds up to this one too). Once its consumer is
/// closed, settling raises `ShmqError`: what it held was requeued.
#[pyclass(module = "shmq._native")]
struct Message {
    #[pyo3(get)]
    body: Py<PyBytes>,
    #[pyo3(get)]
    delivery_tag: u64,
    #[pyo3(get)]
    redelivered: bool,
    /// How many times the message was requeued before this delivery
    /// (RabbitMQ's quorum queues' `x-delivery-count`).
    #[pyo3(get)]
    delivery_count: u32,
    raw_props: Vec<u8>,
    count_header: CountHeader,
    props_dict: Option<Py<PyDict>>,
    /// Its consumer, weakly: a closed (dropped) consumer requeues what it
    /// held, whatever messages are still referenced.
    consumer: Option<Py<PyWeakrefReference>>,
    /// The consumer's thread: the only one that may settle the message.
    thread: std::thread::ThreadId,
}

/// `shmq.BasicProperties`, looked up once.
static BASIC_PROPERTIES: GILOnceCell<Py<PyAny>> = GILOnceCell::new();

impl Message {
    fn properties_ref(&self) -> shmq::PropertiesRef<'_> {
        // Validated when parsed (the bytes came from shared memory); a
        // damaged block reads as no properties, as `Delivery::properties`.
        shmq::PropertiesRef::parse(&self.raw_props).unwrap_or_default()
    }

    /// The consumer that received this message, while it is open.
    fn consumer<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, Consumer>> {
        if std::thread::current().id() != self.thread {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "an shmq message is settled on its consumer's thread: a consumer belongs to the thread that created it \
                 (hand the delivery tag to that thread, e.g. with BlockingConnection.add_callback_threadsafe)",
            ));
        }
        let gone = || ShmqError::new_err("the consumer of this message was closed: its unacked messages were requeued");
        let consumer = self.consumer.as_ref().ok_or_else(gone)?.bind(py).upgrade().ok_or_else(gone)?;
        Ok(consumer.downcast_into::<Consumer>()?)
    }
}

#[pymethods]
impl Message {
    #[getter]
    fn exchange(&self) -> &str {
        self.properties_ref().exchange.unwrap_or("")
    }

    #[getter]
    fn routing_key(&self) -> &str {
        self.properties_ref().routing_key.unwrap_or("")
    }

    /// The AMQP basic properties, as a dict (built once).
    #[getter]
    fn properties_dict(&mut self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        if let Some(d) = &self.props_dict {
            return Ok(d.clone_ref(py));
        }
        let d = props_dict(py, &self.properties_ref(), self.delivery_count, self.count_header)?;
        self.props_dict = Some(d.clone_ref(py));
        Ok(d)
    }

    /// The AMQP basic properties, as `shmq.BasicProperties`.
    #[getter]
    fn properties(&mut self, py: Python<'_>) -> PyResult<PyObject> {
        let fields = self.properties_dict(py)?;
        let class = BASIC_PROPERTIES.get_or_try_init(py, || py.import("shmq")?.getattr("BasicProperties").map(Bound::unbind))?;
        Ok(class.bind(py).call((), Some(fields.bind(py)))?.unbind())
    }

    /// Acknowledges (manual-ack consumers); with `multiple`, every delivery
    /// the consumer holds up to this one too (one call for a `recv_many`
    /// batch: ack its last message).
    #[pyo3(signature = (multiple=false))]
    fn ack(&self, py: Python<'_>, multiple: bool) -> PyResult<usize> {
        self.consumer(py)?.borrow().ack(self.delivery_tag, multiple)
    }

    /// Rejects, requeueing (flagged redelivered), or without requeue
    /// dead-lettering (to the queue's `x-dead-letter-exchange`, if it has
    /// one) or discarding. A requeue past the queue's `x-delivery-limit`
    /// dead-letters or discards too. `multiple` as in `ack`.
    #[pyo3(signature = (requeue=true, multiple=false))]
    fn nack(&self, py: Python<'_>, requeue: bool, multiple: bool) -> PyResult<usize> {
        self.consumer(py)?.borrow().nack(self.delivery_tag, requeue, multiple)
    }

    /// `nack` of this delivery alone (AMQP's `basic.reject`).
    #[pyo3(signature = (requeue=true))]
    fn reject(&self, py: Python<'_>, requeue: bool) -> PyResult<usize> {
        self.nack(py, requeue, false)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Message(body={}, routing_key={}, redelivered={})",
            self.body.bind(py).repr().map_or_else(|_| "?".to_owned(), |r| r.to_string()),
            PyString::new(py, self.routing_key()).repr().map_or_else(|_| "?".to_owned(), |r| r.to_string()),
            if self.redelivered { "True" } else { "False" }
        )
    }
}

/// A consumer of one queue. Used from the thread that created it: other
/// threads get a RuntimeError from PyO3 (make one consumer per thread).
#[pyclass(module = "shmq._native", unsendable, weakref)]
struct Consumer {
    inner: shmq::Consumer,
    count_header: CountHeader,
    /// The thread that made it (an unsendable consumer never leaves it):
    /// its messages are settled there; looked up once, not per message.
    thread: std::thread::ThreadId,
}

/// When a consumer adds `x-delivery-count` to the headers it hands out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CountHeader {
    Never,
    /// When the count is above 0: RabbitMQ 3.10's quorum queues, to consumers.
    Redelivered,
    /// Always, 0 included: the same, to basic.get.
    Always,
}

/// Lets a blocking receive run with the GIL released.
struct Unshared<'a>(&'a shmq::Consumer);
// SAFETY: the Consumer is `unsendable` in Python, so only its creating
// thread ever reaches it; while that thread is blocked in this call with the
// GIL released, no other code can touch the consumer (other threads are
// refused by PyO3's thread check before they get a reference).
unsafe impl Send for Unshared<'_> {}

/// A delivery copied out of shared memory, so it can cross the GIL (the
/// blocking path receives with the GIL released).
struct Owned {
    body: Vec<u8>,
    tag: u64,
    redelivered: bool,
    delivery_count: u32,
    raw_props: Vec<u8>,
}

fn own(d: &shmq::Delivery<'_>) -> Owned {
    Owned {
        body: d.body().to_vec(),
        tag: d.tag().0,
        redelivered: d.redelivered(),
        delivery_count: d.delivery_count(),
        raw_props: d.properties_bytes().to_vec(),
    }
}

/// A header value for Python, as pika decodes it: a table as a dict, an
/// array as a list, a timestamp as an aware `datetime` in UTC. `depth` is
/// the nesting of what holds it: the table was validated (nested at most
/// `MAX_HEADER_DEPTH` deep) when parsed; the bound here only keeps the
/// recursion finite whatever the bytes say.
fn header_py(py: Python<'_>, v: shmq::HeaderValue<'_>, depth: usize) -> PyResult<PyObject> {
    let nested = depth + 1;
    Ok(match v {
        shmq::HeaderValue::Str(s) => s.into_pyobject(py)?.into_any().unbind(),
        shmq::HeaderValue::Bytes(b) => PyBytes::new(py, b).into_any().unbind(),
        // As pika decodes them: a 64-bit integer (one that needs more than
        // 32 bits, which pika sends as AMQP's `l`) as its `long`.
        shmq::HeaderValue::Int(i) if i32::try_from(i).is_err() => py.import("shmq")?.getattr("long")?.call1((i,))?.unbind(),
        shmq::HeaderValue::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        shmq::HeaderValue::Float(f) => f.into_pyobject(py)?.into_any().unbind(),
        shmq::HeaderValue::Bool(b) => PyBool::new(py, b).to_owned().into_any().unbind(),
        shmq::HeaderValue::Void => py.None(),
        shmq::HeaderValue::Timestamp(t) => datetime_of(py, t)?,
        shmq::HeaderValue::Decimal { scale, value } => {
            // As pika decodes it: Decimal(value) * Decimal(10) ** -scale.
            let decimal = py.import("decimal")?.getattr("Decimal")?;
            let ten_power = decimal.call1((10,))?.call_method1("__pow__", (-i64::from(scale),))?;
            decimal.call1((value,))?.call_method1("__mul__", (ten_power,))?.unbind()
        }
        shmq::HeaderValue::Table(_) | shmq::HeaderValue::Array(_) if nested > shmq::MAX_HEADER_DEPTH => py.None(),
        shmq::HeaderValue::Table(t) => {
            let d = PyDict::new(py);
            for (k, v) in t.iter() {
                d.set_item(k, header_py(py, v, nested)?)?;
            }
            d.into_any().unbind()
        }
        shmq::HeaderValue::Array(a) => {
            let items = a.iter().map(|v| header_py(py, v, nested)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
    })
}

fn props_dict(py: Python<'_>, p: &shmq::PropertiesRef<'_>, delivery_count: u32, count_header: CountHeader) -> PyResult<Py<PyDict>> {
    let props = PyDict::new(py);
    for (k, v) in [
        ("content_type", p.content_type),
        ("content_encoding", p.content_encoding),
        ("correlation_id", p.correlation_id),
        ("reply_to", p.reply_to),
        ("message_id", p.message_id),
        ("expiration", p.expiration),
        ("type", p.kind),
        ("user_id", p.user_id),
        ("app_id", p.app_id),
    ] {
        props.set_item(k, v)?;
    }
    for (k, v) in [("timestamp", p.timestamp), ("priority", p.priority.map(u64::from)), ("delivery_mode", p.delivery_mode.map(u64::from))] {
        props.set_item(k, v)?;
    }
    let counted = count_header == CountHeader::Always || (count_header == CountHeader::Redelivered && delivery_count > 0);
    if p.headers.is_empty() && !counted {
        props.set_item("headers", py.None())?;
    } else {
        let headers = PyDict::new(py);
        for (k, v) in p.headers.iter() {
            headers.set_item(k, header_py(py, v, 0)?)?;
        }
        if counted {
            // Set as RabbitMQ sets it: replacing one the publisher put there.
            headers.set_item("x-delivery-count", delivery_count)?;
        }
        props.set_item("headers", headers)?;
    }
    Ok(props.unbind())
}

impl Consumer {
    /// A Message for a delivery, built in place with the GIL held.
    fn message(slf: &Bound<'_, Self>, d: &shmq::Delivery<'_>) -> PyResult<Message> {
        let py = slf.py();
        Ok(Message {
            body: PyBytes::new(py, d.body()).unbind(),
            delivery_tag: d.tag().0,
            redelivered: d.redelivered(),
            delivery_count: d.delivery_count(),
            raw_props: d.properties_bytes().to_vec(),
            count_header: slf.borrow().count_header,
            props_dict: None,
            consumer: Some(PyWeakrefReference::new(slf)?.unbind()),
            thread: slf.borrow().thread,
        })
    }

    /// A Message for a delivery copied out without the GIL.
    fn owned_message(slf: &Bound<'_, Self>, o: Owned) -> PyResult<Message> {
        let py = slf.py();
        Ok(Message {
            body: PyBytes::new(py, &o.body).unbind(),
            delivery_tag: o.tag,
            redelivered: o.redelivered,
            delivery_count: o.delivery_count,
            raw_props: o.raw_props,
            count_header: slf.borrow().count_header,
            props_dict: None,
            consumer: Some(PyWeakrefReference::new(slf)?.unbind()),
            thread: slf.borrow().thread,
        })
    }

    /// Up to `max` messages ready now, built with the GIL held.
    fn take_ready(slf: &Bound<'_, Self>, max: usize, out: &mut Vec<Message>) -> PyResult<()> {
        let mut failed = None;
        let drained = slf.borrow().inner.drain(max, |d| match Self::message(slf, &d) {
            Ok(m) => out.push(m),
            // The delivery is still ours: dropped unsettled, it goes back.
            Err(e) => failed = Some(e),
        });
        if let Some(e) = failed {
            return Err(e);
        }
        match drained {
            // A consumer at its prefetch limit has nothing ready, as a pika
            // consumer whose channel holds `prefetch_count` unacked.
            Ok(_) | Err(shmq::RecvError::PrefetchFull(_)) => Ok(()),
            Err(e) => Err(ShmqError::new_err(e.to_string())),
        }
    }

    /// Waits, with the GIL released, for the first message, at most until
    /// `deadline`: it comes back copied out. Ctrl-C raises within 100 ms.
    fn wait_first(slf: &Bound<'_, Self>, deadline: Option<Instant>) -> PyResult<Option<Owned>> {
        let py = slf.py();
        let this = slf.borrow();
        loop {
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(Duration::from_millis(100)),
                None => Duration::from_millis(100),
            };
            let consumer = Unshared(&this.inner);
            let got = py.allow_threads(move || {
                let consumer = consumer;
                match consumer.0.recv_timeout(slice) {
                    Ok(d) => Ok(Some(own(&d))),
                    Err(shmq::RecvError::Timeout) => Ok(None),
                    Err(e) => Err(e),
                }
            });
            match got {
                Ok(Some(owned)) => return Ok(Some(owned)),
                Ok(None) => {}
                Err(shmq::RecvError::PrefetchFull(n)) => {
                    return Err(ShmqError::new_err(format!("prefetch limit of {n} unacked messages reached: ack some first")))
                }
                Err(e) => return Err(ShmqError::new_err(e.to_string())),
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
        }
    }
}

/// A timeout in seconds as a `Duration`: `None` (and infinity, or more
/// than a billion seconds) is no limit; a negative one is 0; NaN is refused.
fn timeout_of(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        Some(t) if t.is_nan() => Err(PyValueError::new_err("timeout: NaN is no number of seconds")),
        Some(t) if t > 1e9 => Ok(None),
        Some(t) => Ok(Some(Duration::from_secs_f64(t.max(0.0)))),
        None => Ok(None),
    }
}

fn deadline_after(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    Ok(timeout_of(timeout)?.and_then(|d| Instant::now().checked_add(d)))
}

#[pymethods]
impl Consumer {
    /// Waits for a message (None: forever) and returns it, or None on timeout.
    /// A message ready now is taken at once; otherwise the GIL is released
    /// while waiting, and Ctrl-C raises KeyboardInterrupt within 100 ms.
    #[pyo3(signature = (timeout=None))]
    fn recv(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Option<Message>> {
        if let Some(m) = Self::try_recv(slf)? {
            return Ok(Some(m));
        }
        match Self::wait_first(slf, deadline_after(timeout)?)? {
            Some(owned) => Ok(Some(Self::owned_message(slf, owned)?)),
            None => Ok(None),
        }
    }

    /// A message if one is ready now, else None.
    fn try_recv(slf: &Bound<'_, Self>) -> PyResult<Option<Message>> {
        let this = slf.borrow();
        let taken = match this.inner.try_recv() {
            Ok(d) => Ok(Some(Self::message(slf, &d)?)),
            Err(shmq::RecvError::Empty) | Err(shmq::RecvError::PrefetchFull(_)) => Ok(None),
            Err(e) => Err(ShmqError::new_err(e.to_string())),
        };
        taken
    }

    /// Up to `max` messages that are ready now (possibly none).
    #[pyo3(signature = (max=64))]
    fn try_recv_many(slf: &Bound<'_, Self>, max: usize) -> PyResult<Vec<Message>> {
        let mut out = Vec::new();
        Self::take_ready(slf, max, &mut out)?;
        Ok(out)
    }

    /// Waits for a message (None: forever; at most `timeout` seconds), then
    /// takes up to `max` that are ready, in one call: a list, empty on
    /// timeout. Messages ready now are taken at once; otherwise the GIL is
    /// released while waiting, and Ctrl-C raises KeyboardInterrupt within
    /// 100 ms. The batch path for consumers: ack the lot with
    /// `batch[-1].ack(multiple=True)`.
    #[pyo3(signature = (max=64, timeout=None))]
    fn recv_many(slf: &Bound<'_, Self>, max: usize, timeout: Option<f64>) -> PyResult<Vec<Message>> {
        if max == 0 {
            return Err(PyValueError::new_err("recv_many: max must be at least 1"));
        }
        let mut out = Vec::with_capacity(max.min(1024));
        Self::take_ready(slf, max, &mut out)?;
        if out.is_empty() {
            if let Some(first) = Self::wait_first(slf, deadline_after(timeout)?)? {
                out.push(Self::owned_message(slf, first)?);
                Self::take_ready(slf, max - 1, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Acks several deliveries in one call.
    fn ack_many(&self, delivery_tags: Vec<u64>) -> PyResult<()> {
        for tag in delivery_tags {
            self.inner.ack(shmq::DeliveryTag(tag)).map_err(|e| UnknownDeliveryTag::new_err(e.to_string()))?;
        }
        Ok(())
    }

    /// Acknowledges a delivery; with `multiple`, every delivery this
    /// consumer holds up to and including it (AMQP's `multiple` flag) in
    /// one pass. Returns how many were settled.
    #[pyo3(signature = (delivery_tag, multiple=false))]
    fn ack(&self, delivery_tag: u64, multiple: bool) -> PyResult<usize> {
        let tag = shmq::DeliveryTag(delivery_tag);
        let settled = if multiple { self.inner.ack_multiple(tag) } else { self.inner.ack(tag).map(|()| 1) };
        settled.map_err(|e| UnknownDeliveryTag::new_err(e.to_string()))
    }

    /// Rejects a delivery: requeues it (flagged redelivered), or without
    /// requeue dead-letters it to the queue's x-dead-letter-exchange (if it
    /// has one) or discards it. A requeue past the queue's x-delivery-limit
    /// dead-letters or discards it too.
    /// With `multiple`, every delivery held up to and including it; returns
    /// how many were settled.
    #[pyo3(signature = (delivery_tag, requeue=true, multiple=false))]
    fn nack(&self, delivery_tag: u64, requeue: bool, multiple: bool) -> PyResult<usize> {
        let tag = shmq::DeliveryTag(delivery_tag);
        let settled = if multiple { self.inner.nack_multiple(tag, requeue) } else { self.inner.nack(tag, requeue).map(|()| 1) };
        settled.map_err(|e| UnknownDeliveryTag::new_err(e.to_string()))
    }

    /// Stops receiving (AMQP's basic.cancel): no longer a consumer of the
    /// queue (a single active consumer hands over at once); what it holds
    /// can still be acked or rejected.
    fn cancel(&self) {
        self.inner.cancel();
    }

    /// The queue this consumer reads.
    #[getter]
    fn queue(&self) -> String {
        self.inner.queue_name().to_owned()
    }

    /// Deliveries held unacked.
    #[getter]
    fn unacked(&self) -> u32 {
        self.inner.unacked()
    }

    /// True once the queue was deleted under this consumer (RabbitMQ
    /// cancels such a consumer).
    #[getter]
    fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
}

/// Checks RabbitMQ queue arguments for `queue` as a declare would (without
/// declaring anything): raises `InvalidArgument`, with RabbitMQ's 406 text
/// in `reply_text`, for the first that shmq does not implement or that has
/// the wrong type or value.
#[pyfunction]
#[pyo3(signature = (queue, arguments=None))]
fn check_queue_arguments(py: Python<'_>, queue: &str, arguments: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
    let given = QueueArguments::from_py(arguments)?;
    shmq::QueueOptions::default().with_arguments(queue, &given.args).map_err(|e| invalid_argument(py, e, &given))?;
    Ok(())
}

/// `shmq.topic_matches(binding_key, routing_key)`, RabbitMQ's rules.
#[pyfunction]
fn topic_matches(binding_key: &str, routing_key: &str) -> bool {
    shmq::topic_matches(binding_key, routing_key)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Namespace>()?;
    m.add_class::<Publisher>()?;
    m.add_class::<Consumer>()?;
    m.add_class::<Message>()?;
    m.add_function(wrap_pyfunction!(topic_matches, m)?)?;
    m.add_function(wrap_pyfunction!(check_queue_arguments, m)?)?;
    m.add("QUEUE_ARGUMENTS", shmq::QUEUE_ARGUMENTS.to_vec())?;
    m.add("MAX_HEADER_DEPTH", shmq::MAX_HEADER_DEPTH)?;
    let py = m.py();
    for (name, ty) in [
        ("ShmqError", py.get_type::<ShmqError>()),
        ("QueueNotFound", py.get_type::<QueueNotFound>()),
        ("ExchangeNotFound", py.get_type::<ExchangeNotFound>()),
        ("PreconditionFailed", py.get_type::<PreconditionFailed>()),
        ("AccessRefused", py.get_type::<AccessRefused>()),
        ("InvalidArgument", py.get_type::<InvalidArgument>()),
        ("QueueFull", py.get_type::<QueueFull>()),
        ("Unroutable", py.get_type::<Unroutable>()),
        ("UnknownDeliveryTag", py.get_type::<UnknownDeliveryTag>()),
    ] {
        m.add(name, ty)?;
    }
    Ok(())
}
