//! Priority queues (RabbitMQ's `x-max-priority`). A queue with max priority
//! `P` holds each message in the chain of its level, `min(priority, P)`,
//! where no priority is level 0: level 0 is the queue's own chain
//! (`queues/<name>` and its extents), level `k > 0` a chain of its own
//! whose first segment is `extents/<id>.p<k>.0`. Within a level, messages
//! are a FIFO ring as in any queue, so a requeued message keeps its place,
//! and TTL, dead-lettering, delivery limits and crash recovery work per
//! level unchanged. A consumer takes from the highest level that has a
//! message (`Consumer::poll`). A queue without priorities has one level
//! and pays one branch on a `None`.
//!
//! A level's first segment is created by the first producer that publishes
//! at its priority, by the same create-then-link as any segment (a process
//! killed midway leaves at most a file in `tmp/` for `gc`), and marked in
//! the queue's levels bitmap; consumers and tools attach to the levels the
//! bitmap shows, so a queue costs memory only for the priorities it uses.
//! Deleting the queue removes every level's files with its own.

use std::cell::{Cell, OnceCell};
use std::sync::Arc;

use super::consumer::Consumer;
use super::QueueHandle;
use crate::error::Error;
use crate::options::QueueOptions;
use crate::ring::Ring;
use crate::ring::RingMemory;
use crate::segment::{self, Created, QueueConfig};
use crate::sync::Ordering;

/// Data bytes of a level's first ring at most: most levels of most queues
/// hold little, and a level's chain grows as any queue's does.
const LEVEL_FIRST_RING_BYTES: u64 = 64 << 10;

/// The level a message of `priority` goes to in a queue of max priority
/// `max`: priorities above the max count as the max, as in RabbitMQ.
#[inline]
pub(crate) fn level_of(priority: Option<u8>, max: u8) -> u8 {
    priority.unwrap_or(0).min(max)
}

/// The first segment of priority level `level` (1..=max) of the queue whose
/// first segment is `queue`, created if it does not exist yet.
///
/// # Errors
/// `Corrupt` for a damaged or foreign file under the level's name; `Io`,
/// `NoSpace`.
pub(crate) fn level_queue(queue: &QueueHandle, level: u8) -> Result<Arc<QueueHandle>, Error> {
    let first = &queue.segment().config;
    debug_assert!(level > 0 && level <= first.max_priority);
    let dir = &queue.ns.dir;
    let config = level_config(first, level)?;
    let segment = match segment::open_extent(dir, &config, 0) {
        Ok(segment) => {
            segment.prefault();
            segment
        }
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            let tmp = format!("level-{:016x}", crate::liveness::random_token());
            match segment::create_extent(dir, &tmp, &config)? {
                Created::New(segment) | Created::Existing(segment) => segment,
            }
        }
        Err(e) => return Err(e),
    };
    mark_level(queue, level);
    Ok(Arc::new(QueueHandle { ring: Ring::new(segment), ns: queue.ns.clone() }))
}

/// The config of level `level`'s first segment: the queue's, with a small
/// first ring.
fn level_config(first: &QueueConfig, level: u8) -> Result<QueueConfig, Error> {
    let data_bytes = u64::from(first.geometry.data_units) * crate::ring::layout::UNIT as u64;
    let geometry = QueueOptions::default()
        .capacity_bytes(data_bytes.min(LEVEL_FIRST_RING_BYTES))
        .max_message_bytes(first.max_message_bytes)
        .geometry()?;
    Ok(QueueConfig { level, ..first.extent(0, geometry) })
}

/// The first segments of the levels above 0 that exist of the queue whose
/// first segment is `queue`, highest first (the order consumers take
/// from), as its levels bitmap has them. A missing or damaged level is left
/// out: tools show what they can read.
pub(crate) fn existing_levels(queue: &QueueHandle) -> Vec<Arc<QueueHandle>> {
    levels_in(level_bits(queue)).filter_map(|level| open_level(queue, level)).collect()
}

/// Marks level `level` as existing in the queue's first segment `queue`,
/// for consumers and tools to find it without looking for 255 files.
fn mark_level(queue: &QueueHandle, level: u8) {
    let word = &queue.segment().header().state.levels[usize::from(level / 64)];
    let bit = 1u64 << (level % 64);
    // SYNC POINT LEVELS: Release pairs with the Acquire in `level_bits`:
    // whoever sees the bit finds the level's file complete and linked.
    if word.load(Ordering::Relaxed) & bit == 0 {
        word.fetch_or(bit, Ordering::Release);
    }
}

/// The levels (1..=max) marked as existing in the queue's first segment
/// `queue`; bits read from shared memory above the max are ignored.
pub(crate) fn level_bits(queue: &QueueHandle) -> [u64; 4] {
    let state = &queue.segment().header().state;
    let max = queue.segment().config.max_priority;
    let mut bits = [0u64; 4];
    for (i, out) in bits.iter_mut().enumerate() {
        // Levels 1..=max of the 64 this word holds.
        let (lo, max) = (64 * i, usize::from(max));
        let mask = match max.checked_sub(lo) {
            None => 0,
            Some(top) if top >= 63 => u64::MAX,
            Some(top) => (1u64 << (top + 1)) - 1,
        };
        // SYNC POINT LEVELS: see `mark_level`.
        *out = state.levels[i].load(Ordering::Acquire) & mask & if i == 0 { !1 } else { u64::MAX };
    }
    bits
}

/// The levels set in `bits`, highest first.
pub(crate) fn levels_in(bits: [u64; 4]) -> impl Iterator<Item = u8> {
    (1..=255u8).rev().filter(move |&level| bits[usize::from(level / 64)] & (1u64 << (level % 64)) != 0)
}

/// Level `level`'s first segment if it exists (never creates it).
pub(crate) fn open_level(queue: &QueueHandle, level: u8) -> Option<Arc<QueueHandle>> {
    let first = &queue.segment().config;
    let segment = segment::open_extent(&queue.ns.dir, &QueueConfig { level, ..first.clone() }, 0).ok()?;
    Some(Arc::new(QueueHandle { ring: Ring::new(segment), ns: queue.ns.clone() }))
}

/// A priority queue's consumers of levels above 0, attached as the levels
/// come to exist.
pub(crate) struct Levels {
    /// Level `k` at `k - 1`; boxed, so that a delivery's reference to its
    /// level's consumer stays put.
    by_level: Box<[OnceCell<Box<Consumer>>]>,
    /// The levels bitmap as last looked at.
    seen: Cell<[u64; 4]>,
}

impl Levels {
    pub(crate) fn new(max: u8) -> Self {
        Self { by_level: (0..max).map(|_| OnceCell::new()).collect(), seen: Cell::new([0; 4]) }
    }

    /// The attached levels' consumers, highest level first.
    pub(crate) fn attached(&self) -> impl Iterator<Item = &Consumer> {
        self.attached_numbered().map(|(_, consumer)| consumer)
    }

    /// The attached levels' consumers with their levels, highest first.
    pub(crate) fn attached_numbered(&self) -> impl Iterator<Item = (u8, &Consumer)> {
        self.by_level.iter().enumerate().rev().filter_map(|(i, level)| level.get().map(|c| (i as u8 + 1, &**c)))
    }

    /// Level `level`'s consumer, if attached.
    pub(crate) fn get(&self, level: u8) -> Option<&Consumer> {
        self.by_level.get(usize::from(level).checked_sub(1)?)?.get().map(|c| &**c)
    }

    /// Makes the next `refresh` look again at every level: one that could
    /// not be attached (no free agent row, a file error) is retried, once a
    /// sweep.
    pub(crate) fn look_again(&self) {
        self.seen.set([0; 4]);
    }

    /// Attaches to the levels created since the last look, with
    /// `attach(level)`. Cheap when nothing changed: four loads.
    pub(crate) fn refresh(&self, queue: &QueueHandle, attach: impl Fn(u8) -> Option<Consumer>) {
        let bits = level_bits(queue);
        if bits == self.seen.get() {
            return;
        }
        self.seen.set(bits);
        for level in levels_in(bits) {
            let slot = &self.by_level[usize::from(level) - 1];
            if slot.get().is_none() {
                if let Some(consumer) = attach(level) {
                    let _ = slot.set(Box::new(consumer));
                }
            }
        }
    }
}
