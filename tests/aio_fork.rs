//! A fork child of a process that used the async API gets reactor threads
//! of its own (the parent's do not exist in the child): its tasks are woken
//! by publishes and time out, instead of sleeping for ever. Alone in this
//! file, so that no other test thread is mid-allocation at the fork.

mod common;

use std::time::{Duration, Instant};

use common::TempNs;
use shmq::aio::AsyncConsumer;
use shmq::{ConsumerOptions, QueueOptions, RecvError};

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

#[test]
fn a_fork_child_gets_its_own_reactor() {
    let t = TempNs::new("aio-fork");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    // The parent's reactor thread exists and has served a task.
    {
        let mut consumer = AsyncConsumer::new(t.ns.consumer("q", ConsumerOptions::default()).unwrap());
        assert_eq!(current_thread().block_on(consumer.recv_timeout(Duration::from_millis(20))).err(), Some(RecvError::Timeout));
    }
    // SAFETY: the child only runs the closure below and `_exit`s; the
    // parent's other threads are the reactor's, asleep in futex_waitv.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(|| {
            let ns = shmq::Namespace::open_dir(&t.dir).unwrap();
            let mut consumer = AsyncConsumer::new(ns.consumer("q", ConsumerOptions::default()).unwrap());
            let rt = current_thread();
            // A deadline passes (the reactor's timer)...
            let timed_out = rt.block_on(consumer.recv_timeout(Duration::from_millis(50))).err() == Some(RecvError::Timeout);
            // ...and a publish from another thread wakes the task.
            let publisher_ns = ns.clone();
            let publisher = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                publisher_ns.producer("q").unwrap().publish(b"to the child").unwrap();
            });
            let woken = rt.block_on(consumer.recv_timeout(Duration::from_secs(10))).map(|d| d.body() == b"to the child").unwrap_or(false);
            publisher.join().unwrap();
            timed_out && woken
        })
        .unwrap_or(false);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the fork child's async task never woke (it waited on the parent's reactor)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child's checks failed: status {status}");
}
