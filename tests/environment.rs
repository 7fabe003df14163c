//! Environment errors name the path and say what to do: a full /dev/shm,
//! no permission, a namespace owned by another user. And durability of a
//! namespace on disk across kill -9. Runs as root (CI does): it mounts a
//! tiny tmpfs, and drops privileges with setpriv to play another user.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::TempNs;
use shmq::{ConsumerOptions, Error, QueueOptions};

/// A 1 MiB tmpfs, unmounted on drop.
struct TinyTmpfs(PathBuf);

impl TinyTmpfs {
    fn mount() -> TinyTmpfs {
        let dir = std::env::temp_dir().join(format!("shmq-tinyfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(&dir).status().unwrap();
        assert!(status.success(), "this test needs root to mount a tmpfs");
        TinyTmpfs(dir)
    }
}

impl Drop for TinyTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_shm_is_a_no_space_error_at_declare_time_naming_the_path() {
    let fs = TinyTmpfs::mount();
    let ns = shmq::Namespace::open_dir(fs.0.join("ns")).unwrap();
    let small = QueueOptions::default().capacity_bytes(64 * 1024).max_message_bytes(1024);
    ns.declare_queue("fits", &small).unwrap();
    match ns.declare_queue("too_big", &QueueOptions::default()).unwrap_err() {
        Error::NoSpace { path, needed, .. } => {
            assert!(path.ends_with("queues/too_big"), "{}", path.display());
            assert!(needed > 8 << 20);
        }
        other => panic!("expected NoSpace, got {other}"),
    }
    // Nothing half-made is left behind, and the queue that fit still works.
    assert!(std::fs::read_dir(fs.0.join("ns/tmp")).unwrap().next().is_none());
    assert_eq!(ns.list_queues().unwrap(), vec!["fits".to_string()]);
    let mut producer = ns.producer("fits").unwrap();
    producer.publish(b"still fine").unwrap();
    let consumer = ns.consumer("fits", ConsumerOptions::default()).unwrap();
    assert_eq!(consumer.try_recv().unwrap().body(), b"still fine");
}

fn as_nobody(t: &TempNs, group: u32, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", &format!("--regid={group}"), "--clear-groups", env!("CARGO_BIN_EXE_shmq"), "--namespace"])
        .arg(t.path())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn another_users_namespace_is_permission_denied_naming_the_path() {
    let t = TempNs::in_shm("env-perm");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let out = as_nobody(&t, 65534, &["list-queues"]);
    assert_eq!(out.status.code(), Some(6), "exit code for permission errors");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("permission denied on"), "{stderr}");
    assert!(stderr.contains(&*t.path().to_string_lossy()), "names the path: {stderr}");
    assert!(stderr.contains("it is owned by uid 0"), "{stderr}");
}

#[test]
fn group_shared_namespace_admits_the_group() {
    let dir = PathBuf::from(format!("/dev/shm/shmq-test-env-group-{}", std::process::id()));
    let ns = shmq::Namespace::open_dir_with(&dir, shmq::NamespaceOptions::default().group_shared(true)).unwrap();
    ns.declare_queue("shared", &QueueOptions::default()).unwrap();
    ns.producer("shared").unwrap().publish(b"for the group").unwrap();
    let t = TempNs { dir: dir.clone(), ns };
    // Another user in the owner's group (gid 0) may consume.
    let out = as_nobody(&t, 0, &["consume", "shared", "--count", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "for the group\t0\n");
    // Outside the group: refused.
    let out = as_nobody(&t, 65534, &["list-queues"]);
    assert_eq!(out.status.code(), Some(6));
}

#[test]
fn disk_namespace_keeps_published_messages_after_every_process_is_killed() {
    let dir = std::env::temp_dir().join(format!("shmq-test-disk-{}", std::process::id()));
    let t = TempNs { ns: shmq::Namespace::open_dir(&dir).unwrap(), dir };
    t.ns.declare_queue("durable", &QueueOptions::default()).unwrap();
    // A publisher process publishes without end, logging each publish that
    // returned, and is killed with SIGKILL mid-stream.
    let log = t.path().join("publisher.log");
    let mut publisher = t
        .shmq()
        .args(["stress-agent", "producer-queue", "durable"])
        .arg(&log)
        .args(["--prefix", "order", "--interval-us", "0"])
        .spawn()
        .unwrap();
    let confirmed =
        |log: &std::path::Path| std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| l.starts_with("ok ")).count();
    while confirmed(&log) < 500 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    publisher.kill().unwrap();
    publisher.wait().unwrap();
    let oks: Vec<String> =
        std::fs::read_to_string(&log).unwrap().lines().filter_map(|l| l.strip_prefix("ok ")).map(str::to_owned).collect();
    // A fresh process (no handle of the killed one survives) finds every
    // message whose publish returned.
    let out = t.run(&["consume", "durable", "--idle-exit-ms", "300"]);
    let got: std::collections::HashSet<&str> = out.lines().map(|l| l.trim_end_matches("\t0")).collect();
    for id in &oks {
        assert!(got.contains(id.as_str()), "lost {id}");
    }
    assert!(oks.len() >= 500);
    t.ns.flush_queue("durable").unwrap();
}
