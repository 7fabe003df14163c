//! The async API (`shmq::aio`): wake-ups across processes, no thread per
//! consumer, no spinning while idle, awaiting room, routed publishes that
//! resume without duplicates, and a consumer killed mid-stream.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{cpu_time, TempNs};
use futures_lite::StreamExt;
use shmq::aio::{AsyncConsumer, AsyncProducer, AsyncPublisher};
use shmq::{AckMode, ConsumerOptions, ExchangeKind, ExchangeOptions, Overflow, Properties, QueueOptions, RecvError};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap()
}

fn manual() -> ConsumerOptions {
    ConsumerOptions { ack_mode: AckMode::Manual, ..Default::default() }
}

fn bounded_block(max: u64) -> QueueOptions {
    QueueOptions { max_length: Some(max), overflow: Some(Overflow::Block), ..Default::default() }
}

/// This process's threads whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// A runtime whose worker threads are named `name`, so that the CPU they
/// use can be told from other tests'.
fn named_runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name(name).enable_time().build().unwrap()
}

#[test]
fn futures_are_send_so_tasks_can_move_between_threads() {
    fn send<T: Send>(_: &T) {}
    let ns = TempNs::new("aio-send");
    ns.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let mut consumer = AsyncConsumer::new(ns.ns.consumer("q", ConsumerOptions::default()).unwrap());
    send(&consumer.recv_timeout(Duration::ZERO));
    let mut producer = AsyncProducer::new(ns.ns.producer("q").unwrap());
    send(&producer.publish(b"x"));
    let mut publisher = AsyncPublisher::new(ns.ns.publisher());
    let properties = Properties::new();
    send(&publisher.publish("", "q", &properties, b"x"));
    send(&consumer.into_stream());
}

#[test]
fn a_sleeping_task_is_woken_by_a_publisher_in_another_process() {
    let ns = TempNs::new("aio-xproc");
    ns.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let consumer = ns.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let rt = runtime();
    let bodies = rt.block_on(async move {
        let mut consumer = AsyncConsumer::new(consumer);
        // The publisher starts after the task is asleep.
        let mut child = ns.shmq().args(["publish", "q", "--count", "3", "from-child"]).stdout(Stdio::null()).spawn().unwrap();
        let mut bodies = Vec::new();
        for _ in 0..3 {
            let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("woken").unwrap();
            bodies.push(String::from_utf8(delivery.body().to_vec()).unwrap());
        }
        assert!(child.wait().unwrap().success());
        bodies
    });
    assert_eq!(bodies.len(), 3);
    assert!(bodies.iter().all(|b| b.starts_with("from-child")), "{bodies:?}");
}

#[test]
fn three_hundred_idle_consumers_share_three_reactor_threads_and_do_not_spin() {
    let ns = TempNs::new("aio-idle");
    let rt = named_runtime("idle-test");
    let mut tasks = Vec::new();
    for i in 0..300 {
        let name = format!("q{i}");
        ns.ns.declare_queue(&name, &QueueOptions::default()).unwrap();
        let consumer = ns.ns.consumer(&name, ConsumerOptions::default()).unwrap();
        tasks.push(rt.spawn(async move {
            let mut consumer = AsyncConsumer::new(consumer);
            let delivery = consumer.recv().await.unwrap();
            delivery.body().to_vec()
        }));
    }
    std::thread::sleep(Duration::from_millis(300));
    // 300 sleeping tasks need ceil(300 / 127) = 3 reactor threads, not 300;
    // the other tests in this process may have needed one more.
    let reactors = threads_named("shmq-aio");
    assert!((3..=4).contains(&reactors), "{reactors} reactor threads");
    let threads = ["idle-test", "shmq-aio"];
    let cpu = cpu_time(&threads);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_time(&threads) - cpu;
    eprintln!("300 idle async consumers: {used:?} of CPU in 1 s");
    // Spinning on 2 cores would burn up to 2 s of CPU in this second; 300
    // tasks waking every 50 ms to sweep for dead peers cost a few ms.
    assert!(used < Duration::from_millis(400), "300 idle consumers used {used:?} of CPU in 1 s");
    let mut producer = ns.ns.publisher();
    for i in 0..300 {
        producer.publish("", &format!("q{i}"), &Properties::new(), format!("m{i}").as_bytes()).unwrap();
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(rt.block_on(task).unwrap(), format!("m{i}").as_bytes());
    }
}

#[test]
fn a_producer_awaits_room_in_a_full_block_queue_without_spinning() {
    let ns = TempNs::new("aio-room");
    ns.ns.declare_queue("q", &bounded_block(2)).unwrap();
    let rt = named_runtime("room-test");
    let producer = ns.ns.producer("q").unwrap();
    let task = rt.spawn(async move {
        let mut producer = AsyncProducer::new(producer);
        for i in 0..10u8 {
            producer.publish(&[i]).await.unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(!task.is_finished(), "the producer waits: the queue holds 2");
    assert_eq!(ns.ns.queue_stats("q").unwrap().ready, 2);
    let threads = ["room-test", "shmq-aio"];
    let cpu = cpu_time(&threads);
    std::thread::sleep(Duration::from_millis(500));
    let used = cpu_time(&threads) - cpu;
    assert!(used < Duration::from_millis(200), "a blocked async producer used {used:?} of CPU in 0.5 s");
    let consumer = ns.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let got: Vec<u8> = (0..10).map(|_| consumer.recv_timeout(Duration::from_secs(10)).unwrap().body()[0]).collect();
    assert_eq!(got, (0..10).collect::<Vec<u8>>());
    rt.block_on(task).unwrap();
}

#[test]
fn a_routed_publish_waits_at_the_full_queue_and_never_copies_twice() {
    let ns = TempNs::new("aio-fanout");
    ns.ns.declare_exchange("fan", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
    ns.ns.declare_queue("open", &QueueOptions::default()).unwrap();
    ns.ns.declare_queue("tight", &bounded_block(1)).unwrap();
    for q in ["open", "tight"] {
        ns.ns.bind_queue(q, "fan", "", &[]).unwrap();
    }
    let rt = runtime();
    let publisher = ns.ns.publisher();
    let task = rt.spawn(async move {
        let mut publisher = AsyncPublisher::new(publisher);
        let mut routed = Vec::new();
        for body in [b"1", b"2", b"3"] {
            routed.push(publisher.publish("fan", "", &Properties::new(), body).await.unwrap());
        }
        routed
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!task.is_finished());
    let tight = ns.ns.consumer("tight", ConsumerOptions::default()).unwrap();
    let mut from_tight = Vec::new();
    while from_tight.len() < 3 {
        from_tight.push(tight.recv_timeout(Duration::from_secs(10)).unwrap().body().to_vec());
    }
    let routed = rt.block_on(task).unwrap();
    assert!(routed.iter().all(|r| r.queues == 2 && r.full == 0), "{routed:?}");
    let open = ns.ns.consumer("open", ConsumerOptions::default()).unwrap();
    let mut from_open = Vec::new();
    while let Ok(d) = open.try_recv() {
        from_open.push(d.body().to_vec());
    }
    let expected: Vec<Vec<u8>> = vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()];
    assert_eq!(from_open, expected, "each message once in the queue that had room");
    assert_eq!(from_tight, expected);
}

#[test]
fn a_routed_publish_that_times_out_counts_the_full_queue() {
    let ns = TempNs::new("aio-fanout-timeout");
    ns.ns.declare_exchange("fan", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
    ns.ns.declare_queue("tight", &bounded_block(1)).unwrap();
    ns.ns.declare_queue("open", &QueueOptions::default()).unwrap();
    for q in ["tight", "open"] {
        ns.ns.bind_queue(q, "fan", "", &[]).unwrap();
    }
    let mut publisher = AsyncPublisher::new(ns.ns.publisher());
    publisher.set_publish_timeout(Some(Duration::from_millis(50)));
    let rt = runtime();
    let routed: Vec<_> = rt.block_on(async {
        let mut routed = Vec::new();
        for body in [b"1", b"2"] {
            routed.push(publisher.publish("fan", "", &Properties::new(), body).await.unwrap());
        }
        routed
    });
    assert_eq!(routed, vec![shmq::Routed { queues: 2, full: 0 }, shmq::Routed { queues: 1, full: 1 }]);
    assert_eq!(ns.ns.queue_stats("open").unwrap().ready, 2);
    assert_eq!(ns.ns.queue_stats("tight").unwrap().ready, 1);
}

#[test]
fn a_stream_delivers_in_order_acks_and_ends_when_the_queue_is_deleted() {
    let ns = TempNs::new("aio-stream");
    ns.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let properties = Properties { content_type: Some("text/plain"), priority: Some(3), ..Properties::new() };
    let mut producer = ns.ns.producer("q").unwrap();
    for i in 0..100u32 {
        producer.publish_with(&properties, &i.to_le_bytes()).unwrap();
    }
    let mut messages = AsyncConsumer::new(ns.ns.consumer("q", manual()).unwrap()).into_stream();
    let rt = runtime();
    rt.block_on(async {
        for i in 0..100u32 {
            let message = messages.next().await.unwrap().unwrap();
            assert_eq!(message.body, i.to_le_bytes());
            assert_eq!(message.properties().unwrap().content_type, Some("text/plain"));
            assert!(!message.redelivered);
            if i % 10 == 9 {
                assert_eq!(messages.ack_multiple(message.tag).unwrap(), 10);
            }
        }
    });
    assert_eq!(ns.ns.queue_stats("q").unwrap().unacked, 0);
    ns.ns.delete_queue("q").unwrap();
    let tail: Vec<_> = rt.block_on(async {
        let mut tail = Vec::new();
        while let Some(item) = tokio::time::timeout(Duration::from_secs(10), messages.next()).await.unwrap() {
            tail.push(item);
        }
        tail
    });
    assert_eq!(tail, vec![Err(RecvError::QueueDeleted)]);
}

#[test]
fn an_async_consumer_killed_mid_stream_loses_nothing() {
    // The consumer process takes messages with manual acks and is killed
    // with SIGKILL while it holds some; an async consumer here then gets
    // every message, the unacked ones flagged redelivered.
    let ns = TempNs::new("aio-kill");
    ns.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let mut producer = ns.ns.producer("q").unwrap();
    for i in 0..1000u32 {
        producer.publish(&i.to_le_bytes()).unwrap();
    }
    let mut child = ns
        .shmq()
        .args(["consume", "q", "--manual-ack", "--prefetch", "50", "--work-ms", "100000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ns.ns.queue_stats("q").unwrap().unacked == 0 {
        assert!(Instant::now() < deadline, "the child never took a message");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut consumer = AsyncConsumer::new(ns.ns.consumer("q", manual()).unwrap());
    let rt = runtime();
    let (seen, redelivered) = rt.block_on(async {
        let mut seen = vec![false; 1000];
        let mut redelivered = 0;
        for _ in 0..1000 {
            let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("everything comes back").unwrap();
            let i = u32::from_le_bytes(delivery.body().try_into().unwrap()) as usize;
            assert!(!seen[i], "message {i} twice");
            seen[i] = true;
            redelivered += usize::from(delivery.redelivered());
            delivery.ack().unwrap();
        }
        (seen, redelivered)
    });
    assert!(seen.iter().all(|s| *s));
    assert!(redelivered > 0, "the killed consumer's unacked messages come back flagged");
}

#[test]
fn the_async_handles_keep_the_publish_timeout_set_before_wrapping() {
    // Set on the blocking handle, then wrapped: the timeout is not dropped.
    let ns = TempNs::new("aio-timeout-kept");
    ns.ns.declare_queue("q", &bounded_block(1)).unwrap();
    let mut producer = ns.ns.producer("q").unwrap();
    producer.set_publish_timeout(Some(Duration::from_millis(20)));
    let mut producer = AsyncProducer::new(producer);
    let mut publisher = ns.ns.publisher();
    publisher.set_publish_timeout(Some(Duration::from_millis(20)));
    let mut publisher = AsyncPublisher::new(publisher);
    let rt = runtime();
    rt.block_on(async {
        producer.publish(b"1").await.unwrap();
        assert_eq!(producer.publish(b"2").await, Err(shmq::PublishError::Timeout));
        let routed = publisher.publish("", "q", &Properties::new(), b"3").await.unwrap();
        assert_eq!(routed, shmq::Routed { queues: 0, full: 1 });
    });
}
