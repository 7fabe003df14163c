//! Exchanges, bindings and routing: each exchange type, the routing-table
//! rules and their errors, exclusive and auto-delete queues, and changes
//! seen across processes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{finish, TempNs};
use shmq::{
    ArgValue, ConsumerOptions, Error, ExchangeKind, ExchangeOptions, HeaderValue, Overflow, Properties, PublishError, QueueOptions,
};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

/// What `f` returns and the bytes this thread allocated meanwhile (freed or
/// not).
fn bytes_allocated_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let (result, _, bytes) = counting_alloc::allocated_during(f);
    (result, bytes)
}

fn drain(ns: &shmq::Namespace, queue: &str) -> Vec<String> {
    let consumer = ns.consumer(queue, ConsumerOptions::default()).unwrap();
    std::iter::from_fn(|| consumer.try_recv().ok().map(|d| String::from_utf8_lossy(d.body()).into_owned())).collect()
}

fn queues(ns: &shmq::Namespace, names: &[&str]) {
    for q in names {
        ns.declare_queue(q, &QueueOptions::default()).unwrap();
    }
}

#[test]
fn default_exchange_routes_by_queue_name_and_drops_the_rest() {
    let t = TempNs::new("r-default");
    queues(&t.ns, &["hello"]);
    let mut p = t.ns.publisher();
    assert_eq!(p.publish("", "hello", &Properties::new(), b"Hello World").unwrap().queues, 1);
    // The seed: a message to a queue that does not exist is dropped.
    assert_eq!(p.publish("", "nobody", &Properties::new(), b"lost").unwrap().queues, 0);
    assert_eq!(t.ns.unroutable_count(), 1);
    assert_eq!(p.publish_mandatory("", "nobody", &Properties::new(), b"x"), Err(PublishError::Unroutable));
    let consumer = t.ns.consumer("hello", ConsumerOptions::default()).unwrap();
    let d = consumer.try_recv().unwrap();
    assert_eq!((d.body(), d.properties().routing_key, d.properties().exchange), (&b"Hello World"[..], Some("hello"), Some("")));
}

#[test]
fn direct_fanout_topic_and_headers_exchanges() {
    let t = TempNs::new("r-kinds");
    queues(&t.ns, &["errors", "all", "kern", "pdf"]);
    t.ns.declare_exchange("direct_logs", &ExchangeOptions::new(ExchangeKind::Direct)).unwrap();
    t.ns.bind_queue("errors", "direct_logs", "error", &[]).unwrap();
    t.ns.bind_queue("all", "amq.fanout", "", &[]).unwrap();
    t.ns.bind_queue("kern", "amq.topic", "kern.*", &[]).unwrap();
    let args = vec![("x-match".to_string(), ArgValue::Str("all".into())), ("format".to_string(), ArgValue::Str("pdf".into()))];
    t.ns.bind_queue("pdf", "amq.headers", "", &args).unwrap();
    let mut p = t.ns.publisher();
    p.publish("direct_logs", "error", &Properties::new(), b"d1").unwrap();
    p.publish("direct_logs", "info", &Properties::new(), b"d2").unwrap();
    p.publish("amq.fanout", "whatever", &Properties::new(), b"f1").unwrap();
    p.publish("amq.topic", "kern.disk", &Properties::new(), b"t1").unwrap();
    p.publish("amq.topic", "kern.disk.full", &Properties::new(), b"t2").unwrap();
    let pdf = [("format", HeaderValue::Str("pdf"))];
    let zip = [("format", HeaderValue::Str("zip"))];
    p.publish("amq.headers", "", &Properties::new().headers(&pdf), b"h1").unwrap();
    p.publish("amq.headers", "", &Properties::new().headers(&zip), b"h2").unwrap();
    assert_eq!(drain(&t.ns, "errors"), vec!["d1"]);
    assert_eq!(drain(&t.ns, "all"), vec!["f1"]);
    assert_eq!(drain(&t.ns, "kern"), vec!["t1"]);
    assert_eq!(drain(&t.ns, "pdf"), vec!["h1"]);
}

#[test]
fn exchange_to_exchange_bindings_and_alternate_exchanges() {
    let t = TempNs::new("r-e2e");
    queues(&t.ns, &["audit", "unrouted"]);
    t.ns.declare_exchange("catch_all", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
    t.ns.bind_queue("unrouted", "catch_all", "", &[]).unwrap();
    t.ns.declare_exchange("orders", &ExchangeOptions::new(ExchangeKind::Direct).alternate_exchange("catch_all")).unwrap();
    t.ns.declare_exchange("audit_x", &ExchangeOptions::new(ExchangeKind::Fanout).internal(true)).unwrap();
    t.ns.bind_exchange("audit_x", "orders", "created", &[]).unwrap();
    t.ns.bind_queue("audit", "audit_x", "", &[]).unwrap();
    let mut p = t.ns.publisher();
    assert_eq!(p.publish("orders", "created", &Properties::new(), b"o1").unwrap().queues, 1);
    assert_eq!(p.publish("orders", "weird", &Properties::new(), b"o2").unwrap().queues, 1);
    assert_eq!(p.publish("audit_x", "", &Properties::new(), b"x"), Err(PublishError::InternalExchange));
    assert_eq!(drain(&t.ns, "audit"), vec!["o1"]);
    assert_eq!(drain(&t.ns, "unrouted"), vec!["o2"]);
}

#[test]
fn bad_routing_input_gets_typed_errors() {
    let t = TempNs::new("r-bad");
    queues(&t.ns, &["q"]);
    let mut p = t.ns.publisher();
    assert_eq!(p.publish("nope", "k", &Properties::new(), b"x"), Err(PublishError::ExchangeNotFound));
    t.ns.declare_exchange("x", &ExchangeOptions::new(ExchangeKind::Direct)).unwrap();
    match t.ns.declare_exchange("x", &ExchangeOptions::new(ExchangeKind::Topic)).unwrap_err() {
        Error::ExchangeConflict { existing, requested, .. } => assert_eq!((existing.as_str(), requested.as_str()), ("direct", "topic")),
        e => panic!("{e}"),
    }
    assert!(matches!(t.ns.bind_queue("missing", "x", "k", &[]), Err(Error::QueueNotFound { .. })));
    let err = t.ns.bind_queue("q", "xx", "k", &[]).unwrap_err();
    assert!(err.to_string().contains("did you mean 'x'"), "{err}");
    let long = "k".repeat(256);
    assert!(matches!(t.ns.bind_queue("q", "x", &long, &[]), Err(Error::InvalidName { .. })));
    assert_eq!(p.publish("x", &long, &Properties::new(), b"x"), Err(PublishError::InvalidProperty("the routing key is over 255 bytes")));
    t.ns.bind_queue("q", "x", "k", &[]).unwrap();
    assert!(matches!(t.ns.delete_exchange("x", true), Err(Error::ExchangeInUse { bindings: 1, .. })));
    t.ns.delete_exchange("x", false).unwrap();
    assert!(t.ns.list_bindings().unwrap().is_empty());
    assert!(matches!(t.ns.declare_exchange("amq.new", &ExchangeOptions::new(ExchangeKind::Direct)), Err(Error::AccessRefused { .. })));
    assert!(matches!(t.ns.delete_exchange("amq.topic", false), Err(Error::AccessRefused { .. })));
    assert!(matches!(t.ns.declare_exchange("", &ExchangeOptions::new(ExchangeKind::Direct)), Err(Error::AccessRefused { .. })));
}

#[test]
fn a_full_routing_table_is_a_typed_error() {
    let dir = std::env::temp_dir().join(format!("shmq-test-r-full-{}", std::process::id()));
    let limits = shmq::RoutingLimits { max_bindings: 3, ..Default::default() };
    let ns = shmq::Namespace::open_dir_with(&dir, shmq::NamespaceOptions::default().routing_limits(limits)).unwrap();
    ns.declare_queue("q", &QueueOptions::default()).unwrap();
    for key in ["a", "b", "c"] {
        ns.bind_queue("q", "amq.direct", key, &[]).unwrap();
    }
    let err = ns.bind_queue("q", "amq.direct", "d", &[]).unwrap_err();
    assert!(matches!(err, Error::TableFull { what: "bindings", limit: 3 }), "{err}");
    assert_eq!(ns.list_bindings().unwrap().len(), 3, "a refused change leaves the table as it was");
    drop(ns);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn exclusive_queues_get_generated_names_and_are_locked_to_their_owner() {
    let t = TempNs::new("r-excl");
    let owner = shmq::Namespace::open_dir(t.path()).unwrap();
    let name = owner.declare_queue("", &QueueOptions::default().exclusive(true)).unwrap().name;
    assert!(name.starts_with("amq.gen-"), "{name}");
    assert!(owner.consumer(&name, ConsumerOptions::default()).is_ok());
    // Another process may publish to it (RPC replies), not consume from it.
    let other_process = t.spawn(&["consume", &name, "--count", "1"]);
    let out = other_process.wait_with_output().unwrap();
    assert!(!out.status.success());
    drop(owner);
    assert!(!t.ns.list_queues().unwrap().contains(&name), "closing the owner deletes it");
}

#[test]
fn exclusive_queue_of_a_killed_process_is_removed_with_its_bindings() {
    let t = TempNs::in_shm("r-excl-kill");
    let mut victim =
        t.shmq().args(["consume", "", "--bind", "amq.fanout:", "--announce"]).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(victim.stderr.take().unwrap()).read_line(&mut line).unwrap();
    let queue = line.trim().strip_prefix("ready ").unwrap().to_owned();
    assert!(t.ns.list_queues().unwrap().contains(&queue));
    assert_eq!(t.ns.list_bindings().unwrap().len(), 1);
    victim.kill().unwrap();
    victim.wait().unwrap();
    // The next change to the table by anyone collects it.
    t.ns.declare_queue("unrelated", &QueueOptions::default()).unwrap();
    assert!(!t.ns.list_queues().unwrap().contains(&queue));
    assert!(t.ns.list_bindings().unwrap().is_empty());
}

#[test]
fn auto_delete_queue_goes_with_its_last_consumer() {
    let t = TempNs::new("r-autodel");
    t.ns.declare_queue("tmp", &QueueOptions::default().auto_delete(true)).unwrap();
    let first = t.ns.consumer("tmp", ConsumerOptions::default()).unwrap();
    let second = t.ns.consumer("tmp", ConsumerOptions::default()).unwrap();
    drop(first);
    assert!(t.ns.list_queues().unwrap().contains(&"tmp".to_string()));
    drop(second);
    assert!(!t.ns.list_queues().unwrap().contains(&"tmp".to_string()));
}

#[test]
fn auto_delete_exchange_goes_with_its_last_binding() {
    let t = TempNs::new("r-autodelx");
    queues(&t.ns, &["q"]);
    t.ns.declare_exchange("ephemeral", &ExchangeOptions::new(ExchangeKind::Fanout).auto_delete(true)).unwrap();
    t.ns.bind_queue("q", "ephemeral", "", &[]).unwrap();
    t.ns.unbind_queue("q", "ephemeral", "", &[]).unwrap();
    assert!(t.ns.declare_exchange_passive("ephemeral").is_err());
}

#[test]
fn fanout_to_a_full_drop_oldest_queue_does_not_hold_back_the_others() {
    let t = TempNs::new("r-fanout-full");
    let tiny = QueueOptions::default().capacity_bytes(4096).max_length(4).max_message_bytes(256).overflow(Overflow::DropOldest);
    t.ns.declare_queue("slow", &tiny).unwrap();
    let rejecting = tiny.clone().overflow(Overflow::Reject);
    t.ns.declare_queue("strict", &rejecting).unwrap();
    queues(&t.ns, &["fast"]);
    for q in ["slow", "strict", "fast"] {
        t.ns.bind_queue(q, "amq.fanout", "", &[]).unwrap();
    }
    let mut p = t.ns.publisher();
    let mut full = 0;
    for i in 0..10 {
        let routed = p.publish("amq.fanout", "", &Properties::new(), format!("m{i}").as_bytes()).unwrap();
        full += routed.full;
    }
    assert_eq!(full, 6, "the reject queue refused m4..m9");
    assert_eq!(drain(&t.ns, "fast").len(), 10);
    assert_eq!(drain(&t.ns, "slow"), vec!["m6", "m7", "m8", "m9"]);
    assert_eq!(drain(&t.ns, "strict"), vec!["m0", "m1", "m2", "m3"]);
}

#[test]
fn a_binding_made_by_another_process_applies_to_the_next_publish() {
    let t = TempNs::in_shm("r-generation");
    queues(&t.ns, &["late"]);
    let mut p = t.ns.publisher();
    assert_eq!(p.publish("amq.direct", "k", &Properties::new(), b"before").unwrap().queues, 0);
    let before = t.ns.routing_generation();
    t.run(&["bind", "amq.direct", "late", "--key", "k"]); // another process
    assert!(t.ns.routing_generation() > before);
    assert_eq!(p.publish("amq.direct", "k", &Properties::new(), b"after").unwrap().queues, 1);
    assert_eq!(drain(&t.ns, "late"), vec!["after"]);
}

#[test]
fn publish_subscribe_across_processes_with_the_cli() {
    let t = TempNs::in_shm("r-cli-pubsub");
    t.run(&["declare-exchange", "logs", "--type", "fanout"]);
    let subscribers: Vec<_> = (0..3)
        .map(|_| {
            let mut child = t
                .shmq()
                .args(["consume", "", "--bind", "logs:", "--count", "2", "--announce"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut line = String::new();
            BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
            assert!(line.starts_with("ready amq.gen-"));
            child
        })
        .collect();
    t.run(&["publish", "--exchange", "logs", "", "one", "two"]);
    for s in subscribers {
        assert_eq!(finish(s), "one\t0\ntwo\t0\n");
    }
    assert!(t.run(&["list-exchanges"]).contains("logs"));
}

#[test]
fn a_writer_killed_holding_the_table_lock_does_not_wedge_the_namespace() {
    let t = TempNs::in_shm("r-lock-kill");
    queues(&t.ns, &["q"]);
    // Another process takes the writers' lock and is killed holding it.
    let mut holder = std::process::Command::new("flock")
        .arg("--close") // only the flock process itself holds the lock
        .arg(t.path().join("routing.lock"))
        .args(["-c", "echo locked; sleep 10"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "locked\n");
    let ns = t.ns.clone();
    let binder = std::thread::spawn(move || ns.bind_queue("q", "amq.direct", "k", &[]));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!binder.is_finished(), "writers wait for the lock");
    holder.kill().unwrap();
    holder.wait().unwrap();
    binder.join().unwrap().unwrap();
    assert_eq!(t.ns.list_bindings().unwrap().len(), 1);
}

#[test]
fn a_half_written_table_update_is_never_visible() {
    use std::io::{Seek, SeekFrom, Write};
    let t = TempNs::new("r-half");
    queues(&t.ns, &["q"]);
    t.ns.bind_queue("q", "amq.direct", "k", &[]).unwrap();
    let generation = t.ns.routing_generation();
    // What a writer killed mid-update leaves: garbage in the region the
    // next generation would use.
    let region_words = shmq::RoutingLimits::default().table_bytes / 8;
    let inactive = 768 + ((generation + 1) % 2) * 8 * (1 + region_words);
    let mut f = std::fs::OpenOptions::new().write(true).open(t.path().join("routing")).unwrap();
    f.seek(SeekFrom::Start(inactive)).unwrap();
    f.write_all(&[0xAB; 4096]).unwrap();
    drop(f);
    assert_eq!(t.ns.routing_generation(), generation);
    assert_eq!(t.ns.list_bindings().unwrap().len(), 1, "readers still see the last complete table");
    let mut p = t.ns.publisher();
    assert_eq!(p.publish("amq.direct", "k", &Properties::new(), b"x").unwrap().queues, 1);
    // The next writer overwrites the garbage and proceeds.
    t.ns.bind_queue("q", "amq.direct", "k2", &[]).unwrap();
    assert_eq!(t.ns.list_bindings().unwrap().len(), 2);
}

#[test]
fn auto_delete_queue_of_a_killed_consumer_process_is_removed() {
    let t = TempNs::in_shm("r-autodel-kill");
    t.ns.declare_queue("tmp", &QueueOptions::default().auto_delete(true)).unwrap();
    let mut consumer = t.shmq().args(["consume", "tmp"]).stdout(Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while t.ns.queue_stats("tmp").unwrap().consumers == 0 {
        assert!(std::time::Instant::now() < deadline, "consumer never attached");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    consumer.kill().unwrap();
    consumer.wait().unwrap();
    t.ns.collect_garbage().unwrap();
    assert!(!t.ns.list_queues().unwrap().contains(&"tmp".to_string()));
}

#[test]
fn per_exchange_counters_sum_over_publisher_processes() {
    let t = TempNs::in_shm("r-xstats");
    queues(&t.ns, &["q"]);
    t.ns.bind_queue("q", "amq.direct", "k", &[]).unwrap();
    t.run(&["publish", "--exchange", "amq.direct", "k", "m{i}", "--count", "100"]);
    // Unroutable: counted, and the command says so and fails.
    let out = t.shmq().args(["publish", "--exchange", "amq.direct", "nobody", "u{i}", "--count", "7"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("7 messages were unroutable"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(t.ns.exchange_stats("amq.direct"), (107, 7));
    assert_eq!(t.ns.exchange_stats("amq.topic"), (0, 0));
    let listed: serde_json::Value = serde_json::from_str(&t.run(&["list-exchanges", "--json"])).unwrap();
    let direct = listed.as_array().unwrap().iter().find(|e| e["name"] == "amq.direct").unwrap();
    assert_eq!((direct["published"].as_u64(), direct["unroutable"].as_u64()), (Some(107), Some(7)));
}

/// A routing header claiming a 1 GiB table, with a sparse file of the size
/// it implies and both regions claiming to be full: opening is a typed error
/// and nothing near the claimed size is allocated (before: ~3 GiB).
#[test]
fn a_routing_header_claiming_a_huge_table_is_corrupt_and_never_allocated() {
    use std::os::unix::fs::FileExt;
    let t = TempNs::new("r-huge");
    let path = t.dir.join("routing");
    let claimed: u64 = 1 << 30;
    let words = claimed / 8;
    let total = 768 + 2 * 8 * (1 + words) + 1024 * 32;
    {
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(total).unwrap(); // sparse: costs no memory
        file.write_all_at(&claimed.to_le_bytes(), 24).unwrap();
        file.write_all_at(&words.to_le_bytes(), 768).unwrap();
        file.write_all_at(&words.to_le_bytes(), 768 + 8 * (1 + words)).unwrap();
    }
    let (opened, bytes) = bytes_allocated_during(|| shmq::Namespace::open_dir(&t.dir).map(drop));
    match opened {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("table_bytes"), "{reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(bytes < 1 << 20, "allocated {bytes} bytes for a hostile header");
}

/// Per-exchange counters (and the namespace's unroutable total) are shared
/// memory: whatever value another process left there, adding saturates
/// instead of panicking (debug) or wrapping to garbage (release).
#[test]
fn exchange_counters_near_u64_max_saturate_without_panicking() {
    use std::os::unix::fs::FileExt;
    let t = TempNs::new("r-counters");
    let mut publisher = t.ns.publisher();
    publisher.publish("amq.direct", "nobody", &Properties::new(), b"x").unwrap();
    drop(publisher);
    assert_eq!(t.ns.exchange_stats("amq.direct"), (1, 1));

    // The counter rows follow the two table regions (docs/LAYOUT.md).
    let file = std::fs::OpenOptions::new().read(true).write(true).open(t.dir.join("routing")).unwrap();
    let rows = 768 + 2 * 8 * (1 + shmq::RoutingLimits::default().table_bytes / 8);
    let near = u64::MAX - 1;
    let mut claimed = 0;
    for row in 0..1024u64 {
        let at = rows + row * 32;
        let mut key = [0u8; 8];
        file.read_exact_at(&mut key, at).unwrap();
        if u64::from_le_bytes(key) != 0 {
            file.write_all_at(&near.to_le_bytes(), at + 8).unwrap();
            file.write_all_at(&near.to_le_bytes(), at + 16).unwrap();
            claimed += 1;
        }
    }
    assert_eq!(claimed, 1, "one exchange has counted");
    file.write_all_at(&near.to_le_bytes(), 640).unwrap();
    assert_eq!(t.ns.exchange_stats("amq.direct"), (near, near));
    assert_eq!(t.ns.unroutable_count(), near);

    let mut publisher = t.ns.publisher();
    for _ in 0..3 {
        publisher.publish("amq.direct", "nobody", &Properties::new(), b"x").unwrap();
    }
    drop(publisher);
    assert_eq!(t.ns.exchange_stats("amq.direct"), (u64::MAX, u64::MAX));
    assert_eq!(t.ns.unroutable_count(), u64::MAX);
    let listed = t.run(&["list-exchanges"]);
    let line = listed.lines().find(|l| l.starts_with("amq.direct")).unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(line.matches(&u64::MAX.to_string()).count(), 2, "{line}");
}

/// Topic routing keeps its DFA cache in the publisher, reserved once: even
/// with adversarial bindings and keys that keep filling and emptying the
/// cache, routing allocates nothing after the first use.
#[test]
fn topic_routing_allocates_nothing_while_its_cache_churns() {
    let t = TempNs::new("r-topic-alloc");
    t.ns.declare_exchange("t", &ExchangeOptions::new(ExchangeKind::Topic)).unwrap();
    queues(&t.ns, &["q", "adversarial"]);
    let repeat = |word: &str, n: usize| vec![word; n].join(".");
    for n in 0..6 {
        t.ns.bind_queue("adversarial", "t", &repeat("#", 18 + n), &[]).unwrap();
        t.ns.bind_queue("adversarial", "t", &format!("#.{}.#.z", repeat("x.#", 2 + n)), &[]).unwrap();
        t.ns.bind_queue("adversarial", "t", &format!("#.{}", repeat("*.#", 2 + n)), &[]).unwrap();
    }
    // Each `region<i>` key starts its own DFA thread: 1200 of them overflow
    // the publisher's 1024-state cache again and again.
    for i in 0..1200 {
        t.ns.bind_queue("q", "t", &format!("region{i}.#"), &[]).unwrap();
    }
    let keys: Vec<String> = (0..1200).map(|i| format!("region{i}.{}", repeat("x", 12))).collect();
    let mut publisher = t.ns.publisher();
    let route_all =
        |publisher: &mut shmq::Publisher| keys.iter().map(|k| publisher.route_count("t", k, &Properties::new()).unwrap()).sum::<usize>();
    assert_eq!(route_all(&mut publisher), 2 * keys.len()); // warm-up: the router and the cache
    let (routed, bytes) = bytes_allocated_during(|| route_all(&mut publisher) + route_all(&mut publisher));
    assert_eq!(routed, 4 * keys.len());
    assert_eq!(bytes, 0, "bytes allocated routing {} keys", 2 * keys.len());
}

#[test]
fn cc_and_bcc_headers_route_too_and_bcc_is_never_delivered() {
    let t = TempNs::new("cc-bcc");
    t.ns.declare_exchange("x", &ExchangeOptions::new(ExchangeKind::Direct)).unwrap();
    for key in ["a", "b", "c"] {
        t.ns.declare_queue(key, &QueueOptions::default()).unwrap();
        t.ns.bind_queue(key, "x", key, &[]).unwrap();
    }
    let cc = shmq::HeaderArray::encode(&[HeaderValue::Str("b")]).unwrap();
    let bcc = shmq::HeaderArray::encode(&[HeaderValue::Str("c"), HeaderValue::Str("b")]).unwrap();
    let headers = [
        ("CC", HeaderValue::Array(shmq::HeaderArray::from_encoded(&cc).unwrap())),
        ("BCC", HeaderValue::Array(shmq::HeaderArray::from_encoded(&bcc).unwrap())),
    ];
    let routed = t.ns.publisher().publish("x", "a", &Properties::new().headers(&headers), b"m").unwrap();
    assert_eq!(routed.queues, 3, "a, b and c, each once");
    for key in ["a", "b", "c"] {
        let consumer = t.ns.consumer(key, ConsumerOptions::default()).unwrap();
        let d = consumer.try_recv().unwrap();
        let p = d.properties();
        assert!(p.headers.get("CC").is_some() && p.headers.get("BCC").is_none(), "{key}");
        assert!(consumer.try_recv().is_err(), "{key} got one copy");
    }
}

/// A publisher reuses its last routing decision for a repeated exchange and
/// key: a binding added or removed in between (a new table generation), a
/// dead-lettered copy that filters the targets, and headers that a headers
/// exchange routes by must all still route afresh.
#[test]
fn a_repeated_routing_key_reuses_the_decision_only_while_it_holds() {
    let t = TempNs::in_shm("r-lastroute");
    let ns = &t.ns;
    queues(ns, &["a", "b", "h"]);
    ns.declare_exchange("t", &ExchangeOptions::new(ExchangeKind::Topic)).unwrap();
    ns.bind_queue("a", "t", "k.*", &[]).unwrap();
    let mut publisher = ns.publisher();
    let props = Properties::new();
    assert_eq!(publisher.publish("t", "k.x", &props, b"1").unwrap().queues, 1);
    ns.bind_queue("b", "t", "#", &[]).unwrap();
    assert_eq!(publisher.publish("t", "k.x", &props, b"2").unwrap().queues, 2);
    ns.unbind_queue("a", "t", "k.*", &[]).unwrap();
    assert_eq!(publisher.publish("t", "k.x", &props, b"3").unwrap().queues, 1);
    assert_eq!(publisher.publish("t", "k.y", &props, b"4").unwrap().queues, 1);
    assert_eq!(drain(ns, "a"), ["1", "2"]);
    assert_eq!(drain(ns, "b"), ["2", "3", "4"]);
    // The same exchange and key, with and without the header a headers
    // exchange (bound behind the topic one) routes by.
    ns.declare_exchange("hx", &ExchangeOptions::new(ExchangeKind::Headers)).unwrap();
    ns.bind_exchange("hx", "t", "doc", &[]).unwrap();
    let args = vec![("format".to_string(), ArgValue::Str("pdf".into()))];
    ns.bind_queue("h", "hx", "", &args).unwrap();
    let pdf = [("format", HeaderValue::Str("pdf"))];
    let with_pdf = Properties::new().headers(&pdf);
    for (props, expect) in [(&props, 1), (&with_pdf, 2), (&props, 1), (&with_pdf, 2)] {
        assert_eq!(publisher.publish("t", "doc", props, b"d").unwrap().queues, expect);
    }
    assert_eq!(drain(ns, "h").len(), 2);
}
