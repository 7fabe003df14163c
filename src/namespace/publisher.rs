//! Publishing through exchanges.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, PublishError};
use crate::message::Properties;
use crate::namespace::Namespace;
use crate::queue::producer::Producer;
use crate::routing::{RouteError, RouteScratch, Router};
use crate::sync::Ordering;

/// What one publish reached.
///
/// # Examples
/// ```
/// let routed = shmq::Routed { queues: 2, full: 0 };
/// assert!(routed.is_complete());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Routed {
    /// Queues the message was published to.
    pub queues: usize,
    /// Matched queues that refused it because they were full (`reject`
    /// policy, or a blocking publish that timed out). Other queues were not
    /// held back by them.
    pub full: usize,
}

impl Routed {
    /// True if every matched queue took the message.
    ///
    /// # Examples
    /// See [`Routed`].
    pub fn is_complete(&self) -> bool {
        self.full == 0
    }
}

/// Publishes through exchanges, as AMQP's `basic.publish`: routes with this
/// process's compiled snapshot of the routing table (refreshed when the
/// table's generation moves, one atomic load per publish otherwise) and
/// copies the message into every matched queue.
///
/// # Examples
/// ```
/// # #[cfg(not(shmq_loom))] {
/// # let dir = std::env::temp_dir().join(format!("shmq-doc-publisher-{}", std::process::id()));
/// use shmq::{ExchangeKind, ExchangeOptions, Properties};
/// let ns = shmq::Namespace::open_dir(&dir).unwrap();
/// ns.declare_exchange("logs", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
/// for q in ["a", "b"] {
///     ns.declare_queue(q, &Default::default()).unwrap();
///     ns.bind_queue(q, "logs", "", &[]).unwrap();
/// }
/// let mut publisher = ns.publisher();
/// let routed = publisher.publish("logs", "", &Properties::new(), b"to all").unwrap();
/// assert_eq!(routed.queues, 2);
/// # drop(publisher); std::fs::remove_dir_all(&dir).ok();
/// # }
/// ```
pub struct Publisher {
    ns: Namespace,
    router: Option<Arc<Router>>,
    /// Open producers, by the current router's queue index.
    producers: Vec<Option<Producer>>,
    scratch: RouteScratch,
    targets: Vec<usize>,
    timeout: Option<Duration>,
    busy_poll: bool,
    wait_hook: Option<crate::WaitHook>,
    /// Per-exchange counts not yet added to the shared counters:
    /// `(exchange, hash, published, unroutable)`. Flushed every
    /// `FLUSH_EVERY` publishes and on drop, so the shared counters cost one
    /// atomic add per exchange per batch, not per message.
    pending: Vec<(String, u64, u64, u64)>,
    since_flush: u32,
    /// Scratch for the queues a `CC`/`BCC` key routes to.
    cc_targets: Vec<usize>,
    /// What `self.targets` holds the decision for: a publish with the same
    /// exchange and key under the same snapshot, and no headers (which a
    /// headers exchange or `CC` could route by), reuses it as it is.
    last_route: LastRoute,
    /// The process that made it: a `fork` child's copy does not flush the
    /// parent's pending counts.
    pid: u32,
}

/// The routing keys in a message's `CC` and `BCC` headers (arrays of
/// strings; anything else in them is ignored, as RabbitMQ does).
pub(crate) fn sender_selected_keys<'a>(headers: &'a [(&'a str, crate::HeaderValue<'a>)]) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(|(k, _)| *k == "CC" || *k == "BCC")
        .filter_map(|(_, v)| match v {
            crate::HeaderValue::Array(keys) => Some(keys.iter()),
            _ => None,
        })
        .flatten()
        .filter_map(|v| match v {
            crate::HeaderValue::Str(s) => Some(s),
            _ => None,
        })
}

/// Where a publish interrupted while waiting for room stopped: the next
/// matched queue to copy the message into, and what it reached so far.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Resume {
    next: usize,
    routed: Routed,
}

/// Publishes between flushes of the per-exchange counters.
const FLUSH_EVERY: u32 = 64;

/// See `Publisher::last_route`.
#[derive(Debug, Default)]
struct LastRoute {
    valid: bool,
    generation: u64,
    exchange: String,
    routing_key: String,
}

impl LastRoute {
    fn matches(&self, generation: u64, exchange: &str, routing_key: &str) -> bool {
        self.valid && self.generation == generation && same_name(&self.exchange, exchange) && same_name(&self.routing_key, routing_key)
    }

    fn set(&mut self, generation: u64, exchange: &str, routing_key: &str) {
        self.valid = true;
        self.generation = generation;
        self.exchange.clear();
        self.exchange.push_str(exchange);
        self.routing_key.clear();
        self.routing_key.push_str(routing_key);
    }
}

/// `a == b` as a byte loop: glibc's memcmp was 27 % of a publish through
/// the default exchange (perf, criterion `publish_via`); names are short.
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

impl Publisher {
    pub(crate) fn new(ns: Namespace) -> Self {
        Self {
            ns,
            router: None,
            producers: Vec::new(),
            scratch: RouteScratch::default(),
            targets: Vec::new(),
            timeout: None,
            busy_poll: false,
            wait_hook: None,
            pending: Vec::new(),
            since_flush: 0,
            cc_targets: Vec::new(),
            last_route: LastRoute::default(),
            pid: std::process::id(),
        }
    }

    /// Sets how long a publish waits on a full `block` queue (default: as
    /// long as it takes).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-pubto-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let mut publisher = ns.publisher();
    /// publisher.set_publish_timeout(Some(std::time::Duration::from_millis(100)));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn set_publish_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
        for producer in self.producers.iter_mut().flatten() {
            producer.set_publish_timeout(timeout);
        }
    }

    /// Spin rather than sleep while a publish waits for room in a matched
    /// queue; see [`Producer::set_busy_poll`](crate::Producer::set_busy_poll).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-pubbusy-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let mut publisher = ns.publisher();
    /// publisher.set_busy_poll(true);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn set_busy_poll(&mut self, on: bool) {
        self.busy_poll = on;
        for producer in self.producers.iter_mut().flatten() {
            producer.set_busy_poll(on);
        }
    }

    /// Sets the hook called while a publish waits for room (flow control at
    /// the memory budget, or a `block` queue at its limit); see
    /// [`WaitHook`](crate::WaitHook).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-pubhook-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let mut publisher = ns.publisher();
    /// publisher.set_wait_hook(Some(std::sync::Arc::new(|_reason| true)));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn set_wait_hook(&mut self, hook: Option<crate::WaitHook>) {
        for producer in self.producers.iter_mut().flatten() {
            producer.set_wait_hook(hook.clone());
        }
        self.wait_hook = hook;
    }

    /// True if a queue this publisher published to is blocked by flow
    /// control (its last publish there waited for the memory budget).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-pubblocked-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// assert!(!ns.publisher().is_blocked());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn is_blocked(&self) -> bool {
        self.producers.iter().flatten().any(crate::Producer::is_blocked)
    }

    /// Publishes `body` to `exchange` (`""` is the default exchange, which
    /// routes to the queue named `routing_key`). A message that matches no
    /// queue is dropped and counted ([`Namespace::unroutable_count`]).
    ///
    /// # Errors
    /// `ExchangeNotFound`, `InternalExchange`, `InvalidProperty` (routing
    /// key over 255 bytes), `TooLarge`, `Routing`; errors of individual
    /// queues other than "full" and "deleted".
    ///
    /// # Examples
    /// See [`Publisher`].
    pub fn publish(&mut self, exchange: &str, routing_key: &str, properties: &Properties<'_>, body: &[u8]) -> Result<Routed, PublishError> {
        self.publish_inner(exchange, routing_key, properties, body, false)
    }

    /// As [`publish`](Publisher::publish), but a message that matches no
    /// queue is returned as `Unroutable` (AMQP's `mandatory` flag).
    ///
    /// # Errors
    /// `Unroutable`, and as [`publish`](Publisher::publish).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-mand-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// let err = ns.publisher().publish_mandatory("amq.direct", "nobody", &shmq::Properties::new(), b"x");
    /// assert_eq!(err, Err(shmq::PublishError::Unroutable));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn publish_mandatory(
        &mut self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        body: &[u8],
    ) -> Result<Routed, PublishError> {
        self.publish_inner(exchange, routing_key, properties, body, true)
    }

    /// Publishes every body in `bodies` (a slice of anything that is bytes:
    /// `&[u8]`, `Vec<u8>`, `String`, ...) with the same exchange, routing
    /// key and properties: routed once, then copied into each matched queue
    /// a chunk per claim, as [`Producer::publish_batch`](crate::Producer::publish_batch).
    /// (A slice, not any iterator: every matched queue gets every body.)
    /// The result's counts are summed over the messages: `queues` is the
    /// copies enqueued, `full` the copies refused (a refusal does not stop
    /// the rest of the batch). A batch no queue takes is dropped and counted
    /// as unroutable, as `publish` does.
    ///
    /// # Errors
    /// As [`publish`](Publisher::publish), and as one `publish` per message
    /// would fail: the messages before the failing one were published (and
    /// are counted in the exchange's stats), the failing one reached the
    /// matched queues before the one that refused it, and no later message
    /// was published. (A message too large for a queue is found before
    /// anything is copied; only a damaged queue fails in the middle of a
    /// chunk, which leaves that chunk's messages in the queues before it.)
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-pubbatch-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &Default::default()).unwrap();
    /// let mut publisher = ns.publisher();
    /// let routed = publisher.publish_batch("", "q", &shmq::Properties::new(), &[b"a", b"b", b"c"]).unwrap();
    /// assert_eq!(routed, shmq::Routed { queues: 3, full: 0 });
    /// # drop(publisher); std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn publish_batch<B: AsRef<[u8]>>(
        &mut self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        bodies: &[B],
    ) -> Result<Routed, PublishError> {
        self.route(exchange, routing_key, properties)?;
        let (published, result) = self.publish_routed_batch(exchange, routing_key, properties, bodies);
        let unroutable = matches!(&result, Ok(routed) if routed.queues == 0 && routed.full == 0);
        self.count(exchange, unroutable, published as u64);
        result
    }

    /// `publish_batch` once routed: the runs of messages every matched
    /// queue takes go a chunk per claim, queue by queue; a message some
    /// queue refuses as too large goes alone, queue by queue, as a single
    /// publish, so the batch stops exactly where one publish per message
    /// would. Returns how many messages were published, with the result.
    fn publish_routed_batch<B: AsRef<[u8]>>(
        &mut self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        bodies: &[B],
    ) -> (usize, Result<Routed, PublishError>) {
        let mut total = Routed::default();
        let mut start = 0;
        let mut add = |routed: Routed| {
            total.queues += routed.queues;
            total.full += routed.full;
        };
        while start < bodies.len() {
            let fits = match self.count_that_fit(exchange, routing_key, properties, &bodies[start..]) {
                Ok(fits) => start + fits,
                Err(e) => return (start, Err(e)),
            };
            if fits > start {
                match self.publish_routed(exchange, routing_key, properties, &bodies[start..fits], false) {
                    Ok(routed) => add(routed),
                    Err(e) => return (start, Err(e)),
                }
            }
            if fits == bodies.len() {
                break;
            }
            match self.publish_routed(exchange, routing_key, properties, &bodies[fits..=fits], false) {
                Ok(routed) => add(routed),
                Err(e) => return (fits, Err(e)),
            }
            start = fits + 1;
        }
        (bodies.len(), Ok(total))
    }

    /// How many of `bodies`, from the first, every matched queue takes as
    /// to size (its `max_message_bytes`, with the stamped properties).
    fn count_that_fit<B: AsRef<[u8]>>(
        &mut self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        bodies: &[B],
    ) -> Result<usize, PublishError> {
        let without_bcc = without_bcc(properties.headers);
        let props_len = stamp(exchange, routing_key, properties, &without_bcc).encoded_len()?;
        let mut fits = bodies.len();
        for i in 0..self.targets.len() {
            let Some(producer) = self.target_producer(self.targets[i])? else { continue };
            if let Some(refused) = bodies[..fits].iter().position(|body| producer.check_size(props_len, body.as_ref().len()).is_err()) {
                fits = refused;
            }
        }
        Ok(fits)
    }

    /// How many queues a message would reach, without publishing it (a dry
    /// run of the routing decision).
    ///
    /// # Errors
    /// `ExchangeNotFound`, `InternalExchange`, `Routing`, and
    /// `InvalidProperty` for a routing key over 255 bytes, as `publish`.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(not(shmq_loom))] {
    /// # let dir = std::env::temp_dir().join(format!("shmq-doc-dry-{}", std::process::id()));
    /// let ns = shmq::Namespace::open_dir(&dir).unwrap();
    /// ns.declare_queue("q", &Default::default()).unwrap();
    /// ns.bind_queue("q", "amq.topic", "a.*", &[]).unwrap();
    /// let mut publisher = ns.publisher();
    /// assert_eq!(publisher.route_count("amq.topic", "a.b", &shmq::Properties::new()).unwrap(), 1);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # }
    /// ```
    pub fn route_count(&mut self, exchange: &str, routing_key: &str, properties: &Properties<'_>) -> Result<usize, PublishError> {
        self.route(exchange, routing_key, properties)?;
        Ok(self.targets.len())
    }

    /// Routes through the current snapshot into `self.targets`.
    #[inline]
    fn route(&mut self, exchange: &str, routing_key: &str, properties: &Properties<'_>) -> Result<(), PublishError> {
        if routing_key.len() > 255 {
            return Err(PublishError::InvalidProperty("the routing key is over 255 bytes"));
        }
        self.refresh()?;
        let Some(router) = self.router.as_ref() else { return Err(PublishError::Routing("no routing snapshot".into())) };
        let headers = properties.headers;
        if headers.is_empty() && self.last_route.matches(router.generation, exchange, routing_key) {
            return Ok(());
        }
        self.last_route.valid = false;
        let routed = router.route(exchange, routing_key, &headers, &mut self.scratch, &mut self.targets);
        if routed.is_ok() && headers.is_empty() {
            self.last_route.set(router.generation, exchange, routing_key);
        }
        if routed.is_ok() && !headers.is_empty() {
            // Sender-selected distribution: the keys in the `CC` and `BCC`
            // headers route the message too, each queue once.
            for key in sender_selected_keys(headers) {
                if key.len() > 255 {
                    return Err(PublishError::InvalidProperty("a CC or BCC routing key is over 255 bytes"));
                }
                let mut more = std::mem::take(&mut self.cc_targets);
                let _ = router.route(exchange, key, &headers, &mut self.scratch, &mut more);
                for &t in &more {
                    if !self.targets.contains(&t) {
                        self.targets.push(t);
                    }
                }
                self.cc_targets = more;
            }
        }
        match routed {
            Ok(()) => Ok(()),
            Err(RouteError::NoExchange) => Err(PublishError::ExchangeNotFound),
            Err(RouteError::Internal) => Err(PublishError::InternalExchange),
        }
    }

    /// Makes `self.router` current; on a new generation, carries the open
    /// producers over to the new queue numbering.
    fn refresh(&mut self) -> Result<(), PublishError> {
        let generation = self.ns.shared.routing.current_generation();
        if self.router.as_ref().is_some_and(|r| r.generation == generation) {
            return Ok(());
        }
        let router = self.ns.shared.router().map_err(|e| PublishError::Routing(e.to_string()))?;
        let mut producers: Vec<Option<Producer>> = Vec::new();
        producers.resize_with(router.queue_names.len(), || None);
        for producer in self.producers.drain(..).flatten() {
            if let Some(i) = router.queue_position(producer.queue_name()) {
                producers[i] = Some(producer);
            }
        }
        self.producers = producers;
        self.router = Some(router);
        Ok(())
    }

    /// Counts `n` publishes to `exchange`.
    fn count(&mut self, exchange: &str, unroutable: bool, n: u64) {
        let index = match self.pending.iter().position(|(name, ..)| same_name(name, exchange)) {
            Some(i) => i,
            None => {
                self.pending.push((exchange.to_owned(), crate::routing::table::exchange_hash(exchange), 0, 0));
                self.pending.len() - 1
            }
        };
        let entry = &mut self.pending[index];
        entry.2 += n;
        entry.3 += if unroutable { n } else { 0 };
        self.since_flush = self.since_flush.saturating_add(n.min(u64::from(u32::MAX)) as u32);
        if self.since_flush >= FLUSH_EVERY {
            self.flush_counts();
        }
    }

    /// Adds the pending per-exchange counts to the shared counters.
    fn flush_counts(&mut self) {
        for (_, hash, published, unroutable) in self.pending.iter_mut() {
            if *published > 0 {
                self.ns.shared.routing.add_exchange_counts(*hash, *published, *unroutable);
                *published = 0;
                *unroutable = 0;
            }
        }
        self.since_flush = 0;
    }

    /// Publishes a dead-lettered copy: as `publish`, to the matched queues
    /// `keep` accepts (RabbitMQ drops the copy for queues it would cycle
    /// back to).
    pub(crate) fn publish_dead_letter(
        &mut self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        body: &[u8],
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Routed, PublishError> {
        self.route(exchange, routing_key, properties)?;
        if let Some(router) = self.router.as_ref() {
            self.targets.retain(|&t| keep(&router.queue_names[t]));
            self.last_route.valid = false;
        }
        let result = self.publish_routed(exchange, routing_key, properties, &[body], false);
        if let Ok(routed) = &result {
            self.count(exchange, routed.queues == 0 && routed.full == 0, 1);
        }
        result
    }

    fn publish_inner(
        &mut self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        body: &[u8],
        mandatory: bool,
    ) -> Result<Routed, PublishError> {
        self.publish_resumable(exchange, routing_key, properties, body, mandatory, &mut None)
    }

    /// One message: routes it (unless `resume` holds a publish interrupted
    /// before), then copies it into the matched queues from where it
    /// stopped. On `Interrupted` (a wait hook said no, as the async
    /// publisher's does) `resume` notes the queue that would have waited, so
    /// a second call with the same arguments goes on from there and no
    /// queue gets the message twice. Counted once it ends.
    pub(crate) fn publish_resumable(
        &mut self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        body: &[u8],
        mandatory: bool,
        resume: &mut Option<Resume>,
    ) -> Result<Routed, PublishError> {
        let progress = match resume {
            Some(progress) => progress,
            None => {
                self.route(exchange, routing_key, properties)?;
                resume.insert(Resume::default())
            }
        };
        let result = self.publish_routed_from(exchange, routing_key, properties, &[body], mandatory, progress);
        if result == Err(PublishError::Interrupted) {
            return result;
        }
        *resume = None;
        match &result {
            Ok(routed) => self.count(exchange, routed.queues == 0 && routed.full == 0, 1),
            Err(PublishError::Unroutable) => self.count(exchange, true, 1),
            Err(_) => {}
        }
        result
    }

    /// The publish timeout set with `set_publish_timeout` (the async
    /// publisher takes it over).
    #[cfg(feature = "async")]
    pub(crate) fn publish_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The producer of the queue an interrupted publish stopped at.
    #[cfg(feature = "async")]
    pub(crate) fn stalled_producer(&mut self, resume: &Resume) -> Option<&mut Producer> {
        let target = *self.targets.get(resume.next)?;
        self.producers.get_mut(target)?.as_mut()
    }

    /// Gives up on the queue an interrupted publish stopped at (its wait
    /// timed out): counted as full, as a blocking publish's timeout is.
    #[cfg(feature = "async")]
    pub(crate) fn skip_stalled(resume: &mut Resume) {
        resume.routed.full += 1;
        resume.next += 1;
    }

    /// Publishes `bodies` (one message, or a batch) to the queues `route`
    /// put in `self.targets`; a batch's counts are summed over its
    /// messages.
    fn publish_routed<B: AsRef<[u8]>>(
        &mut self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        bodies: &[B],
        mandatory: bool,
    ) -> Result<Routed, PublishError> {
        self.publish_routed_from(exchange, routing_key, properties, bodies, mandatory, &mut Resume::default())
    }

    /// `publish_routed` from the matched queue `progress.next` on, adding to
    /// `progress.routed`; an error leaves `progress.next` at the queue that
    /// failed.
    fn publish_routed_from<B: AsRef<[u8]>>(
        &mut self,
        exchange: &str,
        routing_key: &str,
        properties: &Properties<'_>,
        bodies: &[B],
        mandatory: bool,
        progress: &mut Resume,
    ) -> Result<Routed, PublishError> {
        if self.targets.is_empty() {
            if mandatory {
                return Err(PublishError::Unroutable);
            }
            self.ns.shared.routing.unroutable().fetch_add(bodies.len() as u64, Ordering::Relaxed);
            return Ok(Routed::default());
        }
        let without_bcc = without_bcc(properties.headers);
        let stamped = stamp(exchange, routing_key, properties, &without_bcc);
        let routed = &mut progress.routed;
        for i in progress.next..self.targets.len() {
            progress.next = i;
            let target = self.targets[i];
            let Some(producer) = self.target_producer(target)? else { continue };
            if let [body] = bodies {
                // One message: the plain path.
                match producer.publish_with(&stamped, body.as_ref()) {
                    Ok(()) => routed.queues += 1,
                    Err(PublishError::QueueFull) | Err(PublishError::Timeout) => routed.full += 1,
                    Err(PublishError::QueueDeleted) => self.producers[target] = None,
                    Err(e) => return Err(e),
                }
                continue;
            }
            let mut rest = bodies;
            while !rest.is_empty() {
                let (done, result) = producer.publish_chunks(&stamped, rest);
                routed.queues += done;
                match result {
                    Ok(()) => break,
                    // That message is refused; the queue may take the next.
                    Err(PublishError::QueueFull) | Err(PublishError::Timeout) => {
                        routed.full += 1;
                        rest = &rest[done + 1..];
                    }
                    Err(PublishError::QueueDeleted) => {
                        self.producers[target] = None;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        progress.next = self.targets.len();
        Ok(*routed)
    }

    /// The producer for matched queue `target`, opened on first use; None
    /// if the queue was deleted since the snapshot (as if unbound).
    fn target_producer(&mut self, target: usize) -> Result<Option<&mut Producer>, PublishError> {
        let Some(router) = self.router.as_ref() else { return Err(PublishError::Routing("no routing snapshot".into())) };
        let slot = &mut self.producers[target];
        if slot.is_none() {
            match self.ns.producer(&router.queue_names[target]) {
                Ok(mut p) => {
                    p.set_publish_timeout(self.timeout);
                    p.set_busy_poll(self.busy_poll);
                    p.set_wait_hook(self.wait_hook.clone());
                    *slot = Some(p);
                }
                Err(Error::QueueNotFound { .. }) => return Ok(None),
                Err(e) => return Err(PublishError::Routing(e.to_string())),
            }
        }
        Ok(slot.as_mut())
    }
}

/// `properties` as delivered from `exchange` with `routing_key`: with both
/// stamped in, and without the `BCC` header (`without_bcc`'s answer).
fn stamp<'a>(
    exchange: &'a str,
    routing_key: &'a str,
    properties: &Properties<'a>,
    without_bcc: &'a Option<Vec<(&'a str, crate::HeaderValue<'a>)>>,
) -> Properties<'a> {
    let headers = without_bcc.as_deref().unwrap_or(properties.headers);
    Properties { routing_key: Some(routing_key), exchange: Some(exchange), headers, ..*properties }
}

/// `headers` without `BCC`, if it has one: `BCC` routes but is never
/// delivered, as in RabbitMQ.
fn without_bcc<'a>(headers: &[(&'a str, crate::HeaderValue<'a>)]) -> Option<Vec<(&'a str, crate::HeaderValue<'a>)>> {
    headers.iter().any(|(k, _)| *k == "BCC").then(|| headers.iter().filter(|(k, _)| *k != "BCC").copied().collect())
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if crate::liveness::inherited(self.pid) {
            return;
        }
        self.flush_counts();
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("namespace", &self.ns.name())
            .field("queues_open", &self.producers.iter().flatten().count())
            .finish()
    }
}
