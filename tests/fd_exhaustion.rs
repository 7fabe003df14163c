//! A sweeping process that has run out of file descriptors cannot look at
//! its peers' liveness files. That must read as "unknown, ask again", never
//! as "dead": a live consumer's unacked message must not be requeued to
//! someone else, and a live producer's open reservation must not be
//! abandoned (its commit would then land on a reused slot). One test
//! function, because exhausting descriptors would break tests running
//! beside it in this process.

mod common;

use std::time::Duration;

use common::TempNs;
use shmq::{ConsumerOptions, Namespace, Overflow, Properties, QueueOptions, RecvError};

/// Opens files until the process is out of descriptors; drop to give back.
fn exhaust_descriptors() -> Vec<std::fs::File> {
    let mut hog = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        hog.push(file);
    }
    hog
}

#[test]
fn a_sweeper_out_of_descriptors_never_takes_live_peers_for_dead() {
    // A live consumer's unacked message stays its own.
    let t = TempNs::in_shm("emfile-consumer");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    t.ns.producer("q").unwrap().publish(b"held").unwrap();
    // "Process" A: its own namespace handle, so its own peer token and lock.
    let a_ns = Namespace::open_dir(t.path()).unwrap();
    let a = a_ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    let held = a.try_recv().unwrap();
    let tag = held.tag();
    std::mem::forget(held);
    let b = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    assert!(b.recv_timeout(Duration::from_millis(300)).is_err());
    let hog = exhaust_descriptors();
    // B sweeps at least twice while waiting (every 200 ms).
    let got = b.recv_timeout(Duration::from_millis(600)).map(|d| d.body().to_vec());
    drop(hog);
    assert_eq!(got, Err(RecvError::Timeout), "a live consumer's unacked message was requeued to another consumer");
    a.ack(tag).expect("the live consumer still holds its delivery");
    drop((a, b, a_ns, t));

    // A live producer's open reservation is not abandoned.
    let t = TempNs::in_shm("emfile-producer");
    t.ns.declare_queue("q", &QueueOptions::default().max_length(4).overflow(Overflow::Reject)).unwrap();
    let a_ns = Namespace::open_dir(t.path()).unwrap();
    let mut a = a_ns.producer("q").unwrap();
    let mut reservation = a.reserve(&Properties::new(), 8).unwrap();
    let b = t.ns.consumer("q", ConsumerOptions::default().manual_ack()).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    let hog = exhaust_descriptors();
    // B stalls on the uncommitted head and sweeps.
    let _ = b.recv_timeout(Duration::from_millis(300));
    drop(hog);
    let mut c = t.ns.producer("q").unwrap();
    let published = (0..4u8).filter(|&i| c.publish(&[b'c', i]).is_ok()).count();
    assert_eq!(published, 3, "the reservation still holds one of the four slots");
    reservation.body_mut().copy_from_slice(b"A-commit");
    reservation.commit();
    let mut seen = Vec::new();
    while let Ok(delivery) = b.try_recv() {
        seen.push(delivery.body().to_vec());
        delivery.ack().unwrap();
    }
    assert_eq!(seen, vec![b"A-commit".to_vec(), b"c\0".to_vec(), b"c\x01".to_vec(), b"c\x02".to_vec()]);
}
