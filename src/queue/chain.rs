//! Elastic queues: a queue is a chain of rings. Producers claim in the
//! newest (the tail); when it is full they close it and link a larger one.
//! Consumers drain the oldest first and move on when a closed ring has
//! dispatched everything; a closed ring whose messages are all settled is
//! retired (its file removed, its data pages given back at once). A tail
//! that is large and idle is replaced by a first-size one, so memory follows
//! the backlog both ways. docs/ARCHITECTURE.md, "Elastic queues", gives the
//! protocol and why every step is safe to die after.
//!
//! The chain's state is three words in the first segment's chain line:
//! `head` and `tail` (sequence numbers) and every ring's own `closed`.
//! Segment 0 is the queue's file `queues/<name>`; segment `n > 0` is
//! `extents/<queue id>.<n>`. Growth and shrinking take the namespace's
//! growth lock (a `flock`, released by the kernel if its holder dies), which
//! also makes the memory-budget check exact; the data path never takes it.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

use super::QueueHandle;
use crate::error::Error;
use crate::namespace_state::NamespaceState;
use crate::nsdir::Sub;
use crate::options::{slots_for, BYTES_PER_SLOT};
use crate::ring::layout::UNIT;
use crate::ring::{Geometry, Ring, RingMemory, MAX_DATA_UNITS, MAX_SLOTS};
use crate::segment::{self, Created};
use crate::sync::Ordering;

/// The namespace's growth lock file.
const GROW_LOCK: &str = "grow.lock";

/// How long a growth step waits for the growth lock before it reports the
/// holder (a step takes milliseconds; a longer wait means a stuck holder).
const GROW_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Each new ring is this many times larger than the one it follows.
const GROWTH_FACTOR: u32 = 4;

/// Rings grow no larger than this (data bytes): larger backlogs take more
/// rings, so that a retired ring gives back at most this much at a time.
const MAX_RING_DATA_BYTES: u64 = 256 << 20;

/// The most rings one queue has at once: with rings of up to 256 MiB,
/// 64 GiB of backlog. A chain read from shared memory that claims more is
/// damaged, and is walked no further than this.
pub(crate) const MAX_RINGS: u64 = 256;

/// What [`Chain::grow`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grown {
    /// A later ring is the tail now: claim there.
    Moved,
    /// The namespace's memory budget has no room for a larger ring.
    BudgetReached,
}

/// One process's view of a queue's chain: the first segment, and the later
/// ones this handle mapped.
pub(crate) struct Chain {
    pub(crate) first: Arc<QueueHandle>,
    /// Later segments mapped by this handle, oldest first.
    later: RefCell<Vec<Arc<QueueHandle>>>,
}

impl Chain {
    pub(crate) fn new(first: Arc<QueueHandle>) -> Self {
        Self { first, later: RefCell::new(Vec::new()) }
    }

    fn ns(&self) -> &NamespaceState {
        &self.first.ns
    }

    /// The oldest segment that may hold messages.
    #[inline]
    pub(crate) fn head(&self) -> u64 {
        // SYNC POINT CHAIN: Acquire pairs with the Release CAS in `retire`.
        self.first.segment().header().chain.head.load(Ordering::Acquire)
    }

    /// The segment producers claim in. Read from shared memory, so bounded:
    /// never more than [`MAX_RINGS`] past the head, never before it.
    #[inline]
    pub(crate) fn tail(&self) -> u64 {
        // SYNC POINT CHAIN: Acquire pairs with the Release store in
        // `link_next`: the new segment's file is complete and linked.
        let tail = self.first.segment().header().chain.tail.load(Ordering::Acquire);
        let head = self.head();
        tail.clamp(head, head.saturating_add(MAX_RINGS - 1))
    }

    /// True once the queue was deleted (flagged in its first segment).
    #[inline]
    pub(crate) fn is_deleted(&self) -> bool {
        self.first.is_deleted()
    }

    /// Segment `seq`, mapped (cached for this handle); `None` if it is gone
    /// (retired) or not created yet.
    ///
    /// # Errors
    /// A damaged or foreign file under the segment's name.
    pub(crate) fn segment(&self, seq: u64) -> Result<Option<Arc<QueueHandle>>, Error> {
        if seq == 0 {
            return Ok(Some(self.first.clone()));
        }
        if let Some(found) = self.later.borrow().iter().find(|h| h.seq() == seq) {
            return Ok(Some(found.clone()));
        }
        let dir = &self.ns().dir;
        match segment::open_extent(dir, &self.first.segment().config, seq) {
            Ok(mapped) => {
                mapped.prefault();
                let handle = Arc::new(QueueHandle { ring: Ring::new(mapped), ns: self.first.ns.clone() });
                let mut later = self.later.borrow_mut();
                later.push(handle.clone());
                later.sort_by_key(|h| h.seq());
                Ok(Some(handle))
            }
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Forgets mapped segments older than the head: retired, so nothing is
    /// left in them (their data pages were given back already; this unmaps
    /// the rest). Handles that still hold deliveries there keep their own
    /// reference.
    pub(crate) fn forget_retired(&self) {
        let head = self.head();
        self.later.borrow_mut().retain(|h| h.seq() >= head);
    }

    /// Makes a ring after `from` the tail: `from` is the tail and full (or
    /// closed by a grower that died before linking). `min_units` is the
    /// record that must fit, `min_slots` the messages claimed at once (a
    /// batch's chunk). Creates the next ring, larger, unless the
    /// budget has no room; a ring a dead grower created is used as it is.
    ///
    /// # Errors
    /// `LockTimeout` if the growth lock stays held; file errors.
    pub(crate) fn grow(&self, from: &QueueHandle, min_units: u32, min_slots: u32) -> Result<Grown, Error> {
        let _lock = self.lock_growth()?;
        if self.tail() != from.seq() {
            return Ok(Grown::Moved);
        }
        // `from` may be a hostile chain's last sequence number: no overflow.
        if from.seq().saturating_add(1) >= self.head().saturating_add(MAX_RINGS) {
            return Ok(Grown::BudgetReached);
        }
        let geometry = next_geometry(from.ring.geometry(), min_units, min_slots, from.ring.average_record_bytes());
        self.link_next(from, geometry, true)
    }

    /// Replaces an idle tail larger than the first ring with a first-size
    /// one, so its memory goes back once it is retired. Returns true if it
    /// did. Only when `tail` is the tail, open, and empty (nothing ready,
    /// unacked or being written).
    pub(crate) fn shrink_if_idle(&self, tail: &QueueHandle) -> bool {
        let first = self.first.ring.geometry();
        if tail.seq() == 0 || tail.ring.geometry().data_units <= first.data_units || !tail.ring.is_empty() {
            return false;
        }
        let Ok(_lock) = self.lock_growth() else { return false };
        if self.tail() != tail.seq() || tail.ring.is_closed() || !tail.ring.is_empty() {
            return false;
        }
        // No budget check: the step gives back more than it takes, and is
        // most needed when the budget is nearly spent.
        matches!(self.link_next(tail, first, false), Ok(Grown::Moved))
    }

    /// Under the growth lock: creates (or finds) segment `from + 1`, closes
    /// `from`, links the new one as the tail. Each step is safe to die
    /// after: a later grower finds the file and the closed ring and
    /// finishes the job. `check_budget`: refuse (`BudgetReached`) if the
    /// new ring would take the namespace past its memory budget.
    fn link_next(&self, from: &QueueHandle, geometry: Geometry, check_budget: bool) -> Result<Grown, Error> {
        // A ring at u64::MAX (a hostile chain) has no successor: saturating
        // here "linked" `from` again and its producers spun for ever.
        let Some(next) = from.seq().checked_add(1) else {
            return Err(Error::Corrupt {
                path: from.segment().path.clone(),
                reason: "the queue's chain is at its last sequence number".into(),
            });
        };
        let dir = &self.ns().dir;
        let config = self.first.segment().config.extent(next, geometry);
        let exists = dir.exists(Sub::Extents, &segment::extent_name(config.queue_id, config.level, next));
        if !exists {
            let size = crate::segment::layout::QueueOffsets::for_geometry(geometry).total;
            if check_budget && segment::bytes_in_use(dir).saturating_add(size) > self.ns().memory_budget {
                return Ok(Grown::BudgetReached);
            }
            let tmp = format!("extent-{:016x}", crate::liveness::random_token());
            match segment::create_extent(dir, &tmp, &config) {
                Ok(Created::New(_)) | Ok(Created::Existing(_)) => {}
                Err(Error::NoSpace { .. }) => return Ok(Grown::BudgetReached),
                Err(e) => return Err(e),
            }
        }
        from.ring.close();
        // SYNC POINT CHAIN: Release pairs with the Acquire loads in `tail`.
        self.first.segment().header().chain.tail.store(next, Ordering::Release);
        // Consumers asleep on the closed ring move on.
        from.ring.notify_consumers();
        Ok(Grown::Moved)
    }

    /// Retires drained rings at the head: advances `head` past each closed
    /// ring whose messages are all settled, gives its data pages back and
    /// removes its file. Returns how many it retired.
    pub(crate) fn retire(&self) -> u32 {
        let mut retired = 0;
        for _ in 0..MAX_RINGS {
            let head = self.head();
            if head >= self.tail() {
                return retired;
            }
            let segment = match self.segment(head) {
                Ok(Some(segment)) => segment,
                // Removed by a retirer that died before moving `head`.
                Ok(None) => {
                    self.advance_head(head);
                    continue;
                }
                Err(_) => return retired,
            };
            // Abandoned claims that raced the close sit past `read`: step
            // over them so that the ring can count as drained.
            segment.ring.skip_dead_head();
            segment.ring.reclaim();
            if !segment.ring.is_drained() {
                return retired;
            }
            if self.advance_head(head) {
                segment.segment().release_data();
                if head > 0 {
                    self.ns().dir.unlink(
                        Sub::Extents,
                        &segment::extent_name(segment.segment().config.queue_id, segment.segment().config.level, head),
                    );
                }
                retired += 1;
            }
        }
        retired
    }

    fn advance_head(&self, head: u64) -> bool {
        if head == u64::MAX {
            return false;
        }
        // SYNC POINT CHAIN: Release pairs with the Acquire loads in `head`.
        let chain = &self.first.segment().header().chain;
        chain.head.compare_exchange(head, head + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    /// Ready messages (and bytes in use) in all segments from the head.
    pub(crate) fn depth(&self) -> (u64, u64) {
        let (mut ready, mut bytes) = (0u64, 0u64);
        for seq in self.head()..=self.tail() {
            if let Ok(Some(segment)) = self.segment(seq) {
                let (r, b) = segment.ring.depth();
                ready += u64::from(r);
                bytes += b;
            }
        }
        (ready, bytes)
    }

    /// Every mapped segment from the head to the tail, oldest first.
    pub(crate) fn segments(&self) -> Vec<Arc<QueueHandle>> {
        (self.head()..=self.tail()).filter_map(|seq| self.segment(seq).ok().flatten()).collect()
    }

    /// Takes the namespace's growth lock (waiting at most
    /// [`GROW_LOCK_WAIT`]); released when the file is dropped, or by the
    /// kernel if this process dies.
    fn lock_growth(&self) -> Result<std::fs::File, Error> {
        let dir = &self.ns().dir;
        let lock = dir.open_or_create_file(Sub::Root, GROW_LOCK)?;
        let start = Instant::now();
        loop {
            match flock(&lock, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(lock),
                Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::io(dir.path_of(Sub::Root, GROW_LOCK), e.into())),
            }
            let waited = start.elapsed();
            if waited >= GROW_LOCK_WAIT {
                return Err(Error::LockTimeout { path: dir.path_of(Sub::Root, GROW_LOCK), waited, holder: None });
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// The geometry of the ring after one of `geometry`: [`GROWTH_FACTOR`]
/// times larger, at most [`MAX_RING_DATA_BYTES`], and always large enough
/// for a record of `min_units` (at most half a ring). Its slots follow the
/// records seen in the full ring (`average_bytes`): one per record of that
/// size, so small messages do not run out of slots with most of the data
/// area unused; never fewer than one per 128 bytes (the first ring's
/// ratio), nor more than one per 16, nor fewer than `min_slots` (the chunk
/// that must fit: a ring after one of small records may have fewer slots).
pub(crate) fn next_geometry(geometry: Geometry, min_units: u32, min_slots: u32, average_bytes: Option<u64>) -> Geometry {
    let cap = (MAX_RING_DATA_BYTES / UNIT as u64) as u32;
    let grown = geometry.data_units.saturating_mul(GROWTH_FACTOR).min(cap).max(geometry.data_units);
    // `checked_`: past 2^31 `next_power_of_two` panics (debug) or gives 0.
    let needed = min_units.saturating_mul(2).checked_next_power_of_two().map_or(MAX_DATA_UNITS, |n| n.min(MAX_DATA_UNITS));
    let data_units = grown.max(needed);
    let bytes_per_slot = average_bytes.map_or(BYTES_PER_SLOT, |b| b.clamp(16, BYTES_PER_SLOT).next_power_of_two());
    let slot_count = (u64::from(data_units) * UNIT as u64 / bytes_per_slot).clamp(2, u64::from(MAX_SLOTS)) as u32;
    let min_slots = min_slots.clamp(2, MAX_SLOTS).next_power_of_two();
    Geometry { slot_count: slot_count.max(slots_for(data_units)).max(min_slots), data_units }
}

#[cfg(all(test, not(shmq_loom)))]
mod tests {
    use super::*;

    #[test]
    fn rings_grow_by_the_factor_up_to_the_cap_and_always_fit_the_record() {
        let first = Geometry { slot_count: 1 << 16, data_units: 1 << 20 };
        let next = next_geometry(first, 1, 1, None);
        assert_eq!(next.data_units, 1 << 22);
        let capped = next_geometry(Geometry { slot_count: 1 << 22, data_units: 1 << 25 }, 1, 1, None);
        assert_eq!(u64::from(capped.data_units) * UNIT as u64, MAX_RING_DATA_BYTES);
        // A 16 MiB record needs a ring of at least 32 MiB.
        let big = next_geometry(Geometry { slot_count: 2, data_units: 16 }, (16 << 20) / UNIT as u32, 1, None);
        assert!(u64::from(big.data_units) * UNIT as u64 >= 32 << 20);
    }

    #[test]
    fn small_records_get_more_slots_in_the_next_ring_large_ones_no_fewer() {
        let first = Geometry { slot_count: 1 << 16, data_units: 1 << 20 };
        // 64-byte records: one slot per 64 bytes instead of per 128.
        assert_eq!(next_geometry(first, 1, 1, Some(64)).slot_count, 1 << 19);
        // 24-byte records round up to 32.
        assert_eq!(next_geometry(first, 1, 1, Some(24)).slot_count, 1 << 20);
        // Large records keep the first ring's ratio.
        assert_eq!(next_geometry(first, 1, 1, Some(4096)).slot_count, 1 << 18);
    }

    #[test]
    fn degenerate_inputs_give_a_valid_geometry_with_room_for_the_record_and_the_chunk() {
        let shapes = [
            Geometry { slot_count: 2, data_units: 16 },
            Geometry { slot_count: 32, data_units: 64 },
            Geometry { slot_count: MAX_SLOTS, data_units: MAX_DATA_UNITS },
        ];
        let largest = (crate::options::MAX_MESSAGE_BYTES / UNIT as u64) as u32;
        for geometry in shapes {
            for units in [0, 1, largest, u32::MAX] {
                for slots in [0, 1, 32, 64] {
                    // A ring of empty records, one of huge ones, none at all.
                    for average in [None, Some(0), Some(1), Some(u64::MAX)] {
                        let next = next_geometry(geometry, units, slots, average);
                        assert!(next.slot_count.is_power_of_two() && (2..=MAX_SLOTS).contains(&next.slot_count), "{next:?}");
                        assert!(next.data_units.is_power_of_two() && (geometry.data_units..=MAX_DATA_UNITS).contains(&next.data_units));
                        let room = (2 * u64::from(units)).min(u64::from(MAX_DATA_UNITS));
                        assert!(next.slot_count >= slots && u64::from(next.data_units) >= room, "{next:?}");
                    }
                }
            }
        }
        // After a ring of 16-byte records (one slot per 16 bytes), one of
        // 128-byte records had half its slots: a batch chunk sized for the
        // full ring could never be claimed in the new one.
        assert_eq!(next_geometry(Geometry { slot_count: 32, data_units: 64 }, 0, 32, Some(128)).slot_count, 32);
    }
}
