//! Attacks on dead-lettering (issue 13), from an adversarial review: a
//! dead-letter queue that is full, `block`, or refuses part of a fanout;
//! copies that can never fit; a killed housekeeper; TTLs that reach the
//! requeue count's bits; headers nested too deep. Each test states what
//! docs/GUARANTEES.md promises; each failed before its fix.

mod common;

use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::TempNs;
use shmq::{ConsumerOptions, ExchangeKind, ExchangeOptions, HeaderValue, Overflow, Properties, PublishError, QueueOptions};

fn manual() -> ConsumerOptions {
    ConsumerOptions::default().manual_ack()
}

/// The requeue count shares the expiry word: a TTL that reached its bits
/// (2^48 ms, found by review) expired the message at once. Now an
/// expiration over RabbitMQ's 2^32 - 1 ms is refused, as RabbitMQ refuses
/// it, and the longest accepted one is delivered, uncounted.
#[test]
fn an_expiration_of_2_pow_48_ms_does_not_expire_at_once() {
    let t = TempNs::new("dlr-ttl48");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let mut p = t.ns.publisher();
    let refused = p.publish("", "q", &Properties::new().expiration("281474976710656"), b"far future");
    assert!(matches!(refused, Err(PublishError::InvalidProperty(_))), "{refused:?}");
    p.publish("", "q", &Properties::new().expiration("4294967295"), b"49 days").unwrap();
    let c = t.ns.consumer("q", manual()).unwrap();
    let d = c.try_recv().expect("a message with a 49-day TTL was expired at once");
    assert_eq!((d.body(), d.delivery_count()), (&b"49 days"[..], 0));
}

/// u64::MAX saturates to all ones: the 16 count bits read 65535, so on a
/// queue with a delivery limit the message is dead-lettered as
/// `delivery_limit` before its first delivery.
#[test]
fn a_huge_expiration_is_not_a_delivery_count() {
    let t = TempNs::new("dlr-ttlmax");
    t.ns.declare_queue("q", &QueueOptions::default().delivery_limit(5)).unwrap();
    let refused = t.ns.publisher().publish("", "q", &Properties::new().expiration("18446744073709551615"), b"x");
    assert!(matches!(refused, Err(PublishError::InvalidProperty(_))), "{refused:?}");
    // A hostile expiry word in shared memory is masked: see the ring's
    // `read_record` (count in the high 16 bits, expiry in the low 48).
    t.ns.publisher().publish("", "q", &Properties::new().expiration("4294967295"), b"x").unwrap();
    let c = t.ns.consumer("q", manual()).unwrap();
    let d = c.try_recv().expect("never delivered: discarded as over its delivery limit");
    assert_eq!(d.delivery_count(), 0);
}

/// Fanout dead-letter exchange to `a` (accepts) and `b` (full,
/// reject-publish). Each attempt publishes a copy into `a`, then fails on
/// `b` and requeues the source message, which dies again at the next
/// housekeeping run: one more copy in `a` per run (every 100 ms in every
/// process), without any crash. Documented: "a duplicate at most".
#[test]
fn a_dead_letter_fanout_with_one_full_queue_does_not_duplicate_without_bound() {
    let t = TempNs::new("dlr-fanout");
    t.ns.declare_exchange("dlx", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
    t.ns.declare_queue("a", &QueueOptions::default()).unwrap();
    t.ns.declare_queue("b", &QueueOptions::default().max_length(1).overflow(Overflow::Reject)).unwrap();
    t.ns.bind_queue("a", "dlx", "", &[]).unwrap();
    t.ns.bind_queue("b", "dlx", "", &[]).unwrap();
    t.ns.producer("b").unwrap().publish(b"filler").unwrap();
    t.ns.declare_queue("work", &QueueOptions::default().dead_letter_exchange("dlx")).unwrap();
    t.ns.publisher().publish("", "work", &Properties::new().expiration("1"), b"dies once").unwrap();
    std::thread::sleep(Duration::from_millis(10));
    for _ in 0..20 {
        let _ = t.ns.housekeep();
    }
    // And a consumer of `work` polling: each poll takes the dead head again.
    let work = t.ns.consumer("work", manual()).unwrap();
    for _ in 0..20 {
        let _ = work.try_recv();
    }
    let copies = t.ns.queue_stats("a").unwrap().ready;
    assert!(copies <= 1, "one dead message became {copies} copies in `a`");
}

/// A copy that can never be published (here: x-death makes it larger than
/// the dead-letter queue's largest message; the same for a target whose
/// file cannot be opened) leaves an expired message at the head for good:
/// every take dead-letters it, fails and requeues it, and is then told
/// "empty". The live message behind it is never delivered.
#[test]
fn an_expired_head_whose_copy_never_fits_does_not_wedge_its_queue() {
    let t = TempNs::new("dlr-wedge");
    let small = QueueOptions::default().max_message_bytes(256);
    t.ns.declare_queue("dead", &small).unwrap();
    t.ns.declare_queue("work", &small.clone().dead_letter_exchange("").dead_letter_routing_key("dead")).unwrap();
    let mut p = t.ns.publisher();
    p.publish("", "work", &Properties::new().expiration("1"), &[b'x'; 200]).unwrap();
    p.publish("", "work", &Properties::new(), b"live").unwrap();
    std::thread::sleep(Duration::from_millis(10));
    let work = t.ns.consumer("work", manual()).unwrap();
    let got = work.recv_timeout(Duration::from_secs(1)).map(|d| d.body().to_vec());
    let stats = t.ns.queue_stats("work").unwrap();
    assert_eq!(got.as_deref().ok(), Some(&b"live"[..]), "`live` stuck behind a dead head ({stats:?})");
}

/// drop-head whose copy is refused (the dead-letter queue is full): the
/// dropped message is requeued with `Settle::Requeue`, which counts a
/// delivery and flags it redelivered, once per retry of the publish. A
/// message nobody ever received then reports a large `delivery_count`
/// (pika: `x-delivery-count`) and, on a queue with a delivery limit, dies
/// as `delivery_limit` without a single delivery.
#[test]
fn a_refused_drop_head_copy_does_not_count_as_a_delivery() {
    let t = TempNs::new("dlr-dropcount");
    t.ns.declare_queue("dead", &QueueOptions::default().max_length(1).overflow(Overflow::Reject)).unwrap();
    t.ns.producer("dead").unwrap().publish(b"filler").unwrap();
    t.ns.declare_queue("work", &QueueOptions::default().max_length(1).dead_letter_exchange("").dead_letter_routing_key("dead")).unwrap();
    let mut p = t.ns.producer("work").unwrap();
    p.set_publish_timeout(Some(Duration::from_millis(200)));
    p.publish(b"first").unwrap();
    // drop-head drops `first` (its copy pending: `dead` is full) and takes
    // `second`, as RabbitMQ's drop-head does.
    p.publish(b"second").unwrap();
    // `first` died (drop-head) and is shelved: not delivered, not lost, not
    // counted as a delivery. Once `dead` has room, the housekeeping
    // dead-letters it, uncounted and not flagged redelivered.
    let work = t.ns.consumer("work", manual()).unwrap();
    assert_eq!(work.try_recv().unwrap().body(), b"second", "a dead message is never delivered");
    let dead = t.ns.consumer("dead", manual()).unwrap();
    dead.try_recv().unwrap().ack().unwrap();
    assert_eq!(t.ns.housekeep().unwrap().dead_lettered, 1);
    let d = dead.try_recv().unwrap();
    assert_eq!(d.body(), b"first");
    assert_eq!((d.delivery_count(), d.redelivered()), (0, false), "never delivered before");
    assert_eq!(d.properties().headers.get("x-first-death-reason"), Some(shmq::HeaderValue::Str("maxlen")));
}

/// The housekeeping runs inside every handle's sweep. A dead-letter queue
/// with the `block` policy that is full makes the dead-letter publish wait
/// for ever (the dead-letterer's publisher has no timeout), inside the
/// sweep of an unrelated handle: here a consumer of `orders`, which never
/// touched `delay` or `parking`, hangs in `recv_timeout(300 ms)`.
#[test]
fn housekeeping_never_hangs_an_unrelated_handle() {
    let t = TempNs::new("dlr-block");
    t.ns.declare_queue("parking", &QueueOptions::default().max_length(1).overflow(Overflow::Block)).unwrap();
    t.ns.producer("parking").unwrap().publish(b"filler").unwrap();
    t.ns.declare_queue(
        "delay",
        &QueueOptions::default().message_ttl(Duration::from_millis(1)).dead_letter_exchange("").dead_letter_routing_key("parking"),
    )
    .unwrap();
    t.ns.declare_queue("orders", &QueueOptions::default()).unwrap();
    t.ns.publisher().publish("", "delay", &Properties::new(), b"retry me").unwrap();
    std::thread::sleep(Duration::from_millis(10));
    let (tx, rx) = mpsc::channel();
    let dir = t.dir.clone();
    std::thread::spawn(move || {
        let ns = shmq::Namespace::open_dir(&dir).unwrap();
        let orders = ns.consumer("orders", ConsumerOptions::default()).unwrap();
        // Empty waits sweep every 200 ms; give it a few.
        for _ in 0..4 {
            let _ = orders.recv_timeout(Duration::from_millis(300));
        }
        let _ = tx.send(());
    });
    let finished = rx.recv_timeout(Duration::from_secs(8));
    assert!(finished.is_ok(), "a consumer of `orders` hung: its sweep's housekeeping blocks on the full `parking`");
}

/// A housekeeper killed while it holds an expired message of `delay`
/// (here pinned there by a full block `parking`, then killed) leaves it
/// DELIVERED to a dead agent. Documented: "the next sweep requeues it and
/// it dies again". But only handles attached to `delay` sweep it, and a
/// delay queue usually has none: other processes' housekeeping (here
/// `Namespace::housekeep`, for 1 s, after `parking` has room) never
/// recovers it, so it is never dead-lettered (until `shmq gc` or a handle
/// on `delay`).
#[test]
fn a_killed_housekeepers_message_is_dead_lettered_by_the_next_housekeeping() {
    let t = TempNs::in_shm("dlr-orphan");
    t.ns.declare_queue("parking", &QueueOptions::default().max_length(1).overflow(Overflow::Block)).unwrap();
    t.ns.producer("parking").unwrap().publish(b"filler").unwrap();
    t.ns.declare_queue(
        "delay",
        &QueueOptions::default().message_ttl(Duration::from_millis(1)).dead_letter_exchange("").dead_letter_routing_key("parking"),
    )
    .unwrap();
    t.ns.declare_queue("idle", &QueueOptions::default()).unwrap();
    t.ns.publisher().publish("", "delay", &Properties::new(), b"retry me").unwrap();
    std::thread::sleep(Duration::from_millis(10));
    // A process whose only handle is a consumer of `idle`: its sweeps run
    // the housekeeping, which takes the expired message and blocks.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut housekeeper =
        KillOnDrop(t.shmq().args(["consume", "idle", "--count", "1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    // (Stats count only consumers' unacked messages: the housekeeper's
    // hold shows as `ready` dropping to 0.)
    while t.ns.queue_stats("delay").unwrap().ready != 0 {
        assert!(Instant::now() < deadline, "the housekeeper never took the message");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = housekeeper.0.kill();
    let _ = housekeeper.0.wait();
    // Make room in `parking`, then let housekeeping run for a second.
    {
        let parking = t.ns.consumer("parking", ConsumerOptions::default()).unwrap();
        assert_eq!(parking.try_recv().unwrap().body(), b"filler");
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline && t.ns.queue_stats("parking").unwrap().ready == 0 {
        let _ = t.ns.housekeep();
        std::thread::sleep(Duration::from_millis(50));
    }
    let delay = t.ns.queue_stats("delay").unwrap();
    let parking = t.ns.queue_stats("parking").unwrap();
    assert_eq!(
        (parking.ready, delay.ready),
        (1, 0),
        "the message stays DELIVERED to the dead housekeeper ({delay:?}); nobody sweeps `delay`"
    );
    let c = t.ns.consumer("parking", ConsumerOptions::default()).unwrap();
    let d = c.try_recv().unwrap();
    assert_eq!(d.properties().headers.get("x-first-death-reason"), Some(HeaderValue::Str("expired")));
}

/// The consumer side of the fanout case: one `recv_timeout` of 500 ms on
/// `work` (which holds only the dead message) republishes it in a loop.
#[test]
fn one_recv_timeout_does_not_republish_a_dead_message_in_a_loop() {
    let t = TempNs::new("dlr-spin");
    t.ns.declare_exchange("dlx", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
    t.ns.declare_queue("a", &QueueOptions::default()).unwrap();
    t.ns.declare_queue("b", &QueueOptions::default().max_length(1).overflow(Overflow::Reject)).unwrap();
    t.ns.bind_queue("a", "dlx", "", &[]).unwrap();
    t.ns.bind_queue("b", "dlx", "", &[]).unwrap();
    t.ns.producer("b").unwrap().publish(b"filler").unwrap();
    t.ns.declare_queue("work", &QueueOptions::default().dead_letter_exchange("dlx")).unwrap();
    t.ns.publisher().publish("", "work", &Properties::new().expiration("1"), b"dies once").unwrap();
    std::thread::sleep(Duration::from_millis(10));
    let work = t.ns.consumer("work", manual()).unwrap();
    let started = Instant::now();
    let _ = work.recv_timeout(Duration::from_millis(500));
    let copies = t.ns.queue_stats("a").unwrap().ready;
    assert!(copies <= 1, "{copies} copies in `a` after one recv_timeout ({:?})", started.elapsed());
}

/// `Headers::encode` documents `InvalidProperty` for tables "nested deeper
/// than MAX_DEPTH", but does not check: wrapping a valid depth-16 table once
/// more encodes, publishes, and the consumer then reads none of the
/// message's properties (parse refuses the whole property block).
#[test]
fn headers_nested_past_the_limit_are_refused_at_publish() {
    use shmq::Headers;
    let mut bytes = Headers::encode(&[("leaf", HeaderValue::Int(1))]).unwrap();
    for _ in 0..shmq::MAX_HEADER_DEPTH {
        bytes = Headers::encode(&[("t", HeaderValue::Table(Headers::from_encoded(&bytes).unwrap()))]).unwrap();
    }
    let deepest_valid = Headers::from_encoded(&bytes).expect("depth 16 is valid");
    let too_deep = Headers::encode(&[("t", HeaderValue::Table(deepest_valid))]);
    let t = TempNs::new("dlr-depth");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let headers = [("t", HeaderValue::Table(deepest_valid))];
    let published = t.ns.publisher().publish("", "q", &Properties::new().message_id("m-1").headers(&headers), b"x");
    if too_deep.is_ok() && published.is_ok() {
        let c = t.ns.consumer("q", manual()).unwrap();
        let d = c.try_recv().unwrap();
        assert_eq!(d.properties().message_id, Some("m-1"), "published fine, every property lost on delivery");
    }
}
