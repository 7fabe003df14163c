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

/// Starts a subscriber process on a server-named exclusive queue bound to
/// each `EXCHANGE:KEY`, and waits until it is bound.
fn subscriber(demo: &Demo, binds: &[&str], count: u64, label: &str) -> Result<Child, Box<dyn std::error::Error>> {
    use std::io::BufRead;
    let count = count.to_string();
    let mut args = vec!["consume", "", "--count", &count, "--label", label, "--announce"];
    for b in binds {
        args.push("--bind");
        args.push(b);
    }
    let mut child = demo.cmd(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().ok_or("no stderr")?).read_line(&mut line)?;
    if !line.starts_with("ready") {
        return Err(format!("subscriber failed to start: {line}").into());
    }
    Ok(child)
}

fn finish(child: Child) -> Result<String, Box<dyn std::error::Error>> {
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!("a demo process failed: {:?}", out.status).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn run(_cli: &Cli, args: &DemoArgs) -> CliResult {
    // A fresh namespace in this user's own root (checked: never another
    // user's directory), removed afterwards.
    let ns = shmq::Namespace::open(&format!("demo-{}", std::process::id()))?;
    let dir = ns.path().to_path_buf();
    drop(ns);
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

    println!("\n3. Publish/subscribe: a fanout exchange, two subscribers with their own queues");
    demo.run(&["declare-exchange", "logs", "--type", "fanout"])?;
    let subs = [subscriber(demo, &["logs:"], 2, "   [subscriber A] ")?, subscriber(demo, &["logs:"], 2, "   [subscriber B] ")?];
    demo.run(&["publish", "--exchange", "logs", "", "info: started", "warning: disk 90% full"])?;
    for s in subs {
        print!("{}", finish(s)?.replace("\t0", ""));
    }

    println!("\n4. Routing: a direct exchange; one consumer takes only errors, one takes everything");
    demo.run(&["declare-exchange", "direct_logs", "--type", "direct"])?;
    let errors = subscriber(demo, &["direct_logs:error"], 1, "   [errors only] ")?;
    let all = subscriber(demo, &["direct_logs:info", "direct_logs:warning", "direct_logs:error"], 3, "   [all levels]  ")?;
    for (level, text) in [("info", "user logged in"), ("warning", "slow query"), ("error", "payment failed")] {
        demo.run(&["publish", "--exchange", "direct_logs", level, text])?;
    }
    print!("{}", finish(errors)?.replace("\t0", ""));
    print!("{}", finish(all)?.replace("\t0", ""));

    println!("\n5. Topics: `*` is one word, `#` is zero or more");
    demo.run(&["declare-exchange", "topic_logs", "--type", "topic"])?;
    let kern = subscriber(demo, &["topic_logs:kern.*"], 2, "   [kern.*]      ")?;
    let critical = subscriber(demo, &["topic_logs:*.critical"], 2, "   [*.critical]  ")?;
    let everything = subscriber(demo, &["topic_logs:#"], 3, "   [#]           ")?;
    for (key, text) in [("kern.critical", "kernel panic"), ("kern.info", "kernel up"), ("app.critical", "app crashed")] {
        demo.run(&["publish", "--exchange", "topic_logs", key, &format!("{key}: {text}")])?;
    }
    for s in [kern, critical, everything] {
        print!("{}", finish(s)?.replace("\t0", ""));
    }

    println!("\n6. Throughput: one producer process, one consumer process, 64-byte messages");
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
    println!("\nFor numbers next to other IPC and a bare ring, run `bash bench-suite/run.sh`\n(`SUITE_QUICK=1` for a quick one); for load tests of your own topology, `shmq bench`.");
    Ok(())
}
