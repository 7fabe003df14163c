//! Queue statistics, read from a queue's segment. Counters come from shared
//! memory and are summed with saturating arithmetic: a damaged or hostile
//! segment shows large numbers, never a panic or a wrapped total.

use super::Namespace;
use crate::error::Error;
use crate::options::QueueOptions;
use crate::queue::chain::Chain;
use crate::ring::layout::{ROLE_CONSUMER, ROLE_GETTER, ROLE_PRODUCER};
use crate::ring::RingMemory;
use crate::sync::Ordering;

/// Counts and figures of one queue. Stale as soon as it is returned when
/// other processes are active.
///
/// # Examples
/// See [`Namespace::queue_stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue's name.
    pub name: String,
    /// Messages waiting for a consumer (including in-flight publishes).
    pub ready: u64,
    /// Messages delivered and not yet acked.
    pub unacked: u64,
    /// Attached consumers.
    pub consumers: u32,
    /// Attached producers.
    pub producers: u32,
    /// Data bytes in use (ready, unacked, and not yet reclaimed).
    pub bytes_used: u64,
    /// Data bytes of the queue's rings now (it grows and shrinks with its
    /// backlog).
    pub capacity_bytes: u64,
    /// Rings the queue has now (1 unless it grew for a backlog).
    pub rings: u32,
    /// The options the queue was declared with.
    pub options: QueueOptions,
    /// Messages published, ever.
    pub published: u64,
    /// Deliveries, ever (redeliveries included).
    pub delivered: u64,
    /// Acks, ever.
    pub acked: u64,
    /// Redeliveries, ever.
    pub redelivered: u64,
    /// Messages dropped by the drop-oldest policy, ever.
    pub dropped: u64,
    /// Messages that expired, ever (dead-lettered or discarded).
    pub expired: u64,
    /// Messages republished to the queue's dead-letter exchange, ever.
    pub dead_lettered: u64,
}

impl Namespace {
    /// Checks that a queue exists (RabbitMQ's passive declare) and returns
    /// its stats.
    ///
    /// # Errors
    /// `QueueNotFound` (with a did-you-mean), `Corrupt`, ...
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-passive-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// assert!(ns.declare_queue_passive("missing").is_err());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn declare_queue_passive(&self, name: &str) -> Result<QueueStats, Error> {
        let chain = self.chain(name)?;
        // A declare, passive or not, renews `x-expires`, as in RabbitMQ.
        super::housekeeping::touch(chain.first.segment());
        Ok(self.stats_of(&chain))
    }

    /// Stats of a queue.
    ///
    /// # Errors
    /// As [`declare_queue_passive`](Namespace::declare_queue_passive).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-stats-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// let stats = ns.queue_stats("q").unwrap();
    /// assert_eq!((stats.ready, stats.unacked, stats.consumers), (0, 0, 0));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn queue_stats(&self, name: &str) -> Result<QueueStats, Error> {
        Ok(self.stats_of(&self.chain(name)?))
    }

    /// Stats of a queue's chain: sizes summed over its rings; counters and
    /// handles from its first segment, where every handle keeps its row.
    /// A priority queue's levels add their messages, rings and counters
    /// (their handles are the level-0 ones').
    pub(super) fn stats_of(&self, chain: &Chain) -> QueueStats {
        let segment = chain.first.segment();
        let mut options = segment.config.options();
        // Kept in the routing table's registry, not in the segment.
        if let Some((owner, auto_delete)) = self.shared.router().ok().and_then(|router| router.queue_meta(&segment.config.name)) {
            options.exclusive = owner != 0;
            options.auto_delete = auto_delete;
        }
        let mut stats = QueueStats { name: segment.config.name.clone(), options, ..QueueStats::default() };
        add_chain(&mut stats, chain, true);
        for level in crate::queue::priority::existing_levels(&chain.first) {
            add_chain(&mut stats, &Chain::new(level), false);
        }
        stats
    }
}

/// Adds one chain's messages, rings and counters to `stats`, and its
/// handles if `handles`.
fn add_chain(stats: &mut QueueStats, chain: &Chain, handles: bool) {
    let segment = chain.first.segment();
    let (ready, bytes_used) = chain.depth();
    let rings = chain.segments();
    stats.ready += ready;
    stats.bytes_used += bytes_used;
    stats.capacity_bytes += rings.iter().map(|r| u64::from(r.ring.geometry().data_units) * crate::ring::layout::UNIT as u64).sum::<u64>();
    stats.rings += rings.len() as u32;
    {
        let add = |stats: &mut QueueStats, c: &crate::ring::layout::Counters| {
            stats.published = stats.published.saturating_add(c.published.load(Ordering::Relaxed));
            stats.delivered = stats.delivered.saturating_add(c.delivered.load(Ordering::Relaxed));
            stats.acked = stats.acked.saturating_add(c.acked.load(Ordering::Relaxed));
            stats.redelivered = stats.redelivered.saturating_add(c.redelivered.load(Ordering::Relaxed));
            stats.dropped = stats.dropped.saturating_add(c.dropped.load(Ordering::Relaxed));
            stats.expired = stats.expired.saturating_add(c.expired.load(Ordering::Relaxed));
            stats.dead_lettered = stats.dead_lettered.saturating_add(c.dead_lettered.load(Ordering::Relaxed));
        };
        add(stats, segment.retired());
        for index in 0..crate::ring::layout::AGENT_SLOTS {
            let agent = segment.agent(index);
            // SYNC POINT AGENT: pairs with `register_agent`/`release_agent`.
            if agent.token.load(Ordering::Acquire) == 0 {
                continue;
            }
            add(stats, &agent.counters);
            match agent.role.load(Ordering::Relaxed) {
                // A level's rows count no unacked: their consumer's row at
                // level 0 shows its total.
                ROLE_CONSUMER if handles => {
                    stats.consumers = stats.consumers.saturating_add(1);
                    stats.unacked = stats.unacked.saturating_add(u64::from(agent.unacked.load(Ordering::Relaxed)));
                }
                // `basic.get` holds messages unacked but is no consumer.
                ROLE_GETTER if handles => stats.unacked = stats.unacked.saturating_add(u64::from(agent.unacked.load(Ordering::Relaxed))),
                ROLE_PRODUCER => stats.producers = stats.producers.saturating_add(u32::from(handles)),
                _ => {}
            }
        }
    }
}
