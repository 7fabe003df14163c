//! Cross-process behaviour, with every producer and consumer a real `shmq`
//! process: the seed's patterns, fairness, overflow, sizes, decoupling, and
//! processes killed with SIGKILL at awkward moments.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{finish, TempNs};

fn lines(out: &str) -> Vec<String> {
    out.lines().map(str::to_owned).collect()
}

#[test]
fn hello_world_between_two_processes() {
    let t = TempNs::in_shm("p-hello");
    t.run(&["declare-queue", "hello"]);
    let consumer = t.spawn(&["consume", "hello", "--count", "1"]);
    t.run(&["publish", "hello", "Hello World"]);
    assert_eq!(finish(consumer), "Hello World\t0\n");
}

fn work_queue(workers: usize, tasks: usize) {
    let t = TempNs::in_shm(&format!("p-work{workers}"));
    t.run(&["declare-queue", "task_queue", "--capacity", "65536"]);
    let children: Vec<_> =
        (0..workers).map(|_| t.spawn(&["consume", "task_queue", "--manual-ack", "--prefetch", "4", "--idle-exit-ms", "1500"])).collect();
    let publishers: Vec<_> =
        (0..2).map(|p| t.spawn(&["publish", "task_queue", &format!("p{p}-task-{{i}}"), "--count", &(tasks / 2).to_string()])).collect();
    for p in publishers {
        finish(p);
    }
    let mut all = Vec::new();
    let mut per_worker = Vec::new();
    for c in children {
        let got = lines(&finish(c));
        per_worker.push(got.len());
        all.extend(got);
    }
    assert!(all.iter().all(|l| l.ends_with("\t0")), "no message may be redelivered without a failure");
    all.sort();
    let mut expected: Vec<String> = (0..2).flat_map(|p| (0..tasks / 2).map(move |i| format!("p{p}-task-{i}\t0"))).collect();
    expected.sort();
    assert_eq!(all, expected, "each task exactly once; per worker {per_worker:?}");
}

#[test]
fn work_queue_with_two_workers_delivers_each_task_once() {
    work_queue(2, 2000);
}

#[test]
fn work_queue_with_four_workers_delivers_each_task_once() {
    work_queue(4, 2000);
}

#[test]
fn prefetch_one_gives_the_fast_worker_more() {
    let t = TempNs::in_shm("p-fair");
    t.run(&["declare-queue", "tasks"]);
    let slow = t.spawn(&["consume", "tasks", "--manual-ack", "--prefetch", "1", "--work-ms", "10", "--idle-exit-ms", "700", "--quiet"]);
    let fast = t.spawn(&["consume", "tasks", "--manual-ack", "--prefetch", "1", "--idle-exit-ms", "700", "--quiet"]);
    std::thread::sleep(Duration::from_millis(100));
    t.run(&["publish", "tasks", "t{i}", "--count", "100", "--interval-ms", "1"]);
    let count = |out: String| out.trim().trim_start_matches("received ").parse::<u32>().unwrap();
    let (slow, fast) = (count(finish(slow)), count(finish(fast)));
    assert_eq!(slow + fast, 100);
    assert!(fast > 2 * slow, "fast worker got {fast}, slow worker {slow}");
}

#[test]
fn reject_policy_across_processes() {
    let t = TempNs::in_shm("p-reject");
    t.run(&["declare-queue", "q", "--capacity", "4096", "--max-length", "8", "--max-message", "256", "--overflow", "reject-publish"]);
    let out = t.shmq().args(["publish", "q", "m{i}", "--count", "20"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_length"), "{}", String::from_utf8_lossy(&out.stderr));
    let got = lines(&finish(t.spawn(&["consume", "q", "--idle-exit-ms", "200"])));
    assert_eq!(got, (0..8).map(|i| format!("m{i}\t0")).collect::<Vec<_>>());
}

#[test]
fn drop_oldest_policy_across_processes() {
    let t = TempNs::in_shm("p-drop");
    t.run(&["declare-queue", "q", "--capacity", "4096", "--max-length", "4", "--max-message", "256", "--overflow", "drop-head"]);
    t.run(&["publish", "q", "m{i}", "--count", "10"]);
    let got = lines(&finish(t.spawn(&["consume", "q", "--idle-exit-ms", "200"])));
    assert_eq!(got, (6..10).map(|i| format!("m{i}\t0")).collect::<Vec<_>>());
}

#[test]
fn block_policy_waits_for_a_consumer_process() {
    let t = TempNs::in_shm("p-block");
    t.run(&["declare-queue", "q", "--capacity", "4096", "--max-length", "4", "--max-message", "256", "--overflow", "block"]);
    let publisher = t.spawn(&["publish", "q", "m{i}", "--count", "50"]);
    std::thread::sleep(Duration::from_millis(200));
    let got = lines(&finish(t.spawn(&["consume", "q", "--count", "50"])));
    finish(publisher);
    assert_eq!(got, (0..50).map(|i| format!("m{i}\t0")).collect::<Vec<_>>());
}

#[test]
fn message_sizes_from_zero_to_the_limit_across_processes() {
    let t = TempNs::in_shm("p-sizes");
    t.run(&["declare-queue", "q", "--capacity", "262144", "--max-message", "65536"]);
    let sizes = [0usize, 1, 63, 64, 65, 4096, 65535, 65536];
    let consumer = t.spawn(&["consume", "q", "--count", &sizes.len().to_string()]);
    for size in sizes {
        t.run(&["publish", "q", "", "--size", &size.to_string()]);
    }
    let got: Vec<usize> = finish(consumer).lines().map(|l| l.trim_end_matches("\t0").len()).collect();
    assert_eq!(got, sizes.to_vec());
    let out = t.shmq().args(["publish", "q", "", "--size", "65537"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("over the queue's limit"));
}

#[test]
fn decoupling_consumer_started_later_gets_everything() {
    let t = TempNs::in_shm("p-decouple");
    t.run(&["declare-queue", "orders"]);
    t.run(&["publish", "orders", "order-{i}", "--count", "100"]);
    assert!(t.run(&["list-queues"]).contains("orders"));
    let got = lines(&finish(t.spawn(&["consume", "orders", "--idle-exit-ms", "300"])));
    assert_eq!(got, (0..100).map(|i| format!("order-{i}\t0")).collect::<Vec<_>>());
}

#[test]
fn unacked_messages_of_a_killed_consumer_are_redelivered_within_a_second() {
    let t = TempNs::in_shm("p-kill-consumer");
    t.run(&["declare-queue", "q"]);
    t.run(&["publish", "q", "m{i}", "--count", "5"]);
    // Takes all five, acks none, and hangs in its 60 s of "work".
    let mut victim = t.spawn(&["consume", "q", "--manual-ack", "--count", "5", "--work-ms", "60000"]);
    let stats_unacked = || -> u64 {
        let out = t.run(&["list-queues", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0]["messages_unacked"].as_u64().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats_unacked() < 1 {
        assert!(Instant::now() < deadline, "victim never took a message");
        std::thread::sleep(Duration::from_millis(10));
    }
    let survivor = t.spawn(&["consume", "q", "--manual-ack", "--count", "5"]);
    std::thread::sleep(Duration::from_millis(100));
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    let killed_at = Instant::now();
    let got = lines(&finish(survivor));
    assert!(killed_at.elapsed() < Duration::from_secs(1), "redelivery took {:?}", killed_at.elapsed());
    let mut bodies: Vec<&str> = got.iter().map(|l| l.split('\t').next().unwrap()).collect();
    bodies.sort();
    assert_eq!(bodies, vec!["m0", "m1", "m2", "m3", "m4"]);
    assert!(got.iter().filter(|l| l.ends_with("\t1")).count() >= 1, "redelivered ones are flagged: {got:?}");
}

#[test]
fn producer_killed_mid_write_never_delivers_the_partial_message() {
    let t = TempNs::in_shm("p-kill-producer");
    t.run(&["declare-queue", "q"]);
    let mut victim = t.shmq().args(["publish", "q", "--stall-mid-write"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(victim.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "stalled\n");
    t.run(&["publish", "q", "after"]);
    victim.kill().unwrap();
    victim.wait().unwrap();
    let killed_at = Instant::now();
    let got = finish(t.spawn(&["consume", "q", "--count", "1"]));
    assert_eq!(got, "after\t0\n");
    assert!(killed_at.elapsed() < Duration::from_secs(1), "queue resumed after {:?}", killed_at.elapsed());
}

#[test]
fn processes_that_exit_cleanly_leave_no_peer_files() {
    let t = TempNs::in_shm("p-clean");
    t.run(&["declare-queue", "q"]);
    t.run(&["publish", "q", "x"]);
    finish(t.spawn(&["consume", "q", "--count", "1"]));
    let peers: Vec<_> = std::fs::read_dir(t.path().join("peers")).unwrap().collect();
    assert!(peers.is_empty(), "left behind: {peers:?}");
    assert!(std::fs::read_dir(t.path().join("tmp")).unwrap().next().is_none());
}

/// An exclusive consumer killed with SIGKILL does not keep the queue: the
/// next consumer's attach sweeps the dead one away.
#[test]
fn a_killed_exclusive_consumer_releases_its_queue() {
    let t = TempNs::in_shm("exclusive-killed");
    t.ns.declare_queue("q", &shmq::QueueOptions::default()).unwrap();
    let mut holder = t.shmq().args(["consume", "q", "--exclusive"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while t.ns.queue_stats("q").unwrap().consumers == 0 {
        assert!(std::time::Instant::now() < deadline, "the exclusive consumer never attached");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(matches!(t.ns.consumer("q", shmq::ConsumerOptions::default()), Err(shmq::Error::ExclusiveConsumer { .. })));
    holder.kill().unwrap();
    holder.wait().unwrap();
    t.ns.consumer("q", shmq::ConsumerOptions::default()).expect("the dead holder's claim is void");
}
