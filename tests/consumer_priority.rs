//! Consumer priorities (`x-priority`): in one process, a higher-priority
//! consumer takes everything while it has prefetch room and lower ones get
//! the rest once it is full; across processes, a high-priority consumer
//! process killed with kill -9 stops holding the others back once it is
//! swept, and nothing is lost. The pika side, compared with RabbitMQ:
//! python/tests/test_consumer_priority_vs_rabbitmq.py.

mod common;

use std::time::{Duration, Instant};

use common::{kill, TempNs};
use shmq::{ConsumerOptions, QueueOptions, RecvError};

#[test]
fn the_highest_consumer_with_room_gets_the_message() {
    let t = TempNs::new("cprio");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let low = t.ns.consumer("q", ConsumerOptions::default().manual_ack().priority(-1)).unwrap();
    let plain = t.ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(1)).unwrap();
    let high = t.ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(2).priority(7)).unwrap();
    t.ns.producer("q").unwrap().publish_batch(&[b"a", b"b", b"c", b"d", b"e"]).unwrap();
    // The others defer while `high` has room, registered last or not.
    assert_eq!(low.try_recv().err(), Some(RecvError::Empty));
    assert_eq!(plain.drain(10, |_| {}).unwrap(), 0);
    let a = high.try_recv().unwrap();
    let b = high.try_recv().unwrap();
    assert_eq!((a.body(), b.body()), (&b"a"[..], &b"b"[..]));
    assert_eq!(high.try_recv().err(), Some(RecvError::PrefetchFull(2)));
    // `high` is full: priority 0 next, then -1.
    assert_eq!(low.try_recv().err(), Some(RecvError::Empty));
    let c = plain.try_recv().unwrap();
    assert_eq!(c.body(), b"c");
    assert_eq!(low.try_recv().unwrap().body(), b"d");
    // `high` has room again once it acks.
    a.ack().unwrap();
    assert_eq!(low.try_recv().err(), Some(RecvError::Empty));
    assert_eq!(high.try_recv().unwrap().body(), b"e");
    // A `basic.get` is no consumer: never held back.
    t.ns.producer("q").unwrap().publish(b"f").unwrap();
    let getter = t.ns.consumer("q", ConsumerOptions::default().for_get()).unwrap();
    assert_eq!(getter.try_recv().unwrap().body(), b"f");
    drop((b, c));
}

#[test]
fn a_killed_high_priority_consumer_stops_holding_others_back() {
    let t = TempNs::in_shm("cprio-kill");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let mut high = t.spawn(&["consume", "q", "--manual-ack", "--priority", "10", "--work-ms", "60000", "--quiet"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.ns.queue_stats("q").unwrap().consumers == 0 {
        assert!(Instant::now() < deadline, "the high-priority consumer never attached");
        std::thread::sleep(Duration::from_millis(10));
    }
    let low = t.ns.consumer("q", ConsumerOptions::default().manual_ack().priority(1)).unwrap();
    t.ns.producer("q").unwrap().publish_batch(&[b"1", b"2", b"3"]).unwrap();
    // The high one takes the first and works on it (unlimited prefetch:
    // it could take more, so the low one leaves them).
    while t.ns.queue_stats("q").unwrap().unacked == 0 {
        assert!(Instant::now() < deadline, "the high-priority consumer never took a message");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(low.try_recv().err(), Some(RecvError::Empty));
    kill(&mut high);
    t.run(&["gc"]);
    let mut got: Vec<(Vec<u8>, bool)> = Vec::new();
    while let Ok(d) = low.recv_timeout(Duration::from_millis(500)) {
        got.push((d.body().to_vec(), d.redelivered()));
        d.ack().unwrap();
    }
    got.sort();
    assert_eq!(got, [(b"1".to_vec(), true), (b"2".to_vec(), false), (b"3".to_vec(), false)]);
}
