//! Elastic queues (issue 12): what growing and shrinking cost.
//!
//! - growth step: the one publish that finds a 64 KiB ring full and links
//!   the next (256 KiB) ring, against an ordinary publish;
//! - growth steps during a burst into a default (8 MiB) queue: the
//!   `publish_batch` calls that linked the 32 MiB, 128 MiB and 256 MiB rings;
//! - shrink step: after a grown queue is drained, the consumer's idle polls
//!   retire the closed rings, replace the large idle tail by a first-size
//!   ring and then retire the large one. Sweeps run at most every 200 ms, so
//!   the wall time until the queue is back to one first-size ring is mostly
//!   waiting; the cost of each step is the extra time of the poll that did it;
//! - burst: 16 M x 64 B (1 GiB of bodies) with `publish_batch` into a
//!   default queue with no consumer, from empty (it grows to hold all of
//!   it), against the same publishes into a 256 MiB ring that never grows
//!   (1 M per round, drained untimed between rounds), interleaved.
//!
//! Plain timing with repetitions, medians and min–max; no criterion
//! statistics (a growth step happens once per queue). Run with
//! `cargo bench --bench elastic`; `SHMQ_BURST_MESSAGES` scales the burst
//! down if /dev/shm cannot hold it (the growing burst of 16 M took 1.2 GiB
//! of rings at 1528dfb, plus the 256 MiB ring of the steady run).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use shmq::{ConsumerOptions, Namespace, QueueOptions};

const BODY: [u8; 64] = [0x5A; 64];
const BATCH: usize = 64;

fn fresh(tag: &str) -> (PathBuf, Namespace) {
    let dir = PathBuf::from(format!("/dev/shm/shmq-elastic-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ns = Namespace::open_dir(&dir).expect("open namespace");
    (dir, ns)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn summary(v: &mut [f64]) -> String {
    let m = median(v);
    format!("median {m:.1} (min {:.1}, max {:.1}, n {})", v[0], v[v.len() - 1], v.len())
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// (a) The publish that finds a 64 KiB ring full and links a 256 KiB one.
fn growth_step() {
    const REPS: usize = 40;
    let (dir, ns) = fresh("grow");
    let (mut step, mut ordinary, mut extra) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..REPS {
        let name = format!("g{rep}");
        ns.declare_queue(&name, &QueueOptions::default().capacity_bytes(64 << 10)).unwrap();
        let mut producer = ns.producer(&name).unwrap();
        let mut times = Vec::new();
        let mut grew_at = None;
        for i in 0..4096 {
            let t = Instant::now();
            producer.publish(&BODY).unwrap();
            let d = t.elapsed();
            times.push(us(d));
            if ns.queue_stats(&name).unwrap().rings > 1 {
                grew_at = Some(i);
                break;
            }
        }
        let at = grew_at.expect("a 64 KiB queue grew within 4096 publishes");
        let grow = times[at];
        let mut rest = times[..at].to_vec();
        let typical = median(&mut rest);
        step.push(grow);
        ordinary.push(typical);
        extra.push(grow - typical);
        drop(producer);
        ns.delete_queue(&name).unwrap();
    }
    println!("growth step, 64 KiB -> 256 KiB ring, {REPS} fresh queues, one publish of 64 B each:");
    println!("  the publish that grew:      {} us", summary(&mut step));
    println!("  an ordinary publish:        {} us", summary(&mut ordinary));
    println!("  extra cost of the step:     {} us", summary(&mut extra));
    drop(ns);
    let _ = std::fs::remove_dir_all(dir);
}

/// (b) One shrink: grow a queue (`first` bytes) to `messages` ready, drain
/// it, then poll idle until it is one first-size ring again.
fn shrink_step(label: &str, first: u64, messages: u64, reps: usize) {
    let (mut wall, mut link, mut retire, mut peak_mib, mut steps) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut in_drain = 0;
    for rep in 0..reps {
        let (dir, ns) = fresh(&format!("shrink-{label}-{rep}"));
        ns.declare_queue("q", &QueueOptions::default().capacity_bytes(first)).unwrap();
        let first_bytes = ns.queue_stats("q").unwrap().capacity_bytes;
        let mut producer = ns.producer("q").unwrap();
        let bodies = [&BODY[..]; BATCH];
        let mut sent = 0;
        while sent < messages {
            let n = (messages - sent).min(BATCH as u64) as usize;
            producer.publish_batch(&bodies[..n]).unwrap();
            sent += n as u64;
        }
        drop(producer);
        let grown = ns.queue_stats("q").unwrap();
        peak_mib.push(grown.capacity_bytes as f64 / (1 << 20) as f64);
        let consumer = ns.consumer("q", ConsumerOptions::default()).unwrap();
        let mut got = 0u64;
        while got < messages {
            got += consumer.drain(4096, |_| {}).unwrap() as u64;
        }
        let drained = Instant::now();
        let mut state = {
            let s = ns.queue_stats("q").unwrap();
            (s.rings, s.capacity_bytes)
        };
        if state == (1, first_bytes) {
            in_drain += 1;
        }
        // Idle polls of 1 ms; each may sweep (at most every 200 ms). Note the
        // extra time of the poll in which the largest ring came or went.
        let mut polls = Vec::new();
        let mut events = Vec::new();
        while state != (1, first_bytes) {
            let t = Instant::now();
            assert!(consumer.recv_timeout(Duration::from_millis(1)).is_err(), "the queue was drained");
            let d = us(t.elapsed());
            polls.push(d);
            let s = ns.queue_stats("q").unwrap();
            let now = (s.rings, s.capacity_bytes);
            if now != state {
                events.push((state, now, d));
                state = now;
            }
            assert!(drained.elapsed() < Duration::from_secs(10), "{label}: no shrink within 10 s (at {state:?})");
        }
        wall.push(drained.elapsed().as_secs_f64() * 1e3);
        let typical = if polls.is_empty() { 0.0 } else { median(&mut polls) };
        // The last change retires the large tail (the queue is one
        // first-size ring after it); the ones before it link the first-size
        // tail, together with retiring the closed rings the drain's own
        // sweeps had not retired yet. A poll that retires a ring and links
        // one of the same size leaves both figures as they were: not seen.
        if let Some((last, earlier)) = events.split_last() {
            retire.push(last.2 - typical);
            if !earlier.is_empty() {
                link.push(earlier.iter().map(|e| e.2 - typical).sum());
                steps.push(earlier.len() as f64);
            }
        }
        drop(consumer);
        drop(ns);
        let _ = std::fs::remove_dir_all(dir);
    }
    println!("shrink, first ring {} KiB, {messages} x 64 B published, drained, {reps} reps:", first >> 10);
    println!("  grown to (all rings):                           {} MiB", summary(&mut peak_mib));
    println!("  drain end -> one first-size ring (wall):        {} ms", summary(&mut wall));
    if !link.is_empty() {
        println!("  extra cost of the poll(s) linking the first-size tail (and retiring closed rings): {} us", summary(&mut link));
        println!("    polls that changed the chain before the last one: {}", summary(&mut steps));
    }
    if !retire.is_empty() {
        println!("  extra cost of the poll retiring the large tail: {} us", summary(&mut retire));
    }
    if in_drain > 0 {
        println!("  ({in_drain} reps were already shrunk when the drain returned)");
    }
}

/// One growing burst from empty: returns (seconds publishing, rings at the
/// end, capacity at the end, growth steps as (MiB of the ring added, µs of
/// the call that added it)).
fn burst_growing(messages: u64) -> (f64, u32, u64, Vec<(u64, f64)>) {
    let (dir, ns) = fresh("burst-grow");
    ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let mut producer = ns.producer("q").unwrap();
    let bodies = [&BODY[..]; BATCH];
    let mut steps = Vec::new();
    let mut capacity = ns.queue_stats("q").unwrap().capacity_bytes;
    let mut checking = Duration::ZERO;
    let mut sent = 0u64;
    let started = Instant::now();
    while sent < messages {
        let n = (messages - sent).min(BATCH as u64) as usize;
        let t = Instant::now();
        producer.publish_batch(&bodies[..n]).unwrap();
        let d = t.elapsed();
        sent += n as u64;
        // A call of 64 publishes takes a few µs; one that took over 100 µs
        // either grew the queue or was preempted: the stats tell which
        // (their own time is taken out of the total).
        if d > Duration::from_micros(100) {
            let c = Instant::now();
            let now = ns.queue_stats("q").unwrap().capacity_bytes;
            if now != capacity {
                steps.push(((now - capacity) >> 20, us(d)));
                capacity = now;
            }
            checking += c.elapsed();
        }
    }
    let secs = (started.elapsed() - checking).as_secs_f64();
    let stats = ns.queue_stats("q").unwrap();
    assert_eq!(stats.capacity_bytes, capacity, "a growth step went unnoticed (a call under 100 us)");
    assert_eq!(stats.ready, messages);
    drop(producer);
    drop(ns);
    let _ = std::fs::remove_dir_all(dir);
    (secs, stats.rings, stats.capacity_bytes, steps)
}

/// The same publishes into a 256 MiB ring that never grows: rounds of
/// `round` messages, each drained (untimed) before the next.
fn burst_steady(messages: u64, round: u64) -> f64 {
    let (dir, ns) = fresh("burst-steady");
    ns.declare_queue("q", &QueueOptions::default().capacity_bytes(256 << 20)).unwrap();
    let mut producer = ns.producer("q").unwrap();
    let consumer = ns.consumer("q", ConsumerOptions::default()).unwrap();
    let bodies = [&BODY[..]; BATCH];
    let mut busy = Duration::ZERO;
    let mut sent = 0u64;
    while sent < messages {
        let this = round.min(messages - sent);
        let mut done = 0;
        let t = Instant::now();
        while done < this {
            let n = (this - done).min(BATCH as u64) as usize;
            producer.publish_batch(&bodies[..n]).unwrap();
            done += n as u64;
        }
        busy += t.elapsed();
        sent += this;
        let mut got = 0;
        while got < this {
            got += consumer.drain(4096, |_| {}).unwrap() as u64;
        }
        assert_eq!(ns.queue_stats("q").unwrap().rings, 1, "the steady ring grew");
    }
    drop((producer, consumer));
    drop(ns);
    let _ = std::fs::remove_dir_all(dir);
    busy.as_secs_f64()
}

fn burst() {
    let messages: u64 = std::env::var("SHMQ_BURST_MESSAGES").ok().and_then(|s| s.parse().ok()).unwrap_or(16 << 20);
    const REPS: usize = 5;
    let (mut grow_rate, mut steady_rate, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    let mut steps_by_size: Vec<(u64, Vec<f64>)> = Vec::new();
    let mut shape = (0, 0);
    for _ in 0..REPS {
        let (secs, rings, capacity, steps) = burst_growing(messages);
        let steady = burst_steady(messages, 1 << 20);
        let (g, s) = (messages as f64 / secs, messages as f64 / steady);
        grow_rate.push(g / 1e6);
        steady_rate.push(s / 1e6);
        ratio.push(g / s);
        shape = (rings, capacity);
        for (mib, d) in steps {
            match steps_by_size.iter_mut().find(|(m, _)| *m == mib) {
                Some((_, v)) => v.push(d),
                None => steps_by_size.push((mib, vec![d])),
            }
        }
    }
    let mb = |v: &[f64]| v.iter().map(|m| m * 64.0).collect::<Vec<_>>();
    println!(
        "burst: {messages} x 64 B ({} MiB of bodies) with publish_batch of {BATCH}, no consumer, {REPS} reps interleaved:",
        (messages * 64) >> 20
    );
    println!("  growing from empty (default 8 MiB first ring; ended with {} rings, {} MiB):", shape.0, shape.1 >> 20);
    println!("    {} M msg/s", summary(&mut grow_rate.clone()));
    println!("    {} MB/s of bodies", summary(&mut mb(&grow_rate)));
    println!("  256 MiB ring that never grows (rounds of 1 M, drained untimed):");
    println!("    {} M msg/s", summary(&mut steady_rate.clone()));
    println!("    {} MB/s of bodies", summary(&mut mb(&steady_rate)));
    ratio.sort_by(f64::total_cmp);
    println!("  paired ratio growing / steady: median {:.3} (min {:.3}, max {:.3})", median(&mut ratio), ratio[0], ratio[ratio.len() - 1]);
    println!("  growth steps in the growing burst: time of the publish_batch call that linked the ring, by ring size:");
    steps_by_size.sort_by_key(|s| s.0);
    for (mib, mut v) in steps_by_size {
        println!("    {mib:>4} MiB ring: {} us", summary(&mut v));
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks parts.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let want = |part: &str| filter.is_empty() || filter.iter().any(|f| part.contains(f.as_str()));
    if want("growth") {
        growth_step();
    }
    if want("shrink") {
        shrink_step("small", 64 << 10, 3000, 15);
        shrink_step("default", 8 << 20, 1_400_000, 5);
    }
    if want("burst") {
        burst();
    }
}
