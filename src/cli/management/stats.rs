//! The figures `shmq management` serves, from the queues' shared counters:
//! rates from two samples, and namespace totals that stay monotonic when
//! queues are deleted. Nothing here touches a queue: it reads
//! [`shmq::QueueStats`], which other code read from shared memory with
//! relaxed loads, so serving them costs publishers and consumers nothing.
//!
//! Samples are taken when someone asks (RabbitMQ samples every 5 s in the
//! background; an idle server here reads nothing). A rate is the change
//! between the two latest samples of a figure at least [`MIN_INTERVAL`]
//! apart, over their distance in time: a request right after another
//! reuses the last pair instead of dividing by a tiny interval.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Samples closer together than this are not a new pair.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Counters of one queue or of a sum of queues (ever-growing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub published: u64,
    pub delivered: u64,
    pub acked: u64,
    pub redelivered: u64,
    pub dropped: u64,
    pub expired: u64,
    pub dead_lettered: u64,
}

impl Counters {
    /// A queue's counters.
    pub fn of(s: &shmq::QueueStats) -> Counters {
        Counters {
            published: s.published,
            delivered: s.delivered,
            acked: s.acked,
            redelivered: s.redelivered,
            dropped: s.dropped,
            expired: s.expired,
            dead_lettered: s.dead_lettered,
        }
    }

    /// Adds another's counts (saturating: they come from shared memory).
    /// The counters as an array, in field order.
    fn fields(&self) -> [u64; 7] {
        [self.published, self.delivered, self.acked, self.redelivered, self.dropped, self.expired, self.dead_lettered]
    }

    /// True if any counter is below `earlier`'s: counters only grow, so
    /// this is another queue of the same name (deleted and declared again).
    fn restarted_since(&self, earlier: &Counters) -> bool {
        self.fields().iter().zip(earlier.fields()).any(|(now, before)| *now < before)
    }

    pub fn add(&mut self, o: &Counters) {
        self.published = self.published.saturating_add(o.published);
        self.delivered = self.delivered.saturating_add(o.delivered);
        self.acked = self.acked.saturating_add(o.acked);
        self.redelivered = self.redelivered.saturating_add(o.redelivered);
        self.dropped = self.dropped.saturating_add(o.dropped);
        self.expired = self.expired.saturating_add(o.expired);
        self.dead_lettered = self.dead_lettered.saturating_add(o.dead_lettered);
    }
}

/// One look at a vhost: every queue's stats and the namespace's figures.
pub struct VhostSnapshot {
    /// The vhost's name.
    pub name: String,
    /// Every queue's stats, by name.
    pub queues: Vec<shmq::QueueStats>,
    /// Messages dropped as unroutable in the namespace, ever.
    pub unroutable: u64,
    /// Bytes of queue files now, and the namespace's budget.
    pub memory_in_use: u64,
    pub memory_budget: u64,
    /// Attached processes, alive and dead (awaiting recovery).
    pub peers_alive: usize,
    pub peers_dead: usize,
    /// Counters summed over the vhost's queues, monotonic (see
    /// [`Sampler::totals`]).
    pub totals: Counters,
}

impl VhostSnapshot {
    /// Reads every queue of `ns`.
    ///
    /// # Errors
    /// The namespace cannot be listed or a queue cannot be read (a queue
    /// deleted while it is read is left out, not an error).
    pub fn take(name: &str, ns: &shmq::Namespace, sampler: &Sampler) -> Result<VhostSnapshot, shmq::Error> {
        let mut queues = Vec::new();
        for queue in ns.list_queues()? {
            match ns.queue_stats(&queue) {
                Ok(s) => queues.push(s),
                Err(shmq::Error::QueueNotFound { .. } | shmq::Error::QueueDeleted { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let peers = ns.peers();
        let peers_alive = peers.iter().filter(|p| p.1).count();
        Ok(VhostSnapshot {
            name: name.to_owned(),
            totals: sampler.totals(name, &queues),
            queues,
            unroutable: ns.unroutable_count(),
            memory_in_use: ns.memory_in_use(),
            memory_budget: ns.memory_budget(),
            peers_alive,
            peers_dead: peers.len() - peers_alive,
        })
    }

    /// Messages ready and unacked in all its queues.
    pub fn depth(&self) -> (u64, u64) {
        self.queues.iter().fold((0u64, 0u64), |(r, u), q| (r.saturating_add(q.ready), u.saturating_add(q.unacked)))
    }

    /// Consumers of all its queues.
    pub fn consumers(&self) -> u64 {
        self.queues.iter().map(|q| u64::from(q.consumers)).sum()
    }
}

/// The figures that get a `*_details.rate`, in this order.
pub const RATED: [&str; 8] =
    ["publish", "deliver_get", "ack", "redeliver", "drop_unroutable", "messages", "messages_ready", "messages_unacknowledged"];

/// Values of the [`RATED`] figures.
pub type Figures = [u64; RATED.len()];

/// Rates of the [`RATED`] figures, per second.
pub type Rates = [f64; RATED.len()];

/// The figures of counters, depths and unroutable messages.
pub fn figures(c: &Counters, ready: u64, unacked: u64, unroutable: u64) -> Figures {
    [c.published, c.delivered, c.acked, c.redelivered, unroutable, ready.saturating_add(unacked), ready, unacked]
}

/// The two latest samples of something's figures.
struct Track {
    previous: Option<(Instant, Figures)>,
    last: (Instant, Figures),
}

/// Per vhost: each queue's counters when last seen, and the counts of
/// queues gone since (deleted, or deleted and declared again).
#[derive(Default)]
struct Totals {
    seen: HashMap<String, Counters>,
    gone: Counters,
}

/// Samples and totals, shared by the server's threads.
#[derive(Default)]
pub struct Sampler {
    tracks: Mutex<HashMap<String, Track>>,
    totals: Mutex<HashMap<String, Totals>>,
}

impl Sampler {
    /// Records a sample of `key`'s figures taken `now` and returns the
    /// rates between its two latest samples (zeros until there are two).
    pub fn rates(&self, key: &str, now: Instant, figures: Figures) -> Rates {
        let mut tracks = self.tracks.lock().unwrap_or_else(|e| e.into_inner());
        let track = tracks.entry(key.to_owned()).or_insert(Track { previous: None, last: (now, figures) });
        if now.saturating_duration_since(track.last.0) >= MIN_INTERVAL {
            track.previous = Some(track.last);
            track.last = (now, figures);
        }
        let mut rates = [0.0; RATED.len()];
        if let Some((before, old)) = track.previous {
            let seconds = track.last.0.saturating_duration_since(before).as_secs_f64();
            if seconds > 0.0 {
                for (i, rate) in rates.iter_mut().enumerate() {
                    // Depths fall as well as rise; counters only rise.
                    *rate = (track.last.1[i] as f64 - old[i] as f64) / seconds;
                    if i < 5 {
                        *rate = rate.max(0.0);
                    }
                }
            }
        }
        rates
    }

    /// Forgets samples of keys that start with `prefix` but are not in
    /// `keep` (deleted queues), so the map does not grow for ever.
    pub fn retain(&self, prefix: &str, keep: &dyn Fn(&str) -> bool) {
        let mut tracks = self.tracks.lock().unwrap_or_else(|e| e.into_inner());
        tracks.retain(|k, _| !k.starts_with(prefix) || keep(k));
    }

    /// The vhost's counters summed over `queues` (all of its queues now)
    /// plus those of queues seen before and gone since: monotonic for as
    /// long as this server runs, as Prometheus counters must be. (What a
    /// queue counted between the last look and its deletion is missed.)
    pub fn totals(&self, vhost: &str, queues: &[shmq::QueueStats]) -> Counters {
        let mut all = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let totals = all.entry(vhost.to_owned()).or_default();
        let mut now: HashMap<String, Counters> = HashMap::with_capacity(queues.len());
        let mut sum = Counters::default();
        for q in queues {
            let c = Counters::of(q);
            if let Some(before) = totals.seen.get(&q.name) {
                if c.restarted_since(before) {
                    let before = *before;
                    totals.gone.add(&before);
                }
            }
            sum.add(&c);
            now.insert(q.name.clone(), c);
        }
        for (name, before) in &totals.seen {
            if !now.contains_key(name) {
                totals.gone.add(before);
            }
        }
        totals.seen = now;
        sum.add(&totals.gone);
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(name: &str, published: u64) -> shmq::QueueStats {
        shmq::QueueStats { name: name.into(), published, ..Default::default() }
    }

    #[test]
    fn rates_come_from_the_two_latest_samples_a_second_apart() {
        let sampler = Sampler::default();
        let t0 = Instant::now();
        let f = |p: u64, ready: u64| figures(&Counters { published: p, ..Default::default() }, ready, 0, 0);
        assert_eq!(sampler.rates("q", t0, f(0, 0))[0], 0.0, "one sample: no rate");
        // Too soon: not a new sample.
        assert_eq!(sampler.rates("q", t0 + Duration::from_millis(10), f(5, 5))[0], 0.0);
        let r = sampler.rates("q", t0 + Duration::from_secs(2), f(100, 40));
        assert_eq!(r[0], 50.0);
        assert_eq!(r[6], 20.0, "ready grew by 40 in 2 s");
        let r = sampler.rates("q", t0 + Duration::from_secs(4), f(100, 0));
        assert_eq!((r[0], r[6]), (0.0, -20.0), "depths may fall");
    }

    #[test]
    fn totals_keep_what_deleted_and_redeclared_queues_counted() {
        let sampler = Sampler::default();
        assert_eq!(sampler.totals("v", &[queue("a", 10), queue("b", 5)]).published, 15);
        // b deleted; a deleted and declared again.
        assert_eq!(sampler.totals("v", &[queue("a", 2)]).published, 17);
        assert_eq!(sampler.totals("v", &[queue("a", 3)]).published, 18);
        assert_eq!(sampler.totals("other", &[]).published, 0);
        // Redeclared with more published but fewer acked: still a new queue.
        let acked = |p: u64, a: u64| shmq::QueueStats { name: "c".into(), published: p, acked: a, ..Default::default() };
        assert_eq!(sampler.totals("w", &[acked(1, 1)]).acked, 1);
        assert_eq!(sampler.totals("w", &[acked(5, 0)]).acked, 1);
    }
}
