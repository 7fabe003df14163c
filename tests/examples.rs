//! Runs the example programs end to end, each pair as separate processes.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::TempNs;

fn example(t: &TempNs, name: &str) -> Command {
    // `cargo test` builds the examples beside the binary; a filtered run
    // (`cargo test --test examples`) does not, so build them then.
    static BUILT: std::sync::Once = std::sync::Once::new();
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_shmq")).parent().unwrap().join("examples");
    BUILT.call_once(|| {
        if !dir.join("worker").exists() {
            let status = Command::new(env!("CARGO")).args(["build", "--examples", "--quiet"]).status().unwrap();
            assert!(status.success(), "building the examples failed");
        }
    });
    let mut cmd = Command::new(dir.join(name));
    cmd.env("SHMQ_NAMESPACE", t.path());
    cmd
}

#[test]
fn tutorial_one_send_and_receive() {
    let t = TempNs::in_shm("ex-hello");
    let receiver = example(&t, "receive").arg("1").stdout(Stdio::piped()).spawn().unwrap();
    let sent = example(&t, "send").output().unwrap();
    assert!(sent.status.success());
    assert_eq!(String::from_utf8_lossy(&sent.stdout), " [x] Sent 'Hello World!'\n");
    let out = receiver.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(" [x] Received Hello World!"));
}

#[test]
fn tutorial_two_new_task_and_two_workers() {
    let t = TempNs::in_shm("ex-work");
    let workers: Vec<_> = (0..2)
        .map(|_| example(&t, "worker").env("SHMQ_FAST_TASKS", "1").env("SHMQ_IDLE_EXIT", "1").stdout(Stdio::piped()).spawn().unwrap())
        .collect();
    for i in 0..6 {
        assert!(example(&t, "new_task").arg(format!("task {i}.")).status().unwrap().success());
    }
    let mut received = Vec::new();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mine: Vec<String> = text.lines().filter_map(|l| l.strip_prefix(" [x] Received ")).map(str::to_owned).collect();
        assert!(!mine.is_empty(), "each worker gets some tasks with prefetch 1: {text}");
        received.extend(mine);
    }
    received.sort();
    assert_eq!(received, (0..6).map(|i| format!("task {i}.")).collect::<Vec<_>>());
}
