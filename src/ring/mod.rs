//! The queue algorithm: a bounded ring of message slots over a ring of data
//! bytes, with many producers, many competing consumers, acks, requeue and
//! crash recovery. Written once, generic over [`RingMemory`]: the mmap-backed
//! memory serves production, [`heap::HeapMemory`] serves loom and unit tests.
//!
//! Positions are wrapping `u32` counters. A slot's control word carries its
//! position as a stamp, so every state change is a CAS that cannot land on
//! the same slot in another lap. See docs/ARCHITECTURE.md for the protocol and
//! docs/MEMORY-ORDERS.md for every SYNC POINT.

mod consumer_priority;
pub(crate) mod control;
pub mod heap;
pub(crate) mod layout;
mod single_active;

use crate::sync::{spin_hint, Ordering};
use control::*;
pub(crate) use layout::owner_index;
use layout::*;

/// Limits on a ring's sizes that keep every offset computation far from
/// overflow, and every data position difference of one ring below 2^31 (the
/// produce epoch's argument needs that).
#[cfg_attr(shmq_loom, allow(dead_code))]
pub(crate) const MAX_SLOTS: u32 = 1 << 24;
/// See [`MAX_SLOTS`].
#[cfg_attr(shmq_loom, allow(dead_code))]
pub(crate) const MIN_DATA_UNITS: u32 = 16;
/// See [`MAX_SLOTS`].
#[cfg_attr(shmq_loom, allow(dead_code))]
pub(crate) const MAX_DATA_UNITS: u32 = 1 << 30;

/// Sizes of one ring, validated when the segment was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Number of message slots; a power of two.
    pub slot_count: u32,
    /// Number of 8-byte data units; a power of two.
    pub data_units: u32,
}

impl Geometry {
    /// Largest unit count a single record may take: with at most half the
    /// ring per record, a record plus its wrap padding always fits.
    pub(crate) fn max_record_units(&self) -> u32 {
        self.data_units / 2
    }
}

/// Where a ring's shared state lives.
pub trait RingMemory {
    /// The ring's sizes.
    fn geometry(&self) -> Geometry;
    /// True if the ring keeps a count of its ready messages' body bytes.
    fn counts_ready_bytes(&self) -> bool {
        false
    }
    /// What happens to messages that expire or are delivered too often.
    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::default()
    }
    /// The cursors.
    fn header(&self) -> &RingHeader;
    /// The slot at `index` (already masked: `index < slot_count`).
    fn slot(&self, index: u32) -> &Slot;
    /// The agent slot at `index < AGENT_SLOTS`.
    fn agent(&self, index: usize) -> &AgentSlot;
    /// Copies `src` to data byte `offset`; false if out of bounds.
    ///
    /// # Safety
    /// The caller must own the bytes: they lie in a record it claimed and has
    /// not committed.
    unsafe fn write_data(&self, offset: usize, src: &[u8]) -> bool;
    /// Copies data bytes from `offset` into `dst`; false if out of bounds.
    ///
    /// # Safety
    /// The bytes must lie in a record the caller holds DELIVERED.
    unsafe fn read_data(&self, offset: usize, dst: &mut [u8]) -> bool;
}

/// A successful claim: `count` slots from `first`, data from unit `data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Position of the first claimed slot.
    pub first: u32,
    /// Data position the claim started from (before any wrap padding).
    pub data: u32,
}

/// Why a claim failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// Not enough free slots or data.
    Full,
    /// The claim would take the ready messages past the caller's limit.
    Limit,
    /// The ring is closed: claim in the queue's next segment.
    Closed,
    /// The cursors are impossible; the segment is damaged.
    Corrupt,
}

/// What the ring does with messages that leave other than by ack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// Hand expired and over-delivered messages to the taker as
    /// [`Take::Dead`] (to dead-letter them, then settle) instead of
    /// discarding them in the ring.
    pub hold_dead: bool,
    /// A message requeued more than this many times is dead.
    pub delivery_limit: Option<u32>,
}

/// Low bits of a slot's `expires_at_ms` word: the expiry in Unix ms (2^48 ms
/// is 8900 years). The high 16 bits count the message's requeues.
pub const EXPIRY_BITS: u32 = 48;
const EXPIRY_MASK: u64 = (1 << EXPIRY_BITS) - 1;

/// Why a message dies (is dead-lettered, or discarded without a
/// dead-letter exchange), as RabbitMQ names it in `x-death`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Death {
    /// Rejected or nacked without requeue.
    Rejected,
    /// Its TTL passed.
    Expired,
    /// Dropped or refused at the queue's length limit.
    Maxlen,
    /// Requeued more than the queue's delivery limit.
    DeliveryLimit,
}

impl Death {
    /// RabbitMQ's name for it (`x-death`'s `reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Maxlen => "maxlen",
            Self::DeliveryLimit => "delivery_limit",
        }
    }

    /// Kept in a shelved slot's flags (bits 4-5).
    fn to_flags(self) -> u8 {
        (self as u8) << SHELVED_REASON_SHIFT
    }

    fn from_flags(flags: u8) -> Self {
        match (flags >> SHELVED_REASON_SHIFT) & 3 {
            0 => Self::Rejected,
            1 => Self::Expired,
            2 => Self::Maxlen,
            _ => Self::DeliveryLimit,
        }
    }
}

/// Set in the exclusive-consumer word once the claim is decided.
const EXCLUSIVE_CONFIRMED: u64 = 1 << 63;

/// How long a consumer waits for a tentative exclusive claim to be decided
/// (spin hints; a few milliseconds, against the claimer's few instructions).
const EXCLUSIVE_WAIT_SPINS: u32 = 1 << 20;

/// Where a shelved slot keeps its death's reason in its flags.
const SHELVED_REASON_SHIFT: u8 = 4;
const SHELVED_REASON_MASK: u8 = 3 << SHELVED_REASON_SHIFT;

/// One pass of the housekeeping over a ring's dead messages (see
/// [`Ring::dead_scan`]): where it goes on from.
#[derive(Debug)]
pub struct DeadScan {
    /// The next slot below `read` to look at; `None` once past them.
    below: Option<u32>,
}

/// A delivered record, as read (and validated) from its slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Slot position (the delivery tag).
    pub pos: u32,
    /// `FLAG_REDELIVERED` etc.
    pub flags: u8,
    /// First data unit.
    pub data_start: u32,
    /// Bytes of encoded properties.
    pub props_len: u32,
    /// Bytes of body.
    pub body_len: u32,
    /// Unix ms expiry, 0 = never.
    pub expires_at_ms: u64,
    /// Times the message was requeued before this delivery (saturating).
    pub delivery_count: u16,
}

impl Record {
    /// True if the message was delivered before.
    pub fn redelivered(&self) -> bool {
        self.flags & FLAG_REDELIVERED != 0
    }
}

/// What a consumer found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// A record, now DELIVERED to the caller.
    Got(Record),
    /// An expired record was discarded; try again.
    Expired,
    /// A record that must be dead-lettered (the ring's [`Lifecycle`] holds
    /// dead messages), DELIVERED to the caller: dead-letter it, then settle
    /// it `Done`; a taker that dies first leaves it to be requeued.
    Dead(Record, Death),
    /// Nothing to deliver.
    Empty,
    /// The next slot is claimed but not committed yet (slow or dead producer).
    Stalled(u32),
    /// The slot at this position held nonsense; it was discarded.
    Corrupt(u32),
}

/// What a READY slot holds, read before or after it is taken (see
/// [`Ring::inspect`]).
#[derive(Clone, Copy, Debug)]
enum Found {
    Live(Record),
    Dead(Record, Death),
    Corrupt,
}

/// Most slots one `take_batch` claims with one move of `read`.
const MAX_RUN: usize = 64;

/// What [`Ring::take_batch`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchTake {
    /// Records written to the output.
    pub got: usize,
    /// Expired records discarded on the way.
    pub expired: u32,
    /// Why the batch stopped early, if it did not simply run out of READY
    /// slots (`Empty`).
    pub last: Take,
}

impl Default for BatchTake {
    fn default() -> Self {
        Self { got: 0, expired: 0, last: Take::Empty }
    }
}

/// How a consumer settles a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Done with it (ack, or reject without requeue).
    Done,
    /// Put it back, flagged redelivered.
    Requeue,
    /// Put back a dead message whose dead-lettered copy could not be
    /// published, unchanged (not counted as a requeue, not flagged
    /// redelivered) and shelved: consumers skip it and the housekeeping
    /// retries its dead-lettering. It keeps its place and its reason.
    Shelve(Death),
}

/// What a recovery sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Messages of dead consumers put back as redelivered.
    pub requeued: u32,
    /// Slots of dead producers turned into skippable padding.
    pub abandoned: u32,
    /// Agent slots of dead processes freed.
    pub agents_freed: u32,
}

/// A producer's cached copy of the reclaim cursor (Agrona's cached head):
/// it keeps the consumers' line out of the publish path until space looks
/// short. Valid only under the produce epoch it was taken in, which bounds
/// how far positions can have moved since (see `ProduceLine` in the layout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReclaimHint {
    cursor: u64,
    epoch: u32,
    valid: bool,
    /// A cached `read` cursor for the `max_ready` check, valid under
    /// `read_epoch` (as `cursor` under `epoch`): `read` only grows, so a
    /// claim within the limit under the cached value is within it under
    /// the real one, and the consumers' line stays out of the publish path.
    read: u32,
    read_epoch: u32,
    read_valid: bool,
}

/// A row found dead and locked by a sweeper; `token` 0 = none.
#[derive(Clone, Copy, Debug, Default)]
struct DeadAgent {
    token: u64,
    owner: u16,
}

/// The ring algorithm over some memory.
pub struct Ring<M> {
    mem: M,
    geo: Geometry,
    /// Keep `ready_bytes` (queues with a byte limit only: it costs an atomic
    /// add on every take).
    count_bytes: bool,
    lifecycle: Lifecycle,
}

/// Bounds a claim must respect (see [`Ring::try_claim`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimLimits {
    /// Most messages between `read` and the end of the claim.
    pub max_ready: u32,
    /// Most body bytes of ready messages in this ring after the claim.
    pub max_ready_bytes: u64,
    /// Body bytes of the messages claimed.
    pub bytes: u64,
}

impl ClaimLimits {
    /// No limits.
    pub const NONE: ClaimLimits = ClaimLimits { max_ready: u32::MAX, max_ready_bytes: u64::MAX, bytes: 0 };
}

/// True if going from `from` to `to` passes a multiple of the epoch stride.
#[inline]
fn crosses_stride(from: u32, to: u32) -> bool {
    (from >> EPOCH_STRIDE_BITS) != (to >> EPOCH_STRIDE_BITS)
}

#[inline]
fn mask(pos: u32, count: u32) -> u32 {
    pos & (count - 1)
}

/// The slot index that holds position `pos`: consecutive positions share
/// cache lines, so a streaming consumer pulls four slots per line transfer.
/// (Spreading them across lines was measured and lost throughput.)
#[inline]
pub fn slot_index(pos: u32, slot_count: u32) -> u32 {
    mask(pos, slot_count)
}

/// Writes the cursors and slot stamps of an empty ring whose next message
/// goes to slot position `slot` and data unit `data`: 0 and 0 for a fresh
/// segment; tests start near 2^32 to cross the wrap point quickly.
pub fn init_positions(mem: &impl RingMemory, slot: u32, data: u32) {
    let header = mem.header();
    header.produce.cursor.store(pack_cursor(slot, data), Ordering::Relaxed);
    header.reclaim.store(pack_cursor(slot, data), Ordering::Relaxed);
    header.read.store(slot, Ordering::Relaxed);
    let count = mem.geometry().slot_count;
    for i in 0..count {
        let pos = slot.wrapping_add(i);
        mem.slot(slot_index(pos, count)).control.store(Control::new(pos, 0, 0, FREE).pack(), Ordering::Relaxed);
    }
}

impl<M: RingMemory> Ring<M> {
    /// Wraps memory whose geometry was validated (powers of two, non-zero).
    pub fn new(mem: M) -> Self {
        let geo = mem.geometry();
        debug_assert!(geo.slot_count.is_power_of_two() && geo.data_units.is_power_of_two());
        let count_bytes = mem.counts_ready_bytes();
        let lifecycle = mem.lifecycle();
        Self { mem, geo, count_bytes, lifecycle }
    }

    /// Body bytes of the messages claimed in this ring and not yet taken
    /// (0 unless the ring counts them).
    pub fn ready_bytes(&self) -> u64 {
        self.mem.header().chain.ready_bytes.load(Ordering::Relaxed)
    }

    /// Takes `bytes` off `ready_bytes`, stopping at zero.
    fn sub_ready_bytes(&self, bytes: u64) {
        if !self.count_bytes || bytes == 0 {
            return;
        }
        let counter = &self.mem.header().chain.ready_bytes;
        let mut current = counter.load(Ordering::Relaxed);
        // A count only: orders nothing.
        while let Err(actual) = counter.compare_exchange_weak(current, current.saturating_sub(bytes), Ordering::Relaxed, Ordering::Relaxed)
        {
            current = actual;
        }
    }

    /// Gives back the bytes of a reservation dropped uncommitted.
    pub fn release_bytes(&self, bytes: u64) {
        self.sub_ready_bytes(bytes);
    }

    /// Adds `bytes` to `ready_bytes` if that stays within `max`; false if
    /// it would not.
    fn reserve_ready_bytes(&self, bytes: u64, max: u64) -> bool {
        if !self.count_bytes {
            return true;
        }
        let counter = &self.mem.header().chain.ready_bytes;
        let mut current = counter.load(Ordering::Relaxed);
        loop {
            if current.saturating_add(bytes) > max {
                return false;
            }
            // A count only: orders nothing.
            match counter.compare_exchange_weak(current, current + bytes, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// The memory behind this ring.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// The ring's sizes.
    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    #[inline]
    fn slot(&self, pos: u32) -> &Slot {
        self.mem.slot(slot_index(pos, self.geo.slot_count))
    }

    /// Where a record of `units` goes if the data cursor is at `data`:
    /// `(start, end)`, skipping to the next lap if it would straddle the end.
    #[inline]
    pub fn place(&self, data: u32, units: u32) -> (u32, u32) {
        let index = mask(data, self.geo.data_units);
        let start = if index + units > self.geo.data_units { data.wrapping_add(self.geo.data_units - index) } else { data };
        (start, start.wrapping_add(units))
    }

    /// Byte offset of data unit `unit` in the data area.
    #[inline]
    pub fn data_offset(&self, unit: u32) -> usize {
        mask(unit, self.geo.data_units) as usize * UNIT
    }

    /// Claims `units.len()` consecutive slots and their data for the agent
    /// with owner id `owner`. Fails with `Full` if the ring lacks slots or
    /// bytes even after reclaiming, or `Corrupt` if the cursors are
    /// impossible. Call [`claim_done`](Ring::claim_done) once the claimed
    /// slots are committed or abandoned.
    ///
    /// `max_ready` bounds the messages between the read cursor and the end
    /// of the claim (the queue's ready messages, requeued ones aside: the
    /// caller takes those off `max_ready`, see `requeued_below_read`):
    /// `Limit` if the claim would pass it; `u32::MAX` for no bound. The
    /// bound is exact: `read` only grows, so the count checked is at least
    /// the count at the claim.
    ///
    /// `Closed` once [`close`](Ring::close) ran: a claim that raced the
    /// close is given up (its slots abandoned) unless the closer can see it.
    pub fn try_claim(&self, owner: u16, units: &[u32], reclaim_hint: &mut ReclaimHint, limits: ClaimLimits) -> Result<Claim, ClaimError> {
        let header = self.mem.header();
        let count = units.len() as u32;
        let max_ready = limits.max_ready;
        debug_assert!(count >= 1);
        if count > self.geo.slot_count || units.iter().any(|&u| u > self.geo.max_record_units()) {
            // A chunk sized for another ring (the producer switched to a
            // smaller one meanwhile), or a record over half this ring, which
            // a consumer would refuse to read (`read_record`): the caller
            // grows a ring with room.
            return Err(ClaimError::Full);
        }
        let intent = &self.mem.agent(owner_index(owner)).intent;
        // The claim's bytes count as ready from here; any failure gives
        // them back.
        if !self.reserve_ready_bytes(limits.bytes, limits.max_ready_bytes) {
            return Err(ClaimError::Limit);
        }
        // An intent stored by a round whose CAS failed must not outlive a
        // failed claim: it would cover another producer's slots.
        let fail = |e: ClaimError| {
            // SYNC POINT INTENT (no commits to order; same pairing).
            intent.store(0, Ordering::Release);
            self.sub_ready_bytes(limits.bytes);
            Err(e)
        };
        loop {
            // Cheap early out; the check that counts is after the CAS.
            if header.chain.closed.load(Ordering::Relaxed) != 0 {
                return fail(ClaimError::Closed);
            }
            // SYNC POINT PRODUCE: pairs with the AcqRel CAS below in other
            // producers: their epoch bumps (SYNC POINT EPOCH) are visible.
            let current = header.produce.cursor.load(Ordering::Acquire);
            // SYNC POINT EPOCH: Relaxed is enough; the Acquire load above
            // read a cursor at or past any claim whose bump preceded it.
            let epoch = header.produce.epoch.load(Ordering::Relaxed);
            let (slot, data) = unpack_cursor(current);
            let mut end = data;
            for &u in units {
                end = self.place(end, u).1;
            }
            if max_ready != u32::MAX {
                let within = |read: u32| slot.wrapping_add(count).wrapping_sub(read) <= max_ready;
                let hint = &*reclaim_hint;
                if !(hint.read_valid && hint.read_epoch == epoch && within(hint.read)) {
                    // A position only: the bound orders nothing.
                    let read = header.read.load(Ordering::Relaxed);
                    reclaim_hint.read = read;
                    reclaim_hint.read_epoch = epoch;
                    reclaim_hint.read_valid = true;
                    // `read` past our `slot` (never more than the ring's
                    // slots behind it) means `current` is stale: others
                    // claimed and consumers took meanwhile. Not a full queue:
                    // the CAS below fails (the cursor moved) and we look again.
                    let stale = slot.wrapping_sub(read) > self.geo.slot_count;
                    if !within(read) && !stale {
                        return fail(ClaimError::Limit);
                    }
                }
            }
            let fits = |hint: u64| {
                let (free_slot, free_data) = unpack_cursor(hint);
                slot.wrapping_add(count).wrapping_sub(free_slot) <= self.geo.slot_count
                    && end.wrapping_sub(free_data) <= self.geo.data_units
            };
            // The hint is an old value of the reclaim cursor, which only moves
            // forward: if the claim fits under it, it fits under the real one,
            // provided the wrapping differences are exact. They are while the
            // epoch is the one the hint was taken in: positions then moved
            // less than two strides (2^29) since, far below 2^31.
            if !reclaim_hint.valid || reclaim_hint.epoch != epoch || !fits(reclaim_hint.cursor) {
                // SYNC POINT RECLAIM: pairs with the Release CAS in
                // `reclaim`: consumers' reads of the old records happen-before
                // our writes.
                let free = header.reclaim.load(Ordering::Acquire);
                *reclaim_hint = ReclaimHint { cursor: free, epoch, valid: true, ..*reclaim_hint };
                let (free_slot, free_data) = unpack_cursor(free);
                if slot.wrapping_sub(free_slot) > self.geo.slot_count || data.wrapping_sub(free_data) > self.geo.data_units {
                    // Either our `current` is stale (consumers reclaimed past
                    // it meanwhile), or more is in use than the ring holds:
                    // a damaged segment.
                    if header.produce.cursor.load(Ordering::Acquire) != current {
                        continue;
                    }
                    reclaim_hint.valid = false;
                    return fail(ClaimError::Corrupt);
                }
                if !fits(free) {
                    self.reclaim();
                    reclaim_hint.cursor = header.reclaim.load(Ordering::Acquire);
                    if !fits(reclaim_hint.cursor) {
                        return fail(ClaimError::Full);
                    }
                }
            }
            // SYNC POINT INTENT: Release pairs with the Acquire load in
            // `abandon_stalled`: a sweeper that sees our new intent also sees
            // our earlier commits. The CAS below publishes it to any sweeper
            // that sees the cursor move past these slots.
            intent.store(pack_cursor(slot, count), Ordering::Release);
            let next_slot = slot.wrapping_add(count);
            if crosses_stride(slot, next_slot) || crosses_stride(data, end) {
                // SYNC POINT EPOCH: before the CAS, whose Release publishes
                // it; a bump for a CAS that then fails only costs hint
                // holders one reload.
                header.produce.epoch.fetch_add(1, Ordering::Relaxed);
            }
            // SYNC POINT CLOSE: SeqCst, with the SeqCst load of `closed`
            // after it, pairs with `close`/`is_drained`: either this claim
            // sees the ring closed, or whoever closed it (and any consumer
            // that then finds it drained) sees this claim.
            if header
                .produce
                .cursor
                .compare_exchange_weak(current, pack_cursor(next_slot, end), Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                crate::sync::dekker_fence();
                if header.chain.closed.load(Ordering::SeqCst) != 0 {
                    for i in 0..count {
                        self.abandon(slot.wrapping_add(i));
                    }
                    self.claim_done(owner);
                    self.sub_ready_bytes(limits.bytes);
                    self.notify_consumers();
                    return Err(ClaimError::Closed);
                }
                if self.count_bytes {
                    // The claim's ready bytes, where recovery finds them if
                    // we die before committing (`abandon_stalled`); the
                    // commit stores the same value. Our slot: a count only.
                    self.slot(slot).body_len.store(limits.bytes.min(u64::from(u32::MAX)) as u32, Ordering::Relaxed);
                }
                return Ok(Claim { first: slot, data });
            }
            spin_hint();
        }
    }

    /// How many more messages a claim may take now under the bound
    /// `max_ready` (as [`try_claim`](Ring::try_claim) counts them): a hint
    /// for sizing a claim, since the cursors move.
    pub fn room_under(&self, max_ready: u32) -> u32 {
        let header = self.mem.header();
        // Positions only. `read` first: the producers' cursor loaded after
        // it is at or past it, so the difference is the ready count (or,
        // from a hostile segment, clamped to the ring).
        let read = header.read.load(Ordering::Relaxed);
        let (produced, _) = unpack_cursor(header.produce.cursor.load(Ordering::Relaxed));
        max_ready.saturating_sub(produced.wrapping_sub(read).min(self.geo.slot_count))
    }

    /// Clears the claim intent of `owner` once its claimed slots are all
    /// committed or abandoned, so that an idle producer's old intent cannot
    /// cover the same positions 2^32 slots later and keep recovery from
    /// abandoning a dead producer's claim there.
    #[inline]
    pub fn claim_done(&self, owner: u16) {
        // SYNC POINT INTENT: Release orders our commits before the clear: a
        // sweeper that reads 0 here (Acquire) then finds those slots READY.
        self.mem.agent(owner_index(owner)).intent.store(0, Ordering::Release);
    }

    /// Fills in slot `pos`'s metadata and makes it deliverable.
    pub fn commit(&self, pos: u32, data_start: u32, data_end: u32, props_len: u32, body_len: u32, expires_at_ms: u64) {
        let slot = self.slot(pos);
        slot.data_start.store(data_start, Ordering::Relaxed);
        slot.data_end.store(data_end, Ordering::Relaxed);
        slot.props_len.store(props_len, Ordering::Relaxed);
        slot.body_len.store(body_len, Ordering::Relaxed);
        slot.expires_at_ms.store(expires_at_ms, Ordering::Relaxed);
        // SYNC POINT PUBLISH: Release pairs with the Acquire CAS in
        // `take_at`/`take_requeued`: the data and fields above are visible to
        // whoever claims the slot.
        slot.control.store(Control::new(pos, 0, 0, READY).pack(), Ordering::Release);
    }

    /// Gives up a claimed, uncommitted slot (a dropped reservation).
    pub fn abandon(&self, pos: u32) {
        // SYNC POINT PUBLISH (no data to publish, but the same pairing).
        self.slot(pos).control.store(Control::new(pos, 0, 0, ABANDONED).pack(), Ordering::Release);
    }

    /// Closes the ring to new claims: producers go on in the queue's next
    /// segment. Claims that raced the close either completed before it (and
    /// are delivered from here) or give up their slots.
    pub fn close(&self) {
        // SYNC POINT CLOSE: pairs with the claim CAS in `try_claim`.
        self.mem.header().chain.closed.store(1, Ordering::SeqCst);
        crate::sync::dekker_fence();
        self.notify_consumers();
        self.notify_producers();
    }

    /// True once [`close`](Ring::close) ran.
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.mem.header().chain.closed.load(Ordering::Relaxed) != 0
    }

    /// True if the ring is closed and every message claimed in it was
    /// dispatched (`read` reached `produce`): consumers move to the next
    /// segment, and no message will ever be committed here again.
    /// Requeued messages may still come back below `read`.
    pub fn is_dispatched(&self) -> bool {
        let header = self.mem.header();
        // SYNC POINT CLOSE: the SeqCst load of `closed`, then of `produce`,
        // pairs with a claim's CAS and its load of `closed`.
        if header.chain.closed.load(Ordering::SeqCst) == 0 {
            return false;
        }
        crate::sync::dekker_fence();
        // A position only: the slots' control words carry the ordering.
        let read = header.read.load(Ordering::Relaxed);
        let (produced, _) = unpack_cursor(header.produce.cursor.load(Ordering::SeqCst));
        read == produced
    }

    /// True if the ring is closed and every message in it is settled and
    /// reclaimed: nothing in it will ever be read or written again, but for
    /// racing claims marking their own slots abandoned.
    pub fn is_drained(&self) -> bool {
        if !self.is_dispatched() {
            return false;
        }
        let header = self.mem.header();
        // SYNC POINT RECLAIM: Acquire pairs with the reclaim CAS: the
        // consumers' reads of the data happen before the retirer punches it.
        let (free_slot, _) = unpack_cursor(header.reclaim.load(Ordering::Acquire));
        let (produced, _) = unpack_cursor(header.produce.cursor.load(Ordering::SeqCst));
        free_slot == produced
    }

    /// True if nothing is in the ring: every claimed slot is settled and
    /// reclaimed (nothing ready, unacked or being written).
    pub fn is_empty(&self) -> bool {
        self.reclaim();
        let header = self.mem.header();
        // SYNC POINT RECLAIM, as in `is_drained` (the ring may be retired
        // once it is closed); SYNC POINT PRODUCE for the claim cursor.
        let (free_slot, _) = unpack_cursor(header.reclaim.load(Ordering::Acquire));
        let (produced, _) = unpack_cursor(header.produce.cursor.load(Ordering::Acquire));
        free_slot == produced
    }

    /// Average bytes of data (record and wrap padding) per message in use,
    /// from the cursors: `None` if the ring holds nothing.
    pub fn average_record_bytes(&self) -> Option<u64> {
        let header = self.mem.header();
        // Positions only, for sizing: orders nothing.
        let (free_slot, free_data) = unpack_cursor(header.reclaim.load(Ordering::Relaxed));
        let (produced, produced_data) = unpack_cursor(header.produce.cursor.load(Ordering::Relaxed));
        let messages = produced.wrapping_sub(free_slot).min(self.geo.slot_count);
        let units = produced_data.wrapping_sub(free_data).min(self.geo.data_units);
        (messages > 0).then(|| u64::from(units) * UNIT as u64 / u64::from(messages))
    }

    /// True if a requeued message may wait below `read`.
    #[inline]
    pub fn may_have_requeued(&self) -> bool {
        // SYNC POINT REQUEUE: pairs with the Release store in `requeue`.
        self.mem.header().requeued.load(Ordering::Acquire) != 0
    }

    /// Moves `read` past head slots that can never be delivered (abandoned,
    /// delivered, done), up to the first READY or FREE one. True if it
    /// found any.
    pub fn skip_dead_head(&self) -> bool {
        let header = self.mem.header();
        let (produced, _) = unpack_cursor(header.produce.cursor.load(Ordering::Acquire));
        let mut skipped = false;
        for _ in 0..self.geo.slot_count {
            let read = header.read.load(Ordering::Acquire);
            if read == produced {
                break;
            }
            let ctl = Control::unpack(self.slot(read).control.load(Ordering::Acquire));
            if ctl.stamp != read || ctl.state == READY || ctl.state == FREE {
                break;
            }
            self.help_past(read);
            skipped = true;
        }
        skipped
    }

    /// The eventcount consumers sleep on while the ring is empty.
    pub fn not_empty(&self) -> &crate::sync::EventCount {
        &self.mem.header().not_empty
    }

    /// The eventcount publishers sleep on while the ring is full.
    pub fn not_full(&self) -> &crate::sync::EventCount {
        &self.mem.header().not_full
    }

    /// Wakes consumers if any sleep. Call once after a batch of commits.
    #[inline]
    pub fn notify_consumers(&self) {
        self.mem.header().not_empty.notify();
    }

    /// Wakes blocked publishers if any sleep.
    #[inline]
    pub fn notify_producers(&self) {
        self.mem.header().not_full.notify();
    }

    /// [`try_take_checked`](Ring::try_take_checked) that always tells a
    /// stalled head from an empty queue.
    pub fn try_take(&self, agent: u16, auto_ack: bool, now_ms: &mut impl FnMut() -> u64) -> Take {
        self.try_take_checked(agent, auto_ack, true, now_ms)
    }

    /// Takes the next deliverable message for `agent`: requeued ones first,
    /// then the one at the read cursor.
    ///
    /// An uncommitted slot at the head means "empty" or "a producer is
    /// mid-write". Telling them apart needs the producers' cursor line; a
    /// consumer polling an empty queue in a loop would keep pulling that line
    /// away from the producer, so only with `check_stall` does it look and
    /// report `Stalled`; otherwise it reports `Empty`.
    pub fn try_take_checked(&self, agent: u16, auto_ack: bool, check_stall: bool, now_ms: &mut impl FnMut() -> u64) -> Take {
        let auto = if auto_ack { FLAG_AUTO_ACK } else { 0 };
        let header = self.mem.header();
        // SYNC POINT REQUEUE: pairs with the Release store in `requeue`.
        if header.requeued.load(Ordering::Acquire) != 0 {
            if let Some(take) = self.take_requeued(agent, auto, now_ms) {
                return take;
            }
        }
        loop {
            let read = header.read.load(Ordering::Acquire);
            let slot = self.slot(read);
            // SYNC POINT PUBLISH (reader side of the plain load; the CAS below
            // is the one that acquires the data).
            let word = slot.control.load(Ordering::Acquire);
            let ctl = Control::unpack(word);
            if ctl.stamp == read && ctl.state == READY && ctl.flags & FLAG_SHELVED == 0 {
                // A committed slot at `read` implies `produce` is past it, so
                // the producers' cursor line is not touched. Read before the
                // take: see `inspect`.
                let found = self.inspect(read, ctl.flags, now_ms);
                if self.claim_run(agent, read, 1) {
                    self.mark_delivered(read, agent, ctl.flags | auto);
                    self.run_taken(agent);
                    return self.handed_over(read, agent, found);
                }
                continue;
            }
            if !check_stall && ctl.stamp == read && ctl.state == FREE {
                return Take::Empty;
            }
            let (produced, _) = unpack_cursor(header.produce.cursor.load(Ordering::Acquire));
            if read == produced {
                return Take::Empty;
            }
            if ctl.stamp != read {
                // `read` moved on since we loaded it, or the slot is garbage:
                // a claimed position always has its slot reset to its stamp.
                if header.read.load(Ordering::Acquire) == read {
                    return Take::Corrupt(read);
                }
                continue;
            }
            match ctl.state {
                FREE => return Take::Stalled(read),
                // Shelved at the head: only in a damaged ring since layout 7
                // (shelving acts on DELIVERED slots, below `read`). Not a
                // delivery; move past it, the housekeeping finds it below.
                READY if ctl.flags & FLAG_SHELVED != 0 => self.advance_read(read),
                READY => continue,
                _ => self.help_past(read),
            }
        }
    }

    /// Takes up to `out.len()` consecutive READY messages at the read
    /// cursor with one cursor update: the batched consumer path. Requeued
    /// messages and every non-READY head fall back to [`try_take`].
    ///
    /// [`try_take`]: Ring::try_take
    pub fn take_batch(&self, agent: u16, auto_ack: bool, now_ms: &mut impl FnMut() -> u64, out: &mut [Record]) -> BatchTake {
        let header = self.mem.header();
        let mut batch = BatchTake::default();
        if out.is_empty() {
            return batch;
        }
        // SYNC POINT REQUEUE: as in `try_take_checked`.
        if header.requeued.load(Ordering::Acquire) != 0 {
            batch.last = self.try_take(agent, auto_ack, now_ms);
            if let Take::Got(record) = batch.last {
                out[0] = record;
                batch.got = 1;
            }
            return batch;
        }
        let auto = if auto_ack { FLAG_AUTO_ACK } else { 0 };
        let want = out.len().min(MAX_RUN).min(self.geo.slot_count as usize);
        let mut flags = [0u8; MAX_RUN];
        loop {
            let read = header.read.load(Ordering::Acquire);
            // The run's live records go to `out` as they are read; `expired`
            // marks the dead ones the ring discards (bit i: slot read + i);
            // a run ends at a message handed back otherwise (damaged, or
            // dead for the caller to dead-letter), kept in `other`: the
            // batch reports one such at most.
            let (mut count, mut live, mut expired, mut other) = (0, 0, 0u64, None);
            while count < want {
                let pos = read.wrapping_add(count as u32);
                // SYNC POINT PUBLISH: Acquire pairs with `commit`'s Release.
                let ctl = Control::unpack(self.slot(pos).control.load(Ordering::Acquire));
                if ctl.stamp != pos || ctl.state != READY || ctl.flags & FLAG_SHELVED != 0 {
                    break;
                }
                flags[count] = ctl.flags;
                let found = self.inspect(pos, ctl.flags, now_ms);
                count += 1;
                match found {
                    Found::Live(record) => {
                        out[live] = record;
                        live += 1;
                    }
                    Found::Dead(..) if !self.lifecycle.hold_dead => expired |= 1 << (count - 1),
                    _ => {
                        other = Some(found);
                        break;
                    }
                }
            }
            if count == 0 {
                break;
            }
            if !self.claim_run(agent, read, count as u32) {
                continue;
            }
            for (i, &slot_flags) in flags[..count].iter().enumerate() {
                self.mark_delivered(read.wrapping_add(i as u32), agent, slot_flags | auto);
            }
            self.run_taken(agent);
            if self.count_bytes {
                let bytes: u64 = out[..live].iter().map(|record| u64::from(record.body_len)).sum();
                self.sub_ready_bytes(bytes);
            }
            batch.got = live;
            for i in (0..count).filter(|i| expired & (1 << i) != 0) {
                batch.expired += 1;
                let pos = read.wrapping_add(i as u32);
                if self.count_bytes {
                    self.sub_ready_bytes(u64::from(self.slot(pos).body_len.load(Ordering::Relaxed)));
                }
                let _ = self.settle(agent, pos, Settle::Done);
            }
            if let Some(found) = other {
                batch.last = self.handed_over(read.wrapping_add(count as u32 - 1), agent, found);
            }
            break;
        }
        if batch.got == 0 && batch.expired == 0 && batch.last == Take::Empty {
            batch.last = self.try_take(agent, auto_ack, now_ms);
            if let Take::Got(record) = batch.last {
                out[0] = record;
                batch.got = 1;
            }
        }
        batch
    }

    /// Marks a delivery this agent holds as DONE without re-checking it: for
    /// auto-ack deliveries, which no one else can settle. `settle` is the
    /// checked path for tags supplied by users.
    pub fn finish_owned(&self, pos: u32, flags: u8, reclaim: bool) {
        let done = Control::new(pos, 0, flags & !FLAG_AUTO_ACK, DONE).pack();
        // SYNC POINT DONE: Release pairs with the AcqRel CAS in `reclaim`.
        self.slot(pos).control.store(done, Ordering::Release);
        if reclaim {
            self.reclaim_after_settle(pos);
        }
    }

    /// Reclaims if slot `pos` was the first unreclaimed one, and wakes
    /// publishers if space came free. Measured against reclaiming in batches
    /// of 32 (which keeps the producers' cursor line out of most acks): eager
    /// was as fast unbatched and faster batched, because a publisher that
    /// finds the ring full must otherwise reclaim the consumers' slots itself.
    #[inline]
    fn reclaim_after_settle(&self, pos: u32) {
        let (free_slot, _) = unpack_cursor(self.mem.header().reclaim.load(Ordering::Relaxed));
        if free_slot == pos && self.reclaim() {
            self.notify_producers();
        }
    }

    /// Moves `read` past the head slot `pos`, which was seen neither READY
    /// nor FREE (delivered, done, abandoned). If it was requeued meanwhile
    /// (a dead consumer's claim that never moved `read`), it is now READY
    /// below `read`: flag it for the scanners.
    fn help_past(&self, pos: u32) {
        self.advance_read(pos);
        // SYNC POINT REQUEUE-HELP: pairs with the fences in `requeue` and
        // `take_requeued`. Either this reload sees the requeue's READY, or
        // our fence precedes the requeuer's, and a scanner that takes its
        // flag (and fences) sees `read` past the slot and scans it.
        crate::sync::fence(Ordering::SeqCst);
        let ctl = Control::unpack(self.slot(pos).control.load(Ordering::Relaxed));
        if ctl.stamp == pos && ctl.state == READY {
            // SYNC POINT REQUEUE.
            self.mem.header().requeued.store(1, Ordering::Release);
        }
    }

    #[inline]
    fn advance_read(&self, from: u32) {
        // Positions only; each slot's control word carries the ordering.
        let _ = self.mem.header().read.compare_exchange(from, from.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Reads and validates a slot the caller just claimed.
    fn deliver(&self, pos: u32, agent: u16, flags: u8, now_ms: &mut impl FnMut() -> u64) -> Take {
        let found = self.inspect(pos, flags, now_ms);
        self.handed_over(pos, agent, found)
    }

    /// Reads and validates the record of a READY slot, before or after
    /// taking it. Before is safe at or past `read`: nobody writes a READY
    /// slot there until they have moved `read` past it, and the caller's
    /// Acquire load of the READY word made the producer's writes visible.
    #[inline]
    fn inspect(&self, pos: u32, flags: u8, now_ms: &mut impl FnMut() -> u64) -> Found {
        let Some(record) = self.read_record(pos, flags) else { return Found::Corrupt };
        match self.death_of(&record, now_ms) {
            None => Found::Live(record),
            Some(death) => Found::Dead(record, death),
        }
    }

    /// Hands over a slot `agent` now holds DELIVERED, as `inspect` found it.
    #[inline]
    fn handed_over(&self, pos: u32, agent: u16, found: Found) -> Take {
        if self.count_bytes {
            self.sub_ready_bytes(u64::from(self.slot(pos).body_len.load(Ordering::Relaxed)));
        }
        match found {
            Found::Live(record) => Take::Got(record),
            Found::Dead(record, death) if self.lifecycle.hold_dead => Take::Dead(record, death),
            Found::Dead(..) => {
                let _ = self.settle(agent, pos, Settle::Done);
                Take::Expired
            }
            Found::Corrupt => {
                let _ = self.settle(agent, pos, Settle::Done);
                Take::Corrupt(pos)
            }
        }
    }

    /// Takes the run of `count` READY slots from `read` for `agent`: records
    /// it as the agent's intent, then moves `read` past it. Once `read` has
    /// moved, the slots are the agent's alone: other takers need `read` at a
    /// slot to take it, and scanners below `read` leave a slot an intent
    /// covers alone. False if another taker moved `read` first.
    #[inline]
    fn claim_run(&self, agent: u16, read: u32, count: u32) -> bool {
        let intent = &self.mem.agent(owner_index(agent)).intent;
        // SYNC POINT TAKE-INTENT: Release (a store after this agent's last
        // run's DELIVERED stores, see `run_taken`); the CAS below publishes
        // it to every scanner that sees `read` past the run.
        intent.store(pack_cursor(read, count), Ordering::Release);
        // SYNC POINT TAKE: Release pairs with the Acquire loads of `read` by
        // scanners below it (`take_requeued`, `take_if_dead`).
        if self.mem.header().read.compare_exchange(read, read.wrapping_add(count), Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            return true;
        }
        // SYNC POINT TAKE-INTENT: as `run_taken`.
        intent.store(0, Ordering::Release);
        false
    }

    /// Marks slot `pos`, taken by `agent` with `claim_run`, DELIVERED: a
    /// plain store, as nobody else writes it (see `claim_run`).
    #[inline]
    fn mark_delivered(&self, pos: u32, agent: u16, flags: u8) {
        // Ordered for scanners by `run_taken`'s Release.
        self.slot(pos).control.store(Control::new(pos, agent, flags, DELIVERED).pack(), Ordering::Relaxed);
    }

    /// Withdraws `agent`'s intent once its run is marked DELIVERED.
    #[inline]
    fn run_taken(&self, agent: u16) {
        // SYNC POINT TAKE-INTENT: Release orders the DELIVERED stores before
        // it: a scanner that reads this (or any later intent of this agent)
        // with Acquire, then CASes one of the run's slots, finds it
        // DELIVERED and fails.
        self.mem.agent(owner_index(agent)).intent.store(0, Ordering::Release);
    }

    /// True if READY slot `pos` below `read`, whose control word has
    /// `flags`, may belong to a taker's run. A requeued or shelved message
    /// cannot: a run is taken at the head, and requeues and shelves act on
    /// DELIVERED slots, which lie below `read`. So only a fresh message pays
    /// for the look at every row's intent (a publisher to a length-limited
    /// queue counts the requeued messages at every claim while one waits).
    #[inline]
    fn held_by_a_taker(&self, pos: u32, flags: u8) -> bool {
        flags & (FLAG_REDELIVERED | FLAG_SHELVED) == 0 && self.claimed_by_intent(pos)
    }

    /// True if an agent's intent covers slot `pos`: a run a taker has moved
    /// `read` past and not yet marked DELIVERED, or (briefly, conservatively)
    /// a producer's claim. Scanners below `read` leave such a READY slot
    /// alone. The caller must have loaded `read` (Acquire) before: then
    /// the taker's intent, stored before its `read` CAS, is seen here, or a
    /// later store of that row that follows the run's DELIVERED stores.
    fn claimed_by_intent(&self, pos: u32) -> bool {
        (0..AGENT_SLOTS).any(|index| {
            let agent = self.mem.agent(index);
            // A free row's intent is nobody's (garbage left in shared
            // memory would hide a slot for good). A taker registered its
            // row before its `read` CAS, so a scanner that sees `read` past
            // the run sees the row's token too.
            // SYNC POINT AGENT: pairs with `register_agent`'s CAS.
            if agent.token.load(Ordering::Acquire) == 0 {
                return false;
            }
            // SYNC POINT TAKE-INTENT: Acquire pairs with the Release stores
            // of `claim_run` and `run_taken`.
            let (first, count) = unpack_cursor(agent.intent.load(Ordering::Acquire));
            pos.wrapping_sub(first) < count
        })
    }

    /// Scans below the read cursor for requeued READY slots. Clears the
    /// `requeued` flag first and sets it again after a find (there may be
    /// more): a requeue that lands during the scan sets it itself, and a
    /// scanner killed in between is covered by the next sweep, which sets it
    /// if it finds a requeued slot.
    fn take_requeued(&self, agent: u16, auto: u8, now_ms: &mut impl FnMut() -> u64) -> Option<Take> {
        let header = self.mem.header();
        // SYNC POINT REQUEUE: AcqRel; the Acquire half pairs with `requeue`.
        header.requeued.swap(0, Ordering::AcqRel);
        // SYNC POINT REQUEUE-HELP: the third fence of that protocol. A
        // helper whose fence came before the requeuer's did not see the
        // slot READY; the requeuer's fence comes before ours (we took its
        // flag), so our load of `read` sees the helper's move past the slot.
        crate::sync::fence(Ordering::SeqCst);
        let (free_slot, _) = unpack_cursor(header.reclaim.load(Ordering::Acquire));
        let read = header.read.load(Ordering::Acquire);
        let span = read.wrapping_sub(free_slot).min(self.geo.slot_count);
        let mut left_to_a_taker = false;
        for i in 0..span {
            let pos = free_slot.wrapping_add(i);
            let slot = self.slot(pos);
            let word = slot.control.load(Ordering::Relaxed);
            let ctl = Control::unpack(word);
            // Shelved messages are the housekeeping's, not deliveries.
            if ctl.stamp == pos && ctl.state == READY && ctl.flags & FLAG_SHELVED == 0 {
                if self.held_by_a_taker(pos, ctl.flags) {
                    // A taker's, about to be marked DELIVERED (or requeued
                    // while a stale intent still covers it: look again
                    // later, so the flag goes back up below).
                    left_to_a_taker = true;
                    continue;
                }
                let claimed = Control::new(pos, agent, ctl.flags | auto, DELIVERED).pack();
                // SYNC POINT PUBLISH: Acquire pairs with the Release in
                // `settle(Requeue)`/`requeue_dead`, as with `commit`.
                if slot.control.compare_exchange(word, claimed, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    // SYNC POINT REQUEUE (no data to publish; the slots
                    // carry their own ordering).
                    header.requeued.store(1, Ordering::Release);
                    return Some(self.deliver(pos, agent, ctl.flags, now_ms));
                }
            }
        }
        if left_to_a_taker {
            // SYNC POINT REQUEUE.
            header.requeued.store(1, Ordering::Release);
        }
        None
    }

    /// Settles a delivery held by `agent`. Returns false if `pos` is not a
    /// delivery this agent holds (an unknown or already-settled tag).
    pub fn settle(&self, agent: u16, pos: u32, how: Settle) -> bool {
        self.settle_with(agent, pos, how, true)
    }

    /// As [`settle`](Ring::settle); with `reclaim` false, leaves reclaiming
    /// to a later [`reclaim`](Ring::reclaim) call (batched consumers).
    pub fn settle_with(&self, agent: u16, pos: u32, how: Settle, reclaim: bool) -> bool {
        let slot = self.slot(pos);
        let word = slot.control.load(Ordering::Relaxed);
        let ctl = Control::unpack(word);
        if ctl.stamp != pos || ctl.state != DELIVERED || ctl.owner != agent {
            return false;
        }
        match how {
            Settle::Done => {
                let done = Control::new(pos, 0, ctl.flags & !FLAG_AUTO_ACK, DONE).pack();
                // SYNC POINT DONE: Release pairs with the AcqRel CAS in
                // `reclaim`: our reads of the data happen-before its reuse.
                if slot.control.compare_exchange(word, done, Ordering::Release, Ordering::Relaxed).is_err() {
                    return false;
                }
                if reclaim {
                    self.reclaim_after_settle(pos);
                }
                true
            }
            Settle::Requeue => self.requeue(pos, word, ctl.flags),
            Settle::Shelve(death) => self.shelve(pos, word, ctl.flags, death),
        }
    }

    /// DELIVERED `word` at `pos` → READY, shelved (see [`Settle::Shelve`]).
    fn shelve(&self, pos: u32, word: u64, flags: u8, death: Death) -> bool {
        let flags = (flags & !(FLAG_AUTO_ACK | SHELVED_REASON_MASK)) | FLAG_SHELVED | death.to_flags();
        let ready = Control::new(pos, 0, flags, READY).pack();
        let bytes = u64::from(self.slot(pos).body_len.load(Ordering::Relaxed));
        if self.count_bytes {
            // As in `requeue`: ready again, so counted again.
            self.mem.header().chain.ready_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        // SYNC POINT PUBLISH: Release, as in `requeue`.
        if self.slot(pos).control.compare_exchange(word, ready, Ordering::Release, Ordering::Relaxed).is_err() {
            self.sub_ready_bytes(bytes);
            return false;
        }
        true
    }

    /// Starts a pass of the housekeeping over this ring's dead messages
    /// (see [`take_if_dead`](Ring::take_if_dead)). Every pass looks at
    /// every slot below `read` (shelved and requeued messages wait there),
    /// with no hint a crash or a race could leave wrong: that span is the
    /// messages taken and not yet settled, usually a consumer's prefetch.
    pub fn dead_scan(&self) -> DeadScan {
        // SYNC POINT RECLAIM (a position: the slots carry their ordering).
        DeadScan { below: Some(unpack_cursor(self.mem.header().reclaim.load(Ordering::Acquire)).0) }
    }

    /// DELIVERED `word` at `pos` → READY, flagged redelivered, its requeue
    /// count one higher.
    fn requeue(&self, pos: u32, word: u64, flags: u8) -> bool {
        let ready = Control::new(pos, 0, (flags & !FLAG_AUTO_ACK) | FLAG_REDELIVERED, READY).pack();
        // Before the CAS, which publishes it with the slot (we hold the slot,
        // so nobody else writes it). A requeuer killed between the two
        // leaves the count one too high: the sweeper requeues and counts
        // again, an over-count, never an under-count.
        let expiry = &self.slot(pos).expires_at_ms;
        let old = expiry.load(Ordering::Relaxed);
        if old >> EXPIRY_BITS < u64::from(u16::MAX) {
            expiry.store(old + (1 << EXPIRY_BITS), Ordering::Relaxed);
        }
        // SYNC POINT PUBLISH: Release, as in `commit`.
        if self.count_bytes {
            // Before the CAS: once READY, a consumer may take (and subtract)
            // it at once.
            let bytes = u64::from(self.slot(pos).body_len.load(Ordering::Relaxed));
            self.mem.header().chain.ready_bytes.fetch_add(bytes, Ordering::Relaxed);
            if self.slot(pos).control.compare_exchange(word, ready, Ordering::Release, Ordering::Relaxed).is_err() {
                self.sub_ready_bytes(bytes);
                self.undo_count(pos, old);
                return false;
            }
        } else if self.slot(pos).control.compare_exchange(word, ready, Ordering::Release, Ordering::Relaxed).is_err() {
            self.undo_count(pos, old);
            return false;
        }
        // SYNC POINT REQUEUE-HELP: see `help_past`.
        crate::sync::fence(Ordering::SeqCst);
        // After the CAS: a scanner that cleared the flag before this store
        // finds it set again. (Set first, a scan could clear it before the
        // slot was READY and strand the slot.)
        // SYNC POINT REQUEUE: Release pairs with the Acquire in `try_take`.
        self.mem.header().requeued.store(1, Ordering::Release);
        self.notify_consumers();
        true
    }

    /// Takes back the count a failed requeue added to slot `pos`, unless
    /// someone else wrote the word since (then theirs stands).
    fn undo_count(&self, pos: u32, old: u64) {
        let expiry = &self.slot(pos).expires_at_ms;
        let _ = expiry.compare_exchange(old.saturating_add(1 << EXPIRY_BITS), old, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Advances the reclaim cursor over DONE and ABANDONED slots, resetting
    /// each for its next lap and moving the cursor once per run of them.
    /// Returns true if it moved (the caller may then wake blocked publishers).
    pub fn reclaim(&self) -> bool {
        let header = self.mem.header();
        let mut advanced = false;
        let mut budget = self.geo.slot_count;
        loop {
            let current = header.reclaim.load(Ordering::Acquire);
            let (free_slot, free_data) = unpack_cursor(current);
            // Never pass `read`: slots at or past it may still be dispatched,
            // and dispatch expects their stamps unchanged.
            let read = header.read.load(Ordering::Acquire);
            let (_, produced_data) = unpack_cursor(header.produce.cursor.load(Ordering::Acquire));
            let mut pos = free_slot;
            let mut data = free_data;
            while pos != read && budget > 0 {
                budget -= 1;
                let slot = self.slot(pos);
                // SYNC POINT DONE: Acquire pairs with `settle`'s Release.
                let word = slot.control.load(Ordering::Acquire);
                let ctl = Control::unpack(word);
                let next_lap = pos.wrapping_add(self.geo.slot_count);
                let keep_data = if ctl.stamp == pos && (ctl.state == DONE || ctl.state == ABANDONED) {
                    let keep = ctl.state == ABANDONED;
                    let reset = Control::new(next_lap, 0, if keep { FLAG_KEEP_DATA } else { 0 }, FREE).pack();
                    if slot.control.compare_exchange(word, reset, Ordering::AcqRel, Ordering::Acquire).is_err() {
                        break;
                    }
                    keep
                } else if ctl.stamp == next_lap && ctl.state == FREE {
                    // Reset by another reclaimer that has not moved the cursor
                    // yet: help it.
                    ctl.flags & FLAG_KEEP_DATA != 0
                } else {
                    break;
                };
                if !keep_data {
                    let end = slot.data_end.load(Ordering::Relaxed);
                    // Hostile `data_end` must not run the data cursor
                    // backwards or past the producers.
                    if end.wrapping_sub(free_data) <= produced_data.wrapping_sub(free_data)
                        && end.wrapping_sub(free_data) >= data.wrapping_sub(free_data)
                    {
                        data = end;
                    }
                }
                pos = pos.wrapping_add(1);
            }
            if pos == free_slot {
                return advanced;
            }
            // SYNC POINT RECLAIM: Release pairs with the Acquire load in
            // `try_claim`.
            if header.reclaim.compare_exchange(current, pack_cursor(pos, data), Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                advanced = true;
            }
            if budget == 0 {
                return advanced;
            }
        }
    }

    /// Discards the oldest READY message at the read cursor, on behalf of
    /// `agent` (drop-oldest overflow, purge). False if none was ready.
    pub fn discard_oldest(&self, agent: u16) -> bool {
        // Shelved messages are ready messages too (purge removes them).
        let found = self
            .take_oldest(agent, &mut || 0)
            .map(|(record, _)| record)
            .or_else(|| self.take_if_dead(agent, 0, &mut self.dead_scan()).map(|(record, _)| record));
        found.is_some_and(|record| self.settle(agent, record.pos, Settle::Done))
    }

    /// Takes a dead message for `agent`, as the housekeeping does in
    /// queues nobody may consume from: shelved ones and dead requeued ones
    /// below the read cursor (from where `scan` got to), then the one at
    /// the read cursor if it is dead (expired, or over the delivery limit).
    /// Live messages are left where they are. RabbitMQ expires messages at
    /// the head of a queue without consumers too.
    pub fn take_if_dead(&self, agent: u16, now_ms: u64, scan: &mut DeadScan) -> Option<(Record, Death)> {
        let header = self.mem.header();
        if let Some(from) = scan.below {
            let read = header.read.load(Ordering::Acquire);
            let (free_slot, _) = unpack_cursor(header.reclaim.load(Ordering::Acquire));
            // Resume where the last take of this pass stopped, bounded by
            // the ring even if the cursors are hostile.
            let start = if from.wrapping_sub(free_slot) <= read.wrapping_sub(free_slot) { from } else { free_slot };
            for i in 0..read.wrapping_sub(start).min(self.geo.slot_count) {
                let pos = start.wrapping_add(i);
                if let Some(found) = self.claim_if_dead(pos, agent, now_ms, false) {
                    scan.below = Some(pos.wrapping_add(1));
                    return Some(found);
                }
            }
            scan.below = None;
        }
        let read = header.read.load(Ordering::Acquire);
        self.claim_if_dead(read, agent, now_ms, true)
    }

    /// Claims slot `pos` for `agent` if it is READY and dead (shelved, or
    /// dead now): at the head (`at_read`) as any take there, with
    /// `claim_run`; below `read` with a CAS, unless a taker's intent covers
    /// it (the caller loaded `read` first).
    fn claim_if_dead(&self, pos: u32, agent: u16, now_ms: u64, at_read: bool) -> Option<(Record, Death)> {
        let slot = self.slot(pos);
        // SYNC POINT PUBLISH: Acquire pairs with `commit`'s (or a requeue's)
        // Release; the record read below belongs to this word, which the
        // claim confirms.
        let word = slot.control.load(Ordering::Acquire);
        let ctl = Control::unpack(word);
        if ctl.stamp != pos || ctl.state != READY {
            return None;
        }
        let record = self.read_record(pos, ctl.flags & !(FLAG_SHELVED | SHELVED_REASON_MASK))?;
        let death = if ctl.flags & FLAG_SHELVED != 0 { Death::from_flags(ctl.flags) } else { self.death_of(&record, &mut || now_ms)? };
        let flags = ctl.flags & !(FLAG_SHELVED | SHELVED_REASON_MASK);
        if at_read {
            if !self.claim_run(agent, pos, 1) {
                return None;
            }
            self.mark_delivered(pos, agent, flags);
            self.run_taken(agent);
        } else {
            if self.held_by_a_taker(pos, ctl.flags) {
                return None;
            }
            let claimed = Control::new(pos, agent, flags, DELIVERED).pack();
            // SYNC POINT PUBLISH: as in `take_requeued`.
            slot.control.compare_exchange(word, claimed, Ordering::Acquire, Ordering::Relaxed).ok()?;
        }
        if self.count_bytes {
            self.sub_ready_bytes(u64::from(record.body_len));
        }
        Some((record, death))
    }

    /// Takes the oldest READY message (requeued ones first) for `agent`,
    /// dead or alive, with why it is dead if it is. `None` if none is ready.
    pub fn take_oldest(&self, agent: u16, now_ms: &mut impl FnMut() -> u64) -> Option<(Record, Option<Death>)> {
        loop {
            match self.try_take(agent, false, now_ms) {
                Take::Got(record) => return Some((record, None)),
                Take::Dead(record, death) => return Some((record, Some(death))),
                Take::Expired => continue,
                Take::Empty | Take::Stalled(_) | Take::Corrupt(_) => return None,
            }
        }
    }

    /// True if a live-or-dead consumer agent other than the owner id
    /// `except` is attached.
    pub fn has_consumers(&self, except: Option<u16>) -> bool {
        (0..AGENT_SLOTS).filter(|&i| except.map(owner_index) != Some(i)).any(|i| {
            let agent = self.mem.agent(i);
            agent.token.load(Ordering::Acquire) != 0 && agent.role.load(Ordering::Relaxed) == ROLE_CONSUMER
        })
    }

    /// Claims the queue for the exclusive consumer `owner` (AMQP's
    /// `basic.consume` with `exclusive`), which registered already: false
    /// if another consumer is attached or another exclusive consumer holds
    /// it. Release with [`release_exclusive`](Ring::release_exclusive).
    ///
    /// Two steps, so that a race never refuses both sides: the claim is
    /// made tentatively, then confirmed once no other consumer was seen
    /// (or withdrawn if one was); an ordinary consumer that finds a
    /// tentative claim waits for that one step to decide.
    pub fn claim_exclusive(&self, owner: u16) -> bool {
        let word = &self.mem.header().state.exclusive_consumer;
        let tentative = u64::from(owner) + 1;
        let mut current = word.load(Ordering::Acquire);
        loop {
            if current != 0 && self.exclusive_holder_alive(current) {
                return false;
            }
            // SYNC POINT EXCLUSIVE (with the fence below).
            match word.compare_exchange(current, tentative, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        // SYNC POINT EXCLUSIVE: pairs with the fence in `exclusively_held`.
        // Store buffering: either that consumer sees our claim, or we see
        // its registered row here.
        crate::sync::fence(Ordering::SeqCst);
        let decided = if self.has_consumers(Some(owner)) { 0 } else { tentative | EXCLUSIVE_CONFIRMED };
        // SYNC POINT EXCLUSIVE: Release; a waiting consumer acquires it.
        let _ = word.compare_exchange(tentative, decided, Ordering::AcqRel, Ordering::Relaxed);
        decided != 0
    }

    /// True if an exclusive consumer other than `owner` holds the queue;
    /// every other consumer checks this after it registered. Waits while a
    /// claim is tentative: its claimer decides in a few instructions (or
    /// died, which frees its row).
    pub fn exclusively_held(&self, owner: u16) -> bool {
        // SYNC POINT EXCLUSIVE: see `claim_exclusive`.
        crate::sync::fence(Ordering::SeqCst);
        let word = &self.mem.header().state.exclusive_consumer;
        for _ in 0..EXCLUSIVE_WAIT_SPINS {
            let current = word.load(Ordering::Acquire);
            if current == 0 || (current & !EXCLUSIVE_CONFIRMED) == u64::from(owner) + 1 || !self.exclusive_holder_alive(current) {
                return false;
            }
            if current & EXCLUSIVE_CONFIRMED != 0 {
                return true;
            }
            crate::sync::spin_hint();
        }
        // Still tentative after far longer than the claimer's one step: it
        // died between its two steps (its row is not swept yet). Void.
        false
    }

    /// Gives up the claim of exclusive consumer `owner`, if it holds one.
    pub fn release_exclusive(&self, owner: u16) {
        let word = &self.mem.header().state.exclusive_consumer;
        let _ = word.compare_exchange((u64::from(owner) + 1) | EXCLUSIVE_CONFIRMED, 0, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// True if the agent row that an exclusive claim `value` names still
    /// belongs to its claimer (same generation, not freed). `value` is read
    /// from shared memory: any bits name some row, nothing more.
    fn exclusive_holder_alive(&self, value: u64) -> bool {
        let owner = (value & !EXCLUSIVE_CONFIRMED).wrapping_sub(1) as u16;
        let index = owner_index(owner);
        let agent = self.mem.agent(index);
        // SYNC POINT AGENT / AGENT-GEN: as in `lock_dead_agents`.
        agent.token.load(Ordering::Acquire) != 0 && owner_id(index, agent.generation.load(Ordering::Acquire)) == owner
    }

    /// True once any consumer attached.
    pub fn had_consumer(&self) -> bool {
        self.mem.header().state.had_consumer.load(Ordering::Relaxed) != 0
    }

    /// Registers an agent for the process holding `token`; returns its owner
    /// id (row index and generation, see [`layout::owner_id`]).
    pub fn register_agent(&self, token: u64, role: u32, pid: u32, prefetch: u32) -> Option<u16> {
        for index in 0..AGENT_SLOTS {
            let agent = self.mem.agent(index);
            // SYNC POINT AGENT: AcqRel pairs with the Release CAS in
            // `release_agent`: the previous owner's resets are visible.
            if agent.token.compare_exchange(0, token, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                agent.intent.store(0, Ordering::Release);
                agent.role.store(role, Ordering::Relaxed);
                agent.pid.store(pid, Ordering::Relaxed);
                agent.unacked.store(0, Ordering::Relaxed);
                agent.prefetch.store(prefetch, Ordering::Relaxed);
                agent.priority.store(0, Ordering::Relaxed);
                agent.credit.store(if prefetch == 0 { u32::MAX } else { prefetch }, Ordering::Relaxed);
                agent.priority.store(0, Ordering::Relaxed);
                agent.credit.store(if prefetch == 0 { u32::MAX } else { prefetch }, Ordering::Relaxed);
                let generation = agent.generation.load(Ordering::Relaxed).wrapping_add(1);
                // SYNC POINT AGENT-GEN: Release pairs with the Acquire load in
                // `dead_agents`: a sweeper that reads this generation then
                // reads our token (or a later one), never the previous one's.
                agent.generation.store(generation, Ordering::Release);
                if role == ROLE_CONSUMER {
                    self.mem.header().state.had_consumer.store(1, Ordering::Relaxed);
                    self.take_ticket(index);
                }
                return Some(owner_id(index, generation));
            }
        }
        None
    }

    /// Frees the row of `owner` (this process's own agent, closing) after
    /// folding its counters into the queue's retired totals.
    pub fn release_agent(&self, owner: u16, token: u64) {
        let agent = self.mem.agent(owner_index(owner));
        if agent.token.load(Ordering::Acquire) != token {
            return;
        }
        self.reset_agent(agent, token);
    }

    /// Folds a row's counters into the retired totals, resets it and frees
    /// it. The caller is its holder, or the sweeper holding its `releasing`.
    fn reset_agent(&self, agent: &AgentSlot, token: u64) {
        let retired = &self.mem.header().state.retired;
        let pairs = [
            (&agent.counters.published, &retired.published),
            (&agent.counters.delivered, &retired.delivered),
            (&agent.counters.acked, &retired.acked),
            (&agent.counters.redelivered, &retired.redelivered),
            (&agent.counters.dropped, &retired.dropped),
            (&agent.counters.expired, &retired.expired),
            (&agent.counters.dead_lettered, &retired.dead_lettered),
        ];
        for (mine, total) in pairs {
            total.fetch_add(mine.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        }
        agent.intent.store(0, Ordering::Relaxed);
        agent.unacked.store(0, Ordering::Relaxed);
        agent.role.store(0, Ordering::Relaxed);
        agent.ticket.store(0, Ordering::Relaxed);
        // SYNC POINT AGENT: Release pairs with `register_agent`'s CAS.
        let _ = agent.token.compare_exchange(token, 0, Ordering::Release, Ordering::Relaxed);
    }

    /// Requeues every delivery held by `owner` (its consumer closed or
    /// died). Auto-ack deliveries of a dead consumer are discarded instead:
    /// auto-ack is at-most-once.
    ///
    /// Scans every live position, `[reclaim, produce)`, not only those below
    /// `read`. Since layout 7 a DELIVERED slot is always below `read` (a
    /// taker marks a slot only after moving `read` past it); the wider scan
    /// costs a sweep nothing it did not cost before and guards a damaged
    /// ring.
    pub fn requeue_all_of(&self, owner: u16) -> u32 {
        let mut requeued = 0;
        for pos in self.live_positions() {
            let word = self.slot(pos).control.load(Ordering::Acquire);
            let ctl = Control::unpack(word);
            if ctl.stamp != pos || ctl.state != DELIVERED || ctl.owner != owner {
                continue;
            }
            if ctl.flags & FLAG_AUTO_ACK != 0 {
                self.settle(owner, pos, Settle::Done);
            } else if self.requeue(pos, word, ctl.flags) {
                requeued += 1;
            }
        }
        requeued
    }

    /// Rows whose holder is dead, locked for this sweeper (`me`): their
    /// `releasing` word holds `me`, so no other sweeper resets them. A row
    /// another live sweeper holds is skipped; one a dead sweeper held is
    /// taken over.
    fn lock_dead_agents(&self, me: u64, is_alive: &mut impl FnMut(u64) -> bool) -> [DeadAgent; AGENT_SLOTS] {
        let mut dead = [DeadAgent::default(); AGENT_SLOTS];
        for (index, found) in dead.iter_mut().enumerate() {
            let agent = self.mem.agent(index);
            // SYNC POINT AGENT / AGENT-GEN: pairs with `register_agent`.
            let token = agent.token.load(Ordering::Acquire);
            if token == 0 || token == me || is_alive(token) {
                continue;
            }
            // SYNC POINT RELEASING: AcqRel pairs with the Release unlock in
            // `recover`: the previous sweeper's resets happen-before ours.
            let holder = agent.releasing.load(Ordering::Acquire);
            if holder != 0 && (holder == me || is_alive(holder)) {
                continue;
            }
            if agent.releasing.compare_exchange(holder, me, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                continue;
            }
            // Locked; the token can only have changed by a release, which
            // now needs our lock, or had already happened.
            if agent.token.load(Ordering::Acquire) != token {
                let _ = agent.releasing.compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
                continue;
            }
            // Read only now: the holder is dead and the row locked, so this
            // is the generation of its last registration. (Read before the
            // liveness check, it could predate the same process closing
            // and reopening a consumer in this row.)
            // SYNC POINT AGENT-GEN: pairs with `register_agent`.
            let generation = agent.generation.load(Ordering::Acquire);
            *found = DeadAgent { token, owner: owner_id(index, generation) };
        }
        dead
    }

    /// Recovers what processes that died left behind. `me` is the sweeping
    /// process's liveness token; `is_alive` answers for a token.
    pub fn recover(&self, me: u64, is_alive: &mut impl FnMut(u64) -> bool) -> Recovered {
        let dead = self.lock_dead_agents(me, is_alive);
        let mut report = Recovered::default();
        if dead.iter().all(|d| d.token == 0) {
            // Nobody died: nothing to requeue or abandon, and no scan of the
            // backlog (sweeps run every 200 ms on every handle).
            return report;
        }
        for found in dead.iter().filter(|d| d.token != 0) {
            report.requeued += self.requeue_all_of(found.owner);
        }
        report.abandoned = self.abandon_stalled(&dead);
        // Raised before the rows are freed as well as after: a sweeper
        // killed in between leaves no dead row for the next sweep to find,
        // so only this store sends anyone to a run a dead taker left READY
        // below `read`. (Scanners that find it still covered raise the flag
        // again: see `take_requeued`.)
        // SYNC POINT REQUEUE.
        self.mem.header().requeued.store(1, Ordering::Release);
        let mut runs_released = false;
        for (index, found) in dead.iter().enumerate().filter(|(_, d)| d.token != 0) {
            let agent = self.mem.agent(index);
            runs_released |= agent.intent.load(Ordering::Relaxed) != 0;
            self.reset_agent(agent, found.token);
            // SYNC POINT RELEASING: Release pairs with the next sweeper's CAS.
            let _ = agent.releasing.compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
            report.agents_freed += 1;
        }
        // A consumer killed between clearing the requeued flag and claiming
        // may have left a requeued slot unflagged, and one killed between
        // moving `read` past a run and marking it DELIVERED left the run
        // READY below `read`; it is among the dead just found, and its
        // intent is cleared now (above, so a scanner that takes this flag
        // no longer sees the run covered), so flag it again.
        // SYNC POINT REQUEUE.
        self.mem.header().requeued.store(1, Ordering::Release);
        if report.abandoned > 0 || report.requeued > 0 || runs_released {
            self.notify_consumers();
        }
        report
    }

    /// Turns FREE slots between the read cursor and the producers' cursor
    /// that no live agent's intent covers into ABANDONED (their producer
    /// died between claim and commit), then moves `read` past the head
    /// slots that cannot be delivered.
    fn abandon_stalled(&self, dead: &[DeadAgent; AGENT_SLOTS]) -> u32 {
        let header = self.mem.header();
        let read = header.read.load(Ordering::Acquire);
        // SYNC POINT INTENT: every claim below `produced` stored its intent
        // before its cursor CAS, which this Acquire load reads or follows.
        let (produced, _) = unpack_cursor(header.produce.cursor.load(Ordering::Acquire));
        let mut abandoned = 0;
        for i in 0..produced.wrapping_sub(read).min(self.geo.slot_count) {
            let pos = read.wrapping_add(i);
            let slot = self.slot(pos);
            let word = slot.control.load(Ordering::Acquire);
            let ctl = Control::unpack(word);
            if ctl.stamp != pos || ctl.state != FREE || self.intent_covers(pos, dead) {
                continue;
            }
            let gone = Control::new(pos, 0, 0, ABANDONED).pack();
            if slot.control.compare_exchange(word, gone, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                // Its claim counted its bytes as ready (`try_claim` stored
                // them in `body_len`); without this every producer killed
                // mid-publish lowered `max_length_bytes` for good. A death
                // before that store leaves a stale (older) length: an
                // undercount, which heals when the ring empties (the count
                // stops at zero), unlike an overcount.
                self.sub_ready_bytes(u64::from(slot.body_len.load(Ordering::Relaxed)));
                abandoned += 1;
            }
        }
        self.skip_dead_head();
        abandoned
    }

    /// True if a live agent's claim intent covers slot position `pos`. An
    /// agent counts as live unless it is the very one found dead: one that
    /// registered after the liveness snapshot (or reused a dead one's row)
    /// may be the claimer.
    fn intent_covers(&self, pos: u32, dead: &[DeadAgent; AGENT_SLOTS]) -> bool {
        (0..AGENT_SLOTS).any(|index| {
            let agent = self.mem.agent(index);
            // SYNC POINT AGENT: pairs with `register_agent`'s CAS.
            let token = agent.token.load(Ordering::Acquire);
            if token == 0 || token == dead[index].token {
                return false;
            }
            // SYNC POINT INTENT: Acquire pairs with `try_claim`'s Release.
            let (first, count) = unpack_cursor(agent.intent.load(Ordering::Acquire));
            pos.wrapping_sub(first) < count
        })
    }

    /// The control word and validated record of slot `pos` if it is READY
    /// now, for looking without claiming (`peek`). The caller copies the
    /// bytes, then confirms with [`control_unchanged`](Ring::control_unchanged):
    /// if the word did not change, the slot was not claimed or reused, so
    /// the copy is the message.
    pub fn ready_snapshot(&self, pos: u32) -> Option<(u64, Record)> {
        let slot = self.slot(pos);
        // SYNC POINT PUBLISH: Acquire pairs with `commit`'s Release.
        let word = slot.control.load(Ordering::Acquire);
        let ctl = Control::unpack(word);
        if ctl.stamp != pos || ctl.state != READY {
            return None;
        }
        self.read_record(pos, ctl.flags).map(|record| (word, record))
    }

    /// The record in slot `pos`, if its range fits the ring: what a slot
    /// holds is untrusted until checked.
    #[inline]
    fn read_record(&self, pos: u32, flags: u8) -> Option<Record> {
        let slot = self.slot(pos);
        let data_start = slot.data_start.load(Ordering::Relaxed);
        let units = slot.data_end.load(Ordering::Relaxed).wrapping_sub(data_start);
        let props_len = slot.props_len.load(Ordering::Relaxed);
        let body_len = slot.body_len.load(Ordering::Relaxed);
        let word = slot.expires_at_ms.load(Ordering::Relaxed);
        let fits = units <= self.geo.max_record_units()
            && mask(data_start, self.geo.data_units) + units <= self.geo.data_units
            && u64::from(props_len) + u64::from(body_len) <= u64::from(units) * UNIT as u64;
        fits.then_some(Record {
            pos,
            flags,
            data_start,
            props_len,
            body_len,
            expires_at_ms: word & EXPIRY_MASK,
            delivery_count: (word >> EXPIRY_BITS) as u16,
        })
    }

    /// Why `record` must not be delivered, if it must not.
    #[inline]
    fn death_of(&self, record: &Record, now_ms: &mut impl FnMut() -> u64) -> Option<Death> {
        // The clock is read only for messages that can expire.
        if record.expires_at_ms != 0 && record.expires_at_ms <= now_ms() {
            Some(Death::Expired)
        } else if self.lifecycle.delivery_limit.is_some_and(|limit| u32::from(record.delivery_count) > limit) {
            Some(Death::DeliveryLimit)
        } else {
            None
        }
    }

    /// The record of a delivery `agent` holds at `pos`, if it holds one.
    pub fn held_record(&self, agent: u16, pos: u32) -> Option<Record> {
        let ctl = Control::unpack(self.slot(pos).control.load(Ordering::Relaxed));
        if ctl.stamp != pos || ctl.state != DELIVERED || ctl.owner != agent {
            return None;
        }
        self.read_record(pos, ctl.flags)
    }

    /// True if slot `pos` still holds control word `word`.
    pub fn control_unchanged(&self, pos: u32, word: u64) -> bool {
        // Acquire: the caller's copy of the data happened before this load
        // (a fence keeps the copy from moving after it).
        crate::sync::fence(Ordering::Acquire);
        self.slot(pos).control.load(Ordering::Relaxed) == word
    }

    /// The producers' cursor: `(next slot position, next data unit)`.
    pub fn positions(&self) -> (u32, u32) {
        // SYNC POINT PRODUCE (a snapshot; orders nothing).
        unpack_cursor(self.mem.header().produce.cursor.load(Ordering::Acquire))
    }

    /// Positions that may hold messages, oldest first: `[reclaim, produce)`.
    pub fn live_positions(&self) -> impl Iterator<Item = u32> {
        let header = self.mem.header();
        let (free_slot, _) = unpack_cursor(header.reclaim.load(Ordering::Acquire));
        let (produced, _) = unpack_cursor(header.produce.cursor.load(Ordering::Acquire));
        let span = produced.wrapping_sub(free_slot).min(self.geo.slot_count);
        (0..span).map(move |i| free_slot.wrapping_add(i))
    }

    /// READY (requeued) slots in `[reclaim, read)`: a scan of at most one
    /// ring, for stats, sweeps and the `max_length` bound of a claim.
    pub fn requeued_below_read(&self) -> u32 {
        let header = self.mem.header();
        let (free_slot, _) = unpack_cursor(header.reclaim.load(Ordering::Acquire));
        let read = header.read.load(Ordering::Acquire);
        (0..read.wrapping_sub(free_slot).min(self.geo.slot_count))
            .map(|i| free_slot.wrapping_add(i))
            .filter(|&pos| {
                let ctl = Control::unpack(self.slot(pos).control.load(Ordering::Relaxed));
                // Shelved messages are dead: no longer the queue's; a run a
                // taker holds is being delivered.
                ctl.stamp == pos && ctl.state == READY && ctl.flags & FLAG_SHELVED == 0 && !self.held_by_a_taker(pos, ctl.flags)
            })
            .count() as u32
    }

    /// Ready messages, claims in flight included, as `depth` counts them
    /// but for the slots past `read` that are no message (abandoned claims,
    /// takes not yet past `read`): a scan of the ring, for cold paths (the
    /// trim after a requeue). `depth` counts those until a consumer passes
    /// them, and a trim then dropped a message RabbitMQ keeps.
    pub fn ready_count(&self) -> u32 {
        let header = self.mem.header();
        // Positions only: a count that orders nothing.
        let read = header.read.load(Ordering::Relaxed);
        let (produced, _) = unpack_cursor(header.produce.cursor.load(Ordering::Relaxed));
        // A `read` seen past `produce` (loads unordered) spans nothing, not
        // a whole ring of stale slots.
        let span = produced.wrapping_sub(read);
        let live = (0..if span > self.geo.slot_count { 0 } else { span })
            .map(|i| read.wrapping_add(i))
            .filter(|&pos| {
                let ctl = Control::unpack(self.slot(pos).control.load(Ordering::Relaxed));
                !(ctl.stamp == pos && matches!(ctl.state, ABANDONED | DELIVERED | DONE))
            })
            .count() as u32;
        live.saturating_add(self.requeued_below_read()).min(self.geo.slot_count)
    }

    /// Approximate counts: `(ready messages, data bytes in use)`; ready
    /// includes claims not yet committed.
    /// Stale by the time it returns when other processes are active.
    pub fn depth(&self) -> (u32, u64) {
        let header = self.mem.header();
        // Oldest cursor first: each later load is at or past the earlier
        // ones, so no difference below can go negative and wrap.
        let (_, free_data) = unpack_cursor(header.reclaim.load(Ordering::Acquire));
        let read = header.read.load(Ordering::Acquire);
        let (produced, produced_data) = unpack_cursor(header.produce.cursor.load(Ordering::Acquire));
        // Requeued messages below `read`: counted, not kept in a counter a
        // killed process could leave wrong; scanned for only while the flag
        // says one may be there (it is the common case that none is, and
        // producers of a length-limited queue that grew call this per claim).
        let requeued = if self.may_have_requeued() { self.requeued_below_read() } else { 0 };
        let ready = produced.wrapping_sub(read).min(self.geo.slot_count).saturating_add(requeued);
        let bytes = u64::from(produced_data.wrapping_sub(free_data).min(self.geo.data_units)) * UNIT as u64;
        (ready.min(self.geo.slot_count), bytes)
    }
}
