//! `Publisher::publish_batch` and `Producer::publish_batch_with`: a batch
//! routed once reaches every matched queue in order with its properties; a
//! full `reject-publish` queue refuses only what does not fit and the other
//! queues still take everything; priorities, TTLs and unroutable batches
//! behave as one publish per message would.

mod common;

use std::time::Duration;

use common::TempNs;
use shmq::{ExchangeKind, ExchangeOptions, Overflow, Properties, QueueOptions, Routed};

fn bodies(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("m{i}").into_bytes()).collect()
}

/// A delivery's body, content type, exchange and routing key.
type Received = (String, Option<String>, Option<String>, Option<String>);

fn drain(t: &TempNs, queue: &str) -> Vec<Received> {
    let consumer = t.ns.consumer(queue, shmq::ConsumerOptions::default()).unwrap();
    let mut out = Vec::new();
    while let Ok(d) = consumer.try_recv() {
        let p = d.properties();
        out.push((
            String::from_utf8_lossy(d.body()).into_owned(),
            p.content_type.map(str::to_owned),
            p.exchange.map(str::to_owned),
            p.routing_key.map(str::to_owned),
        ));
    }
    out
}

#[test]
fn a_routed_batch_reaches_every_bound_queue_in_order_with_its_properties() {
    let t = TempNs::new("batch-fanout");
    t.ns.declare_exchange("logs", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
    for q in ["a", "b"] {
        t.ns.declare_queue(q, &QueueOptions::default()).unwrap();
        t.ns.bind_queue(q, "logs", "", &[]).unwrap();
    }
    let owned = bodies(300); // more than one chunk (64 a claim)
    let refs: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let props = Properties::new().content_type("text/plain");
    let routed = t.ns.publisher().publish_batch("logs", "key", &props, &refs).unwrap();
    assert_eq!(routed, Routed { queues: 600, full: 0 });
    for q in ["a", "b"] {
        let got = drain(&t, q);
        assert_eq!(got.len(), 300, "{q}");
        for (i, (body, content_type, exchange, key)) in got.into_iter().enumerate() {
            assert_eq!(body, format!("m{i}"));
            assert_eq!((content_type.as_deref(), exchange.as_deref(), key.as_deref()), (Some("text/plain"), Some("logs"), Some("key")));
        }
    }
    assert_eq!(t.ns.exchange_stats("logs"), (300, 0));
}

#[test]
fn a_full_reject_queue_refuses_only_the_overflow_and_the_other_queue_takes_all() {
    let t = TempNs::new("batch-reject");
    t.ns.declare_exchange("fan", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
    t.ns.declare_queue("small", &QueueOptions::default().max_length(5).overflow(Overflow::Reject)).unwrap();
    t.ns.declare_queue("big", &QueueOptions::default()).unwrap();
    for q in ["small", "big"] {
        t.ns.bind_queue(q, "fan", "", &[]).unwrap();
    }
    let owned = bodies(20);
    let refs: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let routed = t.ns.publisher().publish_batch("fan", "", &Properties::new(), &refs).unwrap();
    assert_eq!(routed, Routed { queues: 25, full: 15 });
    let small: Vec<String> = drain(&t, "small").into_iter().map(|m| m.0).collect();
    assert_eq!(small, ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(drain(&t, "big").len(), 20);
}

#[test]
fn an_unroutable_batch_is_counted_per_message() {
    let t = TempNs::new("batch-unroutable");
    let before = t.ns.unroutable_count();
    let routed = t.ns.publisher().publish_batch("amq.direct", "nobody", &Properties::new(), &[b"a", b"b", b"c"]).unwrap();
    assert_eq!(routed, Routed::default());
    assert_eq!(t.ns.unroutable_count() - before, 3);
    assert_eq!(t.ns.exchange_stats("amq.direct"), (3, 3));
}

#[test]
fn a_prioritized_batch_lands_in_its_level_and_is_delivered_first() {
    let t = TempNs::new("batch-priority");
    t.ns.declare_queue("p", &QueueOptions::default().max_priority(5)).unwrap();
    let mut publisher = t.ns.publisher();
    publisher.publish_batch("", "p", &Properties::new(), &[b"low1", b"low2"]).unwrap();
    publisher.publish_batch("", "p", &Properties::new().priority(3), &[b"high1", b"high2"]).unwrap();
    drop(publisher);
    let got: Vec<String> = drain(&t, "p").into_iter().map(|m| m.0).collect();
    assert_eq!(got, ["high1", "high2", "low1", "low2"]);
}

#[test]
fn a_batch_with_a_ttl_expires_as_single_publishes_do() {
    let t = TempNs::new("batch-ttl");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    assert_eq!(producer.publish_batch_with(&Properties::new().expiration("1"), &[b"a", b"b"]).unwrap(), 2);
    assert_eq!(producer.publish_batch_with(&Properties::new(), &[b"kept"]).unwrap(), 1);
    drop(producer);
    std::thread::sleep(Duration::from_millis(20));
    let got: Vec<String> = drain(&t, "q").into_iter().map(|m| m.0).collect();
    assert_eq!(got, ["kept"]);
    assert_eq!(t.ns.queue_stats("q").unwrap().expired, 2);
}

#[test]
fn a_message_too_large_stops_the_batch_after_publishing_what_precedes_it() {
    let t = TempNs::new("batch-too-large");
    t.ns.declare_queue("q", &QueueOptions::default().max_message_bytes(64)).unwrap();
    let big = vec![0u8; 100];
    let err = t.ns.publisher().publish_batch("", "q", &Properties::new(), &[&b"a"[..], &big, b"c"]);
    assert!(matches!(err, Err(shmq::PublishError::TooLarge { .. })), "{err:?}");
    let got: Vec<String> = drain(&t, "q").into_iter().map(|m| m.0).collect();
    assert_eq!(got, ["a"]);
}

/// `Producer::publish_batch` takes any iterator of byte-like items, a
/// chunk of up to 64 at a time: 200 `String`s arrive in order; owned
/// `Vec`s and a borrowed slice of them work too; an oversized body in the
/// second chunk stops the batch there, with every body before it published
/// and none after it.
#[test]
fn a_producer_batch_takes_any_iterator_of_bodies_in_chunks() {
    let t = TempNs::new("batchiter");
    t.ns.declare_queue("q", &QueueOptions::default().max_message_bytes(1024)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    assert_eq!(producer.publish_batch((0..200).map(|i| format!("m{i}"))).unwrap(), 200);
    assert_eq!(producer.publish_batch(bodies(3)).unwrap(), 3);
    let owned = bodies(2);
    assert_eq!(producer.publish_batch(owned.iter()).unwrap(), 2);
    assert_eq!(producer.publish_batch(std::iter::empty::<&[u8]>()).unwrap(), 0);
    let got: Vec<String> = drain(&t, "q").into_iter().map(|r| r.0).collect();
    let want: Vec<String> =
        (0..200).map(|i| format!("m{i}")).chain((0..3).map(|i| format!("m{i}"))).chain((0..2).map(|i| format!("m{i}"))).collect();
    assert_eq!(got, want);
    let mut batch = bodies(100);
    batch[70] = vec![0; 4096];
    assert!(matches!(producer.publish_batch(&batch), Err(shmq::PublishError::TooLarge { .. })));
    let got: Vec<String> = drain(&t, "q").into_iter().map(|r| r.0).collect();
    assert_eq!(got, (0..70).map(|i| format!("m{i}")).collect::<Vec<_>>());
}
