//! Single active consumer (RabbitMQ's `x-single-active-consumer`): of the
//! consumers attached to a queue, one receives; the others stand by. When
//! the active one closes, or dies and its row is swept, the oldest
//! registered consumer left takes over, and the messages the old one held
//! are back in the queue at their places, so they come first.
//!
//! The state is one word in the queue's first segment: 0 or 1 + the active
//! consumer's owner id. Any consumer may *elect*: if the word names no live
//! consumer row, it CASes in the consumer with the oldest registration
//! ticket. The CAS is the only write, so at most one consumer is named at
//! any time, and a consumer takes messages only while it is the one named.
//! A process killed anywhere leaves a word naming a row that is live (its
//! owner will be swept, and the row freed, by the next sweep) or stale (the
//! next election replaces it): never a stuck queue.

use super::layout::{owner_id, owner_index, AGENT_SLOTS, ROLE_CONSUMER};
use super::{Ring, RingMemory};
use crate::sync::Ordering;

/// The active-consumer word's value that names `owner`.
fn named(owner: u16) -> u64 {
    u64::from(owner) + 1
}

impl<M: RingMemory> Ring<M> {
    /// Takes a registration ticket for the consumer in row `index`: its
    /// place in line for single active consumer. Called by the row's
    /// holder right after it registered.
    pub(super) fn take_ticket(&self, index: usize) {
        let state = &self.mem.header().state;
        let mut ticket = state.next_ticket.fetch_add(1, Ordering::Relaxed);
        if ticket == 0 {
            // 0 means "no ticket"; the counter wrapped.
            ticket = state.next_ticket.fetch_add(1, Ordering::Relaxed);
        }
        // SYNC POINT TICKET: Release pairs with the Acquire load in
        // `oldest_consumer`.
        self.mem.agent(index).ticket.store(ticket, Ordering::Release);
    }

    /// True if consumer `owner` is the queue's single active consumer now,
    /// electing one first if the word names no live consumer.
    ///
    /// # Examples
    /// ```
    /// use shmq::ring::{heap::HeapMemory, Geometry, Ring};
    /// let ring = Ring::new(HeapMemory::new(Geometry { slot_count: 4, data_units: 64 }));
    /// let first = ring.register_agent(1, 2, 1, 0).unwrap();
    /// let second = ring.register_agent(2, 2, 2, 0).unwrap();
    /// assert!(!ring.is_active_consumer(second));
    /// assert!(ring.is_active_consumer(first));
    /// ring.release_agent(first, 1);
    /// assert!(ring.is_active_consumer(second));
    /// ```
    pub fn is_active_consumer(&self, owner: u16) -> bool {
        // SYNC POINT ACTIVE: Acquire pairs with the CAS in `elect_active`.
        let word = self.mem.header().state.active_consumer.load(Ordering::Acquire);
        word == named(owner) || self.elect_active(None) == Some(owner)
    }

    /// The single active consumer, electing the oldest registered consumer
    /// (other than `except`) if the word names no live consumer; `None` if
    /// no consumer is attached.
    ///
    /// # Examples
    /// ```
    /// use shmq::ring::{heap::HeapMemory, Geometry, Ring};
    /// let ring = Ring::new(HeapMemory::new(Geometry { slot_count: 4, data_units: 64 }));
    /// assert_eq!(ring.elect_active(None), None);
    /// let consumer = ring.register_agent(1, 2, 1, 0).unwrap();
    /// assert_eq!(ring.elect_active(None), Some(consumer));
    /// ```
    pub fn elect_active(&self, except: Option<u16>) -> Option<u16> {
        let word = &self.mem.header().state.active_consumer;
        // SYNC POINT ACTIVE: see the CAS below.
        let mut current = word.load(Ordering::Acquire);
        loop {
            // Any bits from shared memory: a word beyond every owner id
            // names nobody.
            let holder = u16::try_from(current.wrapping_sub(1)).ok().filter(|_| current != 0);
            if let Some(holder) = holder.filter(|&h| Some(h) != except && self.is_live_consumer(h)) {
                return Some(holder);
            }
            let next = self.oldest_consumer(except);
            let value = next.map_or(0, named);
            if value == current {
                return next;
            }
            // SYNC POINT ACTIVE: AcqRel; every reader of the word acquires
            // it. The CAS from the value judged stale makes the election
            // exact: a racing elector's result is seen and checked again.
            match word.compare_exchange(current, value, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return next,
                Err(actual) => current = actual,
            }
        }
    }

    /// Consumer `owner` is leaving: if it is the active one, hands over to
    /// the next in line and wakes the standbys. Call before releasing its
    /// row.
    ///
    /// # Examples
    /// See [`is_active_consumer`](Ring::is_active_consumer).
    pub fn hand_over(&self, owner: u16) {
        // SYNC POINT ACTIVE: as in `is_active_consumer`.
        if self.mem.header().state.active_consumer.load(Ordering::Acquire) == named(owner) {
            self.elect_active(Some(owner));
            self.mem.header().not_empty.notify();
        }
    }

    /// True if owner id `owner` (possibly read from shared memory: any
    /// bits) names a consumer row that is registered to it now.
    fn is_live_consumer(&self, owner: u16) -> bool {
        let index = owner_index(owner);
        if index >= AGENT_SLOTS {
            return false;
        }
        let agent = self.mem.agent(index);
        // SYNC POINT AGENT / AGENT-GEN: as in `lock_dead_agents`.
        agent.token.load(Ordering::Acquire) != 0
            && agent.role.load(Ordering::Relaxed) == ROLE_CONSUMER
            && owner_id(index, agent.generation.load(Ordering::Acquire)) == owner
    }

    /// The registered consumer (other than `except`) with the oldest
    /// ticket. Tickets wrap: the oldest is the one furthest behind the
    /// next ticket.
    fn oldest_consumer(&self, except: Option<u16>) -> Option<u16> {
        let mut seen: [Option<(u32, u16)>; AGENT_SLOTS] = [None; AGENT_SLOTS];
        for (index, slot) in seen.iter_mut().enumerate() {
            let agent = self.mem.agent(index);
            // SYNC POINT AGENT / AGENT-GEN: as in `lock_dead_agents`.
            if agent.token.load(Ordering::Acquire) == 0 || agent.role.load(Ordering::Relaxed) != ROLE_CONSUMER {
                continue;
            }
            let owner = owner_id(index, agent.generation.load(Ordering::Acquire));
            // SYNC POINT TICKET: pairs with the Release store in
            // `take_ticket`; 0 is a row still registering.
            let ticket = agent.ticket.load(Ordering::Acquire);
            if ticket == 0 || Some(owner) == except {
                continue;
            }
            *slot = Some((ticket, owner));
        }
        // Read after the rows: every ticket seen was taken before this
        // value (its row's Acquire orders the load), so no ticket taken
        // during the scan looks 2^32 old.
        let next_ticket = self.mem.header().state.next_ticket.load(Ordering::Relaxed);
        seen.iter().flatten().max_by_key(|(ticket, _)| next_ticket.wrapping_sub(*ticket)).map(|&(_, owner)| owner)
    }
}
