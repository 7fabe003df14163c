//! Queue segments are mapped with MAP_POPULATE, so the hot path takes no
//! page faults: a first touch of a page costs a minor fault of microseconds,
//! which was the whole of shmq's latency p99 before. One test in its own
//! process, so no other test's faults are counted.

mod common;

use common::TempNs;
use shmq::{ConsumerOptions, QueueOptions};

/// Minor page faults of this process so far (field 10 of /proc/self/stat).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("procfs");
    // The command name (field 2) may hold spaces; count from after its ')'.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    rest.split(' ').nth(7).expect("minflt").parse().expect("a number")
}

#[test]
fn publishing_and_consuming_through_the_whole_ring_takes_no_page_faults() {
    let t = TempNs::in_shm("nofaults");
    // 4 MiB of data: 1024 pages, each touched for the first time below.
    t.ns.declare_queue("q", &QueueOptions::default().capacity_bytes(4 << 20).max_message_bytes(4096)).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    let consumer = t.ns.consumer("q", ConsumerOptions::default()).unwrap();
    let body = [7u8; 1000];
    let mut sink = [0u8; 1000];
    // One round first, so that code paths and the stack are warm.
    producer.publish(&body).unwrap();
    drop(consumer.try_recv().unwrap());
    let before = minor_faults();
    // 8192 messages of ~1 KiB: twice round the 4 MiB data ring.
    for _ in 0..8192 {
        producer.publish(&body).unwrap();
        let d = consumer.try_recv().unwrap();
        sink.copy_from_slice(d.body());
    }
    let faults = minor_faults() - before;
    assert_eq!(sink, body);
    // Without MAP_POPULATE this is about 2 × 1024 (producer's and
    // consumer's mappings each fault every page); a handful of unrelated
    // faults (the allocator, procfs) are allowed.
    assert!(faults < 32, "{faults} minor page faults on the hot path");
}
