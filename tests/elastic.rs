//! Elastic queues (issue 12): bursts far beyond a queue's first ring are
//! absorbed across processes and the memory goes back; at the namespace's
//! memory budget publishers block, are told, time out and resume; explicit
//! limits are exact and count ready messages only.
//!
//! The burst size is `SHMQ_BURST_BYTES` (default 64 MiB here; scripts/test.sh
//! runs the 1 GiB burst in a release build).

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TempNs;
use shmq::{AckMode, ConsumerOptions, NamespaceOptions, Overflow, PublishError, QueueOptions, WaitReason};

const MESSAGE: usize = 64;

fn burst_messages() -> u64 {
    let bytes: u64 = std::env::var("SHMQ_BURST_BYTES").ok().and_then(|s| s.parse().ok()).unwrap_or(64 << 20);
    // The rings of a 64-byte-message burst take about 1.8 times its bytes,
    // and the default budget is 40 % of the free space: a machine whose
    // /dev/shm cannot hold the burst runs a smaller one, and says so.
    let room = shm_available() / 100 * 40 * 10 / 18;
    if bytes > room {
        eprintln!("burst scaled down from {bytes} to {room} bytes: /dev/shm has {} bytes free", shm_available());
        return room / MESSAGE as u64;
    }
    bytes / MESSAGE as u64
}

/// Bytes free in /dev/shm (as `df` shows them).
fn shm_available() -> u64 {
    let out = Command::new("df").args(["-B1", "--output=avail", "/dev/shm"]).output().expect("df");
    String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or(u64::MAX)
}

/// Bytes the namespace's files take in the file system (what `du` shows).
fn du(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for sub in ["queues", "extents"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            total += entry.unwrap().metadata().unwrap().blocks() * 512;
        }
    }
    total
}

/// Runs this test binary's `role` test in a child process.
fn child(role: &str, ns: &std::path::Path, extra: &[(&str, String)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", role, "--nocapture", "--include-ignored"]).env("SHMQ_ELASTIC_NS", ns);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap()
}

/// The burst size the parent chose (the free space changes as it runs).
fn child_burst() -> u64 {
    std::env::var("SHMQ_BURST_MESSAGES").unwrap().parse().unwrap()
}

fn child_ns() -> Option<shmq::Namespace> {
    std::env::var("SHMQ_ELASTIC_NS").ok().map(|p| shmq::Namespace::open_dir(p).unwrap())
}

/// Child: publishes the burst, numbered, in batches; never blocks.
#[test]
#[ignore = "run as a child process by the burst test"]
fn burst_publisher() {
    let Some(ns) = child_ns() else { return };
    let total = child_burst();
    let mut producer = ns.producer("burst").unwrap();
    producer.set_publish_timeout(Some(Duration::from_secs(60)));
    let mut bodies = vec![[0u8; MESSAGE]; 64];
    let mut seq = 0u64;
    while seq < total {
        let n = (total - seq).min(64) as usize;
        for (i, body) in bodies[..n].iter_mut().enumerate() {
            body[..8].copy_from_slice(&(seq + i as u64).to_le_bytes());
        }
        let refs: Vec<&[u8]> = bodies[..n].iter().map(|b| &b[..]).collect();
        assert_eq!(producer.publish_batch(&refs).unwrap(), n);
        seq += n as u64;
    }
    println!("published {seq}");
}

/// Child: drains the burst, checking order, then idles so that it retires
/// and shrinks the queue's rings.
#[test]
#[ignore = "run as a child process by the burst test"]
fn burst_consumer() {
    let Some(ns) = child_ns() else { return };
    let total = child_burst();
    let consumer = ns.consumer("burst", ConsumerOptions::default()).unwrap();
    let mut next = 0u64;
    while next < total {
        consumer
            .drain(4096, |d| {
                let seq = u64::from_le_bytes(d.body()[..8].try_into().unwrap());
                assert_eq!(seq, next, "out of order");
                next += 1;
            })
            .unwrap();
    }
    let idle_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < idle_until {
        assert!(matches!(consumer.recv_timeout(Duration::from_millis(50)).err(), Some(shmq::RecvError::Timeout)));
    }
    println!("consumed {next}");
}

#[test]
fn a_burst_far_beyond_the_first_ring_is_absorbed_across_processes_and_the_memory_goes_back() {
    let t = TempNs::in_shm("elastic-burst");
    t.ns.declare_queue("burst", &QueueOptions::default()).unwrap();
    let empty = du(t.path());
    let total = burst_messages();
    let publisher = child("burst_publisher", t.path(), &[("SHMQ_BURST_MESSAGES", total.to_string())]);
    let out = publisher.wait_with_output().unwrap();
    assert!(out.status.success(), "the publisher failed");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().find(|l| l.starts_with("published")), Some(&*format!("published {total}")));
    let stats = t.ns.queue_stats("burst").unwrap();
    assert_eq!(stats.ready, total, "every message is queued, none blocked or dropped");
    assert!(stats.rings > 1, "the queue grew past its first ring");
    let full = du(t.path());
    assert!(full > total * MESSAGE as u64, "{full} bytes for {total} messages");

    let consumer = child("burst_consumer", t.path(), &[("SHMQ_BURST_MESSAGES", total.to_string())]);
    let out = consumer.wait_with_output().unwrap();
    assert!(out.status.success(), "the consumer failed");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("consumed {total}")));
    let stats = t.ns.queue_stats("burst").unwrap();
    assert_eq!((stats.ready, stats.unacked), (0, 0));
    let after = du(t.path());
    eprintln!("du: empty {empty}, full {full}, drained {after}; rings now {}", stats.rings);
    assert!(after <= empty + empty / 2, "memory did not go back: {after} bytes after draining, {empty} when empty");
}

#[test]
fn at_the_memory_budget_publishers_block_are_told_time_out_and_resume() {
    let dir = std::path::PathBuf::from(format!("/dev/shm/shmq-test-budget-{}", std::process::id()));
    let _cleanup = scopeguard(dir.clone());
    let ns = shmq::Namespace::open_dir_with(&dir, NamespaceOptions::default().memory_budget(24 << 20)).unwrap();
    ns.declare_queue("q", &QueueOptions::default().capacity_bytes(1 << 20)).unwrap();
    let mut producer = ns.producer("q").unwrap();
    producer.set_publish_timeout(Some(Duration::from_millis(300)));
    let told = Arc::new(Mutex::new(0u32));
    let seen = told.clone();
    producer.set_wait_hook(Some(Arc::new(move |reason| {
        assert_eq!(reason, WaitReason::MemoryBudget);
        *seen.lock().unwrap() += 1;
        true
    })));
    let body = [7u8; 1000];
    let mut published = 0u64;
    let started = Instant::now();
    let err = loop {
        match producer.publish(&body) {
            Ok(()) => published += 1,
            Err(e) => break e,
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the budget never stopped the publisher");
    };
    assert_eq!(err, PublishError::Timeout);
    assert!(producer.is_blocked());
    assert!(*told.lock().unwrap() > 0, "the wait hook was never told");
    let stats = ns.queue_stats("q").unwrap();
    assert_eq!(stats.ready, published, "nothing lost at the budget");
    let in_use: u64 = du(&dir);
    assert!(in_use <= 24 << 20, "{in_use} bytes in use over a 24 MiB budget");

    // A consumer in another thread drains; the blocked publisher resumes.
    let drainer = {
        let ns = ns.clone();
        std::thread::spawn(move || {
            let consumer = ns.consumer("q", ConsumerOptions { ack_mode: AckMode::Auto, ..Default::default() }).unwrap();
            let mut got = 0;
            while got < published {
                got += consumer.drain(1024, |_| {}).unwrap() as u64;
            }
            // Stay a little so that rings retire.
            std::thread::sleep(Duration::from_millis(500));
            let _ = consumer.drain(usize::MAX, |_| {});
        })
    };
    producer.set_publish_timeout(Some(Duration::from_secs(30)));
    producer.publish(&body).unwrap();
    assert!(!producer.is_blocked());
    drainer.join().unwrap();
}

#[test]
fn a_wait_hook_that_says_stop_interrupts_a_blocked_publish() {
    let t = TempNs::in_shm("elastic-interrupt");
    t.ns.declare_queue("q", &QueueOptions::default().max_length(1).overflow(Overflow::Block)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    producer.publish(b"one").unwrap();
    producer.set_wait_hook(Some(Arc::new(|reason| reason != WaitReason::QueueFull)));
    assert_eq!(producer.publish(b"two"), Err(PublishError::Interrupted));
    assert_eq!(t.ns.queue_stats("q").unwrap().ready, 1);
}

fn scopeguard(dir: std::path::PathBuf) -> impl Drop {
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    Remove(dir)
}

/// Publishes `count` numbered bodies of `size` bytes; the outcome of each.
fn publish_numbered(producer: &mut shmq::Producer, from: u32, count: u32, size: usize) -> Vec<Result<(), PublishError>> {
    (from..from + count)
        .map(|i| {
            let mut body = format!("m-{i}").into_bytes();
            body.resize(size.max(body.len()), b'.');
            producer.publish(&body[..size.max(1).min(body.len())])
        })
        .collect()
}

fn drain_bodies(ns: &shmq::Namespace, queue: &str) -> Vec<String> {
    let consumer = ns.consumer(queue, ConsumerOptions::default()).unwrap();
    let mut out = Vec::new();
    consumer.drain(usize::MAX, |d| out.push(String::from_utf8_lossy(d.body()).trim_end_matches('.').to_owned())).unwrap();
    out
}

#[test]
fn max_length_is_exact_for_every_policy_and_counts_ready_messages_only() {
    for n in [1u32, 3, 10, 1000] {
        for held in [0u32, 2] {
            // reject-publish: the first n go in, the rest are refused.
            let t = TempNs::in_shm("elastic-maxlen");
            t.ns.declare_queue("q", &QueueOptions::default().max_length(u64::from(n)).overflow(Overflow::Reject)).unwrap();
            let mut producer = t.ns.producer("q").unwrap();
            let holder = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
            let mut held_tags = Vec::new();
            if held > 0 {
                // Unacked messages do not count against the limit.
                for i in 0..held {
                    publish_numbered(&mut producer, 10_000 + i, 1, 8).into_iter().for_each(|r| r.unwrap());
                    held_tags.push(holder.try_recv().unwrap().tag());
                }
            }
            let outcomes = publish_numbered(&mut producer, 0, n + 5, 8);
            let accepted = outcomes.iter().filter(|r| r.is_ok()).count() as u32;
            assert_eq!(accepted, n, "reject-publish at max_length {n} with {held} unacked");
            assert!(outcomes[n as usize..].iter().all(|r| *r == Err(PublishError::QueueFull)));
            let stats = t.ns.queue_stats("q").unwrap();
            assert_eq!((stats.ready, stats.unacked), (u64::from(n), u64::from(held)));
            drop(holder);

            // drop-head: the newest n stay.
            let t = TempNs::in_shm("elastic-maxlen-drop");
            t.ns.declare_queue("q", &QueueOptions::default().max_length(u64::from(n))).unwrap();
            let mut producer = t.ns.producer("q").unwrap();
            assert!(publish_numbered(&mut producer, 0, n + 5, 8).into_iter().all(|r| r.is_ok()));
            let bodies = drain_bodies(&t.ns, "q");
            let expected: Vec<String> = (5..n + 5).map(|i| format!("m-{i}")).collect();
            assert_eq!(bodies, expected, "drop-head at max_length {n}");

            // block: the (n+1)th waits, and times out.
            let t = TempNs::in_shm("elastic-maxlen-block");
            t.ns.declare_queue("q", &QueueOptions::default().max_length(u64::from(n)).overflow(Overflow::Block)).unwrap();
            let mut producer = t.ns.producer("q").unwrap();
            producer.set_publish_timeout(Some(Duration::from_millis(20)));
            let outcomes = publish_numbered(&mut producer, 0, n + 1, 8);
            assert!(outcomes[..n as usize].iter().all(|r| r.is_ok()));
            assert_eq!(outcomes[n as usize], Err(PublishError::Timeout));
        }
    }
}

#[test]
fn max_length_bytes_is_exact_on_body_bytes_as_in_rabbitmq() {
    for limit in [10u64, 1000] {
        // reject-publish: refused once ready body bytes plus the new one
        // would pass the limit; exactly the limit is accepted.
        let t = TempNs::in_shm("elastic-maxbytes");
        t.ns.declare_queue("q", &QueueOptions::default().max_length_bytes(limit).overflow(Overflow::Reject)).unwrap();
        let mut producer = t.ns.producer("q").unwrap();
        let fits = (limit / 5) as u32;
        let outcomes = publish_numbered(&mut producer, 0, fits + 2, 5);
        assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count() as u32, fits, "reject-publish at {limit} bytes");
        // A consumer takes one (unacked): its bytes no longer count.
        let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
        let _held = consumer.try_recv().unwrap().tag();
        assert_eq!(producer.publish(b"x-123"), Ok(()));
        assert_eq!(producer.publish(b"y-123"), Err(PublishError::QueueFull));
        drop(consumer);

        // drop-head: the oldest go until the new one fits.
        let t = TempNs::in_shm("elastic-maxbytes-drop");
        t.ns.declare_queue("q", &QueueOptions::default().max_length_bytes(limit)).unwrap();
        let mut producer = t.ns.producer("q").unwrap();
        assert!(publish_numbered(&mut producer, 0, fits + 2, 5).into_iter().all(|r| r.is_ok()));
        let expected: Vec<String> = (2..fits + 2).map(|i| format!("m-{i}").chars().take(5).collect()).collect();
        assert_eq!(drain_bodies(&t.ns, "q"), expected);
        // A body larger than the limit empties the queue, itself included.
        assert!(publish_numbered(&mut producer, 0, 2, 5).into_iter().all(|r| r.is_ok()));
        assert_eq!(producer.publish(&vec![b'z'; limit as usize + 1]), Ok(()));
        assert_eq!(t.ns.queue_stats("q").unwrap().ready, 0);
    }
}

#[test]
fn a_default_queue_takes_a_message_as_large_as_rabbitmqs_default_max_message_size() {
    let t = TempNs::in_shm("elastic-16mib");
    t.ns.declare_queue("big", &QueueOptions::default()).unwrap();
    let mut producer = t.ns.producer("big").unwrap();
    let body: Vec<u8> = (0..shmq::DEFAULT_MAX_MESSAGE_BYTES as usize).map(|i| (i % 251) as u8).collect();
    // Body plus (empty) properties is exactly the limit; one byte more is not.
    producer.publish(&body).unwrap();
    producer.publish(b"small after").unwrap();
    let consumer = t.ns.consumer("big", ConsumerOptions::default()).unwrap();
    assert!(consumer.try_recv().unwrap().body() == &body[..]);
    assert_eq!(consumer.try_recv().unwrap().body(), b"small after");
    let over = vec![0u8; body.len() + 1];
    assert!(matches!(producer.publish(&over), Err(PublishError::TooLarge { .. })));
}

#[test]
fn acks_requeue_ttl_and_prefetch_work_across_rings_as_in_one() {
    let t = TempNs::in_shm("elastic-across");
    // A 4 KiB first ring (32 slots): 300 messages take more rings.
    t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(4096).max_message_bytes(256)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    for i in 0..300u32 {
        // Every tenth expires at once (per-message TTL of 1 ms).
        let props = if i % 10 == 9 { shmq::Properties::new().expiration("1") } else { shmq::Properties::new() };
        producer.publish_with(&props, &i.to_le_bytes()).unwrap();
    }
    assert!(t.ns.queue_stats("q").unwrap().rings > 1, "the queue grew past its first ring");
    std::thread::sleep(Duration::from_millis(5));
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(5)).unwrap();
    let mut got = Vec::new();
    let mut nacked_once = std::collections::HashSet::new();
    loop {
        let mut held = Vec::new();
        // Prefetch holds: five, then PrefetchFull.
        while let Ok(d) = consumer.try_recv() {
            held.push((u32::from_le_bytes(d.body().try_into().unwrap()), d.redelivered(), d.tag()));
        }
        assert!(held.len() <= 5, "prefetch 5, held {}", held.len());
        if held.is_empty() {
            break;
        }
        for (n, redelivered, tag) in held {
            // Every seventh is nacked back once, and comes back redelivered.
            if n % 7 == 0 && nacked_once.insert(n) {
                assert!(!redelivered);
                consumer.nack(tag, true).unwrap();
            } else {
                assert_eq!(redelivered, nacked_once.contains(&n), "message {n}");
                consumer.ack(tag).unwrap();
                got.push(n);
            }
        }
    }
    got.sort();
    let expected: Vec<u32> = (0..300).filter(|i| i % 10 != 9).collect();
    assert_eq!(got, expected, "every message once, the expired ones never");
    let stats = t.ns.queue_stats("q").unwrap();
    assert_eq!((stats.ready, stats.unacked, stats.expired), (0, 0, 30));
}

#[test]
fn declares_past_the_memory_budget_are_refused_and_a_delete_makes_room() {
    // Before, declares never looked at the budget: an import of thousands
    // of queues took a namespace to 245 % of its budget (and filled
    // /dev/shm).
    let dir = std::env::temp_dir().join(format!("shmq-declare-budget-{}", std::process::id()));
    let _cleanup = scopeguard(dir.clone());
    let ns = shmq::Namespace::open_dir_with(&dir, NamespaceOptions::default().memory_budget(16 << 20)).unwrap();
    let mut declared = Vec::new();
    let refused = loop {
        let name = format!("q{}", declared.len());
        match ns.declare_queue(&name, &Default::default()) {
            Ok(_) => declared.push(name),
            Err(e) => break e,
        }
        assert!(declared.len() < 10_000, "the budget never refused a declare");
    };
    let shmq::Error::MemoryBudget { queue, needed, in_use, budget } = &refused else { panic!("{refused:?}") };
    assert_eq!(queue, &format!("q{}", declared.len()));
    assert_eq!(*budget, 16 << 20);
    assert!(in_use + needed > *budget && *in_use <= *budget, "{refused}");
    assert!(refused.to_string().contains("memory budget"), "{refused}");
    assert!(!declared.is_empty());
    // The refused queue was not left registered.
    let names: Vec<String> = ns.list_queues().unwrap();
    assert_eq!(names.len(), declared.len());
    assert!(!names.contains(queue));
    // Redeclaring an existing queue takes no new memory: still fine.
    ns.declare_queue(&declared[0], &Default::default()).unwrap();
    // A delete makes room at once.
    ns.delete_queue(&declared[0]).unwrap();
    ns.declare_queue(queue, &Default::default()).unwrap();
}
