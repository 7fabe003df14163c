//! Publishing.

use std::time::{Duration, Instant};

use super::{bump, now_ms, spin_until, Agent, WAIT_SLICE};
use crate::error::PublishError;
use crate::message::Properties;
use crate::options::Overflow;
use crate::ring::layout::UNIT;
use crate::ring::{Claim, ClaimError, ReclaimHint, RingMemory};

/// Most messages one `publish_batch` call claims at once.
pub const MAX_BATCH: usize = 64;

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
    agent: Agent,
    timeout: Option<Duration>,
    /// Last seen reclaim cursor; see `Ring::try_claim`.
    reclaim_hint: ReclaimHint,
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

struct Encoded {
    props_len: usize,
    units: u32,
    expires_at_ms: u64,
}

impl Producer {
    pub(crate) fn new(agent: Agent) -> Self {
        Self { agent, timeout: None, reclaim_hint: ReclaimHint::default() }
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
        self.timeout = timeout;
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
    ///   `drop-oldest` queue whose messages are all unacked);
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
        let encoded = self.encode_size(properties, body.len())?;
        let claim = self.claim(&[encoded.units])?;
        let (start, end) = self.agent.queue.ring.place(claim.data, encoded.units);
        self.write_record(start, properties, encoded.props_len, body);
        let ring = &self.agent.queue.ring;
        ring.commit(claim.first, start, end, encoded.props_len as u32, body.len() as u32, encoded.expires_at_ms);
        ring.claim_done(self.agent.owner);
        bump(&self.agent.counters().published, 1);
        ring.notify_consumers();
        self.agent.tick(1);
        Ok(())
    }

    /// Publishes several bodies (no properties) with one claim and one
    /// wake-up per chunk: the fast path for throughput. A chunk is up to 64
    /// messages, no more than the ring's slots and half its bytes, so any
    /// batch fits. Returns how many were published, which is all of them
    /// unless an error stopped it midway.
    ///
    /// # Errors
    /// As [`publish_with`](Producer::publish_with); messages before the
    /// failing one were published.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-batch-{}", std::process::id()));
    /// # let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// # ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let mut producer = ns.producer("q").unwrap();
    /// let bodies: [&[u8]; 3] = [b"a", b"b", b"c"];
    /// assert_eq!(producer.publish_batch(&bodies).unwrap(), 3);
    /// # drop(producer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn publish_batch(&mut self, bodies: &[&[u8]]) -> Result<usize, PublishError> {
        let mut done = 0;
        let props = Properties::new();
        let geometry = self.agent.queue.ring.geometry();
        // A chunk must fit an empty ring, or its claim could never succeed:
        // at most half the data (so wrap padding fits too) and the slots.
        let max_units = u64::from(geometry.data_units / 2);
        let max_count = MAX_BATCH.min(geometry.slot_count as usize);
        while done < bodies.len() {
            let mut units = [0u32; MAX_BATCH];
            let mut expires = 0;
            let mut count = 0;
            let mut total = 0u64;
            for body in &bodies[done..bodies.len().min(done + max_count)] {
                let encoded = match self.encode_size(&props, body.len()) {
                    Ok(encoded) => encoded,
                    // Publish what precedes the bad message; the next round
                    // starts at it and returns the error.
                    Err(_) if count > 0 => break,
                    Err(e) => return Err(e),
                };
                if count > 0 && total + u64::from(encoded.units) > max_units {
                    break;
                }
                total += u64::from(encoded.units);
                units[count] = encoded.units;
                expires = encoded.expires_at_ms;
                count += 1;
            }
            let chunk = &bodies[done..done + count];
            let units = &units[..count];
            let claim = self.claim(units)?;
            let ring = &self.agent.queue.ring;
            let mut data = claim.data;
            for (i, (body, &u)) in chunk.iter().zip(units).enumerate() {
                let (start, end) = ring.place(data, u);
                self.write_record(start, &props, 0, body);
                ring.commit(claim.first.wrapping_add(i as u32), start, end, 0, body.len() as u32, expires);
                data = end;
            }
            ring.claim_done(self.agent.owner);
            bump(&self.agent.counters().published, chunk.len() as u64);
            ring.notify_consumers();
            self.agent.tick(chunk.len() as u32);
            done += chunk.len();
        }
        Ok(done)
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
        let encoded = self.encode_size(properties, body_len)?;
        let claim = self.claim(&[encoded.units])?;
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

    fn encode_size(&self, properties: &Properties<'_>, body_len: usize) -> Result<Encoded, PublishError> {
        let props_len = properties.encoded_len()?;
        let total = props_len.saturating_add(body_len);
        let config = &self.agent.queue.segment().config;
        let limit = config.max_message_bytes as usize;
        if total > limit {
            return Err(PublishError::TooLarge { size: total, limit });
        }
        let ttl = match (properties.ttl_ms()?, config.message_ttl_ms) {
            (Some(a), 0) => Some(a),
            (Some(a), b) => Some(a.min(b)),
            (None, 0) => None,
            (None, b) => Some(b),
        };
        let expires_at_ms = ttl.map_or(0, |ttl| now_ms().saturating_add(ttl).max(1));
        Ok(Encoded { props_len, units: total.div_ceil(UNIT) as u32, expires_at_ms })
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
        self.agent.queue.ring.try_claim(self.agent.owner, units, &mut self.reclaim_hint)
    }

    /// Claims slots and data, applying the overflow policy when full.
    fn claim(&mut self, units: &[u32]) -> Result<Claim, PublishError> {
        if self.agent.queue.is_deleted() {
            return Err(PublishError::QueueDeleted);
        }
        match self.try_claim(units) {
            Ok(claim) => return Ok(claim),
            Err(ClaimError::Corrupt) => return Err(PublishError::Corrupt),
            Err(ClaimError::Full) => {}
        }
        match self.agent.queue.segment().config.overflow {
            Overflow::Reject => {
                // Space may be held by a dead consumer: a publisher that
                // only ever hears "full" still sweeps.
                self.agent.tick(1);
                Err(PublishError::QueueFull)
            }
            Overflow::DropOldest => loop {
                if !self.agent.queue.ring.discard_oldest(self.agent.owner) {
                    self.agent.maybe_recover(false);
                    return self.try_claim(units).map_err(claim_error);
                }
                bump(&self.agent.counters().dropped, 1);
                match self.try_claim(units) {
                    Err(ClaimError::Full) => {}
                    other => return other.map_err(claim_error),
                }
            },
            Overflow::Block => self.claim_blocking(units),
        }
    }

    fn claim_blocking(&mut self, units: &[u32]) -> Result<Claim, PublishError> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        loop {
            let mut outcome = Err(ClaimError::Full);
            spin_until(|| {
                outcome = self.try_claim(units);
                outcome != Err(ClaimError::Full)
            });
            match outcome {
                Err(ClaimError::Full) => {}
                other => return other.map_err(claim_error),
            }
            if self.agent.queue.is_deleted() {
                return Err(PublishError::QueueDeleted);
            }
            let queue = self.agent.queue.clone();
            let not_full = queue.ring.not_full();
            let ticket = not_full.prepare_wait();
            match self.try_claim(units) {
                Err(ClaimError::Full) => {}
                other => {
                    return other.map_err(claim_error);
                }
            }
            let slice = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(PublishError::Timeout);
                    }
                    (d - now).min(WAIT_SLICE)
                }
                None => WAIT_SLICE,
            };
            not_full.wait(ticket, Some(slice));
            // Space may be held by dead consumers' unacked messages.
            self.agent.maybe_recover(false);
        }
    }
}

fn claim_error(e: ClaimError) -> PublishError {
    match e {
        ClaimError::Full => PublishError::QueueFull,
        ClaimError::Corrupt => PublishError::Corrupt,
    }
}

impl Reservation<'_> {
    /// The body bytes to fill in, in shared memory.
    ///
    /// # Examples
    /// See [`Reservation`].
    pub fn body_mut(&mut self) -> &mut [u8] {
        let queue = &self.producer.agent.queue;
        let offset = queue.ring.data_offset(self.start) + self.props_len as usize;
        match queue.segment().data_ptr(offset, self.body_len as usize) {
            // SAFETY: the claimed record is ours until commit or drop, in
            // bounds (checked), and `&mut self` makes this borrow unique.
            Some(ptr) => unsafe { std::slice::from_raw_parts_mut(ptr, self.body_len as usize) },
            None => &mut [],
        }
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
        ring.claim_done(agent.owner);
        bump(&agent.counters().published, 1);
        ring.notify_consumers();
        agent.tick(1);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let ring = &self.producer.agent.queue.ring;
            ring.abandon(self.pos);
            ring.claim_done(self.producer.agent.owner);
            ring.notify_consumers();
        }
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("queue", &self.queue_name()).field("agent", &self.agent.owner).finish()
    }
}
