//! Consuming, acking and waiting.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::{bump, now_ms, spin_until, Agent, STALL_BEFORE_RECOVERY, WAIT_SLICE};
use crate::error::{AckError, RecvError};
use crate::message::PropertiesRef;
use crate::options::{AckMode, ConsumerOptions};
use crate::ring::{Record, Settle, Take};
use crate::sync::Ordering;

/// Identifies one delivery for a later ack, nack or reject (AMQP's delivery
/// tag). Valid only with the consumer that received it.
///
/// # Examples
/// ```
/// let tag = shmq::DeliveryTag(3);
/// assert_eq!(tag.0, 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeliveryTag(pub u64);

/// A handle that consumes from one queue, competing with the queue's other
/// consumers: each message goes to exactly one of them. Obtain one with
/// [`Namespace::consumer`](crate::Namespace::consumer).
///
/// Dropping a consumer requeues every delivery it holds unacked, flagged
/// redelivered, as closing a RabbitMQ channel does.
///
/// A consumer is `Send` but not `Sync`: give each thread its own.
///
/// ```compile_fail
/// fn is_sync<T: Sync>() {}
/// is_sync::<shmq::Consumer>();
/// ```
///
/// A delivery borrows its consumer, so the consumer cannot be dropped (and
/// the body reused) while the body is in use:
///
/// ```compile_fail
/// # let ns = shmq::Namespace::open_dir("/tmp/x").unwrap();
/// let consumer = ns.consumer("q", shmq::ConsumerOptions::default()).unwrap();
/// let delivery = consumer.try_recv().unwrap();
/// drop(consumer);
/// println!("{:?}", delivery.body());
/// ```
///
/// # Examples
/// ```
/// # #[cfg(not(shmq_loom))] {
/// # let dir = std::env::temp_dir().join(format!("shmq-doc-consumer-{}", std::process::id()));
/// let ns = shmq::Namespace::open_dir(&dir).unwrap();
/// ns.declare_queue("hello", &shmq::QueueOptions::default()).unwrap();
/// ns.producer("hello").unwrap().publish(b"Hello World").unwrap();
/// let consumer = ns.consumer("hello", shmq::ConsumerOptions::default().manual_ack()).unwrap();
/// let delivery = consumer.recv().unwrap();
/// assert_eq!(delivery.body(), b"Hello World");
/// delivery.ack().unwrap();
/// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
/// # }
/// ```
pub struct Consumer {
    agent: Agent,
    options: ConsumerOptions,
    unacked: Cell<u32>,
    stalled_since: Cell<Option<(u32, Instant)>>,
    /// Set while `drain` runs: settle without reclaiming, reclaim once after.
    defer_reclaim: Cell<bool>,
    /// Consecutive polls that found nothing: every 64th checks for a stalled
    /// (dead?) producer, the others stay off the producers' cursor line.
    empty_polls: Cell<u32>,
    /// For auto-delete queues: the namespace, to delete the queue when the
    /// last consumer goes.
    auto_delete: Option<crate::Namespace>,
    tags: DeliveryTags,
}

/// Delivery tags as AMQP channels give them: a counter that only grows,
/// from 1, and (manual ack) a map from each held delivery's tag to its slot
/// position. A settled tag is gone from the map, so a stale tag never
/// settles a later delivery, not even a redelivery of the same message to
/// the same consumer, nor one at the same position 2^32 positions on.
#[derive(Default)]
struct DeliveryTags {
    last: Cell<u64>,
    held: std::cell::RefCell<std::collections::HashMap<u64, u32>>,
}

impl DeliveryTags {
    /// Room for `prefetch` held deliveries up front, so that taking and
    /// acking allocate nothing in the steady state.
    fn with_capacity(prefetch: u32) -> Self {
        let room = if prefetch == 0 { 64 } else { prefetch.min(4096) as usize };
        Self { last: Cell::new(0), held: std::cell::RefCell::new(std::collections::HashMap::with_capacity(room)) }
    }

    /// The tag of a new delivery at slot position `pos`; `hold` records it
    /// for settling by tag (manual ack).
    fn tag_for(&self, pos: u32, hold: bool) -> u64 {
        let tag = self.last.get() + 1;
        self.last.set(tag);
        if hold {
            self.held.borrow_mut().insert(tag, pos);
        }
        tag
    }

    /// The slot position of held delivery `tag`, forgetting it.
    fn take(&self, tag: u64) -> Option<u32> {
        self.held.borrow_mut().remove(&tag)
    }
}

/// One received message. Its body and properties are read in place, in
/// shared memory, until it is settled or dropped.
///
/// With [`AckMode::Auto`] dropping it settles it. With [`AckMode::Manual`],
/// call [`ack`](Delivery::ack), [`nack`](Delivery::nack) or
/// [`reject`](Delivery::reject); dropping it unsettled keeps it unacked, to
/// be settled later by [`tag`](Delivery::tag) through
/// [`Consumer::ack`].
///
/// # Examples
/// See [`Consumer`].
pub struct Delivery<'c> {
    consumer: &'c Consumer,
    record: Record,
    tag: u64,
    settled: bool,
}

impl Consumer {
    pub(crate) fn new(agent: Agent, options: ConsumerOptions, auto_delete: Option<crate::Namespace>) -> Self {
        Self {
            agent,
            options,
            unacked: Cell::new(0),
            stalled_since: Cell::new(None),
            defer_reclaim: Cell::new(false),
            empty_polls: Cell::new(0),
            auto_delete,
            tags: DeliveryTags::with_capacity(options.prefetch),
        }
    }

    /// The queue this consumer reads.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-qn-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let consumer = ns.consumer("q", Default::default()).unwrap();
    /// assert_eq!(consumer.queue_name(), "q");
    /// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn queue_name(&self) -> &str {
        self.agent.queue.name()
    }

    /// Deliveries this consumer holds unacked (always 0 in auto mode once
    /// deliveries are dropped).
    ///
    /// # Examples
    /// See [`Consumer`]; after `ack`, `unacked()` is 0.
    pub fn unacked(&self) -> u32 {
        self.unacked.get()
    }

    /// Takes a message if one is ready now.
    ///
    /// # Errors
    /// [`RecvError::Empty`] if none is ready; [`RecvError::PrefetchFull`] if
    /// this manual-ack consumer holds `prefetch` unacked deliveries;
    /// [`RecvError::QueueDeleted`]; [`RecvError::Corrupt`] if a damaged slot
    /// was skipped.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-tryrecv-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let consumer = ns.consumer("q", Default::default()).unwrap();
    /// assert_eq!(consumer.try_recv().err(), Some(shmq::RecvError::Empty));
    /// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn try_recv(&self) -> Result<Delivery<'_>, RecvError> {
        match self.poll()? {
            Some(record) => Ok(self.delivery(record)),
            None => Err(if self.agent.queue.is_deleted() { RecvError::QueueDeleted } else { RecvError::Empty }),
        }
    }

    /// Waits for a message as long as it takes.
    ///
    /// # Errors
    /// As [`try_recv`](Consumer::try_recv), except that it never returns
    /// `Empty`.
    ///
    /// # Examples
    /// See [`Consumer`].
    pub fn recv(&self) -> Result<Delivery<'_>, RecvError> {
        self.recv_until(None)
    }

    /// Waits for a message for at most `timeout`.
    ///
    /// # Errors
    /// [`RecvError::Timeout`] if none came; otherwise as
    /// [`try_recv`](Consumer::try_recv).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-recvto-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let consumer = ns.consumer("q", Default::default()).unwrap();
    /// let waited = consumer.recv_timeout(std::time::Duration::from_millis(10));
    /// assert_eq!(waited.err(), Some(shmq::RecvError::Timeout));
    /// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Delivery<'_>, RecvError> {
        self.recv_until(Some(Instant::now() + timeout))
    }

    /// Calls `handle` on every message ready now, up to `max`, and returns
    /// how many it handled: the batch path for throughput. In auto-ack mode
    /// each delivery is settled when `handle` returns.
    ///
    /// # Errors
    /// As [`try_recv`](Consumer::try_recv) for errors other than `Empty`.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-drain-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// # ns.producer("q").unwrap().publish_batch(&[b"a", b"b"]).unwrap();
    /// let consumer = ns.consumer("q", Default::default()).unwrap();
    /// let mut total = 0;
    /// let n = consumer.drain(100, |d| total += d.body().len()).unwrap();
    /// assert_eq!((n, total), (2, 2));
    /// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn drain(&self, max: usize, mut handle: impl FnMut(Delivery<'_>)) -> Result<usize, RecvError> {
        const CHUNK: usize = 32;
        let manual = self.options.ack_mode == AckMode::Manual;
        let ring = &self.agent.queue.ring;
        let mut handled = 0;
        let mut records = [Record::default(); CHUNK];
        self.defer_reclaim.set(true);
        let result = loop {
            let mut want = (max - handled).min(CHUNK);
            if manual && self.options.prefetch != 0 {
                let room = self.options.prefetch.saturating_sub(self.unacked.get()) as usize;
                if room == 0 {
                    break if handled > 0 { Ok(handled) } else { Err(RecvError::PrefetchFull(self.options.prefetch)) };
                }
                want = want.min(room);
            }
            if want == 0 {
                break Ok(handled);
            }
            let batch = ring.take_batch(self.agent.owner, !manual, &mut now_ms, &mut records[..want]);
            if batch.expired > 0 {
                bump(&self.agent.counters().expired, u64::from(batch.expired));
            }
            for record in &records[..batch.got] {
                self.on_delivered(record);
            }
            for record in &records[..batch.got] {
                handle(self.delivery(*record));
            }
            handled += batch.got;
            match batch.last {
                Take::Corrupt(pos) if batch.got == 0 => break Err(RecvError::Corrupt(pos)),
                Take::Stalled(pos) => self.on_stall(pos),
                _ => {}
            }
            if batch.got == 0 && batch.expired == 0 {
                break Ok(handled);
            }
        };
        self.defer_reclaim.set(false);
        if handled == 0 {
            self.agent.tick(1);
        }
        if handled > 0 && ring.reclaim() {
            ring.notify_producers();
        }
        result
    }

    /// Acknowledges a delivery by tag.
    ///
    /// # Errors
    /// [`AckError::UnknownDeliveryTag`] if this consumer holds no such
    /// unacked delivery.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-acktag-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// # ns.producer("q").unwrap().publish(b"x").unwrap();
    /// let consumer = ns.consumer("q", shmq::ConsumerOptions::default().manual_ack()).unwrap();
    /// let tag = consumer.try_recv().unwrap().tag();
    /// consumer.ack(tag).unwrap();
    /// assert!(consumer.ack(tag).is_err());
    /// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn ack(&self, tag: DeliveryTag) -> Result<(), AckError> {
        self.settle(tag, Settle::Done, true)
    }

    /// Rejects a delivery by tag, requeueing it (flagged redelivered) or
    /// discarding it.
    ///
    /// # Errors
    /// As [`ack`](Consumer::ack).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-nacktag-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// # ns.producer("q").unwrap().publish(b"x").unwrap();
    /// let consumer = ns.consumer("q", shmq::ConsumerOptions::default().manual_ack()).unwrap();
    /// let tag = consumer.try_recv().unwrap().tag();
    /// consumer.nack(tag, true).unwrap();
    /// assert!(consumer.try_recv().unwrap().redelivered());
    /// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn nack(&self, tag: DeliveryTag, requeue: bool) -> Result<(), AckError> {
        self.settle(tag, if requeue { Settle::Requeue } else { Settle::Done }, false)
    }

    fn settle(&self, tag: DeliveryTag, how: Settle, ack: bool) -> Result<(), AckError> {
        let pos = self.tags.take(tag.0).ok_or(AckError::UnknownDeliveryTag(tag.0))?;
        if !self.agent.queue.ring.settle_with(self.agent.owner, pos, how, !self.defer_reclaim.get()) {
            return Err(AckError::UnknownDeliveryTag(tag.0));
        }
        self.unacked.set(self.unacked.get().saturating_sub(1));
        let slot = self.agent.slot();
        slot.unacked.store(self.unacked.get(), Ordering::Relaxed);
        if ack {
            bump(&slot.counters.acked, 1);
        }
        Ok(())
    }

    fn delivery(&self, record: Record) -> Delivery<'_> {
        let tag = self.tags.tag_for(record.pos, self.options.ack_mode == AckMode::Manual);
        Delivery { consumer: self, record, tag, settled: false }
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<Delivery<'_>, RecvError> {
        let mut spins: u32 = 0;
        let mut spun = false;
        loop {
            if let Some(record) = self.poll()? {
                return Ok(self.delivery(record));
            }
            if self.agent.queue.is_deleted() {
                return Err(RecvError::QueueDeleted);
            }
            if self.options.busy_poll {
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(4096) {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(RecvError::Timeout);
                    }
                    self.agent.maybe_recover(false);
                }
                core::hint::spin_loop();
                continue;
            }
            if !spun {
                // Spin briefly first: a message due in a few microseconds
                // then costs no futex round trip.
                spun = true;
                let mut outcome = Ok(None);
                spin_until(|| {
                    outcome = self.poll();
                    !matches!(outcome, Ok(None))
                });
                if let Some(record) = outcome? {
                    return Ok(self.delivery(record));
                }
                continue;
            }
            let not_empty = self.agent.queue.ring.not_empty();
            let ticket = not_empty.prepare_wait();
            if let Some(record) = self.poll()? {
                return Ok(self.delivery(record));
            }
            let slice = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(RecvError::Timeout);
                    }
                    (d - now).min(WAIT_SLICE)
                }
                None => WAIT_SLICE,
            };
            not_empty.wait(ticket, Some(slice));
            spun = false;
            self.agent.maybe_recover(false);
        }
    }

    /// One attempt to take a message; `None` if nothing is deliverable.
    fn poll(&self) -> Result<Option<Record>, RecvError> {
        let manual = self.options.ack_mode == AckMode::Manual;
        if manual && self.options.prefetch != 0 && self.unacked.get() >= self.options.prefetch {
            // A poller that only ever hears "full" or "empty" still sweeps.
            self.agent.tick(1);
            return Err(RecvError::PrefetchFull(self.options.prefetch));
        }
        let ring = &self.agent.queue.ring;
        loop {
            let check_stall = self.empty_polls.get().is_multiple_of(64);
            match ring.try_take_checked(self.agent.owner, !manual, check_stall, &mut now_ms) {
                Take::Got(record) => {
                    self.empty_polls.set(0);
                    self.on_delivered(&record);
                    return Ok(Some(record));
                }
                Take::Expired => bump(&self.agent.counters().expired, 1),
                Take::Empty => {
                    if check_stall {
                        self.stalled_since.set(None);
                    }
                    self.empty_polls.set(self.empty_polls.get().wrapping_add(1));
                    self.agent.tick(1);
                    return Ok(None);
                }
                Take::Stalled(pos) => {
                    self.empty_polls.set(self.empty_polls.get().wrapping_add(1));
                    self.on_stall(pos);
                    return Ok(None);
                }
                Take::Corrupt(pos) => return Err(RecvError::Corrupt(pos)),
            }
        }
    }

    fn on_delivered(&self, record: &Record) {
        self.agent.tick(1);
        self.stalled_since.set(None);
        self.unacked.set(self.unacked.get() + 1);
        let slot = self.agent.slot();
        slot.unacked.store(self.unacked.get(), Ordering::Relaxed);
        bump(&slot.counters.delivered, 1);
        if record.redelivered() {
            bump(&slot.counters.redelivered, 1);
        }
    }

    /// The head slot is claimed but uncommitted. If it stays so, check
    /// whether its producer died.
    fn on_stall(&self, pos: u32) {
        let now = Instant::now();
        match self.stalled_since.get() {
            Some((p, since)) if p == pos => {
                if now.duration_since(since) >= STALL_BEFORE_RECOVERY {
                    self.agent.maybe_recover(true);
                    self.stalled_since.set(Some((pos, now)));
                }
            }
            _ => self.stalled_since.set(Some((pos, now))),
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if self.unacked.get() > 0 {
            self.agent.queue.ring.requeue_all_of(self.agent.owner);
        }
        if let Some(ns) = &self.auto_delete {
            if !self.agent.queue.ring.has_consumers(Some(self.agent.owner)) {
                let _ = ns.delete_queue(self.queue_name());
            }
        }
    }
}

impl<'c> Delivery<'c> {
    fn bytes(&self, skip: usize, len: usize) -> &[u8] {
        let queue = &self.consumer.agent.queue;
        let offset = queue.ring.data_offset(self.record.data_start) + skip;
        match queue.segment().data_ptr(offset, len) {
            // SAFETY: the record is DELIVERED to us until settled, which takes
            // `self` (or happens on drop), so no one writes these bytes while
            // the borrow lives; `deliver` validated the range and data_ptr
            // bounds-checked it.
            Some(ptr) => unsafe { std::slice::from_raw_parts(ptr, len) },
            None => &[],
        }
    }

    /// The body, read in place.
    ///
    /// # Examples
    /// See [`Consumer`].
    pub fn body(&self) -> &[u8] {
        self.bytes(self.record.props_len as usize, self.record.body_len as usize)
    }

    /// The properties, parsed in place. A damaged properties block reads as
    /// empty properties (the body is still delivered).
    ///
    /// # Examples
    /// See [`PropertiesRef`].
    pub fn properties(&self) -> PropertiesRef<'_> {
        PropertiesRef::parse(self.bytes(0, self.record.props_len as usize)).unwrap_or_default()
    }

    /// True if this message was delivered before (requeued by a nack, a
    /// closed consumer or a dead one).
    ///
    /// # Examples
    /// See [`Consumer::nack`].
    pub fn redelivered(&self) -> bool {
        self.record.redelivered()
    }

    /// The tag for settling this delivery later through its consumer.
    ///
    /// # Examples
    /// See [`Consumer::ack`].
    pub fn tag(&self) -> DeliveryTag {
        DeliveryTag(self.tag)
    }

    /// Acknowledges the delivery.
    ///
    /// # Errors
    /// [`AckError::UnknownDeliveryTag`] if it was already settled by tag.
    ///
    /// # Examples
    /// See [`Consumer`].
    pub fn ack(mut self) -> Result<(), AckError> {
        self.settled = true;
        self.consumer.ack(self.tag())
    }

    /// Rejects the delivery, requeueing it or discarding it.
    ///
    /// # Errors
    /// As [`ack`](Delivery::ack).
    ///
    /// # Examples
    /// See [`Consumer::nack`].
    pub fn nack(mut self, requeue: bool) -> Result<(), AckError> {
        self.settled = true;
        self.consumer.nack(self.tag(), requeue)
    }

    /// Same as [`nack`](Delivery::nack), AMQP's `basic.reject`.
    ///
    /// # Errors
    /// As [`ack`](Delivery::ack).
    ///
    /// # Examples
    /// See [`Consumer::nack`].
    pub fn reject(self, requeue: bool) -> Result<(), AckError> {
        self.nack(requeue)
    }
}

impl Drop for Delivery<'_> {
    fn drop(&mut self) {
        if !self.settled && self.consumer.options.ack_mode == AckMode::Auto {
            // Ours alone (auto-ack deliveries have no tag to settle by), so
            // skip the checked settle path.
            let consumer = self.consumer;
            consumer.agent.queue.ring.finish_owned(self.record.pos, self.record.flags, !consumer.defer_reclaim.get());
            consumer.unacked.set(consumer.unacked.get().saturating_sub(1));
            let slot = consumer.agent.slot();
            slot.unacked.store(consumer.unacked.get(), Ordering::Relaxed);
            bump(&slot.counters.acked, 1);
        }
    }
}

impl std::fmt::Debug for Delivery<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("tag", &self.record.pos)
            .field("redelivered", &self.redelivered())
            .field("body_len", &self.record.body_len)
            .finish()
    }
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("queue", &self.queue_name())
            .field("agent", &self.agent.owner)
            .field("options", &self.options)
            .field("unacked", &self.unacked.get())
            .finish()
    }
}

#[cfg(all(test, not(shmq_loom)))]
mod tests {
    use super::DeliveryTags;

    #[test]
    fn every_delivery_gets_a_new_tag_even_at_the_same_position() {
        let tags = DeliveryTags::with_capacity(4);
        let first = tags.tag_for(10, true);
        assert_eq!(tags.take(first), Some(10));
        // Requeued and delivered again (or 2^32 positions on): position 10.
        let again = tags.tag_for(10, true);
        assert!(again > first);
        assert_eq!(tags.take(first), None, "a settled tag never settles a later delivery");
        assert_eq!(tags.take(again), Some(10));
    }

    #[test]
    fn tags_only_grow_whatever_the_positions_do() {
        let tags = DeliveryTags::with_capacity(4);
        let mut last = 0;
        for pos in [u32::MAX - 1, u32::MAX, 0, 3, 1, 7] {
            let tag = tags.tag_for(pos, true);
            assert!(tag > last);
            last = tag;
        }
    }
}
