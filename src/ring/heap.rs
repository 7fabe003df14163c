//! A heap-backed ring: the same algorithm as the mmap one, for loom models
//! and unit tests.

use super::control::pack_cursor;
use super::layout::*;
use super::{init_positions, Geometry, RingMemory};
use crate::sync::{AtomicU32, AtomicU64, DataCell, EventCount, Ordering};

fn counters() -> Counters {
    Counters {
        published: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        redelivered: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        expired: AtomicU64::new(0),
        dead_lettered: AtomicU64::new(0),
    }
}

/// Ring memory on the heap.
///
/// # Examples
/// ```
/// # #[cfg(not(shmq_loom))] {
/// use shmq::ring::{heap::HeapMemory, Geometry, Ring};
/// let ring = Ring::new(HeapMemory::new(Geometry { slot_count: 4, data_units: 16 }));
/// assert_eq!(ring.depth().0, 0);
/// # }
/// ```
pub struct HeapMemory {
    geometry: Geometry,
    header: Box<RingHeader>,
    slots: Box<[Slot]>,
    agents: Box<[AgentSlot]>,
    data: Box<[DataCell]>,
    lifecycle: super::Lifecycle,
}

impl HeapMemory {
    /// Allocates an empty ring.
    ///
    /// # Panics
    /// If either count is not a power of two.
    pub fn new(geometry: Geometry) -> Self {
        Self::starting_at(geometry, 0, 0)
    }

    /// Allocates an empty ring whose next message takes slot position
    /// `slot` and data unit `data` (tests start near 2^32 to cross the wrap).
    ///
    /// # Panics
    /// If either count is not a power of two.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// use shmq::ring::{heap::HeapMemory, Geometry, Ring};
    /// let geometry = Geometry { slot_count: 4, data_units: 16 };
    /// let ring = Ring::new(HeapMemory::starting_at(geometry, u32::MAX - 1, u32::MAX - 3));
    /// assert_eq!(ring.depth().0, 0);
    /// # }
    /// ```
    pub fn starting_at(geometry: Geometry, slot: u32, data: u32) -> Self {
        assert!(geometry.slot_count.is_power_of_two() && geometry.data_units.is_power_of_two());
        let header = Box::new(RingHeader {
            produce: Line(ProduceLine { cursor: AtomicU64::new(pack_cursor(0, 0)), epoch: AtomicU32::new(0) }),
            read: Line(AtomicU32::new(0)),
            reclaim: Line(AtomicU64::new(pack_cursor(0, 0))),
            requeued: Line(AtomicU32::new(0)),
            not_empty: Line(EventCount::new()),
            not_full: Line(EventCount::new()),
            state: Line(QueueState {
                deleted: AtomicU32::new(0),
                had_consumer: AtomicU32::new(0),
                retired: counters(),
                last_used_ms: AtomicU64::new(0),
                exclusive_consumer: AtomicU64::new(0),
                active_consumer: AtomicU64::new(0),
                next_ticket: AtomicU32::new(0),
                ranked_consumers: AtomicU32::new(0),
                levels: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            }),
            chain: Line(ChainState {
                closed: AtomicU32::new(0),
                reserved: AtomicU32::new(0),
                head: AtomicU64::new(0),
                tail: AtomicU64::new(0),
                ready_bytes: AtomicU64::new(0),
            }),
        });
        let slots = (0..geometry.slot_count)
            .map(|_| Slot {
                control: AtomicU64::new(0),
                data_start: AtomicU32::new(0),
                data_end: AtomicU32::new(0),
                props_len: AtomicU32::new(0),
                body_len: AtomicU32::new(0),
                expires_at_ms: AtomicU64::new(0),
            })
            .collect();
        let agents = (0..AGENT_SLOTS)
            .map(|_| AgentSlot {
                token: AtomicU64::new(0),
                intent: AtomicU64::new(0),
                role: AtomicU32::new(0),
                pid: AtomicU32::new(0),
                unacked: AtomicU32::new(0),
                prefetch: AtomicU32::new(0),
                counters: counters(),
                generation: AtomicU32::new(0),
                ticket: AtomicU32::new(0),
                releasing: AtomicU64::new(0),
                priority: AtomicU32::new(0),
                credit: AtomicU32::new(0),
            })
            .collect();
        let data_pos = data;
        let data = (0..geometry.data_units as usize * UNIT).map(|_| DataCell::new()).collect();
        let memory = Self { geometry, header, slots, agents, data, lifecycle: super::Lifecycle::default() };
        init_positions(&memory, slot, data_pos);
        memory
    }

    /// Sets what the ring does with expired and over-delivered messages, as
    /// a queue's dead-letter settings do.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// use shmq::ring::{heap::HeapMemory, Geometry, Lifecycle};
    /// let lifecycle = Lifecycle { hold_dead: true, delivery_limit: Some(1) };
    /// let memory = HeapMemory::new(Geometry { slot_count: 4, data_units: 16 }).with_lifecycle(lifecycle);
    /// # let _ = memory;
    /// # }
    /// ```
    #[must_use]
    pub fn with_lifecycle(mut self, lifecycle: super::Lifecycle) -> Self {
        self.lifecycle = lifecycle;
        self
    }

    /// Marks the queue deleted, as `Namespace::delete_queue` does.
    pub fn mark_deleted(&self) {
        // SYNC POINT DELETED: pairs with `is_deleted`.
        self.header.state.deleted.store(1, Ordering::Release);
    }

    /// True once marked deleted.
    pub fn is_deleted(&self) -> bool {
        // SYNC POINT DELETED.
        self.header.state.deleted.load(Ordering::Acquire) != 0
    }
}

impl RingMemory for HeapMemory {
    fn geometry(&self) -> Geometry {
        self.geometry
    }
    fn header(&self) -> &RingHeader {
        &self.header
    }
    fn slot(&self, index: u32) -> &Slot {
        &self.slots[index as usize]
    }
    fn lifecycle(&self) -> super::Lifecycle {
        self.lifecycle
    }
    fn agent(&self, index: usize) -> &AgentSlot {
        &self.agents[index]
    }
    unsafe fn write_data(&self, offset: usize, src: &[u8]) -> bool {
        let Some(cells) = offset.checked_add(src.len()).and_then(|end| self.data.get(offset..end)) else {
            return false;
        };
        for (cell, &byte) in cells.iter().zip(src) {
            // SAFETY: the caller owns the claimed record these bytes lie in.
            unsafe { cell.set(byte) };
        }
        true
    }
    unsafe fn read_data(&self, offset: usize, dst: &mut [u8]) -> bool {
        let Some(cells) = offset.checked_add(dst.len()).and_then(|end| self.data.get(offset..end)) else {
            return false;
        };
        for (byte, cell) in dst.iter_mut().zip(cells) {
            // SAFETY: the caller holds the record DELIVERED; no one writes it.
            *byte = unsafe { cell.get() };
        }
        true
    }
}
