//! Other local users and hostile files in a namespace (docs/SECURITY.md):
//! real processes of different uids (dropped with `setpriv`), symbolic
//! links, FIFOs and devices where shmq expects its own files, and names in
//! the routing segment that try to leave the namespace. Needs root (CI runs
//! as root); each test prints why and skips otherwise.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::TempNs;
use shmq::{Error, NamespaceOptions, QueueOptions};

/// True if this process may play other users; prints why not otherwise.
fn can_switch_users() -> bool {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("skipping: multi-user tests need root to switch uids (run as root, as CI does)");
        return false;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipping: setpriv (util-linux) is not installed");
        return false;
    }
    true
}

/// `shmq ARGS` as `uid`/`gid` with no supplementary groups, under `umask`.
fn shmq_as(uid: u32, gid: u32, umask: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {umask}; exec setpriv --reuid={uid} --regid={gid} --clear-groups \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_shmq"))
        .args(args)
        .env_remove("SHMQ_NAMESPACE");
    cmd
}

/// Runs a command, failing the test if it takes longer than `limit`
/// (a blocked open on a FIFO would hang for ever).
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("command did not finish within {limit:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A directory under /dev/shm removed on drop (whoever owns it).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn another_users_precreated_root_or_namespace_is_refused_and_nothing_is_written_there() {
    if !can_switch_users() {
        return;
    }
    // The attacker (uid 65534) creates the victim's (uid 65533) per-user
    // root first, world-writable, hoping to receive its messages.
    let (victim, attacker) = (65533, 65534);
    let root = Scratch(PathBuf::from(format!("/dev/shm/shmq-{victim}")));
    let _ = std::fs::remove_dir_all(&root.0);
    let made = Command::new("setpriv")
        .args([&format!("--reuid={attacker}"), &format!("--regid={attacker}"), "--clear-groups", "mkdir", "-m", "0777"])
        .arg(&root.0)
        .status()
        .unwrap();
    assert!(made.success());
    let out = run_bounded(shmq_as(victim, victim, "022", &["-n", "app", "declare-queue", "orders"]), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("refusing {}", root.0.display())), "names the path: {err}");
    assert!(err.contains(&format!("owner uid {attacker}")) && err.contains("mode 0777"), "names owner and mode: {err}");
    assert_eq!(std::fs::read_dir(&root.0).unwrap().count(), 0, "nothing was created in the attacker's directory");

    // A namespace directory given by path, pre-created by the attacker.
    let ns_dir = Scratch(PathBuf::from(format!("/dev/shm/shmq-mu-precreated-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&ns_dir.0);
    std::fs::create_dir(&ns_dir.0).unwrap();
    std::os::unix::fs::chown(&ns_dir.0, Some(attacker), Some(attacker)).unwrap();
    std::fs::set_permissions(&ns_dir.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = ns_dir.0.to_str().unwrap();
    let out = run_bounded(shmq_as(victim, victim, "022", &["-n", path, "declare-queue", "orders"]), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("writable by every user"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&ns_dir.0).unwrap().count(), 0, "nothing was created in it");
    // Owned by the attacker and private to it: not the victim's either.
    std::fs::set_permissions(&ns_dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run_bounded(shmq_as(victim, victim, "022", &["-n", path, "publish", "orders", "secret"]), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("belongs to another user"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&ns_dir.0).unwrap().count(), 0);
}

#[test]
fn two_users_each_get_their_own_default_root_and_neither_locks_out_the_other() {
    if !can_switch_users() {
        return;
    }
    let name = format!("mu-two-{}", std::process::id());
    let mut roots = Vec::new();
    for uid in [65531u32, 65532] {
        let root = Scratch(PathBuf::from(format!("/dev/shm/shmq-{uid}")));
        let _ = std::fs::remove_dir_all(&root.0);
        roots.push(root);
    }
    for uid in [65531u32, 65532] {
        let out = run_bounded(shmq_as(uid, uid, "022", &["-n", &name, "declare-queue", "mine"]), Duration::from_secs(10));
        assert!(out.status.success(), "uid {uid}: {}", stderr(&out));
        let out = run_bounded(shmq_as(uid, uid, "022", &["-n", &name, "publish", "mine", &format!("from {uid}")]), Duration::from_secs(10));
        assert!(out.status.success(), "uid {uid}: {}", stderr(&out));
    }
    for (uid, root) in [65531u32, 65532].into_iter().zip(&roots) {
        let meta = std::fs::metadata(&root.0).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (uid, 0o700), "{} is private to uid {uid}", root.0.display());
        let out = run_bounded(shmq_as(uid, uid, "022", &["-n", &name, "consume", "mine", "--count", "1"]), Duration::from_secs(10));
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("from {uid}\t0\n"), "uid {uid}: {}", stderr(&out));
    }
}

#[test]
fn dangling_symlinks_in_a_namespace_are_never_followed() {
    // One user is enough here: no uid switch needed.
    let base = Scratch(PathBuf::from(format!("/dev/shm/shmq-mu-links-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&base.0);
    std::fs::create_dir(&base.0).unwrap();
    let target = |what: &str| PathBuf::from(format!("/tmp/shmq-mu-link-target-{what}-{}", std::process::id()));
    for file in ["routing.lock", "shmq.ns", "routing"] {
        let ns = base.0.join(file.replace('.', "-"));
        std::fs::create_dir(&ns).unwrap();
        std::os::unix::fs::symlink(target(file), ns.join(file)).unwrap();
        let err = shmq::Namespace::open_dir(&ns).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{file}: {err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(!target(file).exists(), "{file}: no file was created at the link's target");
    }
    // A queue file that is a link: declare and open refuse it.
    let t = TempNs::in_shm("mu-link-queue");
    std::os::unix::fs::symlink(target("queue"), t.path().join("queues/q")).unwrap();
    let err = t.ns.declare_queue("q", &QueueOptions::default()).unwrap_err();
    assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
    assert!(t.ns.producer("q").is_err());
    assert!(!target("queue").exists());
}

#[test]
fn fifos_and_devices_in_a_namespace_never_block_or_read_unbounded() {
    // One user is enough; the device node needs root and is skipped without.
    let t = TempNs::in_shm("mu-fifo");
    t.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let mkfifo = |path: &Path| assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
    mkfifo(&t.path().join("peers/00000000000000aa"));
    std::os::unix::fs::symlink("/dev/zero", t.path().join("peers/00000000000000bb")).unwrap();
    if rustix::process::geteuid().as_raw() == 0 {
        assert!(Command::new("mknod").arg(t.path().join("peers/00000000000000cc")).args(["c", "1", "5"]).status().unwrap().success());
    } else {
        eprintln!("not root: skipping the device-node case");
    }
    let shmq = |args: &[&str]| {
        let mut cmd = t.shmq();
        cmd.args(args);
        run_bounded(cmd, Duration::from_secs(10))
    };
    for args in [&["status"][..], &["gc"], &["list-peers"], &["list-consumers"]] {
        let out = shmq(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let out = shmq(&["list-peers"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(!listed.contains("aa") && !listed.contains("bb") && !listed.contains("cc"), "non-regular peer files are skipped: {listed}");
    // A FIFO as the namespace marker: every open fails fast with a typed error.
    std::fs::remove_file(t.path().join("shmq.ns")).unwrap();
    mkfifo(&t.path().join("shmq.ns"));
    let out = shmq(&["status"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("a FIFO, not a regular file"), "{}", stderr(&out));
}

#[test]
fn a_hostile_queue_name_in_the_routing_segment_never_touches_a_file_outside_the_namespace() {
    // One user is enough here: no uid switch needed.
    let victim = PathBuf::from(format!("/tmp/shmq-victim-{}", std::process::id()));
    std::fs::write(&victim, b"precious").unwrap();
    let hostile = format!("../../../../..{}", victim.display());
    let decoy = "q".repeat(hostile.len());
    let t = TempNs::in_shm("mu-hostile");
    t.ns.declare_queue(&decoy, &QueueOptions::default()).unwrap();
    // Rewrite the table in shared memory as a member of the namespace could:
    // the queue's name becomes a path, and its exclusive owner a dead token,
    // so the next table change collects it as an orphan.
    let routing = t.path().join("routing");
    let mut bytes = std::fs::read(&routing).unwrap();
    let mut patched = 0;
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(decoy.len()).position(|w| w == decoy.as_bytes()) {
        let start = at + found;
        bytes[start..start + decoy.len()].copy_from_slice(hostile.as_bytes());
        bytes[start + decoy.len()..start + decoy.len() + 8].copy_from_slice(&0x5eed_dead_beef_0001u64.to_le_bytes());
        patched += 1;
        at = start + decoy.len();
    }
    assert!(patched > 0, "the decoy name is in the routing segment");
    std::fs::write(&routing, &bytes).unwrap();
    std::fs::remove_file(t.path().join("queues").join(&decoy)).unwrap();
    // Other processes change the table and collect garbage (a decoder that
    // refuses the name as corrupt is fine too: the point is the file).
    for args in [&["declare-queue", "other"][..], &["gc"], &["bind", "amq.direct", "other", "--key", "k"]] {
        let out = t.shmq().args(args).output().unwrap();
        eprintln!("shmq {args:?}: {:?} {}", out.status.code(), stderr(&out));
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "the file outside the namespace survives");
    // The orphan was collected (from the table: both of its regions were
    // rewritten since), so the path above really was exercised.
    let after = std::fs::read(&routing).unwrap();
    assert!(!after.windows(hostile.len()).any(|w| w == hostile.as_bytes()), "the hostile entry was collected");
    std::fs::remove_file(&victim).unwrap();
}

#[test]
fn a_group_member_with_umask_077_stays_checkable_and_its_unacked_messages_come_back_after_kill() {
    if !can_switch_users() {
        return;
    }
    let dir = PathBuf::from(format!("/dev/shm/shmq-mu-group-{}", std::process::id()));
    let ns = shmq::Namespace::open_dir_with(&dir, NamespaceOptions::default().group_shared(true)).unwrap();
    let t = TempNs { dir: dir.clone(), ns };
    t.ns.declare_queue("work", &QueueOptions::default()).unwrap();
    t.ns.producer("work").unwrap().publish_batch(["one", "two", "three"]).unwrap();
    let path = dir.to_str().unwrap();
    // Member A (uid 65534, group 0, umask 077) takes a message and sits on it.
    let mut member = shmq_as(65534, 0, "077", &["-n", path, "consume", "work", "--manual-ack", "--work-ms", "600000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while t.ns.queue_stats("work").unwrap().unacked != 1 {
        assert!(start.elapsed() < Duration::from_secs(10), "the member never took a message");
        assert!(member.try_wait().unwrap().is_none(), "the member exited early");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Its liveness file has the namespace's mode whatever its umask.
    let members: Vec<_> =
        std::fs::read_dir(dir.join("peers")).unwrap().flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.uid() == 65534).collect();
    assert_eq!(members.len(), 1, "member A has one liveness file");
    assert_eq!(members[0].mode() & 0o777, 0o660);
    // Member B (another uid of the group) sees it alive...
    let list = run_bounded(shmq_as(65530, 0, "077", &["-n", path, "list-peers"]), Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&list.stdout).contains("alive"), "{}", String::from_utf8_lossy(&list.stdout));
    // ...even once A's file is unreadable to it (as an older build's umask
    // left it): the kernel's lock table still tells.
    let member_file =
        std::fs::read_dir(dir.join("peers")).unwrap().flatten().find(|e| e.metadata().is_ok_and(|m| m.uid() == 65534)).unwrap().path();
    std::fs::set_permissions(&member_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let list = run_bounded(shmq_as(65530, 0, "077", &["-n", path, "list-peers"]), Duration::from_secs(10));
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.lines().filter(|l| l.contains("alive")).count() == 2, "A and the test process are alive: {listed}");
    // Once A is killed, B recovers its unacked message: "cannot open" is
    // never "alive for ever".
    member.kill().unwrap();
    member.wait().unwrap();
    let gc = run_bounded(shmq_as(65530, 0, "077", &["-n", path, "gc"]), Duration::from_secs(10));
    assert!(gc.status.success(), "{}", stderr(&gc));
    let stats = t.ns.queue_stats("work").unwrap();
    assert_eq!((stats.ready, stats.unacked), (3, 0), "the dead member's message is back: {stats:?}");
}
