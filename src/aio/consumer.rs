//! The async consumer: `recv().await`, and a `Stream` of owned messages.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::{Changed, Side};
use crate::error::{AckError, RecvError};
use crate::queue::consumer::{Consumer, Delivery, DeliveryTag};
use crate::queue::SWEEP_INTERVAL;
use crate::PropertiesRef;

/// A [`Consumer`] that waits with `.await`: while its queue is empty the
/// task sleeps in the reactor (no thread of its own, no polling) until a
/// publisher in any process notifies.
///
/// Every `SWEEP_INTERVAL` (200 ms) asleep the task wakes to sweep for dead
/// peers (how often any handle sweeps at most),
/// as a blocking `recv` does, so a crashed consumer's messages come back to
/// an idle async one too. `ConsumerOptions::busy_poll` does not apply: an
/// async consumer never spins (it would hold the executor's thread).
///
/// # Examples
/// See [the module](crate::aio).
pub struct AsyncConsumer {
    consumer: Consumer,
}

impl AsyncConsumer {
    /// Wraps a consumer.
    ///
    /// # Examples
    /// See [the module](crate::aio).
    pub fn new(consumer: Consumer) -> Self {
        Self { consumer }
    }

    /// The blocking consumer: acks, nacks, counts, cancel.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-aio-ref-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &Default::default()).unwrap();
    /// let consumer = shmq::aio::AsyncConsumer::new(ns.consumer("q", Default::default()).unwrap());
    /// assert_eq!(consumer.consumer().unacked(), 0);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// Unwraps the blocking consumer.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-aio-inner-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &Default::default()).unwrap();
    /// let consumer = shmq::aio::AsyncConsumer::new(ns.consumer("q", Default::default()).unwrap());
    /// assert_eq!(consumer.into_inner().queue_name(), "q");
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn into_inner(self) -> Consumer {
        self.consumer
    }

    /// Waits for a message as long as it takes.
    ///
    /// # Errors
    /// As [`Consumer::recv`].
    ///
    /// # Examples
    /// See [the module](crate::aio).
    pub async fn recv(&mut self) -> Result<Delivery<'_>, RecvError> {
        self.recv_until(None).await
    }

    /// Waits for a message for at most `timeout`.
    ///
    /// # Errors
    /// [`RecvError::Timeout`] if none came; otherwise as [`Consumer::recv`].
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-aio-to-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &Default::default()).unwrap();
    /// let mut consumer = shmq::aio::AsyncConsumer::new(ns.consumer("q", Default::default()).unwrap());
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let waited = runtime.block_on(consumer.recv_timeout(std::time::Duration::from_millis(5)));
    /// assert_eq!(waited.err(), Some(shmq::RecvError::Timeout));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Delivery<'_>, RecvError> {
        self.recv_until(Some(Instant::now() + timeout)).await
    }

    async fn recv_until(&mut self, deadline: Option<Instant>) -> Result<Delivery<'_>, RecvError> {
        // `self.consumer` afresh each time, never a `&Consumer` held across
        // the await: `Consumer` is not `Sync`, and the future must be `Send`.
        loop {
            match self.consumer.try_recv() {
                Err(RecvError::Empty) => {}
                taken => return taken,
            }
            let (queue, ticket) = self.consumer.arm_not_empty();
            match self.consumer.try_recv() {
                Err(RecvError::Empty) => {}
                taken => return taken,
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(RecvError::Timeout);
            }
            let until = deadline.map_or(now + SWEEP_INTERVAL, |d| d.min(now + SWEEP_INTERVAL));
            Changed::new(queue, Side::NotEmpty, ticket, until).await;
            self.consumer.after_sleep();
        }
    }

    /// A [`Stream`](futures_core::Stream) of the queue's messages, copied
    /// out of shared memory ([`Message`]); acks go through
    /// [`Messages::ack`] and friends.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-aio-stream-{}", std::process::id()));
    /// use futures_lite::StreamExt;
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &Default::default()).unwrap();
    /// ns.producer("q").unwrap().publish_batch(&[b"a", b"b"]).unwrap();
    /// let options = shmq::ConsumerOptions { ack_mode: shmq::AckMode::Manual, ..Default::default() };
    /// let mut messages = shmq::aio::AsyncConsumer::new(ns.consumer("q", options).unwrap()).into_stream();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(async {
    ///     for expected in [b"a", b"b"] {
    ///         let message = messages.next().await.unwrap().unwrap();
    ///         assert_eq!(message.body, expected);
    ///         messages.ack(message.tag).unwrap();
    ///     }
    /// });
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn into_stream(self) -> Messages {
        Messages { consumer: self.consumer, changed: None, ended: false }
    }
}

/// A message copied out of its slot, for a [`Messages`] stream.
///
/// # Examples
/// See [`AsyncConsumer::into_stream`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The body.
    pub body: Vec<u8>,
    /// The encoded properties; [`Message::properties`] decodes them.
    pub properties: Vec<u8>,
    /// The tag to ack it with (manual-ack consumers).
    pub tag: DeliveryTag,
    /// Delivered before (and not acked).
    pub redelivered: bool,
    /// Deliveries so far, this one included.
    pub delivery_count: u32,
}

impl Message {
    fn copied(delivery: &Delivery<'_>) -> Self {
        Self {
            body: delivery.body().to_vec(),
            properties: delivery.properties_bytes().to_vec(),
            tag: delivery.tag(),
            redelivered: delivery.redelivered(),
            delivery_count: delivery.delivery_count(),
        }
    }

    /// The decoded properties.
    ///
    /// # Errors
    /// [`RecvError::Corrupt`] if the bytes do not parse (they were checked
    /// when the message was taken, so only a caller who changed
    /// `properties` sees it).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-aio-props-{}", std::process::id()));
    /// use futures_lite::StreamExt;
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &Default::default()).unwrap();
    /// let properties = shmq::Properties { content_type: Some("text/plain"), ..shmq::Properties::new() };
    /// ns.producer("q").unwrap().publish_with(&properties, b"x").unwrap();
    /// let mut messages = shmq::aio::AsyncConsumer::new(ns.consumer("q", Default::default()).unwrap()).into_stream();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let message = runtime.block_on(messages.next()).unwrap().unwrap();
    /// assert_eq!(message.properties().unwrap().content_type, Some("text/plain"));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn properties(&self) -> Result<PropertiesRef<'_>, RecvError> {
        PropertiesRef::parse(&self.properties).ok_or(RecvError::Corrupt(self.tag.0 as u32))
    }
}

/// The stream [`AsyncConsumer::into_stream`] makes. It ends after the queue
/// is deleted (the last item is `Err(QueueDeleted)`).
///
/// # Examples
/// See [`AsyncConsumer::into_stream`].
pub struct Messages {
    consumer: Consumer,
    changed: Option<Changed>,
    ended: bool,
}

impl Messages {
    /// The blocking consumer underneath.
    ///
    /// # Examples
    /// See [`AsyncConsumer::consumer`].
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// Acks one message.
    ///
    /// # Errors
    /// As [`Consumer::ack`].
    ///
    /// # Examples
    /// See [`AsyncConsumer::into_stream`].
    pub fn ack(&self, tag: DeliveryTag) -> Result<(), AckError> {
        self.consumer.ack(tag)
    }

    /// Acks every held message up to `tag`.
    ///
    /// # Errors
    /// As [`Consumer::ack_multiple`].
    ///
    /// # Examples
    /// See [`AsyncConsumer::into_stream`]; the same with one call at the end.
    pub fn ack_multiple(&self, tag: DeliveryTag) -> Result<usize, AckError> {
        self.consumer.ack_multiple(tag)
    }

    /// Rejects one message, requeued or dead-lettered.
    ///
    /// # Errors
    /// As [`Consumer::nack`].
    ///
    /// # Examples
    /// See [`AsyncConsumer::into_stream`]; `nack(tag, true)` gives it back.
    pub fn nack(&self, tag: DeliveryTag, requeue: bool) -> Result<(), AckError> {
        self.consumer.nack(tag, requeue)
    }

    /// One message copied out, or `Empty`.
    fn take(&self) -> Result<Message, RecvError> {
        self.consumer.try_recv().map(|delivery| Message::copied(&delivery))
    }
}

impl futures_core::Stream for Messages {
    type Item = Result<Message, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            if let Some(changed) = this.changed.as_mut() {
                if Pin::new(changed).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.changed = None;
                this.consumer.after_sleep();
            }
            match this.take() {
                Err(RecvError::Empty) => {}
                taken => return Poll::Ready(Some(this.end_if_deleted(taken))),
            }
            let (queue, ticket) = this.consumer.arm_not_empty();
            match this.take() {
                Err(RecvError::Empty) => {}
                taken => return Poll::Ready(Some(this.end_if_deleted(taken))),
            }
            this.changed = Some(Changed::new(queue, Side::NotEmpty, ticket, Instant::now() + SWEEP_INTERVAL));
        }
    }
}

impl Messages {
    /// Notes the end of the stream at a deleted queue.
    fn end_if_deleted(&mut self, taken: Result<Message, RecvError>) -> Result<Message, RecvError> {
        self.ended = matches!(taken, Err(RecvError::QueueDeleted));
        taken
    }
}
