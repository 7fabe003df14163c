//! Consumer priorities (RabbitMQ's `x-priority` consumer argument): a
//! consumer takes a message only if no consumer of higher priority could
//! take it now, that is, none has prefetch room left. Each consumer keeps
//! its priority and its room (`credit`) in its agent row; the room is
//! published whenever it changes on the consumer's side (a delivery, a
//! settle, a poll). Queues where every consumer has priority 0 never look:
//! the queue's `ranked_consumers` flag is set by the first consumer with
//! another priority.
//!
//! A dead consumer's row stays until a sweep frees it; until then it may
//! hold lower-priority consumers back, for at most the recovery bound.

use super::layout::{owner_index, AGENT_SLOTS, ROLE_CONSUMER};
use super::{Ring, RingMemory};
use crate::sync::Ordering;

impl<M: RingMemory> Ring<M> {
    /// Sets consumer `owner`'s priority; a non-zero one makes every
    /// consumer of the queue defer to higher ones from now on.
    ///
    /// # Examples
    /// ```
    /// use shmq::ring::{heap::HeapMemory, Geometry, Ring};
    /// let ring = Ring::new(HeapMemory::new(Geometry { slot_count: 4, data_units: 64 }));
    /// let low = ring.register_agent(1, 2, 1, 0).unwrap();
    /// let high = ring.register_agent(2, 2, 2, 1).unwrap();
    /// ring.set_consumer_priority(high, 10);
    /// assert!(ring.outranked(low));
    /// ring.publish_credit(high, 0); // its prefetch is full
    /// assert!(!ring.outranked(low));
    /// ```
    pub fn set_consumer_priority(&self, owner: u16, priority: i32) {
        self.mem.agent(owner_index(owner)).priority.store(priority as u32, Ordering::Relaxed);
        if priority != 0 {
            self.mem.header().state.ranked_consumers.store(1, Ordering::Relaxed);
        }
    }

    /// Publishes how many more messages consumer `owner` can take now.
    ///
    /// # Examples
    /// See [`set_consumer_priority`](Ring::set_consumer_priority).
    #[inline]
    pub fn publish_credit(&self, owner: u16, credit: u32) {
        let row = &self.mem.agent(owner_index(owner)).credit;
        if row.load(Ordering::Relaxed) != credit {
            row.store(credit, Ordering::Relaxed);
        }
    }

    /// True if the queue has consumer priorities in use.
    ///
    /// # Examples
    /// See [`set_consumer_priority`](Ring::set_consumer_priority).
    #[inline]
    pub fn has_ranked_consumers(&self) -> bool {
        self.mem.header().state.ranked_consumers.load(Ordering::Relaxed) != 0
    }

    /// True if a consumer of higher priority than `owner` is attached and
    /// has room for a message: `owner` should leave the message to it.
    /// Rows are read from shared memory and only compared: any bits give
    /// some answer, never a fault.
    ///
    /// # Examples
    /// See [`set_consumer_priority`](Ring::set_consumer_priority).
    pub fn outranked(&self, owner: u16) -> bool {
        let mine = owner_index(owner);
        let my_priority = self.mem.agent(mine).priority.load(Ordering::Relaxed) as i32;
        (0..AGENT_SLOTS).filter(|&i| i != mine).any(|i| {
            let agent = self.mem.agent(i);
            // SYNC POINT AGENT: pairs with `register_agent`/`release_agent`.
            agent.token.load(Ordering::Acquire) != 0
                && agent.role.load(Ordering::Relaxed) == ROLE_CONSUMER
                && agent.priority.load(Ordering::Relaxed) as i32 > my_priority
                && agent.credit.load(Ordering::Relaxed) != 0
        })
    }
}
