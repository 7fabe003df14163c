//! The ring's shared structures, `#[repr(C)]` so that the same bytes mean the
//! same thing in every process. docs/LAYOUT.md gives the byte-exact offsets;
//! the asserts at the bottom pin them.

use crate::sync::{AtomicU32, AtomicU64, EventCount};

/// Bytes in one cache-line-isolated block. 128, not 64: adjacent-line
/// prefetch on x86-64 pulls lines in pairs.
#[cfg_attr(shmq_loom, allow(dead_code))]
pub(crate) const LINE: usize = 128;

/// How many producer/consumer handles one queue can have attached at once.
#[cfg(not(shmq_loom))]
pub const AGENT_SLOTS: usize = 64;
/// Fewer agents under loom keep the models small.
#[cfg(shmq_loom)]
pub const AGENT_SLOTS: usize = 4;

/// Bytes per data unit; every record starts on a unit boundary.
pub(crate) const UNIT: usize = 8;

/// A value alone on its own pair of cache lines. Our own type, so that the
/// cross-process ABI does not depend on a dependency's choice of padding.
#[repr(C, align(128))]
pub struct Line<T>(pub(crate) T);

impl<T> core::ops::Deref for Line<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Rarely-written queue state, kept off the hot cursors' lines.
#[repr(C)]
pub struct QueueState {
    /// Non-zero once the queue was deleted; attached handles see it and stop.
    pub(crate) deleted: AtomicU32,
    /// Non-zero once a consumer attached: an auto-delete queue is deleted
    /// when it has none left after having had one.
    pub(crate) had_consumer: AtomicU32,
    /// Counters of agents that left, folded in so rates survive them.
    pub(crate) retired: Counters,
    /// Unix ms when the queue was last used (a consumer attached or left,
    /// a `basic.get`, a redeclare): `x-expires` counts from it.
    pub(crate) last_used_ms: AtomicU64,
    /// 0, or 1 + the owner id of the exclusive consumer that holds the
    /// queue (AMQP's `basic.consume` with `exclusive`). Stale once that
    /// agent row is free or reused (a later generation).
    pub(crate) exclusive_consumer: AtomicU64,
    /// Single active consumer queues: 0, or 1 + the owner id of the one
    /// consumer that receives. Stale once that agent row is free or reused.
    pub(crate) active_consumer: AtomicU64,
    /// The next consumer registration ticket (never 0): the oldest live
    /// ticket is next in line to be the single active consumer.
    pub(crate) next_ticket: AtomicU32,
    /// Non-zero once a consumer with a priority other than 0 attached:
    /// consumers then defer to higher-priority ones. Never cleared.
    pub(crate) ranked_consumers: AtomicU32,
    /// Priority queues: bit `k` is set once level `k`'s first segment
    /// exists (src/queue/priority.rs). Never cleared.
    pub(crate) levels: [AtomicU64; 4],
}

/// Per-agent (or retired) message counters.
#[repr(C)]
pub struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) redelivered: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) expired: AtomicU64,
    /// Messages that left to a dead-letter exchange (any reason).
    pub(crate) dead_lettered: AtomicU64,
}

/// The producers' line: the claim cursor and the count of its long strides.
#[repr(C)]
pub struct ProduceLine {
    /// `(next slot position, next data unit)` producers claim from.
    pub(crate) cursor: AtomicU64,
    /// Bumped by a producer *before* a claim that moves either half of
    /// `cursor` across a multiple of [`EPOCH_STRIDE`]: a cached reclaim
    /// position taken under the same epoch is less than a stride (plus one
    /// ring) behind, so wrapping `u32` comparisons with it are exact.
    pub(crate) epoch: AtomicU32,
}

/// Positions per epoch (2^28): far below the 2^31 at which wrapping
/// comparisons turn ambiguous, far above any ring, so epochs move rarely.
pub(crate) const EPOCH_STRIDE_BITS: u32 = 28;

/// The ring's cursors, each on its own line.
#[repr(C)]
pub struct RingHeader {
    /// The claim cursor and its epoch.
    pub(crate) produce: Line<ProduceLine>,
    /// Next slot position to dispatch to a consumer.
    pub(crate) read: Line<AtomicU32>,
    /// `(first unreclaimed slot, first unreclaimed data unit)`.
    pub(crate) reclaim: Line<AtomicU64>,
    /// Non-zero while a requeued READY slot may lie below `read`: consumers
    /// scan `[reclaim, read)` only then. A flag, not a count, so that a
    /// process killed mid-update cannot leave it wrong for ever.
    pub(crate) requeued: Line<AtomicU32>,
    /// Bumped when messages become deliverable; consumers sleep on it.
    pub(crate) not_empty: Line<EventCount>,
    /// Bumped when space is reclaimed; blocked publishers sleep on it.
    pub(crate) not_full: Line<EventCount>,
    pub(crate) state: Line<QueueState>,
    /// Growth: whether this ring still takes claims, and (in a queue's
    /// first segment) which segments form the queue.
    pub(crate) chain: Line<ChainState>,
}

/// A ring's place in its queue's chain of segments (docs/ARCHITECTURE.md,
/// "Elastic queues"). Producers read `closed` on every claim; the rest is
/// written once per growth step, so the line stays shared in every cache.
#[repr(C)]
pub struct ChainState {
    /// Non-zero once this ring takes no more claims: producers moved to a
    /// later segment. Never cleared.
    pub(crate) closed: AtomicU32,
    pub(crate) reserved: AtomicU32,
    /// First segment only: the sequence number of the oldest segment that
    /// may still hold messages.
    pub(crate) head: AtomicU64,
    /// First segment only: the sequence number of the segment producers
    /// claim in.
    pub(crate) tail: AtomicU64,
    /// Body bytes of the messages claimed in this ring and not yet taken
    /// (kept only for queues with `max_length_bytes`).
    pub(crate) ready_bytes: AtomicU64,
}

/// One message's slot. The control word is the only thing CASed; the rest
/// is written by the slot's producer before it publishes READY.
#[repr(C)]
pub struct Slot {
    pub(crate) control: AtomicU64,
    /// First data unit of the record (wrapping position).
    pub(crate) data_start: AtomicU32,
    /// One past the last data unit of the record (wrapping position).
    pub(crate) data_end: AtomicU32,
    /// Bytes of encoded properties at the start of the record.
    pub(crate) props_len: AtomicU32,
    /// Bytes of body after the properties.
    pub(crate) body_len: AtomicU32,
    /// Wall-clock expiry in Unix milliseconds; 0 means never.
    pub(crate) expires_at_ms: AtomicU64,
}

/// Agent roles, as stored in [`AgentSlot::role`].
#[cfg_attr(shmq_loom, allow(dead_code))]
pub(crate) const ROLE_PRODUCER: u32 = 1;
/// See [`ROLE_PRODUCER`].
#[cfg_attr(shmq_loom, allow(dead_code))]
pub(crate) const ROLE_CONSUMER: u32 = 2;
/// A handle that takes messages for `basic.get`: it holds and settles them
/// as a consumer does, but is not counted as a consumer (stats,
/// auto-delete, `x-expires`), as RabbitMQ does not count `basic.get`.
#[cfg_attr(shmq_loom, allow(dead_code))]
pub(crate) const ROLE_GETTER: u32 = 3;

/// One attached producer or consumer handle.
#[repr(C, align(128))]
pub struct AgentSlot {
    /// 0 = free; otherwise the owning process's liveness token.
    pub(crate) token: AtomicU64,
    /// `(first slot, count)` of this agent's latest claim, stored before the
    /// claiming CAS: recovery never abandons a slot a live intent covers.
    pub(crate) intent: AtomicU64,
    pub(crate) role: AtomicU32,
    pub(crate) pid: AtomicU32,
    /// Messages this consumer holds unacked; written only by its owner.
    pub(crate) unacked: AtomicU32,
    pub(crate) prefetch: AtomicU32,
    pub(crate) counters: Counters,
    /// Bumped by each registration; its low bits go into the owner id of
    /// every delivery, so a sweeper that raced a reuse of this row can never
    /// requeue the new holder's deliveries (see [`owner_id`]).
    pub(crate) generation: AtomicU32,
    /// A consumer's registration ticket (see `QueueState::next_ticket`);
    /// 0 while the row is being registered or holds no consumer.
    pub(crate) ticket: AtomicU32,
    /// 0, or the liveness token of the sweeper freeing this row for a dead
    /// holder: sweepers take it by CAS, so only one resets the row, and a
    /// sweeper that died holding it is replaced by the next.
    pub(crate) releasing: AtomicU64,
    /// A consumer's priority (`x-priority`, an i32's bits); 0 by default.
    pub(crate) priority: AtomicU32,
    /// How many more messages this consumer can take now (prefetch room;
    /// `u32::MAX` unlimited), as it last published: 0 means blocked, and
    /// lower-priority consumers may take messages (see
    /// `src/ring/consumer_priority.rs`).
    pub(crate) credit: AtomicU32,
}

/// Bits of an owner id that name the agent row; the rest hold the row's
/// generation.
pub(crate) const OWNER_INDEX_BITS: u32 = 6;
const _: () = assert!(AGENT_SLOTS <= 1 << OWNER_INDEX_BITS);

/// The owner id stored in a DELIVERED slot: row `index` in its `generation`
/// (mod 2^10). A stale sweeper would have to sleep through 1024
/// registrations of one row to confuse two holders.
#[inline]
pub(crate) const fn owner_id(index: usize, generation: u32) -> u16 {
    (index as u16) | ((generation as u16) << OWNER_INDEX_BITS)
}

/// The agent row an owner id names.
#[inline]
pub(crate) const fn owner_index(owner: u16) -> usize {
    (owner & ((1 << OWNER_INDEX_BITS) - 1)) as usize
}

#[cfg(not(shmq_loom))]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Slot>() == 32);
    assert!(offset_of!(Slot, control) == 0);
    assert!(offset_of!(Slot, data_start) == 8);
    assert!(offset_of!(Slot, data_end) == 12);
    assert!(offset_of!(Slot, props_len) == 16);
    assert!(offset_of!(Slot, body_len) == 20);
    assert!(offset_of!(Slot, expires_at_ms) == 24);
    assert!(size_of::<AgentSlot>() == 128 && align_of::<AgentSlot>() == 128);
    assert!(offset_of!(AgentSlot, intent) == 8);
    assert!(offset_of!(AgentSlot, unacked) == 24);
    assert!(offset_of!(AgentSlot, counters) == 32);
    assert!(offset_of!(AgentSlot, generation) == 88);
    assert!(offset_of!(AgentSlot, releasing) == 96);
    assert!(offset_of!(ProduceLine, epoch) == 8);
    assert!(size_of::<Counters>() == 56);
    assert!(offset_of!(QueueState, last_used_ms) == 64);
    assert!(offset_of!(QueueState, exclusive_consumer) == 72);
    assert!(offset_of!(QueueState, active_consumer) == 80);
    assert!(offset_of!(QueueState, next_ticket) == 88);
    assert!(offset_of!(AgentSlot, ticket) == 92);
    assert!(offset_of!(QueueState, ranked_consumers) == 92);
    assert!(offset_of!(QueueState, levels) == 96);
    assert!(size_of::<QueueState>() <= LINE);
    assert!(offset_of!(AgentSlot, priority) == 104);
    assert!(offset_of!(AgentSlot, credit) == 108);
    assert!(size_of::<RingHeader>() == 8 * LINE);
    assert!(offset_of!(RingHeader, produce) == 0);
    assert!(offset_of!(RingHeader, read) == LINE);
    assert!(offset_of!(RingHeader, reclaim) == 2 * LINE);
    assert!(offset_of!(RingHeader, requeued) == 3 * LINE);
    assert!(offset_of!(RingHeader, not_empty) == 4 * LINE);
    assert!(offset_of!(RingHeader, not_full) == 5 * LINE);
    assert!(offset_of!(RingHeader, state) == 6 * LINE);
    assert!(offset_of!(RingHeader, chain) == 7 * LINE);
    assert!(offset_of!(ChainState, head) == 8);
    assert!(offset_of!(ChainState, tail) == 16);
    assert!(offset_of!(ChainState, ready_bytes) == 24);
};
