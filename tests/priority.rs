//! Priority queues (`x-max-priority`): higher priority first, FIFO within
//! a priority, priorities above the max counting as the max, no priority as
//! 0; requeue keeps a message's priority and place; prefetch, TTL,
//! dead-lettering, a level's elastic growth, stats, purge, delete and a
//! consumer killed with kill -9 holding messages of several levels. The
//! pika side, compared with RabbitMQ: python/tests/test_priority_vs_rabbitmq.py.

mod common;

use std::time::Duration;

use common::{kill, TempNs};
use shmq::{ConsumerOptions, Properties, QueueOptions};

fn publish(t: &TempNs, queue: &str, messages: &[(Option<u8>, String)]) {
    let mut producer = t.ns.producer(queue).unwrap();
    for (priority, body) in messages {
        let mut props = Properties::new();
        props.priority = *priority;
        producer.publish_with(&props, body.as_bytes()).unwrap();
    }
}

fn drain_bodies(consumer: &shmq::Consumer) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(d) = consumer.try_recv() {
        out.push(String::from_utf8_lossy(d.body()).into_owned());
    }
    out
}

#[test]
fn higher_priority_first_fifo_within_a_priority_above_max_as_max() {
    let t = TempNs::new("prio-order");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(10)).unwrap();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut messages = Vec::new();
    for i in 0..2000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // 0..=12 and none: 11 and 12 count as 10.
        let priority = match rng % 14 {
            13 => None,
            p => Some(p as u8),
        };
        messages.push((priority, format!("{i}")));
    }
    publish(&t, "q", &messages);
    assert_eq!(t.ns.queue_stats("q").unwrap().ready, 2000);
    let mut expected: Vec<(u8, usize)> = messages.iter().enumerate().map(|(i, (p, _))| (p.unwrap_or(0).min(10), i)).collect();
    // Highest level first; publish order within a level.
    expected.sort_by_key(|&(level, i)| (std::cmp::Reverse(level), i));
    let expected: Vec<String> = expected.iter().map(|&(_, i)| format!("{i}")).collect();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    assert_eq!(drain_bodies(&consumer), expected);
    // The batch path keeps the order too.
    publish(&t, "q", &messages);
    let mut drained = Vec::new();
    while consumer.drain(64, |d| drained.push(String::from_utf8_lossy(d.body()).into_owned())).unwrap() > 0 {}
    assert_eq!(drained, expected);
    assert_eq!(t.ns.queue_stats("q").unwrap().ready, 0);
}

#[test]
fn a_requeued_message_keeps_its_priority_and_place_and_prefetch_spans_levels() {
    let t = TempNs::new("prio-requeue");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(5)).unwrap();
    let messages: Vec<(Option<u8>, String)> =
        [(Some(5), "hi-1"), (Some(5), "hi-2"), (None, "lo-1"), (Some(2), "mid-1")].iter().map(|(p, b)| (*p, (*b).to_owned())).collect();
    publish(&t, "q", &messages);
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(2)).unwrap();
    let first = consumer.try_recv().unwrap();
    let second = consumer.try_recv().unwrap();
    assert_eq!((first.body(), second.body()), (&b"hi-1"[..], &b"hi-2"[..]));
    assert_eq!(consumer.try_recv().err(), Some(shmq::RecvError::PrefetchFull(2)), "prefetch counts every level");
    assert_eq!(consumer.unacked(), 2);
    let (first_tag, second_tag) = (first.tag(), second.tag());
    std::mem::forget(first);
    std::mem::forget(second);
    consumer.nack(first_tag, true).unwrap();
    let again = consumer.try_recv().unwrap();
    assert_eq!((again.body(), again.redelivered()), (&b"hi-1"[..], true), "back at its place, ahead of lower priorities");
    again.ack().unwrap();
    assert_eq!(consumer.ack_multiple(second_tag).unwrap(), 1);
    assert_eq!(drain_bodies(&consumer), ["mid-1", "lo-1"]);
    assert_eq!(consumer.unacked(), 2);
    assert_eq!(consumer.ack_multiple(shmq::DeliveryTag(0)).unwrap(), 2, "multiple spans levels");
    let stats = t.ns.queue_stats("q").unwrap();
    assert_eq!((stats.ready, stats.unacked, stats.published, stats.acked, stats.consumers), (0, 0, 4, 4, 1));
}

#[test]
fn ttl_and_dead_lettering_work_in_every_level() {
    let t = TempNs::new("prio-dlx");
    t.ns.declare_queue("dead", &QueueOptions::default()).unwrap();
    let options = QueueOptions::default()
        .max_priority(3)
        .message_ttl(Duration::from_millis(50))
        .dead_letter_exchange("")
        .dead_letter_routing_key("dead");
    t.ns.declare_queue("q", &options).unwrap();
    publish(&t, "q", &[(Some(3), "expires-hi".into()), (None, "expires-lo".into())]);
    std::thread::sleep(Duration::from_millis(80));
    publish(&t, "q", &[(Some(2), "rejected".into())]);
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let d = consumer.try_recv().unwrap();
    assert_eq!(d.body(), b"rejected", "the expired ones are not delivered");
    d.reject(false).unwrap();
    // Level 0's head expired too: the next poll dead-letters it.
    assert_eq!(consumer.try_recv().err(), Some(shmq::RecvError::Empty));
    let dead = t.ns.consumer("dead", ConsumerOptions::default()).unwrap();
    let mut got = Vec::new();
    while let Ok(d) = dead.try_recv() {
        got.push((
            String::from_utf8_lossy(d.body()).into_owned(),
            d.properties().headers.get("x-first-death-reason").map(|v| format!("{v:?}")),
        ));
    }
    got.sort();
    let reasons: Vec<(&str, &str)> = got.iter().map(|(b, r)| (b.as_str(), r.as_deref().unwrap_or(""))).collect();
    assert_eq!(reasons, [("expires-hi", "Str(\"expired\")"), ("expires-lo", "Str(\"expired\")"), ("rejected", "Str(\"rejected\")")]);
}

#[test]
fn a_level_grows_as_any_queue_and_purge_and_delete_cover_every_level() {
    let t = TempNs::new("prio-grow");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(9).capacity_bytes(64 << 10)).unwrap();
    let messages: Vec<(Option<u8>, String)> = (0..20_000).map(|i| (Some(if i % 2 == 0 { 7 } else { 1 }), format!("{i:08}"))).collect();
    publish(&t, "q", &messages);
    let stats = t.ns.queue_stats("q").unwrap();
    assert_eq!(stats.ready, 20_000);
    assert!(stats.rings > 3, "the busy levels grew: {} rings", stats.rings);
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let first: Vec<String> = (0..10_000).map(|_| String::from_utf8_lossy(consumer.try_recv().unwrap().body()).into_owned()).collect();
    let sevens: Vec<String> = (0..20_000).step_by(2).map(|i| format!("{i:08}")).collect();
    assert_eq!(first, sevens);
    drop(consumer);
    assert_eq!(t.ns.purge_queue("q").unwrap(), 10_000);
    publish(&t, "q", &[(Some(9), "x".into())]);
    let extents = t.path().join("extents");
    assert!(std::fs::read_dir(&extents).unwrap().count() > 0);
    t.ns.delete_queue("q").unwrap();
    let left: Vec<_> = std::fs::read_dir(&extents).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "the levels' files outlived their queue: {left:?}");
}

#[test]
fn peek_shows_the_delivery_order() {
    let t = TempNs::new("prio-peek");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(4)).unwrap();
    publish(&t, "q", &[(None, "a".into()), (Some(4), "b".into()), (Some(2), "c".into())]);
    let seen: Vec<Vec<u8>> = t.ns.peek("q", 10).unwrap().into_iter().map(|m| m.body).collect();
    assert_eq!(seen, [b"b".to_vec(), b"c".to_vec(), b"a".to_vec()]);
}

#[test]
fn max_priority_with_a_length_limit_is_refused_not_ignored() {
    let args = [("x-max-priority".to_owned(), shmq::ArgValue::Int(5)), ("x-max-length".to_owned(), shmq::ArgValue::Int(10))];
    let err = QueueOptions::default().with_arguments("q", &args).unwrap_err();
    assert!(err.to_string().contains("x-max-length"), "{err}");
    let too_high = [("x-max-priority".to_owned(), shmq::ArgValue::Int(256))];
    assert!(QueueOptions::default().with_arguments("q", &too_high).unwrap_err().to_string().contains("max_value_exceeded"));
    let t = TempNs::new("prio-declare");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(5)).unwrap();
    let err = t.ns.declare_queue("q", &QueueOptions::default().max_priority(6)).unwrap_err();
    assert!(err.to_string().contains("max_priority"), "{err}");
}

/// A consumer process killed with kill -9 while holding messages of three
/// levels: after the sweep, every one is back, flagged redelivered, in
/// priority order.
#[test]
fn a_killed_consumer_s_messages_come_back_in_every_level() {
    let t = TempNs::in_shm("prio-kill");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(5)).unwrap();
    publish(&t, "q", &[(Some(5), "p5".into()), (Some(3), "p3".into()), (None, "p0".into())]);
    // Takes a batch (all three) and holds it for a minute.
    let mut holder = t.stress_agent("consumer", "q", &t.path().join("holder.log"), "c", &["--batch", "--hold-us", "60000000"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while t.ns.queue_stats("q").unwrap().unacked < 3 {
        assert!(std::time::Instant::now() < deadline, "the consumer never took all three");
        std::thread::sleep(Duration::from_millis(10));
    }
    kill(&mut holder);
    t.run(&["gc"]);
    let stats = t.ns.queue_stats("q").unwrap();
    assert_eq!((stats.ready, stats.unacked), (3, 0));
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let got: Vec<(String, bool)> =
        std::iter::from_fn(|| consumer.try_recv().ok().map(|d| (String::from_utf8_lossy(d.body()).into_owned(), d.redelivered())))
            .collect();
    assert_eq!(got, [("p5".to_owned(), true), ("p3".to_owned(), true), ("p0".to_owned(), true)]);
}
