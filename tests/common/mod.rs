//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A namespace directory removed when dropped.
pub struct TempNs {
    pub dir: PathBuf,
    pub ns: shmq::Namespace,
}

impl TempNs {
    pub fn new(tag: &str) -> TempNs {
        let dir = std::env::temp_dir().join(format!("shmq-test-{tag}-{}-{:x}", std::process::id(), nanos()));
        let ns = shmq::Namespace::open_dir(&dir).expect("open namespace");
        TempNs { dir, ns }
    }

    /// A namespace under /dev/shm, as production uses.
    pub fn in_shm(tag: &str) -> TempNs {
        let dir = PathBuf::from(format!("/dev/shm/shmq-test-{tag}-{}-{:x}", std::process::id(), nanos()));
        let ns = shmq::Namespace::open_dir(&dir).expect("open namespace");
        TempNs { dir, ns }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `shmq` with `--namespace` set to this namespace.
    pub fn shmq(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shmq"));
        cmd.arg("--namespace").arg(&self.dir);
        cmd
    }

    /// Spawns `shmq ARGS` with piped stdout.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.shmq().args(args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn shmq")
    }

    /// Spawns a hidden `shmq stress-agent ROLE QUEUE LOG` (see
    /// src/cli/stress.rs), its output discarded: the kill -9 tests' workers.
    pub fn stress_agent(&self, role: &str, queue: &str, log: &Path, prefix: &str, extra: &[&str]) -> Child {
        self.shmq()
            .args(["stress-agent", role, queue])
            .arg(log)
            .args(["--prefix", prefix])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn stress agent")
    }

    /// Waits until `queue` holds nothing ready or unacked, at most `within`;
    /// panics with `context` (kills, seed) if it does not get there.
    pub fn wait_drained(&self, queue: &str, within: std::time::Duration, context: &str) {
        let deadline = std::time::Instant::now() + within;
        loop {
            let stats = self.ns.queue_stats(queue).unwrap();
            if stats.ready + stats.unacked == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{queue} wedged: {} ready, {} unacked left ({context})",
                stats.ready,
                stats.unacked
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Runs `shmq ARGS` to completion and returns stdout; panics on failure.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.shmq().args(args).output().expect("run shmq");
        assert!(out.status.success(), "shmq {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8 output")
    }
}

impl Drop for TempNs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// SIGKILL, then reap.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits for a child and returns its stdout, asserting success.
pub fn finish(child: Child) -> String {
    let out = child.wait_with_output().expect("wait for child");
    assert!(out.status.success(), "child failed with {:?}", out.status);
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A seed from the clock and a xorshift generator from it: the kill -9
/// tests' random timings, reproducible from the seed they print.
pub fn seeded_rng() -> (u64, impl FnMut() -> u64) {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut state = seed;
    let next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (seed, next)
}

/// CPU time (user + system) used so far by this process's threads whose
/// name starts with one of `prefixes`, to the kernel's tick (10 ms): what a
/// test of "does not spin" measures.
pub fn cpu_time(prefixes: &[&str]) -> std::time::Duration {
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else { continue };
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // After the name's closing parenthesis: state is field 3, utime and
        // stime are fields 14 and 15.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    std::time::Duration::from_millis(ticks * 10)
}
