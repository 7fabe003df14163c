//! Review attacks on the batch publish path (`Publisher::publish_batch`)
//! and on fork safety (`liveness::inherited`, the Drop impls that skip a
//! fork child's copies). Each test pins a defect the review found, now
//! fixed, or behaviour that held under attack.
//!
//! The fork tests run a role of this test binary in a child process (one
//! test thread, so `fork` there is safe), which forks again.

mod common;

use std::time::Duration;

use common::TempNs;
use shmq::{ConsumerOptions, ExchangeKind, ExchangeOptions, Properties, QueueOptions};

fn bodies(t: &TempNs, queue: &str) -> Vec<String> {
    let consumer = t.ns.consumer(queue, ConsumerOptions::default()).unwrap();
    let mut out = Vec::new();
    while let Ok(d) = consumer.try_recv() {
        out.push(String::from_utf8_lossy(d.body()).into_owned());
    }
    out
}

/// A fanout batch `[s1, big, s3]` where queue `b` refuses `big` (over its
/// `max_message_bytes`): the batch fails at `big`. As one publish per
/// message (what the docs promise: "the messages before the failing one
/// were published"), `s3` must reach no queue; today queue `a` got the
/// whole batch before `b` was tried, so `s3` is in `a` although the call
/// failed before it, and a caller retrying from the failed message
/// duplicates it there.
#[test]

fn a_batch_failing_at_one_message_publishes_nothing_after_it_to_any_queue() {
    let t = TempNs::new("review-batch-partial");
    t.ns.declare_exchange("fan", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
    t.ns.declare_queue("a", &QueueOptions::default()).unwrap();
    t.ns.declare_queue("b", &QueueOptions::default().max_message_bytes(100)).unwrap();
    for q in ["a", "b"] {
        t.ns.bind_queue(q, "fan", "", &[]).unwrap();
    }
    let big = vec![b'x'; 1000];
    let err = t.ns.publisher().publish_batch("fan", "", &Properties::new(), &[&b"s1"[..], &big, b"s3"]);
    assert!(matches!(err, Err(shmq::PublishError::TooLarge { .. })), "{err:?}");
    // One publish per message, stopping at the error, gives a = [s1, big]
    // (it took `big` before `b` refused it) and b = [s1].
    let short = |bodies: Vec<String>| bodies.into_iter().map(|b| if b.len() > 8 { "big".to_owned() } else { b }).collect::<Vec<_>>();
    let a = short(bodies(&t, "a"));
    assert!(!a.contains(&"s3".to_owned()), "a message after the failing one was published: a = {:?}", &a);
    assert_eq!(bodies(&t, "b"), ["s1"]);
}

/// What a batch published before an error is counted in the exchange's
/// stats, as each single publish before an error would be.
#[test]

fn a_batch_stopped_by_an_error_counts_what_it_published() {
    let t = TempNs::new("review-batch-count");
    t.ns.declare_queue("q", &QueueOptions::default().max_message_bytes(64)).unwrap();
    let big = vec![0u8; 100];
    let before = t.ns.exchange_stats("").0;
    let err = t.ns.publisher().publish_batch("", "q", &Properties::new(), &[&b"a"[..], b"b", &big]);
    assert!(matches!(err, Err(shmq::PublishError::TooLarge { .. })), "{err:?}");
    assert_eq!(bodies(&t, "q"), ["a", "b"]);
    assert_eq!(t.ns.exchange_stats("").0 - before, 2, "two messages were published through the default exchange");
}

/// A `block` queue with room for 5 more (max_length 20, 15 ready) and a
/// short publish timeout: one publish per message enqueues m0..m4 at once
/// and refuses the rest, each after the timeout. The batch claims a chunk
/// of up to 20, which waits for room for all of it, times out, refuses
/// only its first message and tries again one message shorter: the queue
/// ends up with the batch's *last* five (m15..m19), the first fifteen
/// refused. The same happens at the memory budget (chunks of 64).
#[test]

fn a_batch_at_a_block_limit_keeps_its_first_messages_as_single_publishes_do() {
    let t = TempNs::new("review-batch-block");
    t.ns.declare_queue("q", &QueueOptions::default().max_length(20).overflow(shmq::Overflow::Block)).unwrap();
    let mut publisher = t.ns.publisher();
    let old: Vec<Vec<u8>> = (0..15).map(|i| format!("old{i}").into_bytes()).collect();
    publisher.publish_batch("", "q", &Properties::new(), &old.iter().map(Vec::as_slice).collect::<Vec<_>>()).unwrap();
    publisher.set_publish_timeout(Some(Duration::from_millis(10)));
    let new: Vec<Vec<u8>> = (0..20).map(|i| format!("m{i}").into_bytes()).collect();
    let routed = publisher.publish_batch("", "q", &Properties::new(), &new.iter().map(Vec::as_slice).collect::<Vec<_>>()).unwrap();
    assert_eq!(routed, shmq::Routed { queues: 5, full: 15 });
    let got: Vec<String> = bodies(&t, "q").into_iter().filter(|b| !b.starts_with("old")).collect();
    assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
}

/// A queue deleted by another handle between two batches: the next batch
/// is dropped as unroutable (counted), not an error, and a redeclared queue
/// of the same name takes the batch after.
#[test]
fn a_queue_deleted_between_batches_drops_the_next_one_and_a_redeclared_one_takes_the_one_after() {
    let t = TempNs::new("review-batch-deleted");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let mut publisher = t.ns.publisher();
    assert_eq!(publisher.publish_batch("", "q", &Properties::new(), &[b"1", b"2"]).unwrap().queues, 2);
    t.ns.delete_queue("q").unwrap();
    let before = t.ns.unroutable_count();
    let routed = publisher.publish_batch("", "q", &Properties::new(), &[b"3", b"4"]).unwrap();
    assert_eq!(routed, shmq::Routed::default());
    assert_eq!(t.ns.unroutable_count() - before, 2);
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    assert_eq!(publisher.publish_batch("", "q", &Properties::new(), &[b"5"]).unwrap().queues, 1);
    assert_eq!(bodies(&t, "q"), ["5"]);
}

// ---------------------------------------------------------------- fork

/// `libc` (for `fork`) comes with the default `cli` feature.
#[cfg(feature = "cli")]
mod fork {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    use super::*;

    /// Runs this test binary's `role` test in a child process, stdout piped.
    fn child(role: &str, ns: &std::path::Path) -> std::process::Child {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", role, "--nocapture", "--include-ignored", "--test-threads=1"])
            .env("SHMQ_REVIEW_FORK_NS", ns)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    }

    fn role_ns() -> Option<shmq::Namespace> {
        std::env::var("SHMQ_REVIEW_FORK_NS").ok().map(|p| shmq::Namespace::open_dir(p).unwrap())
    }

    /// What follows `prefix` in the first line the child prints with it (at
    /// most 30 s).
    fn line_from(child: &mut std::process::Child, prefix: &str) -> String {
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let want = prefix.to_owned();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                // With one test thread, libtest prints "test NAME ... "
                // first, on the same line.
                if let Some(at) = l.find(&want) {
                    let _ = tx.send(l[at + want.len()..].to_owned());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(30)).expect("the child never got there")
    }

    fn kill_pid(pid: i32) {
        // SAFETY: plain syscalls on a pid this test started (via its child).
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }

    /// Role: takes one message unacked, forks a grandchild that only sleeps
    /// (holding what it inherited), prints its pid, and dies with kill -9.
    #[test]
    fn role_parent_holding_a_delivery_forks_then_dies() {
        let Some(ns) = role_ns() else { return };
        let consumer = ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
        let delivery = consumer.recv_timeout(Duration::from_secs(10)).unwrap();
        std::mem::forget(delivery);
        // SAFETY: this process runs one test thread; the child only sleeps
        // and exits without running destructors.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            std::thread::sleep(Duration::from_secs(20));
            // SAFETY: leaves without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        println!("grandchild {pid}");
        // SAFETY: kill -9 of this very process.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }

    /// A process that died with a delivery unacked is recovered even though a
    /// child it forked still lives: the child inherited the descriptor of the
    /// parent's peer-file lock, so the kernel still sees the lock held and
    /// judges the dead parent alive, and its delivery stays unacked (and its
    /// consumer counted) for as long as the child lives.
    #[test]

    fn a_dead_parent_is_recovered_while_a_child_it_forked_lives() {
        let t = TempNs::in_shm("review-fork-lock");
        t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
        t.ns.producer("q").unwrap().publish(b"held").unwrap();
        let mut parent = child("fork::role_parent_holding_a_delivery_forks_then_dies", t.path());
        let grandchild: i32 = line_from(&mut parent, "grandchild ").trim().parse().unwrap();
        parent.wait().unwrap();
        let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
        let got = consumer.recv_timeout(Duration::from_secs(3)).map(|d| (d.body().to_vec(), d.redelivered()));
        kill_pid(grandchild);
        assert_eq!(got, Ok((b"held".to_vec(), true)), "the dead parent's delivery was not recovered while its child lived");
    }

    /// Role: opens its namespace and a consumer (registering its liveness),
    /// then forks a child that takes a message through the inherited namespace
    /// handle and dies holding it; prints "child died" and lives on.
    #[test]
    fn role_parent_whose_child_uses_the_inherited_namespace() {
        let Some(ns) = role_ns() else { return };
        let _mine = ns.consumer("other", ConsumerOptions::default()).unwrap();
        // SAFETY: one test thread; the child takes a message and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let consumer = ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
            let delivery = consumer.recv_timeout(Duration::from_secs(10));
            // SAFETY: dies holding the delivery, as kill -9 would.
            unsafe { libc::_exit(if delivery.is_ok() { 0 } else { 3 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        println!("child died {status}");
        std::thread::sleep(Duration::from_secs(20));
    }

    /// A fork child that consumes through the namespace handle it inherited
    /// and dies holding a delivery: the delivery must come back, as any dead
    /// consumer's does. Today the child's consumer registers under its
    /// parent's liveness token (the inherited `Peer`), so it counts as alive as
    /// long as the parent lives, and its delivery is stuck unacked.
    #[test]
    fn a_fork_child_consuming_through_an_inherited_namespace_is_recovered_when_it_dies() {
        let t = TempNs::in_shm("review-fork-token");
        for q in ["q", "other"] {
            t.ns.declare_queue(q, &QueueOptions::default()).unwrap();
        }
        t.ns.producer("q").unwrap().publish(b"taken by the child").unwrap();
        let mut parent = child("fork::role_parent_whose_child_uses_the_inherited_namespace", t.path());
        assert_eq!(line_from(&mut parent, "child died ").trim(), "0");
        let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        let got = consumer.recv_timeout(deadline - Instant::now()).map(|d| d.body().to_vec());
        let _ = parent.kill();
        let _ = parent.wait();
        assert_eq!(got, Ok(b"taken by the child".to_vec()), "the dead child's delivery stayed unacked while its parent lived");
    }
}
