//! Dead-lettering, delivery limits and queue expiry in one process: every
//! reason RabbitMQ has, `x-death` contents, cycles, and argument checks.
//! Crashes during dead-lettering are in dead_letter_crash.rs; pika
//! scripts compared with RabbitMQ in python/tests/test_dead_letter_vs_rabbitmq.py.

mod common;

use std::time::Duration;

use common::TempNs;
use shmq::{ArgValue, ConsumerOptions, Error, HeaderValue, Overflow, Properties, PublishError, QueueOptions};

/// A work queue `work` dead-lettering through exchange `dlx` (fanout) to
/// queue `dead`.
fn work_and_dead(t: &TempNs, work: QueueOptions) {
    t.ns.declare_exchange("dlx", &shmq::ExchangeOptions::new(shmq::ExchangeKind::Fanout)).unwrap();
    t.ns.declare_queue("dead", &QueueOptions::default()).unwrap();
    t.ns.bind_queue("dead", "dlx", "", &[]).unwrap();
    t.ns.declare_queue("work", &work.dead_letter_exchange("dlx")).unwrap();
}

/// `(queue, reason, count)` of each `x-death` entry, and the routing key.
fn deaths_of(d: &shmq::Delivery<'_>) -> (Vec<(String, String, i64)>, String) {
    let p = d.properties();
    let Some(HeaderValue::Array(deaths)) = p.headers.get("x-death") else { panic!("no x-death in {:?}", p.headers) };
    let entries = deaths
        .iter()
        .map(|v| {
            let HeaderValue::Table(t) = v else { panic!("x-death holds {v:?}") };
            let s = |k| match t.get(k) {
                Some(HeaderValue::Str(s)) => s.to_owned(),
                other => panic!("{k} = {other:?}"),
            };
            let Some(HeaderValue::Int(n)) = t.get("count") else { panic!("no count") };
            assert!(matches!(t.get("time"), Some(HeaderValue::Timestamp(_))));
            (s("queue"), s("reason"), n)
        })
        .collect();
    (entries, p.routing_key.unwrap_or("").to_owned())
}

fn manual() -> ConsumerOptions {
    ConsumerOptions::default().manual_ack()
}

#[test]
fn a_rejected_message_reaches_the_dead_letter_queue_with_its_body_properties_and_x_death() {
    let t = TempNs::new("dl-reject");
    work_and_dead(&t, QueueOptions::default());
    let headers = [("app", HeaderValue::Str("kept"))];
    let props = Properties::new().message_id("m1").content_type("text/plain").headers(&headers);
    t.ns.publisher().publish("", "work", &props, b"payload").unwrap();
    let work = t.ns.consumer("work", manual()).unwrap();
    work.recv_timeout(Duration::from_secs(1)).unwrap().reject(false).unwrap();
    let dead = t.ns.consumer("dead", manual()).unwrap();
    let d = dead.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(d.body(), b"payload");
    let p = d.properties();
    assert_eq!((p.message_id, p.content_type), (Some("m1"), Some("text/plain")));
    assert_eq!(p.headers.get("app"), Some(HeaderValue::Str("kept")));
    assert_eq!(p.headers.get("x-first-death-reason"), Some(HeaderValue::Str("rejected")));
    assert_eq!(p.headers.get("x-first-death-queue"), Some(HeaderValue::Str("work")));
    assert_eq!(p.headers.get("x-last-death-queue"), Some(HeaderValue::Str("work")));
    assert_eq!(deaths_of(&d), (vec![("work".into(), "rejected".into(), 1)], "work".into()));
    let stats = t.ns.queue_stats("work").unwrap();
    assert_eq!((stats.ready, stats.dead_lettered), (0, 1));
}

#[test]
fn nack_without_requeue_dead_letters_and_the_routing_key_is_replaced_when_set() {
    let t = TempNs::new("dl-rk");
    t.ns.declare_queue("parking", &QueueOptions::default()).unwrap();
    t.ns.declare_queue("work", &QueueOptions::default().dead_letter_exchange("").dead_letter_routing_key("parking")).unwrap();
    t.ns.publisher().publish("", "work", &Properties::new(), b"x").unwrap();
    let work = t.ns.consumer("work", manual()).unwrap();
    let tag = work.recv_timeout(Duration::from_secs(1)).unwrap().tag();
    work.nack(tag, false).unwrap();
    let d = t.ns.consumer("parking", manual()).unwrap().try_recv().map(|d| deaths_of(&d)).unwrap();
    assert_eq!(d, (vec![("work".into(), "rejected".into(), 1)], "parking".into()));
}

#[test]
fn expired_messages_are_dead_lettered_on_delivery_and_without_any_consumer() {
    let t = TempNs::new("dl-ttl");
    work_and_dead(&t, QueueOptions::default().message_ttl(Duration::from_millis(20)));
    let mut publisher = t.ns.publisher();
    publisher.publish("", "work", &Properties::new(), b"queue ttl").unwrap();
    publisher.publish("", "work", &Properties::new().expiration("10"), b"own ttl").unwrap();
    std::thread::sleep(Duration::from_millis(40));
    // Nobody consumes `work`: the housekeeping finds them at its head.
    assert_eq!(t.ns.housekeep().unwrap().dead_lettered, 2);
    let dead = t.ns.consumer("dead", manual()).unwrap();
    let first = dead.try_recv().unwrap();
    assert_eq!(first.body(), b"queue ttl");
    assert_eq!(deaths_of(&first).0, [("work".into(), "expired".into(), 1)]);
    let second = dead.try_recv().unwrap();
    // The expiration moved into x-death, so the copy does not expire again.
    assert_eq!(second.properties().expiration, None);
    let Some(HeaderValue::Array(deaths)) = second.properties().headers.get("x-death") else { panic!() };
    let Some(HeaderValue::Table(death)) = deaths.iter().next() else { panic!() };
    assert_eq!(death.get("original-expiration"), Some(HeaderValue::Str("10")));
    // And on delivery: a consumer never sees an expired message.
    publisher.publish("", "work", &Properties::new(), b"late").unwrap();
    std::thread::sleep(Duration::from_millis(40));
    let work = t.ns.consumer("work", manual()).unwrap();
    assert!(work.try_recv().is_err());
    assert_eq!(dead.recv_timeout(Duration::from_secs(1)).unwrap().body(), b"late");
    assert_eq!(t.ns.queue_stats("work").unwrap().expired, 3);
}

#[test]
fn drop_head_dead_letters_with_reason_maxlen_and_reject_publish_dlx_dead_letters_the_refused() {
    let t = TempNs::new("dl-maxlen");
    work_and_dead(&t, QueueOptions::default().max_length(1));
    let mut publisher = t.ns.publisher();
    for body in [b"one", b"two"] {
        publisher.publish("", "work", &Properties::new(), body).unwrap();
    }
    let dead = t.ns.consumer("dead", manual()).unwrap();
    let d = dead.try_recv().unwrap();
    assert_eq!((d.body(), deaths_of(&d).0), (&b"one"[..], vec![("work".into(), "maxlen".into(), 1)]));
    d.ack().unwrap();

    t.ns.declare_queue("strict", &QueueOptions::default().max_length(1).overflow(Overflow::RejectPublishDlx).dead_letter_exchange("dlx"))
        .unwrap();
    let mut producer = t.ns.producer("strict").unwrap();
    producer.publish(b"kept").unwrap();
    assert_eq!(producer.publish(b"refused"), Err(PublishError::QueueFull));
    let d = dead.try_recv().unwrap();
    assert_eq!((d.body(), deaths_of(&d).0), (&b"refused"[..], vec![("strict".into(), "maxlen".into(), 1)]));
    assert_eq!(t.ns.consumer("strict", manual()).unwrap().try_recv().unwrap().body(), b"kept");
}

#[test]
fn a_poison_message_is_dead_lettered_after_its_delivery_limit() {
    let t = TempNs::new("dl-limit");
    work_and_dead(&t, QueueOptions::default().delivery_limit(2));
    t.ns.producer("work").unwrap().publish(b"poison").unwrap();
    let work = t.ns.consumer("work", manual()).unwrap();
    let mut counts = Vec::new();
    while let Ok(d) = work.recv_timeout(Duration::from_millis(100)) {
        counts.push(d.delivery_count());
        d.nack(true).unwrap();
    }
    // Delivered limit + 1 times, as RabbitMQ's quorum queues do.
    assert_eq!(counts, [0, 1, 2]);
    let dead = t.ns.consumer("dead", manual()).unwrap();
    let d = dead.try_recv().unwrap();
    assert_eq!(deaths_of(&d).0, [("work".into(), "delivery_limit".into(), 1)]);
}

#[test]
fn requeues_by_closing_consumers_count_toward_the_delivery_limit() {
    let t = TempNs::new("dl-limit-close");
    t.ns.declare_queue("work", &QueueOptions::default().delivery_limit(1)).unwrap();
    t.ns.producer("work").unwrap().publish(b"x").unwrap();
    for expected in [0, 1] {
        let c = t.ns.consumer("work", manual()).unwrap();
        let d = c.try_recv().unwrap();
        assert_eq!(d.delivery_count(), expected);
        drop(d);
        // Closing with it unacked requeues it and counts.
    }
    let c = t.ns.consumer("work", manual()).unwrap();
    assert!(c.try_recv().is_err(), "over the limit without a dead-letter exchange: discarded");
    assert_eq!(t.ns.queue_stats("work").unwrap().ready, 0);
}

#[test]
fn a_cycle_without_rejections_drops_the_message_and_one_with_a_rejection_goes_round() {
    let t = TempNs::new("dl-cycle");
    // Expiring into itself through the default exchange: dropped.
    t.ns.declare_queue("loop", &QueueOptions::default().message_ttl(Duration::from_millis(5)).dead_letter_exchange("")).unwrap();
    t.ns.producer("loop").unwrap().publish(b"x").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    t.ns.housekeep().unwrap();
    assert_eq!(t.ns.queue_stats("loop").unwrap().ready, 0);
    // Retry with delay: work --rejected--> delay --expired--> work.
    t.ns.declare_queue("work", &QueueOptions::default().dead_letter_exchange("").dead_letter_routing_key("delay")).unwrap();
    t.ns.declare_queue(
        "delay",
        &QueueOptions::default().message_ttl(Duration::from_millis(5)).dead_letter_exchange("").dead_letter_routing_key("work"),
    )
    .unwrap();
    t.ns.producer("work").unwrap().publish(b"job").unwrap();
    let work = t.ns.consumer("work", manual()).unwrap();
    for round in 1..=3 {
        let d = work.recv_timeout(Duration::from_secs(2)).unwrap();
        if round > 1 {
            let (deaths, _) = deaths_of(&d);
            assert_eq!(deaths, [("delay".into(), "expired".into(), round - 1), ("work".into(), "rejected".into(), round - 1)]);
        }
        d.reject(false).unwrap();
    }
}

#[test]
fn a_queue_unused_past_its_expiry_is_deleted_with_its_bindings() {
    let t = TempNs::new("dl-expires");
    t.ns.declare_queue("brief", &QueueOptions::default().expires(Duration::from_millis(50))).unwrap();
    t.ns.bind_queue("brief", "amq.direct", "k", &[]).unwrap();
    let consumer = t.ns.consumer("brief", ConsumerOptions::default()).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(t.ns.housekeep().unwrap().queues_expired, 0, "a consumer keeps it");
    drop(consumer);
    // Closing the consumer is a use; a redeclare renews it too.
    std::thread::sleep(Duration::from_millis(30));
    t.ns.declare_queue("brief", &QueueOptions::default().expires(Duration::from_millis(50))).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(t.ns.housekeep().unwrap().queues_expired, 0);
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(t.ns.housekeep().unwrap().queues_expired, 1);
    assert!(t.ns.list_queues().unwrap().is_empty());
    assert!(t.ns.list_bindings().unwrap().iter().all(|b| b.destination.name() != "brief"));
}

#[test]
fn queue_arguments_are_checked_as_rabbitmq_checks_them() {
    let arg = |k: &str, v: ArgValue| vec![(k.to_owned(), v)];
    let try_args = |args: Vec<(String, ArgValue)>| QueueOptions::default().with_arguments("q", &args);
    let reason = |args| match try_args(args) {
        Err(Error::InvalidArgument { reason, .. }) => reason,
        other => panic!("accepted: {other:?}"),
    };
    assert_eq!(reason(arg("x-expires", ArgValue::Int(0))), "{value_zero,0}");
    assert_eq!(reason(arg("x-delivery-limit", ArgValue::Int(-1))), "{value_negative,-1}");
    assert_eq!(reason(arg("x-expires", ArgValue::Str("1".into()))), "\"expected integer, got longstr\"");
    assert_eq!(reason(arg("x-queue-type", ArgValue::Str("bogus".into()))), "\"unsupported queue type 'bogus'\"");
    assert!(reason(arg("x-max-length", ArgValue::Int(1 << 40))).contains("4294967295"));
    let typed = QueueOptions::default().with_arguments("q", &arg("x-dead-letter-exchange", ArgValue::Int(1)));
    assert_eq!(typed.unwrap_err().to_string(), "invalid type 'long' for arg 'x-dead-letter-exchange' in queue 'q'");
    assert_eq!(reason(arg("x-dead-letter-routing-key", ArgValue::Str("k".into()))), "routing_key_but_no_dlx_defined");
    assert_eq!(reason(arg("x-overflow", ArgValue::Str("sometimes".into()))), "invalid_overflow");
    assert!(reason(arg("x-queue-mode", ArgValue::Str("lazy".into()))).contains("not supported by shmq"));
    let o = try_args(vec![
        ("x-dead-letter-exchange".into(), ArgValue::Str("dlx".into())),
        ("x-dead-letter-routing-key".into(), ArgValue::Str("k".into())),
        ("x-overflow".into(), ArgValue::Str("reject-publish-dlx".into())),
        ("x-delivery-limit".into(), ArgValue::Int(5)),
        ("x-expires".into(), ArgValue::Int(60_000)),
    ])
    .unwrap();
    assert_eq!(o.overflow, Some(Overflow::RejectPublishDlx));
    assert_eq!(QueueOptions::default().with_arguments("q", &o.arguments()).unwrap(), o);
}

#[test]
fn redeclaring_with_other_dead_letter_settings_is_a_precondition_failure() {
    let t = TempNs::new("dl-redeclare");
    t.ns.declare_queue("q", &QueueOptions::default().dead_letter_exchange("a")).unwrap();
    for other in [
        QueueOptions::default(),
        QueueOptions::default().dead_letter_exchange("b"),
        QueueOptions::default().dead_letter_exchange("a").delivery_limit(1),
        QueueOptions::default().dead_letter_exchange("a").queue_type(shmq::QueueType::Quorum),
    ] {
        assert!(matches!(t.ns.declare_queue("q", &other), Err(Error::PreconditionFailed { .. })), "{other:?}");
    }
}

#[test]
fn a_full_dead_letter_queue_keeps_the_message_in_its_queue() {
    let t = TempNs::new("dl-full");
    t.ns.declare_queue("dead", &QueueOptions::default().max_length(1).overflow(Overflow::Reject)).unwrap();
    t.ns.declare_queue("work", &QueueOptions::default().dead_letter_exchange("").dead_letter_routing_key("dead")).unwrap();
    let mut producer = t.ns.producer("work").unwrap();
    producer.publish(b"first").unwrap();
    producer.publish(b"second").unwrap();
    let work = t.ns.consumer("work", manual()).unwrap();
    work.try_recv().unwrap().reject(false).unwrap();
    // `dead` is full now: the second rejection cannot publish its copy, so
    // the message is shelved, not lost: never delivered again, and
    // dead-lettered by the housekeeping once `dead` has room.
    work.try_recv().unwrap().reject(false).unwrap();
    assert!(work.try_recv().is_err(), "a rejected message is not redelivered");
    assert_eq!(t.ns.queue_stats("work").unwrap().ready, 0);
    assert_eq!(t.ns.housekeep().unwrap().dead_lettered, 0, "still no room");
    let dead = t.ns.consumer("dead", manual()).unwrap();
    let first = dead.try_recv().unwrap();
    assert_eq!(first.body(), b"first");
    first.ack().unwrap();
    assert_eq!(t.ns.housekeep().unwrap().dead_lettered, 1);
    let d = dead.try_recv().unwrap();
    assert_eq!((d.body(), d.redelivered(), d.delivery_count()), (&b"second"[..], false, 0));
}
