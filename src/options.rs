//! Queue and consumer options.

use std::time::Duration;

use crate::error::Error;
use crate::ring::layout::UNIT;
use crate::ring::{Geometry, MAX_DATA_UNITS, MAX_SLOTS, MIN_DATA_UNITS};

/// What a publish does when a queue is at its `max_length` or
/// `max_length_bytes` (RabbitMQ's `x-overflow`). A queue without limits
/// never overflows: it grows within the namespace's memory budget, and at
/// the budget every publish that needs room blocks (flow control).
///
/// # Examples
/// ```
/// assert_eq!("drop-head".parse::<shmq::Overflow>(), Ok(shmq::Overflow::DropOldest));
/// assert_eq!(shmq::Overflow::Reject.to_string(), "reject-publish");
/// assert_eq!(shmq::Overflow::default(), shmq::Overflow::DropOldest);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Overflow {
    /// Wait for a consumer to make room (up to the publish timeout). Nothing
    /// is lost. (Not a RabbitMQ policy: shmq's own.)
    Block = 1,
    /// Refuse the message with [`PublishError::QueueFull`](crate::PublishError::QueueFull)
    /// (RabbitMQ's `reject-publish`; with publisher confirms, a nack).
    Reject = 2,
    /// Discard the oldest ready messages to make room (RabbitMQ's
    /// `drop-head`, its default). Unacked messages are never dropped.
    /// With a dead-letter exchange, dropped messages are dead-lettered
    /// (reason `maxlen`).
    #[default]
    DropOldest = 3,
    /// Refuse the message, as [`Reject`](Overflow::Reject), and dead-letter
    /// it (reason `maxlen`): RabbitMQ's `reject-publish-dlx`.
    RejectPublishDlx = 4,
}

impl Overflow {
    pub(crate) fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Block),
            2 => Some(Self::Reject),
            3 => Some(Self::DropOldest),
            4 => Some(Self::RejectPublishDlx),
            _ => None,
        }
    }
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Block => "block",
            Self::Reject => "reject-publish",
            Self::DropOldest => "drop-head",
            Self::RejectPublishDlx => "reject-publish-dlx",
        })
    }
}

impl std::str::FromStr for Overflow {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "block" => Ok(Self::Block),
            "reject" | "reject-publish" => Ok(Self::Reject),
            "drop-oldest" | "drop-head" => Ok(Self::DropOldest),
            "reject-publish-dlx" => Ok(Self::RejectPublishDlx),
            other => Err(format!("unknown overflow policy '{other}': use drop-head, reject-publish, reject-publish-dlx or block")),
        }
    }
}

/// The RabbitMQ queue arguments shmq implements; a declare (Python's
/// `queue_declare`, `shmq import`) refuses any other rather than ignore it.
/// `x-queue-type` is accepted as `classic` or `quorum` (docs/GUARANTEES.md
/// says what a quorum queue is here); `stream` is refused.
/// [`QueueOptions::with_arguments`] reads them.
///
/// # Examples
/// ```
/// assert!(shmq::QUEUE_ARGUMENTS.contains(&"x-dead-letter-exchange"));
/// assert!(!shmq::QUEUE_ARGUMENTS.contains(&"x-queue-mode"));
/// ```
pub const QUEUE_ARGUMENTS: &[&str] = &[
    "x-max-length",
    "x-max-length-bytes",
    "x-overflow",
    "x-message-ttl",
    "x-queue-type",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-delivery-limit",
    "x-expires",
    "x-single-active-consumer",
    "x-max-priority",
];

/// A queue's type (`x-queue-type`). One machine has nothing to replicate:
/// both are shmq queues; a quorum queue adds what RabbitMQ's quorum queues
/// show a consumer (the `x-delivery-count` header on redeliveries).
///
/// # Examples
/// ```
/// assert_eq!("quorum".parse::<shmq::QueueType>(), Ok(shmq::QueueType::Quorum));
/// assert_eq!(shmq::QueueType::default().to_string(), "classic");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum QueueType {
    /// RabbitMQ's default.
    #[default]
    Classic,
    /// RabbitMQ's replicated queue type.
    Quorum,
}

impl std::fmt::Display for QueueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Classic => "classic",
            Self::Quorum => "quorum",
        })
    }
}

impl std::str::FromStr for QueueType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "classic" => Ok(Self::Classic),
            "quorum" => Ok(Self::Quorum),
            other => Err(format!("queue type '{other}' is not supported by shmq: use classic or quorum")),
        }
    }
}

/// The longest TTL and expiry RabbitMQ takes (2^32 - 1 ms, 49.7 days): for
/// `x-message-ttl`, `x-expires` and a message's `expiration`.
pub const MAX_TTL_MS: u64 = u32::MAX as u64;

/// RabbitMQ's default `max_message_size` (4.x): the largest message a
/// default queue takes.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 16 << 20;

/// The first thing a redeclare differs in, as RabbitMQ names it: a flag
/// (`durable`, `auto_delete`) or an argument (`x-max-length`, ...), with
/// the requested and the existing value (`None`: not set on that side).
/// See [`QueueOptions::inequivalence`].
///
/// # Examples
/// See [`QueueOptions::inequivalence`].
#[derive(Clone, Debug, PartialEq)]
pub struct Inequivalence {
    /// The flag or argument.
    pub key: &'static str,
    /// The value the redeclare asked for.
    pub received: Option<crate::ArgValue>,
    /// The queue's value.
    pub current: Option<crate::ArgValue>,
}

/// Options of a queue, fixed when it is declared. Declaring an existing
/// queue with different options fails with
/// [`Error::PreconditionFailed`](crate::Error::PreconditionFailed).
///
/// A queue has no length limit of its own, as in RabbitMQ: it starts as one
/// ring of `capacity_bytes` and grows by adding larger rings while a backlog
/// builds, and gives the memory back once the backlog is consumed, within
/// the namespace's memory budget ([`NamespaceOptions::memory_budget`](crate::NamespaceOptions::memory_budget)).
///
/// # Examples
/// ```
/// use shmq::{Overflow, QueueOptions};
/// let options = QueueOptions::default()
///     .max_length(1000)
///     .overflow(Overflow::Reject);
/// assert_eq!((options.max_length, options.overflow), (Some(1000), Some(Overflow::Reject)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    /// Bytes of message data in the queue's first ring (rounded up to a
    /// power of two); later rings are larger. Small queues stay within it.
    pub capacity_bytes: u64,
    /// The most ready messages (RabbitMQ's `x-max-length`); unacked ones do
    /// not count. `None`: no limit.
    pub max_length: Option<u64>,
    /// The most body bytes of ready messages (RabbitMQ's
    /// `x-max-length-bytes`). `None`: no limit.
    pub max_length_bytes: Option<u64>,
    /// The largest body plus encoded properties (default 16 MiB, RabbitMQ's
    /// `max_message_size`).
    pub max_message_bytes: u32,
    /// What a publish does at `max_length`/`max_length_bytes`
    /// (`x-overflow`); `None`, not given, means drop-head, as in RabbitMQ.
    /// Given or not counts for declare equivalence, as RabbitMQ compares
    /// the arguments given.
    pub overflow: Option<Overflow>,
    /// Messages older than this are discarded at delivery (RabbitMQ's
    /// `x-message-ttl`).
    pub message_ttl: Option<Duration>,
    /// Owned by the declaring namespace handle: only it may consume, and the
    /// queue is deleted when that handle closes or its process dies. With an
    /// empty name, declare generates one (`amq.gen-…`).
    pub exclusive: bool,
    /// Deleted when its last consumer goes away (after it had one).
    pub auto_delete: bool,
    /// Declared durable (AMQP's `durable`). Every shmq queue outlives the
    /// processes that use it; this is kept so that redeclares and exports
    /// say what was declared, as RabbitMQ's do. A namespace in /dev/shm
    /// does not outlive a reboot (an on-disk one does).
    pub durable: bool,
    /// Where rejected, expired, dropped and over-delivered messages are
    /// republished (`x-dead-letter-exchange`; `""` is the default
    /// exchange). `None`: they are discarded.
    pub dead_letter_exchange: Option<String>,
    /// The routing key dead-lettered messages get
    /// (`x-dead-letter-routing-key`); `None` keeps theirs.
    pub dead_letter_routing_key: Option<String>,
    /// A message requeued more than this many times is dead-lettered
    /// (reason `delivery_limit`) or discarded (`x-delivery-limit`).
    pub delivery_limit: Option<u32>,
    /// The queue is deleted once unused this long: no consumer, no
    /// `basic.get`, no redeclare (`x-expires`).
    pub expires: Option<Duration>,
    /// `x-queue-type`.
    pub queue_type: QueueType,
    /// One consumer at a time receives; the next registered takes over
    /// when it goes (`x-single-active-consumer`).
    pub single_active_consumer: bool,
    /// Higher-priority messages are delivered first, priorities above this
    /// counting as this (`x-max-priority`, 0..=255; 0 and `None` make no
    /// priority queue, but `Some(0)` is declared). `None`: FIFO, and a
    /// message's priority is only carried.
    pub max_priority: Option<u8>,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            capacity_bytes: 8 << 20,
            max_length: None,
            max_length_bytes: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            overflow: None,
            message_ttl: None,
            exclusive: false,
            auto_delete: false,
            durable: false,
            dead_letter_exchange: None,
            dead_letter_routing_key: None,
            delivery_limit: None,
            expires: None,
            queue_type: QueueType::Classic,
            single_active_consumer: false,
            max_priority: None,
        }
    }
}

/// `d` rounded down to whole milliseconds, as stored.
fn whole_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().min(u128::from(u64::MAX)) as u64)
}

/// Bytes of data per slot in a ring: a ring of `capacity_bytes` has one
/// slot per this many bytes.
pub(crate) const BYTES_PER_SLOT: u64 = 128;

impl QueueOptions {
    /// Sets the size of the queue's first ring.
    ///
    /// # Examples
    /// ```
    /// let o = shmq::QueueOptions::default().capacity_bytes(1 << 20);
    /// assert_eq!(o.capacity_bytes, 1 << 20);
    /// ```
    #[must_use]
    pub fn capacity_bytes(mut self, bytes: u64) -> Self {
        self.capacity_bytes = bytes;
        self
    }

    /// Sets the most ready messages (`x-max-length`).
    ///
    /// # Examples
    /// See [`QueueOptions`].
    #[must_use]
    pub fn max_length(mut self, count: u64) -> Self {
        self.max_length = Some(count);
        self
    }

    /// Sets the most body bytes of ready messages (`x-max-length-bytes`).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shmq::QueueOptions::default().max_length_bytes(10).max_length_bytes, Some(10));
    /// ```
    #[must_use]
    pub fn max_length_bytes(mut self, bytes: u64) -> Self {
        self.max_length_bytes = Some(bytes);
        self
    }

    /// Sets the largest message.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shmq::QueueOptions::default().max_message_bytes(100).max_message_bytes, 100);
    /// ```
    #[must_use]
    pub fn max_message_bytes(mut self, bytes: u32) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Sets the overflow policy.
    ///
    /// # Examples
    /// See [`QueueOptions`].
    #[must_use]
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = Some(overflow);
        self
    }

    /// The overflow policy in force: the one given, else drop-head.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shmq::QueueOptions::default().overflow_policy(), shmq::Overflow::DropOldest);
    /// ```
    pub fn overflow_policy(&self) -> Overflow {
        self.overflow.unwrap_or_default()
    }

    /// Sets the message TTL.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let o = shmq::QueueOptions::default().message_ttl(Duration::from_secs(60));
    /// assert_eq!(o.message_ttl, Some(Duration::from_secs(60)));
    /// ```
    #[must_use]
    pub fn message_ttl(mut self, ttl: Duration) -> Self {
        self.message_ttl = Some(ttl);
        self
    }

    /// Makes the queue exclusive to the declaring namespace handle.
    ///
    /// # Examples
    /// ```
    /// assert!(shmq::QueueOptions::default().exclusive(true).exclusive);
    /// ```
    #[must_use]
    pub fn exclusive(mut self, on: bool) -> Self {
        self.exclusive = on;
        self
    }

    /// Deletes the queue when its last consumer goes.
    ///
    /// # Examples
    /// ```
    /// assert!(shmq::QueueOptions::default().auto_delete(true).auto_delete);
    /// ```
    #[must_use]
    pub fn auto_delete(mut self, on: bool) -> Self {
        self.auto_delete = on;
        self
    }

    /// Sets the dead-letter exchange (`x-dead-letter-exchange`).
    ///
    /// # Examples
    /// ```
    /// let o = shmq::QueueOptions::default().dead_letter_exchange("dlx");
    /// assert_eq!(o.dead_letter_exchange.as_deref(), Some("dlx"));
    /// ```
    #[must_use]
    pub fn dead_letter_exchange(mut self, exchange: &str) -> Self {
        self.dead_letter_exchange = Some(exchange.to_owned());
        self
    }

    /// Sets the routing key of dead-lettered messages
    /// (`x-dead-letter-routing-key`).
    ///
    /// # Examples
    /// ```
    /// let o = shmq::QueueOptions::default().dead_letter_exchange("").dead_letter_routing_key("dlq");
    /// assert_eq!(o.dead_letter_routing_key.as_deref(), Some("dlq"));
    /// ```
    #[must_use]
    pub fn dead_letter_routing_key(mut self, key: &str) -> Self {
        self.dead_letter_routing_key = Some(key.to_owned());
        self
    }

    /// Sets the delivery limit (`x-delivery-limit`).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shmq::QueueOptions::default().delivery_limit(3).delivery_limit, Some(3));
    /// ```
    #[must_use]
    pub fn delivery_limit(mut self, limit: u32) -> Self {
        self.delivery_limit = Some(limit);
        self
    }

    /// Sets how long the queue may stay unused before it is deleted
    /// (`x-expires`).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let o = shmq::QueueOptions::default().expires(Duration::from_secs(30));
    /// assert_eq!(o.expires, Some(Duration::from_secs(30)));
    /// ```
    #[must_use]
    pub fn expires(mut self, after: Duration) -> Self {
        self.expires = Some(after);
        self
    }

    /// Sets the queue type (`x-queue-type`). A quorum queue is durable, as
    /// RabbitMQ requires (it refuses a non-durable one), so this sets
    /// [`durable`](QueueOptions::durable) too.
    ///
    /// # Examples
    /// ```
    /// let o = shmq::QueueOptions::default().queue_type(shmq::QueueType::Quorum);
    /// assert_eq!((o.queue_type, o.durable), (shmq::QueueType::Quorum, true));
    /// ```
    #[must_use]
    pub fn queue_type(mut self, queue_type: QueueType) -> Self {
        self.queue_type = queue_type;
        self.durable |= queue_type == QueueType::Quorum;
        self
    }

    /// Makes this a priority queue of levels 0..=`max` (`x-max-priority`):
    /// consumers get higher-priority messages first. 0 makes no priority
    /// queue, but is declared (as in RabbitMQ, a redeclare compares it).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shmq::QueueOptions::default().max_priority(10).max_priority, Some(10));
    /// ```
    #[must_use]
    pub fn max_priority(mut self, max: u8) -> Self {
        self.max_priority = Some(max);
        self
    }

    /// Declares it durable (see [`durable`](QueueOptions::durable)).
    ///
    /// # Examples
    /// ```
    /// assert!(shmq::QueueOptions::default().durable(true).durable);
    /// ```
    #[must_use]
    pub fn durable(mut self, on: bool) -> Self {
        self.durable = on;
        self
    }

    /// Makes one consumer at a time receive (`x-single-active-consumer`).
    ///
    /// # Examples
    /// ```
    /// assert!(shmq::QueueOptions::default().single_active_consumer(true).single_active_consumer);
    /// ```
    #[must_use]
    pub fn single_active_consumer(mut self, on: bool) -> Self {
        self.single_active_consumer = on;
        self
    }

    /// These options with RabbitMQ queue arguments applied, checked as
    /// RabbitMQ checks them (`queue.declare`'s `arguments`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first argument that is not in
    /// [`QUEUE_ARGUMENTS`], has the wrong type or an invalid value.
    ///
    /// # Examples
    /// ```
    /// use shmq::{ArgValue, QueueOptions};
    /// let args = [("x-dead-letter-exchange".to_owned(), ArgValue::Str("dlx".into())),
    ///             ("x-delivery-limit".to_owned(), ArgValue::Int(3))];
    /// let o = QueueOptions::default().with_arguments("q", &args).unwrap();
    /// assert_eq!((o.dead_letter_exchange.as_deref(), o.delivery_limit), (Some("dlx"), Some(3)));
    /// let bad = [("x-queue-mode".to_owned(), ArgValue::Str("lazy".into()))];
    /// assert!(QueueOptions::default().with_arguments("q", &bad).is_err());
    /// ```
    pub fn with_arguments(mut self, queue: &str, args: &[(String, crate::ArgValue)]) -> Result<Self, Error> {
        use crate::ArgValue;
        let invalid =
            |argument: &str, reason: String| Error::InvalidArgument { queue: queue.to_owned(), argument: argument.to_owned(), reason };
        let find = |key: &str| args.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        for (key, value) in args {
            let key = key.as_str();
            // RabbitMQ's words for each kind of wrong value.
            let int = |min: i64| match value {
                ArgValue::Int(n) if *n < min && *n < 0 => Err(invalid(key, format!("{{value_negative,{n}}}"))),
                ArgValue::Int(n) if *n < min => Err(invalid(key, format!("{{value_zero,{n}}}"))),
                ArgValue::Int(n) => Ok(*n as u64),
                other => Err(invalid(key, format!("\"expected integer, got {}\"", other.amqp_type()))),
            };
            let text = || match value {
                ArgValue::Str(s) => Ok(s.clone()),
                other => Err(invalid(key, format!("{{unacceptable_type,{}}}", other.amqp_type()))),
            };
            let name = || match value {
                ArgValue::Str(s) => Ok(s.clone()),
                other => Err(Error::InvalidArgumentType { queue: queue.to_owned(), argument: key.to_owned(), found: other.amqp_type() }),
            };
            match key {
                "x-max-length" => {
                    let n = int(0)?;
                    if n > u64::from(u32::MAX) {
                        return Err(invalid(key, format!("{n} is over {}, the most shmq supports", u32::MAX)));
                    }
                    self.max_length = Some(n);
                }
                "x-max-length-bytes" => self.max_length_bytes = Some(int(0)?),
                "x-message-ttl" | "x-expires" => {
                    let ms = int(if key == "x-expires" { 1 } else { 0 })?;
                    if ms > MAX_TTL_MS {
                        return Err(invalid(key, format!("{{value_too_large,{ms}}}")));
                    }
                    let ms = Some(Duration::from_millis(ms));
                    if key == "x-expires" {
                        self.expires = ms;
                    } else {
                        self.message_ttl = ms;
                    }
                }
                "x-delivery-limit" => {
                    let n = int(0)?;
                    self.delivery_limit = Some(u32::try_from(n).map_err(|_| invalid(key, format!("{n} is over {}", u32::MAX)))?);
                }
                "x-overflow" => self.overflow = Some(text()?.parse().map_err(|_| invalid(key, "invalid_overflow".into()))?),
                "x-queue-type" => {
                    let kind = text()?;
                    self.queue_type = kind.parse().map_err(|not_ours: String| {
                        // A type RabbitMQ has (stream) is shmq's to refuse;
                        // one it does not is refused in its words.
                        invalid(key, if kind == "stream" { not_ours } else { format!("\"unsupported queue type '{kind}'\"") })
                    })?;
                    // Quorum queues are durable (RabbitMQ refuses others).
                    self.durable |= self.queue_type == QueueType::Quorum;
                }
                "x-dead-letter-exchange" => {
                    let name = name()?;
                    if name.len() > 255 {
                        return Err(invalid(key, "the exchange name is over 255 bytes".into()));
                    }
                    self.dead_letter_exchange = Some(name);
                }
                "x-max-priority" => {
                    let n = int(0)?;
                    // RabbitMQ's limit; 0 is no priority queue, but is
                    // kept (redeclares compare it).
                    if n > 255 {
                        return Err(invalid(key, format!("{{max_value_exceeded,{n}}}")));
                    }
                    self.max_priority = Some(n as u8);
                }
                "x-single-active-consumer" => match value {
                    ArgValue::Bool(on) => self.single_active_consumer = *on,
                    other => return Err(invalid(key, format!("{{unacceptable_type,{}}}", other.amqp_type()))),
                },
                "x-dead-letter-routing-key" => {
                    if find("x-dead-letter-exchange").is_none() {
                        return Err(invalid(key, "routing_key_but_no_dlx_defined".into()));
                    }
                    let routing_key = text()?;
                    if routing_key.len() > 255 {
                        return Err(invalid(key, "the routing key is over 255 bytes".into()));
                    }
                    self.dead_letter_routing_key = Some(routing_key);
                }
                other => {
                    return Err(invalid(other, format!("not supported by shmq (supported: {}); remove it", QUEUE_ARGUMENTS.join(", "))))
                }
            }
        }
        if self.max_priority.is_some_and(|n| n > 0) && (self.max_length.is_some() || self.max_length_bytes.is_some()) {
            let limit = if self.max_length.is_some() { "x-max-length" } else { "x-max-length-bytes" };
            return Err(invalid(limit, "not supported by shmq together with x-max-priority yet; drop one of them".into()));
        }
        Ok(self)
    }

    /// What a redeclare with `requested` would be refused over, as
    /// RabbitMQ 3.10 reports it: the first difference in its order (the
    /// `durable` and `auto_delete` flags unless the queue type differs, then
    /// the arguments as `rabbit_classic_queue`/`rabbit_quorum_queue` list
    /// them; shmq's `x-delivery-limit` on a classic queue last). `None` if
    /// nothing RabbitMQ has a flag or argument for differs (e.g.
    /// `capacity_bytes`).
    ///
    /// # Examples
    /// ```
    /// let existing = shmq::QueueOptions::default().max_length(100);
    /// let differs = existing.inequivalence(&shmq::QueueOptions::default().max_length(5)).unwrap();
    /// assert_eq!(differs.key, "x-max-length");
    /// assert_eq!((differs.received, differs.current), (Some(shmq::ArgValue::Int(5)), Some(shmq::ArgValue::Int(100))));
    /// ```
    pub fn inequivalence(&self, requested: &QueueOptions) -> Option<Inequivalence> {
        const CLASSIC: &[&str] = &[
            "x-expires",
            "x-message-ttl",
            "x-dead-letter-exchange",
            "x-dead-letter-routing-key",
            "x-max-length",
            "x-max-length-bytes",
            "x-max-priority",
            "x-overflow",
            "x-single-active-consumer",
            "x-queue-type",
            "x-delivery-limit",
        ];
        const QUORUM: &[&str] = &[
            "x-dead-letter-exchange",
            "x-dead-letter-routing-key",
            "x-expires",
            "x-max-length",
            "x-max-length-bytes",
            "x-overflow",
            "x-single-active-consumer",
            "x-queue-type",
            "x-delivery-limit",
            "x-message-ttl",
        ];
        use crate::ArgValue::Bool;
        // Another queue type is found before the flags (RabbitMQ 3.10).
        if self.queue_type == requested.queue_type {
            for (key, current, received) in
                [("durable", self.durable, requested.durable), ("auto_delete", self.auto_delete, requested.auto_delete)]
            {
                if current != received {
                    return Some(Inequivalence { key, received: Some(Bool(received)), current: Some(Bool(current)) });
                }
            }
        }
        let (current, wanted) = (self.arguments(), requested.arguments());
        let lookup = |args: &[(String, crate::ArgValue)], key: &str| args.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let order = if self.queue_type == QueueType::Quorum { QUORUM } else { CLASSIC };
        order.iter().find_map(|&key| {
            let (received, current) = (lookup(&wanted, key), lookup(&current, key));
            (received != current).then_some(Inequivalence { key, received, current })
        })
    }

    /// These options as RabbitMQ queue arguments: the inverse of
    /// [`with_arguments`](QueueOptions::with_arguments) (settings RabbitMQ
    /// has no argument for, such as `capacity_bytes`, are left out).
    ///
    /// # Examples
    /// ```
    /// let o = shmq::QueueOptions::default().max_length(5).dead_letter_exchange("dlx");
    /// let args = o.arguments();
    /// assert_eq!(shmq::QueueOptions::default().with_arguments("q", &args).unwrap(), o);
    /// ```
    pub fn arguments(&self) -> Vec<(String, crate::ArgValue)> {
        use crate::ArgValue::{Int, Str};
        let ms = |d: Duration| Int(d.as_millis().min(i64::MAX as u128) as i64);
        let int = |n: u64| Int(n.min(i64::MAX as u64) as i64);
        let entries = [
            ("x-max-length", self.max_length.map(int)),
            ("x-max-length-bytes", self.max_length_bytes.map(int)),
            ("x-overflow", self.overflow.map(|o| Str(o.to_string()))),
            ("x-message-ttl", self.message_ttl.map(ms)),
            ("x-dead-letter-exchange", self.dead_letter_exchange.clone().map(Str)),
            ("x-dead-letter-routing-key", self.dead_letter_routing_key.clone().map(Str)),
            ("x-delivery-limit", self.delivery_limit.map(|n| Int(i64::from(n)))),
            ("x-expires", self.expires.map(ms)),
            ("x-queue-type", (self.queue_type != QueueType::Classic).then(|| Str(self.queue_type.to_string()))),
            ("x-single-active-consumer", self.single_active_consumer.then_some(crate::ArgValue::Bool(true))),
            ("x-max-priority", self.max_priority.map(|n| Int(i64::from(n)))),
        ];
        entries.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?))).collect()
    }

    /// The normalised options a declare will store: the first ring's size
    /// rounded up to a power of two. Two option sets conflict iff their
    /// normal forms differ.
    ///
    /// # Errors
    /// `InvalidOptions` if a size is out of range.
    ///
    /// # Examples
    /// ```
    /// let o = shmq::QueueOptions::default().capacity_bytes(1000);
    /// assert_eq!(o.normalized().unwrap().capacity_bytes, 1024);
    /// ```
    pub fn normalized(&self) -> Result<QueueOptions, Error> {
        let geometry = self.geometry()?;
        Ok(QueueOptions {
            capacity_bytes: u64::from(geometry.data_units) * UNIT as u64,
            message_ttl: self.message_ttl.map(whole_ms),
            expires: self.expires.map(whole_ms),
            ..self.clone()
        })
    }

    /// The first ring's geometry.
    pub(crate) fn geometry(&self) -> Result<Geometry, Error> {
        let max_bytes = u64::from(MAX_DATA_UNITS) * UNIT as u64;
        let min_bytes = u64::from(MIN_DATA_UNITS) * UNIT as u64;
        if self.capacity_bytes < min_bytes || self.capacity_bytes > max_bytes {
            return Err(Error::InvalidOptions(format!(
                "capacity_bytes {} is out of range: use {min_bytes}..={max_bytes}",
                self.capacity_bytes
            )));
        }
        if u64::from(self.max_message_bytes) > MAX_MESSAGE_BYTES {
            return Err(Error::InvalidOptions(format!(
                "max_message_bytes {} is over {MAX_MESSAGE_BYTES} (512 MiB), the most one ring holds",
                self.max_message_bytes
            )));
        }
        if self.max_length.is_some_and(|n| n > u64::from(u32::MAX)) {
            return Err(Error::InvalidOptions(format!("max_length {} is over {}", self.max_length.unwrap_or(0), u32::MAX)));
        }
        let too_long = |name: &Option<String>| name.as_ref().is_some_and(|n| n.len() > 255);
        if too_long(&self.dead_letter_exchange) || too_long(&self.dead_letter_routing_key) {
            return Err(Error::InvalidOptions("a dead-letter exchange or routing key is over 255 bytes".into()));
        }
        if self.dead_letter_routing_key.is_some() && self.dead_letter_exchange.is_none() {
            return Err(Error::InvalidOptions("a dead-letter routing key needs a dead-letter exchange: set dead_letter_exchange".into()));
        }
        if self.max_priority.is_some_and(|n| n > 0) && (self.max_length.is_some() || self.max_length_bytes.is_some()) {
            return Err(Error::InvalidOptions(
                "x-max-length and x-max-length-bytes on a priority queue (x-max-priority) are not supported by shmq yet: drop one".into(),
            ));
        }
        if self.expires == Some(Duration::ZERO) {
            return Err(Error::InvalidOptions("expires must be at least 1 ms".into()));
        }
        let too_long = |d: Option<Duration>| d.is_some_and(|d| d.as_millis() > u128::from(MAX_TTL_MS));
        if too_long(self.message_ttl) || too_long(self.expires) {
            return Err(Error::InvalidOptions(format!("message_ttl and expires are at most {MAX_TTL_MS} ms (RabbitMQ's limit)")));
        }
        let data_units = (self.capacity_bytes.div_ceil(UNIT as u64)).next_power_of_two() as u32;
        Ok(Geometry { slot_count: slots_for(data_units), data_units })
    }
}

/// The largest `max_message_bytes` (512 MiB; a ring of twice that holds it).
pub(crate) const MAX_MESSAGE_BYTES: u64 = 512 << 20;
const _: () = assert!(MAX_MESSAGE_BYTES * 2 <= MAX_DATA_UNITS as u64 * UNIT as u64);

/// Slots for a ring of `data_units`: one per [`BYTES_PER_SLOT`].
pub(crate) fn slots_for(data_units: u32) -> u32 {
    ((u64::from(data_units) * UNIT as u64 / BYTES_PER_SLOT) as u32).clamp(2, MAX_SLOTS)
}

/// How a consumer acknowledges.
///
/// # Examples
/// ```
/// assert_eq!(shmq::AckMode::default(), shmq::AckMode::Auto);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AckMode {
    /// At-most-once: a delivery is settled when it is dropped, and a
    /// consumer that crashes holding it does not get it redelivered.
    #[default]
    Auto,
    /// At-least-once: every delivery must be acked or rejected; unacked ones
    /// are redelivered when the consumer closes or dies.
    Manual,
}

/// Options of one consumer.
///
/// # Examples
/// ```
/// let options = shmq::ConsumerOptions::default().manual_ack().prefetch(1);
/// assert_eq!(options.prefetch, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsumerOptions {
    /// Auto or manual acks.
    pub ack_mode: AckMode,
    /// Most unacked deliveries held at once in manual mode (RabbitMQ's
    /// `basic_qos(prefetch_count)`); 0 means unlimited.
    pub prefetch: u32,
    /// Spin instead of sleeping while waiting: lowest latency, one busy core.
    pub busy_poll: bool,
    /// A handle for polling, as AMQP's `basic.get`: it takes, holds and
    /// settles messages like any consumer, but does not count as one in
    /// the queue's consumer count, for auto-delete or for `x-expires`
    /// (RabbitMQ does not count `basic.get` either).
    pub get_only: bool,
    /// The only consumer of the queue while it lives (AMQP's
    /// `basic.consume` with `exclusive`): refused if others are attached,
    /// and others are refused while it is.
    pub exclusive: bool,
    /// This consumer's priority (RabbitMQ's `x-priority` consumer
    /// argument): a consumer takes messages only while no consumer of a
    /// higher priority has prefetch room. 0 by default; may be negative.
    pub priority: i32,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self { ack_mode: AckMode::Auto, prefetch: 0, busy_poll: false, get_only: false, exclusive: false, priority: 0 }
    }
}

impl ConsumerOptions {
    /// Makes this a polling handle, not counted as a consumer (see
    /// [`get_only`](ConsumerOptions::get_only)).
    ///
    /// # Examples
    /// ```
    /// assert!(shmq::ConsumerOptions::default().for_get().get_only);
    /// ```
    #[must_use]
    pub fn for_get(mut self) -> Self {
        self.get_only = true;
        self
    }

    /// Makes this the queue's exclusive consumer (see
    /// [`exclusive`](ConsumerOptions::exclusive)).
    ///
    /// # Examples
    /// ```
    /// assert!(shmq::ConsumerOptions::default().exclusive().exclusive);
    /// ```
    #[must_use]
    pub fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }

    /// The agent role this consumer registers with.
    pub(crate) fn role(&self) -> u32 {
        if self.get_only {
            crate::ring::layout::ROLE_GETTER
        } else {
            crate::ring::layout::ROLE_CONSUMER
        }
    }

    /// Manual acks.
    ///
    /// # Examples
    /// See [`ConsumerOptions`].
    #[must_use]
    pub fn manual_ack(mut self) -> Self {
        self.ack_mode = AckMode::Manual;
        self
    }

    /// Sets the prefetch limit.
    ///
    /// # Examples
    /// See [`ConsumerOptions`].
    #[must_use]
    pub fn prefetch(mut self, count: u32) -> Self {
        self.prefetch = count;
        self
    }

    /// Sets this consumer's priority (see
    /// [`priority`](ConsumerOptions::priority)).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shmq::ConsumerOptions::default().priority(5).priority, 5);
    /// ```
    #[must_use]
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Busy-polls instead of sleeping.
    ///
    /// # Examples
    /// ```
    /// assert!(shmq::ConsumerOptions::default().busy_poll(true).busy_poll);
    /// ```
    #[must_use]
    pub fn busy_poll(mut self, on: bool) -> Self {
        self.busy_poll = on;
        self
    }
}
