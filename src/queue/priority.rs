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
//! A level's first segment is created by the first handle that needs it
//! (a producer publishing at that priority, or a consumer attaching), by
//! the same create-then-link as any segment, so a process killed midway
//! leaves at most a file in `tmp/` for `gc`. Deleting the queue removes
//! every level's files with its own.

use std::sync::Arc;

use super::QueueHandle;
use crate::error::Error;
use crate::options::QueueOptions;
use crate::ring::Ring;
use crate::segment::{self, Created, QueueConfig};

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
        Ok(segment) => segment,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            let tmp = format!("level-{:016x}", crate::liveness::random_token());
            match segment::create_extent(dir, &tmp, &config)? {
                Created::New(segment) | Created::Existing(segment) => segment,
            }
        }
        Err(e) => return Err(e),
    };
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
/// from). A missing or damaged level is left out: tools show what they
/// can read.
pub(crate) fn existing_levels(queue: &QueueHandle) -> Vec<Arc<QueueHandle>> {
    let first = &queue.segment().config;
    (1..=first.max_priority)
        .rev()
        .filter_map(|level| {
            let segment = segment::open_extent(&queue.ns.dir, &QueueConfig { level, ..first.clone() }, 0).ok()?;
            Some(Arc::new(QueueHandle { ring: Ring::new(segment), ns: queue.ns.clone() }))
        })
        .collect()
}
