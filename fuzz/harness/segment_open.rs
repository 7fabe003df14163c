//! Segment open and validation through the public API: the input becomes a
//! queue segment, a routing segment or a namespace marker file, which is
//! then opened and used as every handle would. Every call must return `Ok`
//! or a typed `Err`: a panic, a hang (`-timeout`), a SIGBUS or an allocation
//! beyond `-rss_limit_mb` is a failure.
//!
//! Input: `mode` then the file.
//! - `mode & 3`: 0 or 3 = `queues/q` of a long-lived namespace; 1 = the
//!   `routing` segment of a fresh namespace; 2 = a fresh namespace's
//!   `shmq.ns` marker.
//! - `mode & 4`: a little-endian `u32` follows; the file is then the rest
//!   zero-extended (sparse) or cut to that length (at most `MAX_FILE`), so a
//!   valid segment fits in a small input (the seeds are such).
//!
//! Names read from a routing table become paths in the library (issue 11,
//! item 5, since validated). The fuzzer runs with its user's rights (root in
//! CI), so as a safety belt the operations that act on names from a fuzzed
//! table (publish, declare, bind, gc) run only when the file holds no `/`
//! byte, that is when no name in it can leave the namespace directory.
use std::cell::RefCell;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use shmq::{ConsumerOptions, Delivery, Error, HeaderValue, Namespace, NamespaceOptions, Properties, QueueOptions, RoutingLimits};

const MAX_FILE: usize = 256 << 10;
const PADDED: u8 = 4;

fn limits() -> RoutingLimits {
    RoutingLimits { max_exchanges: 64, max_queues: 64, max_bindings: 256, table_bytes: 4096 }
}

fn options() -> NamespaceOptions {
    NamespaceOptions::default().routing_limits(limits())
}

fn queue_options() -> QueueOptions {
    QueueOptions::default().capacity_bytes(4096).max_message_bytes(512)
}

struct Fixture {
    root: PathBuf,
    /// The namespace whose `queues/q` each queue-mode input replaces.
    ns: Namespace,
    /// A valid namespace marker for fresh namespaces.
    marker: Vec<u8>,
    fresh: u64,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

thread_local! {
    static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
}

fn with_fixture(f: impl FnOnce(&mut Fixture)) {
    FIXTURE.with(|cell| {
        let mut cell = cell.borrow_mut();
        let fixture = cell.get_or_insert_with(|| {
            // scripts/fuzz.sh points TMPDIR at a directory it removes.
            let thread: String = format!("{:?}", std::thread::current().id()).chars().filter(char::is_ascii_digit).collect();
            let root = std::env::temp_dir().join(format!("shmq-fuzz-{}-{thread}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            let dir = root.join("ns");
            let ns = Namespace::open_dir_with(&dir, options()).expect("open the fuzzing namespace");
            let marker = std::fs::read(dir.join("shmq.ns")).expect("read the namespace marker");
            Fixture { root, ns, marker, fresh: 0 }
        });
        f(fixture);
    });
}

/// Writes `bytes` to `path` and sets its length (sparse beyond the bytes).
fn write_file(path: &Path, bytes: &[u8], len: u64) {
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(path).expect("write the fuzzed file");
    f.write_all(bytes).expect("write the fuzzed file");
    f.set_len(len).expect("size the fuzzed file");
}

fn touch(d: &Delivery<'_>) {
    let _ = d.body().iter().map(|&b| u64::from(b)).sum::<u64>();
    let p = d.properties();
    let _ = p.headers.iter().count();
    let _ = p.headers.get("x");
    let _ = d.redelivered();
    let _ = d.tag();
}

fn queue_mode(fx: &mut Fixture, bytes: &[u8], len: u64) {
    let ns = &fx.ns;
    // Registered first (a file the routing table does not list is no
    // queue), then its file replaced by the fuzzed bytes.
    let declared = ns.declare_queue("q", &queue_options());
    write_file(&ns.path().join("queues").join("q"), bytes, len);
    match ns.queue_stats("q") {
        Ok(_) | Err(Error::Corrupt { .. }) | Err(Error::IncompatibleVersion { .. }) => {}
        // The declare was refused (the file an earlier input left is no
        // queue's): there is no such queue.
        Err(Error::QueueNotFound { .. }) if declared.is_err() => {}
        Err(other) => panic!("queue_stats: unexpected error {other:?} (declare: {declared:?})"),
    }
    let _ = ns.declare_queue_passive("q");
    if let Ok(seen) = ns.peek("q", 8) {
        for m in &seen {
            let _ = m.properties().headers.iter().count();
        }
    }
    let _ = ns.list_consumers();
    if let Ok(consumer) = ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(4)) {
        for i in 0..6 {
            match consumer.try_recv() {
                Ok(d) => {
                    touch(&d);
                    let _ = match i % 3 {
                        0 => d.ack(),
                        1 => d.nack(true),
                        _ => d.reject(false),
                    };
                }
                Err(_) => break,
            }
        }
        let _ = consumer.drain(4, |d| touch(&d));
        let _ = consumer.unacked();
    }
    if let Ok(mut producer) = ns.producer("q") {
        producer.set_publish_timeout(Some(Duration::ZERO));
        let _ = producer.publish(b"fuzz");
        let headers = [("x", HeaderValue::Int(1)), ("s", HeaderValue::Str("v"))];
        let _ = producer.publish_with(&Properties::new().message_id("m").headers(&headers), b"with properties");
        let _ = producer.publish_batch([&b"a"[..], b"bb", b"ccc"]);
        if let Ok(mut r) = producer.reserve(&Properties::new(), 3) {
            r.body_mut().copy_from_slice(b"res");
            r.commit();
        }
    }
    if let Ok(consumer) = ns.consumer("q", ConsumerOptions::default()) {
        if let Ok(d) = consumer.try_recv() {
            touch(&d);
        }
    }
    let _ = ns.queue_stats("q");
    let _ = ns.collect_garbage();
    let _ = ns.purge_queue("q");
    let _ = ns.flush_queue("q");
    let _ = ns.delete_queue("q");
}

fn routing_use(ns: &Namespace, names_are_safe: bool) {
    let exchanges = ns.list_exchanges().unwrap_or_default();
    let _ = ns.list_bindings();
    let _ = ns.routing_generation();
    let _ = ns.unroutable_count();
    let _ = ns.exchange_stats("amq.topic");
    let _ = ns.declare_exchange_passive("amq.topic");
    let _ = ns.declare_queue_passive("q");
    if !names_are_safe {
        return;
    }
    let _ = ns.list_queues();
    let mut publisher = ns.publisher();
    publisher.set_publish_timeout(Some(Duration::ZERO));
    let headers = [("x-match", HeaderValue::Str("any")), ("k", HeaderValue::Int(1))];
    let props = Properties::new().headers(&headers);
    for e in exchanges.iter().take(8) {
        let _ = publisher.route_count(&e.name, "a.b", &props);
        let _ = publisher.publish(&e.name, "a.b", &props, b"routed");
    }
    let _ = publisher.publish_mandatory("amq.direct", "k", &Properties::new(), b"m");
    let _ = ns.declare_queue("fq", &queue_options());
    let _ = ns.bind_queue("fq", "amq.topic", "a.*", &[]);
    let _ = publisher.publish("amq.topic", "a.b", &Properties::new(), b"to fq");
    let _ = ns.unbind_queue("fq", "amq.topic", "a.*", &[]);
    let _ = ns.collect_garbage();
    let _ = ns.delete_queue("fq");
}

fn fresh_namespace(fx: &mut Fixture, routing: Option<(&[u8], u64)>, marker: Option<(&[u8], u64)>) {
    fx.fresh += 1;
    let dir = fx.root.join(format!("fresh-{}", fx.fresh));
    for sub in ["queues", "peers", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).expect("create a fresh namespace");
    }
    match marker {
        Some((bytes, len)) => write_file(&dir.join("shmq.ns"), bytes, len),
        None => write_file(&dir.join("shmq.ns"), &fx.marker, fx.marker.len() as u64),
    }
    let names_are_safe = match routing {
        Some((bytes, len)) => {
            write_file(&dir.join("routing"), bytes, len);
            !bytes.contains(&b'/')
        }
        None => true,
    };
    if let Ok(ns) = Namespace::open_dir_with(&dir, options()) {
        routing_use(&ns, names_are_safe);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// One input; panics on a failure.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (bytes, len) = if mode & PADDED != 0 {
        let Some((head, rest)) = rest.split_first_chunk::<4>() else { return };
        let len = (u32::from_le_bytes(*head) as usize).min(MAX_FILE);
        (&rest[..rest.len().min(len)], len)
    } else {
        (&rest[..rest.len().min(MAX_FILE)], rest.len().min(MAX_FILE))
    };
    let len = len as u64;
    with_fixture(|fx| match mode & 3 {
        1 => fresh_namespace(fx, Some((bytes, len)), None),
        2 => fresh_namespace(fx, None, Some((bytes, len))),
        _ => queue_mode(fx, bytes, len),
    });
}
