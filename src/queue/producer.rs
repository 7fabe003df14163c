//! Publishing.

use std::time::{Duration, Instant};

use std::sync::Arc;

use super::chain::{Chain, Grown};
use super::dead_letter::{drop_oldest, DeadLetterer, Fate};
use super::priority::{level_of, level_queue};
use super::{bump, now_ms, spin_until, wait_slice, Agent, QueueHandle, WAIT_SLICE};
use crate::error::PublishError;
use crate::message::Properties;
use crate::options::Overflow;
use crate::ring::layout::{ROLE_PRODUCER, UNIT};
use crate::ring::{Claim, ClaimError, ClaimLimits, ReclaimHint, RingMemory};

/// Why a publish is waiting.
///
/// # Examples
/// ```
/// assert_ne!(shmq::WaitReason::MemoryBudget, shmq::WaitReason::QueueFull);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaitReason {
    /// The namespace's memory budget is reached and the queue must grow:
    /// flow control, RabbitMQ's `connection.blocked` at its memory alarm.
    MemoryBudget,
    /// The queue is at its `max_length`/`max_length_bytes` and its overflow
    /// policy is `block`.
    QueueFull,
}

/// Called about every 50 ms while a publish waits, with why; returning
/// false abandons the publish with [`PublishError::Interrupted`]. Lets a
/// caller report flow control (pika's `connection.blocked` callbacks) and
/// stop waiting (Python's Ctrl-C).
pub type WaitHook = std::sync::Arc<dyn Fn(WaitReason) -> bool + Send + Sync>;

/// How long a publish blocked by the memory budget sleeps between looks:
/// room comes back when a consumer retires a ring, which wakes nobody here.
pub(crate) const BUDGET_WAIT_SLICE: Duration = Duration::from_millis(10);

/// Most messages one `publish_batch` call claims at once.
pub const MAX_BATCH: usize = 64;

/// Largest item `publish_batch_with` holds a chunk of on the stack.
const HELD_ON_STACK: usize = 64;

/// A body `publish_batch_with` took from its iterator, held while its chunk
/// is published.
struct Held<T>(Option<T>);

impl<T: AsRef<[u8]>> AsRef<[u8]> for Held<T> {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref().map_or(&[], AsRef::as_ref)
    }
}

/// A handle that publishes to one queue. Obtain one with
/// [`Namespace::producer`](crate::Namespace::producer).
///
/// A producer is `Send` but not `Sync`: give each thread its own.
///
/// ```compile_fail
/// fn is_sync<T: Sync>() {}
/// is_sync::<shmq::Producer>();
/// ```
///
/// # Examples
/// ```
/// # #[cfg(not(shmq_loom))] {
/// # let dir = std::env::temp_dir().join(format!("shmq-doc-producer-{}", std::process::id()));
/// let ns = shmq::Namespace::open_dir(&dir).unwrap();
/// ns.declare_queue("tasks", &shmq::QueueOptions::default()).unwrap();
/// let mut producer = ns.producer("tasks").unwrap();
/// producer.publish(b"hello").unwrap();
/// assert_eq!(ns.queue_stats("tasks").unwrap().ready, 1);
/// # drop(producer); std::fs::remove_dir_all(&dir).ok();
/// # }
/// ```
pub struct Producer {
    chain: Chain,
    /// Attached to the ring this producer claims in (the tail, or the one
    /// it claimed in last).
    agent: Agent,
    /// Its row in the queue's first segment, once `agent` is in a later
    /// one: every handle keeps its counters there, for stats.
    home: Option<Agent>,
    timeout: Option<Duration>,
    /// Spin rather than sleep while waiting for room (`set_busy_poll`).
    busy_poll: bool,
    /// Last seen reclaim cursor; see `Ring::try_claim`.
    reclaim_hint: ReclaimHint,
    wait_hook: Option<WaitHook>,
    /// The last publish waited for the memory budget and has not got room
    /// since.
    blocked: bool,
    /// Why this producer's last publish had to wait (set before the wait
    /// hook is asked): tells the async producer which ring to sleep on and
    /// for how long.
    stalled: Option<(Instant, WaitReason)>,
    /// Body bytes of the claim being made (for `max_length_bytes`).
    claim_bytes: u64,
    /// Dead-letters what this producer drops or refuses at the queue's
    /// length limit (queues with a dead-letter exchange).
    dead_letters: DeadLetterer,
    /// Priority queues: the producers of levels 1..=max (src/queue/priority.rs).
    levels: Option<Box<LevelProducers>>,
    /// Priority queues: the queue's first segment, whose consumers sleep on
    /// its event count for messages of every level.
    wake: Option<Arc<QueueHandle>>,
}

/// A priority queue's producers of levels above 0, each attached at its
/// first message of that priority.
struct LevelProducers {
    max: u8,
    /// Level `k` at `k - 1`.
    producers: Vec<Option<Producer>>,
}

/// A message being written in place: fill [`body_mut`](Reservation::body_mut),
/// then [`commit`](Reservation::commit). Dropping it uncommitted abandons the
/// slot: consumers skip it and nothing is delivered.
///
/// # Examples
/// ```
/// # #[cfg(not(shmq_loom))] {
/// # let dir = std::env::temp_dir().join(format!("shmq-doc-reserve-{}", std::process::id()));
/// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
/// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
/// let mut producer = ns.producer("q").unwrap();
/// let mut slot = producer.reserve(&shmq::Properties::new(), 5).unwrap();
/// slot.body_mut().copy_from_slice(b"in-pl");
/// slot.commit();
/// # drop(producer); std::fs::remove_dir_all(&dir).ok();
/// # }
/// ```
pub struct Reservation<'p> {
    producer: &'p mut Producer,
    pos: u32,
    start: u32,
    end: u32,
    props_len: u32,
    body_len: u32,
    expires_at_ms: u64,
    committed: bool,
}

/// Several messages being written in place, claimed together by
/// [`Producer::reserve_batch`]: fill each [`body_mut`](BatchReservation::body_mut),
/// then [`commit`](BatchReservation::commit). Dropping it uncommitted
/// abandons them all (consumers skip them).
///
/// # Examples
/// See [`Producer::reserve_batch`].
pub struct BatchReservation<'p> {
    producer: &'p mut Producer,
    first: u32,
    count: usize,
    /// Per message: first data unit, one past its last, body bytes.
    records: [(u32, u32, u32); MAX_BATCH],
    props_len: u32,
    /// Body bytes of all the messages (given back if abandoned).
    bytes: u64,
    expires_at_ms: u64,
    committed: bool,
}

struct Encoded {
    props_len: usize,
    units: u32,
    expires_at_ms: u64,
}

impl Producer {
    pub(crate) fn new(agent: Agent) -> Self {
        let chain = Chain::new(agent.queue.clone());
        let config = &agent.queue.segment().config;
        let max = config.max_priority;
        // A level's own producer publishes into its level.
        let levels = (max > 0 && config.level == 0).then(|| Box::new(LevelProducers { max, producers: (0..max).map(|_| None).collect() }));
        Self {
            wake: levels.as_ref().map(|_| agent.queue.clone()),
            levels,
            dead_letters: DeadLetterer::new(agent.queue.ns.clone()),
            chain,
            agent,
            home: None,
            timeout: None,
            busy_poll: false,
            reclaim_hint: ReclaimHint::default(),
            wait_hook: None,
            blocked: false,
            stalled: None,
            claim_bytes: 0,
        }
    }

    /// Sets the hook called while a publish waits (see [`WaitHook`]).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-hook-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let mut producer = ns.producer("q").unwrap();
    /// producer.set_wait_hook(Some(std::sync::Arc::new(|reason| {
    ///     eprintln!("publish waiting: {reason:?}");
    ///     true
    /// })));
    /// # drop(producer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn set_wait_hook(&mut self, hook: Option<WaitHook>) {
        for level in self.level_producers() {
            level.wait_hook.clone_from(&hook);
        }
        self.wait_hook = hook;
    }

    /// The producers of this priority queue's levels above 0 opened so far.
    fn level_producers(&mut self) -> impl Iterator<Item = &mut Producer> {
        self.levels.iter_mut().flat_map(|levels| levels.producers.iter_mut().flatten())
    }

    /// A priority queue's publish of a message with a priority: into its
    /// level, or this producer's own chain for level 0. Off the plain path.
    #[cold]
    #[inline(never)]
    fn publish_prioritized(&mut self, properties: &Properties<'_>, body: &[u8]) -> Result<(), PublishError> {
        match self.level_for(properties.priority)? {
            Some(level) => level.publish_with(properties, body),
            None => self.publish_here(properties, body),
        }
    }

    /// Where a message of `priority` goes: `None` for this producer's own
    /// chain (level 0, and every queue without priorities), else the
    /// producer of its level, attached at first use.
    #[inline]
    fn level_for(&mut self, priority: Option<u8>) -> Result<Option<&mut Producer>, PublishError> {
        let Some(levels) = self.levels.as_deref_mut() else { return Ok(None) };
        let level = level_of(priority, levels.max);
        if level == 0 {
            return Ok(None);
        }
        let first = self.home.as_ref().unwrap_or(&self.agent);
        // A level's chain knows nothing of a delete of the queue (nor does
        // one created after it): ask the queue's first segment.
        if first.queue.is_deleted() {
            return Err(PublishError::QueueDeleted);
        }
        let slot = &mut levels.producers[usize::from(level) - 1];
        if slot.is_none() {
            let open = || -> Result<Agent, crate::Error> {
                Agent::attach(level_queue(&first.queue, level)?, first.peer.clone(), ROLE_PRODUCER, 0)
            };
            let mut producer = Producer::new(open().map_err(|e| PublishError::Routing(e.to_string()))?);
            producer.wake = Some(first.queue.clone());
            producer.timeout = self.timeout;
            producer.busy_poll = self.busy_poll;
            producer.wait_hook.clone_from(&self.wait_hook);
            *slot = Some(producer);
        }
        Ok(slot.as_mut())
    }

    /// Wakes consumers of the ring just published to, and of a priority
    /// queue's first segment, where its consumers sleep.
    #[inline]
    fn notify_consumers(&self) {
        self.agent.queue.ring.notify_consumers();
        if let Some(home) = &self.wake {
            if !Arc::ptr_eq(home, &self.agent.queue) {
                home.ring.notify_consumers();
            }
        }
    }

    /// Once the `count` slots of a claim are committed: clears the claim
    /// intent, counts them and wakes consumers.
    fn claim_committed(&self, count: u32) {
        self.agent.queue.ring.claim_done(self.agent.owner);
        bump(&self.counters().published, u64::from(count));
        self.notify_consumers();
        self.agent.tick(count);
    }

    /// Gives up `count` claimed, uncommitted slots from `first` (a dropped
    /// reservation) and the `bytes` of body they counted as ready.
    fn abandon_claim(&self, first: u32, count: u32, bytes: u64) {
        let ring = &self.agent.queue.ring;
        for i in 0..count {
            ring.abandon(first.wrapping_add(i));
        }
        ring.release_bytes(bytes);
        ring.claim_done(self.agent.owner);
        self.notify_consumers();
    }

    /// The `body_len` body bytes of a record this producer claimed at data
    /// unit `start`, after `props_len` bytes of properties; empty if out of
    /// the data area.
    fn claimed_body(&mut self, start: u32, props_len: u32, body_len: u32) -> &mut [u8] {
        let queue = &self.agent.queue;
        let offset = queue.ring.data_offset(start) + props_len as usize;
        match queue.segment().data_ptr(offset, body_len as usize) {
            // SAFETY: the record lies in a claim of ours that is neither
            // committed nor abandoned (the reservation holding it is alive),
            // in bounds (checked), disjoint from the claim's other records;
            // `&mut self` makes this borrow unique.
            Some(ptr) => unsafe { std::slice::from_raw_parts_mut(ptr, body_len as usize) },
            None => &mut [],
        }
    }

    /// True if this producer's last publish had to wait for the namespace's
    /// memory budget and has not had room since: flow control is on
    /// (RabbitMQ's `connection.blocked`).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-blocked-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let producer = ns.producer("q").unwrap();
    /// assert!(!producer.is_blocked());
    /// # drop(producer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn is_blocked(&self) -> bool {
        self.blocked || self.levels.iter().flat_map(|l| l.producers.iter().flatten()).any(Producer::is_blocked)
    }

    /// This handle's counters (in the queue's first segment).
    #[inline]
    fn counters(&self) -> &crate::ring::layout::Counters {
        self.home.as_ref().unwrap_or(&self.agent).counters()
    }

    /// The queue this producer publishes to.
    ///
    /// # Examples
    /// See [`Producer`]; `producer.queue_name()` is `"tasks"` there.
    pub fn queue_name(&self) -> &str {
        self.agent.queue.name()
    }

    /// Sets how long a publish to a full `block` queue waits; `None` (the
    /// default) waits as long as it takes.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-timeout-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let mut producer = ns.producer("q").unwrap();
    /// producer.set_publish_timeout(Some(std::time::Duration::from_millis(100)));
    /// # drop(producer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn set_publish_timeout(&mut self, timeout: Option<Duration>) {
        for level in self.level_producers() {
            level.timeout = timeout;
        }
        self.timeout = timeout;
    }

    /// With `true`, a publish waiting for room (a `block` queue at its
    /// limit, a full ring, the memory budget) spins on the CPU instead of
    /// sleeping on a futex: it takes room the moment it frees, at the cost
    /// of a core, as a busy-poll consumer does. The publish timeout, the
    /// wait hook and the sweeps for dead consumers work as when sleeping.
    /// An [`AsyncProducer`](crate::aio::AsyncProducer) awaits room instead:
    /// this does not apply to it.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-prodbusy-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &shmq::QueueOptions::default().max_length(1).overflow(shmq::Overflow::Block)).unwrap();
    /// let mut producer = ns.producer("q").unwrap();
    /// producer.set_busy_poll(true);
    /// producer.set_publish_timeout(Some(std::time::Duration::from_millis(20)));
    /// producer.publish(b"fits").unwrap();
    /// assert_eq!(producer.publish(b"waits, spinning, then times out"), Err(shmq::PublishError::Timeout));
    /// # drop(producer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn set_busy_poll(&mut self, on: bool) {
        for level in self.level_producers() {
            level.busy_poll = on;
        }
        self.busy_poll = on;
    }

    /// Publishes `body` with no properties.
    ///
    /// # Errors
    /// See [`publish_with`](Producer::publish_with).
    ///
    /// # Examples
    /// See [`Producer`].
    #[inline]
    pub fn publish(&mut self, body: &[u8]) -> Result<(), PublishError> {
        self.publish_with(&Properties::new(), body)
    }

    /// Publishes `body` with `properties`. Copies once, into shared memory;
    /// allocates nothing.
    ///
    /// # Errors
    /// - [`PublishError::TooLarge`] if body plus properties exceed the queue's
    ///   `max_message_bytes`;
    /// - [`PublishError::QueueFull`] on a full `reject` queue (or a full
    ///   `drop-oldest` queue whose messages are all unacked, or a `block`
    ///   queue whose limits can never take the message);
    /// - [`PublishError::Timeout`] if a `block` queue stayed full for the
    ///   publish timeout;
    /// - [`PublishError::QueueDeleted`], [`PublishError::InvalidProperty`].
    ///
    /// In every error case the message was not published; `body` is still
    /// the caller's.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-pubwith-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let mut producer = ns.producer("q").unwrap();
    /// let props = shmq::Properties::new().content_type("text/plain").priority(5);
    /// producer.publish_with(&props, b"hi").unwrap();
    /// # drop(producer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn publish_with(&mut self, properties: &Properties<'_>, body: &[u8]) -> Result<(), PublishError> {
        if self.levels.is_some() && properties.priority.is_some_and(|p| p > 0) {
            return self.publish_prioritized(properties, body);
        }
        self.publish_here(properties, body)
    }

    /// Publishes into this producer's own chain.
    #[inline]
    fn publish_here(&mut self, properties: &Properties<'_>, body: &[u8]) -> Result<(), PublishError> {
        let encoded = self.encode_size(properties, body.len())?;
        let claimed = self.claim(&[encoded.units], body.len() as u64);
        if matches!(claimed, Err(PublishError::QueueFull)) {
            self.refused(properties, body);
        }
        let Some(claim) = claimed? else {
            // Dropped at once by drop-head: it alone is over the limit.
            bump(&self.counters().dropped, 1);
            return Ok(());
        };
        let (start, end) = self.agent.queue.ring.place(claim.data, encoded.units);
        self.write_record(start, properties, encoded.props_len, body);
        let ring = &self.agent.queue.ring;
        ring.commit(claim.first, start, end, encoded.props_len as u32, body.len() as u32, encoded.expires_at_ms);
        self.claim_committed(1);
        Ok(())
    }

    /// Publishes several bodies (no properties) with one claim and one
    /// wake-up per chunk: the fast path for throughput. A chunk is up to 64
    /// messages, no more than the ring's slots and half its bytes, so any
    /// batch fits. The bodies are anything that iterates over byte slices
    /// (`&[&[u8]]`, `Vec<Vec<u8>>`, an iterator of `String`s, ...), taken a
    /// chunk at a time without allocating. Returns how many were published,
    /// which is all of them unless an error stopped it midway.
    ///
    /// # Errors
    /// As [`publish_with`](Producer::publish_with); the messages before the
    /// failing one were published, the failing one and every later one
    /// were not (up to 63 of them were already taken from the iterator).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-batch-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let mut producer = ns.producer("q").unwrap();
    /// let bodies: [&[u8]; 3] = [b"a", b"b", b"c"];
    /// assert_eq!(producer.publish_batch(bodies).unwrap(), 3);
    /// assert_eq!(producer.publish_batch((0..100).map(|i| format!("order {i}"))).unwrap(), 100);
    /// # drop(producer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn publish_batch<I>(&mut self, bodies: I) -> Result<usize, PublishError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.publish_batch_with(&Properties::new(), bodies)
    }

    /// As [`publish_batch`](Producer::publish_batch), every message with the
    /// same `properties`.
    ///
    /// # Errors
    /// As [`publish_batch`](Producer::publish_batch).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-batchwith-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let mut producer = ns.producer("q").unwrap();
    /// let props = shmq::Properties::new().content_type("text/plain");
    /// assert_eq!(producer.publish_batch_with(&props, [b"a", b"b"]).unwrap(), 2);
    /// # drop(producer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn publish_batch_with<I>(&mut self, properties: &Properties<'_>, bodies: I) -> Result<usize, PublishError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let bodies = bodies.into_iter();
        // A chunk of bodies is held while it is published: on the stack for
        // references and other small items, on the heap for large ones
        // (64 by-value 64 KiB arrays would overflow a thread's stack).
        if std::mem::size_of::<Held<I::Item>>() <= HELD_ON_STACK {
            self.publish_iter_on_stack(properties, bodies)
        } else {
            let mut chunk: Vec<Held<I::Item>> = (0..MAX_BATCH).map(|_| Held(None)).collect();
            self.publish_iter(properties, bodies, &mut chunk)
        }
    }

    /// `publish_iter` with the chunk in an array on the stack: a function
    /// of its own, so that the array is in no other path's stack frame.
    #[inline(never)]
    fn publish_iter_on_stack<T: AsRef<[u8]>>(
        &mut self,
        properties: &Properties<'_>,
        bodies: impl Iterator<Item = T>,
    ) -> Result<usize, PublishError> {
        let mut chunk: [Held<T>; MAX_BATCH] = std::array::from_fn(|_| Held(None));
        self.publish_iter(properties, bodies, &mut chunk)
    }

    /// `publish_batch_with`'s loop: fills `chunk` from `bodies`, publishes
    /// it, until the iterator ends or a publish fails.
    fn publish_iter<T: AsRef<[u8]>>(
        &mut self,
        properties: &Properties<'_>,
        mut bodies: impl Iterator<Item = T>,
        chunk: &mut [Held<T>],
    ) -> Result<usize, PublishError> {
        let mut published = 0;
        loop {
            let mut taken = 0;
            for (held, body) in chunk.iter_mut().zip(bodies.by_ref()) {
                *held = Held(Some(body));
                taken += 1;
            }
            if taken == 0 {
                return Ok(published);
            }
            let (done, result) = self.publish_chunks(properties, &chunk[..taken]);
            published += done;
            result?;
            if taken < chunk.len() {
                return Ok(published);
            }
        }
    }

    /// Most messages one claim may take in this queue. With a length limit
    /// and a policy that refuses or drops, one: the policy applies to each
    /// message, as in RabbitMQ. `block` waits for room for a whole chunk, no
    /// larger than the count limit. A byte limit: one, because recovery
    /// gives back the ready bytes of a dead producer's claim slot by slot
    /// (`Ring::abandon_stalled`) and only a single-slot claim records them.
    fn max_claim(&self) -> usize {
        let config = &self.agent.queue.segment().config;
        let max = match (config.max_length, config.max_length_bytes, config.overflow.unwrap_or_default()) {
            (None, None, _) => MAX_BATCH,
            (Some(n), None, Overflow::Block) => MAX_BATCH.min(n.max(1) as usize),
            _ => 1,
        };
        max.min(self.agent.queue.ring.geometry().slot_count as usize)
    }

    /// Publishes `bodies` a chunk per claim; returns how many were
    /// published and the error that stopped it, if one did.
    pub(crate) fn publish_chunks<B: AsRef<[u8]>>(
        &mut self,
        properties: &Properties<'_>,
        bodies: &[B],
    ) -> (usize, Result<(), PublishError>) {
        if self.levels.is_some() && properties.priority.is_some_and(|p| p > 0) {
            // Another level's chain: one message at a time (cold).
            for (done, body) in bodies.iter().enumerate() {
                if let Err(e) = self.publish_prioritized(properties, body.as_ref()) {
                    return (done, Err(e));
                }
            }
            return (bodies.len(), Ok(()));
        }
        let mut done = 0;
        let geometry = self.agent.queue.ring.geometry();
        // A chunk must fit an empty ring, or its claim could never succeed:
        // at most half the data (so wrap padding fits too) and the slots.
        let max_units = u64::from(geometry.data_units / 2);
        let max_count = self.max_claim();
        // The same properties for every message: sized once. The expiry is
        // taken per chunk once claimed: a chunk may wait (block, memory
        // budget), and a TTL counts from the enqueue.
        let (props_len, ttl) = match (properties.encoded_len(), self.ttl_for(properties)) {
            (Ok(len), Ok(ttl)) => (len, ttl),
            (Err(e), _) | (_, Err(e)) => return (0, Err(e)),
        };
        let at_length_limit = max_count > 1 && self.agent.queue.segment().config.max_length.is_some();
        while done < bodies.len() {
            // At a `block` length limit, a chunk no larger than the room
            // there is now: what fits goes in at once, and the first message
            // that does not waits alone, as single publishes do. (A chunk
            // waiting for room for all of it kept a batch's last messages
            // when its wait timed out, refusing the first ones.)
            let max_count =
                if at_length_limit { max_count.min(self.agent.queue.ring.room_under(self.max_ready()).max(1) as usize) } else { max_count };
            // Each body's bytes are looked up once, before the claim: an
            // `AsRef` that answers differently the second time (or panics)
            // can neither outgrow the claim nor leave it uncommitted.
            let mut slices: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
            let mut units = [0u32; MAX_BATCH];
            let mut count = 0;
            let mut total = 0u64;
            for body in &bodies[done..bodies.len().min(done + max_count)] {
                let body = body.as_ref();
                let record_units = match self.units_for(props_len, body.len()) {
                    Ok(record_units) => record_units,
                    // Publish what precedes the bad message; the next round
                    // starts at it and returns the error.
                    Err(_) if count > 0 => break,
                    Err(e) => return (done, Err(e)),
                };
                if count > 0 && total + u64::from(record_units) > max_units {
                    break;
                }
                total += u64::from(record_units);
                units[count] = record_units;
                slices[count] = body;
                count += 1;
            }
            let chunk = &slices[..count];
            let units = &units[..count];
            let bytes = chunk.iter().map(|b| b.len() as u64).sum();
            let claimed = self.claim(units, bytes);
            if matches!(claimed, Err(PublishError::QueueFull)) && chunk.len() == 1 {
                self.refused(properties, chunk[0]);
            }
            let claim = match claimed {
                Ok(Some(claim)) => claim,
                Ok(None) => {
                    bump(&self.counters().dropped, chunk.len() as u64);
                    done += chunk.len();
                    continue;
                }
                Err(e) => return (done, Err(e)),
            };
            let expires = expiry(ttl);
            let ring = &self.agent.queue.ring;
            let mut data = claim.data;
            for (i, (&body, &u)) in chunk.iter().zip(units).enumerate() {
                let (start, end) = ring.place(data, u);
                self.write_record(start, properties, props_len, body);
                ring.commit(claim.first.wrapping_add(i as u32), start, end, props_len as u32, body.len() as u32, expires);
                data = end;
            }
            self.claim_committed(chunk.len() as u32);
            done += chunk.len();
        }
        (done, Ok(()))
    }

    /// A full `reject-publish-dlx` queue refused a message: dead-letter it
    /// (reason `maxlen`), as RabbitMQ does. The publish still fails.
    #[cold]
    fn refused(&mut self, properties: &Properties<'_>, body: &[u8]) {
        let queue = self.agent.queue.clone();
        let config = &queue.segment().config;
        if config.overflow != Some(Overflow::RejectPublishDlx) {
            return;
        }
        match self.dead_letters.dead_letter_refused(config, properties, body) {
            Fate::Gone if config.dead_letter_exchange.is_some() => bump(&self.counters().dead_lettered, 1),
            Fate::Gone => {}
            // Not in the queue, so nothing to keep: lost, and counted.
            Fate::Dropped | Fate::Shelved => bump(&self.counters().dropped, 1),
        }
    }

    /// Claims room for a message of `body_len` bytes and returns it for
    /// in-place writing (zero-copy).
    ///
    /// # Errors
    /// As [`publish_with`](Producer::publish_with).
    ///
    /// # Examples
    /// See [`Reservation`].
    pub fn reserve(&mut self, properties: &Properties<'_>, body_len: usize) -> Result<Reservation<'_>, PublishError> {
        if self.levels.is_some() && level_of(properties.priority, self.levels.as_ref().map_or(0, |l| l.max)) > 0 {
            return self.level_for(properties.priority)?.ok_or(PublishError::Corrupt)?.reserve(properties, body_len);
        }
        let encoded = self.encode_size(properties, body_len)?;
        // A reservation cannot be dropped on the spot: refuse it instead.
        let claim = self.claim(&[encoded.units], body_len as u64)?.ok_or(PublishError::QueueFull)?;
        let (start, end) = self.agent.queue.ring.place(claim.data, encoded.units);
        self.write_record(start, properties, encoded.props_len, &[]);
        Ok(Reservation {
            producer: self,
            pos: claim.first,
            start,
            end,
            props_len: encoded.props_len as u32,
            body_len: body_len as u32,
            expires_at_ms: encoded.expires_at_ms,
            committed: false,
        })
    }

    /// Claims room for `body_lens.len()` messages (1 to [`MAX_BATCH`], at
    /// most half the ring's bytes), all with `properties`, in one claim,
    /// and returns them for in-place writing: the batch form of
    /// [`reserve`](Producer::reserve). Fill each
    /// [`body_mut`](BatchReservation::body_mut), then
    /// [`commit`](BatchReservation::commit) them all with one wake-up;
    /// dropped uncommitted, none is published.
    ///
    /// # Errors
    /// [`PublishError::InvalidBatch`] for no message, more than
    /// [`MAX_BATCH`], more than the ring holds at once, or more than the
    /// queue takes in one claim (a `block` queue's `max_length`; one
    /// message in a queue with a byte limit, or whose overflow policy
    /// refuses or drops); otherwise as [`reserve`](Producer::reserve), for
    /// the batch as a whole.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-resbatch-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let mut producer = ns.producer("q").unwrap();
    /// let mut batch = producer.reserve_batch(&shmq::Properties::new(), &[3, 5]).unwrap();
    /// batch.body_mut(0).copy_from_slice(b"one");
    /// batch.body_mut(1).copy_from_slice(b"three");
    /// batch.commit();
    /// let consumer = ns.consumer("q", Default::default()).unwrap();
    /// assert_eq!(consumer.try_recv().unwrap().body(), b"one");
    /// assert_eq!(consumer.try_recv().unwrap().body(), b"three");
    /// # drop((producer, consumer)); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn reserve_batch(&mut self, properties: &Properties<'_>, body_lens: &[usize]) -> Result<BatchReservation<'_>, PublishError> {
        if self.levels.is_some() && level_of(properties.priority, self.levels.as_ref().map_or(0, |l| l.max)) > 0 {
            return self.level_for(properties.priority)?.ok_or(PublishError::Corrupt)?.reserve_batch(properties, body_lens);
        }
        let geometry = self.agent.queue.ring.geometry();
        if body_lens.is_empty() || body_lens.len() > MAX_BATCH.min(geometry.slot_count as usize) {
            return Err(PublishError::InvalidBatch("reserve 1 to 64 messages at once, and no more than the queue's ring holds"));
        }
        if body_lens.len() > self.max_claim() {
            return Err(PublishError::InvalidBatch(
                "this queue takes fewer messages per claim (its max-length with overflow block, or one with a byte limit or a policy that refuses or drops): reserve fewer",
            ));
        }
        let props_len = properties.encoded_len()?;
        // Before the claim: an error after it would leave the claim behind.
        let ttl = self.ttl_for(properties)?;
        let mut units = [0u32; MAX_BATCH];
        let mut total = 0u64;
        for (u, &len) in units.iter_mut().zip(body_lens) {
            *u = self.units_for(props_len, len)?;
            total += u64::from(*u);
        }
        if total > u64::from(geometry.data_units / 2) {
            return Err(PublishError::InvalidBatch("the batch is over half the queue's ring bytes: reserve fewer messages at once"));
        }
        let count = body_lens.len();
        let bytes = body_lens.iter().map(|&len| len as u64).sum();
        let claim = self.claim(&units[..count], bytes)?.ok_or(PublishError::QueueFull)?;
        let expires_at_ms = expiry(ttl);
        let mut records = [(0u32, 0u32, 0u32); MAX_BATCH];
        let mut data = claim.data;
        for ((record, &u), &len) in records.iter_mut().zip(&units[..count]).zip(body_lens) {
            let (start, end) = self.agent.queue.ring.place(data, u);
            self.write_record(start, properties, props_len, &[]);
            *record = (start, end, len as u32);
            data = end;
        }
        Ok(BatchReservation {
            producer: self,
            first: claim.first,
            count,
            records,
            props_len: props_len as u32,
            bytes,
            expires_at_ms,
            committed: false,
        })
    }

    fn encode_size(&self, properties: &Properties<'_>, body_len: usize) -> Result<Encoded, PublishError> {
        let props_len = properties.encoded_len()?;
        let units = self.units_for(props_len, body_len)?;
        let expires_at_ms = expiry(self.ttl_for(properties)?);
        Ok(Encoded { props_len, units, expires_at_ms })
    }

    /// `TooLarge` if this queue refuses a message of `props_len` bytes of
    /// encoded properties and `body_len` of body.
    pub(crate) fn check_size(&self, props_len: usize, body_len: usize) -> Result<(), PublishError> {
        self.units_for(props_len, body_len).map(|_| ())
    }

    /// Data units of a record of `props_len` + `body_len` bytes, if the
    /// queue takes a message that large.
    #[inline]
    fn units_for(&self, props_len: usize, body_len: usize) -> Result<u32, PublishError> {
        let total = props_len.saturating_add(body_len);
        let limit = self.agent.queue.segment().config.max_message_bytes as usize;
        if total > limit {
            return Err(PublishError::TooLarge { size: total, limit });
        }
        Ok(total.div_ceil(UNIT) as u32)
    }

    /// A message's TTL in ms: its own or the queue's, whichever is shorter.
    fn ttl_for(&self, properties: &Properties<'_>) -> Result<Option<u64>, PublishError> {
        let config = &self.agent.queue.segment().config;
        Ok(match (properties.ttl_ms()?, config.message_ttl_ms) {
            (Some(a), 0) => Some(a),
            (Some(a), b) => Some(a.min(b)),
            (None, 0) => None,
            (None, b) => Some(b),
        })
    }

    /// Writes properties and (possibly empty) body at data unit `start`.
    fn write_record(&self, start: u32, properties: &Properties<'_>, props_len: usize, body: &[u8]) {
        let ring = &self.agent.queue.ring;
        let segment = self.agent.queue.segment();
        let offset = ring.data_offset(start);
        if props_len > 0 {
            if let Some(ptr) = segment.data_ptr(offset, props_len) {
                // SAFETY: the claim gave us [start, end) exclusively; the range
                // is in bounds (data_ptr checked it).
                let out = unsafe { std::slice::from_raw_parts_mut(ptr, props_len) };
                properties.encode(out);
            }
        }
        if !body.is_empty() {
            // SAFETY: as above; the claim covers props_len + body.len() bytes.
            let written = unsafe { segment.write_data(offset + props_len, body) };
            debug_assert!(written);
        }
    }

    #[inline]
    fn try_claim(&mut self, units: &[u32]) -> Result<Claim, ClaimError> {
        let config = &self.agent.queue.segment().config;
        let limits = if config.max_length.is_none() && config.max_length_bytes.is_none() {
            ClaimLimits::NONE
        } else {
            ClaimLimits { max_ready: self.max_ready(), max_ready_bytes: self.max_ready_bytes(), bytes: self.claim_bytes }
        };
        self.agent.queue.ring.try_claim(self.agent.owner, units, &mut self.reclaim_hint, limits)
    }

    /// The bound on this ring's ready body bytes that keeps the queue
    /// within `max_length_bytes`: the limit less older rings' ready bytes.
    fn max_ready_bytes(&self) -> u64 {
        let Some(limit) = self.agent.queue.segment().config.max_length_bytes else { return u64::MAX };
        let seq = self.agent.queue.seq();
        // Counts from shared memory: summed saturating, never overflowing.
        let older = (self.chain.head()..seq)
            .filter_map(|s| self.chain.segment(s).ok().flatten())
            .map(|h| h.ring.ready_bytes())
            .fold(0u64, u64::saturating_add);
        limit.saturating_sub(older)
    }

    /// True if a message of `bytes` can never fit the queue's limits, so
    /// drop-head drops it at once (as RabbitMQ does).
    fn never_fits(&self, bytes: u64) -> bool {
        let config = &self.agent.queue.segment().config;
        config.max_length == Some(0) || config.max_length_bytes.is_some_and(|limit| bytes > limit)
    }

    /// The bound on this ring's ready messages that keeps the queue within
    /// `max_length`: the limit less what older rings still hold ready, and
    /// less the requeued messages waiting below this ring's `read` (ready
    /// too, but outside the claim's count).
    #[inline]
    fn max_ready(&self) -> u32 {
        let Some(limit) = self.agent.queue.segment().config.max_length else { return u32::MAX };
        let seq = self.agent.queue.seq();
        let older: u64 = if self.chain.head() < seq {
            (self.chain.head()..seq).filter_map(|s| self.chain.segment(s).ok().flatten()).map(|h| u64::from(h.ring.depth().0)).sum()
        } else {
            0
        };
        let ring = &self.agent.queue.ring;
        // Requeued messages are ready too; scanned for only while the ring's
        // flag says one may be waiting.
        let requeued = if ring.may_have_requeued() { u64::from(ring.requeued_below_read()) } else { 0 };
        limit.saturating_sub(older + requeued).min(u64::from(u32::MAX - 1)) as u32
    }

    /// Claims slots and data: grows the queue when its ring is full, applies
    /// the overflow policy at its limits, and waits when the memory budget
    /// is reached.
    /// `None`: the message was dropped by the drop-head policy (it alone is
    /// over the queue's limits).
    fn claim(&mut self, units: &[u32], bytes: u64) -> Result<Option<Claim>, PublishError> {
        let mut deadline = None;
        self.claim_bytes = bytes;
        loop {
            if self.chain.is_deleted() {
                return Err(PublishError::QueueDeleted);
            }
            let got = match self.try_claim(units) {
                Ok(claim) => Some(claim),
                Err(ClaimError::Corrupt) => return Err(PublishError::Corrupt),
                Err(ClaimError::Closed) => self.move_on(units, &mut deadline)?,
                Err(ClaimError::Full) => self.grow(units, &mut deadline)?,
                Err(ClaimError::Limit) => self.overflow(units, &mut deadline)?,
            };
            if let Some(claim) = got {
                self.blocked = false;
                return Ok(Some(claim));
            }
            if self.agent.queue.segment().config.overflow.unwrap_or_default() == Overflow::DropOldest && self.never_fits(bytes) {
                if !self.discard_oldest() {
                    // Everything older is gone, and it still does not fit.
                    return Ok(None);
                }
                bump(&self.counters().dropped, 1);
            }
        }
    }

    /// Our ring is closed: move to the tail, or finish a growth step whose
    /// grower died after closing it.
    fn move_on(&mut self, units: &[u32], deadline: &mut Option<Option<Instant>>) -> Result<Option<Claim>, PublishError> {
        if self.chain.tail() > self.agent.queue.seq() {
            return self.switch_to_tail().map(|()| None);
        }
        self.grow(units, deadline)
    }

    /// Our ring has no room: link a larger one, or wait for the budget.
    fn grow(&mut self, units: &[u32], deadline: &mut Option<Option<Instant>>) -> Result<Option<Claim>, PublishError> {
        // Room may be held by a dead consumer: sweep before growing.
        if self.agent.maybe_recover(false).is_some_and(|r| r.requeued > 0 || r.abandoned > 0) {
            return Ok(None);
        }
        let ring = &self.agent.queue.ring;
        let mut need = 0;
        for &u in units {
            need = ring.place(need, u).1;
        }
        match self.chain.grow(&self.agent.queue, need, units.len() as u32) {
            Ok(Grown::Moved) => self.switch_to_tail().map(|()| None),
            Ok(Grown::BudgetReached) => {
                self.blocked = true;
                self.chain.retire();
                self.wait(WaitReason::MemoryBudget, units, deadline)
            }
            Err(e) => Err(PublishError::Routing(e.to_string())),
        }
    }

    /// Attaches to the tail ring and leaves the old one.
    fn switch_to_tail(&mut self) -> Result<(), PublishError> {
        let tail = self.chain.tail();
        let queue = match self.chain.segment(tail) {
            Ok(Some(queue)) => queue,
            // The tail's file is gone or damaged: the queue was deleted
            // (checked by the caller next) or its chain is corrupt.
            Ok(None) if self.chain.is_deleted() => return Ok(()),
            Ok(None) => return Err(PublishError::Corrupt),
            Err(e) => return Err(PublishError::Routing(e.to_string())),
        };
        let agent = Agent::attach(queue, self.agent.peer.clone(), ROLE_PRODUCER, 0).map_err(|e| PublishError::Routing(e.to_string()))?;
        let old = std::mem::replace(&mut self.agent, agent);
        if old.queue.seq() == 0 {
            self.home = Some(old);
        }
        self.reclaim_hint = ReclaimHint::default();
        self.chain.forget_retired();
        Ok(())
    }

    /// The queue is at its `max_length`: apply the overflow policy.
    fn overflow(&mut self, units: &[u32], deadline: &mut Option<Option<Instant>>) -> Result<Option<Claim>, PublishError> {
        // Abandoned claims (dropped reservations, dead producers' claims) at
        // the head count as ready until a consumer steps over them: step
        // over them here, so that a queue nobody consumes from is not held
        // at its limit by messages that do not exist. A blocking publish
        // does so only once it has waited a round: the head slot is the
        // line a working consumer writes (at every limit hit, batched
        // throughput fell by 10 %).
        let policy = self.agent.queue.segment().config.overflow.unwrap_or_default();
        if (policy != Overflow::Block || deadline.is_some()) && self.agent.queue.ring.skip_dead_head() {
            return Ok(None);
        }
        match policy {
            Overflow::Reject | Overflow::RejectPublishDlx => {
                // Room may be held by a dead consumer: a publisher that only
                // ever hears "full" still sweeps.
                self.agent.tick(1);
                Err(PublishError::QueueFull)
            }
            Overflow::DropOldest => {
                if self.discard_oldest() {
                    bump(&self.counters().dropped, 1);
                    return Ok(None);
                }
                // Nothing ready to drop: claims in flight count as ready
                // until committed, so wait for them, as long as the publish
                // timeout allows (a second if none is set: longer means a
                // damaged ring, not a slow producer).
                self.agent.maybe_recover(false);
                if deadline.is_none() && self.timeout.is_none() {
                    *deadline = Some(Some(Instant::now() + Duration::from_secs(1)));
                }
                match self.wait(WaitReason::QueueFull, units, deadline) {
                    Err(PublishError::Timeout) => Err(PublishError::QueueFull),
                    other => other,
                }
            }
            // A message the limits can never take (max_length 0, or alone
            // over max_length_bytes) would wait for ever: refuse it.
            Overflow::Block if self.never_fits(self.claim_bytes) => Err(PublishError::QueueFull),
            Overflow::Block => self.wait(WaitReason::QueueFull, units, deadline),
        }
    }

    /// Discards the queue's oldest ready message, oldest ring first.
    fn discard_oldest(&mut self) -> bool {
        let seq = self.agent.queue.seq();
        for older in self.chain.head()..seq {
            let Ok(Some(queue)) = self.chain.segment(older) else { continue };
            let Ok(agent) = Agent::attach(queue, self.agent.peer.clone(), ROLE_PRODUCER, 0) else { continue };
            if drop_oldest(&agent, &mut self.dead_letters) {
                agent.queue.ring.notify_producers();
                return true;
            }
        }
        let discarded = drop_oldest(&self.agent, &mut self.dead_letters);
        if discarded {
            self.agent.queue.ring.reclaim();
        }
        discarded
    }

    /// Waits for room once (a wake-up, or a slice of at most 50 ms), after
    /// spinning briefly; the caller claims again. `Timeout` once the publish
    /// timeout passed; `Interrupted` if the wait hook says so.
    fn wait(&mut self, reason: WaitReason, units: &[u32], deadline: &mut Option<Option<Instant>>) -> Result<Option<Claim>, PublishError> {
        let deadline = *deadline.get_or_insert_with(|| self.timeout.map(|t| Instant::now() + t));
        self.stalled = Some((Instant::now(), reason));
        if let Some(hook) = &self.wait_hook {
            if !hook(reason) {
                return Err(PublishError::Interrupted);
            }
        }
        let waiting = |outcome: &Result<Claim, ClaimError>| matches!(outcome, Err(ClaimError::Full) | Err(ClaimError::Limit));
        let mut outcome = Err(ClaimError::Full);
        if spin_until(|| {
            outcome = self.try_claim(units);
            !waiting(&outcome)
        }) {
            return Ok(outcome.ok());
        }
        if self.chain.is_deleted() {
            return Err(PublishError::QueueDeleted);
        }
        let most = if reason == WaitReason::MemoryBudget { BUDGET_WAIT_SLICE } else { WAIT_SLICE };
        if self.busy_poll {
            // Spin for the slice a sleep would take, so that the wait hook
            // and the caller's growth and budget checks run as often. The
            // eventcount is not armed: armed, it would cost every consumer
            // that frees room a wake syscall.
            let until = Instant::now() + wait_slice(deadline, most).ok_or(PublishError::Timeout)?;
            let mut spins: u32 = 0;
            loop {
                let outcome = self.try_claim(units);
                if !waiting(&outcome) {
                    return Ok(outcome.ok());
                }
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(256) && Instant::now() >= until {
                    break;
                }
                core::hint::spin_loop();
            }
        } else {
            let (queue, ticket) = self.arm_not_full();
            let outcome = self.try_claim(units);
            if !waiting(&outcome) {
                return Ok(outcome.ok());
            }
            let slice = wait_slice(deadline, most).ok_or(PublishError::Timeout)?;
            queue.ring.not_full().wait(ticket, Some(slice));
        }
        self.after_sleep();
        Ok(None)
    }

    /// The publish timeout set with `set_publish_timeout` (the async
    /// producer takes it over).
    #[cfg(feature = "async")]
    pub(crate) fn publish_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Arms the eventcount a publish waiting for room sleeps on and returns
    /// it (with the mapping that holds it) and the ticket; the caller
    /// re-checks before it sleeps (the async producer's sleep too).
    pub(crate) fn arm_not_full(&self) -> (Arc<QueueHandle>, u32) {
        let queue = self.agent.queue.clone();
        let ticket = queue.ring.not_full().prepare_wait();
        (queue, ticket)
    }

    /// After a sleep for room: room may be held by dead consumers' unacked
    /// messages (in this producer's ring, or a priority level's).
    pub(crate) fn after_sleep(&self) {
        self.agent.maybe_recover(false);
        for level in self.levels.iter().flat_map(|l| l.producers.iter().flatten()) {
            level.agent.maybe_recover(false);
        }
    }

    /// For the async producer, after a publish the wait hook interrupted:
    /// arms the ring that publish waited on (a priority level's, or this
    /// producer's own) and returns it, the ticket, and why it waited.
    #[cfg(feature = "async")]
    pub(crate) fn arm_stalled(&mut self) -> (Arc<QueueHandle>, u32, WaitReason) {
        // The latest stall is this publish's; older ones are stale (an
        // earlier publish's, whose retry then found room).
        let latest = |p: &Producer| p.stalled.map(|(at, _)| at);
        let own = latest(self);
        let level = self
            .levels
            .as_mut()
            .and_then(|l| l.producers.iter_mut().flatten().filter(|p| p.stalled.is_some()).max_by_key(|p| latest(p)))
            .filter(|level| latest(level) > own);
        let stalled = match level {
            Some(level) => level,
            None => self,
        };
        let reason = stalled.stalled.take().map_or(WaitReason::QueueFull, |(_, reason)| reason);
        let (queue, ticket) = stalled.arm_not_full();
        self.stalled = None;
        for level in self.level_producers() {
            level.stalled = None;
        }
        (queue, ticket, reason)
    }
}

/// The expiry stamp of a message enqueued now with `ttl` (0: none).
#[inline]
fn expiry(ttl: Option<u64>) -> u64 {
    // Within the expiry's 48 bits whatever the clock says: the bits above
    // count requeues.
    ttl.map_or(0, |ttl| now_ms().saturating_add(ttl).clamp(1, (1 << crate::ring::EXPIRY_BITS) - 1))
}

impl Reservation<'_> {
    /// The body bytes to fill in, in shared memory.
    ///
    /// # Examples
    /// See [`Reservation`].
    pub fn body_mut(&mut self) -> &mut [u8] {
        self.producer.claimed_body(self.start, self.props_len, self.body_len)
    }

    /// Makes the message deliverable.
    ///
    /// # Examples
    /// See [`Reservation`].
    pub fn commit(mut self) {
        self.committed = true;
        let agent = &self.producer.agent;
        let ring = &agent.queue.ring;
        ring.commit(self.pos, self.start, self.end, self.props_len, self.body_len, self.expires_at_ms);
        self.producer.claim_committed(1);
    }
}

impl BatchReservation<'_> {
    /// How many messages the batch holds.
    ///
    /// # Examples
    /// See [`Producer::reserve_batch`].
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: a batch holds at least one message.
    ///
    /// # Examples
    /// See [`Producer::reserve_batch`].
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Message `index`'s body bytes to fill in, in shared memory.
    ///
    /// # Panics
    /// If `index` is not below [`len`](BatchReservation::len).
    ///
    /// # Examples
    /// See [`Producer::reserve_batch`].
    pub fn body_mut(&mut self, index: usize) -> &mut [u8] {
        assert!(index < self.count, "message {index} of a batch of {}", self.count);
        let (start, _, body_len) = self.records[index];
        self.producer.claimed_body(start, self.props_len, body_len)
    }

    /// Makes every message deliverable, in order, with one wake-up.
    ///
    /// # Examples
    /// See [`Producer::reserve_batch`].
    pub fn commit(mut self) {
        self.committed = true;
        let agent = &self.producer.agent;
        let ring = &agent.queue.ring;
        for (i, &(start, end, body_len)) in self.records[..self.count].iter().enumerate() {
            ring.commit(self.first.wrapping_add(i as u32), start, end, self.props_len, body_len, self.expires_at_ms);
        }
        self.producer.claim_committed(self.count as u32);
    }
}

impl Drop for BatchReservation<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.producer.abandon_claim(self.first, self.count as u32, self.bytes);
        }
    }
}

impl std::fmt::Debug for BatchReservation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchReservation").field("first", &self.first).field("count", &self.count).finish()
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.producer.abandon_claim(self.pos, 1, u64::from(self.body_len));
        }
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("queue", &self.queue_name()).field("agent", &self.agent.owner).finish()
    }
}
