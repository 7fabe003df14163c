//! Dead-lettering (RabbitMQ's `x-dead-letter-exchange`): a message that is
//! rejected, expires, is dropped at a length limit or is delivered too often
//! is republished to the queue's dead-letter exchange with a record of why
//! (`x-death`), then leaves its queue.
//!
//! At-least-once: the caller holds the message DELIVERED while its copy is
//! published and settles it only after. A process killed in between leaves
//! it DELIVERED to a dead owner; the next sweep requeues it and it dies (and
//! is dead-lettered) again: a duplicate at most, never a loss.

use std::cell::Cell;

use super::QueueHandle;
use super::{bump, now_ms, Agent};
use crate::error::PublishError;
use crate::message::{HeaderArray, HeaderValue, Headers, Properties, PropertiesRef};
use crate::ring::layout::Counters;
use crate::ring::{Death, Record, Settle};
use crate::segment::QueueConfig;
use crate::Publisher;

/// How deep dead-lettering may nest in one thread: a dead-lettered copy
/// published into a full drop-head queue with a dead-letter exchange drops
/// (and dead-letters) another message, and so on. Past this depth the
/// publish is refused instead (the message it would drop stays), so a chain
/// of such queues ends.
const MAX_NESTING: u32 = 8;

thread_local! {
    static NESTING: Cell<u32> = const { Cell::new(0) };
}

/// Publishes dead-lettered copies for one handle (consumer or producer),
/// through a publisher created on first use.
pub(crate) struct DeadLetterer {
    ns: std::sync::Arc<crate::namespace_state::NamespaceState>,
    /// Boxed: most handles never dead-letter, and a publisher (its routing
    /// scratch) is large; inline it would grow every producer and consumer.
    publisher: Option<Box<Publisher>>,
}

impl DeadLetterer {
    pub(crate) fn new(ns: std::sync::Arc<crate::namespace_state::NamespaceState>) -> Self {
        Self { ns, publisher: None }
    }

    /// Dead-letters the message `record` of `queue`, which `owner` holds
    /// DELIVERED, then settles it. What became of it:
    /// - `Gone`: its copy was published (into every target with room; a
    ///   full one loses its copy, as in RabbitMQ), or there was nothing to
    ///   publish (no dead-letter exchange, none by that name, no route, a
    ///   cycle): settled `Done`;
    /// - `Dropped`: its copy can never be published (too large for the
    ///   targets, invalid): settled `Done`, counted in `dropped`;
    /// - `Shelved`: its copy cannot be published now (every target full,
    ///   the table unreadable): put back shelved, for the housekeeping to
    ///   retry; consumers go on with the messages behind it.
    pub(crate) fn bury(&mut self, queue: &QueueHandle, owner: u16, record: &Record, death: Death, counters: &Counters) -> Fate {
        let fate = self.copy(queue, record, death);
        let how = if fate == Fate::Shelved { Settle::Shelve(death) } else { Settle::Done };
        queue.ring.settle(owner, record.pos, how);
        if fate != Fate::Shelved && death == Death::Expired {
            bump(&counters.expired, 1);
        }
        match fate {
            Fate::Gone if queue.segment().config.dead_letter_exchange.is_some() => bump(&counters.dead_lettered, 1),
            Fate::Dropped => bump(&counters.dropped, 1),
            _ => {}
        }
        fate
    }

    /// Publishes the copy of `record` (held by the caller).
    fn copy(&mut self, queue: &QueueHandle, record: &Record, death: Death) -> Fate {
        let config = &queue.segment().config;
        if config.dead_letter_exchange.is_none() {
            return Fate::Gone;
        }
        let len = record.props_len as usize + record.body_len as usize;
        let offset = queue.ring.data_offset(record.data_start);
        let Some(ptr) = queue.segment().data_ptr(offset, len) else { return Fate::Dropped };
        // SAFETY: the caller holds the record DELIVERED until it settles it,
        // after this returns, so nobody writes these bytes meanwhile; the
        // ring validated the record's range when it was taken and data_ptr
        // bounds-checked it; `queue` keeps the mapping alive.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
        let (props, body) = bytes.split_at(record.props_len as usize);
        // Damaged properties: the body is still worth keeping.
        let props = PropertiesRef::parse(props).unwrap_or_default();
        self.publish(config, &props, body, death)
    }

    /// Dead-letters a message that never entered `config`'s queue: one a
    /// full `reject-publish-dlx` queue refused (reason `maxlen`). It is
    /// the publisher's, so nothing can be kept: a copy that cannot be
    /// published now is lost, as in RabbitMQ.
    pub(crate) fn dead_letter_refused(&mut self, config: &QueueConfig, props: &Properties<'_>, body: &[u8]) -> Fate {
        if config.dead_letter_exchange.is_none() {
            return Fate::Gone;
        }
        let Ok(headers_bytes) = Headers::encode(props.headers) else { return Fate::Dropped };
        let received = PropertiesRef {
            routing_key: props.routing_key,
            exchange: props.exchange,
            content_type: props.content_type,
            content_encoding: props.content_encoding,
            correlation_id: props.correlation_id,
            reply_to: props.reply_to,
            message_id: props.message_id,
            expiration: props.expiration,
            timestamp: props.timestamp,
            priority: props.priority,
            delivery_mode: props.delivery_mode,
            kind: props.kind,
            user_id: props.user_id,
            app_id: props.app_id,
            headers: Headers::from_encoded(&headers_bytes).unwrap_or_default(),
        };
        self.publish(config, &received, body, Death::Maxlen)
    }

    fn publish(&mut self, config: &QueueConfig, old: &PropertiesRef<'_>, body: &[u8], death: Death) -> Fate {
        let Some(exchange) = config.dead_letter_exchange.as_deref() else { return Fate::Gone };
        let nesting = NESTING.with(Cell::get);
        if nesting >= MAX_NESTING {
            return Fate::Shelved;
        }
        let now_s = super::now_ms() / 1000;
        let Ok(record) = DeathRecord::new(old, &config.name, death, now_s) else { return Fate::Dropped };
        let mut headers = record.headers(old, &config.name, death);
        if config.dead_letter_routing_key.is_some() {
            // Routed by that key alone: the CC keys go, as in RabbitMQ.
            headers.retain(|(k, _)| *k != "CC");
        }
        let routing_key = config.dead_letter_routing_key.as_deref().or(old.routing_key).unwrap_or("");
        // The expiration goes (into `original-expiration`), so the copy does
        // not expire again wherever it is routed, as in RabbitMQ.
        let props = Properties { expiration: None, headers: &headers, ..old.to_properties() };
        let ns = &self.ns;
        let publisher = self.publisher.get_or_insert_with(|| {
            let mut publisher = crate::Namespace { shared: ns.clone() }.publisher();
            // Never wait: a full `block` target (or the memory budget) would
            // hang whatever handle's sweep runs this; it counts as full.
            publisher.set_publish_timeout(Some(std::time::Duration::ZERO));
            Box::new(publisher)
        });
        NESTING.with(|n| n.set(nesting + 1));
        let result = publisher.publish_dead_letter(exchange, routing_key, &props, body, &|queue| !record.cycles_at(queue, death));
        NESTING.with(|n| n.set(nesting));
        match result {
            // A copy that reached a queue is published; one that reached
            // nowhere because nothing matched (or the exchange does not
            // exist) is dropped, as in RabbitMQ.
            Ok(routed) if routed.queues > 0 || routed.full == 0 => Fate::Gone,
            Err(PublishError::ExchangeNotFound) => Fate::Gone,
            // Never publishable, however long it waits.
            Err(PublishError::TooLarge { .. } | PublishError::InvalidProperty(_)) => Fate::Dropped,
            // Every target full, or the table unreadable: later.
            Ok(_) | Err(_) => Fate::Shelved,
        }
    }
}

/// What became of a dead message (see [`DeadLetterer::bury`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    Gone,
    Dropped,
    Shelved,
}

/// Drops the oldest ready message of `agent`'s ring at a length limit
/// (drop-head), dead-lettering it first if the queue has a dead-letter
/// exchange. False if none was ready, or if its copy could not be
/// published now (it stays, shelved).
pub(crate) fn drop_oldest(agent: &Agent, dead_letters: &mut DeadLetterer) -> bool {
    let ring = &agent.queue.ring;
    if !agent.queue.segment().config.has_lifecycle() {
        return ring.discard_oldest(agent.owner);
    }
    let Some((record, death)) = ring.take_oldest(agent.owner, &mut now_ms) else { return false };
    dead_letters.bury(&agent.queue, agent.owner, &record, death.unwrap_or(Death::Maxlen), agent.counters()) != Fate::Shelved
}

/// The `x-death` array of a message being dead-lettered, encoded.
struct DeathRecord {
    /// Encoded tables, newest first.
    entries: Vec<Vec<u8>>,
    array: Vec<u8>,
    /// `(queue, reason)` of each entry, newest first, for cycle detection.
    trail: Vec<(String, String)>,
}

impl DeathRecord {
    /// `old`'s `x-death` with this death merged in, as RabbitMQ does: an
    /// entry for the same queue and reason counts one more and moves to the
    /// front; otherwise a new entry goes first.
    fn new(old: &PropertiesRef<'_>, queue: &str, death: Death, now_s: u64) -> Result<Self, PublishError> {
        let mut entries = Vec::new();
        let mut trail = Vec::new();
        let mut merged = None;
        if let Some(HeaderValue::Array(deaths)) = old.headers.get("x-death") {
            for value in deaths.iter() {
                let HeaderValue::Table(table) = value else { continue };
                let text = |key: &str| match table.get(key) {
                    Some(HeaderValue::Str(s)) => s.to_owned(),
                    _ => String::new(),
                };
                let (q, r) = (text("queue"), text("reason"));
                if merged.is_none() && q == queue && r == death.as_str() {
                    let count = match table.get("count") {
                        Some(HeaderValue::Int(n)) => n.saturating_add(1),
                        _ => 1,
                    };
                    let fields: Vec<(&str, HeaderValue<'_>)> =
                        table.iter().map(|(k, v)| if k == "count" { (k, HeaderValue::Int(count)) } else { (k, v) }).collect();
                    merged = Some((Headers::encode(&fields)?, (q, r)));
                } else {
                    entries.push(table.as_bytes().to_vec());
                    trail.push((q, r));
                }
            }
        }
        let first = match merged {
            Some(found) => found,
            None => {
                // The routing key and the `CC` keys it was published with,
                // as RabbitMQ lists them (`BCC` never reaches a queue).
                let mut keys = vec![HeaderValue::Str(old.routing_key.unwrap_or(""))];
                if let Some(HeaderValue::Array(cc)) = old.headers.get("CC") {
                    keys.extend(cc.iter().filter(|v| matches!(v, HeaderValue::Str(_))));
                }
                let keys = HeaderArray::encode(&keys)?;
                let mut fields = vec![
                    ("count", HeaderValue::Int(1)),
                    ("reason", HeaderValue::Str(death.as_str())),
                    ("queue", HeaderValue::Str(queue)),
                    ("time", HeaderValue::Timestamp(now_s)),
                    ("exchange", HeaderValue::Str(old.exchange.unwrap_or(""))),
                    ("routing-keys", HeaderValue::Array(HeaderArray::from_encoded(&keys).unwrap_or_default())),
                ];
                if let Some(expiration) = old.expiration {
                    fields.push(("original-expiration", HeaderValue::Str(expiration)));
                }
                (Headers::encode(&fields)?, (queue.to_owned(), death.as_str().to_owned()))
            }
        };
        entries.insert(0, first.0);
        trail.insert(0, first.1);
        let values: Vec<HeaderValue<'_>> =
            entries.iter().map(|e| HeaderValue::Table(Headers::from_encoded(e).unwrap_or_default())).collect();
        // Entries from a validated table, or encoded just above.
        let array = crate::message::encode_array_unchecked(&values);
        Ok(Self { entries, array, trail })
    }

    /// The copy's headers: the old ones, with `x-death` and the
    /// `x-first-death-*` (kept if present) and `x-last-death-*` headers.
    fn headers<'a>(&'a self, old: &PropertiesRef<'a>, queue: &'a str, death: Death) -> Vec<(&'a str, HeaderValue<'a>)> {
        const OURS: [&str; 7] = [
            "x-death",
            "x-first-death-reason",
            "x-first-death-queue",
            "x-first-death-exchange",
            "x-last-death-reason",
            "x-last-death-queue",
            "x-last-death-exchange",
        ];
        debug_assert!(!self.entries.is_empty());
        let mut headers: Vec<(&str, HeaderValue<'_>)> = old.headers.iter().filter(|(k, _)| !OURS.contains(k)).collect();
        headers.push(("x-death", HeaderValue::Array(HeaderArray::from_encoded(&self.array).unwrap_or_default())));
        let exchange = HeaderValue::Str(old.exchange.unwrap_or(""));
        for (key, value) in [
            ("x-first-death-reason", HeaderValue::Str(death.as_str())),
            ("x-first-death-queue", HeaderValue::Str(queue)),
            ("x-first-death-exchange", exchange),
        ] {
            headers.push((key, old.headers.get(key).unwrap_or(value)));
        }
        headers.push(("x-last-death-reason", HeaderValue::Str(death.as_str())));
        headers.push(("x-last-death-queue", HeaderValue::Str(queue)));
        headers.push(("x-last-death-exchange", exchange));
        headers
    }

    /// True if dead-lettering to `target` closes a cycle with no rejection
    /// in it (RabbitMQ drops the copy for that queue): `target` is in the
    /// trail, and no death from the newest back to its latest visit there
    /// was a rejection. Rejections never cycle.
    fn cycles_at(&self, target: &str, death: Death) -> bool {
        if death == Death::Rejected {
            return false;
        }
        let Some(at) = self.trail.iter().position(|(q, _)| q == target) else { return false };
        self.trail[..=at].iter().all(|(_, r)| r != "rejected")
    }
}

#[cfg(all(test, not(shmq_loom)))]
mod tests {
    use super::*;

    fn record_of(deaths: &DeathRecord) -> Vec<(String, String, i64)> {
        let array = HeaderArray::from_encoded(&deaths.array).unwrap();
        array
            .iter()
            .map(|v| {
                let HeaderValue::Table(t) = v else { panic!("not a table") };
                let s = |k| match t.get(k) {
                    Some(HeaderValue::Str(s)) => s.to_owned(),
                    other => panic!("{k}: {other:?}"),
                };
                let Some(HeaderValue::Int(count)) = t.get("count") else { panic!("no count") };
                (s("queue"), s("reason"), count)
            })
            .collect()
    }

    #[test]
    fn deaths_merge_by_queue_and_reason_and_move_to_the_front() {
        let fresh = PropertiesRef { routing_key: Some("task"), exchange: Some(""), ..Default::default() };
        let first = DeathRecord::new(&fresh, "work", Death::Rejected, 100).unwrap();
        assert_eq!(record_of(&first), [("work".into(), "rejected".into(), 1)]);
        let headers = first.headers(&fresh, "work", Death::Rejected);
        let bytes = Headers::encode(&headers).unwrap();
        let again = PropertiesRef { headers: Headers::from_encoded(&bytes).unwrap(), ..fresh };
        let second = DeathRecord::new(&again, "delay", Death::Expired, 101).unwrap();
        assert_eq!(record_of(&second), [("delay".into(), "expired".into(), 1), ("work".into(), "rejected".into(), 1)]);
        let headers = second.headers(&again, "delay", Death::Expired);
        let bytes = Headers::encode(&headers).unwrap();
        let third_in = PropertiesRef { headers: Headers::from_encoded(&bytes).unwrap(), ..fresh };
        let third = DeathRecord::new(&third_in, "work", Death::Rejected, 102).unwrap();
        assert_eq!(record_of(&third), [("work".into(), "rejected".into(), 2), ("delay".into(), "expired".into(), 1)]);
        // The first death is kept; the last follows each death.
        let headers = third.headers(&third_in, "work", Death::Rejected);
        let get = |k: &str| headers.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        assert_eq!(get("x-first-death-queue"), Some(HeaderValue::Str("work")));
        assert_eq!(get("x-last-death-reason"), Some(HeaderValue::Str("rejected")));
    }

    #[test]
    fn cycles_without_a_rejection_are_detected() {
        let fresh = PropertiesRef::default();
        let expired = DeathRecord::new(&fresh, "a", Death::Expired, 1).unwrap();
        assert!(expired.cycles_at("a", Death::Expired), "a queue expiring into itself");
        assert!(!expired.cycles_at("b", Death::Expired));
        let rejected = DeathRecord::new(&fresh, "a", Death::Rejected, 1).unwrap();
        assert!(!rejected.cycles_at("a", Death::Rejected), "rejections never cycle");
        // work --rejected--> delay --expired--> work: a rejection in the cycle.
        let headers = rejected.headers(&fresh, "a", Death::Rejected);
        let bytes = Headers::encode(&headers).unwrap();
        let then = PropertiesRef { headers: Headers::from_encoded(&bytes).unwrap(), ..fresh };
        let delayed = DeathRecord::new(&then, "delay", Death::Expired, 2).unwrap();
        assert!(!delayed.cycles_at("a", Death::Expired));
        assert!(delayed.cycles_at("delay", Death::Expired));
    }
}
