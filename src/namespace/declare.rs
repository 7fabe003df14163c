//! Declaring, deleting, purging and flushing queues, and every change of
//! the routing table (which first collects the queues of dead owners).

use super::{Namespace, QueueStats};
use crate::error::Error;
use crate::liveness;
use crate::nsdir::validate_queue_name;
use crate::options::QueueOptions;
use std::sync::Arc;

use crate::queue::chain::Chain;
use crate::queue::{Agent, QueueHandle};
use crate::ring::layout::ROLE_PRODUCER;
use crate::ring::Ring;
use crate::routing::QueueMeta;
use crate::segment::{self, Created, QueueConfig};

/// RabbitMQ's direct reply-to pseudo-queue: a request whose `reply_to` is
/// this gets a reply queue of the client's own (see
/// [`Namespace::declare_reply_queue`]); the reply queues' names start with
/// it.
///
/// # Examples
/// ```
/// assert_eq!(shmq::DIRECT_REPLY_TO, "amq.rabbitmq.reply-to");
/// ```
pub const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Data bytes of a reply queue's first ring: replies are few at a time,
/// and the queue grows if not.
const REPLY_QUEUE_BYTES: u64 = 64 << 10;

impl Namespace {
    /// Declares a queue for RPC replies to this namespace handle, as
    /// RabbitMQ's direct reply-to gives a client one: server-named
    /// (`amq.rabbitmq.reply-to.…`), exclusive to this handle and
    /// auto-delete, so that it goes with its consumer, its handle or its
    /// process, and a reply sent after that is dropped (unroutable).
    /// Returns its name: put it in a request's `reply_to` and consume it
    /// (auto ack, as RabbitMQ requires of a reply consumer).
    ///
    /// # Errors
    /// As [`declare_queue`](Namespace::declare_queue).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-reply-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let reply_to = ns.declare_reply_queue().unwrap();
    /// assert!(reply_to.starts_with(shmq::DIRECT_REPLY_TO));
    /// let replies = ns.consumer(&reply_to, Default::default()).unwrap();
    /// // The server answers through the default exchange, by that name.
    /// ns.publisher().publish("", &reply_to, &shmq::Properties::new(), b"42").unwrap();
    /// assert_eq!(replies.try_recv().unwrap().body(), b"42");
    /// # drop(replies); drop(ns); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn declare_reply_queue(&self) -> Result<String, Error> {
        let name = format!("{DIRECT_REPLY_TO}.{:016x}{:016x}", liveness::random_token(), liveness::random_token());
        let options = QueueOptions { exclusive: true, auto_delete: true, capacity_bytes: REPLY_QUEUE_BYTES, ..QueueOptions::default() };
        Ok(self.declare_queue(&name, &options)?.name)
    }

    /// Refuses a new queue whose first segment would take the namespace
    /// past its memory budget; else counts it in.
    fn check_budget(&self, name: &str, config: &QueueConfig) -> Result<(), Error> {
        let needed = crate::segment::layout::QueueOffsets::for_geometry(config.geometry).total;
        let in_use = self.shared.bytes_in_use();
        let budget = self.shared.memory_budget;
        if in_use.saturating_add(needed) > budget {
            return Err(Error::MemoryBudget { queue: name.to_owned(), needed, in_use, budget });
        }
        self.shared.count_created(needed);
        Ok(())
    }

    /// Declares a queue: creates it, or checks that the existing one has the
    /// same options (RabbitMQ's `queue.declare`). Safe to race with other
    /// processes declaring the same queue. Returns the queue's stats.
    ///
    /// # Errors
    /// `InvalidName`, `InvalidOptions`, `PreconditionFailed` if it exists
    /// with other options, `NoSpace` if the file system cannot hold it,
    /// `MemoryBudget` if the namespace's memory budget cannot,
    /// `PermissionDenied`, `Corrupt`, `IncompatibleVersion`.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-declare-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let options = shmq::QueueOptions::default();
    /// ns.declare_queue("q", &options).unwrap();
    /// ns.declare_queue("q", &options).unwrap(); // idempotent
    /// let other = options.clone().overflow(shmq::Overflow::Reject);
    /// assert!(matches!(ns.declare_queue("q", &other), Err(shmq::Error::PreconditionFailed { .. })));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn declare_queue(&self, name: &str, options: &QueueOptions) -> Result<QueueStats, Error> {
        let generated;
        // As RabbitMQ: an empty name asks for a server-named queue.
        let name = if name.is_empty() {
            generated = format!("amq.gen-{:016x}{:08x}", liveness::random_token(), liveness::random_token() as u32);
            generated.as_str()
        } else {
            validate_queue_name(name)?;
            name
        };
        let config = QueueConfig::from_options(name, options)?;
        let owner = if options.exclusive { self.shared.peer()?.token } else { 0 };
        let meta = QueueMeta { name: name.to_owned(), exclusive_owner: owner, auto_delete: options.auto_delete };
        // Register first (under the table lock), so that no publisher routes
        // to a file that is not in the registry, and conflicts fail early.
        let registered = self.update_table(|table| match table.queue(name) {
            Some(existing) if existing.exclusive_owner != 0 && existing.exclusive_owner != owner => {
                Err(Error::ExclusiveQueue { queue: name.to_owned() })
            }
            Some(existing) if existing.auto_delete != meta.auto_delete || (existing.exclusive_owner != 0) != options.exclusive => {
                let describe = |m: &QueueMeta| format!("exclusive={}, auto_delete={}", m.exclusive_owner != 0, m.auto_delete);
                Err(Error::PreconditionFailed {
                    queue: name.to_owned(),
                    field: "flags",
                    existing: describe(existing),
                    requested: describe(&meta),
                })
            }
            Some(_) => Ok(false),
            None => {
                table.queues.push(meta.clone());
                Ok(true)
            }
        })?;
        if registered {
            if let Err(e) = self.check_budget(name, &config) {
                let _ = self.update_table(|table| {
                    table.remove_queue(name);
                    Ok(())
                });
                return Err(e);
            }
        }
        let tmp_name = format!("q-{:016x}", liveness::random_token());
        let created = segment::create_queue(&self.shared.dir, &tmp_name, &config);
        let segment = match created {
            Ok(Created::New(segment)) => segment,
            Ok(Created::Existing(segment)) => {
                check_same(&segment.config, &config)?;
                segment
            }
            Err(e) => {
                if registered {
                    let _ = self.update_table(|table| {
                        table.remove_queue(name);
                        Ok(())
                    });
                }
                return Err(e);
            }
        };
        crate::namespace::housekeeping::touch(&segment);
        if registered && options.exclusive {
            self.shared.exclusive.lock().unwrap_or_else(|e| e.into_inner()).push(name.to_owned());
        }
        Ok(self.stats_of(&Chain::new(Arc::new(QueueHandle { ring: Ring::new(segment), ns: self.shared.clone() }))))
    }

    /// An auto-delete queue whose consumers all died (after it had one):
    /// recover it first, then check that no consumer is left.
    fn auto_delete_is_abandoned(&self, name: &str) -> bool {
        let Ok(segment) = segment::open_queue(&self.shared.dir, name) else { return false };
        let ring = Ring::new(segment);
        if !ring.had_consumer() {
            return false;
        }
        let Ok(me) = self.shared.peer() else { return false };
        let dir = &self.shared.dir;
        ring.recover(me.token, &mut |token| liveness::is_alive(dir, token));
        !ring.has_consumers(None)
    }

    /// Runs a routing-table change under the writers' lock, first removing
    /// exclusive queues whose owning process died (and their files).
    pub(crate) fn update_table<R>(&self, change: impl FnOnce(&mut crate::routing::Table) -> Result<R, Error>) -> Result<R, Error> {
        let dir = &self.shared.dir;
        let my_token = self.shared.registered_token();
        let mut orphans = Vec::new();
        let result = self.shared.routing.update(|table| {
            orphans = table
                .queues
                .iter()
                .filter(|q| {
                    let dead_owner = q.exclusive_owner != 0 && q.exclusive_owner != my_token && !liveness::is_alive(dir, q.exclusive_owner);
                    dead_owner || (q.auto_delete && self.auto_delete_is_abandoned(&q.name))
                })
                .map(|q| q.name.clone())
                .collect();
            for name in &orphans {
                table.remove_queue(name);
            }
            change(table)
        });
        for name in orphans {
            self.shared.remove_queue_file(&name);
        }
        result
    }

    /// Deletes a queue. Attached handles see it deleted and fail their next
    /// operation; its file goes away when the last one unmaps it.
    ///
    /// # Errors
    /// `QueueNotFound`, `PermissionDenied`, `Io`.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-delete-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// ns.delete_queue("q").unwrap();
    /// assert!(ns.list_queues().unwrap().is_empty());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn delete_queue(&self, name: &str) -> Result<(), Error> {
        validate_queue_name(name)?;
        let registered = self.update_table(|table| {
            let found = table.queue(name).is_some();
            table.remove_queue(name);
            Ok(found)
        })?;
        let existed = self.shared.remove_queue_file(name);
        if !registered && !existed {
            return Err(Error::QueueNotFound {
                queue: name.to_owned(),
                namespace: self.shared.name.clone(),
                did_you_mean: self.closest_queue(name),
            });
        }
        Ok(())
    }

    /// Deletes a queue only if it has no consumer (`if_unused`) and no
    /// messages (`if_empty`), as `queue.delete` with those flags. Consumers
    /// of dead processes do not count. The check and the delete are two
    /// steps (RabbitMQ's queue process makes them one): a consumer that
    /// attaches between them finds the queue deleted.
    ///
    /// # Errors
    /// [`Error::QueueInUse`] naming the condition that failed (nothing is
    /// deleted); otherwise as [`delete_queue`](Namespace::delete_queue).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-delete-if-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// ns.producer("q").unwrap().publish(b"still here").unwrap();
    /// assert!(matches!(ns.delete_queue_if("q", false, true), Err(shmq::Error::QueueInUse { .. })));
    /// ns.delete_queue_if("q", true, false).unwrap();
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn delete_queue_if(&self, name: &str, if_unused: bool, if_empty: bool) -> Result<(), Error> {
        if if_unused || if_empty {
            let chains = self.chains(name)?;
            if let Ok(me) = self.shared.peer() {
                let dir = &self.shared.dir;
                for handle in chains.iter().flat_map(Chain::segments) {
                    handle.ring.recover(me.token, &mut |token| liveness::is_alive(dir, token));
                }
            }
            let chain = self.chain(name)?;
            let in_use = |reason| Err(Error::QueueInUse { queue: name.to_owned(), reason });
            if if_unused && chain.first.ring.has_consumers(None) {
                return in_use("in use");
            }
            let stats = self.stats_of(&chain);
            if if_empty && stats.ready + stats.unacked > 0 {
                return in_use("not empty");
            }
        }
        self.delete_queue(name)
    }

    /// Discards every ready message of a queue (unacked ones stay) and
    /// returns how many.
    ///
    /// # Errors
    /// `QueueNotFound`, `TooManyHandles`, ...
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-purge-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// ns.producer("q").unwrap().publish_batch(&[b"a", b"b"]).unwrap();
    /// assert_eq!(ns.purge_queue("q").unwrap(), 2);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn purge_queue(&self, name: &str) -> Result<u64, Error> {
        let peer = self.shared.peer()?;
        let mut purged = 0;
        for chain in self.chains(name)? {
            for handle in chain.segments() {
                let agent = Agent::attach(handle, peer.clone(), ROLE_PRODUCER, 0)?;
                while agent.queue.ring.discard_oldest(agent.owner) {
                    purged += 1;
                }
                agent.queue.ring.reclaim();
                agent.queue.ring.notify_producers();
            }
            chain.retire();
        }
        Ok(purged)
    }

    /// Flushes a queue's pages to its file: with an on-disk namespace, what
    /// was published before this returns survives power loss.
    ///
    /// # Errors
    /// `QueueNotFound`, `Io`.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-flush-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    /// ns.flush_queue("q").unwrap();
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn flush_queue(&self, name: &str) -> Result<(), Error> {
        let segment = self.open_segment(name)?;
        segment.flush().map_err(|e| Error::io(&segment.path, e))
    }
}

fn check_same(existing: &QueueConfig, requested: &QueueConfig) -> Result<(), Error> {
    let queue = requested.name.clone();
    let fail =
        |field: &'static str, existing: String, requested: String| Err(Error::PreconditionFailed { queue, field, existing, requested });
    let (e, r) = (existing.options(), requested.options());
    // (An exclusive queue's requested durable flag was dropped already.)
    // RabbitMQ compares `durable` first.
    if e.durable != r.durable {
        return fail("durable", e.durable.to_string(), r.durable.to_string());
    }
    if e.capacity_bytes != r.capacity_bytes {
        return fail("capacity_bytes", e.capacity_bytes.to_string(), r.capacity_bytes.to_string());
    }
    if e.max_length != r.max_length {
        return fail("max_length", format!("{:?}", e.max_length), format!("{:?}", r.max_length));
    }
    if e.max_length_bytes != r.max_length_bytes {
        return fail("max_length_bytes", format!("{:?}", e.max_length_bytes), format!("{:?}", r.max_length_bytes));
    }
    if e.max_message_bytes != r.max_message_bytes {
        return fail("max_message_bytes", e.max_message_bytes.to_string(), r.max_message_bytes.to_string());
    }
    if e.overflow != r.overflow {
        let shown = |o: Option<crate::Overflow>| o.map_or_else(|| "none (drop-head)".to_owned(), |o| o.to_string());
        return fail("overflow", shown(e.overflow), shown(r.overflow));
    }
    if e.message_ttl != r.message_ttl {
        return fail("message_ttl", format!("{:?}", e.message_ttl), format!("{:?}", r.message_ttl));
    }
    if e.dead_letter_exchange != r.dead_letter_exchange {
        return fail("dead_letter_exchange", format!("{:?}", e.dead_letter_exchange), format!("{:?}", r.dead_letter_exchange));
    }
    if e.dead_letter_routing_key != r.dead_letter_routing_key {
        return fail("dead_letter_routing_key", format!("{:?}", e.dead_letter_routing_key), format!("{:?}", r.dead_letter_routing_key));
    }
    if e.delivery_limit != r.delivery_limit {
        return fail("delivery_limit", format!("{:?}", e.delivery_limit), format!("{:?}", r.delivery_limit));
    }
    if e.expires != r.expires {
        return fail("expires", format!("{:?}", e.expires), format!("{:?}", r.expires));
    }
    if e.queue_type != r.queue_type {
        return fail("queue_type", e.queue_type.to_string(), r.queue_type.to_string());
    }
    if e.single_active_consumer != r.single_active_consumer {
        return fail("single_active_consumer", e.single_active_consumer.to_string(), r.single_active_consumer.to_string());
    }
    if e.max_priority != r.max_priority {
        return fail("max_priority", format!("{:?}", e.max_priority), format!("{:?}", r.max_priority));
    }
    Ok(())
}
