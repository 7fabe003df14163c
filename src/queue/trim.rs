//! drop-head after a requeue. A requeue is never refused, so it can take a
//! queue past its `max_length`/`max_length_bytes`; RabbitMQ then drops from
//! the head (where requeued messages go) until the queue is within its
//! limits again, and so does this (python/tests/test_limits_vs_rabbitmq.py
//! compares the two).

use std::sync::Arc;

use super::chain::Chain;
use super::dead_letter::{drop_oldest, DeadLetterer};
use super::{bump, Agent};
use crate::liveness::Peer;
use crate::options::Overflow;
use crate::ring::layout::{Counters, ROLE_PRODUCER};

/// Drops the oldest ready messages (requeued ones first) while the queue is
/// over its limits, if its policy is drop-head; counts them in `counters`.
pub(crate) fn trim_to_limits(chain: &Chain, peer: &Arc<Peer>, counters: &Counters, dead_letters: &mut DeadLetterer) {
    let config = &chain.first.segment().config;
    if config.overflow.unwrap_or_default() != Overflow::DropOldest || (config.max_length.is_none() && config.max_length_bytes.is_none()) {
        return;
    }
    let over = || {
        let rings = chain.segments();
        // Not `depth`: an abandoned claim past `read` is no message.
        let ready: u64 = rings.iter().map(|r| u64::from(r.ring.ready_count())).sum();
        // Counts from shared memory: summed saturating, never overflowing.
        let bytes = rings.iter().map(|r| r.ring.ready_bytes()).fold(0u64, u64::saturating_add);
        config.max_length.is_some_and(|n| ready > n) || config.max_length_bytes.is_some_and(|n| bytes > n)
    };
    while over() {
        let dropped = chain.segments().into_iter().any(|ring| {
            Agent::attach(ring, peer.clone(), ROLE_PRODUCER, 0).is_ok_and(|agent| {
                let dropped = drop_oldest(&agent, dead_letters);
                if dropped {
                    agent.queue.ring.reclaim();
                }
                dropped
            })
        });
        if !dropped {
            return;
        }
        bump(&counters.dropped, 1);
    }
}
