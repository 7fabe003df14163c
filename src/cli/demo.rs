//! `shmq demo`: the seed's patterns across real processes, each consumer and
//! producer a separate `shmq` process, with what each consumer received.

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use clap::Args;

use super::{Cli, CliResult};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Messages in the work-queue pattern.
    #[arg(long, default_value_t = 20)]
    pub tasks: u64,
    /// Messages in the throughput run.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
}

struct Demo {
    exe: std::path::PathBuf,
    ns_path: String,
}

impl Demo {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args(["--namespace", &self.ns_path]).args(args);
        cmd
    }

    fn spawn(&self, args: &[&str]) -> std::io::Result<Child> {
        self.cmd(args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()
    }

    fn run(&self, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
        let out = self.cmd(args).stderr(Stdio::inherit()).output()?;
        if !out.status.success() {
            return Err(format!("shmq {} failed", args.join(" ")).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn finish(child: Child) -> Result<String, Box<dyn std::error::Error>> {
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!("a demo process failed: {:?}", out.status).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn run(_cli: &Cli, args: &DemoArgs) -> CliResult {
    let dir = std::path::PathBuf::from(format!("/dev/shm/shmq-demo-{}", std::process::id()));
    let demo = Demo { exe: std::env::current_exe()?, ns_path: dir.display().to_string() };
    let result = run_patterns(&demo, args);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_patterns(demo: &Demo, args: &DemoArgs) -> CliResult {
    println!("shmq demo: every producer and consumer below is its own process (namespace {})\n", demo.ns_path);

    println!("1. Simple queue (\"Hello World\"): one producer, one consumer");
    demo.run(&["declare-queue", "hello"])?;
    let consumer = demo.spawn(&["consume", "hello", "--count", "1", "--label", "   [consumer] received "])?;
    demo.run(&["publish", "hello", "Hello World"])?;
    print!("{}", finish(consumer)?.replace("\t0", ""));

    println!("\n2. Work queue: a slow worker (10 ms per task) and a fast one, prefetch 1, manual acks");
    demo.run(&["declare-queue", "task_queue"])?;
    let slow = demo.spawn(&[
        "consume",
        "task_queue",
        "--manual-ack",
        "--prefetch",
        "1",
        "--work-ms",
        "10",
        "--idle-exit-ms",
        "500",
        "--quiet",
        "--label",
        "   [slow worker] ",
    ])?;
    let fast = demo.spawn(&[
        "consume",
        "task_queue",
        "--manual-ack",
        "--prefetch",
        "1",
        "--work-ms",
        "1",
        "--idle-exit-ms",
        "500",
        "--quiet",
        "--label",
        "   [fast worker] ",
    ])?;
    let tasks = args.tasks.to_string();
    demo.run(&["publish", "task_queue", "task {i}", "--count", &tasks])?;
    print!("{}", finish(slow)?);
    print!("{}", finish(fast)?);
    println!("   (fair dispatch: the fast worker takes more, as in the seed's 能者多劳)");

    println!("\n3. Throughput: one producer process, one consumer process, 64-byte messages");
    demo.run(&["declare-queue", "bulk", "--capacity", "4194304"])?;
    let count = args.messages.to_string();
    let sink = demo.spawn(&["consume", "bulk", "--count", &count, "--quiet", "--label", "   [consumer] "])?;
    let started = Instant::now();
    demo.run(&["publish", "bulk", "x", "--count", &count, "--size", "64"])?;
    let received = finish(sink)?;
    let secs = started.elapsed().as_secs_f64();
    print!("{received}");
    println!(
        "   {} messages in {:.3} s = {:.2} M msg/s (including process start-up)",
        args.messages,
        secs,
        args.messages as f64 / secs / 1e6
    );
    println!("\nFor precise numbers next to a Unix socket and a bare ring, run `shmq bench`.");
    Ok(())
}
