//! Adversarial review of the async API (`shmq::aio`, src/aio/*).
//!
//! Each test says what it proves. The reactor also wakes every sleeper every
//! `SWEEP_INTERVAL` (200 ms) whatever happens, so a *lost* wake-up shows as
//! a delivery that takes about 200 ms instead of well under it: the latency
//! bounds below (50-100 ms) are what tells a lost wake from a working one.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cpu_time, TempNs};
use futures_lite::StreamExt;
use shmq::aio::{AsyncConsumer, AsyncProducer, AsyncPublisher};
use shmq::{AckMode, ConsumerOptions, ExchangeKind, ExchangeOptions, Overflow, Properties, QueueOptions, RecvError};

/// These tests time wake-ups against the 200 ms sweep (a lost wake-up
/// hides behind it), so they run one at a time, not competing with each
/// other for the 2 cores.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap()
}

fn manual(prefetch: u32) -> ConsumerOptions {
    ConsumerOptions { ack_mode: AckMode::Manual, prefetch, ..Default::default() }
}

fn prio(p: u8) -> Properties<'static> {
    Properties { priority: Some(p), ..Properties::new() }
}

// ---------------------------------------------------------------------------
// DEFECT: an async publish waiting at the namespace's memory budget retries
// only every 200 ms (SWEEP_INTERVAL), where a blocking one retries every
// 10 ms (BUDGET_WAIT_SLICE, src/queue/producer.rs).
//
// Room under the budget comes back when a ring of *any* queue (or the head
// ring of this one) is retired, and nothing notifies the not-full word of
// the ring the publisher is stuck at: the blocking publish therefore sleeps
// in 10 ms slices. `never_wait()` (src/aio/producer.rs) throws away the
// `WaitReason` its hook is given, and `AsyncProducer::publish_with` /
// `AsyncPublisher::publish_routed` always sleep `sleep_until` =
// SWEEP_INTERVAL, so each budget stall costs up to 200 ms. For a priority
// queue it is worse still: `Producer::arm_not_full` arms the level-0 ring
// while the message waits in its level's ring (whose not-full word the
// consumer does notify), so even the wake that exists never arrives.
// Fix: record the reason in the hook and sleep at most BUDGET_WAIT_SLICE
// for `MemoryBudget`; arm the not-full word of the producer (level) that was
// interrupted.
//
// The test: a namespace at its 24 MiB budget, a consumer draining the queue
// as fast as it can, and 3000 more 4 KiB messages published, once with the
// blocking producer and once with the async one. The async one must not be
// several times slower. For a plain queue it holds (the queue's own consumer
// notifies the ring the producer sleeps on); for a priority level it fails
// (~400 ms against ~8 ms: two stalls of 200 ms each).
// ---------------------------------------------------------------------------
fn remove_dir(dir: std::path::PathBuf) -> impl Drop {
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    Remove(dir)
}

/// Seconds to publish `n` 4 KiB messages (priority `priority`) into a queue
/// of a namespace at its memory budget that a consumer drains meanwhile.
fn publish_at_the_budget(tag: &str, use_async: bool, priority: Option<u8>, n: usize) -> Duration {
    publish_at_the_budget_of(tag, use_async, priority, n, false)
}

/// As `publish_at_the_budget`; with `other`, the budget is held by another
/// queue ("hog"), which the consumer drains, and the publisher's queue is
/// consumed by nobody.
fn publish_at_the_budget_of(tag: &str, use_async: bool, priority: Option<u8>, n: usize, other: bool) -> Duration {
    let dir = std::path::PathBuf::from(format!("/dev/shm/shmq-test-{tag}-{}-{}", std::process::id(), use_async));
    let _cleanup = remove_dir(dir.clone());
    let ns = shmq::Namespace::open_dir_with(&dir, shmq::NamespaceOptions::default().memory_budget(24 << 20)).unwrap();
    let mut options = QueueOptions::default().capacity_bytes(1 << 20);
    if priority.is_some() {
        options = options.max_priority(5);
    }
    ns.declare_queue("q", &options).unwrap();
    let full = if other { "hog" } else { "q" };
    if other {
        ns.declare_queue("hog", &QueueOptions::default().capacity_bytes(1 << 20)).unwrap();
    }
    let properties = Properties { priority, ..Properties::new() };
    let body = vec![7u8; 4096];
    let mut filler = ns.producer(full).unwrap();
    filler.set_publish_timeout(Some(Duration::from_millis(100)));
    let mut filled = 0usize;
    loop {
        match filler.publish_with(&properties, &body) {
            Ok(()) => filled += 1,
            Err(shmq::PublishError::Timeout) => break,
            Err(e) => panic!("{e:?}"),
        }
        assert!(filled < 100_000, "the budget never stopped the filler");
    }
    // A producer attached to a ring keeps it (and its memory) alive.
    drop(filler);
    let total = if other { filled } else { filled + n };
    let drainer = {
        let ns = ns.clone();
        std::thread::spawn(move || {
            let consumer = ns.consumer(full, ConsumerOptions::default()).unwrap();
            for _ in 0..total {
                consumer.recv_timeout(Duration::from_secs(60)).unwrap();
            }
            // Stay a little, polling, so that drained rings retire.
            let until = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < until {
                let _ = consumer.recv_timeout(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    if use_async {
        let mut producer = AsyncProducer::new(ns.producer("q").unwrap());
        let rt = runtime();
        rt.block_on(async {
            for _ in 0..n {
                producer.publish_with(&properties, &body).await.unwrap();
            }
        });
    } else {
        let mut producer = ns.producer("q").unwrap();
        for _ in 0..n {
            producer.publish_with(&properties, &body).unwrap();
        }
    }
    let took = started.elapsed();
    drainer.join().unwrap();
    took
}

#[test]
fn an_async_producer_at_the_memory_budget_is_not_much_slower_than_a_blocking_one() {
    let _serial = serial();
    let blocking = publish_at_the_budget("aio-budget", false, None, 3000);
    let asynchronous = publish_at_the_budget("aio-budget", true, None, 3000);
    eprintln!("3000 x 4 KiB at the budget: blocking {blocking:?}, async {asynchronous:?}");
    assert!(
        asynchronous < blocking * 3 + Duration::from_millis(150),
        "async {asynchronous:?} vs blocking {blocking:?}: each budget stall sleeps until the 200 ms sweep"
    );
}

#[test]
fn an_async_producer_at_the_memory_budget_on_a_priority_level_is_not_much_slower_than_a_blocking_one() {
    let _serial = serial();
    let blocking = publish_at_the_budget("aio-budget-prio", false, Some(3), 3000);
    let asynchronous = publish_at_the_budget("aio-budget-prio", true, Some(3), 3000);
    eprintln!("3000 x 4 KiB priority 3 at the budget: blocking {blocking:?}, async {asynchronous:?}");
    assert!(
        asynchronous < blocking * 3 + Duration::from_millis(150),
        "async {asynchronous:?} vs blocking {blocking:?}: the level's wake never reaches the sleeper (armed on level 0)"
    );
}

// HOLDS: the consumer side of priority queues: a message published at a
// priority level wakes an async consumer asleep on the queue at once (the
// level producer's `wake` notifies the first segment, where it sleeps).
#[test]
fn a_priority_level_publish_wakes_a_sleeping_async_consumer_promptly() {
    let _serial = serial();
    let t = TempNs::new("aio-prio-wake");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(9)).unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let rt = runtime();
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let task = rt.spawn(async move {
        let mut consumer = AsyncConsumer::new(consumer);
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            let d = consumer.recv().await.unwrap();
            let sent: Instant = rx.recv().unwrap();
            worst = worst.max(sent.elapsed());
            drop(d);
        }
        worst
    });
    let mut producer = t.ns.producer("q").unwrap();
    for i in 0..20u8 {
        std::thread::sleep(Duration::from_millis(20));
        tx.send(Instant::now()).unwrap();
        producer.publish_with(&prio(1 + i % 9), &[i]).unwrap();
    }
    let worst = rt.block_on(task).unwrap();
    eprintln!("priority wake: worst {worst:?}");
    assert!(worst < Duration::from_millis(120), "a priority publish woke the async consumer only after {worst:?}");
}

// ---------------------------------------------------------------------------
// Many sleepers, cancellation, slot reuse: 300 queues (3 reactor shards),
// each with a task that repeatedly gives up (recv_timeout of 1-15 ms, and
// tokio::time::timeout dropping a sleeping recv), so slots are freed and
// reused all the time, while a publisher sends one message to each queue in
// turn. Every message must arrive once, and well before the 200 ms sweep
// (a lost wake would hide behind the sweep otherwise).
// ---------------------------------------------------------------------------
#[test]
fn three_hundred_churning_sleepers_lose_no_wake_up() {
    let _serial = serial();
    let t = TempNs::new("aio-churn");
    const Q: usize = 300;
    let rt = runtime();
    let late = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let (stamps_tx, stamps_rx): (Vec<_>, Vec<_>) = (0..Q).map(|_| std::sync::mpsc::channel::<Instant>()).unzip();
    let mut stamps_rx: Vec<_> = stamps_rx.into_iter().map(Some).collect();
    for (i, rx) in stamps_rx.iter_mut().enumerate() {
        let name = format!("q{i}");
        t.ns.declare_queue(&name, &QueueOptions::default()).unwrap();
        let consumer = t.ns.consumer(&name, ConsumerOptions::default()).unwrap();
        let rx = rx.take().unwrap();
        let late = late.clone();
        tasks.push(rt.spawn(async move {
            let mut consumer = AsyncConsumer::new(consumer);
            let mut got = Vec::new();
            let mut n = i as u64;
            while got.len() < 3 {
                n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let ms = 1 + (n >> 33) % 15;
                // Alternate the two ways of giving up mid-sleep.
                let body = if n & (1 << 20) == 0 {
                    match consumer.recv_timeout(Duration::from_millis(ms)).await {
                        Ok(d) => Some(d.body().to_vec()),
                        Err(RecvError::Timeout) => None,
                        Err(e) => panic!("{e:?}"),
                    }
                } else {
                    match tokio::time::timeout(Duration::from_millis(ms), consumer.recv()).await {
                        Ok(Ok(d)) => Some(d.body().to_vec()),
                        Ok(Err(e)) => panic!("{e:?}"),
                        Err(_) => None,
                    }
                };
                if let Some(body) = body {
                    let sent: Instant = rx.recv().unwrap();
                    // A retry loop of 1-15 ms timeouts picks a message up
                    // within ~15 ms even without a wake; generous bound.
                    if sent.elapsed() > Duration::from_millis(150) {
                        late.fetch_add(1, Ordering::Relaxed);
                    }
                    got.push(body);
                }
            }
            got
        }));
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut publisher = t.ns.publisher();
    for round in 0..3u8 {
        for (i, tx) in stamps_tx.iter().enumerate() {
            tx.send(Instant::now()).unwrap();
            publisher.publish("", &format!("q{i}"), &Properties::new(), &[round]).unwrap();
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    for task in tasks {
        let got = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), task).await.expect("a task never got its messages") })
            .unwrap();
        assert_eq!(got, vec![vec![0], vec![1], vec![2]]);
    }
    eprintln!("late deliveries: {}", late.load(Ordering::Relaxed));
}

// Pure sleepers (no timeouts), over 254 of them (3 shards), several tasks per
// queue word, woken in bursts: the latency of every wake must stay far below
// the 200 ms sweep.
#[test]
fn over_254_sleepers_on_shared_words_are_all_woken_promptly() {
    let _serial = serial();
    let t = TempNs::new("aio-many");
    const Q: usize = 100;
    const PER: usize = 3; // 300 sleepers, three on each queue's word
    let rt = runtime();
    for i in 0..Q {
        t.ns.declare_queue(&format!("q{i}"), &QueueOptions::default()).unwrap();
    }
    let sent_at = Arc::new(std::sync::Mutex::new(vec![None::<Instant>; Q]));
    let mut tasks = Vec::new();
    for i in 0..Q {
        for _ in 0..PER {
            let consumer = t.ns.consumer(&format!("q{i}"), ConsumerOptions::default()).unwrap();
            let sent_at = sent_at.clone();
            tasks.push(rt.spawn(async move {
                let mut consumer = AsyncConsumer::new(consumer);
                let d = consumer.recv().await.unwrap();
                let _ = d.body();
                drop(d);
                let sent = sent_at.lock().unwrap()[i].unwrap();
                sent.elapsed()
            }));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut publisher = t.ns.publisher();
    for i in 0..Q {
        sent_at.lock().unwrap()[i] = Some(Instant::now());
        publisher.publish_batch("", &format!("q{i}"), &Properties::new(), &[b"a", b"b", b"c"]).unwrap();
    }
    let mut worst = Duration::ZERO;
    for task in tasks {
        let waited =
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), task).await.expect("a sleeper never woke") }).unwrap();
        worst = worst.max(waited);
    }
    eprintln!("300 sleepers: worst wake {worst:?}");
    assert!(worst < Duration::from_millis(150), "a sleeper woke only after {worst:?}: a lost wake-up caught by the sweep");
}

// ---------------------------------------------------------------------------
// A queue deleted under a sleeping task: the task must end with
// QueueDeleted (not hang, not crash on an unmapped word), also after the
// namespace handle is gone.
// ---------------------------------------------------------------------------
#[test]
fn a_queue_deleted_under_sleeping_tasks_ends_them_and_nothing_is_unmapped_under_the_reactor() {
    let _serial = serial();
    let t = TempNs::new("aio-delete");
    let rt = runtime();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let name = format!("q{i}");
        t.ns.declare_queue(&name, &QueueOptions::default()).unwrap();
        let consumer = t.ns.consumer(&name, ConsumerOptions::default()).unwrap();
        tasks.push(rt.spawn(async move {
            let mut consumer = AsyncConsumer::new(consumer);
            let result = consumer.recv().await.map(|d| d.body().to_vec());
            result
        }));
        let consumer = t.ns.consumer(&name, manual(0)).unwrap();
        tasks.push(rt.spawn(async move {
            let mut messages = AsyncConsumer::new(consumer).into_stream();
            let mut items = Vec::new();
            while let Some(item) = messages.next().await {
                items.push(item);
            }
            assert_eq!(items, vec![Err(RecvError::QueueDeleted)]);
            Err(RecvError::QueueDeleted)
        }));
    }
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    for i in 0..10 {
        t.ns.delete_queue(&format!("q{i}")).unwrap();
    }
    // A new queue with a deleted one's name: a fresh mapping, maybe at the
    // same address.
    t.ns.declare_queue("q0", &QueueOptions::default()).unwrap();
    for task in tasks {
        let result = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), task).await.expect("a task slept on past a delete") })
            .unwrap();
        assert_eq!(result, Err(RecvError::QueueDeleted));
    }
    eprintln!("delete ended 20 sleepers in {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(1));
}

// ---------------------------------------------------------------------------
// AsyncPublisher fan-out: a block queue that is deleted while the publish
// waits for room in it. No queue may get the message twice, the open queue
// gets it exactly once, and the publish ends.
// ---------------------------------------------------------------------------
#[test]
fn a_routed_publish_waiting_at_a_queue_that_is_deleted_ends_without_duplicates() {
    let _serial = serial();
    let t = TempNs::new("aio-fan-delete");
    t.ns.declare_exchange("fan", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
    t.ns.declare_queue("a-open", &QueueOptions::default()).unwrap();
    t.ns.declare_queue("b-tight", &QueueOptions::default().max_length(1).overflow(Overflow::Block)).unwrap();
    t.ns.declare_queue("c-open", &QueueOptions::default()).unwrap();
    for q in ["a-open", "b-tight", "c-open"] {
        t.ns.bind_queue(q, "fan", "", &[]).unwrap();
    }
    let rt = runtime();
    let publisher = t.ns.publisher();
    let task = rt.spawn(async move {
        let mut publisher = AsyncPublisher::new(publisher);
        let mut routed = Vec::new();
        for body in [b"1", b"2"] {
            routed.push(publisher.publish("fan", "", &Properties::new(), body).await);
        }
        routed
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!task.is_finished(), "message 2 waits at b-tight");
    t.ns.delete_queue("b-tight").unwrap();
    let routed = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), task).await.expect("the publish hung at a deleted queue") })
        .unwrap();
    let routed: Vec<_> = routed.into_iter().map(Result::unwrap).collect();
    assert_eq!(routed[0], shmq::Routed { queues: 3, full: 0 });
    assert_eq!(routed[1].full, 0, "a deleted queue is not full: {routed:?}");
    for q in ["a-open", "c-open"] {
        let c = t.ns.consumer(q, ConsumerOptions::default()).unwrap();
        let mut bodies = Vec::new();
        while let Ok(d) = c.try_recv() {
            bodies.push(d.body().to_vec());
        }
        assert_eq!(bodies, vec![b"1".to_vec(), b"2".to_vec()], "{q}: each message once");
    }
}

// ---------------------------------------------------------------------------
// Single active consumer: an async consumer standing by takes over when the
// active one is dropped, and (active killed with kill -9) gets its messages
// back within about a second, without spinning meanwhile.
// ---------------------------------------------------------------------------
#[test]
fn an_async_standby_takes_over_from_a_dropped_active_consumer() {
    let _serial = serial();
    let t = TempNs::new("aio-sac");
    t.ns.declare_queue("q", &QueueOptions::default().single_active_consumer(true)).unwrap();
    let active = t.ns.consumer("q", manual(0)).unwrap();
    let standby = t.ns.consumer("q", manual(0)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    for i in 0..5u8 {
        producer.publish(&[i]).unwrap();
    }
    // The active one takes two and holds them.
    let held: Vec<_> = (0..2).map(|_| active.try_recv().unwrap().body()[0]).collect();
    assert_eq!(held, vec![0, 1]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("sac-test").enable_time().build().unwrap();
    let task = rt.spawn(async move {
        let mut standby = AsyncConsumer::new(standby);
        let mut got = Vec::new();
        let mut first_at = None;
        while got.len() < 5 {
            let d = standby.recv().await.unwrap();
            first_at.get_or_insert_with(Instant::now);
            got.push((d.body()[0], d.redelivered()));
            d.ack().unwrap();
        }
        (got, first_at.unwrap())
    });
    std::thread::sleep(Duration::from_millis(300));
    let cpu = cpu_time(&["sac-test", "shmq-aio"]);
    std::thread::sleep(Duration::from_millis(500));
    let used = cpu_time(&["sac-test", "shmq-aio"]) - cpu;
    assert!(used < Duration::from_millis(150), "a standing-by async consumer used {used:?} of CPU in 0.5 s");
    assert!(!task.is_finished(), "the standby must not receive while the active consumer is alive");
    let dropped_at = Instant::now();
    drop(active);
    let (mut got, first_at) =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await.expect("the standby never took over") }).unwrap();
    let handover = first_at - dropped_at;
    eprintln!("SAC handover to an async standby: {handover:?}");
    got.sort();
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert!(got[0].1 && got[1].1, "the dropped consumer's messages come back redelivered: {got:?}");
    assert!(handover < Duration::from_millis(1000), "handover took {handover:?}");
}

#[test]
fn an_async_standby_gets_a_killed_active_consumers_messages_within_a_second() {
    let _serial = serial();
    let t = TempNs::new("aio-sac-kill");
    t.ns.declare_queue("q", &QueueOptions::default().single_active_consumer(true)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    for i in 0..100u32 {
        producer.publish(&i.to_le_bytes()).unwrap();
    }
    let mut child = t
        .shmq()
        .args(["consume", "q", "--manual-ack", "--prefetch", "10", "--work-ms", "100000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.ns.queue_stats("q").unwrap().unacked == 0 {
        assert!(Instant::now() < deadline, "the child never took a message");
        std::thread::sleep(Duration::from_millis(5));
    }
    let standby = t.ns.consumer("q", manual(0)).unwrap();
    let rt = runtime();
    let task = rt.spawn(async move {
        let mut standby = AsyncConsumer::new(standby);
        let mut seen = std::collections::BTreeSet::new();
        let mut first_at = None;
        while seen.len() < 100 {
            let d = standby.recv().await.unwrap();
            first_at.get_or_insert_with(Instant::now);
            assert!(seen.insert(u32::from_le_bytes(d.body().try_into().unwrap())), "a message twice");
            d.ack().unwrap();
        }
        first_at.unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!task.is_finished());
    let killed_at = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    let first_at = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await.expect("never recovered") }).unwrap();
    let took = first_at - killed_at;
    eprintln!("kill -9 of the active consumer: the async standby got going after {took:?}");
    assert!(took < Duration::from_millis(1500), "recovery took {took:?}");
}

// ---------------------------------------------------------------------------
// Busy loops: a stream whose consumer is at its prefetch limit. The blocking
// API returns PrefetchFull; the stream yields it as an item. It must not
// spin the reactor; and an idle AsyncProducer/consumer pair costs nothing.
// ---------------------------------------------------------------------------
#[test]
fn an_idle_async_consumer_on_a_priority_queue_does_not_spin() {
    let _serial = serial();
    let t = TempNs::new("aio-prio-idle");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(10)).unwrap();
    // Open every level once, so the consumer has levels attached.
    let mut producer = t.ns.producer("q").unwrap();
    for p in 0..=10u8 {
        producer.publish_with(&prio(p), &[p]).unwrap();
    }
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("prio-idle").enable_time().build().unwrap();
    let task = rt.spawn(async move {
        let mut consumer = AsyncConsumer::new(consumer);
        let mut got = Vec::new();
        while got.len() < 12 {
            got.push(consumer.recv().await.unwrap().body()[0]);
        }
        got
    });
    std::thread::sleep(Duration::from_millis(300));
    let cpu = cpu_time(&["prio-idle", "shmq-aio"]);
    std::thread::sleep(Duration::from_millis(1000));
    let used = cpu_time(&["prio-idle", "shmq-aio"]) - cpu;
    assert!(used < Duration::from_millis(200), "an idle async consumer of a priority queue used {used:?} in 1 s");
    let sent = Instant::now();
    producer.publish_with(&prio(7), &[77]).unwrap();
    let got = rt.block_on(task).unwrap();
    assert!(sent.elapsed() < Duration::from_millis(150), "woken after {:?}", sent.elapsed());
    assert_eq!(got, vec![10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 77]);
}

// ---------------------------------------------------------------------------
// A queue that grows into a second ring while an async consumer sleeps on the
// first (the first ring is full of the consumer's own unacked messages, so
// the producer links a new ring). The publish into the new ring must wake
// the task, not the 200 ms sweep.
// ---------------------------------------------------------------------------
#[test]
fn a_publish_into_a_grown_ring_wakes_a_consumer_asleep_on_the_old_one() {
    let _serial = serial();
    let t = TempNs::in_shm("aio-grow");
    t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(64 << 10)).unwrap();
    let consumer = t.ns.consumer("q", manual(0)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let body = vec![1u8; 1000];
    let rt = runtime();
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let task = rt.spawn(async move {
        let mut consumer = AsyncConsumer::new(consumer);
        let mut tags = Vec::new();
        let mut worst = Duration::ZERO;
        let mut n = 0;
        // Hold everything: the first ring fills with unacked messages.
        loop {
            let d = consumer.recv().await.unwrap();
            let stamp: Option<Instant> = rx.recv().unwrap().into();
            if let Some(s) = stamp {
                worst = worst.max(s.elapsed());
            }
            n += 1;
            let last = d.body()[0] == 2;
            tags.push(d.tag());
            std::mem::forget(d);
            if last {
                break;
            }
        }
        (n, worst)
    });
    // 200 messages of 1 KB into a 64 KB ring: it grows.
    let mut i = 0;
    while t.ns.queue_stats("q").unwrap().rings < 2 || i < 100 {
        std::thread::sleep(Duration::from_millis(5));
        tx.send(Instant::now()).unwrap();
        producer.publish(&body).unwrap();
        i += 1;
        assert!(i < 2000, "the queue never grew");
    }
    let mut last = body.clone();
    last[0] = 2;
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(30));
        tx.send(Instant::now()).unwrap();
        producer.publish(&body).unwrap();
    }
    tx.send(Instant::now()).unwrap();
    producer.publish(&last).unwrap();
    let (n, worst) = rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), task).await.expect("hung") }).unwrap();
    eprintln!("grown queue: {n} messages, worst wake {worst:?}");
    assert!(worst < Duration::from_millis(150), "a publish into a grown ring woke the sleeper only after {worst:?}");
}
