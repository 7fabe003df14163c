//! The public queue API: producers, consumers and deliveries over a mapped
//! queue segment.

pub(crate) mod chain;
pub(crate) mod consumer;
pub(crate) mod dead_letter;
pub(crate) mod priority;
pub(crate) mod producer;
pub(crate) mod trim;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::liveness::{self, Peer};
use crate::namespace_state::NamespaceState;
use crate::ring::layout::{AgentSlot, Counters};
use crate::ring::{Recovered, Ring, RingMemory};
use crate::segment::QueueSegment;
use crate::sync::Ordering;

/// How long a blocked waiter sleeps before re-checking deletion and dead
/// peers. Bounds recovery latency, and covers a waker that died between its
/// commit and its wake.
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(50);

/// How long a waiter sleeps next: at most `most`, and no later than
/// `deadline`; `None` once the deadline has passed.
pub(crate) fn wait_slice(deadline: Option<Instant>, most: Duration) -> Option<Duration> {
    match deadline {
        Some(d) => {
            let now = Instant::now();
            (now < d).then(|| (d - now).min(most))
        }
        None => Some(most),
    }
}

/// How long a consumer tolerates an uncommitted slot at the head before it
/// checks whether that slot's producer died.
pub(crate) const STALL_BEFORE_RECOVERY: Duration = Duration::from_millis(20);

/// How long a blocking receive or publish spins before it sleeps on the
/// futex. A cross-core futex wake costs tens of microseconds here, so a short
/// spin keeps a steady stream at shared-memory latency while an idle waiter
/// still sleeps almost at once.
pub(crate) const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(20);

/// Spins (no syscalls, no yields) until `ready` says so or the spin budget
/// runs out; true if ready.
#[inline]
pub(crate) fn spin_until(mut ready: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        for _ in 0..64 {
            if ready() {
                return true;
            }
            core::hint::spin_loop();
        }
        if started.elapsed() >= SPIN_BEFORE_SLEEP {
            return false;
        }
    }
}

/// How often an active handle sweeps for dead peers at most.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_millis(200);

/// One mapped queue, shared by the handles that use it.
pub(crate) struct QueueHandle {
    pub(crate) ring: Ring<QueueSegment>,
    pub(crate) ns: Arc<NamespaceState>,
}

impl QueueHandle {
    pub(crate) fn segment(&self) -> &QueueSegment {
        self.ring.memory()
    }

    pub(crate) fn name(&self) -> &str {
        &self.segment().config.name
    }

    /// This segment's place in its queue's chain: 0 for the first.
    #[inline]
    pub(crate) fn seq(&self) -> u64 {
        self.segment().config.seq
    }

    #[inline]
    pub(crate) fn is_deleted(&self) -> bool {
        self.segment().deleted_word().load(Ordering::Relaxed) != 0
    }

    /// Recovers what dead processes left in this queue.
    pub(crate) fn recover(&self, my_token: u64) -> Recovered {
        self.ring.recover(my_token, &mut |token| liveness::is_alive(&self.ns.dir, token))
    }
}

/// An attached agent: a row in the queue's agent table, released on drop.
pub(crate) struct Agent {
    pub(crate) queue: Arc<QueueHandle>,
    /// Row and generation, as stored in the slots this agent holds.
    pub(crate) owner: u16,
    pub(crate) peer: Arc<Peer>,
    last_sweep: std::cell::Cell<Instant>,
    /// Operations since the last look at the clock; see [`Agent::tick`].
    ops: std::cell::Cell<u32>,
}

/// A busy handle looks at the clock every this many operations, so that it
/// sweeps for dead peers every [`SWEEP_INTERVAL`] however busy it is, for
/// the price of one clock read per 256 messages.
const OPS_PER_CLOCK_CHECK: u32 = 256;

impl Agent {
    pub(crate) fn attach(queue: Arc<QueueHandle>, peer: Arc<Peer>, role: u32, prefetch: u32) -> Result<Agent, crate::Error> {
        let pid = std::process::id();
        let owner = match queue.ring.register_agent(peer.token, role, pid, prefetch) {
            Some(owner) => owner,
            None => {
                // Full: free the slots of dead processes and try once more.
                queue.recover(peer.token);
                queue.ring.register_agent(peer.token, role, pid, prefetch).ok_or_else(|| crate::Error::TooManyHandles {
                    queue: queue.name().to_owned(),
                    limit: crate::ring::layout::AGENT_SLOTS,
                })?
            }
        };
        Ok(Agent { queue, owner, peer, last_sweep: std::cell::Cell::new(Instant::now()), ops: std::cell::Cell::new(0) })
    }

    #[inline]
    pub(crate) fn slot(&self) -> &AgentSlot {
        self.queue.segment().agent(crate::ring::owner_index(self.owner))
    }

    #[inline]
    pub(crate) fn counters(&self) -> &Counters {
        &self.slot().counters
    }

    /// Counts `n` messages handled; every [`OPS_PER_CLOCK_CHECK`] of them,
    /// sweeps if the last sweep is old enough. Keeps recovery of a dead
    /// peer's messages within a second on handles that never wait.
    /// Returns true if it swept (the caller may then look after its queue's
    /// other segments too).
    #[inline]
    pub(crate) fn tick(&self, n: u32) -> bool {
        let ops = self.ops.get().wrapping_add(n);
        self.ops.set(ops);
        if ops >= OPS_PER_CLOCK_CHECK {
            self.ops.set(0);
            return self.maybe_recover(false).is_some();
        }
        false
    }

    /// Sweeps for dead peers if the last sweep is old enough (or `force`);
    /// `None` if it did not sweep.
    pub(crate) fn maybe_recover(&self, force: bool) -> Option<Recovered> {
        let now = Instant::now();
        if !force && now.duration_since(self.last_sweep.get()) < SWEEP_INTERVAL {
            return None;
        }
        self.last_sweep.set(now);
        let recovered = self.queue.recover(self.peer.token);
        crate::namespace::housekeeping::run_if_due(&self.queue.ns);
        Some(recovered)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if crate::liveness::inherited(self.peer.pid) {
            return;
        }
        self.queue.ring.release_agent(self.owner, self.peer.token);
    }
}

/// Adds `n` to a counter this process alone writes: a plain load and store,
/// no locked instruction on the hot path.
#[inline]
pub(crate) fn bump(counter: &crate::sync::AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Unix time in milliseconds (TTL deadlines must survive reboots of on-disk
/// namespaces, so they use the wall clock).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
