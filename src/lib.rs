//! # shmq: a lock-free shared-memory message queue with RabbitMQ's semantics
//!
//! Processes on one machine exchange messages through queues that live in
//! memory-mapped files, at shared-memory speed and with no broker process.
//! A queue is a ring of message slots over a ring of data bytes; producers
//! and competing consumers move messages with single CAS operations, and
//! acks, prefetch, requeue and redelivery work as RabbitMQ users expect.
//!
//! ```
//! # #[cfg(not(shmq_loom))] {
//! use shmq::{ConsumerOptions, Namespace, QueueOptions};
//!
//! # let dir = std::env::temp_dir().join(format!("shmq-doc-lib-{}", std::process::id()));
//! // A namespace is a directory of segments; `Namespace::open("app")` uses
//! // /dev/shm/shmq-<uid>/app.
//! let ns = Namespace::open_dir(&dir)?;
//! ns.declare_queue("hello", &QueueOptions::default())?;
//!
//! let mut producer = ns.producer("hello")?;
//! producer.publish(b"Hello World")?;
//!
//! let consumer = ns.consumer("hello", ConsumerOptions::default().manual_ack().prefetch(1))?;
//! let delivery = consumer.recv()?;
//! assert_eq!(delivery.body(), b"Hello World");
//! delivery.ack()?;
//! # drop(consumer); drop(producer); std::fs::remove_dir_all(&dir).ok();
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Read docs/ARCHITECTURE.md for the design, docs/LAYOUT.md for the bytes
//! and docs/GUARANTEES.md for what is delivered when.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod error;
mod sync;

#[doc(hidden)]
pub mod ring;

#[cfg(all(feature = "async", not(shmq_loom)))]
pub mod aio;
#[cfg(not(shmq_loom))]
mod liveness;
#[cfg(not(shmq_loom))]
mod message;
#[cfg(not(shmq_loom))]
mod namespace;
#[cfg(not(shmq_loom))]
mod namespace_state;
#[cfg(not(shmq_loom))]
mod nsdir;
#[cfg(not(shmq_loom))]
mod options;
#[cfg(not(shmq_loom))]
mod queue;
#[cfg(not(shmq_loom))]
mod routing;
#[cfg(not(shmq_loom))]
mod segment;
#[doc(hidden)]
#[path = "routing/seqtable.rs"]
pub mod seqtable;

pub use error::{AckError, Error, PublishError, RecvError};
#[cfg(not(shmq_loom))]
pub use message::{HeaderArray, HeaderArrayIter, HeaderValue, Headers, HeadersIter, Properties, PropertiesRef, MAX_HEADER_DEPTH};
#[cfg(not(shmq_loom))]
pub use namespace::inspect::{HandleInfo, PeekedMessage};
#[cfg(not(shmq_loom))]
pub use namespace::publisher::{Publisher, Routed};
#[cfg(not(shmq_loom))]
pub use namespace::{Housekept, Namespace, NamespaceOptions, QueueStats, DIRECT_REPLY_TO, NAMESPACE_ENV};
#[cfg(not(shmq_loom))]
pub use nsdir::{default_root, validate_name, validate_queue_name, DEFAULT_ROOT_PREFIX};
#[cfg(not(shmq_loom))]
pub use options::{
    AckMode, ConsumerOptions, Inequivalence, Overflow, QueueOptions, QueueType, DEFAULT_MAX_MESSAGE_BYTES, MAX_TTL_MS, QUEUE_ARGUMENTS,
};
#[cfg(not(shmq_loom))]
pub use queue::consumer::{Consumer, Delivery, DeliveryTag};
#[cfg(not(shmq_loom))]
pub use queue::producer::{BatchReservation, Producer, Reservation, WaitHook, WaitReason, MAX_BATCH};
pub use ring::layout::AGENT_SLOTS;
#[cfg(not(shmq_loom))]
pub use routing::table::RoutingLimits;
#[cfg(not(shmq_loom))]
pub use routing::topic::topic_matches;
#[cfg(not(shmq_loom))]
pub use routing::{ArgValue, Binding, Destination, ExchangeInfo, ExchangeKind, ExchangeOptions};
#[cfg(not(shmq_loom))]
pub use segment::layout::LAYOUT_VERSION;
#[doc(hidden)]
pub use sync::crash;

/// Entry points for the cargo-fuzz targets in fuzz/ (the crate-private
/// decoders of shared-memory bytes); not part of the API.
#[doc(hidden)]
#[cfg(not(shmq_loom))]
pub mod fuzzing {
    /// Decodes routing-table words as readers do and re-encodes the table;
    /// `None` if they do not decode.
    pub fn routing_table_reencode(words: &[u64]) -> Option<Vec<u64>> {
        crate::routing::table::decode(words).map(|table| crate::routing::table::encode(&table))
    }

    /// Parses encoded message properties as a consumer does.
    pub fn parse_properties(bytes: &[u8]) -> Option<crate::PropertiesRef<'_>> {
        crate::PropertiesRef::parse(bytes)
    }

    /// Encodes properties as a publisher does; `None` if they are invalid.
    pub fn encode_properties(properties: &crate::Properties<'_>) -> Option<Vec<u8>> {
        let mut out = vec![0; properties.encoded_len().ok()?];
        properties.encode(&mut out);
        Some(out)
    }
}
