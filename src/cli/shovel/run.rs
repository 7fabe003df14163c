//! Running shovels: one thread a shovel, each in a loop of sessions (connect
//! both ends, move messages, and on a fault log it, wait `reconnect-delay`
//! and start again). At-least-once under `on-confirm`: the source's ack
//! follows the destination's confirm (shmq → RabbitMQ) or the local
//! publish's return (RabbitMQ → shmq); a session that fails leaves what it
//! held unacked, so the source redelivers it, flagged redelivered.
//!
//! A runner holds `shovels/<name>.lock` (flock) while it runs a shovel, so
//! one process at a time runs it and `shmq shovel list` tells whether
//! anyone does; it writes the shovel's state and counts to
//! `shovels/<name>.status.json`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::stream::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use lapin::Confirmation;
use lapin::{Channel, Connection, ConnectionProperties};
use rustix::fs::{flock, FlockOperation};
use serde_json::json;

use shmq::aio::{AsyncConsumer, AsyncPublisher};

use super::convert::{self, Moved};
use super::definition::{self, redact, AckMode, DeleteAfter, Endpoint, Shovel};

/// How long a wait for a source message lasts before the runner looks at
/// its connections and the status file again.
const POLL: Duration = Duration::from_millis(200);

/// Sessions in a row in which RabbitMQ closed the channel over one message
/// (e.g. a `user_id` that is not the connection's user: 406) after which
/// the refusal is taken as final: the source rejects that message
/// (dead-lettering it if its queue has a dead-letter exchange) and the
/// shovel goes on, instead of one message stopping it for ever. A nack (a
/// full queue) or a return (no binding) is not counted: the message stays
/// in the source and is tried again, as flow control.
const MAX_ATTEMPTS: u32 = 5;

/// Why a session ended without a fault.
enum Ended {
    /// `src-delete-after` reached: the shovel is done.
    Done,
}

type SessionResult = Result<Ended, String>;

/// A running shovel's counters and state, as its status file shows them.
pub struct Progress {
    shovel: Shovel,
    status_path: std::path::PathBuf,
    pub transferred: u64,
    /// Messages the destination refused for good (see `MAX_ATTEMPTS`),
    /// rejected at the source.
    rejected: u64,
    /// Sessions in a row that ended with RabbitMQ refusing the message the
    /// shovel sent alone (see `MAX_ATTEMPTS`).
    refusals: u32,
    /// Messages still to move under `src-delete-after` (None: no limit, or
    /// not known yet for `queue-length`).
    remaining: Option<u64>,
    state: String,
    last_error: Option<String>,
    written: Instant,
    /// The definition as declared (`shovel` holds this session's URIs).
    definition: Shovel,
    /// Sessions started: which of a cluster's URIs the next one uses.
    sessions: usize,
    /// `transferred` as the status file last showed it.
    written_transferred: u64,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn log(name: &str, text: &str) {
    eprintln!("shmq shovel {name}: {text}");
}

impl Progress {
    fn set_state(&mut self, state: &str, error: Option<String>) {
        if self.state != state || error.is_some() {
            match &error {
                Some(e) => log(&self.shovel.name, &format!("{state}: {e}")),
                None => log(&self.shovel.name, state),
            }
        }
        self.state = state.to_owned();
        if error.is_some() {
            self.last_error = error;
        }
        self.write();
    }

    fn write(&mut self) {
        self.written = Instant::now();
        self.written_transferred = self.transferred;
        let status = json!({
            "state": self.state, "transferred": self.transferred, "rejected": self.rejected, "last_error": self.last_error,
            "updated": unix_now(), "pid": std::process::id(),
        });
        if let Err(e) = definition::write_atomically(&self.status_path, &status.to_string()) {
            log(&self.shovel.name, &format!("cannot write its status file: {e}"));
        }
    }

    /// Writes the status file if it is behind (called while idle, so the
    /// counts of a burst show once it is over).
    fn catch_up(&mut self) {
        if self.written_transferred != self.transferred {
            self.write();
        }
    }

    /// Counts `n` moved messages; true once `src-delete-after` is reached.
    fn moved(&mut self, n: u64) -> bool {
        self.transferred += n;
        if let Some(left) = self.remaining.as_mut() {
            *left = left.saturating_sub(n);
        }
        if self.written.elapsed() >= Duration::from_secs(1) {
            self.write();
        }
        self.remaining == Some(0)
    }

    /// Records a message rejected at the source for good.
    fn rejected(&mut self, why: String) {
        self.rejected += 1;
        self.set_state("running", Some(why));
    }

    /// How many messages the next batch may take.
    fn batch_limit(&self) -> usize {
        let prefetch = usize::from(self.shovel.src_prefetch_count);
        self.remaining.map_or(prefetch, |left| prefetch.min(usize::try_from(left).unwrap_or(usize::MAX)))
    }
}

/// Runs the named shovels (all of the namespace's if none) until each is
/// done (`src-delete-after`); faults are retried after `reconnect-delay`
/// (0: the shovel stops at its first fault, as in RabbitMQ).
pub fn run(ns: &shmq::Namespace, names: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let names = if names.is_empty() { definition::names(ns)? } else { names.to_vec() };
    if names.is_empty() {
        return Err(Box::new(crate::shmq_cli::Refused {
            code: 3,
            message: "no shovels to run: declare one with `shmq shovel declare`".into(),
        }));
    }
    let dir = definition::shovels_dir(ns);
    let mut threads = Vec::new();
    for name in names {
        let shovel = definition::load(ns, &name)?;
        let lock_path = dir.join(format!("{name}.lock"));
        let lock = definition::open_owned(&lock_path, true).map_err(|e| format!("{}: {e}", lock_path.display()))?;
        if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
            return Err(Box::new(crate::shmq_cli::Refused {
                code: 4,
                message: format!("shovel {name} is run by another process already"),
            }));
        }
        let status_path = dir.join(format!("{name}.status.json"));
        let remaining = match shovel.src_delete_after {
            DeleteAfter::Count(n) => Some(n),
            DeleteAfter::Never | DeleteAfter::QueueLength => None,
        };
        let progress = Progress {
            definition: shovel.clone(),
            shovel,
            status_path,
            transferred: 0,
            rejected: 0,
            refusals: 0,
            remaining,
            state: String::new(),
            last_error: None,
            written: Instant::now(),
            sessions: 0,
            written_transferred: 0,
        };
        threads.push(std::thread::Builder::new().name(format!("shovel {name}")).spawn(move || {
            let _held = lock;
            run_one(progress)
        })?);
    }
    let mut failed = 0;
    for t in threads {
        if !t.join().unwrap_or(false) {
            failed += 1;
        }
    }
    if failed > 0 {
        return Err(format!("{failed} shovel(s) stopped at a fault (reconnect-delay 0)").into());
    }
    Ok(())
}

/// One shovel's loop of sessions; true if it ended done, false if it
/// stopped at a fault.
fn run_one(mut progress: Progress) -> bool {
    loop {
        progress.set_state("starting", None);
        match session(&mut progress) {
            Ok(Ended::Done) => {
                progress.set_state("terminated", None);
                // As RabbitMQ deletes a shovel that reached src-delete-after:
                // running it again would move more.
                if let Err(e) = std::fs::remove_file(progress.status_path.with_file_name(format!("{}.json", progress.shovel.name))) {
                    log(&progress.shovel.name, &format!("done, but its definition could not be removed: {e}"));
                } else {
                    log(&progress.shovel.name, "done (src-delete-after reached): its definition was removed");
                }
                return true;
            }
            Err(e) => {
                let delay = progress.shovel.reconnect_delay_secs;
                progress.set_state(if delay > 0.0 { "reconnecting" } else { "stopped" }, Some(e));
                if delay <= 0.0 {
                    return false;
                }
                std::thread::sleep(Duration::from_secs_f64(delay));
            }
        }
    }
}

fn session(progress: &mut Progress) -> SessionResult {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    // A cluster's nodes in turn: this session's URIs, also what the
    // x-shovelled header names.
    let attempt = progress.sessions;
    progress.sessions += 1;
    progress.shovel.src = progress.definition.src.for_attempt(attempt);
    progress.shovel.dest = progress.definition.dest.for_attempt(attempt);
    let (src, dest) = (progress.shovel.src.clone(), progress.shovel.dest.clone());
    match (&src, &dest) {
        (Endpoint::Shm(from), Endpoint::Amqp(to)) => runtime.block_on(async {
            // on-publish too: its confirms come after the source's ack, and
            // what the destination returns or refuses is then reported.
            let channel = amqp_channel(&to[0], progress.shovel.ack_mode != AckMode::NoAck).await?;
            let dest = Destination::Amqp(Box::new(channel));
            shm_source(progress, from, dest).await
        }),
        (Endpoint::Shm(from), Endpoint::Shm(to)) => {
            let ns = open_namespace(to)?;
            runtime.block_on(shm_source(progress, from, Destination::Shm(Box::new(AsyncPublisher::new(ns.publisher())), ns)))
        }
        (Endpoint::Amqp(from), Endpoint::Shm(to)) => runtime.block_on(amqp_source(progress, &from[0], to)),
        (Endpoint::Amqp(_), Endpoint::Amqp(_)) => Err("both ends are RabbitMQ".into()),
    }
}

fn open_namespace(name: &str) -> Result<shmq::Namespace, String> {
    let opened = if name.starts_with('/') { shmq::Namespace::open_dir(name) } else { shmq::Namespace::open(name) };
    opened.map_err(|e| format!("namespace {name}: {e}"))
}

async fn amqp_channel(uri: &str, confirms: bool) -> Result<(Connection, Channel), String> {
    let target = super::tls::parse(uri)?;
    let tls = target.tls_config()?;
    let runtime = lapin::runtime::default_runtime().map_err(|e| e.to_string())?;
    let connection = Connection::connect_with_config(&target.uri, ConnectionProperties::default(), tls, runtime)
        .await
        .map_err(|e| format!("connecting to {}: {e}", redact(uri)))?;
    let channel = connection.create_channel().await.map_err(|e| e.to_string())?;
    if confirms {
        channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| e.to_string())?;
    }
    Ok((connection, channel))
}

/// Declares `queue` on RabbitMQ unless it exists (durable, as RabbitMQ's
/// shovel declares it); returns its message count. On channels of its own:
/// a passive declare's 404 closes its channel, and the shovel's channels
/// keep their confirm mode and consumers.
async fn amqp_queue(connection: &Connection, queue: &str) -> Result<u32, String> {
    let name = ShortString::try_new(queue).map_err(|_| format!("queue name {queue:?} is over 255 bytes"))?;
    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    let probe = connection.create_channel().await.map_err(|e| e.to_string())?;
    if let Ok(q) = probe.queue_declare(name.clone(), passive, FieldTable::default()).await {
        let _ = probe.close(200, "declared".into()).await;
        return Ok(q.message_count());
    }
    let channel = connection.create_channel().await.map_err(|e| e.to_string())?;
    let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    let q = channel.queue_declare(name, durable, FieldTable::default()).await.map_err(|e| format!("declaring {queue}: {e}"))?;
    let _ = channel.close(200, "declared".into()).await;
    Ok(q.message_count())
}

/// Declares a queue in a namespace unless it exists; returns its depth.
fn shm_queue(ns: &shmq::Namespace, queue: &str) -> Result<u64, String> {
    match ns.declare_queue_passive(queue) {
        Ok(stats) => Ok(stats.ready),
        Err(shmq::Error::QueueNotFound { .. }) => {
            ns.declare_queue(queue, &shmq::QueueOptions::default()).map(|s| s.ready).map_err(|e| format!("declaring {queue}: {e}"))
        }
        Err(e) => Err(format!("queue {queue}: {e}")),
    }
}

enum Destination {
    Amqp(Box<(Connection, Channel)>),
    Shm(Box<AsyncPublisher>, shmq::Namespace),
}

/// Where a message goes: the destination exchange and routing key.
fn target(shovel: &Shovel, m: &Moved, source_exchange: &str) -> (String, String) {
    match (&shovel.dest_queue, &shovel.dest_exchange) {
        (Some(q), _) => (String::new(), q.clone()),
        (None, Some(x)) => (x.clone(), shovel.dest_exchange_key.clone().unwrap_or_else(|| m.routing_key.clone())),
        (None, None) => (source_exchange.to_owned(), m.routing_key.clone()),
    }
}

/// The headers RabbitMQ's shovel adds: `x-shovelled` (with
/// `dest-add-forward-headers`; shmq adds `src-redelivered` to it, so a
/// possible duplicate is marked) and `x-shovelled-timestamp`.
fn stamped(shovel: &Shovel, mut m: Moved) -> Moved {
    if shovel.add_forward_headers {
        let mut entry = FieldTable::default();
        let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()));
        entry.insert("shovel-name".into(), text(&shovel.name));
        entry.insert("shovel-type".into(), text("dynamic"));
        entry.insert("shovel-vhost".into(), text("/"));
        entry.insert("shovelled-by".into(), text("shmq"));
        for (key, value) in [("src-uri", &shovel.src), ("dest-uri", &shovel.dest)] {
            let uri = match value {
                Endpoint::Shm(ns) => format!("shm://{ns}"),
                Endpoint::Amqp(u) => u.iter().map(|u| redact(u)).collect::<Vec<_>>().join(" "),
            };
            entry.insert(key.into(), text(&uri));
        }
        for (key, value) in [
            ("src-queue", &shovel.src_queue),
            ("src-exchange", &shovel.src_exchange),
            ("dest-queue", &shovel.dest_queue),
            ("dest-exchange", &shovel.dest_exchange),
        ] {
            if let Some(v) = value {
                entry.insert(key.into(), text(v));
            }
        }
        entry.insert("src-redelivered".into(), AMQPValue::Boolean(m.redelivered));
        m.properties =
            convert::add_header(m.properties, "x-shovelled", AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(entry)])));
    }
    if shovel.add_timestamp_header {
        m.properties = convert::add_header(m.properties, "x-shovelled-timestamp", AMQPValue::Timestamp(unix_now()));
    }
    m
}

/// shmq → anywhere: a manual-ack consumer (auto-ack under `no-ack`), a
/// batch at a time; the batch is acked once the destination has it (its
/// confirms, under `on-confirm`).
async fn shm_source(progress: &mut Progress, from: &str, mut dest: Destination) -> SessionResult {
    let shovel = progress.shovel.clone();
    let ns = open_namespace(from)?;
    let queue = match (&shovel.src_queue, &shovel.src_exchange) {
        (Some(q), _) => {
            let depth = shm_queue(&ns, q)?;
            if shovel.src_delete_after == DeleteAfter::QueueLength && progress.remaining.is_none() {
                progress.remaining = Some(depth);
            }
            q.clone()
        }
        (None, Some(x)) => {
            // A queue of the shovel's own, kept between sessions: what a
            // failed session held stays in it.
            let q = definition::exchange_queue(&shovel.name);
            shm_queue(&ns, &q)?;
            ns.bind_queue(&q, x, &shovel.src_exchange_key, &[]).map_err(|e| format!("binding to {x}: {e}"))?;
            q
        }
        (None, None) => return Err("no source queue or exchange".into()),
    };
    if let (Destination::Amqp(amqp), Some(q)) = (&dest, &shovel.dest_queue) {
        amqp_queue(&amqp.0, q).await?;
    }
    if let (Destination::Shm(_, to), Some(q)) = (&dest, &shovel.dest_queue) {
        shm_queue(to, q)?;
    }
    let mode = if shovel.ack_mode == AckMode::NoAck { shmq::AckMode::Auto } else { shmq::AckMode::Manual };
    let options = shmq::ConsumerOptions { ack_mode: mode, prefetch: u32::from(shovel.src_prefetch_count), ..Default::default() };
    let mut consumer = AsyncConsumer::new(ns.consumer(&queue, options).map_err(|e| format!("consuming {queue}: {e}"))?);
    progress.set_state("running", None);
    if progress.remaining == Some(0) {
        return Ok(Ended::Done);
    }
    loop {
        if let Destination::Amqp(amqp) = &dest {
            if !amqp.0.status().connected() {
                return Err("the RabbitMQ connection closed".into());
            }
        }
        let mut limit = progress.batch_limit();
        let mut batch: Vec<(Moved, String, shmq::DeliveryTag)> = Vec::with_capacity(limit);
        let take = |d: shmq::Delivery<'_>, batch: &mut Vec<(Moved, String, shmq::DeliveryTag)>| -> Result<(), String> {
            let exchange = d.properties().exchange.unwrap_or("").to_owned();
            let tag = d.tag();
            batch.push((convert::from_shmq(&d)?, exchange, tag));
            Ok(())
        };
        // Asleep in shmq's reactor, not polling, until a message comes.
        let first = match consumer.recv_timeout(POLL).await {
            Ok(d) => d,
            Err(shmq::RecvError::Timeout) => {
                progress.catch_up();
                continue;
            }
            Err(e) => return Err(format!("consuming {queue}: {e}")),
        };
        if first.redelivered() && shovel.ack_mode != AckMode::NoAck {
            // After a fault: alone, so that a message the destination
            // refuses is found out and does not hold the others back.
            if progress.refusals >= MAX_ATTEMPTS {
                let why = format!("RabbitMQ refused a message {} times in a row: rejected at the source", progress.refusals);
                first.nack(false).map_err(|e| format!("rejecting at the source: {e}"))?;
                progress.refusals = 0;
                progress.rejected(why);
                continue;
            }
            limit = 1;
        }
        take(first, &mut batch)?;
        let consumer = consumer.consumer();
        let mut failed = None;
        let drained = if limit == 1 {
            Ok(0)
        } else {
            consumer.drain(limit - 1, |d| {
                if let Err(e) = take(d, &mut batch) {
                    failed = Some(e);
                }
            })
        };
        match drained {
            // At the prefetch limit: the batch is what is in flight.
            Ok(_) | Err(shmq::RecvError::PrefetchFull(_)) => {}
            Err(e) => return Err(format!("consuming {queue}: {e}")),
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let last = batch.last().map(|(_, _, tag)| *tag);
        let n = batch.len() as u64;
        match &mut dest {
            Destination::Amqp(amqp) => {
                let (connection, channel) = (&amqp.0, &amqp.1);
                // The channel closed by the broker over the message sent
                // alone while the connection stays up: that message's fault.
                let alone = batch.len() == 1;
                let refused = |progress: &mut Progress, e: String| {
                    if alone && connection.status().connected() {
                        progress.refusals += 1;
                    }
                    e
                };
                let mut confirms = Vec::with_capacity(batch.len());
                for (m, exchange, _) in batch {
                    let (x, key) = target(&shovel, &m, &exchange);
                    let m = stamped(&shovel, m);
                    let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
                    let x = ShortString::try_new(x).map_err(|_| "exchange name over 255 bytes".to_string())?;
                    let key = ShortString::try_new(key).map_err(|_| "routing key over 255 bytes".to_string())?;
                    let published = channel.basic_publish(x, key, options, &m.body, m.properties).await;
                    confirms.push(published.map_err(|e| refused(progress, format!("publishing: {e}")))?);
                }
                if shovel.ack_mode == AckMode::OnPublish {
                    // The source's ack first; then what the destination did.
                    if let Some(tag) = last {
                        consumer.ack_multiple(tag).map_err(|e| format!("acking the source: {e}"))?;
                    }
                    let mut lost = 0;
                    for confirm in confirms {
                        if !matches!(confirm.await, Ok(Confirmation::Ack(None))) {
                            lost += 1;
                        }
                    }
                    if lost > 0 {
                        let why = format!(
                            "{lost} messages acked at the source were returned or refused by the destination (ack-mode on-publish): lost"
                        );
                        progress.set_state("running", Some(why));
                    }
                    if progress.moved(n) {
                        return Ok(Ended::Done);
                    }
                    continue;
                }
                if shovel.ack_mode == AckMode::OnConfirm {
                    for confirm in confirms {
                        match confirm.await.map_err(|e| refused(progress, format!("awaiting a confirm: {e}")))? {
                            Confirmation::Ack(None) => {}
                            // Never taken as a confirm: the source keeps it.
                            Confirmation::NotRequested => return Err("the destination channel is not in confirm mode".into()),
                            Confirmation::Ack(Some(_)) => {
                                return Err("the destination returned a message as unroutable (no queue bound)".into())
                            }
                            Confirmation::Nack(_) => return Err("the destination refused (nacked) a message".into()),
                        }
                    }
                }
            }
            Destination::Shm(publisher, _) => {
                for (m, exchange, _) in batch {
                    let (x, key) = target(&shovel, &m, &exchange);
                    publish_local(publisher, &shovel, &x, &key, m).await?;
                }
            }
        }
        if let (Some(tag), true) = (last, shovel.ack_mode != AckMode::NoAck) {
            consumer.ack_multiple(tag).map_err(|e| format!("acking the source: {e}"))?;
        }
        progress.refusals = 0;
        if progress.moved(n) {
            return Ok(Ended::Done);
        }
    }
}

/// Publishes into shmq, mandatory; awaits room in a full `block` queue and
/// retries while a `reject` queue is full (flow control: the shovel slows,
/// nothing is dropped). Errors: no queue took it (unroutable), or a
/// publish error.
async fn publish_local(publisher: &mut AsyncPublisher, shovel: &Shovel, exchange: &str, key: &str, mut m: Moved) -> Result<(), String> {
    let mut pause = Duration::from_millis(1);
    loop {
        let stamped = stamped(shovel, m.clone());
        let headers = convert::encoded_headers(&stamped.properties)?;
        let table = shmq::Headers::from_encoded(&headers).ok_or("the headers did not encode")?;
        let entries: Vec<(&str, shmq::HeaderValue<'_>)> = table.iter().collect();
        let properties = convert::shmq_properties(&stamped.properties, &entries);
        let routed = publisher.publish_mandatory(exchange, key, &properties, &stamped.body).await;
        match routed {
            Ok(r) if r.full == 0 => return Ok(()),
            // A full `reject` queue: try again later. Queues that took it
            // get it again then: such copies are marked (src-redelivered).
            Ok(r) => {
                m.redelivered |= r.queues > 0;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(shmq::PublishError::Unroutable) => {
                return Err(format!("no queue takes messages for exchange {exchange:?} key {key:?} at the destination"))
            }
            Err(e) => return Err(format!("publishing: {e}")),
        }
    }
}

/// RabbitMQ → shmq: a consumer with `src-prefetch-count`; each message is
/// acked once the local publish returned. A fault drops the connection, so
/// RabbitMQ requeues what was unacked, in order, flagged redelivered.
async fn amqp_source(progress: &mut Progress, uri: &str, to: &str) -> SessionResult {
    let shovel = progress.shovel.clone();
    let ns = open_namespace(to)?;
    let (connection, channel) = amqp_channel(uri, false).await?;
    let queue = match (&shovel.src_queue, &shovel.src_exchange) {
        (Some(q), _) => {
            let depth = amqp_queue(&connection, q).await?;
            if shovel.src_delete_after == DeleteAfter::QueueLength && progress.remaining.is_none() {
                progress.remaining = Some(u64::from(depth));
            }
            q.clone()
        }
        (None, Some(x)) => {
            let options = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
            let q = channel.queue_declare("".into(), options, FieldTable::default()).await.map_err(|e| e.to_string())?;
            let key = ShortString::try_new(shovel.src_exchange_key.clone()).map_err(|_| "src-exchange-key over 255 bytes".to_string())?;
            let exchange = ShortString::try_new(x.clone()).map_err(|_| "src-exchange over 255 bytes".to_string())?;
            channel
                .queue_bind(q.name().clone(), exchange, key, QueueBindOptions::default(), FieldTable::default())
                .await
                .map_err(|e| format!("binding to {x}: {e}"))?;
            q.name().as_str().to_owned()
        }
        (None, None) => return Err("no source queue or exchange".into()),
    };
    if let Some(q) = &shovel.dest_queue {
        shm_queue(&ns, q)?;
    }
    if progress.remaining == Some(0) {
        return Ok(Ended::Done);
    }
    channel.basic_qos(shovel.src_prefetch_count, BasicQosOptions::default()).await.map_err(|e| e.to_string())?;
    let no_ack = shovel.ack_mode == AckMode::NoAck;
    let tag = ShortString::try_new(format!("shmq-shovel-{}", shovel.name)).unwrap_or_else(|_| "shmq-shovel".into());
    let queue_name = ShortString::try_new(queue.clone()).map_err(|_| "src-queue over 255 bytes".to_string())?;
    let mut consumer = channel
        .basic_consume(queue_name, tag, BasicConsumeOptions { no_ack, ..BasicConsumeOptions::default() }, FieldTable::default())
        .await
        .map_err(|e| format!("consuming {queue}: {e}"))?;
    let mut publisher = AsyncPublisher::new(ns.publisher());
    progress.set_state("running", None);
    loop {
        let delivery = match tokio::time::timeout(POLL, consumer.next()).await {
            Err(_) => {
                if !connection.status().connected() {
                    return Err("the RabbitMQ connection closed".into());
                }
                progress.catch_up();
                continue;
            }
            Ok(None) => return Err("RabbitMQ cancelled the consumer".into()),
            Ok(Some(Err(e))) => return Err(format!("consuming {queue}: {e}")),
            Ok(Some(Ok(d))) => d,
        };
        let source_exchange = delivery.exchange.as_str().to_owned();
        let m = Moved {
            properties: delivery.properties.clone(),
            body: delivery.data.clone(),
            routing_key: delivery.routing_key.as_str().to_owned(),
            redelivered: delivery.redelivered,
        };
        let (x, key) = target(&shovel, &m, &source_exchange);
        if let Err(e) = convert::with_shmq_properties(&m.properties, |_| ()) {
            // It can never be stored here (e.g. headers nested too deep):
            // rejected at the source, as a poison message, not retried.
            if !no_ack {
                let requeue = lapin::options::BasicRejectOptions { requeue: false };
                delivery.acker.reject(requeue).await.map_err(|e| format!("rejecting at the source: {e}"))?;
            }
            progress.rejected(format!("a message shmq cannot store was rejected at the source: {e}"));
            continue;
        }
        publish_local(&mut publisher, &shovel, &x, &key, m).await?;
        if !no_ack {
            delivery.acker.ack(lapin::options::BasicAckOptions::default()).await.map_err(|e| format!("acking the source: {e}"))?;
        }
        if progress.moved(1) {
            let _ = connection.close(200, "shovel done".into()).await;
            return Ok(Ended::Done);
        }
    }
}

/// What the baseline does.
#[derive(clap::Args, Debug)]
pub struct BaselineArgs {
    /// amqp://user:pass@host:port/vhost
    #[arg(long)]
    uri: String,
    #[arg(long)]
    queue: String,
    /// publish (with confirms, `window` in flight) or consume (manual acks,
    /// prefetch `window`).
    #[arg(long)]
    mode: String,
    #[arg(long)]
    count: u64,
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// As the shovel's src-prefetch-count.
    #[arg(long, default_value_t = 1000)]
    window: u16,
}

/// lapin alone: publishes `count` messages with confirms (awaited a window
/// at a time, as the shovel awaits a batch's) or consumes them with acks;
/// prints messages per second.
pub fn baseline(args: &BaselineArgs) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let rate = runtime.block_on(async {
        let (connection, channel) = amqp_channel(&args.uri, args.mode == "publish").await?;
        amqp_queue(&connection, &args.queue).await?;
        let queue = ShortString::try_new(args.queue.clone()).map_err(|_| "queue name over 255 bytes".to_string())?;
        let body = vec![b'x'; args.size];
        let began = Instant::now();
        match args.mode.as_str() {
            "publish" => {
                let mut sent = 0;
                while sent < args.count {
                    let n = u64::from(args.window).min(args.count - sent);
                    let mut confirms = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
                        let published =
                            channel.basic_publish("".into(), queue.clone(), options, &body, lapin::BasicProperties::default()).await;
                        confirms.push(published.map_err(|e| e.to_string())?);
                    }
                    for confirm in confirms {
                        if !matches!(confirm.await.map_err(|e| e.to_string())?, Confirmation::Ack(None)) {
                            return Err("a publish was not confirmed".to_string());
                        }
                    }
                    sent += n;
                }
            }
            "consume" => {
                channel.basic_qos(args.window, BasicQosOptions::default()).await.map_err(|e| e.to_string())?;
                let mut consumer = channel
                    .basic_consume(queue, "baseline".into(), BasicConsumeOptions::default(), FieldTable::default())
                    .await
                    .map_err(|e| e.to_string())?;
                for _ in 0..args.count {
                    let delivery = consumer.next().await.ok_or("the consumer was cancelled")?.map_err(|e| e.to_string())?;
                    delivery.acker.ack(lapin::options::BasicAckOptions::default()).await.map_err(|e| e.to_string())?;
                }
            }
            other => return Err(format!("--mode {other}: publish or consume")),
        }
        let rate = args.count as f64 / began.elapsed().as_secs_f64();
        let _ = connection.close(200, "done".into()).await;
        Ok(rate)
    })?;
    println!("{rate:.0}");
    Ok(())
}
