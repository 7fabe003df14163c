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
    // A budget far past the file system's size, so that the file system,
    // not the budget (tests/elastic.rs), is what refuses.
    let ns = shmq::Namespace::open_dir_with(&fs.0.join("ns"), small_routing().memory_budget(1 << 40)).unwrap();
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

/// Routing-table capacities small enough for the 1 MiB tmpfs.
fn small_routing() -> shmq::NamespaceOptions {
    let limits = shmq::RoutingLimits { table_bytes: 16 << 10, ..Default::default() };
    shmq::NamespaceOptions::default().routing_limits(limits)
}

#[test]
fn a_routing_segment_that_does_not_fit_is_no_space_naming_the_path_and_the_free_space() {
    let fs = TinyTmpfs::mount();
    // The default routing table (8 MiB) cannot be backed by 1 MiB: opening
    // the namespace fails now, instead of a later publish or bind dying of
    // SIGBUS on an unbacked page.
    match shmq::Namespace::open_dir(fs.0.join("ns")).unwrap_err() {
        Error::NoSpace { path, needed, available } => {
            assert!(path.ends_with("ns/routing"), "{}", path.display());
            assert!(needed > 1 << 20, "{needed}");
            assert!(available.is_some_and(|a| a <= 1 << 20), "{available:?}");
        }
        other => panic!("expected NoSpace, got {other}"),
    }
    assert!(std::fs::read_dir(fs.0.join("ns/tmp")).unwrap().next().is_none(), "nothing half-made is left");
    let message = shmq::Namespace::open_dir(fs.0.join("ns")).unwrap_err().to_string();
    assert!(message.contains("bytes available"), "{message}");
}

#[test]
fn truncated_routing_and_queue_segments_are_typed_errors_not_sigbus() {
    let t = TempNs::in_shm("env-trunc");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    for file in ["routing", "queues/q"] {
        let path = t.path().join(file);
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len / 2).unwrap();
    }
    match shmq::Namespace::open_dir(t.path()).unwrap_err() {
        Error::Corrupt { path, reason } => {
            assert!(path.ends_with("routing"), "{}", path.display());
            assert!(reason.contains("bytes"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let out = t.shmq().args(["peek", "q"]).output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_process_holding_the_routing_lock_makes_declare_fail_within_the_bound_naming_its_pid() {
    let t = TempNs::in_shm("env-lock");
    // `-o`: only flock itself holds the lock, not the sleep it runs.
    let mut holder = Command::new("flock").arg("-o").arg(t.path().join("routing.lock")).args(["sleep", "60"]).spawn().unwrap();
    // Wait until the kernel shows the lock held.
    let lock_text = || std::fs::read_to_string("/proc/locks").unwrap_or_default();
    let start = std::time::Instant::now();
    while !lock_text().lines().any(|l| l.contains("FLOCK") && l.split_whitespace().nth(4) == Some(&holder.id().to_string())) {
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "flock never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let start = std::time::Instant::now();
    let err = t.ns.declare_queue("blocked", &QueueOptions::default()).unwrap_err();
    let waited = start.elapsed();
    holder.kill().unwrap();
    holder.wait().unwrap();
    match &err {
        Error::LockTimeout { holder: Some(pid), .. } => assert_eq!(*pid, holder.id()),
        other => panic!("expected LockTimeout naming the holder, got {other}"),
    }
    assert!(err.to_string().contains(&format!("held by pid {}", holder.id())), "{err}");
    assert!(waited >= std::time::Duration::from_secs(4) && waited < std::time::Duration::from_secs(8), "{waited:?}");
    // With the holder gone, the same declare goes through.
    t.ns.declare_queue("blocked", &QueueOptions::default()).unwrap();
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
    // docs/SECURITY.md: the directory is group-shared (setgid) and `peers/`
    // is sticky, so a member can remove or rename only its own peer file.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: PathBuf| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(dir.clone()), 0o2770);
    assert_eq!(mode(dir.join("peers")), 0o3770);
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
