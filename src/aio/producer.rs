//! Async publishing: `publish(...).await` where a blocking publish would
//! wait for room.
//!
//! Both handles set their blocking handle's wait hook to "do not wait", so
//! a publish that would sleep returns `Interrupted` at once, before it
//! claimed anything; the async side then sleeps in the reactor on the
//! queue's not-full eventcount and tries again. A routed publish resumes
//! at the queue that was full, so no queue gets a message twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Changed, Side};
use crate::error::PublishError;
use crate::message::Properties;
use crate::namespace::publisher::{Publisher, Resume, Routed};
use crate::queue::producer::{Producer, BUDGET_WAIT_SLICE};
use crate::queue::SWEEP_INTERVAL;
use crate::WaitReason;

/// The wait hook of an async handle's blocking one: never wait there.
fn never_wait() -> crate::WaitHook {
    Arc::new(|_| false)
}

/// The end of a wait that started now, for a publish `timeout`.
fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + t)
}

/// When the next sleep ends: a slice, or the deadline if sooner; `None` if
/// it passed. The slice is the sweep interval (dead consumers' room is
/// found), or, at the memory budget, the blocking publish's 10 ms: room
/// there comes from other queues' rings, whose frees nobody here hears.
fn sleep_until(deadline: Option<Instant>, reason: WaitReason) -> Option<Instant> {
    let now = Instant::now();
    let slice = if reason == WaitReason::MemoryBudget { BUDGET_WAIT_SLICE } else { SWEEP_INTERVAL };
    match deadline {
        Some(d) if now >= d => None,
        Some(d) => Some(d.min(now + slice)),
        None => Some(now + slice),
    }
}

/// A [`Producer`] whose publish awaits room instead of blocking the thread
/// (a `block` queue at its limit, the namespace at its memory budget).
///
/// # Examples
/// See [the module](crate::aio).
pub struct AsyncProducer {
    producer: Producer,
    timeout: Option<Duration>,
}

impl AsyncProducer {
    /// Wraps a producer, keeping its publish timeout; its wait hook is
    /// replaced (a publish that would wait awaits instead).
    ///
    /// # Examples
    /// See [the module](crate::aio).
    pub fn new(mut producer: Producer) -> Self {
        producer.set_wait_hook(Some(never_wait()));
        let timeout = producer.publish_timeout();
        Self { producer, timeout }
    }

    /// The blocking producer (counts, queue name).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-aio-prod-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &Default::default()).unwrap();
    /// let producer = shmq::aio::AsyncProducer::new(ns.producer("q").unwrap());
    /// assert_eq!(producer.producer().queue_name(), "q");
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// How long a publish waits for room in all (default: as long as it
    /// takes); then it fails with `Timeout`.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-aio-prodto-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let options = shmq::QueueOptions { max_length: Some(1), overflow: Some(shmq::Overflow::Block), ..Default::default() };
    /// ns.declare_queue("q", &options).unwrap();
    /// let mut producer = shmq::aio::AsyncProducer::new(ns.producer("q").unwrap());
    /// producer.set_publish_timeout(Some(std::time::Duration::from_millis(20)));
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(async {
    ///     producer.publish(b"1").await.unwrap();
    ///     assert_eq!(producer.publish(b"2").await, Err(shmq::PublishError::Timeout));
    /// });
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn set_publish_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Publishes `body` without properties.
    ///
    /// # Errors
    /// As [`Producer::publish`]; `Timeout` once the publish timeout passed.
    ///
    /// # Examples
    /// See [the module](crate::aio).
    pub async fn publish(&mut self, body: &[u8]) -> Result<(), PublishError> {
        self.publish_with(&Properties::new(), body).await
    }

    /// Publishes `body` with `properties`.
    ///
    /// # Errors
    /// As [`Producer::publish_with`]; `Timeout` once the publish timeout
    /// passed.
    ///
    /// # Examples
    /// See [the module](crate::aio); the same with properties.
    pub async fn publish_with(&mut self, properties: &Properties<'_>, body: &[u8]) -> Result<(), PublishError> {
        let deadline = deadline(self.timeout);
        loop {
            match self.producer.publish_with(properties, body) {
                Err(PublishError::Interrupted) => {}
                done => return done,
            }
            let (queue, ticket, reason) = self.producer.arm_stalled();
            match self.producer.publish_with(properties, body) {
                Err(PublishError::Interrupted) => {}
                done => return done,
            }
            let until = sleep_until(deadline, reason).ok_or(PublishError::Timeout)?;
            Changed::new(queue, Side::NotFull, ticket, until).await;
            self.producer.after_sleep();
        }
    }
}

/// A [`Publisher`] (exchanges, routing) whose publish awaits room in each
/// matched queue that is full with overflow `block`, one after the other;
/// the others are not published to twice.
///
/// # Examples
/// ```
/// # #[cfg(not(shmq_loom))] {
/// # let dir = std::env::temp_dir().join(format!("shmq-doc-aio-pub-{}", std::process::id()));
/// let ns = shmq::Namespace::open_dir(&dir).unwrap();
/// ns.declare_queue("q", &Default::default()).unwrap();
/// let mut publisher = shmq::aio::AsyncPublisher::new(ns.publisher());
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let routed = runtime.block_on(publisher.publish("", "q", &shmq::Properties::new(), b"x")).unwrap();
/// assert_eq!(routed.queues, 1);
/// # std::fs::remove_dir_all(&dir).ok();
/// # }
/// ```
pub struct AsyncPublisher {
    publisher: Publisher,
    timeout: Option<Duration>,
}

impl AsyncPublisher {
    /// Wraps a publisher, keeping its publish timeout; its wait hook is
    /// replaced (a publish that would wait awaits instead).
    ///
    /// # Examples
    /// See [`AsyncPublisher`].
    pub fn new(mut publisher: Publisher) -> Self {
        publisher.set_wait_hook(Some(never_wait()));
        let timeout = publisher.publish_timeout();
        Self { publisher, timeout }
    }

    /// How long one publish waits for room in all (default: as long as it
    /// takes); a queue still full then counts in [`Routed::full`], as with
    /// a blocking publish's timeout.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-aio-pubto-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let options = shmq::QueueOptions { max_length: Some(1), overflow: Some(shmq::Overflow::Block), ..Default::default() };
    /// ns.declare_queue("q", &options).unwrap();
    /// let mut publisher = shmq::aio::AsyncPublisher::new(ns.publisher());
    /// publisher.set_publish_timeout(Some(std::time::Duration::from_millis(20)));
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(async {
    ///     let p = shmq::Properties::new();
    ///     assert_eq!(publisher.publish("", "q", &p, b"1").await.unwrap().full, 0);
    ///     assert_eq!(publisher.publish("", "q", &p, b"2").await.unwrap().full, 1);
    /// });
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn set_publish_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Routes and publishes one message, as [`Publisher::publish`].
    ///
    /// # Errors
    /// As [`Publisher::publish`].
    ///
    /// # Examples
    /// See [`AsyncPublisher`].
    pub async fn publish(
        &mut self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        body: &[u8],
    ) -> Result<Routed, PublishError> {
        self.publish_routed(exchange, routing_key, properties, body, false).await
    }

    /// As [`publish`](AsyncPublisher::publish), but a message that matches
    /// no queue is `Unroutable` (AMQP's `mandatory`).
    ///
    /// # Errors
    /// As [`Publisher::publish_mandatory`].
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-aio-mand-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let mut publisher = shmq::aio::AsyncPublisher::new(ns.publisher());
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let refused = runtime.block_on(publisher.publish_mandatory("amq.direct", "nobody", &shmq::Properties::new(), b"x"));
    /// assert_eq!(refused, Err(shmq::PublishError::Unroutable));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub async fn publish_mandatory(
        &mut self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        body: &[u8],
    ) -> Result<Routed, PublishError> {
        self.publish_routed(exchange, routing_key, properties, body, true).await
    }

    async fn publish_routed(
        &mut self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        body: &[u8],
        mandatory: bool,
    ) -> Result<Routed, PublishError> {
        let deadline = deadline(self.timeout);
        let mut resume: Option<Resume> = None;
        loop {
            match self.publisher.publish_resumable(exchange, routing_key, properties, body, mandatory, &mut resume) {
                Err(PublishError::Interrupted) => {}
                done => return done,
            }
            let Some(stalled) = resume.as_mut() else { continue };
            let Some((queue, ticket, reason)) = self.publisher.stalled_producer(stalled).map(Producer::arm_stalled) else {
                Publisher::skip_stalled(stalled);
                continue;
            };
            match self.publisher.publish_resumable(exchange, routing_key, properties, body, mandatory, &mut resume) {
                Err(PublishError::Interrupted) => {}
                done => return done,
            }
            let Some(stalled) = resume.as_mut() else { continue };
            match sleep_until(deadline, reason) {
                Some(until) => {
                    Changed::new(queue, Side::NotFull, ticket, until).await;
                    if let Some(producer) = self.publisher.stalled_producer(stalled) {
                        producer.after_sleep();
                    }
                }
                None => Publisher::skip_stalled(stalled),
            }
        }
    }
}
