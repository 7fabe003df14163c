//! Shared memory is untrusted input: damaged, truncated, foreign and newer
//! segments give typed errors, never a panic or a hang.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use common::TempNs;
use shmq::{ConsumerOptions, Error, QueueOptions};

/// docs/LAYOUT.md: the queue header's size, where the `RingHeader` starts.
const RING_OFFSET: u64 = 1024;

fn options() -> QueueOptions {
    QueueOptions::default().capacity_bytes(4096).max_length(16).max_message_bytes(512)
}

fn queue_file(t: &TempNs) -> std::path::PathBuf {
    t.path().join("queues").join("q")
}

fn patch(path: &std::path::Path, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn foreign_file_is_corrupt() {
    let t = TempNs::new("foreign");
    // A file the routing table does not list is no queue at all.
    std::fs::write(t.path().join("queues").join("q"), vec![b'x'; 20000]).unwrap();
    assert!(matches!(t.ns.producer("q").unwrap_err(), Error::QueueNotFound { .. }));
    // A registered queue whose file was replaced by foreign bytes.
    // Declaring over it is refused (the file is not overwritten) ...
    assert!(matches!(t.ns.declare_queue("q", &options()).unwrap_err(), Error::Corrupt { .. }));
    // ... until it is removed.
    std::fs::remove_file(queue_file(&t)).unwrap();
    t.ns.declare_queue("q", &options()).unwrap();
    std::fs::write(queue_file(&t), vec![b'x'; 20000]).unwrap();
    let err = t.ns.producer("q").unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("bad magic"));
    assert!(err.to_string().contains("queues/q"), "names the path: {err}");
}

#[test]
fn truncated_file_is_corrupt() {
    let t = TempNs::new("truncated");
    t.ns.declare_queue("q", &options()).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(queue_file(&t)).unwrap();
    for len in [0u64, 100, 511, 9000] {
        f.set_len(len).unwrap();
        let err = t.ns.consumer("q", ConsumerOptions::default()).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "len {len}: {err}");
    }
}

#[test]
fn newer_layout_version_is_incompatible() {
    let t = TempNs::new("version");
    t.ns.declare_queue("q", &options()).unwrap();
    patch(&queue_file(&t), 8, &99u32.to_le_bytes());
    match t.ns.producer("q").unwrap_err() {
        Error::IncompatibleVersion { found, supported, .. } => assert_eq!((found, supported), (99, shmq::LAYOUT_VERSION)),
        other => panic!("expected IncompatibleVersion, got {other}"),
    }
    let newer = shmq::LAYOUT_VERSION + 1;
    patch(&t.path().join("shmq.ns"), 8, &newer.to_le_bytes());
    assert!(matches!(shmq::Namespace::open_dir(t.path()), Err(Error::IncompatibleVersion { found, .. }) if found == newer));
}

#[test]
fn unready_segment_is_corrupt() {
    let t = TempNs::new("unready");
    t.ns.declare_queue("q", &options()).unwrap();
    patch(&queue_file(&t), 16, &0u32.to_le_bytes());
    let err = t.ns.producer("q").unwrap_err();
    assert!(err.to_string().contains("never finished initialising"), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 1000, failure_persistence: None, ..Default::default() })]

    /// Any flips in the header, and any truncation: a typed error or a
    /// working queue, never a panic.
    #[test]
    fn header_corruption_is_a_typed_error(flips in proptest::collection::vec((0usize..RING_OFFSET as usize, 1u8..=255), 1..6), cut in proptest::option::of(0u64..20_000)) {
        let t = TempNs::new("prop-header");
        t.ns.declare_queue("q", &options()).unwrap();
        let mut bytes = std::fs::read(queue_file(&t)).unwrap();
        for (at, xor) in &flips {
            bytes[*at] ^= xor;
        }
        if let Some(len) = cut {
            bytes.truncate(len as usize);
        }
        std::fs::write(queue_file(&t), &bytes).unwrap();
        match t.ns.queue_stats("q") {
            Ok(_) | Err(Error::Corrupt { .. }) | Err(Error::IncompatibleVersion { .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
        if let Ok(consumer) = t.ns.consumer("q", ConsumerOptions::default()) {
            let _ = consumer.recv_timeout(Duration::from_millis(1));
        }
    }

    /// Any bytes written anywhere in the ring (cursors, slots, agents, data)
    /// while messages are queued: consumers and producers get messages or
    /// typed errors, never a panic or a hang.
    #[test]
    fn ring_corruption_never_panics_or_hangs(
        before in 0u8..12,
        writes in proptest::collection::vec((0u64..1_000_000, proptest::prelude::any::<u8>()), 1..12),
    ) {
        let t = TempNs::new("prop-ring");
        t.ns.declare_queue("q", &options()).unwrap();
        let path = queue_file(&t);
        {
            let mut producer = t.ns.producer("q").unwrap();
            for i in 0..before {
                producer.publish(format!("m{i}").as_bytes()).unwrap();
            }
        }
        let len = std::fs::metadata(&path).unwrap().len();
        for (at, byte) in &writes {
            patch(&path, RING_OFFSET + at % (len - RING_OFFSET), &[*byte]);
        }
        if let Ok(consumer) = t.ns.consumer("q", ConsumerOptions::default().manual_ack()) {
            for _ in 0..32 {
                match consumer.recv_timeout(Duration::from_millis(1)) {
                    Ok(d) => {
                        let _ = d.body().len();
                        let _ = d.properties();
                        let _ = d.ack();
                    }
                    Err(_) => break,
                }
            }
        }
        if let Ok(mut producer) = t.ns.producer("q") {
            producer.set_publish_timeout(Some(Duration::from_millis(2)));
            let _ = producer.publish(b"after");
        }
        let _ = t.ns.queue_stats("q");
        let _ = t.ns.peek("q", 16);
        let _ = t.ns.collect_garbage();
    }
}

#[test]
fn gc_removes_what_a_creator_that_died_mid_build_left_in_tmp() {
    let t = TempNs::new("gc-tmp");
    let leftover = t.path().join("tmp").join("q-deadbeef");
    std::fs::write(&leftover, [0u8; 4096]).unwrap();
    let fresh = t.path().join("tmp").join("q-building-now");
    std::fs::write(&fresh, [0u8; 16]).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    std::fs::File::options().write(true).open(&leftover).unwrap().set_modified(old).unwrap();
    t.ns.collect_garbage().unwrap();
    assert!(!leftover.exists(), "a minute-old half-built segment is removed");
    assert!(fresh.exists(), "one being built now is left alone");
}

#[test]
fn counters_near_overflow_are_summed_saturating_never_a_panic() {
    let t = TempNs::new("counters");
    t.ns.declare_queue("q", &options()).unwrap();
    let mut producer = t.ns.producer("q").unwrap();
    producer.publish(b"one").unwrap();
    // docs/LAYOUT.md: the retired counters follow `deleted` and
    // `had_consumer` on RingHeader line 6. With the retired `published` at
    // u64::MAX, adding the live producer's 1 would overflow.
    let retired_published = RING_OFFSET + 128 * 6 + 8;
    patch(&queue_file(&t), retired_published, &u64::MAX.to_le_bytes());
    let stats = t.ns.queue_stats("q").unwrap();
    assert_eq!(stats.published, u64::MAX, "{stats:?}");
    let out = t.run(&["list-queues", "--json"]);
    assert!(out.contains(&u64::MAX.to_string()), "{out}");
}
