//! Consuming, acking and waiting.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use super::chain::Chain;
use super::dead_letter::{DeadLetterer, Fate};
use super::{bump, now_ms, spin_until, wait_slice, Agent, QueueHandle, STALL_BEFORE_RECOVERY, WAIT_SLICE};
use std::sync::Arc;

use super::priority::{open_level, Levels};
use crate::error::{AckError, RecvError};
use crate::message::PropertiesRef;
use crate::options::{AckMode, ConsumerOptions};
use crate::ring::layout::Counters;
use crate::ring::{Death, Record, Settle, Take};
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
    chain: Chain,
    /// This consumer's row in the queue's first segment: its counters,
    /// unacked count and prefetch, for stats and `list-consumers`.
    home: Agent,
    /// The rings this consumer is attached to, by slot; `None` in a slot
    /// means the first segment (through `home`). A slot stays put while a
    /// delivery from it lives, so deliveries name their ring by slot.
    rings: RefCell<Vec<Option<RingEntry>>>,
    /// The slot of the ring consumed now (the oldest with messages).
    current: Cell<usize>,
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
    /// Republishes this consumer's dead messages (rejected, expired, over
    /// the delivery limit) to the queue's dead-letter exchange.
    dead_letters: RefCell<DeadLetterer>,
    /// The queue has a single active consumer and this is a consumer (not
    /// `basic.get`): it takes messages only while it is the active one.
    single_active: bool,
    /// Priority queues: consumers of levels 1..=max (level `k` at `k - 1`),
    /// polled highest first; this consumer reads level 0. They hold their
    /// deliveries under this consumer's tags (src/queue/priority.rs).
    levels: Option<Levels>,
    /// The queue's consumers have priorities (as last seen, at creation or
    /// a sweep) and this one heeds them (not `basic.get`, not a single
    /// active consumer, where the active one takes all, whatever the
    /// priorities, as in RabbitMQ 3.10): it publishes its prefetch room
    /// for the others to see, and defers to higher ones.
    ranked: Cell<bool>,
    /// Cancelled (`cancel`): takes nothing more; settles what it holds.
    cancelled: Cell<bool>,
    /// Priority queues: the level the last poll took its message from (0:
    /// this consumer's own chain).
    polled_level: Cell<u8>,
    /// A priority level's consumer: the queue's first segment (where the
    /// queue's consumers sleep, woken on a requeue here) and the level-0
    /// consumer's row there, which shows the consumer's unacked total.
    parent: Option<(Arc<QueueHandle>, u16)>,
    /// Single active consumer: was active at the last look (a standby that
    /// becomes active first recovers what a dead predecessor held).
    was_active: Cell<bool>,
}

/// What an empty poll counts toward the next look at the clock (a message
/// counts 1; the clock is read every 256).
const EMPTY_POLL_TICKS: u32 = 32;

/// The ring slot of the queue's first segment (its agent is `home`).
const FIRST: usize = 0;

/// One ring this consumer is attached to.
struct RingEntry {
    /// `None` for the first segment: `home` is the agent there.
    agent: Option<Agent>,
    seq: u64,
    /// Deliveries from this ring that are alive or unacked: the ring stays
    /// mapped (and its slot unchanged) while any is.
    held: Cell<u32>,
}

/// Delivery tags as AMQP channels give them: a counter that only grows,
/// from 1, and (manual ack) each held delivery's tag with its slot
/// position, in tag order (tags are handed out in order, so holding is a
/// push at the back). A settled tag is gone, so a stale tag never settles a
/// later delivery, not even a redelivery of the same message to the same
/// consumer, nor one at the same position 2^32 positions on.
///
/// Settling marks the entry taken and pops taken entries off the front: in
/// the usual in-order case that is O(1), and `multiple` settles a prefix
/// without sorting or hashing (a hash map here cost a third of a batched
/// manual-ack consumer's time). Taken entries behind a long-held one are
/// compacted away once they are half of the list.
#[derive(Default)]
struct DeliveryTags {
    last: Cell<u64>,
    held: RefCell<std::collections::VecDeque<Held>>,
    /// Taken entries still in `held`.
    taken: Cell<usize>,
}

/// A held delivery: its tag and where it is (`ring` is [`TAKEN`] once
/// settled).
#[derive(Clone, Copy)]
struct Held {
    tag: u64,
    ring: usize,
    pos: u32,
}

/// `Held::ring` of a settled entry.
const TAKEN: usize = usize::MAX;

impl DeliveryTags {
    /// Room for `prefetch` held deliveries up front, so that taking and
    /// acking allocate nothing in the steady state.
    fn with_capacity(prefetch: u32) -> Self {
        let room = if prefetch == 0 { 64 } else { prefetch.min(4096) as usize };
        Self { last: Cell::new(0), held: RefCell::new(std::collections::VecDeque::with_capacity(room)), taken: Cell::new(0) }
    }

    /// The next tag.
    #[inline]
    fn next(&self) -> u64 {
        let tag = self.last.get() + 1;
        self.last.set(tag);
        tag
    }

    /// Records held delivery `tag` at slot position `pos` of ring slot
    /// `ring`, for settling by tag (manual ack). Tags come in order.
    #[inline]
    fn hold(&self, tag: u64, ring: usize, pos: u32) {
        let mut held = self.held.borrow_mut();
        debug_assert!(held.back().is_none_or(|h| h.tag < tag));
        held.push_back(Held { tag, ring, pos });
    }

    /// Where held (not taken) `tag` is in `held`.
    #[inline]
    fn index(held: &std::collections::VecDeque<Held>, tag: u64) -> Option<usize> {
        let i = held.partition_point(|h| h.tag < tag);
        held.get(i).is_some_and(|h| h.tag == tag && h.ring != TAKEN).then_some(i)
    }

    fn holds(&self, tag: u64) -> bool {
        Self::index(&self.held.borrow(), tag).is_some()
    }

    /// The ring slot and position of held delivery `tag`, forgetting it.
    #[inline]
    fn take(&self, tag: u64) -> Option<(usize, u32)> {
        let mut held = self.held.borrow_mut();
        let i = Self::index(&held, tag)?;
        let taken = held[i];
        if i == 0 {
            held.pop_front();
            while held.front().is_some_and(|h| h.ring == TAKEN) {
                held.pop_front();
                self.taken.set(self.taken.get() - 1);
            }
        } else {
            held[i].ring = TAKEN;
            self.taken.set(self.taken.get() + 1);
            if self.taken.get() * 2 > held.len() {
                held.retain(|h| h.ring != TAKEN);
                self.taken.set(0);
            }
        }
        Some((taken.ring, taken.pos))
    }

    /// Takes the oldest held delivery if its tag is at most `up_to` (any
    /// for 0): its tag, ring slot and position.
    #[inline]
    fn take_oldest(&self, up_to: u64) -> Option<(u64, usize, u32)> {
        let mut held = self.held.borrow_mut();
        loop {
            let oldest = *held.front()?;
            if oldest.ring == TAKEN {
                held.pop_front();
                self.taken.set(self.taken.get() - 1);
                continue;
            }
            if up_to != 0 && oldest.tag > up_to {
                return None;
            }
            held.pop_front();
            return Some((oldest.tag, oldest.ring, oldest.pos));
        }
    }

    /// The held tags up to and including `tag` (all of them for 0), oldest
    /// first: what AMQP's `multiple` settles.
    fn held_up_to(&self, tag: u64) -> Vec<u64> {
        let held = self.held.borrow();
        let end = if tag == 0 { held.len() } else { held.partition_point(|h| h.tag <= tag) };
        held.range(..end).filter(|h| h.ring != TAKEN).map(|h| h.tag).collect()
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
    /// The consumer's ring slot this came from.
    ring: usize,
    record: Record,
    tag: u64,
    settled: bool,
}

impl Consumer {
    pub(crate) fn new(agent: Agent, options: ConsumerOptions, auto_delete: Option<crate::Namespace>) -> Self {
        let chain = Chain::new(agent.queue.clone());
        let dead_letters = RefCell::new(DeadLetterer::new(agent.queue.ns.clone()));
        let single_active = agent.queue.segment().config.single_active_consumer && !options.get_only;
        let consumer = Self {
            parent: None,
            cancelled: Cell::new(false),
            polled_level: Cell::new(0),
            was_active: Cell::new(false),
            ranked: Cell::new(false),
            levels: None,
            single_active,
            dead_letters,
            chain,
            home: agent,
            rings: RefCell::new(vec![Some(RingEntry { agent: None, seq: 0, held: Cell::new(0) })]),
            current: Cell::new(0),
            options,
            unacked: Cell::new(0),
            stalled_since: Cell::new(None),
            defer_reclaim: Cell::new(false),
            empty_polls: Cell::new(0),
            auto_delete,
            tags: DeliveryTags::with_capacity(options.prefetch),
        };
        consumer.learn_ranked();
        consumer
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
        self.home.queue.name()
    }

    /// True once the queue was deleted under this consumer: it gets no more
    /// messages (its receives return [`RecvError::QueueDeleted`]), as
    /// RabbitMQ cancels a consumer whose queue is deleted (`basic.cancel`).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-cancelled-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let consumer = ns.consumer("q", Default::default()).unwrap();
    /// assert!(!consumer.is_cancelled());
    /// ns.delete_queue("q").unwrap();
    /// assert!(consumer.is_cancelled());
    /// assert_eq!(consumer.try_recv().err(), Some(shmq::RecvError::QueueDeleted));
    /// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.chain.is_deleted()
    }

    /// Deliveries this consumer holds unacked (always 0 in auto mode once
    /// deliveries are dropped).
    ///
    /// # Examples
    /// See [`Consumer`]; after `ack`, `unacked()` is 0.
    #[inline]
    pub fn unacked(&self) -> u32 {
        match &self.levels {
            None => self.unacked.get(),
            Some(levels) => self.unacked.get().saturating_add(levels.attached().map(|level| level.unacked.get()).sum()),
        }
    }

    /// Makes this the consumer of a priority queue's level 0, reading the
    /// levels above it as they come to exist.
    pub(crate) fn with_levels(mut self, max: u8) -> Self {
        self.levels = Some(Levels::new(max));
        self.attach_new_levels();
        self
    }

    /// Attaches to the priority levels created since the last look (a
    /// level exists once a message of its priority was published).
    #[inline]
    fn attach_new_levels(&self) {
        let Some(levels) = &self.levels else { return };
        let home = &self.home;
        levels.refresh(&home.queue, |level| {
            let queue = open_level(&home.queue, level)?;
            let agent = Agent::attach(queue, home.peer.clone(), self.options.role(), 0).ok()?;
            Some(Consumer::for_level(agent, self.options, (home.queue.clone(), home.owner)))
        });
    }

    /// A consumer of one priority level: no single-active-consumer check
    /// and no prefetch of its own (the level-0 consumer applies both).
    pub(crate) fn for_level(agent: Agent, options: ConsumerOptions, parent: (Arc<QueueHandle>, u16)) -> Self {
        let options = ConsumerOptions { prefetch: 0, exclusive: false, ..options };
        let mut level = Self::new(agent, options, None);
        level.single_active = false;
        level.parent = Some(parent);
        level.ranked.set(false);
        level
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
            Some((ring, record)) => Ok(self.delivery(ring, record)),
            None => Err(if self.chain.is_deleted() { RecvError::QueueDeleted } else { RecvError::Empty }),
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

    /// Receives up to `max` messages, waiting up to `timeout` for the first
    /// one: the blocking batch receive. As [`drain`](Consumer::drain) (it
    /// calls `handle` on each and returns how many), but an empty queue
    /// makes it wait as `recv` does: a brief spin, then a futex sleep, or
    /// spinning all along with [`busy_poll`](crate::ConsumerOptions::busy_poll).
    /// Batched consumers need not spin on `drain`.
    ///
    /// # Errors
    /// [`RecvError::Timeout`] if nothing came; otherwise as
    /// [`drain`](Consumer::drain).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-recvmany-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let consumer = ns.consumer("q", Default::default()).unwrap();
    /// let wait = std::time::Duration::from_millis(10);
    /// assert_eq!(consumer.recv_many(32, wait, |_| {}), Err(shmq::RecvError::Timeout));
    /// ns.producer("q").unwrap().publish_batch(&[b"a", b"b"]).unwrap();
    /// let mut bodies = Vec::new();
    /// assert_eq!(consumer.recv_many(32, wait, |d| bodies.push(d.body().to_vec())), Ok(2));
    /// assert_eq!(bodies, [b"a", b"b"]);
    /// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn recv_many(&self, max: usize, timeout: Duration, mut handle: impl FnMut(Delivery<'_>)) -> Result<usize, RecvError> {
        let deadline = Instant::now() + timeout;
        let mut handled = 0;
        let mut outcome = Ok(0);
        if spin_until(|| {
            outcome = self.drain(max, &mut handle);
            !matches!(outcome, Ok(0))
        }) {
            return outcome;
        }
        if self.options.busy_poll {
            let mut spins: u32 = 0;
            loop {
                let got = self.drain(max, &mut handle)?;
                if got > 0 {
                    return Ok(got);
                }
                self.busy_round(&mut spins, Some(deadline))?;
            }
        }
        loop {
            if self.chain.is_deleted() {
                return Err(RecvError::QueueDeleted);
            }
            let (queue, ticket) = self.arm_not_empty();
            handled += self.drain(max, &mut handle)?;
            if handled > 0 {
                return Ok(handled);
            }
            let slice = wait_slice(Some(deadline), WAIT_SLICE).ok_or(RecvError::Timeout)?;
            queue.ring.not_empty().wait(ticket, Some(slice));
            self.sweep(false);
            handled += self.drain(max, &mut handle)?;
            if handled > 0 {
                return Ok(handled);
            }
        }
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
        if self.standing_by() || self.defers_to_higher_priority() {
            self.tick(EMPTY_POLL_TICKS);
            return Ok(0);
        }
        if self.levels.is_some() {
            // Priority first: one message at a time, each from the highest
            // level that has one.
            let mut handled = 0;
            while handled < max {
                match self.poll() {
                    Ok(Some((ring, record))) => handle(self.delivery(ring, record)),
                    Ok(None) => break,
                    Err(e) if handled == 0 => return Err(e),
                    Err(_) => break,
                }
                handled += 1;
            }
            return Ok(handled);
        }
        let manual = self.options.ack_mode == AckMode::Manual;
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
            let current = self.current.get();
            let batch =
                self.with_agent(current, |agent| agent.queue.ring.take_batch(agent.owner, !manual, &mut now_ms, &mut records[..want]));
            if batch.expired > 0 {
                bump(&self.counters().expired, u64::from(batch.expired));
            }
            for record in &records[..batch.got] {
                self.on_delivered(current, record);
            }
            for record in &records[..batch.got] {
                handle(self.delivery(current, *record));
            }
            handled += batch.got;
            let mut buried = false;
            match batch.last {
                Take::Corrupt(pos) if batch.got == 0 => break Err(RecvError::Corrupt(pos)),
                Take::Stalled(pos) => self.on_stall(pos),
                Take::Dead(record, death) => {
                    self.bury(current, &record, death);
                    buried = true;
                }
                _ => {}
            }
            if batch.got == 0 && batch.expired == 0 && !buried {
                // The batch path reads one ring; the single path also finds
                // requeued messages in older rings and moves to the next.
                match self.poll() {
                    Ok(Some((ring, record))) => {
                        handle(self.delivery(ring, record));
                        handled += 1;
                    }
                    Ok(None) => break Ok(handled),
                    Err(e) => break if handled > 0 { Ok(handled) } else { Err(e) },
                }
            }
        };
        self.defer_reclaim.set(false);
        if handled > 0 {
            self.with_agent(self.current.get(), |agent| {
                if agent.queue.ring.reclaim() {
                    agent.queue.ring.notify_producers();
                }
            });
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
    /// On a queue with a dead-letter exchange, a reject without requeue
    /// dead-letters the message (reason `rejected`) before it leaves; if
    /// the copy cannot be published (a dead-letter queue refuses it), the
    /// message is requeued instead of lost. A requeue past the queue's
    /// delivery limit dead-letters (or discards) it (`delivery_limit`).
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

    /// Acknowledges every delivery this consumer holds up to and including
    /// `tag`, oldest first (AMQP's `multiple`); `DeliveryTag(0)` means all
    /// of them. Returns how many it settled.
    ///
    /// # Errors
    /// [`AckError::UnknownDeliveryTag`] if `tag` is not 0 and not a
    /// delivery this consumer holds (RabbitMQ closes the channel then);
    /// nothing is settled.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-ackmulti-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// # ns.producer("q").unwrap().publish_batch(&[b"a", b"b", b"c"]).unwrap();
    /// let consumer = ns.consumer("q", shmq::ConsumerOptions::default().manual_ack()).unwrap();
    /// let tags: Vec<_> = (0..3).map(|_| consumer.try_recv().unwrap().tag()).collect();
    /// assert_eq!(consumer.ack_multiple(tags[1]).unwrap(), 2);
    /// assert_eq!(consumer.unacked(), 1);
    /// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn ack_multiple(&self, tag: DeliveryTag) -> Result<usize, AckError> {
        self.settle_multiple(tag, Settle::Done, true)
    }

    /// Rejects every delivery this consumer holds up to and including
    /// `tag` (all for `DeliveryTag(0)`), requeueing or discarding
    /// (dead-lettering) each as [`nack`](Consumer::nack) does. Returns how
    /// many.
    ///
    /// # Errors
    /// As [`ack_multiple`](Consumer::ack_multiple).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-nackmulti-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// # ns.producer("q").unwrap().publish_batch(&[b"a", b"b"]).unwrap();
    /// let consumer = ns.consumer("q", shmq::ConsumerOptions::default().manual_ack()).unwrap();
    /// let _ = (consumer.try_recv().unwrap().tag(), consumer.try_recv().unwrap().tag());
    /// assert_eq!(consumer.nack_multiple(shmq::DeliveryTag(0), true).unwrap(), 2);
    /// assert!(consumer.try_recv().unwrap().redelivered());
    /// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn nack_multiple(&self, tag: DeliveryTag, requeue: bool) -> Result<usize, AckError> {
        self.settle_multiple(tag, if requeue { Settle::Requeue } else { Settle::Done }, false)
    }

    fn settle_multiple(&self, tag: DeliveryTag, how: Settle, ack: bool) -> Result<usize, AckError> {
        if ack && self.levels.is_none() {
            return self.ack_oldest_up_to(tag);
        }
        let mut tags = self.tags.held_up_to(tag.0);
        if let Some(levels) = &self.levels {
            // Each list is in order; together they are not.
            tags.extend(levels.attached().flat_map(|level| level.tags.held_up_to(tag.0)));
            tags.sort_unstable();
        }
        if tag.0 != 0 && tags.last() != Some(&tag.0) {
            return Err(AckError::UnknownDeliveryTag(tag.0));
        }
        // One pass: settle each, reclaim each ring once at the end.
        let consumers = || std::iter::once(self).chain(self.levels.iter().flat_map(Levels::attached));
        consumers().for_each(|c| c.defer_reclaim.set(true));
        let settled = tags.iter().try_for_each(|&t| self.settle(DeliveryTag(t), how, ack));
        for consumer in consumers() {
            consumer.defer_reclaim.set(false);
            consumer.reclaim_rings();
        }
        settled.map(|()| tags.len())
    }

    /// `ack_multiple` of a consumer without priority levels: settles the
    /// held deliveries oldest first, in one pass, and counts them once (as
    /// `settle` would one by one: the slot, the ring's hold, unacked,
    /// acked, credit), reclaiming each ring once at the end.
    fn ack_oldest_up_to(&self, tag: DeliveryTag) -> Result<usize, AckError> {
        if tag.0 != 0 && !self.tags.holds(tag.0) {
            return Err(AckError::UnknownDeliveryTag(tag.0));
        }
        self.defer_reclaim.set(true);
        let mut acked = 0u32;
        let settled = loop {
            let Some((taken, ring, pos)) = self.tags.take_oldest(tag.0) else { break Ok(()) };
            if !self.with_agent(ring, |agent| agent.queue.ring.settle_with(agent.owner, pos, Settle::Done, false)) {
                break Err(AckError::UnknownDeliveryTag(taken));
            }
            self.release_hold(ring);
            acked += 1;
        };
        self.defer_reclaim.set(false);
        self.reclaim_rings();
        self.set_unacked(self.unacked.get().saturating_sub(acked));
        bump(&self.home.slot().counters.acked, u64::from(acked));
        self.refresh_credit();
        settled.map(|()| acked as usize)
    }

    /// Reclaims settled slots in every ring this consumer is attached to,
    /// waking producers where room came back.
    fn reclaim_rings(&self) {
        let attached: Vec<usize> = self.rings.borrow().iter().enumerate().filter(|(_, e)| e.is_some()).map(|(i, _)| i).collect();
        for ring in attached {
            self.with_agent(ring, |agent| {
                if agent.queue.ring.reclaim() {
                    agent.queue.ring.notify_producers();
                }
            });
        }
    }

    fn settle(&self, tag: DeliveryTag, how: Settle, ack: bool) -> Result<(), AckError> {
        let Some((ring, pos)) = self.tags.take(tag.0) else {
            // A priority queue's delivery from a level above 0.
            let level = self.levels.iter().flat_map(Levels::attached).find(|level| level.tags.holds(tag.0));
            let settled = level.ok_or(AckError::UnknownDeliveryTag(tag.0))?.settle(tag, how, ack);
            self.refresh_credit();
            return settled;
        };
        if !ack {
            if let Some((record, reason)) = self.dies_when_settled(ring, pos, how) {
                self.bury(ring, &record, reason);
                self.release_hold(ring);
                self.set_unacked(self.unacked.get().saturating_sub(1));
                self.refresh_credit();
                return Ok(());
            }
        }
        let settled = self.with_agent(ring, |agent| {
            let settled = agent.queue.ring.settle_with(agent.owner, pos, how, !self.defer_reclaim.get());
            if settled && how == Settle::Requeue {
                // A requeue into an older ring: consumers look there first.
                agent.queue.ring.notify_consumers();
                if let Some((home, _)) = &self.parent {
                    home.ring.notify_consumers();
                }
            }
            settled
        });
        if !settled {
            return Err(AckError::UnknownDeliveryTag(tag.0));
        }
        if how == Settle::Requeue {
            super::trim::trim_to_limits(&self.chain, &self.home.peer, self.counters(), &mut self.dead_letters.borrow_mut());
        }
        self.release_hold(ring);
        self.set_unacked(self.unacked.get().saturating_sub(1));
        let slot = self.home.slot();
        if ack {
            bump(&slot.counters.acked, 1);
        }
        self.refresh_credit();
        Ok(())
    }

    /// A rejection that dead-letters the message: without requeue on a
    /// queue with a dead-letter exchange, or a requeue past the delivery
    /// limit. The message's record and why, if so.
    fn dies_when_settled(&self, ring: usize, pos: u32, how: Settle) -> Option<(Record, Death)> {
        let config = &self.home.queue.segment().config;
        let reason = match how {
            Settle::Done if config.dead_letter_exchange.is_some() => Death::Rejected,
            Settle::Requeue if config.delivery_limit.is_some() => Death::DeliveryLimit,
            _ => return None,
        };
        let record = self.with_agent(ring, |agent| agent.queue.ring.held_record(agent.owner, pos))?;
        if reason == Death::DeliveryLimit && config.delivery_limit.is_some_and(|limit| u32::from(record.delivery_count) < limit) {
            return None;
        }
        Some((record, reason))
    }

    /// Dead-letters a message this consumer holds and settles it (see
    /// `DeadLetterer::bury`). False if it was shelved: its copy could not
    /// be published now, and the housekeeping will retry.
    #[cold]
    #[inline(never)]
    fn bury(&self, ring: usize, record: &Record, death: Death) -> bool {
        let queue = self.with_agent(ring, |agent| agent.queue.clone());
        let owner = self.with_agent(ring, |agent| agent.owner);
        self.dead_letters.borrow_mut().bury(&queue, owner, record, death, self.counters()) != Fate::Shelved
    }

    /// This consumer's counters (in the queue's first segment).
    #[inline]
    fn counters(&self) -> &Counters {
        self.home.counters()
    }

    /// Runs `f` on the agent of ring slot `ring`.
    #[inline(always)]
    fn with_agent<R>(&self, ring: usize, f: impl FnOnce(&Agent) -> R) -> R {
        // Slot 0 is always the first segment, through `home`: the whole
        // path of a queue that never grew.
        if ring == FIRST {
            return f(&self.home);
        }
        let rings = self.rings.borrow();
        match rings.get(ring).and_then(Option::as_ref).and_then(|entry| entry.agent.as_ref()) {
            Some(agent) => f(agent),
            None => f(&self.home),
        }
    }

    /// One delivery from ring slot `ring` is gone (settled, or dropped in
    /// auto mode).
    #[inline]
    fn release_hold(&self, ring: usize) {
        // Slot 0 is never detached: nothing to count.
        if ring == FIRST {
            return;
        }
        if let Some(Some(entry)) = self.rings.borrow().get(ring) {
            entry.held.set(entry.held.get().saturating_sub(1));
        }
    }

    /// A delivery of `record`, taken from ring slot `ring` by the consumer
    /// the last poll took it with (this one, or one of its priority
    /// levels'), under this consumer's next tag.
    #[inline]
    fn delivery(&self, ring: usize, record: Record) -> Delivery<'_> {
        let from = self.polled_by();
        let tag = self.tags.next();
        if self.options.ack_mode == AckMode::Manual {
            from.tags.hold(tag, ring, record.pos);
        }
        self.refresh_credit();
        Delivery { consumer: from, ring, record, tag, settled: false }
    }

    /// The consumer the last poll took its message with.
    #[inline]
    fn polled_by(&self) -> &Consumer {
        match (&self.levels, self.polled_level.get()) {
            (Some(levels), level) if level > 0 => levels.get(level).unwrap_or(self),
            _ => self,
        }
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<Delivery<'_>, RecvError> {
        let mut spins: u32 = 0;
        let mut spun = false;
        loop {
            if let Some((ring, record)) = self.poll()? {
                return Ok(self.delivery(ring, record));
            }
            if self.chain.is_deleted() {
                return Err(RecvError::QueueDeleted);
            }
            if self.options.busy_poll {
                self.busy_round(&mut spins, deadline)?;
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
                if let Some((ring, record)) = outcome? {
                    return Ok(self.delivery(ring, record));
                }
                continue;
            }
            let (queue, ticket) = self.arm_not_empty();
            if let Some((ring, record)) = self.poll()? {
                return Ok(self.delivery(ring, record));
            }
            let slice = wait_slice(deadline, WAIT_SLICE).ok_or(RecvError::Timeout)?;
            queue.ring.not_empty().wait(ticket, Some(slice));
            spun = false;
            self.sweep(false);
        }
    }

    /// One round of a busy-poll wait: every 4096 rounds it looks for a
    /// deleted queue and a passed `deadline`, and sweeps for dead peers.
    fn busy_round(&self, spins: &mut u32, deadline: Option<Instant>) -> Result<(), RecvError> {
        *spins = spins.wrapping_add(1);
        if spins.is_multiple_of(4096) {
            if self.chain.is_deleted() {
                return Err(RecvError::QueueDeleted);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvError::Timeout);
            }
            self.sweep(false);
        }
        core::hint::spin_loop();
        Ok(())
    }

    /// The async consumer's sleep ([`crate::aio`]): arms the eventcount a
    /// blocking `recv` would sleep on and returns it (with the mapping that
    /// holds it) and the ticket. The caller re-checks with `try_recv` before
    /// it sleeps, and calls [`Consumer::after_sleep`] when it wakes.
    pub(crate) fn arm_not_empty(&self) -> (Arc<QueueHandle>, u32) {
        // A priority queue's producers wake its first segment for every
        // level.
        let queue =
            if self.levels.is_some() { self.home.queue.clone() } else { self.with_agent(self.current.get(), |agent| agent.queue.clone()) };
        let ticket = queue.ring.not_empty().prepare_wait();
        (queue, ticket)
    }

    /// After an async sleep: sweep for dead peers if due, as `recv` does.
    #[cfg(feature = "async")]
    pub(crate) fn after_sleep(&self) {
        self.sweep(false);
    }

    /// One attempt to take a message; `None` if nothing is deliverable.
    /// Returns its ring slot in the consumer that took it: this one, or (a
    /// priority queue's) the level's noted in `polled_level`.
    fn poll(&self) -> Result<Option<(usize, Record)>, RecvError> {
        if self.standing_by() {
            self.tick(EMPTY_POLL_TICKS);
            return Ok(None);
        }
        if self.defers_to_higher_priority() {
            self.tick(EMPTY_POLL_TICKS);
            return Ok(None);
        }
        let manual = self.options.ack_mode == AckMode::Manual;
        if manual && self.options.prefetch != 0 && self.unacked() >= self.options.prefetch {
            // A poller that only ever hears "full" or "empty" still sweeps.
            self.tick(1);
            return Err(RecvError::PrefetchFull(self.options.prefetch));
        }
        if let Some(levels) = &self.levels {
            self.attach_new_levels();
            for (number, level) in levels.attached_numbered() {
                if let Some(found) = level.poll_chain()? {
                    self.polled_level.set(number);
                    return Ok(Some(found));
                }
            }
            self.polled_level.set(0);
        }
        self.poll_chain()
    }

    /// One attempt to take a message from this consumer's chain. Requeued
    /// messages in older rings come first, then the current ring; a closed
    /// ring that dispatched everything hands over to the next. Inlined:
    /// the plain path's result then stays in registers.
    #[inline(always)]
    fn poll_chain(&self) -> Result<Option<(usize, Record)>, RecvError> {
        let manual = self.options.ack_mode == AckMode::Manual;
        loop {
            let current = self.current.get();
            let seq = self.seq_of(current);
            if seq > 0 && self.chain.head() < seq {
                if let Some(found) = self.take_older_requeued(seq)? {
                    return Ok(Some(found));
                }
            }
            let check_stall = self.empty_polls.get().is_multiple_of(64);
            let take = self.with_agent(current, |agent| agent.queue.ring.try_take_checked(agent.owner, !manual, check_stall, &mut now_ms));
            match take {
                Take::Got(record) => {
                    self.empty_polls.set(0);
                    self.on_delivered(current, &record);
                    return Ok(Some((current, record)));
                }
                Take::Expired => bump(&self.counters().expired, 1),
                // Dead-lettered (or shelved: consumers skip it), then on to
                // the next message.
                Take::Dead(record, death) => {
                    self.bury(current, &record, death);
                }
                Take::Empty | Take::Stalled(_) => {
                    if self.advance(current) {
                        continue;
                    }
                    self.empty_polls.set(self.empty_polls.get().wrapping_add(1));
                    match take {
                        Take::Stalled(pos) => self.on_stall(pos),
                        _ => {
                            if check_stall {
                                self.stalled_since.set(None);
                            }
                            // An empty poll counts for more than a message:
                            // a process that polls now and then (a
                            // `basic_get` loop) still looks at the clock, so
                            // its sweeps and housekeeping (expiry in queues
                            // nobody consumes) run within half a second. A
                            // priority level's consumer is polled empty for
                            // every message of the others: it counts 1.
                            self.tick(if self.parent.is_some() { 1 } else { EMPTY_POLL_TICKS });
                        }
                    }
                    return Ok(None);
                }
                Take::Corrupt(pos) => return Err(RecvError::Corrupt(pos)),
            }
        }
    }

    /// True while this consumer waits its turn on a single-active-consumer
    /// queue (`basic.get` never waits: it is no consumer).
    #[inline]
    fn standing_by(&self) -> bool {
        if !self.single_active && !self.cancelled.get() {
            return false;
        }
        if self.cancelled.get() {
            return true;
        }
        let active = self.home.queue.ring.is_active_consumer(self.home.owner);
        if active && !self.was_active.get() {
            // Taking over: a dead predecessor's deliveries in later rings
            // and priority levels come back first, before anything newer.
            self.sweep(true);
            for level in self.levels.iter().flat_map(Levels::attached) {
                level.sweep(true);
            }
        }
        self.was_active.set(active);
        !active
    }

    /// Stops this consumer taking messages (AMQP's `basic.cancel`): from
    /// now on it receives nothing and no longer counts as a consumer of the
    /// queue (a single active consumer hands over at once; lower-priority
    /// consumers stop deferring to it), while the deliveries it holds can
    /// still be acked or rejected, by tag. Dropping it requeues those.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-cancel-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &shmq::QueueOptions::default().single_active_consumer(true)).unwrap();
    /// ns.producer("q").unwrap().publish_batch(&[b"a", b"b"]).unwrap();
    /// let first = ns.consumer("q", shmq::ConsumerOptions::default().manual_ack()).unwrap();
    /// let second = ns.consumer("q", shmq::ConsumerOptions::default().manual_ack()).unwrap();
    /// let tag = first.try_recv().unwrap().tag();
    /// first.cancel();
    /// assert_eq!(second.try_recv().unwrap().body(), b"b");
    /// first.ack(tag).unwrap();
    /// # drop((first, second)); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn cancel(&self) {
        if self.cancelled.replace(true) {
            return;
        }
        let ring = &self.home.queue.ring;
        if self.ranked.get() {
            ring.publish_credit(self.home.owner, 0);
        }
        // Its row stays (it holds deliveries) as a `basic.get`-like handle:
        // held messages count, the consumer does not.
        self.home.slot().role.store(crate::ring::layout::ROLE_GETTER, Ordering::Relaxed);
        if self.single_active {
            ring.hand_over(self.home.owner);
        }
    }

    /// With consumer priorities in use on the queue: publishes this
    /// consumer's prefetch room, and is true if a higher-priority consumer
    /// has room (this one leaves the message to it).
    #[inline]
    fn defers_to_higher_priority(&self) -> bool {
        // Learnt at creation and on each sweep (a consumer with a priority
        // that attaches later is heeded within the sweep interval).
        if !self.ranked.get() {
            return false;
        }
        let ring = &self.home.queue.ring;
        let credit = self.credit();
        ring.publish_credit(self.home.owner, credit);
        credit != 0 && ring.outranked(self.home.owner)
    }

    /// Sets this consumer's unacked count, and its agent row's by the same
    /// change. The row of a priority queue's level-0 consumer shows the
    /// consumer's total over its levels (`list_consumers`, stats): a
    /// level's consumer adds its change there too.
    #[inline]
    fn set_unacked(&self, n: u32) {
        let old = self.unacked.replace(n);
        if self.parent.is_none() && self.levels.is_none() {
            self.home.slot().unacked.store(n, Ordering::Relaxed);
        } else {
            self.set_unacked_across_levels(n.wrapping_sub(old));
        }
    }

    /// `set_unacked`'s part for a priority queue: rows change by `delta`,
    /// this one's and, for a level's consumer, its level-0 consumer's.
    #[cold]
    fn set_unacked_across_levels(&self, delta: u32) {
        let add = |row: &crate::sync::AtomicU32| row.store(row.load(Ordering::Relaxed).wrapping_add(delta), Ordering::Relaxed);
        add(&self.home.slot().unacked);
        if let Some((queue, owner)) = &self.parent {
            add(&crate::ring::RingMemory::agent(queue.segment(), crate::ring::owner_index(*owner)).unacked);
        }
    }

    /// Looks whether the queue's consumers have priorities now.
    fn learn_ranked(&self) {
        let heeds = !self.options.get_only && !self.single_active && self.parent.is_none();
        self.ranked.set(heeds && self.home.queue.ring.has_ranked_consumers());
    }

    /// How many more messages this consumer may take now.
    fn credit(&self) -> u32 {
        if self.options.ack_mode == AckMode::Manual && self.options.prefetch != 0 {
            self.options.prefetch.saturating_sub(self.unacked())
        } else {
            u32::MAX
        }
    }

    /// Publishes this consumer's prefetch room after it changed, if the
    /// queue's consumers have priorities.
    #[inline]
    fn refresh_credit(&self) {
        if self.ranked.get() {
            self.home.queue.ring.publish_credit(self.home.owner, self.credit());
        }
    }

    /// True if this consumer is the one that receives: always, unless the
    /// queue has a single active consumer and it is another.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-active-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let options = shmq::QueueOptions::default().single_active_consumer(true);
    /// ns.declare_queue("q", &options).unwrap();
    /// let first = ns.consumer("q", Default::default()).unwrap();
    /// let second = ns.consumer("q", Default::default()).unwrap();
    /// assert!(first.is_active() && !second.is_active());
    /// drop(first);
    /// assert!(second.is_active());
    /// # drop(second); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn is_active(&self) -> bool {
        !self.standing_by()
    }

    /// The chain sequence number of ring slot `ring`.
    #[inline]
    fn seq_of(&self, ring: usize) -> u64 {
        if ring == FIRST {
            return 0;
        }
        self.rings.borrow().get(ring).and_then(Option::as_ref).map_or(0, |entry| entry.seq)
    }

    /// Takes a requeued message from a ring older than `seq`, if any waits.
    fn take_older_requeued(&self, seq: u64) -> Result<Option<(usize, Record)>, RecvError> {
        let manual = self.options.ack_mode == AckMode::Manual;
        for older in self.chain.head()..seq {
            let Ok(Some(queue)) = self.chain.segment(older) else { continue };
            if !queue.ring.may_have_requeued() {
                continue;
            }
            let Some(ring) = self.attach_ring(older) else { continue };
            let take = self.with_agent(ring, |agent| agent.queue.ring.try_take(agent.owner, !manual, &mut now_ms));
            match take {
                Take::Got(record) => {
                    self.on_delivered(ring, &record);
                    return Ok(Some((ring, record)));
                }
                Take::Expired => bump(&self.counters().expired, 1),
                Take::Dead(record, death) => {
                    self.bury(ring, &record, death);
                }
                Take::Corrupt(pos) => return Err(RecvError::Corrupt(pos)),
                Take::Empty | Take::Stalled(_) => {}
            }
        }
        Ok(None)
    }

    /// The ring slot attached to chain segment `seq`, attaching if needed.
    fn attach_ring(&self, seq: u64) -> Option<usize> {
        if let Some(found) = self.rings.borrow().iter().position(|e| e.as_ref().is_some_and(|e| e.seq == seq)) {
            return Some(found);
        }
        let queue = self.chain.segment(seq).ok().flatten()?;
        let agent = Agent::attach(queue, self.home.peer.clone(), self.options.role(), self.options.prefetch).ok()?;
        let entry = RingEntry { agent: Some(agent), seq, held: Cell::new(0) };
        let mut rings = self.rings.borrow_mut();
        match rings.iter().position(Option::is_none) {
            Some(free) => {
                rings[free] = Some(entry);
                Some(free)
            }
            None => {
                rings.push(Some(entry));
                Some(rings.len() - 1)
            }
        }
    }

    /// If the current ring is closed and dispatched everything, makes the
    /// next one current; true if it moved.
    fn advance(&self, current: usize) -> bool {
        let done = self.with_agent(current, |agent| agent.queue.ring.is_closed() && agent.queue.ring.is_dispatched());
        if !done {
            return false;
        }
        let next = self.seq_of(current).saturating_add(1).max(self.chain.head());
        if next > self.chain.tail() {
            return false;
        }
        let Some(ring) = self.attach_ring(next) else { return false };
        self.current.set(ring);
        self.stalled_since.set(None);
        self.prune();
        true
    }

    /// Detaches from rings behind the current one that hold none of this
    /// consumer's deliveries, unmapping them.
    fn prune(&self) {
        let current = self.current.get();
        let mut rings = self.rings.borrow_mut();
        for (index, slot) in rings.iter_mut().enumerate() {
            if index != current && index != 0 && slot.as_ref().is_some_and(|e| e.held.get() == 0) {
                *slot = None;
            }
        }
        drop(rings);
        self.chain.forget_retired();
    }

    /// Counts `n` operations; sweeps the queue's rings now and then.
    #[inline(always)]
    fn tick(&self, n: u32) {
        let current = self.current.get();
        let swept = if current == FIRST { self.home.tick(n) } else { self.with_agent(current, |agent| agent.tick(n)) };
        if swept {
            self.maintain();
        }
    }

    /// Sweeps for dead peers (if due, or `force`) and looks after the chain.
    fn sweep(&self, force: bool) {
        if self.with_agent(self.current.get(), |agent| agent.maybe_recover(force)).is_some() {
            self.maintain();
        }
    }

    /// Chain upkeep, every sweep: recover older rings (their dead
    /// consumers' messages come back), retire drained ones, shrink an idle
    /// large tail, and detach from what is no longer needed.
    #[cold]
    #[inline(never)]
    fn maintain(&self) {
        self.learn_ranked();
        if let Some(levels) = &self.levels {
            levels.look_again();
        }
        let seq = self.seq_of(self.current.get());
        for older in self.chain.head()..seq {
            if let Ok(Some(queue)) = self.chain.segment(older) {
                queue.recover(self.home.peer.token);
            }
        }
        if seq > 0 {
            self.home.maybe_recover(true);
        }
        // A dead consumer's messages, requeued by a sweep, may have taken
        // the queue past its limits: drop-head trims, as after a nack.
        super::trim::trim_to_limits(&self.chain, &self.home.peer, self.counters(), &mut self.dead_letters.borrow_mut());
        self.chain.retire();
        if seq == self.chain.tail() {
            let queue = self.with_agent(self.current.get(), |agent| agent.queue.clone());
            self.chain.shrink_if_idle(&queue);
        }
        self.prune();
    }

    #[inline]
    fn on_delivered(&self, ring: usize, record: &Record) {
        self.stalled_since.set(None);
        self.set_unacked(self.unacked.get() + 1);
        if ring != FIRST {
            if let Some(Some(entry)) = self.rings.borrow().get(ring) {
                entry.held.set(entry.held.get() + 1);
            }
        }
        // After counting the hold: a tick may sweep, and the sweep's `prune`
        // detaches rings holding none of our deliveries (this one, taken
        // from an older ring, would have been read through the wrong one).
        self.tick(1);
        let slot = self.home.slot();
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
                    self.sweep(true);
                    self.stalled_since.set(Some((pos, now)));
                }
            }
            _ => self.stalled_since.set(Some((pos, now))),
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if crate::liveness::inherited(self.home.peer.pid) {
            return; // a fork child's copy: the parent's deliveries stay its own
        }
        // Levels first: what they hold is back in the queue before a single
        // active consumer hands over.
        drop(self.levels.take());
        if self.unacked.get() > 0 {
            for ring in 0..self.rings.borrow().len() {
                self.with_agent(ring, |agent| agent.queue.ring.requeue_all_of(agent.owner));
            }
            super::trim::trim_to_limits(&self.chain, &self.home.peer, self.counters(), &mut self.dead_letters.borrow_mut());
        }
        // The chain upkeep of a sweep: a consumer that drained a grown queue
        // and closes before its first sweep (200 ms) left the drained rings
        // and a large idle tail in memory until another consumer came.
        self.chain.retire();
        let current = self.current.get();
        if self.seq_of(current) == self.chain.tail() {
            let queue = self.with_agent(current, |agent| agent.queue.clone());
            if self.chain.shrink_if_idle(&queue) {
                self.chain.retire();
            }
        }
        crate::namespace::housekeeping::touch(self.home.queue.segment());
        if self.options.exclusive {
            self.home.queue.ring.release_exclusive(self.home.owner);
        }
        if self.single_active {
            self.home.queue.ring.hand_over(self.home.owner);
        }
        if let Some(ns) = &self.auto_delete {
            if !self.home.queue.ring.has_consumers(Some(self.home.owner)) {
                let _ = ns.delete_queue(self.queue_name());
            }
        }
    }
}

impl<'c> Delivery<'c> {
    fn bytes(&self, skip: usize, len: usize) -> &[u8] {
        let ptr = self.consumer.with_agent(self.ring, |agent| {
            let queue = &agent.queue;
            let offset = queue.ring.data_offset(self.record.data_start) + skip;
            queue.segment().data_ptr(offset, len)
        });
        match ptr {
            // SAFETY: the record is DELIVERED to us until settled, which takes
            // `self` (or happens on drop), so no one writes these bytes while
            // the borrow lives; `deliver` validated the range and data_ptr
            // bounds-checked it. The ring stays mapped while this delivery
            // lives: its slot's `held` count includes it (see `prune`).
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

    /// The properties as stored, encoded: copy them out to parse later with
    /// [`PropertiesRef::parse`] (cheaper than copying each field when most
    /// messages' properties are never looked at).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-propbytes-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// ns.producer("q").unwrap().publish_with(&shmq::Properties::new().app_id("me"), b"x").unwrap();
    /// let consumer = ns.consumer("q", Default::default()).unwrap();
    /// let copied = consumer.try_recv().unwrap().properties_bytes().to_vec();
    /// assert_eq!(shmq::PropertiesRef::parse(&copied).unwrap().app_id, Some("me"));
    /// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn properties_bytes(&self) -> &[u8] {
        self.bytes(0, self.record.props_len as usize)
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

    /// How many times this message was requeued before this delivery (by a
    /// nack, a closed consumer or a dead one): RabbitMQ's quorum queues'
    /// `x-delivery-count` header. 0 on the first delivery; saturates at
    /// 65535.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-dcount-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// # ns.producer("q").unwrap().publish(b"x").unwrap();
    /// let consumer = ns.consumer("q", shmq::ConsumerOptions::default().manual_ack()).unwrap();
    /// let first = consumer.try_recv().unwrap();
    /// assert_eq!(first.delivery_count(), 0);
    /// first.nack(true).unwrap();
    /// assert_eq!(consumer.try_recv().unwrap().delivery_count(), 1);
    /// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn delivery_count(&self) -> u32 {
        u32::from(self.record.delivery_count)
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
            let reclaim = !consumer.defer_reclaim.get();
            consumer.with_agent(self.ring, |agent| agent.queue.ring.finish_owned(self.record.pos, self.record.flags, reclaim));
            consumer.release_hold(self.ring);
            consumer.set_unacked(consumer.unacked.get().saturating_sub(1));
            bump(&consumer.home.slot().counters.acked, 1);
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
            .field("agent", &self.home.owner)
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
        let first = tags.next();
        tags.hold(first, 0, 10);
        assert_eq!(tags.take(first), Some((0, 10)));
        // Requeued and delivered again (or 2^32 positions on): position 10.
        let again = tags.next();
        tags.hold(again, 0, 10);
        assert!(again > first);
        assert_eq!(tags.take(first), None, "a settled tag never settles a later delivery");
        assert_eq!(tags.take(again), Some((0, 10)));
    }

    #[test]
    fn tags_only_grow_whatever_the_positions_do() {
        let tags = DeliveryTags::with_capacity(4);
        let mut last = 0;
        for pos in [u32::MAX - 1, u32::MAX, 0, 3, 1, 7] {
            let tag = tags.next();
            tags.hold(tag, 0, pos);
            assert!(tag > last);
            last = tag;
        }
    }

    /// The held-tag list against a model (a sorted map): holds in order,
    /// takes in any order, `multiple` prefixes, stale and unknown tags.
    #[test]
    fn delivery_tags_match_a_sorted_map_model() {
        use proptest::prelude::*;
        use std::collections::BTreeMap;
        proptest!(ProptestConfig::with_cases(256), |(ops in proptest::collection::vec((0u8..4, 0u64..80), 1..300))| {
            let tags = DeliveryTags::with_capacity(4);
            let mut model: BTreeMap<u64, (usize, u32)> = BTreeMap::new();
            for (op, arg) in ops {
                match op {
                    0 => {
                        let tag = tags.next();
                        tags.hold(tag, (tag % 3) as usize, tag as u32 * 7);
                        model.insert(tag, ((tag % 3) as usize, tag as u32 * 7));
                    }
                    1 => prop_assert_eq!(tags.take(arg), model.remove(&arg)),
                    2 => {
                        let expected = model.iter().next().filter(|(t, _)| arg == 0 || **t <= arg).map(|(t, (r, p))| (*t, *r, *p));
                        if let Some((t, ..)) = expected {
                            model.remove(&t);
                        }
                        prop_assert_eq!(tags.take_oldest(arg), expected);
                    }
                    _ => {
                        let expected: Vec<u64> = model.keys().copied().filter(|&t| arg == 0 || t <= arg).collect();
                        prop_assert_eq!(tags.held_up_to(arg), expected);
                    }
                }
                prop_assert_eq!(tags.holds(arg), model.contains_key(&arg));
                // Taken entries never outnumber live ones by much.
                prop_assert!(tags.held.borrow().len() <= 2 * model.len() + 2);
            }
        });
    }
}
