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

/// Starts a consumer example and waits until it says it is bound.
fn start_receiver(
    t: &TempNs,
    name: &str,
    args: &[&str],
    ready: &str,
) -> (std::process::Child, std::io::BufReader<std::process::ChildStdout>) {
    use std::io::BufRead;
    let mut child = example(t, name).args(args).stdout(Stdio::piped()).spawn().unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains(ready), "{name} said {line:?}");
    (child, reader)
}

fn rest(child: std::process::Child, mut reader: std::io::BufReader<std::process::ChildStdout>) -> Vec<String> {
    use std::io::Read;
    let mut out = String::new();
    reader.read_to_string(&mut out).unwrap();
    let mut child = child;
    assert!(child.wait().unwrap().success());
    out.lines().map(str::to_owned).collect()
}

fn run(t: &TempNs, name: &str, args: &[&str]) -> String {
    let out = example(t, name).args(args).output().unwrap();
    assert!(out.status.success(), "{name} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn tutorial_three_publish_subscribe() {
    let t = TempNs::in_shm("ex-fanout");
    let (a, ra) = start_receiver(&t, "receive_logs", &["2"], "Waiting for logs");
    let (b, rb) = start_receiver(&t, "receive_logs", &["2"], "Waiting for logs");
    run(&t, "emit_log", &["first"]);
    run(&t, "emit_log", &["second"]);
    for got in [rest(a, ra), rest(b, rb)] {
        assert_eq!(got, vec![" [x] first", " [x] second"]);
    }
    // Their exclusive queues went away with them.
    assert!(t.ns.list_queues().unwrap().is_empty(), "{:?}", t.ns.list_queues());
}

#[test]
fn tutorial_four_routing() {
    let t = TempNs::in_shm("ex-direct");
    let (errors, re) = start_receiver(&t, "receive_logs_direct", &["--count", "1", "error"], "Waiting");
    let (all, ra) = start_receiver(&t, "receive_logs_direct", &["--count", "3", "info", "warning", "error"], "Waiting");
    run(&t, "emit_log_direct", &["info", "just saying"]);
    run(&t, "emit_log_direct", &["warning", "careful"]);
    run(&t, "emit_log_direct", &["error", "disk full"]);
    assert_eq!(rest(errors, re), vec![" [x] error:disk full"]);
    assert_eq!(rest(all, ra), vec![" [x] info:just saying", " [x] warning:careful", " [x] error:disk full"]);
}

#[test]
fn tutorial_five_topics() {
    let t = TempNs::in_shm("ex-topic");
    let (kern, rk) = start_receiver(&t, "receive_logs_topic", &["--count", "2", "kern.*"], "Waiting");
    let (crit, rc) = start_receiver(&t, "receive_logs_topic", &["--count", "2", "*.critical"], "Waiting");
    let (all, ra) = start_receiver(&t, "receive_logs_topic", &["--count", "3", "#"], "Waiting");
    run(&t, "emit_log_topic", &["kern.critical", "A critical kernel error"]);
    run(&t, "emit_log_topic", &["kern.info", "kernel info"]);
    run(&t, "emit_log_topic", &["app.critical", "app down"]);
    assert_eq!(rest(kern, rk), vec![" [x] kern.critical:A critical kernel error", " [x] kern.info:kernel info"]);
    assert_eq!(rest(crit, rc), vec![" [x] kern.critical:A critical kernel error", " [x] app.critical:app down"]);
    assert_eq!(rest(all, ra).len(), 3);
}

#[test]
fn tutorial_six_rpc() {
    let t = TempNs::in_shm("ex-rpc");
    let (server, rs) = start_receiver(&t, "rpc_server", &["2"], "Awaiting RPC requests");
    assert!(run(&t, "rpc_client", &["10"]).contains(" [.] Got 55"));
    assert!(run(&t, "rpc_client", &["30"]).contains(" [.] Got 832040"));
    assert_eq!(rest(server, rs), vec![" [.] fib(10)", " [.] fib(30)"]);
}

#[test]
fn seed_scenario_registration_fans_out_to_email_and_sms() {
    let t = TempNs::in_shm("ex-register");
    let (email, re) = start_receiver(&t, "notification_service", &["email", "2"], "waiting");
    let (sms, rs) = start_receiver(&t, "notification_service", &["sms", "2"], "waiting");
    let out = run(&t, "register_user", &["alice@example.com", "bob@example.com"]);
    assert_eq!(out.lines().count(), 2);
    assert_eq!(rest(email, re), vec![" [email] sent welcome email to alice@example.com", " [email] sent welcome email to bob@example.com"]);
    assert_eq!(rest(sms, rs), vec![" [sms] sent welcome sms to alice@example.com", " [sms] sent welcome sms to bob@example.com"]);
}

#[test]
fn seed_scenario_orders_wait_for_the_inventory_service() {
    let t = TempNs::in_shm("ex-orders");
    // Inventory is down: placing orders still succeeds.
    run(&t, "place_order", &["3"]);
    let out = run(&t, "inventory_service", &["3"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            " [inventory] reserved stock for order-1: 1 x widget",
            " [inventory] reserved stock for order-2: 1 x widget",
            " [inventory] reserved stock for order-3: 1 x widget"
        ]
    );
}

/// Output of an example run to completion; it must succeed.
fn run_example(t: &TempNs, name: &str, args: &[&str]) -> String {
    let out = example(t, name).args(args).env("RETRY_DELAY_MS", "100").output().unwrap();
    assert!(out.status.success(), "{name} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn retry_with_delay_brings_a_failed_job_back_through_the_delay_queue() {
    let t = TempNs::in_shm("ex-retry");
    assert_eq!(run_example(&t, "retry_with_delay", &["submit", "flaky-1", "ok-1"]), " [x] submitted flaky-1\n [x] submitted ok-1\n");
    let started = std::time::Instant::now();
    let out = run_example(&t, "retry_with_delay", &["work", "2"]);
    assert_eq!(
        out,
        concat!(
            " [!] flaky-1: attempt 1 failed, retrying in 100 ms\n [x] ok-1: done after 1 attempt(s)\n",
            " [!] flaky-1: attempt 2 failed, retrying in 100 ms\n [x] flaky-1: done after 3 attempt(s)\n"
        )
    );
    // Two trips through the delay queue, each at least its TTL.
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
}

#[test]
fn poison_message_is_parked_after_its_delivery_limit_while_good_orders_go_through() {
    let t = TempNs::in_shm("ex-poison");
    run_example(&t, "poison_message", &["submit", "order-1", "poison", "order-2"]);
    let out = run_example(&t, "poison_message", &["work", "2"]);
    assert_eq!(
        out,
        concat!(
            " [x] order-1: processed\n [!] poison: delivery 1 failed\n [!] poison: delivery 2 failed\n",
            " [!] poison: delivery 3 failed\n [x] order-2: processed\n"
        )
    );
    assert_eq!(run_example(&t, "poison_message", &["parked"]), " [x] parked poison (delivery_limit)\n");
}
