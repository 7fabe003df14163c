//! Attacks on the issue-17 API work (commits after 1af0f8c): generic
//! `publish_batch`, `reserve_batch`, busy-poll publishing and `recv_many`,
//! and the publisher's reuse of its last routing decision.
//!
//! The review found seven defects (a claim left behind by a bad TTL, a
//! reservation over a blocking `max_length` waiting for ever, ready bytes
//! miscounted after a killed batch claim, `AsRef` read more than once
//! around a claim, a panic there wedging the queue, 64 by-value bodies
//! overflowing the stack, and a busy-polling producer calling the wait hook
//! every 20 µs); the tests below proved each, and pass since the fixes.

#![allow(clippy::disallowed_types)] // the tests' own counters, not shared memory

mod common;

use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TempNs;
use shmq::{ConsumerOptions, ExchangeKind, ExchangeOptions, Overflow, Properties, PublishError, QueueOptions, RecvError, WaitReason};

/// The env var a re-executed test binary reads to play a child's part:
/// `MODE:NAMESPACE_DIR`.
const CHILD: &str = "SHMQ_ISSUE17_CHILD";

fn bodies(ns: &shmq::Namespace, queue: &str) -> Vec<Vec<u8>> {
    let consumer = ns.consumer(queue, ConsumerOptions::default()).unwrap();
    std::iter::from_fn(|| consumer.try_recv().ok().map(|d| d.body().to_vec())).collect()
}

/// Runs this test binary's test `name` as a child with `CHILD` set to
/// `mode:dir`, stdout piped.
fn spawn_child(name: &str, mode: &str, dir: &std::path::Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--include-ignored"])
        .env(CHILD, format!("{mode}:{}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn child_role() -> Option<(String, String)> {
    let value = std::env::var(CHILD).ok()?;
    let (mode, dir) = value.split_once(':')?;
    Some((mode.to_owned(), dir.to_owned()))
}

// ---------------------------------------------------------------------------
// reserve_batch
// ---------------------------------------------------------------------------

/// `reserve_batch` claims first and only then parses the message TTL
/// (`expiry(self.ttl_for(properties)?)` after `self.claim(..)`): a bad
/// `expiration` returns an error with the claimed slot neither committed
/// nor abandoned, and the producer's claim intent left set. The slot stays
/// FREE at the head for good (recovery abandons only a *dead* producer's
/// claims), so every later message, from any producer, is stuck behind it.
#[test]
fn reserve_batch_with_a_bad_expiration_leaves_no_claim_behind() {
    let t = TempNs::new("i17-bad-exp");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let bad = Properties::new().expiration("soon");
    assert!(matches!(producer.reserve_batch(&bad, &[3]), Err(PublishError::InvalidProperty(_))));
    // `reserve` (single) checks the TTL before claiming: the control.
    assert!(matches!(producer.reserve(&bad, 3), Err(PublishError::InvalidProperty(_))));
    drop(producer);
    t.ns.producer("q").unwrap().publish(b"after").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let got = consumer.recv_timeout(Duration::from_secs(2)).map(|d| d.body().to_vec());
    assert_eq!(got, Ok(b"after".to_vec()), "a message published after the refused reservation never arrives");
}

/// A `block` queue with `max_length` 3: `publish_batch` caps its chunks at
/// the limit, `reserve_batch` does not. A reservation of 4 can never be
/// within the limit, even on an empty queue, yet it is neither refused
/// (`InvalidBatch`) nor granted: it waits out the publish timeout (for
/// ever without one).
#[test]
fn reserve_batch_over_a_blocking_max_length_is_refused_not_waited_for() {
    let t = TempNs::new("i17-maxlen-block");
    t.ns.declare_queue("q", &QueueOptions::default().max_length(3).overflow(Overflow::Block)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    producer.set_publish_timeout(Some(Duration::from_millis(300)));
    // The control: publish_batch of 4 into the same empty queue cannot
    // finish either (the 4th waits), but its chunks are capped at 3.
    let started = Instant::now();
    let result = producer.reserve_batch(&Properties::new(), &[1; 4]).map(|b| b.len());
    assert!(
        matches!(result, Err(PublishError::InvalidBatch(_)) | Ok(4)),
        "a batch of 4 on an empty queue of max_length 3: {result:?} after {:?}",
        started.elapsed()
    );
}

/// In the child: reserve a one-byte message in byte-limited queue "q", say
/// so, and wait to be killed.
fn reserve_and_stall(dir: &str) {
    let ns = shmq::Namespace::open_dir(dir).unwrap();
    let mut producer = ns.producer("q").unwrap();
    let one = producer.reserve(&Properties::new(), 1).unwrap();
    println!("reserved");
    std::thread::sleep(Duration::from_secs(600));
    drop(one);
}

/// A 1000-byte `block` queue whose slots all held 100-byte messages a lap
/// ago, 500 bytes ready, and a child killed holding a `mode` reservation:
/// returns the body bytes ready once publishing 100-byte messages stops
/// at the limit.
fn ready_bytes_after_a_killed_holder(name: &str, mode: &str) -> (usize, usize) {
    let t = TempNs::in_shm("i17-kill-bytes");
    // 64 slots, 8 KiB of data; 1000 ready body bytes at most.
    let options = QueueOptions::default().capacity_bytes(8192).max_length_bytes(1000).overflow(Overflow::Block);
    t.ns.declare_queue("q", &options).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    // One lap of 100-byte messages, each consumed: every slot's body_len
    // is now 100.
    for _ in 0..64 {
        producer.publish(&[b'a'; 100]).unwrap();
        drop(consumer.try_recv().unwrap());
    }
    drop(consumer);
    // 500 bytes ready.
    for _ in 0..5 {
        producer.publish(&[b'r'; 100]).unwrap();
    }
    let mut holder = spawn_child(name, mode, &t.dir);
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.ends_with("reserved"))), "the child did not reserve");
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    // Publish 100-byte messages until the limit holds them back (the
    // waits sweep: recovery abandons the dead claim).
    producer.set_publish_timeout(Some(Duration::from_millis(700)));
    let mut published = 0;
    while published < 20 && producer.publish(&[b'n'; 100]).is_ok() {
        published += 1;
    }
    // (`queue_stats().ready` counts the abandoned slots too: count what a
    // consumer gets.)
    (bodies(&t.ns, "q").iter().map(Vec::len).sum(), published)
}

/// `try_claim` records a claim's bytes in its *first* slot's `body_len`
/// only, and recovery (`abandon_stalled`) subtracts `body_len` of *every*
/// slot it abandons: a producer killed holding a batch claim took far more
/// off `ready_bytes` than the claim added (1700 bytes ready under a
/// 1000-byte limit). Fixed as `publish_batch` already did it: a queue with
/// a byte limit takes one message per claim, so a batch reservation there
/// is refused.
#[test]
fn a_batch_reservation_on_a_byte_limited_queue_is_refused() {
    let t = TempNs::new("i17-bytes-batch");
    let options = QueueOptions::default().max_length_bytes(1000).overflow(Overflow::Block);
    t.ns.declare_queue("q", &options).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    assert!(matches!(producer.reserve_batch(&Properties::new(), &[1; 8]), Err(PublishError::InvalidBatch(_))));
    producer.reserve_batch(&Properties::new(), &[1]).unwrap().commit();
    assert_eq!(bodies(&t.ns, "q"), [vec![0u8]]);
}

/// The control: a producer killed holding a single reservation.
#[test]
fn a_producer_killed_holding_one_reservation_keeps_max_length_bytes() {
    const NAME: &str = "a_producer_killed_holding_one_reservation_keeps_max_length_bytes";
    if let Some((_, dir)) = child_role() {
        reserve_and_stall(&dir);
        return;
    }
    let (ready, published) = ready_bytes_after_a_killed_holder(NAME, "reserve1");
    assert_eq!((ready, published), (1000, 5));
}

/// A priority queue: a batch reserved with a priority goes to its level,
/// is delivered before lower-priority messages once committed, and a
/// dropped one is never delivered nor stalls the queue.
#[test]
fn reserve_batch_with_a_priority_goes_to_its_level_and_a_dropped_one_does_not_stall() {
    let t = TempNs::new("i17-prio");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(5)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    producer.publish(b"low").unwrap();
    let high = Properties::new().priority(3);
    let mut dropped = producer.reserve_batch(&high, &[4, 4]).unwrap();
    dropped.body_mut(0).copy_from_slice(b"gone");
    drop(dropped);
    let mut batch = producer.reserve_batch(&high, &[2, 2, 2]).unwrap();
    for (i, text) in [b"h0", b"h1", b"h2"].iter().enumerate() {
        batch.body_mut(i).copy_from_slice(*text);
    }
    batch.commit();
    producer.publish_with(&high, b"h3").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let mut got = Vec::new();
    while let Ok(d) = consumer.recv_timeout(Duration::from_secs(2)) {
        got.push(String::from_utf8_lossy(d.body()).into_owned());
        if got.len() == 5 {
            break;
        }
    }
    assert_eq!(got, ["h0", "h1", "h2", "h3", "low"]);
    assert!(consumer.try_recv().is_err());
}

// ---------------------------------------------------------------------------
// publish_batch over any iterator
// ---------------------------------------------------------------------------

/// A body whose `as_ref` answers 8 bytes the first time and 300 after.
struct Shifty {
    calls: Cell<u32>,
    short: Vec<u8>,
    long: Vec<u8>,
}

impl AsRef<[u8]> for Shifty {
    fn as_ref(&self) -> &[u8] {
        let n = self.calls.get();
        self.calls.set(n + 1);
        if n == 0 {
            &self.short
        } else {
            &self.long
        }
    }
}

/// `publish_chunks` calls `as_ref()` on each body several times: once to
/// size the claim, again to count bytes, again to copy. Safe code whose
/// `AsRef` answers differently (interior mutability) gets a 1-unit claim
/// and then a 300-byte copy through an `unsafe` write whose only bound is
/// the data area: it overwrites the next ring lap, here a ready message
/// another publish committed (and, across processes, records other
/// producers are writing). The publish reports success.
#[test]
fn publish_batch_copies_no_more_than_it_claimed() {
    let t = TempNs::new("i17-shifty");
    // 64 data units (512 bytes), 4 slots; a record may take 32 units.
    t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(512)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    producer.publish(&[b'a'; 256]).unwrap(); // units [0, 32)
    drop(consumer.try_recv().unwrap());
    producer.publish(&[b'v'; 256]).unwrap(); // units [32, 64), stays ready
    let shifty = Shifty { calls: Cell::new(0), short: vec![b's'; 8], long: vec![b'X'; 300] };
    assert_eq!(producer.publish_batch([shifty]), Ok(1)); // claims unit [64, 65): index 0
    assert_eq!(t.ns.queue_stats("q").unwrap().rings, 1, "the set-up needs one ring");
    let victim = consumer.try_recv().unwrap();
    let intact = victim.body().iter().all(|&b| b == b'v');
    assert!(intact, "the ready message was overwritten: {:?}", String::from_utf8_lossy(&victim.body()[..64]));
}

/// `publish_batch_with` holds 64 items *by value* on the stack (`Held<T>`):
/// a batch of two 64 KiB arrays (`[u8; N]` is `AsRef<[u8]>`) needs 4 MiB
/// of stack and overflows a thread's default 2 MiB, aborting the process
/// (the same bodies passed as slices publish fine).
#[test]
fn publish_batch_of_array_bodies_fits_a_default_thread_stack() {
    const NAME: &str = "publish_batch_of_array_bodies_fits_a_default_thread_stack";
    if let Some((mode, dir)) = child_role() {
        if mode == "arrays" {
            let ns = shmq::Namespace::open_dir(&dir).unwrap();
            let published = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || {
                    let mut producer = ns.producer("q").unwrap();
                    let bodies: Vec<[u8; 65536]> = vec![[7u8; 65536]; 2];
                    // The control: the same bodies as slices.
                    assert_eq!(producer.publish_batch(bodies.iter().map(|b| &b[..])), Ok(2));
                    println!("slices ok");
                    producer.publish_batch(bodies).unwrap()
                })
                .unwrap()
                .join()
                .unwrap();
            println!("published {published}");
        }
        return;
    }
    let t = TempNs::new("i17-arrays");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let child = spawn_child(NAME, "arrays", &t.dir);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("slices ok"), "the control failed: {stdout}");
    assert!(out.status.success() && stdout.contains("published 2"), "child: {:?}, {stdout}", out.status);
    assert_eq!(bodies(&t.ns, "q").len(), 4);
}

/// An iterator that panics midway: the chunks before the panic are
/// published whole, nothing of the interrupted chunk is visible, no slot is
/// left claimed (the queue goes on), and the counts agree.
#[test]
fn publish_batch_with_a_panicking_iterator_publishes_whole_chunks_only() {
    let t = TempNs::new("i17-panic");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let iter = (0..200).map(|i| {
        assert!(i != 70, "the iterator fails at item 70");
        format!("m{i}")
    });
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| producer.publish_batch(iter)));
    assert!(outcome.is_err());
    producer.publish(b"after").unwrap();
    let got = bodies(&t.ns, "q");
    let mut expect: Vec<Vec<u8>> = (0..64).map(|i| format!("m{i}").into_bytes()).collect();
    expect.push(b"after".to_vec());
    assert_eq!(got, expect);
    assert_eq!(t.ns.queue_stats("q").unwrap().published, 65);
}

/// Zero items, exactly 64 and 128 (chunk boundaries), 130, and a bad item
/// midway: counts and contents right, in order.
#[test]
fn publish_batch_counts_at_chunk_boundaries_and_stops_at_a_bad_item() {
    let t = TempNs::new("i17-bounds");
    t.ns.declare_queue("q", &QueueOptions::default().max_message_bytes(1000)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    assert_eq!(producer.publish_batch(std::iter::empty::<Vec<u8>>()), Ok(0));
    let mut expect = Vec::new();
    let mut next = 0;
    for n in [64, 128, 130, 1] {
        let batch: Vec<String> = (next..next + n).map(|i| format!("b{i}")).collect();
        next += n;
        assert_eq!(producer.publish_batch(batch.iter()), Ok(n));
        expect.extend(batch.into_iter().map(String::into_bytes));
    }
    // The fourth of five is too large: the three before it go, nothing after.
    let bad: Vec<Vec<u8>> = vec![b"x0".to_vec(), b"x1".to_vec(), b"x2".to_vec(), vec![0; 2000], b"x4".to_vec()];
    assert!(matches!(producer.publish_batch(&bad), Err(PublishError::TooLarge { .. })));
    expect.extend(bad[..3].iter().cloned());
    assert_eq!(bodies(&t.ns, "q"), expect);
    assert_eq!(t.ns.queue_stats("q").unwrap().published, expect.len() as u64);
}

// ---------------------------------------------------------------------------
// busy poll
// ---------------------------------------------------------------------------

/// The wait hook is documented as "called about every 50 ms while a
/// publish waits" (Python runs Ctrl-C handling and the user's flow-control
/// callback in it, under the GIL). With `set_busy_poll(true)`, `wait`
/// returns after its 20 µs spin and the claim loop calls `wait` again, so
/// the hook runs on every spin: thousands of times in 300 ms.
#[test]
fn a_busy_polling_producer_calls_the_wait_hook_at_its_documented_pace() {
    let t = TempNs::new("i17-hook");
    t.ns.declare_queue("q", &QueueOptions::default().max_length(1).overflow(Overflow::Block)).unwrap();
    let mut counts = Vec::new();
    for busy in [false, true] {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        let mut producer = t.ns.producer("q").unwrap();
        producer.set_busy_poll(busy);
        producer.set_publish_timeout(Some(Duration::from_millis(300)));
        producer.set_wait_hook(Some(Arc::new(move |reason| {
            assert_eq!(reason, WaitReason::QueueFull);
            seen.fetch_add(1, Ordering::Relaxed);
            true
        })));
        if busy {
            // The queue is still full from the first round.
        } else {
            producer.publish(b"fills").unwrap();
        }
        assert_eq!(producer.publish(b"waits"), Err(PublishError::Timeout));
        counts.push(calls.load(Ordering::Relaxed));
    }
    assert!(counts[0] <= 20, "sleeping: {} hook calls in 300 ms", counts[0]);
    assert!(counts[1] <= 20, "busy-polling: {} hook calls in 300 ms (sleeping: {})", counts[1], counts[0]);
}

/// A busy-polling producer waiting for room notices the queue's deletion.
#[test]
fn a_busy_polling_producer_sees_its_queue_deleted() {
    let t = TempNs::new("i17-busy-del");
    t.ns.declare_queue("q", &QueueOptions::default().max_length(1).overflow(Overflow::Block)).unwrap();
    let ns = t.ns.clone();
    let waiter = std::thread::spawn(move || {
        let mut producer = ns.producer("q").unwrap();
        producer.set_busy_poll(true);
        producer.set_publish_timeout(Some(Duration::from_secs(20)));
        producer.publish(b"fills").unwrap();
        let started = Instant::now();
        (producer.publish(b"waits"), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    t.ns.delete_queue("q").unwrap();
    let (result, waited) = waiter.join().unwrap();
    assert_eq!(result, Err(PublishError::QueueDeleted));
    assert!(waited < Duration::from_secs(5), "took {waited:?}");
}

/// `recv_many` with busy poll: a standby single-active consumer times out
/// without taking the active one's messages; a deleted queue is reported.
#[test]
fn busy_polling_recv_many_respects_single_active_consumer_and_deletion() {
    let t = TempNs::new("i17-busy-sac");
    t.ns.declare_queue("q", &QueueOptions::default().single_active_consumer(true)).unwrap();
    let options = ConsumerOptions::default().manual_ack().busy_poll(true);
    let active = t.ns.consumer("q", options).unwrap();
    let standby = t.ns.consumer("q", options).unwrap();
    // Make `active` the active one.
    t.ns.producer("q").unwrap().publish(b"first").unwrap();
    let first = active.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(first.body(), b"first");
    let tag = first.tag();
    drop(first);
    t.ns.producer("q").unwrap().publish(b"second").unwrap();
    assert_eq!(standby.recv_many(8, Duration::from_millis(200), |_| panic!("the standby took one")), Err(RecvError::Timeout));
    active.ack(tag).unwrap();
    let mut got = Vec::new();
    active.recv_many(8, Duration::from_secs(2), |d| got.push(d.body().to_vec())).unwrap();
    assert_eq!(got, [b"second".to_vec()]);
    active.ack_multiple(shmq::DeliveryTag(0)).unwrap();
    drop(active);
    t.ns.delete_queue("q").unwrap();
    let started = Instant::now();
    assert_eq!(standby.recv_many(8, Duration::from_secs(20), |_| {}), Err(RecvError::QueueDeleted));
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------------------
// Publisher: the reused routing decision and the counts
// ---------------------------------------------------------------------------

/// The same exchange and key before and after the queue it routes to is
/// deleted (and redeclared), through the default exchange and a direct
/// one: no copy goes to a deleted queue, unroutable counts are right, and
/// per-exchange counts add a batch's messages.
#[test]
fn a_reused_route_follows_deletes_and_redeclares_and_counts_right() {
    let t = TempNs::new("i17-lastroute");
    let ns = &t.ns;
    ns.declare_queue("a", &QueueOptions::default()).unwrap();
    ns.declare_queue("b", &QueueOptions::default()).unwrap();
    ns.declare_exchange("d", &ExchangeOptions::new(ExchangeKind::Direct)).unwrap();
    ns.bind_queue("a", "d", "k", &[]).unwrap();
    ns.bind_queue("b", "d", "k", &[]).unwrap();
    let mut publisher = ns.publisher();
    let props = Properties::new();
    assert_eq!(publisher.publish("d", "k", &props, b"1").unwrap().queues, 2);
    assert_eq!(publisher.publish("", "a", &props, b"2").unwrap().queues, 1);
    ns.delete_queue("a").unwrap();
    let unroutable = ns.unroutable_count();
    assert_eq!(publisher.publish("d", "k", &props, b"3").unwrap().queues, 1);
    assert_eq!(publisher.publish("", "a", &props, b"4").unwrap().queues, 0);
    assert_eq!(ns.unroutable_count(), unroutable + 1);
    ns.declare_queue("a", &QueueOptions::default()).unwrap();
    assert_eq!(publisher.publish("", "a", &props, b"5").unwrap().queues, 1);
    assert_eq!(publisher.publish("d", "k", &props, b"6").unwrap().queues, 1);
    let batch: Vec<String> = (0..100).map(|i| format!("x{i}")).collect();
    assert_eq!(publisher.publish_batch("d", "k", &props, &batch).unwrap().queues, 100);
    assert_eq!(publisher.publish_mandatory("", "nobody", &props, b"m"), Err(PublishError::Unroutable));
    drop(publisher);
    assert_eq!(bodies(ns, "a"), [b"5".to_vec()]);
    let b = bodies(ns, "b");
    assert_eq!(b.len(), 103);
    assert_eq!(&b[..3], [b"1".to_vec(), b"3".to_vec(), b"6".to_vec()]);
    assert_eq!(ns.exchange_stats("d"), (103, 0));
    // "4" and the mandatory "nobody" are both unroutable there.
    assert_eq!(ns.exchange_stats(""), (4, 2));
}

// ---------------------------------------------------------------------------
// More: a panicking body, closed segments, the 2^32 wrap, priority levels
// ---------------------------------------------------------------------------

/// A body whose `as_ref` panics from its third call on: the first two are
/// the sizing ones, the third is the copy into the claimed record.
struct Panicky {
    calls: Cell<u32>,
    /// The call of `as_ref` that panics (0 = the first).
    fails_at: u32,
}

impl AsRef<[u8]> for Panicky {
    fn as_ref(&self) -> &[u8] {
        let n = self.calls.get();
        self.calls.set(n + 1);
        assert!(n != self.fails_at, "as_ref fails at call {n}");
        b"body"
    }
}

/// A panic out of a body's `as_ref` used to come after the claim (the copy
/// called it again) and unwind past `publish_chunks` with the slot claimed:
/// nothing committed or abandoned it, and everything published after it
/// waited for ever. Now each body's bytes are looked up once, before the
/// claim: a body that would fail on a second call publishes, and one that
/// fails on the first leaves nothing claimed. (The iterator-panic case was
/// sound: items are pulled before the claim.)
#[test]
fn a_panic_in_a_bodys_as_ref_does_not_wedge_the_queue() {
    let t = TempNs::new("i17-panicky");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let second = Panicky { calls: Cell::new(0), fails_at: 1 };
    assert_eq!(producer.publish_batch([second]), Ok(1), "as_ref is called once per body");
    let first = Panicky { calls: Cell::new(0), fails_at: 0 };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| producer.publish_batch([first])));
    assert!(outcome.is_err());
    drop(producer);
    t.ns.producer("q").unwrap().publish(b"after").unwrap();
    assert_eq!(bodies(&t.ns, "q"), [b"body".to_vec(), b"after".to_vec()]);
}

/// A producer attached to a ring that another producer's growth closed:
/// its `reserve_batch` claim fails `Closed`, it moves to the new tail and
/// the batch arrives whole, after everything in the closed ring.
#[test]
fn reserve_batch_moves_past_a_ring_another_producer_closed() {
    let t = TempNs::new("i17-closed");
    // 8 slots.
    t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(1024)).unwrap();
    let mut grower = t.ns.producer("q").unwrap();
    let mut late = t.ns.producer("q").unwrap();
    late.publish(b"late-0").unwrap();
    for i in 0..8 {
        grower.publish(format!("g{i}").as_bytes()).unwrap();
    }
    assert_eq!(t.ns.queue_stats("q").unwrap().rings, 2, "the first ring was closed");
    let mut batch = late.reserve_batch(&Properties::new(), &[2, 2, 2]).unwrap();
    for (i, text) in [b"b0", b"b1", b"b2"].iter().enumerate() {
        batch.body_mut(i).copy_from_slice(*text);
    }
    batch.commit();
    let got: Vec<String> = bodies(&t.ns, "q").into_iter().map(|b| String::from_utf8(b).unwrap()).collect();
    assert_eq!(got, ["late-0", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "b0", "b1", "b2"]);
}

/// A batch whose records straddle the 2^32 wrap of data positions (a
/// 64 MiB ring, its data cursor moved to 2^32 − U/4 units by half-ring
/// reservations): every record is placed, written and read back intact.
#[test]
fn reserve_batch_across_the_2_pow_32_data_wrap() {
    const UNITS: u64 = 1 << 23;
    const HALF_BYTES: usize = (UNITS as usize / 2) * 8;
    const EIGHTH_BYTES: usize = HALF_BYTES / 4;
    let t = TempNs::in_shm("i17-wrap");
    let options = QueueOptions::default().capacity_bytes(UNITS * 8).max_message_bytes(HALF_BYTES as u32);
    t.ns.declare_queue("q", &options).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let mut unwritten = |len: usize| {
        producer.reserve(&Properties::new(), len).unwrap().commit();
        drop(consumer.try_recv().unwrap());
    };
    unwritten(HALF_BYTES);
    for _ in 0..((1u64 << 32) - UNITS) / (UNITS / 2) {
        unwritten(HALF_BYTES);
    }
    // At 2^32 - U/2; a quarter more.
    unwritten(HALF_BYTES / 2);
    let mut batch = producer.reserve_batch(&Properties::new(), &[EIGHTH_BYTES; 4]).unwrap();
    for i in 0..4 {
        let body = batch.body_mut(i);
        assert_eq!(body.len(), EIGHTH_BYTES);
        body.fill(b'0' + i as u8);
    }
    batch.commit();
    assert_eq!(t.ns.queue_stats("q").unwrap().rings, 1);
    for i in 0..4u8 {
        let d = consumer.try_recv().unwrap();
        assert_eq!(d.body().len(), EIGHTH_BYTES);
        assert!(d.body().iter().all(|&b| b == b'0' + i), "record {i} damaged");
    }
    assert!(consumer.try_recv().is_err());
}

/// A busy-polling `recv_many` on a priority queue sees a level created
/// while it spins, and takes the higher priority first.
#[test]
fn busy_polling_recv_many_sees_a_new_priority_level() {
    let t = TempNs::new("i17-busy-prio");
    t.ns.declare_queue("q", &QueueOptions::default().max_priority(5)).unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default().busy_poll(true)).unwrap();
    let ns = t.ns.clone();
    let publisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        ns.producer("q").unwrap().publish_with(&Properties::new().priority(4), b"high").unwrap();
    });
    let mut got = Vec::new();
    consumer.recv_many(8, Duration::from_secs(5), |d| got.push(d.body().to_vec())).unwrap();
    publisher.join().unwrap();
    assert_eq!(got, [b"high".to_vec()]);
    let mut producer = t.ns.producer("q").unwrap();
    producer.publish(b"low").unwrap();
    producer.publish_with(&Properties::new().priority(2), b"mid").unwrap();
    got.clear();
    while got.len() < 2 {
        consumer.recv_many(8, Duration::from_secs(5), |d| got.push(d.body().to_vec())).unwrap();
    }
    assert_eq!(got, [b"mid".to_vec(), b"low".to_vec()]);
}
