//! What a broker's timers do, done by whichever process notices first:
//! dead-lettering messages that expire at the head of a queue nobody
//! consumes from (a delay queue's whole purpose), and deleting queues unused
//! for their `x-expires`. Every attached handle runs it from its periodic
//! sweep, at most once per [`INTERVAL`] per process; `shmq gc` runs it too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Namespace;
use crate::error::Error;
use crate::queue::chain::Chain;
use crate::queue::dead_letter::{DeadLetterer, Fate};
use crate::queue::{now_ms, Agent};
use crate::ring::layout::ROLE_PRODUCER;
use crate::sync::Ordering;

/// How often one process runs the housekeeping at most.
pub(crate) const INTERVAL: Duration = Duration::from_millis(100);

/// Most dead messages one run dead-letters per queue, so that a handle's
/// sweep never stalls on a large expired backlog (the next run goes on).
const MAX_PER_QUEUE: usize = 1024;

/// A process's housekeeping state, in its namespace handle.
#[derive(Default)]
pub(crate) struct Housekeeping {
    last_run: Option<Instant>,
    /// Open queues with something to look after (a dead-letter exchange, a
    /// delivery limit, an expiry); `None` for queues with nothing.
    queues: HashMap<String, Option<Chain>>,
    dead_letters: Option<DeadLetterer>,
}

/// What one run did.
///
/// # Examples
/// ```
/// let done = shmq::Housekept::default();
/// assert_eq!((done.dead_lettered, done.queues_expired), (0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Housekept {
    /// Messages dead-lettered (or discarded, without a dead-letter
    /// exchange) because they expired or passed the delivery limit.
    pub dead_lettered: u64,
    /// Queues deleted because they were unused for their `x-expires`.
    pub queues_expired: u64,
}

/// Runs the housekeeping if it is due in this process and no other thread
/// of it runs it now (never nested in itself).
pub(crate) fn run_if_due(shared: &Arc<crate::namespace_state::NamespaceState>) {
    let Ok(mut state) = shared.housekeeping.try_lock() else { return };
    if state.last_run.is_some_and(|t| t.elapsed() < INTERVAL) {
        return;
    }
    state.last_run = Some(Instant::now());
    let ns = Namespace { shared: shared.clone() };
    let _ = ns.housekeep_with(&mut state);
}

impl Namespace {
    /// Runs the housekeeping now: dead-letters the dead messages (expired,
    /// or past the delivery limit) at the head of every queue that has a
    /// dead-letter exchange or a delivery limit, and deletes the queues
    /// unused for longer than their `x-expires` (no consumer, `basic.get`
    /// or redeclare). Attached handles run it on their own every
    /// 100–200 ms; this is for tools (`shmq gc`).
    ///
    /// # Errors
    /// `Io` if the namespace cannot be listed.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-housekeep-{}", std::process::id()));
    /// use std::time::Duration;
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("brief", &shmq::QueueOptions::default().expires(Duration::from_millis(1))).unwrap();
    /// std::thread::sleep(Duration::from_millis(5));
    /// assert_eq!(ns.housekeep().unwrap().queues_expired, 1);
    /// assert!(ns.list_queues().unwrap().is_empty());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn housekeep(&self) -> Result<Housekept, Error> {
        let mut state = self.shared.housekeeping.lock().unwrap_or_else(|e| e.into_inner());
        state.last_run = Some(Instant::now());
        self.housekeep_with(&mut state)
    }

    fn housekeep_with(&self, state: &mut Housekeeping) -> Result<Housekept, Error> {
        let mut done = Housekept::default();
        let names = self.list_queues()?;
        state.queues.retain(|name, chain| names.binary_search(name).is_ok() && !chain.as_ref().is_some_and(Chain::is_deleted));
        let dead_letters = state.dead_letters.get_or_insert_with(|| DeadLetterer::new(self.shared.clone()));
        for name in names {
            let entry = state.queues.entry(name.clone()).or_insert_with(|| {
                let chain = self.chain(&name).ok()?;
                let config = &chain.first.segment().config;
                (config.has_lifecycle() || config.expires_ms != 0).then_some(chain)
            });
            let Some(chain) = entry.as_ref() else { continue };
            let config = &chain.first.segment().config;
            if config.expires_ms != 0 && self.unused_for_too_long(chain) {
                if self.delete_queue(&name).is_ok() {
                    done.queues_expired += 1;
                }
                state.queues.remove(&name);
                continue;
            }
            if config.has_lifecycle() {
                done.dead_lettered += self.bury_dead_heads(chain, dead_letters);
                for level in crate::queue::priority::existing_levels(&chain.first) {
                    done.dead_lettered += self.bury_dead_heads(&Chain::new(level), dead_letters);
                }
            }
        }
        Ok(done)
    }

    /// True if queue `chain` has no consumer and was last used longer ago
    /// than its `x-expires`.
    fn unused_for_too_long(&self, chain: &Chain) -> bool {
        let segment = chain.first.segment();
        let last_used = segment.last_used().load(Ordering::Relaxed);
        if last_used == 0 || now_ms().saturating_sub(last_used) < segment.config.expires_ms {
            return false;
        }
        // Consumers that died do not keep it: recover first.
        if let Ok(me) = self.shared.peer() {
            let dir = &self.shared.dir;
            chain.first.ring.recover(me.token, &mut |token| crate::liveness::is_alive(dir, token));
        }
        !chain.first.ring.has_consumers(None)
    }

    /// Dead-letters the dead messages of each ring of `chain`: shelved
    /// ones, and those at the head (or requeued below it) that expired or
    /// passed the delivery limit. Recovers the rings first, so that a
    /// message a killed housekeeper held comes back now, not when someone
    /// else attaches. Stops at the first copy that cannot be published
    /// (the next run retries).
    fn bury_dead_heads(&self, chain: &Chain, dead_letters: &mut DeadLetterer) -> u64 {
        let mut buried = 0;
        let Ok(peer) = self.shared.peer() else { return 0 };
        let dir = &self.shared.dir;
        for handle in chain.segments() {
            handle.ring.recover(peer.token, &mut |token| crate::liveness::is_alive(dir, token));
            let Ok(agent) = Agent::attach(handle, peer.clone(), ROLE_PRODUCER, 0) else { continue };
            let ring = &agent.queue.ring;
            let now = now_ms();
            let mut scan = ring.dead_scan();
            for _ in 0..MAX_PER_QUEUE {
                let Some((record, death)) = ring.take_if_dead(agent.owner, now, &mut scan) else { break };
                // At-least-once: settled only once the copy is published.
                match dead_letters.bury(&agent.queue, agent.owner, &record, death, agent.counters()) {
                    Fate::Shelved => break,
                    Fate::Gone | Fate::Dropped => buried += 1,
                }
            }
            ring.reclaim();
            ring.notify_producers();
        }
        buried
    }
}

/// Marks queue `chain` used now (for `x-expires`).
pub(crate) fn touch(segment: &crate::segment::QueueSegment) {
    if segment.config.expires_ms != 0 {
        segment.last_used().store(now_ms(), Ordering::Relaxed);
    }
}

/// The housekeeping state's lock type, for `NamespaceState`.
pub(crate) type HousekeepingLock = Mutex<Housekeeping>;
