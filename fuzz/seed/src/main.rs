//! Writes small valid inputs for every fuzz target into `<out>/<target>/`
//! (default `fuzz/corpus`), made through shmq's own API so that they follow
//! the current layout: `cargo run --manifest-path fuzz/seed/Cargo.toml`.
//! Rerun it after a layout change, then `cargo fuzz cmin` each target.

use std::path::{Path, PathBuf};

use shmq::fuzzing::{encode_properties, routing_table_reencode};
use shmq::{
    ArgValue, ConsumerOptions, ExchangeKind, ExchangeOptions, HeaderArray, HeaderValue, Headers, Namespace, NamespaceOptions, Overflow,
    Properties, QueueOptions, QueueType, RoutingLimits,
};

/// As fuzz_targets/segment_open.rs.
const PADDED: u8 = 4;
const MODE_QUEUE: u8 = 0;
const MODE_ROUTING: u8 = 1;
const MODE_MARKER: u8 = 2;

fn limits() -> RoutingLimits {
    RoutingLimits { max_exchanges: 64, max_queues: 64, max_bindings: 256, table_bytes: 4096 }
}

fn small() -> QueueOptions {
    QueueOptions::default().capacity_bytes(4096).max_message_bytes(512)
}

fn write(out: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
    println!("{target}/{name}: {} bytes", bytes.len());
}

/// A segment-open input: `mode | PADDED`, the file's length, then the file
/// without its trailing zeros.
fn segment_input(mode: u8, file: &[u8]) -> Vec<u8> {
    let keep = file.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let mut input = vec![mode | PADDED];
    input.extend_from_slice(&u32::try_from(file.len()).unwrap().to_le_bytes());
    input.extend_from_slice(&file[..keep]);
    input
}

/// The live region's words of a routing segment (docs/LAYOUT.md, "Routing
/// segment"): generation at 512, regions from 768, each a length word then
/// `table_bytes / 8` words; region `generation % 2` is live.
fn live_table_words(routing: &[u8]) -> Vec<u64> {
    let word = |at: usize| u64::from_le_bytes(routing[at..at + 8].try_into().unwrap());
    let table_bytes = word(24) as usize;
    let region_words = table_bytes.div_ceil(8);
    let generation = word(512);
    let start = 768 + (generation % 2) as usize * 8 * (1 + region_words);
    let len = word(start) as usize;
    let words: Vec<u64> = (0..len).map(|i| word(start + 8 + 8 * i)).collect();
    assert!(routing_table_reencode(&words).is_some(), "the routing segment's layout changed: update live_table_words in fuzz/seed");
    words
}

fn words_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into()));
    let root = std::env::temp_dir().join(format!("shmq-fuzz-seed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let ns = Namespace::open_dir_with(&root, NamespaceOptions::default().routing_limits(limits())).unwrap();
    let queue_file = |name: &str| std::fs::read(root.join("queues").join(name)).unwrap();

    // ---- segment_open: queues in several states
    ns.declare_queue("q", &small()).unwrap();
    write(&out, "segment_open", "queue-empty", &segment_input(MODE_QUEUE, &queue_file("q")));

    let headers = [("n", HeaderValue::Int(-3)), ("s", HeaderValue::Str("text")), ("b", HeaderValue::Bool(true))];
    let props = Properties::new().message_id("m1").content_type("text/plain").timestamp(1_700_000_000).headers(&headers);
    let mut producer = ns.producer("q").unwrap();
    producer.publish(b"first").unwrap();
    producer.publish_with(&props, b"second, with properties").unwrap();
    producer.publish_batch(&[b"a", b"bb", b"ccc"]).unwrap();
    write(&out, "segment_open", "queue-ready", &segment_input(MODE_QUEUE, &queue_file("q")));

    // One delivered and unacked, to a consumer that is dead when replayed.
    let consumer = ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(2)).unwrap();
    let delivery = consumer.try_recv().unwrap();
    write(&out, "segment_open", "queue-unacked", &segment_input(MODE_QUEUE, &queue_file("q")));
    delivery.ack().unwrap();
    drop(consumer);

    // Positions past a wrap of the data and slot rings.
    let consumer = ns.consumer("q", ConsumerOptions::default()).unwrap();
    for i in 0..40u32 {
        producer.publish(format!("wrap {i}").as_bytes()).unwrap();
        while consumer.try_recv().is_ok() {}
    }
    producer.publish(b"after the wrap").unwrap();
    write(&out, "segment_open", "queue-wrapped", &segment_input(MODE_QUEUE, &queue_file("q")));
    drop((consumer, producer));

    ns.declare_queue("drop", &small().overflow(Overflow::DropOldest).message_ttl(std::time::Duration::from_secs(60))).unwrap();
    ns.producer("drop").unwrap().publish(b"x").unwrap();
    write(&out, "segment_open", "queue-drop-oldest-ttl", &segment_input(MODE_QUEUE, &queue_file("drop")));

    // Dead-lettering: a queue with every lifecycle setting, a message
    // requeued twice (its delivery count in the expiry word), and the
    // dead-letter queue holding a copy with an x-death record.
    ns.declare_queue("dead", &small()).unwrap();
    let lifecycle = small()
        .dead_letter_exchange("")
        .dead_letter_routing_key("dead")
        .delivery_limit(5)
        .expires(std::time::Duration::from_secs(3600))
        .queue_type(QueueType::Quorum)
        .overflow(Overflow::RejectPublishDlx);
    ns.declare_queue("life", &lifecycle).unwrap();
    let mut producer = ns.producer("life").unwrap();
    producer.publish(b"requeued twice").unwrap();
    producer.publish(b"rejected").unwrap();
    let consumer = ns.consumer("life", ConsumerOptions::default().manual_ack().prefetch(1)).unwrap();
    for _ in 0..2 {
        consumer.try_recv().unwrap().nack(true).unwrap();
    }
    let first = consumer.try_recv().unwrap().tag();
    consumer.ack(first).unwrap();
    consumer.try_recv().unwrap().reject(false).unwrap();
    producer.publish(b"requeued twice, again").unwrap();
    for _ in 0..2 {
        consumer.try_recv().unwrap().nack(true).unwrap();
    }
    drop((consumer, producer));
    write(&out, "segment_open", "queue-lifecycle", &segment_input(MODE_QUEUE, &queue_file("life")));
    write(&out, "segment_open", "queue-dead-lettered", &segment_input(MODE_QUEUE, &queue_file("dead")));

    // ---- routing: builtins only, then a table using every field
    let builtins = std::fs::read(root.join("routing")).unwrap();
    let builtin_words = live_table_words(&builtins);
    ns.declare_exchange("events", &ExchangeOptions::new(ExchangeKind::Topic).alternate_exchange("amq.fanout")).unwrap();
    ns.declare_exchange("by-header", &ExchangeOptions::new(ExchangeKind::Headers).auto_delete(true)).unwrap();
    ns.declare_exchange("inner", &ExchangeOptions::new(ExchangeKind::Direct).internal(true)).unwrap();
    ns.declare_queue("auto", &small().auto_delete(true)).unwrap();
    ns.bind_queue("q", "events", "a.*.#", &[]).unwrap();
    ns.bind_queue("auto", "amq.direct", "k", &[]).unwrap();
    let args = [
        ("x-match".to_owned(), ArgValue::Str("all".into())),
        ("n".to_owned(), ArgValue::Int(-3)),
        ("b".to_owned(), ArgValue::Bool(true)),
        ("v".to_owned(), ArgValue::Void),
    ];
    ns.bind_queue("q", "by-header", "", &args).unwrap();
    ns.bind_exchange("inner", "events", "#", &[]).unwrap();
    let routing = std::fs::read(root.join("routing")).unwrap();
    let words = live_table_words(&routing);
    write(&out, "segment_open", "routing-builtins", &segment_input(MODE_ROUTING, &builtins));
    write(&out, "segment_open", "routing-full", &segment_input(MODE_ROUTING, &routing));
    write(&out, "segment_open", "marker", &segment_input(MODE_MARKER, &std::fs::read(root.join("shmq.ns")).unwrap()));

    write(&out, "routing_table", "builtins", &words_bytes(&builtin_words));
    write(&out, "routing_table", "full", &words_bytes(&words));

    // ---- properties
    let every = Properties::new()
        .routing_key("rk")
        .exchange("ex")
        .content_type("application/json")
        .content_encoding("gzip")
        .correlation_id("cid")
        .reply_to("amq.gen-reply")
        .message_id("mid")
        .expiration("60000")
        .timestamp(1_700_000_000)
        .priority(7)
        .delivery_mode(2)
        .kind("type")
        .user_id("user")
        .app_id("app");
    let all_headers = [
        ("s", HeaderValue::Str("text")),
        ("y", HeaderValue::Bytes(&[0, 1, 255])),
        ("i", HeaderValue::Int(-5)),
        ("f", HeaderValue::Float(2.5)),
        ("t", HeaderValue::Bool(true)),
        ("v", HeaderValue::Void),
    ];
    write(&out, "properties", "every-field", &encode_properties(&every).unwrap());
    write(&out, "properties", "headers", &encode_properties(&Properties::new().headers(&all_headers)).unwrap());
    write(&out, "properties", "message-id", &encode_properties(&Properties::new().message_id("m1")).unwrap());
    // Nested values as in x-death: an array of tables holding an array.
    let keys = HeaderArray::encode(&[HeaderValue::Str("rk"), HeaderValue::Str("cc")]).unwrap();
    let death = Headers::encode(&[
        ("count", HeaderValue::Int(2)),
        ("reason", HeaderValue::Str("rejected")),
        ("time", HeaderValue::Timestamp(1_700_000_000)),
        ("routing-keys", HeaderValue::Array(HeaderArray::from_encoded(&keys).unwrap())),
    ])
    .unwrap();
    let deaths = HeaderArray::encode(&[HeaderValue::Table(Headers::from_encoded(&death).unwrap())]).unwrap();
    let nested = [("x-death", HeaderValue::Array(HeaderArray::from_encoded(&deaths).unwrap()))];
    write(&out, "properties", "nested", &encode_properties(&Properties::new().headers(&nested)).unwrap());

    // ---- topic_match: `binding_key \n routing_key`
    for (i, (pattern, key)) in [
        ("*.orange.*", "quick.orange.rabbit"),
        ("lazy.#", "lazy"),
        ("a.#.b", "a.b"),
        ("#", ""),
        ("a.*.c", "a..c"),
        ("a#b", "a.x.b"),
        ("#.x.#.y", "x.q.y"),
    ]
    .iter()
    .enumerate()
    {
        write(&out, "topic_match", &format!("pair-{i}"), format!("{pattern}\n{key}").as_bytes());
    }

    // ---- topic_route: `binding keys \0 routing keys`, each split on `\n`
    for (name, bindings, keys) in [
        ("tutorial", "*.orange.*\nlazy.#\n#.rabbit\n#\n", "quick.orange.rabbit\nlazy\nlazy.brown.fox\n"),
        ("wildcards", "a.#.b\na.*.c\n#.x.#.y\n", "a.b\na..c\nx.q.y\n\n"),
        ("hashes", "#.#.#.a.#.#\n*.#.*\n#.*.#\n", "a\nq.a.b\nb.c.a\na.a.a.a.a.a\n"),
    ] {
        write(&out, "topic_route", name, format!("{bindings}\0{keys}").as_bytes());
    }

    drop(ns);
    std::fs::remove_dir_all(&root).unwrap();
}
