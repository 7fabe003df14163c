//! In-process behaviour of queues: declare rules, acks, prefetch, overflow,
//! sizes, properties, bad input. Cross-process behaviour is in processes.rs.

mod common;

use std::time::Duration;

use common::TempNs;
use shmq::{ConsumerOptions, Error, Overflow, Properties, PublishError, QueueOptions, RecvError};

fn small() -> QueueOptions {
    QueueOptions::default().capacity_bytes(64 * 1024).max_message_bytes(16 * 1024)
}

#[test]
fn hello_world_round_trips_with_properties() {
    let t = TempNs::new("hello");
    t.ns.declare_queue("hello", &QueueOptions::default()).unwrap();
    let mut producer = t.ns.producer("hello").unwrap();
    let headers = [("k", shmq::HeaderValue::Str("v"))];
    let props = Properties::new().content_type("text/plain").correlation_id("c1").reply_to("r").headers(&headers);
    producer.publish_with(&props, b"Hello World").unwrap();
    let consumer = t.ns.consumer("hello", ConsumerOptions::default()).unwrap();
    let d = consumer.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(d.body(), b"Hello World");
    let p = d.properties();
    assert_eq!((p.content_type, p.correlation_id, p.reply_to), (Some("text/plain"), Some("c1"), Some("r")));
    assert_eq!(p.headers.get("k"), Some(shmq::HeaderValue::Str("v")));
    assert!(!d.redelivered());
}

#[test]
fn declare_is_idempotent_and_conflicts_are_precondition_errors() {
    let t = TempNs::new("declare");
    let options = small();
    t.ns.declare_queue("q", &options).unwrap();
    t.ns.declare_queue("q", &options).unwrap();
    // Equal after normalisation (1000 rounds to 1024 like 1024 does).
    let err = t.ns.declare_queue("q", &options.clone().overflow(Overflow::Reject)).unwrap_err();
    match err {
        Error::PreconditionFailed { field, existing, requested, .. } => {
            assert_eq!((field, existing.as_str(), requested.as_str()), ("overflow", "none (drop-head)", "reject-publish"));
        }
        other => panic!("expected PreconditionFailed, got {other}"),
    }
    assert!(t.ns.declare_queue_passive("q").is_ok());
    let missing = t.ns.declare_queue_passive("qq").unwrap_err();
    assert!(missing.to_string().contains("did you mean 'q'"), "{missing}");
}

#[test]
fn bad_names_get_typed_errors() {
    let t = TempNs::new("names");
    for bad in ["a\0b", "a\nb", "\u{1b}[31m"] {
        assert!(matches!(t.ns.declare_queue(bad, &small()), Err(Error::InvalidName { .. })), "{bad:?}");
    }
    // An empty name asks for a server-named queue, as in RabbitMQ.
    let generated = t.ns.declare_queue("", &small()).unwrap().name;
    assert!(generated.starts_with("amq.gen-"), "{generated}");
    assert!(matches!(t.ns.producer(""), Err(Error::InvalidName { .. })));
    t.ns.delete_queue(&generated).unwrap();
    let long = "x".repeat(256);
    assert!(matches!(t.ns.declare_queue(&long, &small()), Err(Error::InvalidName { .. })));
    let max = "y".repeat(255);
    t.ns.declare_queue(&max, &small()).unwrap();
    // Names RabbitMQ takes that are no file names are encoded on disk, not
    // refused, and never reach a path: `..` and `../x` stay in queues/.
    let slashes = "/".repeat(255);
    let odd = ["orders/eu", ".", "..", "../escape", "50%", "%2F", slashes.as_str()];
    for name in odd {
        t.ns.declare_queue(name, &small()).unwrap();
        t.ns.producer(name).unwrap().publish(name.as_bytes()).unwrap();
    }
    let listed = t.ns.list_queues().unwrap();
    for name in odd {
        assert!(listed.iter().any(|q| q == name), "{name:?} not listed: {listed:?}");
        let consumer = t.ns.consumer(name, ConsumerOptions::default()).unwrap();
        assert_eq!(consumer.try_recv().unwrap().body(), name.as_bytes());
    }
    assert!(!t.path().join("escape").exists() && !t.path().parent().unwrap().join("escape").exists());
    for name in odd {
        t.ns.delete_queue(name).unwrap();
    }
    assert_eq!(std::fs::read_dir(t.path().join("queues")).unwrap().count(), 1, "only the 255-y queue is left");
    assert!(matches!(t.ns.producer("nope"), Err(Error::QueueNotFound { .. })));
}

#[test]
fn bad_options_get_typed_errors() {
    let t = TempNs::new("options");
    // A message larger than the first ring is fine (a larger ring is added
    // for it); one larger than the largest ring can hold is not.
    t.ns.declare_queue("fits", &QueueOptions::default().capacity_bytes(4096).max_message_bytes(4096)).unwrap();
    let too_big_message = QueueOptions::default().max_message_bytes(u32::MAX);
    let err = t.ns.declare_queue("q", &too_big_message).unwrap_err();
    assert!(matches!(err, Error::InvalidOptions(_)), "{err}");
    assert!(err.to_string().contains("the most one ring holds"), "{err}");
    let tiny = QueueOptions { capacity_bytes: 8, ..QueueOptions::default() };
    assert!(matches!(t.ns.declare_queue("q", &tiny), Err(Error::InvalidOptions(_))));
}

#[test]
fn messages_from_zero_bytes_to_the_limit_round_trip() {
    let t = TempNs::new("sizes");
    let options = small();
    t.ns.declare_queue("q", &options).unwrap();
    let limit = options.max_message_bytes as usize;
    let mut producer = t.ns.producer("q").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let sizes = [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4096, limit - 1, limit];
    for round in 0..20 {
        for &size in &sizes {
            let body: Vec<u8> = (0..size).map(|i| (i + round) as u8).collect();
            producer.publish(&body).unwrap();
            let d = consumer.try_recv().unwrap();
            assert_eq!(d.body(), &body[..], "size {size}");
        }
    }
    let over = vec![0u8; limit + 1];
    assert_eq!(producer.publish(&over), Err(PublishError::TooLarge { size: limit + 1, limit }));
    // A property pushes a limit-sized body over.
    let err = producer.publish_with(&Properties::new().message_id("m"), &vec![0u8; limit]).unwrap_err();
    assert!(matches!(err, PublishError::TooLarge { .. }));
    assert_eq!(consumer.try_recv().err(), Some(RecvError::Empty));
}

#[test]
fn small_messages_take_small_records() {
    let t = TempNs::new("packing");
    let options = QueueOptions::default().capacity_bytes(64 * 1024).max_message_bytes(16 * 1024);
    t.ns.declare_queue("q", &options).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    // 64 KiB of 64-byte records is 1024 (and 64 KiB has 512 slots of 128
    // bytes each: half as many); a fixed large-slot design would hold 4 of
    // 16 KiB.
    for _ in 0..512 {
        producer.publish(&[7u8; 64]).unwrap();
    }
    let stats = t.ns.queue_stats("q").unwrap();
    assert_eq!((stats.rings, stats.bytes_used), (1, 32 * 1024));
    // One more does not fit the first ring: the queue grows.
    producer.publish(&[7u8; 64]).unwrap();
    assert_eq!(t.ns.queue_stats("q").unwrap().rings, 2);
}

#[test]
fn manual_ack_nack_and_redelivery() {
    let t = TempNs::new("acks");
    t.ns.declare_queue("q", &small()).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    producer.publish(b"one").unwrap();
    producer.publish(b"two").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let first = consumer.try_recv().unwrap();
    assert_eq!(first.body(), b"one");
    first.nack(true).unwrap();
    let again = consumer.try_recv().unwrap();
    assert_eq!((again.body(), again.redelivered()), (&b"one"[..], true));
    let tag = again.tag();
    drop(again); // manual mode: still unacked
    assert_eq!(t.ns.queue_stats("q").unwrap().unacked, 1);
    consumer.ack(tag).unwrap();
    assert_eq!(consumer.ack(tag), Err(shmq::AckError::UnknownDeliveryTag(tag.0)));
    let two = consumer.try_recv().unwrap();
    two.reject(false).unwrap();
    assert_eq!(consumer.try_recv().err(), Some(RecvError::Empty));
    let stats = t.ns.queue_stats("q").unwrap();
    assert_eq!((stats.ready, stats.unacked, stats.acked, stats.redelivered), (0, 0, 1, 1));
}

#[test]
fn closing_a_consumer_requeues_its_unacked_messages() {
    let t = TempNs::new("close");
    t.ns.declare_queue("q", &small()).unwrap();
    t.ns.producer("q").unwrap().publish_batch(&[b"a", b"b", b"c"]).unwrap();
    {
        let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
        let a = consumer.try_recv().unwrap().tag();
        let _b = consumer.try_recv().unwrap().tag();
        consumer.ack(a).unwrap();
    }
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let b = consumer.try_recv().unwrap();
    assert_eq!((b.body(), b.redelivered()), (&b"b"[..], true));
    b.ack().unwrap();
    let c = consumer.try_recv().unwrap();
    assert_eq!((c.body(), c.redelivered()), (&b"c"[..], false));
}

#[test]
fn prefetch_limits_unacked_deliveries() {
    let t = TempNs::new("prefetch");
    t.ns.declare_queue("q", &small()).unwrap();
    t.ns.producer("q").unwrap().publish_batch(&[b"1", b"2", b"3"]).unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(2)).unwrap();
    let one = consumer.try_recv().unwrap().tag();
    let _two = consumer.try_recv().unwrap().tag();
    assert_eq!(consumer.try_recv().err(), Some(RecvError::PrefetchFull(2)));
    consumer.ack(one).unwrap();
    assert_eq!(consumer.try_recv().unwrap().body(), b"3");
}

#[test]
fn reject_policy_returns_queue_full_and_loses_nothing() {
    let t = TempNs::new("reject");
    let options = QueueOptions::default().capacity_bytes(4096).max_length(8).max_message_bytes(256).overflow(Overflow::Reject);
    t.ns.declare_queue("q", &options).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    for i in 0..8u8 {
        producer.publish(&[i]).unwrap();
    }
    assert_eq!(producer.publish(&[99]), Err(PublishError::QueueFull));
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let got: Vec<u8> = (0..8).map(|_| consumer.try_recv().unwrap().body()[0]).collect();
    assert_eq!(got, (0..8).collect::<Vec<u8>>());
    producer.publish(&[100]).unwrap();
}

#[test]
fn drop_oldest_policy_keeps_the_newest() {
    let t = TempNs::new("dropoldest");
    let options = QueueOptions::default().capacity_bytes(4096).max_length(4).max_message_bytes(256).overflow(Overflow::DropOldest);
    t.ns.declare_queue("q", &options).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    for i in 0..10u8 {
        producer.publish(&[i]).unwrap();
    }
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let got: Vec<u8> = std::iter::from_fn(|| consumer.try_recv().ok().map(|d| d.body()[0])).collect();
    assert_eq!(got, vec![6, 7, 8, 9]);
    assert_eq!(t.ns.queue_stats("q").unwrap().dropped, 6);
}

#[test]
fn drop_oldest_never_drops_unacked_messages() {
    let t = TempNs::new("dropunacked");
    let options = QueueOptions::default().capacity_bytes(4096).max_length(2).max_message_bytes(256).overflow(Overflow::DropOldest);
    t.ns.declare_queue("q", &options).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    producer.publish_batch(&[b"a", b"b"]).unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let a = consumer.try_recv().unwrap().tag();
    let b = consumer.try_recv().unwrap().tag();
    // Unacked messages do not count: c and d fit, e drops c.
    producer.publish_batch(&[b"c", b"d", b"e"]).unwrap();
    let stats = t.ns.queue_stats("q").unwrap();
    assert_eq!((stats.ready, stats.unacked, stats.dropped), (2, 2, 1));
    consumer.ack(a).unwrap();
    consumer.ack(b).unwrap();
    let rest: Vec<Vec<u8>> = std::iter::from_fn(|| consumer.try_recv().ok().map(|d| d.body().to_vec())).collect();
    assert_eq!(rest, vec![b"d".to_vec(), b"e".to_vec()]);
}

#[test]
fn block_policy_times_out_then_resumes_when_space_frees() {
    let t = TempNs::new("block");
    let options = QueueOptions::default().capacity_bytes(4096).max_length(2).max_message_bytes(256).overflow(Overflow::Block);
    t.ns.declare_queue("q", &options).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    producer.set_publish_timeout(Some(Duration::from_millis(30)));
    producer.publish_batch(&[b"a", b"b"]).unwrap();
    assert_eq!(producer.publish(b"c"), Err(PublishError::Timeout));
    producer.set_publish_timeout(None);
    let ns = t.ns.clone();
    let consumer_thread = std::thread::spawn(move || {
        let consumer = ns.consumer("q", ConsumerOptions::default()).unwrap();
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(consumer.recv().unwrap().body().to_vec());
        }
        got
    });
    producer.publish(b"c").unwrap(); // blocks until the consumer makes room
    assert_eq!(consumer_thread.join().unwrap(), vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn ttl_expires_messages_at_delivery() {
    let t = TempNs::new("ttl");
    t.ns.declare_queue("q", &small().message_ttl(Duration::from_millis(20))).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    producer.publish(b"old").unwrap();
    producer.publish_with(&Properties::new().expiration("100000"), b"capped").unwrap();
    std::thread::sleep(Duration::from_millis(40));
    producer.publish(b"new").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    assert_eq!(consumer.try_recv().unwrap().body(), b"new");
    assert_eq!(t.ns.queue_stats("q").unwrap().expired, 2);
}

#[test]
fn reservations_write_in_place_and_dropped_ones_are_skipped() {
    let t = TempNs::new("reserve");
    t.ns.declare_queue("q", &small()).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    {
        let mut r = producer.reserve(&Properties::new().message_id("zc"), 4).unwrap();
        r.body_mut().copy_from_slice(b"abcd");
        r.commit();
    }
    {
        let mut r = producer.reserve(&Properties::new(), 4).unwrap();
        r.body_mut().copy_from_slice(b"gone");
    }
    producer.publish(b"after").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let d = consumer.try_recv().unwrap();
    assert_eq!((d.body(), d.properties().message_id), (&b"abcd"[..], Some("zc")));
    drop(d);
    assert_eq!(consumer.try_recv().unwrap().body(), b"after");
}

#[test]
fn delete_and_purge() {
    let t = TempNs::new("delete");
    t.ns.declare_queue("q", &small()).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    producer.publish_batch(&[b"a", b"b", b"c"]).unwrap();
    assert_eq!(t.ns.purge_queue("q").unwrap(), 3);
    assert_eq!(t.ns.queue_stats("q").unwrap().ready, 0);
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    t.ns.delete_queue("q").unwrap();
    assert_eq!(producer.publish(b"x"), Err(PublishError::QueueDeleted));
    assert_eq!(consumer.recv().err(), Some(RecvError::QueueDeleted));
    assert!(matches!(t.ns.queue_stats("q"), Err(Error::QueueNotFound { .. })));
}

#[test]
fn competing_threads_each_message_exactly_once() {
    let t = TempNs::in_shm("threads");
    t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(1 << 16).max_message_bytes(1024)).unwrap();
    const PER_PRODUCER: u32 = 20_000;
    let producers: Vec<_> = (0..2u32)
        .map(|p| {
            let ns = t.ns.clone();
            std::thread::spawn(move || {
                let mut producer = ns.producer("q").unwrap();
                for i in 0..PER_PRODUCER {
                    producer.publish(&(p * PER_PRODUCER + i).to_le_bytes()).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let ns = t.ns.clone();
            std::thread::spawn(move || {
                let consumer = ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(8)).unwrap();
                let mut seen = Vec::new();
                loop {
                    match consumer.recv_timeout(Duration::from_millis(500)) {
                        Ok(d) => {
                            seen.push(u32::from_le_bytes(d.body().try_into().unwrap()));
                            d.ack().unwrap();
                        }
                        Err(RecvError::Timeout) => return seen,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut all: Vec<u32> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..2 * PER_PRODUCER).collect::<Vec<_>>());
}

#[test]
fn publish_batch_larger_than_the_ring_is_split_and_never_stuck() {
    // 64 messages of 16 KiB into a 64 KiB first ring: no single claim
    // could take them all there. The batch goes through in chunks (the
    // queue grows) while a consumer drains, in order, none lost.
    let t = TempNs::new("bigbatch");
    t.ns.declare_queue("q", &small()).unwrap();
    let consumer_ns = t.ns.clone();
    let drained = std::thread::spawn(move || {
        let consumer = consumer_ns.consumer("q", ConsumerOptions::default()).unwrap();
        let mut seen = Vec::new();
        while seen.len() < 64 {
            let d = consumer.recv_timeout(Duration::from_secs(10)).expect("the batch keeps flowing");
            assert_eq!(d.body().len(), 16 * 1024 - 8);
            seen.push(d.body()[0]);
        }
        seen
    });
    let bodies: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 16 * 1024 - 8]).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    let mut producer = t.ns.producer("q").unwrap();
    // A claim that can never fit would block forever; bound it.
    producer.set_publish_timeout(Some(Duration::from_secs(10)));
    assert_eq!(producer.publish_batch(&refs).unwrap(), 64);
    assert_eq!(drained.join().unwrap(), (0..64u8).collect::<Vec<_>>());
}

#[test]
fn publish_batch_publishes_what_precedes_a_bad_message_then_reports_it() {
    let t = TempNs::new("badbatch");
    t.ns.declare_queue("q", &small()).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let too_big = vec![0u8; 32 * 1024];
    let bodies: [&[u8]; 3] = [b"a", b"b", &too_big];
    assert!(matches!(producer.publish_batch(&bodies), Err(PublishError::TooLarge { .. })));
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    assert_eq!(consumer.recv_timeout(Duration::from_secs(1)).unwrap().body(), b"a");
    assert_eq!(consumer.recv_timeout(Duration::from_secs(1)).unwrap().body(), b"b");
    assert!(matches!(consumer.try_recv(), Err(RecvError::Empty)));
}

#[test]
fn the_tag_of_a_requeued_delivery_does_not_settle_its_redelivery() {
    let t = TempNs::new("tag-redelivery");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    t.ns.producer("q").unwrap().publish(b"once").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let old = consumer.try_recv().unwrap().tag();
    consumer.nack(old, true).unwrap();
    let again = consumer.try_recv().unwrap();
    assert!(again.redelivered());
    assert_ne!(again.tag(), old);
    // A late duplicate settle of the old tag is refused, as RabbitMQ would
    // refuse it (PRECONDITION_FAILED - unknown delivery tag).
    assert_eq!(consumer.ack(old), Err(shmq::AckError::UnknownDeliveryTag(old.0)));
    assert_eq!(consumer.unacked(), 1);
    again.ack().unwrap();
}

#[test]
fn delete_queue_if_unused_or_empty_refuses_as_rabbitmq_does() {
    let t = TempNs::new("delete-if");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    assert!(matches!(t.ns.delete_queue_if("q", true, false), Err(Error::QueueInUse { reason: "in use", .. })));
    drop(consumer);
    t.ns.producer("q").unwrap().publish(b"x").unwrap();
    assert!(matches!(t.ns.delete_queue_if("q", false, true), Err(Error::QueueInUse { reason: "not empty", .. })));
    assert_eq!(t.ns.queue_stats("q").unwrap().ready, 1, "nothing was deleted");
    t.ns.delete_queue_if("q", true, false).unwrap();
    assert!(t.ns.list_queues().unwrap().is_empty());
}

#[test]
fn ack_and_nack_multiple_settle_up_to_a_tag_and_refuse_an_unknown_one() {
    let t = TempNs::new("multiple");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    t.ns.producer("q").unwrap().publish_batch(&[b"a", b"b", b"c", b"d"]).unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let tags: Vec<_> = (0..4).map(|_| consumer.try_recv().unwrap().tag()).collect();
    assert_eq!(consumer.ack_multiple(shmq::DeliveryTag(tags[3].0 + 10)), Err(shmq::AckError::UnknownDeliveryTag(tags[3].0 + 10)));
    assert_eq!(consumer.unacked(), 4, "an unknown tag settles nothing");
    assert_eq!(consumer.ack_multiple(tags[1]).unwrap(), 2);
    assert_eq!(consumer.ack_multiple(tags[1]), Err(shmq::AckError::UnknownDeliveryTag(tags[1].0)), "already settled");
    assert_eq!(consumer.nack_multiple(shmq::DeliveryTag(0), true).unwrap(), 2);
    let again: Vec<_> = std::iter::from_fn(|| consumer.try_recv().ok().map(|d| (d.body().to_vec(), d.redelivered()))).collect();
    assert_eq!(again, [(b"c".to_vec(), true), (b"d".to_vec(), true)]);
}

#[test]
fn a_get_only_handle_is_not_counted_as_a_consumer() {
    let t = TempNs::new("get-only");
    t.ns.declare_queue("q", &QueueOptions::default().auto_delete(true)).unwrap();
    t.ns.producer("q").unwrap().publish_batch(&[b"a", b"b"]).unwrap();
    let getter = t.ns.consumer("q", ConsumerOptions::default().manual_ack().for_get()).unwrap();
    let held = getter.try_recv().unwrap().tag();
    let stats = t.ns.queue_stats("q").unwrap();
    assert_eq!((stats.consumers, stats.unacked, stats.ready), (0, 1, 1));
    getter.ack(held).unwrap();
    drop(getter);
    assert!(t.ns.queue_stats("q").is_ok(), "basic.get never makes an auto-delete queue go");
}

#[test]
fn an_exclusive_consumer_holds_the_queue_alone_until_it_goes() {
    let t = TempNs::new("exclusive-consumer");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let ordinary = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let refused = t.ns.consumer("q", ConsumerOptions::default().exclusive());
    assert!(matches!(refused, Err(Error::ExclusiveConsumer { .. })), "others are attached");
    drop(ordinary);
    let holder = t.ns.consumer("q", ConsumerOptions::default().exclusive()).unwrap();
    assert!(matches!(t.ns.consumer("q", ConsumerOptions::default()), Err(Error::ExclusiveConsumer { .. })));
    assert!(matches!(t.ns.consumer("q", ConsumerOptions::default().exclusive()), Err(Error::ExclusiveConsumer { .. })));
    // basic.get is no consumer: not refused.
    t.ns.consumer("q", ConsumerOptions::default().for_get()).unwrap();
    assert_eq!(t.ns.queue_stats("q").unwrap().consumers, 1);
    drop(holder);
    t.ns.consumer("q", ConsumerOptions::default()).unwrap();
}

/// Direct reply-to: a reply queue is the client's own (exclusive), routable
/// by its name through the default exchange while its handle lives, and
/// gone with it, so that a late reply is dropped, not kept.
#[test]
fn a_reply_queue_routes_replies_and_goes_with_its_handle() {
    let t = TempNs::new("reply-to");
    let client = shmq::Namespace::open_dir(t.path()).unwrap();
    let reply_to = client.declare_reply_queue().unwrap();
    assert!(reply_to.starts_with(&format!("{}.", shmq::DIRECT_REPLY_TO)));
    assert_ne!(reply_to, client.declare_reply_queue().unwrap(), "every call gets a queue of its own");
    // Another process (here: handle) may not consume it.
    assert!(matches!(t.ns.consumer(&reply_to, ConsumerOptions::default()), Err(shmq::Error::ExclusiveQueue { .. })));
    let mut server = t.ns.publisher();
    assert_eq!(server.publish("", &reply_to, &shmq::Properties::new(), b"answer").unwrap().queues, 1);
    let replies = client.consumer(&reply_to, ConsumerOptions::default()).unwrap();
    assert_eq!(replies.try_recv().unwrap().body(), b"answer");
    drop(replies);
    drop(client);
    assert_eq!(server.publish("", &reply_to, &shmq::Properties::new(), b"late").unwrap().queues, 0, "dropped");
    assert!(t.ns.list_queues().unwrap().iter().all(|q| !q.starts_with(shmq::DIRECT_REPLY_TO)));
}

/// A `basic.get` handle takes no consumer-only option: refused, not ignored.
#[test]
fn a_get_handle_refuses_consumer_options() {
    let t = TempNs::new("get-options");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    for options in [ConsumerOptions::default().for_get().exclusive(), ConsumerOptions::default().for_get().priority(3)] {
        assert!(matches!(t.ns.consumer("q", options), Err(Error::InvalidOptions(_))), "{options:?}");
    }
    assert_eq!(t.ns.queue_stats("q").unwrap().consumers, 0, "nothing was left attached");
}

#[test]
fn recv_many_sleeps_until_a_batch_comes_from_another_thread() {
    let t = TempNs::new("drain-timeout");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let ns = t.ns.clone();
    let publisher = std::thread::spawn(move || {
        // Long after the consumer's spin: it is asleep in the futex.
        std::thread::sleep(Duration::from_millis(200));
        ns.producer("q").unwrap().publish_batch(&[b"a", b"b", b"c"]).unwrap();
    });
    let mut got = Vec::new();
    while got.len() < 3 {
        consumer.recv_many(32, Duration::from_secs(30), |d| got.push(d.body().to_vec())).unwrap();
    }
    assert_eq!(got, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    publisher.join().unwrap();
    t.ns.delete_queue("q").unwrap();
    assert_eq!(consumer.recv_many(32, Duration::from_secs(30), |_| {}), Err(RecvError::QueueDeleted));
}

/// The CPU time a thread named `name` uses while it runs `f`, and `f`'s
/// result.
fn cpu_of<R: Send>(name: &str, f: impl FnOnce() -> R + Send) -> (R, Duration) {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(s, || {
                let result = f();
                (result, common::cpu_time(&[name]))
            })
            .unwrap()
            .join()
            .unwrap()
    })
}

/// `Producer::set_busy_poll`: a publish waiting for room in a `block`
/// queue spins (it uses the CPU the whole time) instead of sleeping, takes
/// the room as soon as it frees, and still times out; without it the same
/// wait sleeps.
#[test]
fn a_busy_polling_producer_spins_for_room_and_still_times_out() {
    let t = TempNs::new("prod-busy");
    t.ns.declare_queue("q", &QueueOptions::default().max_length(1).overflow(Overflow::Block)).unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    for busy in [true, false] {
        let ns = t.ns.clone();
        let (result, cpu) = cpu_of(if busy { "busy-prod" } else { "sleepy-prod" }, move || {
            let mut producer = ns.producer("q").unwrap();
            producer.set_busy_poll(busy);
            producer.set_publish_timeout(Some(Duration::from_millis(400)));
            producer.publish(b"fills").unwrap();
            producer.publish(b"waits")
        });
        assert_eq!(result, Err(PublishError::Timeout), "busy {busy}");
        if busy {
            assert!(cpu >= Duration::from_millis(100), "a busy-polling wait of 400 ms used {cpu:?} of CPU");
        } else {
            assert!(cpu <= Duration::from_millis(60), "a sleeping wait of 400 ms used {cpu:?} of CPU");
        }
        assert_eq!(consumer.try_recv().unwrap().body(), b"fills");
    }
    // Room that frees while it spins is taken.
    let ns = t.ns.clone();
    let publisher = std::thread::spawn(move || {
        let mut producer = ns.producer("q").unwrap();
        producer.set_busy_poll(true);
        producer.publish(b"1").unwrap();
        producer.publish(b"2").unwrap();
    });
    let mut got = Vec::new();
    while got.len() < 2 {
        if let Ok(d) = consumer.recv_timeout(Duration::from_secs(30)) {
            got.push(d.body().to_vec());
        }
    }
    publisher.join().unwrap();
    assert_eq!(got, [b"1".to_vec(), b"2".to_vec()]);
}

/// `recv_many` with `busy_poll`: it spins while it waits (CPU the whole
/// time), returns the batch that comes, and times out on an empty queue.
#[test]
fn recv_many_with_busy_poll_spins_and_times_out() {
    let t = TempNs::new("recvmany-busy");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let ns = t.ns.clone();
    let (result, cpu) = cpu_of("busy-recv", move || {
        let consumer = ns.consumer("q", ConsumerOptions::default().busy_poll(true)).unwrap();
        consumer.recv_many(32, Duration::from_millis(400), |_| {})
    });
    assert_eq!(result, Err(RecvError::Timeout));
    assert!(cpu >= Duration::from_millis(100), "a busy-polling wait of 400 ms used {cpu:?} of CPU");
    let consumer = t.ns.consumer("q", ConsumerOptions::default().busy_poll(true)).unwrap();
    let ns = t.ns.clone();
    let publisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        ns.producer("q").unwrap().publish_batch(["x", "y"]).unwrap();
    });
    let mut got = Vec::new();
    while got.len() < 2 {
        consumer.recv_many(32, Duration::from_secs(30), |d| got.push(d.body().to_vec())).unwrap();
    }
    publisher.join().unwrap();
    assert_eq!(got, [b"x".to_vec(), b"y".to_vec()]);
}
