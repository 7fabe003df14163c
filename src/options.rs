//! Queue and consumer options.

use std::time::Duration;

use crate::error::Error;
use crate::ring::layout::UNIT;
use crate::ring::{Geometry, MAX_DATA_UNITS, MAX_SLOTS, MIN_DATA_UNITS};

/// What a publish does when the queue is full.
///
/// # Examples
/// ```
/// assert_eq!("drop-oldest".parse::<shmq::Overflow>(), Ok(shmq::Overflow::DropOldest));
/// assert_eq!(shmq::Overflow::Reject.to_string(), "reject");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Overflow {
    /// Wait for space (up to the publish timeout). Nothing is lost.
    #[default]
    Block = 1,
    /// Fail at once with [`PublishError::QueueFull`](crate::PublishError::QueueFull)
    /// (RabbitMQ's `reject-publish`).
    Reject = 2,
    /// Discard the oldest ready messages to make room (RabbitMQ's
    /// `drop-head`). Unacked messages are never dropped.
    DropOldest = 3,
}

impl Overflow {
    pub(crate) fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Block),
            2 => Some(Self::Reject),
            3 => Some(Self::DropOldest),
            _ => None,
        }
    }
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Block => "block",
            Self::Reject => "reject",
            Self::DropOldest => "drop-oldest",
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
            other => Err(format!("unknown overflow policy '{other}': use block, reject or drop-oldest")),
        }
    }
}

/// Options of a queue, fixed when it is declared. Declaring an existing
/// queue with different options fails with
/// [`Error::PreconditionFailed`](crate::Error::PreconditionFailed).
///
/// # Examples
/// ```
/// use shmq::{Overflow, QueueOptions};
/// let options = QueueOptions::default()
///     .capacity_bytes(1 << 20)
///     .max_message_bytes(64 * 1024)
///     .overflow(Overflow::Reject);
/// assert_eq!(options.max_messages, 1 << 14);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    /// Bytes for message bodies and properties; rounded up to a power of two.
    pub capacity_bytes: u64,
    /// The most messages the queue holds at once; rounded up to a power of
    /// two. Each takes a 32-byte slot.
    pub max_messages: u32,
    /// The largest body plus encoded properties, at most half the capacity.
    pub max_message_bytes: u32,
    /// What a publish does when the queue is full.
    pub overflow: Overflow,
    /// Messages older than this are discarded at delivery (RabbitMQ's
    /// `x-message-ttl`).
    pub message_ttl: Option<Duration>,
    /// Owned by the declaring namespace handle: only it may consume, and the
    /// queue is deleted when that handle closes or its process dies. With an
    /// empty name, declare generates one (`amq.gen-…`).
    pub exclusive: bool,
    /// Deleted when its last consumer goes away (after it had one).
    pub auto_delete: bool,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            capacity_bytes: 8 << 20,
            max_messages: 1 << 16,
            max_message_bytes: 1 << 20,
            overflow: Overflow::Block,
            message_ttl: None,
            exclusive: false,
            auto_delete: false,
        }
    }
}

impl QueueOptions {
    /// Sets the capacity; `max_messages` follows at one slot per 64 bytes,
    /// and `max_message_bytes` is capped at half the capacity.
    ///
    /// # Examples
    /// See [`QueueOptions`].
    #[must_use]
    pub fn capacity_bytes(mut self, bytes: u64) -> Self {
        self.capacity_bytes = bytes;
        self.max_messages = (bytes / 64).clamp(2, u64::from(MAX_SLOTS)) as u32;
        self.max_message_bytes = self.max_message_bytes.min((bytes / 2).min(u64::from(u32::MAX)) as u32);
        self
    }

    /// Sets the most messages held at once.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shmq::QueueOptions::default().max_messages(100).max_messages, 100);
    /// ```
    #[must_use]
    pub fn max_messages(mut self, count: u32) -> Self {
        self.max_messages = count;
        self
    }

    /// Sets the largest message.
    ///
    /// # Examples
    /// See [`QueueOptions`].
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
        self.overflow = overflow;
        self
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

    /// The normalised options a declare will store: capacities rounded up to
    /// powers of two. Two option sets conflict iff their normal forms differ.
    ///
    /// # Errors
    /// `InvalidOptions` if the sizes are out of range.
    ///
    /// # Examples
    /// ```
    /// let o = shmq::QueueOptions::default().capacity_bytes(1000).max_messages(3).max_message_bytes(100);
    /// assert_eq!(o.normalized().unwrap().capacity_bytes, 1024);
    /// ```
    pub fn normalized(&self) -> Result<QueueOptions, Error> {
        let geometry = self.geometry()?;
        Ok(QueueOptions {
            capacity_bytes: u64::from(geometry.data_units) * UNIT as u64,
            max_messages: geometry.slot_count,
            message_ttl: self.message_ttl.map(|d| Duration::from_millis(d.as_millis().min(u128::from(u64::MAX)) as u64)),
            ..self.clone()
        })
    }

    pub(crate) fn geometry(&self) -> Result<Geometry, Error> {
        let max_bytes = u64::from(MAX_DATA_UNITS) * UNIT as u64;
        let min_bytes = u64::from(MIN_DATA_UNITS) * UNIT as u64;
        if self.capacity_bytes < min_bytes || self.capacity_bytes > max_bytes {
            return Err(Error::InvalidOptions(format!(
                "capacity_bytes {} is out of range: use {min_bytes}..={max_bytes}",
                self.capacity_bytes
            )));
        }
        if self.max_messages == 0 || self.max_messages > MAX_SLOTS {
            return Err(Error::InvalidOptions(format!("max_messages {} is out of range: use 1..={MAX_SLOTS}", self.max_messages)));
        }
        let data_units = (self.capacity_bytes.div_ceil(UNIT as u64)).next_power_of_two() as u32;
        let slot_count = self.max_messages.next_power_of_two().max(2);
        let geometry = Geometry { slot_count, data_units };
        let limit = u64::from(geometry.max_record_units()) * UNIT as u64;
        if u64::from(self.max_message_bytes) > limit {
            return Err(Error::InvalidOptions(format!(
                "max_message_bytes {} is over half the capacity ({limit} bytes): raise capacity_bytes or lower max_message_bytes",
                self.max_message_bytes
            )));
        }
        Ok(geometry)
    }
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
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self { ack_mode: AckMode::Auto, prefetch: 0, busy_poll: false }
    }
}

impl ConsumerOptions {
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
