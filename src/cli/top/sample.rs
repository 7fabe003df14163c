//! What `shmq top` shows, read from the namespace: every queue's stats
//! with rates between two samples, and, for the tab on screen, exchanges,
//! attached handles or shovels. Figures are stale as soon as read.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::super::admin;
use super::super::shovel::{self, ShovelListing};

/// How many samples the publish-rate sparkline keeps.
const HISTORY: usize = 120;

/// One queue: its stats and its rates since the previous sample.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueRow {
    pub stats: shmq::QueueStats,
    pub publish_rate: f64,
    pub deliver_rate: f64,
    pub ack_rate: f64,
}

/// One exchange (the default one has the name "") and its counters.
#[derive(Clone, Debug, PartialEq)]
pub struct ExchangeRow {
    pub info: shmq::ExchangeInfo,
    pub published: u64,
    pub unroutable: u64,
}

/// The sections beyond the queues, each read only when asked for (one per
/// tab): with 10 000 queues, listing handles reads every queue again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Queues,
    Exchanges,
    Consumers,
    Shovels,
}

impl Section {
    pub const ALL: [Section; 4] = [Section::Queues, Section::Exchanges, Section::Consumers, Section::Shovels];
}

/// Everything one frame (or one `--json` snapshot) shows.
#[derive(Debug, Default)]
pub struct Dashboard {
    pub namespace: String,
    pub peers: Vec<(u64, bool, Option<u32>)>,
    pub unroutable: u64,
    pub queues: Vec<QueueRow>,
    pub exchanges: Vec<ExchangeRow>,
    pub handles: Vec<shmq::HandleInfo>,
    pub shovels: Vec<ShovelListing>,
    /// Total publish rate per interval, newest last.
    pub history: Vec<u64>,
    /// How long the last sample took to read.
    pub sample_time: Duration,
    last_counters: HashMap<String, (u64, u64, u64)>,
    last_at: Option<Instant>,
}

impl Dashboard {
    /// Reads every queue (updating rates and history), the peers, and the
    /// sections named.
    ///
    /// # Errors
    /// The namespace cannot be read.
    pub fn sample(&mut self, ns: &shmq::Namespace, sections: &[Section]) -> Result<(), Box<dyn std::error::Error>> {
        let started = Instant::now();
        let elapsed = self.last_at.map(|t| started.duration_since(t).as_secs_f64()).filter(|s| *s > 0.0);
        let mut next = HashMap::new();
        let queues: Vec<QueueRow> = admin::all_stats(ns)?
            .into_iter()
            .map(|stats| {
                let counters = (stats.published, stats.delivered, stats.acked);
                let (p0, d0, a0) = self.last_counters.get(&stats.name).copied().unwrap_or(counters);
                let rate = |now: u64, before: u64| elapsed.map_or(0.0, |secs| now.saturating_sub(before) as f64 / secs);
                let row = QueueRow {
                    publish_rate: rate(stats.published, p0),
                    deliver_rate: rate(stats.delivered, d0),
                    ack_rate: rate(stats.acked, a0),
                    stats,
                };
                next.insert(row.stats.name.clone(), counters);
                row
            })
            .collect();
        if elapsed.is_some() {
            self.history.push(queues.iter().fold(0u64, |sum, r| sum.saturating_add(r.publish_rate as u64)));
            if self.history.len() > HISTORY {
                self.history.remove(0);
            }
        }
        self.queues = queues;
        self.last_counters = next;
        self.last_at = Some(started);
        self.namespace = ns.name().to_owned();
        self.peers = ns.peers();
        self.unroutable = ns.unroutable_count();
        for section in sections {
            self.sample_section(ns, *section)?;
        }
        self.sample_time = started.elapsed();
        Ok(())
    }

    /// Reads one section beyond the queues (the queues are read by
    /// [`sample`](Self::sample)).
    ///
    /// # Errors
    /// The namespace cannot be read.
    pub fn sample_section(&mut self, ns: &shmq::Namespace, section: Section) -> Result<(), Box<dyn std::error::Error>> {
        match section {
            Section::Queues => {}
            Section::Exchanges => {
                let default = shmq::ExchangeInfo {
                    name: String::new(),
                    options: shmq::ExchangeOptions::new(shmq::ExchangeKind::Direct),
                    builtin: true,
                };
                self.exchanges = std::iter::once(default)
                    .chain(ns.list_exchanges()?)
                    .map(|info| {
                        let (published, unroutable) = ns.exchange_stats(&info.name);
                        ExchangeRow { info, published, unroutable }
                    })
                    .collect();
            }
            Section::Consumers => self.handles = ns.list_consumers()?,
            Section::Shovels => self.shovels = shovel::list_shovels(ns)?,
        }
        Ok(())
    }

    pub fn peers_alive(&self) -> usize {
        self.peers.iter().filter(|p| p.1).count()
    }

    /// The snapshot `top --json` prints: each part as the matching listing
    /// command prints it (`list-queues --rates`, `list-exchanges`,
    /// `list-consumers`, `list-peers`, `shovel list`).
    pub fn to_json(&self, ns: &shmq::Namespace) -> Value {
        let queues: Vec<Value> = self
            .queues
            .iter()
            .map(|row| {
                let mut v = admin::stats_json(&row.stats);
                v["publish_rate"] = json!(row.publish_rate);
                v["deliver_rate"] = json!(row.deliver_rate);
                v["ack_rate"] = json!(row.ack_rate);
                v
            })
            .collect();
        let peers: Vec<Value> = self.peers.iter().map(|p| admin::peer_json(*p)).collect();
        json!({
            "namespace": self.namespace,
            "unroutable": self.unroutable,
            "queues": queues,
            "exchanges": self.exchanges.iter().map(|x| admin::exchange_json(ns, &x.info)).collect::<Vec<_>>(),
            "consumers": self.handles.iter().map(admin::handle_json).collect::<Vec<_>>(),
            "peers": peers,
            "shovels": self.shovels.iter().map(ShovelListing::to_json).collect::<Vec<_>>(),
        })
    }
}
