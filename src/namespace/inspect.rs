//! Looking into a namespace without consuming: peeking at messages and
//! listing consumers, for tools (`shmq peek`, `shmq list-consumers`).

use crate::error::Error;
use crate::message::PropertiesRef;
use crate::namespace::Namespace;
use crate::queue::chain::Chain;
use crate::ring::layout::{owner_id, AGENT_SLOTS, ROLE_CONSUMER, ROLE_GETTER, ROLE_PRODUCER};
use crate::ring::RingMemory;
use crate::sync::Ordering;

/// A copy of a ready message, taken without consuming it.
///
/// # Examples
/// See [`Namespace::peek`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeekedMessage {
    props: Vec<u8>,
    /// The body.
    pub body: Vec<u8>,
    /// True if it was delivered before and requeued.
    pub redelivered: bool,
}

impl PeekedMessage {
    /// The message's properties.
    ///
    /// # Examples
    /// See [`Namespace::peek`].
    pub fn properties(&self) -> PropertiesRef<'_> {
        PropertiesRef::parse(&self.props).unwrap_or_default()
    }
}

/// One attached consumer or producer of a queue.
///
/// # Examples
/// See [`Namespace::list_consumers`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleInfo {
    /// The queue.
    pub queue: String,
    /// "consumer" or "producer".
    pub role: &'static str,
    /// The owning process.
    pub pid: u32,
    /// Whether that process is alive (a dead one awaits recovery).
    pub alive: bool,
    /// Prefetch limit (consumers; 0 = unlimited).
    pub prefetch: u32,
    /// Deliveries held unacked (consumers).
    pub unacked: u32,
    /// Messages published by this handle.
    pub published: u64,
    /// Messages delivered to this handle.
    pub delivered: u64,
    /// Messages acked by this handle.
    pub acked: u64,
    /// A consumer that receives: every consumer, except on a
    /// single-active-consumer queue, where only the active one does.
    pub active: bool,
}

impl Namespace {
    /// Copies up to `max` ready messages of `queue`, oldest first, without
    /// consuming them or changing their state. Messages taken by consumers
    /// while it looks are skipped.
    ///
    /// # Errors
    /// `QueueNotFound`, `Corrupt`, ...
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-peek-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &Default::default()).unwrap();
    /// ns.producer("q").unwrap().publish_with(&shmq::Properties::new().message_id("m1"), b"look").unwrap();
    /// let seen = ns.peek("q", 10).unwrap();
    /// assert_eq!((seen[0].body.as_slice(), seen[0].properties().message_id), (&b"look"[..], Some("m1")));
    /// assert_eq!(ns.queue_stats("q").unwrap().ready, 1); // still there
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn peek(&self, queue: &str, max: usize) -> Result<Vec<PeekedMessage>, Error> {
        let mut out = Vec::new();
        // A priority queue's highest level first: the order of delivery.
        for handle in self.chains(queue)?.iter().flat_map(Chain::segments) {
            let ring = &handle.ring;
            for pos in ring.live_positions() {
                if out.len() >= max {
                    break;
                }
                let Some((word, record)) = ring.ready_snapshot(pos) else { continue };
                let segment = ring.memory();
                let offset = ring.data_offset(record.data_start);
                // Lengths come from shared memory: checked arithmetic, and
                // `copy_racy` bounds both copies by the mapping.
                let body_offset = offset.checked_add(record.props_len as usize);
                let (Some(props), Some(body)) = (
                    segment.copy_racy(offset, record.props_len as usize),
                    body_offset.and_then(|at| segment.copy_racy(at, record.body_len as usize)),
                ) else {
                    continue;
                };
                if ring.control_unchanged(pos, word) {
                    out.push(PeekedMessage { props, body, redelivered: record.redelivered() });
                }
            }
        }
        Ok(out)
    }

    /// Every producer and consumer handle attached to any queue.
    ///
    /// # Errors
    /// `Io` if the namespace cannot be listed.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-lc-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &Default::default()).unwrap();
    /// let consumer = ns.consumer("q", shmq::ConsumerOptions::default().manual_ack().prefetch(5)).unwrap();
    /// let handles = ns.list_consumers().unwrap();
    /// assert_eq!((handles[0].role, handles[0].prefetch, handles[0].pid), ("consumer", 5, std::process::id()));
    /// # drop(consumer); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn list_consumers(&self) -> Result<Vec<HandleInfo>, Error> {
        let dir = &self.shared.dir;
        let mut out = Vec::new();
        for queue in self.list_queues()? {
            let Ok(segment) = self.open_segment(&queue) else { continue };
            // SYNC POINT ACTIVE: pairs with the CAS in `Ring::elect_active`.
            let active_word = segment.header().state.active_consumer.load(Ordering::Acquire);
            for index in 0..AGENT_SLOTS {
                let agent = segment.agent(index);
                // SYNC POINT AGENT: pairs with `register_agent`/`release_agent`.
                let token = agent.token.load(Ordering::Acquire);
                if token == 0 {
                    continue;
                }
                let role = match agent.role.load(Ordering::Relaxed) {
                    ROLE_CONSUMER => "consumer",
                    ROLE_PRODUCER => "producer",
                    ROLE_GETTER => "get",
                    _ => continue,
                };
                out.push(HandleInfo {
                    queue: queue.clone(),
                    role,
                    pid: agent.pid.load(Ordering::Relaxed),
                    alive: crate::liveness::is_alive(dir, token),
                    prefetch: agent.prefetch.load(Ordering::Relaxed),
                    unacked: agent.unacked.load(Ordering::Relaxed),
                    published: agent.counters.published.load(Ordering::Relaxed),
                    delivered: agent.counters.delivered.load(Ordering::Relaxed),
                    acked: agent.counters.acked.load(Ordering::Relaxed),
                    active: role == "consumer"
                        && (!segment.config.single_active_consumer
                            || active_word == u64::from(owner_id(index, agent.generation.load(Ordering::Relaxed))) + 1),
                });
            }
        }
        Ok(out)
    }
}
