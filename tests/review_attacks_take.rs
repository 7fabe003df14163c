//! Review attacks on the run-claim take protocol (03eefe7: a taker stores
//! its run as its row's intent, CASes `read` past it, marks it DELIVERED
//! with plain stores, clears the intent) and on b54b2fe (batch publishing
//! at limits, the fork handler).
//!
//! A process killed with kill -9 at one instruction of a take cannot be
//! timed from outside, so the crash tests kill a real consumer process
//! (its row then belongs to a dead token) and write into the segment
//! exactly what that consumer leaves when killed at the step named (the
//! loom model `a_sweeper_killed_after_each_step_...` in
//! loom-tests/tests/ring.rs kills at every write).

#![allow(clippy::disallowed_types)] // the tests' own stop flags, not shared memory

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TempNs;
use shmq::{ConsumerOptions, Overflow, QueueOptions, RecvError};

const CHILD: &str = "SHMQ_REVIEW_TAKE_CHILD";

// Offsets from docs/LAYOUT.md (version 7).
const RING: u64 = 1024;
const READ: u64 = RING + 128;
const REQUEUED: u64 = RING + 3 * 128;
const AGENTS: u64 = 2048;
const SLOTS: u64 = 10240;
const DELIVERED: u64 = 2;

fn queue_file(t: &TempNs, queue: &str) -> PathBuf {
    t.path().join("queues").join(queue)
}

fn read_u64(path: &Path, offset: u64) -> u64 {
    let mut b = [0u8; 8];
    std::fs::File::open(path).unwrap().read_exact_at(&mut b, offset).unwrap();
    u64::from_le_bytes(b)
}

fn read_u32(path: &Path, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    std::fs::File::open(path).unwrap().read_exact_at(&mut b, offset).unwrap();
    u32::from_le_bytes(b)
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    std::fs::OpenOptions::new().write(true).open(path).unwrap().write_all_at(bytes, offset).unwrap();
}

fn slot_count(path: &Path) -> u64 {
    u64::from(read_u32(path, 48))
}

/// The agent row whose pid is `pid` and role `role`.
fn row_of(path: &Path, pid: u32, role: u32) -> u64 {
    (0..64u64)
        .find(|&i| {
            let row = AGENTS + 128 * i;
            read_u64(path, row) != 0 && read_u32(path, row + 16) == role && read_u32(path, row + 20) == pid
        })
        .expect("the child's row")
}

fn control(stamp: u64, owner: u64, flags: u64, state: u64) -> u64 {
    stamp << 32 | owner << 16 | flags << 8 | state
}

/// Role: opens a consumer on queue "q" (registering a row), says so, waits
/// to be killed.
#[test]
fn role_consumer_that_waits_to_be_killed() {
    let Ok(dir) = std::env::var(CHILD) else { return };
    let ns = shmq::Namespace::open_dir(dir).unwrap();
    let _consumer = ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    println!("registered");
    std::thread::sleep(Duration::from_secs(60));
}

/// A consumer process of `t`'s queue "q", killed once registered: its row
/// index and owner id (row | generation << 6).
fn killed_consumer(t: &TempNs) -> (u64, u64) {
    let mut child: Child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "role_consumer_that_waits_to_be_killed", "--nocapture", "--test-threads=1"])
        .env(CHILD, t.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("registered"))), "the child never registered");
    let pid = child.id();
    common::kill(&mut child);
    let path = queue_file(t, "q");
    let row = row_of(&path, pid, 2);
    let generation = u64::from(read_u32(&path, AGENTS + 128 * row + 88));
    (row, row | (generation % 1024) << 6)
}

fn drain_bodies(consumer: &shmq::Consumer, within: Duration) -> Vec<(Vec<u8>, bool)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match consumer.recv_timeout(Duration::from_millis(100)) {
            Ok(d) => {
                got.push((d.body().to_vec(), d.redelivered()));
                d.ack().unwrap();
            }
            Err(RecvError::Timeout) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    got
}

/// Two messages at positions 0 and 1, and a consumer killed between its
/// run's `read` CAS and its DELIVERED marks: intent (0, 2), `read` 2, both
/// slots READY below `read`. The sweep clears the intent and raises the
/// flag: each arrives once, not flagged redelivered.
#[test]
fn a_taker_killed_between_its_read_cas_and_its_marks_loses_and_duplicates_nothing() {
    let t = TempNs::in_shm("rt-cas-marks");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    t.ns.producer("q").unwrap().publish_batch(&[b"m0", b"m1"]).unwrap();
    let (row, _) = killed_consumer(&t);
    let path = queue_file(&t, "q");
    write_at(&path, AGENTS + 128 * row + 8, &(2u64).to_le_bytes());
    write_at(&path, READ, &2u32.to_le_bytes());
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let got = drain_bodies(&consumer, Duration::from_millis(1500));
    assert_eq!(got, vec![(b"m0".to_vec(), false), (b"m1".to_vec(), false)]);
}

/// Killed between its marks and its intent's clear: both slots DELIVERED
/// to the dead row, its intent still (0, 2). Requeued once each, flagged.
#[test]
fn a_taker_killed_between_its_marks_and_its_intent_clear_gets_its_run_requeued_once() {
    let t = TempNs::in_shm("rt-marks-clear");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    t.ns.producer("q").unwrap().publish_batch(&[b"m0", b"m1"]).unwrap();
    let (row, owner) = killed_consumer(&t);
    let path = queue_file(&t, "q");
    let n = slot_count(&path);
    write_at(&path, AGENTS + 128 * row + 8, &(2u64).to_le_bytes());
    for p in 0..2u64 {
        write_at(&path, SLOTS + 32 * (p % n), &control(p, owner, 0, DELIVERED).to_le_bytes());
    }
    write_at(&path, READ, &2u32.to_le_bytes());
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let got = drain_bodies(&consumer, Duration::from_millis(1500));
    assert_eq!(got, vec![(b"m0".to_vec(), true), (b"m1".to_vec(), true)]);
}

/// Killed between its intent store and its `read` CAS: a stale intent
/// (0, 2) over slots a live consumer then takes. The live one nacks one;
/// the requeued message is skipped while the dead row's intent covers it,
/// and comes back once the sweep clears the row.
#[test]
fn a_stale_intent_of_a_taker_killed_before_its_cas_delays_a_requeue_only_until_the_sweep() {
    let t = TempNs::in_shm("rt-intent-cas");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    t.ns.producer("q").unwrap().publish_batch(&[b"m0", b"m1"]).unwrap();
    let (row, _) = killed_consumer(&t);
    let path = queue_file(&t, "q");
    write_at(&path, AGENTS + 128 * row + 8, &(2u64).to_le_bytes());
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let first = consumer.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(first.body(), b"m0");
    first.nack(true).unwrap();
    let got = drain_bodies(&consumer, Duration::from_millis(1500));
    let mut bodies: Vec<_> = got.iter().map(|(b, _)| b.clone()).collect();
    bodies.sort();
    assert_eq!(bodies, vec![b"m0".to_vec(), b"m1".to_vec()], "{got:?}");
}

/// The state a sweeper with no row in the ring leaves when killed between
/// freeing the dead taker's row (token and intent zeroed by `reset_agent`)
/// and raising the `requeued` flag, which 03eefe7 moved after the resets
/// (src/ring/mod.rs `recover`): the run is READY below `read`, no row is
/// dead any more, so no later sweep raises the flag. The run is never
/// delivered, and `reclaim` never passes it. (loom proof:
/// `a_sweeper_killed_after_each_step_of_recovering_a_dead_batch_taker_strands_nothing`.)
#[test]
fn a_run_left_by_a_dead_taker_and_a_dead_sweeper_is_still_delivered() {
    let t = TempNs::in_shm("rt-dead-sweeper");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    t.ns.producer("q").unwrap().publish_batch(&[b"m0", b"m1"]).unwrap();
    let (row, _) = killed_consumer(&t);
    let path = queue_file(&t, "q");
    // The taker's death: intent (0, 2), `read` moved past the run.
    write_at(&path, READ, &2u32.to_le_bytes());
    // The sweeper's partial work, killed before its last store: the flag
    // raised before the rows are freed (the fix: it was raised only after,
    // and this state had it down), the row freed (reset_agent) and its
    // intent cleared. A scanner that took the flag since would have found
    // the run uncovered, or covered and raised the flag again.
    write_at(&path, REQUEUED, &1u32.to_le_bytes());
    write_at(&path, AGENTS + 128 * row, &0u64.to_le_bytes());
    write_at(&path, AGENTS + 128 * row + 8, &0u64.to_le_bytes());
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let got = drain_bodies(&consumer, Duration::from_millis(1500));
    assert_eq!(got, vec![(b"m0".to_vec(), false), (b"m1".to_vec(), false)], "the run was stranded below read");
}

/// Hostile bytes: a huge intent in a *free* row (token 0) covers every
/// position. `claimed_by_intent` reads every row's intent, registered or
/// not, and nothing ever clears a free row's intent (recovery resets only
/// dead rows): a nacked message is skipped for ever. `intent_covers` (the
/// producers' check) ignores free rows; the take check does not.
#[test]
fn a_garbage_intent_in_a_free_row_does_not_hide_requeued_messages_for_ever() {
    let t = TempNs::in_shm("rt-free-intent");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    t.ns.producer("q").unwrap().publish(b"m0").unwrap();
    let path = queue_file(&t, "q");
    write_at(&path, AGENTS + 128 * 63 + 8, &u64::from(u32::MAX).to_le_bytes());
    let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    consumer.recv_timeout(Duration::from_secs(1)).unwrap().nack(true).unwrap();
    let started = Instant::now();
    let again = consumer.recv_timeout(Duration::from_secs(1)).map(|d| d.body().to_vec());
    assert!(started.elapsed() < Duration::from_secs(3), "recv_timeout overran");
    assert_eq!(again, Ok(b"m0".to_vec()), "the requeued message is hidden by a free row's intent");
}

/// Hostile intents and cursors must stay bounded: every row's intent set
/// to random values, `read` moved around; takes, batch takes, purge and
/// stats return (a typed error or not) without panicking or hanging.
#[test]
fn hostile_intents_and_read_cursors_give_bounded_behaviour() {
    let (seed, mut next) = common::seeded_rng();
    for round in 0..20 {
        let t = TempNs::in_shm("rt-hostile");
        t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(64 * 1024)).unwrap();
        let mut producer = t.ns.producer("q").unwrap();
        for i in 0..40u32 {
            producer.publish(&i.to_le_bytes()).unwrap();
        }
        let consumer = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
        for _ in 0..10 {
            if let Ok(d) = consumer.try_recv() {
                d.nack(true).unwrap();
            }
        }
        let path = queue_file(&t, "q");
        for row in 0..64u64 {
            if next() % 3 == 0 {
                write_at(&path, AGENTS + 128 * row + 8, &next().to_le_bytes());
            }
        }
        if next() % 2 == 0 {
            write_at(&path, READ, &(next() as u32 % 80).to_le_bytes());
        }
        let started = Instant::now();
        for _ in 0..50 {
            let _ = consumer.try_recv().map(|d| d.ack());
            let _ = consumer.drain(64, |d| drop(d.ack()));
        }
        let _ = t.ns.purge_queue("q");
        let _ = t.ns.queue_stats("q");
        let _ = consumer.recv_timeout(Duration::from_millis(20));
        assert!(started.elapsed() < Duration::from_secs(5), "round {round} (seed {seed}) took {:?}", started.elapsed());
    }
}

/// Competing manual-ack consumers, half nacking with requeue now and then,
/// half batch-taking with `recv_many`, over an elastic queue: every
/// message is acked exactly once, and a message seen twice was flagged
/// redelivered the second time.
#[test]
fn batch_takers_and_nacking_consumers_ack_each_message_once() {
    const N: u32 = 20_000;
    let t = TempNs::in_shm("rt-compete");
    t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(16 * 1024)).unwrap();
    let acked: Arc<Mutex<HashMap<u32, u32>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let dir = t.path().to_owned();
        let acked = acked.clone();
        let stop = stop.clone();
        workers.push(std::thread::spawn(move || {
            let ns = shmq::Namespace::open_dir(&dir).unwrap();
            let consumer = ns.consumer("q", ConsumerOptions::default().manual_ack().prefetch(128)).unwrap();
            let mut k = 0u32;
            let mut bad = Vec::new();
            let mut settle = |d: shmq::Delivery<'_>, acked: &Mutex<HashMap<u32, u32>>| {
                let id = u32::from_le_bytes(d.body()[..4].try_into().unwrap());
                k = k.wrapping_add(1);
                if w % 2 == 0 && k.is_multiple_of(7) {
                    d.nack(true).unwrap();
                } else {
                    if !d.redelivered() && acked.lock().unwrap().contains_key(&id) {
                        bad.push(id);
                    }
                    *acked.lock().unwrap().entry(id).or_default() += 1;
                    d.ack().unwrap();
                }
            };
            while !stop.load(Ordering::Relaxed) {
                if w % 2 == 1 {
                    let _ = consumer.recv_many(32, Duration::from_millis(20), |d| settle(d, &acked));
                } else if let Ok(d) = consumer.recv_timeout(Duration::from_millis(20)) {
                    settle(d, &acked);
                }
            }
            bad
        }));
    }
    let mut producer = t.ns.producer("q").unwrap();
    for chunk in (0..N).collect::<Vec<_>>().chunks(16) {
        let bodies: Vec<[u8; 4]> = chunk.iter().map(|i| i.to_le_bytes()).collect();
        producer.publish_batch(&bodies).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < N as usize && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let bad: Vec<u32> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let acked = acked.lock().unwrap();
    assert_eq!(acked.len(), N as usize, "messages lost");
    let twice: Vec<_> = acked.iter().filter(|(_, &c)| c > 1).collect();
    assert!(twice.is_empty(), "acked more than once: {:?}", &twice[..twice.len().min(5)]);
    assert!(bad.is_empty(), "seen again without the redelivered flag: {bad:?}");
}

/// Purge and drop-head overflow racing batch takers: every message is
/// consumed, purged or dropped, exactly once.
#[test]
fn purge_and_drop_head_racing_batch_takers_account_for_every_message_once() {
    const N: u32 = 20_000;
    let t = TempNs::in_shm("rt-purge");
    t.ns.declare_queue("q", &QueueOptions::default().max_length(300).overflow(Overflow::DropOldest)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let dir = t.path().to_owned();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let ns = shmq::Namespace::open_dir(&dir).unwrap();
                let consumer = ns.consumer("q", ConsumerOptions::default()).unwrap();
                let mut got = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let _ = consumer
                        .recv_many(64, Duration::from_millis(10), |d| got.push(u32::from_le_bytes(d.body()[..4].try_into().unwrap())));
                }
                got
            })
        })
        .collect();
    let purger = {
        let dir = t.path().to_owned();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let ns = shmq::Namespace::open_dir(&dir).unwrap();
            let mut purged = 0;
            while !stop.load(Ordering::Relaxed) {
                purged += ns.purge_queue("q").unwrap();
                std::thread::sleep(Duration::from_micros(300));
            }
            purged
        })
    };
    let mut producer = t.ns.producer("q").unwrap();
    for chunk in (0..N).collect::<Vec<_>>().chunks(32) {
        let bodies: Vec<[u8; 4]> = chunk.iter().map(|i| i.to_le_bytes()).collect();
        producer.publish_batch(&bodies).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.ns.queue_stats("q").unwrap().ready > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let mut got: Vec<u32> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let purged = purger.join().unwrap();
    let stats = t.ns.queue_stats("q").unwrap();
    let consumed = got.len();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), consumed, "a message was delivered twice");
    assert_eq!(stats.ready + stats.unacked, 0);
    assert_eq!(consumed as u64 + purged + stats.dropped, u64::from(N), "consumed {consumed}, purged {purged}, dropped {}", stats.dropped);
}

/// b54b2fe's fork handler covers a peer lock only once `Peer::register`
/// has taken the lock, renamed the file into place and added its
/// descriptor to `LOCK_FDS` (src/liveness.rs `guard_against_fork`, called
/// last). A fork from another thread in between gives the child an
/// unguarded descriptor of the locked file: the child then holds the
/// parent's liveness lock, and a parent killed meanwhile counts as alive
/// for as long as the child lives, the defect the handler was added for.
/// In a child process of its own (no other test's threads): one thread
/// opens namespaces while another forks; each fork child looks through
/// its descriptors (async-signal-safe calls only) for a peer file whose
/// `fdinfo` shows a FLOCK, and exits 1 if it holds one.
#[cfg(feature = "cli")]
#[test]
fn a_fork_while_another_thread_opens_a_namespace_never_inherits_a_liveness_lock() {
    let t = TempNs::in_shm("rt-fork-race");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "role_fork_while_opening", "--nocapture", "--include-ignored", "--test-threads=1"])
        .env(CHILD, t.path())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    let line = out.lines().find_map(|l| l.split_once("forks: ").map(|(_, r)| r.to_owned())).expect("the role's report");
    let (forks, held) = line.split_once(" held: ").unwrap();
    assert_eq!(held.trim(), "0", "a fork child held a liveness lock it inherited (of {forks} forks)");
}

/// Role for the test above.
#[cfg(feature = "cli")]
#[test]
fn role_fork_while_opening() {
    let Ok(dir) = std::env::var(CHILD) else { return };
    let root = PathBuf::from(dir);
    let stop = Arc::new(AtomicBool::new(false));
    let opener = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // A namespace handle of its own each time, and a handle
                // in it: a new peer file (registered at first use).
                let ns = shmq::Namespace::open_dir(&root).unwrap();
                ns.declare_queue("q", &QueueOptions::default()).unwrap();
                drop(ns.producer("q").unwrap());
                drop(ns);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let (mut held, mut forks) = (0, 0);
    while Instant::now() < deadline && held == 0 {
        // SAFETY: the child calls only async-signal-safe functions on stack
        // buffers, then _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above.
            unsafe { libc::_exit(i32::from(holds_a_peer_lock())) };
        }
        assert!(pid > 0);
        forks += 1;
        let mut status = 0;
        // SAFETY: reaps the child just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 1 {
            held += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    opener.join().unwrap();
    println!("forks: {forks} held: {held}");
}

/// In a fork child: true if a descriptor names a peer file (`peers/<token>`
/// or `tmp/peer-<token>`) and holds a FLOCK. Async-signal-safe.
#[cfg(feature = "cli")]
fn holds_a_peer_lock() -> bool {
    fn path_for(prefix: &[u8], fd: i32, out: &mut [u8; 64]) {
        out.fill(0);
        out[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 10];
        let (mut n, mut len) = (fd as u32, 0);
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            out[prefix.len() + i] = digits[len - 1 - i];
        }
    }
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for fd in 0..1024 {
        let mut path = [0u8; 64];
        path_for(b"/proc/self/fd/", fd, &mut path);
        let mut target = [0u8; 512];
        // SAFETY: NUL-terminated path; a buffer of the size given.
        let got = unsafe { libc::readlink(path.as_ptr().cast(), target.as_mut_ptr().cast(), target.len()) };
        if got <= 0 {
            continue;
        }
        let target = &target[..got as usize];
        if !contains(target, b"/peers/") && !contains(target, b"/tmp/peer-") {
            continue;
        }
        path_for(b"/proc/self/fdinfo/", fd, &mut path);
        // SAFETY: NUL-terminated path.
        let info = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY) };
        if info < 0 {
            continue;
        }
        let mut buf = [0u8; 1024];
        // SAFETY: a buffer of the size given.
        let n = unsafe { libc::read(info, buf.as_mut_ptr().cast(), buf.len()) };
        // SAFETY: our descriptor.
        unsafe { libc::close(info) };
        if n > 0 && contains(&buf[..n as usize], b"FLOCK") {
            return true;
        }
    }
    false
}
