//! The kill -9 stress test: producers and consumers on a work queue and on a
//! fanout, each a real process; every round kills a random one at a random
//! moment and restarts it. Then every message is accounted for:
//! - every message whose publish returned is consumed at least once;
//! - a message is delivered more than once only with the redelivered flag;
//! - nothing is delivered that was never published.
//!
//! Runs 20 s by default; `SHMQ_SOAK_SECS=600 cargo test --release --test
//! stress -- --nocapture` is the soak.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::TempNs;
use shmq::{ExchangeKind, ExchangeOptions, QueueOptions};

struct Agent {
    role: &'static str,
    target: &'static str,
    log: PathBuf,
    child: Option<Child>,
    incarnation: u32,
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn start(t: &TempNs, slot: usize, agent: &mut Agent) {
    let prefix = format!("p{slot}i{}", agent.incarnation);
    let child = t
        .shmq()
        .args(["stress-agent", agent.role, agent.target])
        .arg(&agent.log)
        .args(["--prefix", &prefix])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn stress agent");
    agent.child = Some(child);
}

fn kill(agent: &mut Agent) {
    if let Some(mut child) = agent.child.take() {
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn every_message_is_accounted_for_under_random_kill_9() {
    let secs: u64 = std::env::var("SHMQ_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let t = TempNs::in_shm("stress");
    let options = QueueOptions::default().capacity_bytes(1 << 20).max_message_bytes(256);
    t.ns.declare_queue("work", &options).unwrap();
    t.ns.declare_exchange("fan", &ExchangeOptions::new(ExchangeKind::Fanout)).unwrap();
    for q in ["fan_a", "fan_b"] {
        t.ns.declare_queue(q, &options).unwrap();
        t.ns.bind_queue(q, "fan", "", &[]).unwrap();
    }
    let layout: [(&'static str, &'static str); 7] = [
        ("producer-queue", "work"),
        ("producer-queue", "work"),
        ("producer-exchange", "fan"),
        ("consumer", "work"),
        ("consumer", "work"),
        ("consumer", "fan_a"),
        ("consumer", "fan_b"),
    ];
    let mut agents: Vec<Agent> = layout
        .iter()
        .enumerate()
        .map(|(i, &(role, target))| Agent { role, target, log: t.path().join(format!("agent{i}.log")), child: None, incarnation: 0 })
        .collect();
    for (i, a) in agents.iter_mut().enumerate() {
        start(&t, i, a);
    }
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut rng = XorShift(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut kills = 0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50 + rng.next() % 250));
        let victim = (rng.next() % agents.len() as u64) as usize;
        kill(&mut agents[victim]);
        kills += 1;
        agents[victim].incarnation += 1;
        start(&t, victim, &mut agents[victim]);
    }
    // Stop publishing (also with SIGKILL), then let the consumers drain.
    for a in agents.iter_mut().filter(|a| a.role.starts_with("producer")) {
        kill(a);
    }
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let busy: u64 = ["work", "fan_a", "fan_b"]
            .iter()
            .map(|q| {
                let s = t.ns.queue_stats(q).unwrap();
                s.ready + s.unacked
            })
            .sum();
        if busy == 0 {
            break;
        }
        assert!(Instant::now() < drain_deadline, "consumers did not drain: {busy} messages left (seed {seed})");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Give the last acks' log lines a moment, then stop the consumers.
    std::thread::sleep(Duration::from_millis(200));
    for a in agents.iter_mut() {
        kill(a);
    }

    // Account for every message.
    let mut attempted: HashMap<&str, HashSet<String>> = HashMap::new();
    let mut published: HashMap<&str, HashSet<String>> = HashMap::new();
    let mut delivered: HashMap<String, Vec<(String, bool)>> = HashMap::new();
    for a in &agents {
        let text = read_log(&a.log);
        for l in text.lines() {
            let parts: Vec<&str> = l.split(' ').collect();
            match parts.as_slice() {
                ["attempt", id] => {
                    attempted.entry(a.target).or_default().insert((*id).to_owned());
                }
                ["ok", id] => {
                    published.entry(a.target).or_default().insert((*id).to_owned());
                }
                ["got", queue, id, flag] => delivered.entry((*queue).to_owned()).or_default().push(((*id).to_owned(), *flag == "1")),
                _ => panic!("torn log line {l:?} in {}", a.log.display()),
            }
        }
    }
    let mut total_published = 0;
    let mut total_deliveries = 0;
    let mut duplicates = 0;
    let mut redelivered = 0;
    for (queue, source) in [("work", "work"), ("fan_a", "fan"), ("fan_b", "fan")] {
        let attempts = attempted.get(source).cloned().unwrap_or_default();
        let oks = published.get(source).cloned().unwrap_or_default();
        let got = delivered.get(queue).cloned().unwrap_or_default();
        let mut by_id: HashMap<&str, Vec<bool>> = HashMap::new();
        for (id, redelivered) in &got {
            assert!(attempts.contains(id), "{queue}: delivered {id}, which was never published (seed {seed})");
            by_id.entry(id).or_default().push(*redelivered);
        }
        for id in &oks {
            assert!(by_id.contains_key(id.as_str()), "{queue}: {id} was published but never consumed (seed {seed})");
        }
        for (id, flags) in &by_id {
            let first_time = flags.iter().filter(|r| !**r).count();
            assert!(first_time <= 1, "{queue}: {id} delivered {} times without the redelivered flag (seed {seed})", first_time);
            duplicates += flags.len() - 1;
        }
        total_published += oks.len();
        total_deliveries += got.len();
        redelivered += got.iter().filter(|(_, r)| *r).count();
        assert!(!oks.is_empty(), "{queue}: nothing was published in {secs} s (seed {seed})");
    }
    eprintln!(
        "stress: {secs} s, {kills} rounds with one kill -9 each, {total_published} messages published (all consumed), \
         {total_deliveries} deliveries ({redelivered} flagged redelivered), {duplicates} duplicates (all flagged), seed {seed}"
    );
}
