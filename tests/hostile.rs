//! Shared memory is untrusted input: damaged, truncated, foreign and newer
//! segments give typed errors, never a panic or a hang.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use common::TempNs;
use shmq::{ConsumerOptions, Error, QueueOptions};

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn options() -> QueueOptions {
    QueueOptions::default().capacity_bytes(4096).max_messages(16).max_message_bytes(512)
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
    std::fs::write(t.path().join("queues").join("q"), vec![b'x'; 20000]).unwrap();
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
    patch(&t.path().join("shmq.ns"), 8, &7u32.to_le_bytes());
    assert!(matches!(shmq::Namespace::open_dir(t.path()), Err(Error::IncompatibleVersion { found: 7, .. })));
}

#[test]
fn unready_segment_is_corrupt() {
    let t = TempNs::new("unready");
    t.ns.declare_queue("q", &options()).unwrap();
    patch(&queue_file(&t), 16, &0u32.to_le_bytes());
    let err = t.ns.producer("q").unwrap_err();
    assert!(err.to_string().contains("never finished initialising"), "{err}");
}

#[test]
fn random_header_corruption_never_panics() {
    let t = TempNs::new("fuzzheader");
    t.ns.declare_queue("q", &options()).unwrap();
    let pristine = std::fs::read(queue_file(&t)).unwrap();
    let mut rng = XorShift(0x5EED);
    let mut rejected = 0;
    for _ in 0..3000 {
        let mut bytes = pristine.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() % 512) as usize;
            bytes[at] ^= 1 << (rng.next() % 8);
        }
        std::fs::write(queue_file(&t), &bytes).unwrap();
        match t.ns.queue_stats("q") {
            Ok(_) => {}
            Err(Error::Corrupt { .. }) | Err(Error::IncompatibleVersion { .. }) => rejected += 1,
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    // Flips in reserved or informational bytes are harmless; the seed is
    // fixed, so this count is deterministic.
    assert!(rejected > 500, "only {rejected} corruptions detected");
}

#[test]
fn random_ring_corruption_gives_errors_not_panics_or_hangs() {
    let t = TempNs::new("fuzzring");
    t.ns.declare_queue("q", &options()).unwrap();
    let path = queue_file(&t);
    let ring_start = 512u64;
    let ring_end = std::fs::metadata(&path).unwrap().len();
    let mut rng = XorShift(0xC0FFEE);
    for round in 0..400 {
        {
            let mut producer = t.ns.producer("q").unwrap();
            producer.set_publish_timeout(Some(Duration::from_millis(5)));
            for i in 0..(rng.next() % 12) {
                let _ = producer.publish(format!("m{round}-{i}").as_bytes());
            }
        }
        // Scribble over cursors, slots, agents or data.
        for _ in 0..1 + rng.next() % 8 {
            let at = ring_start + rng.next() % (ring_end - ring_start);
            patch(&path, at, &[rng.next() as u8]);
        }
        let consumer = match t.ns.consumer("q", ConsumerOptions::default().manual_ack()) {
            Ok(c) => c,
            Err(Error::TooManyHandles { .. }) => continue,
            Err(e) => panic!("{e}"),
        };
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
        drop(consumer);
        let _ = t.ns.queue_stats("q");
        if round % 50 == 49 {
            // Start afresh now and then so later rounds see live traffic.
            t.ns.delete_queue("q").unwrap();
            t.ns.declare_queue("q", &options()).unwrap();
        }
    }
}
