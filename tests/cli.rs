//! The `shmq` command line, every subcommand run as a process against
//! namespaces that real producer and consumer processes populate.

mod common;

use std::process::Stdio;

use common::{finish, TempNs};

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn management_commands_show_what_processes_did() {
    let t = TempNs::in_shm("cli-manage");
    t.run(&["declare-queue", "tasks", "--overflow", "reject", "--capacity", "65536"]);
    t.run(&["declare-exchange", "logs", "--type", "fanout"]);
    t.run(&["bind", "logs", "tasks"]);
    t.run(&["publish", "--exchange", "logs", "", "a", "b", "c"]);
    // A consumer process holding one unacked message while we look.
    let mut holder =
        t.shmq().args(["consume", "tasks", "--manual-ack", "--count", "1", "--work-ms", "30000"]).stdout(Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let q = json(&t.run(&["list-queues", "--json"]));
        if q[0]["messages_unacked"] == 1 {
            assert_eq!(q[0]["messages_ready"], 2);
            assert_eq!(q[0]["consumers"], 1);
            assert_eq!(q[0]["overflow"], "reject-publish");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "consumer never took a message");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let table = t.run(&["list-queues"]);
    assert!(table.starts_with("Listing queues for namespace"), "{table}");
    assert!(table.contains("tasks"));
    let consumers = json(&t.run(&["list-consumers", "--json"]));
    assert_eq!(consumers[0]["role"], "consumer");
    assert_eq!(consumers[0]["unacked"], 1);
    assert_eq!(consumers[0]["alive"], true);
    let peers = json(&t.run(&["list-peers", "--json"]));
    assert!(peers.as_array().unwrap().iter().any(|p| p["alive"] == true));
    let status = json(&t.run(&["status", "--json"]));
    assert_eq!(status["queues"], 1);
    assert!(status["live_peers"].as_u64().unwrap() >= 1);
    let bindings = json(&t.run(&["list-bindings", "--json"]));
    assert_eq!(bindings[0]["source"], "logs");
    assert!(t.run(&["list-exchanges"]).contains("amq.topic"));
    // reset refuses while a live process is attached.
    let out = t.shmq().args(["reset"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "in use: a failed precondition");
    assert!(String::from_utf8_lossy(&out.stderr).contains("live processes attached"));
    holder.kill().unwrap();
    holder.wait().unwrap();
    // gc recovers the killed consumer's message.
    let gc = json(&t.run(&["gc", "--json"]));
    assert_eq!(gc["requeued"], 1);
    let q = json(&t.run(&["list-queues", "--json"]));
    assert_eq!((q[0]["messages_ready"].as_u64(), q[0]["messages_unacked"].as_u64()), (Some(3), Some(0)));
    t.run(&["reset"]);
    assert!(!t.path().exists());
}

#[test]
fn get_peek_purge_and_delete() {
    let t = TempNs::in_shm("cli-get");
    t.run(&["declare-queue", "q"]);
    t.run(&["publish", "q", "one", "two", "three", "--correlation-id", "c1"]);
    let peeked = json(&t.run(&["peek", "q", "--json"]));
    assert_eq!(peeked.as_array().unwrap().len(), 3);
    assert_eq!(peeked[0]["body"], "one");
    assert_eq!(peeked[0]["correlation_id"], "c1");
    // get without --ack puts them back, flagged redelivered.
    let got = json(&t.run(&["get", "q", "--count", "2", "--json"]));
    assert_eq!((got[0]["body"].as_str(), got[0]["redelivered"].as_bool()), (Some("one"), Some(false)));
    let again = json(&t.run(&["get", "q", "--count", "1", "--ack", "--json"]));
    assert_eq!((again[0]["body"].as_str(), again[0]["redelivered"].as_bool()), (Some("one"), Some(true)));
    assert_eq!(json(&t.run(&["purge", "q", "--json"]))["purged"], 2);
    t.run(&["delete-queue", "q"]);
    assert_eq!(json(&t.run(&["list-queues", "--json"])), serde_json::json!([]));
}

#[test]
fn errors_name_the_thing_suggest_a_fix_and_set_exit_codes() {
    let t = TempNs::in_shm("cli-errors");
    t.run(&["declare-queue", "hello"]);
    let out = t.shmq().args(["get", "helo"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no such queue 'helo' in namespace") && stderr.contains("(did you mean 'hello'?)"), "{stderr}");
    let out = t.shmq().args(["declare-queue", "hello", "--overflow", "reject"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "precondition failed");
    let out = t.shmq().args(["declare-queue", "a\nb"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "bad input");
    // Columns as rabbitmqctl list_queues takes them.
    let listed = t.run(&["list-queues", "name", "messages", "consumers"]);
    assert!(
        listed.lines().nth(1).is_some_and(|h| h.split_whitespace().collect::<Vec<_>>() == ["name", "messages", "consumers"]),
        "{listed}"
    );
    assert!(listed.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["hello", "0", "0"]), "{listed}");
    let out = t.shmq().args(["list-queues", "name", "colour"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown column 'colour': use any of name, messages"));
    // An auto-delete queue goes with its last consumer.
    t.run(&["declare-queue", "brief", "--auto-delete"]);
    t.run(&["publish", "brief", "hi"]);
    assert_eq!(finish(t.spawn(&["consume", "brief", "--count", "1"])), "hi\t0\n");
    assert!(!t.run(&["list-queues"]).contains("brief"), "deleted with its last consumer");
    let out = t.shmq().args(["publish", "--exchange", "amq.directt", "k", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "missing exchange on publish");
    assert!(String::from_utf8_lossy(&out.stderr).contains("(did you mean 'amq.direct'?)"));
    let out = t.shmq().args(["bind", "nope", "hello"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "missing exchange");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such exchange 'nope'"));
}

#[test]
fn export_import_round_trips_in_rabbitmq_definitions_format() {
    let src = TempNs::in_shm("cli-export");
    src.run(&["declare-queue", "orders", "--overflow", "drop-oldest", "--capacity", "1048576", "--ttl-ms", "60000", "--durable"]);
    src.run(&["declare-queue", "audit"]);
    src.run(&["declare-exchange", "unrouted", "--type", "fanout"]);
    src.run(&["declare-exchange", "shop", "--type", "topic", "--alternate-exchange", "unrouted"]);
    src.run(&["bind", "shop", "orders", "--key", "order.*"]);
    src.run(&["bind", "amq.headers", "audit", "--arg", "x-match=any", "--arg", "kind=refund"]);
    let exported = json(&src.run(&["export"]));
    // The shape RabbitMQ's import_definitions expects.
    for key in ["rabbit_version", "vhosts", "users", "permissions", "policies", "parameters"] {
        assert!(exported.get(key).is_some(), "missing {key}");
    }
    let orders = exported["queues"].as_array().unwrap().iter().find(|q| q["name"] == "orders").unwrap().clone();
    assert_eq!(orders["vhost"], "/");
    assert_eq!(orders["durable"], true, "declared durable");
    let audit = exported["queues"].as_array().unwrap().iter().find(|q| q["name"] == "audit").unwrap().clone();
    assert_eq!(audit["durable"], false, "declared without");
    assert_eq!(orders["arguments"]["x-overflow"], "drop-head");
    assert_eq!(orders["shmq"]["capacity_bytes"], 1048576, "shmq's own settings, beside RabbitMQ's arguments");
    assert_eq!(orders["auto_delete"], false);
    assert!(orders["arguments"].get("x-max-length-bytes").is_none(), "no limit was declared");
    assert_eq!(orders["arguments"]["x-message-ttl"], 60000);
    let shop = exported["exchanges"].as_array().unwrap().iter().find(|x| x["name"] == "shop").unwrap().clone();
    assert_eq!((shop["type"].as_str(), shop["arguments"]["alternate-exchange"].as_str()), (Some("topic"), Some("unrouted")));
    assert!(exported["exchanges"].as_array().unwrap().iter().all(|x| !x["name"].as_str().unwrap().starts_with("amq.")));
    let binding = exported["bindings"].as_array().unwrap().iter().find(|b| b["destination"] == "audit").unwrap().clone();
    assert_eq!(binding["destination_type"], "queue");
    assert_eq!(binding["arguments"]["x-match"], "any");

    let file = src.path().join("definitions.json");
    src.run(&["export", file.to_str().unwrap()]);
    let dst = TempNs::in_shm("cli-import");
    assert_eq!(dst.run(&["import", file.to_str().unwrap()]), "imported 2 queues, 2 exchanges, 2 bindings, 0 shovels\n");
    assert_eq!(json(&dst.run(&["export"]))["queues"], exported["queues"]);
    assert_eq!(json(&dst.run(&["export"]))["exchanges"], exported["exchanges"]);
    assert_eq!(json(&dst.run(&["export"]))["bindings"], exported["bindings"]);
    // And it routes: the alternate exchange catches what matches nothing.
    dst.run(&["declare-queue", "lost"]);
    dst.run(&["bind", "unrouted", "lost"]);
    dst.run(&["publish", "--exchange", "shop", "order.created", "o1"]);
    dst.run(&["publish", "--exchange", "shop", "refund.created", "r1"]);
    assert_eq!(finish(dst.spawn(&["consume", "orders", "--count", "1"])), "o1\t0\n");
    assert_eq!(finish(dst.spawn(&["consume", "lost", "--count", "1"])), "r1\t0\n");
}

#[test]
fn import_is_all_or_nothing_names_what_it_cannot_honour_and_picks_a_vhost() {
    let t = TempNs::in_shm("cli-import-strict");
    let file = t.path().join("defs.json");
    let import = |defs: &str, extra: &[&str]| {
        std::fs::write(&file, defs).unwrap();
        t.shmq().args(["import", file.to_str().unwrap()]).args(extra).output().unwrap()
    };
    // What shmq cannot honour is named, and nothing is declared.
    let defs = r#"{"users": [{"name": "guest"}], "vhosts": [{"name": "/"}],
        "policies": [{"vhost": "/", "name": "ha", "pattern": ".*", "definition": {"ha-mode": "all"}}],
        "queues": [{"name": "orders/eu", "vhost": "/", "auto_delete": false, "arguments": {"x-queue-mode": "lazy", "x-max-length": 5}},
                   {"name": "plain", "vhost": "/", "auto_delete": true, "arguments": {}}],
        "exchanges": [{"name": "delayed", "vhost": "/", "type": "x-delayed-message", "arguments": {}}],
        "bindings": [{"source": "amq.direct", "vhost": "/", "destination": "plain", "destination_type": "queue", "routing_key": "k", "arguments": {}}]}"#;
    let out = import(defs, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for named in [
        "user 'guest'",
        "policy 'ha'",
        "queue 'orders/eu': argument 'x-queue-mode'",
        "exchange 'delayed' of type 'x-delayed-message'",
        "--skip-unsupported",
    ] {
        assert!(stderr.contains(named), "{named} not named: {stderr}");
    }
    assert!(t.ns.list_queues().unwrap().is_empty(), "nothing was declared");
    // With --skip-unsupported: the rest, and the list of what was left out.
    let out = import(defs, &["--skip-unsupported"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped (not supported by shmq): policy 'ha'"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "imported 2 queues, 0 exchanges, 1 bindings, 0 shovels; skipped 4 unsupported (listed above)\n"
    );
    assert_eq!(t.ns.queue_stats("orders/eu").unwrap().options.max_length, Some(5));
    assert!(t.ns.queue_stats("plain").unwrap().options.auto_delete);
    let exported = json(&t.run(&["export"]));
    let names: Vec<&str> = exported["queues"].as_array().unwrap().iter().map(|q| q["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"orders/eu"), "{names:?}");
    // Every problem at once, and still nothing declared.
    let broken = r#"{"queues": [{"name": "a", "vhost": "/", "arguments": {"x-max-length": -1}},
                                 {"name": "b", "vhost": "/", "arguments": {}}],
        "bindings": [{"source": "nowhere", "vhost": "/", "destination": "b", "destination_type": "queue", "routing_key": "", "arguments": {}}]}"#;
    let out = import(broken, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("queue 'a'") && stderr.contains("no exchange 'nowhere'"), "{stderr}");
    assert!(t.ns.queue_stats("b").is_err());
    // A failure while applying (a headers binding with an x-match
    // RabbitMQ does not know is refused by the bind) removes what the
    // import had declared.
    let late = r#"{"queues": [{"name": "c", "vhost": "/", "arguments": {}}],
        "exchanges": [{"name": "h", "vhost": "/", "type": "headers", "arguments": {}}],
        "bindings": [{"source": "h", "vhost": "/", "destination": "c", "destination_type": "queue", "routing_key": "", "arguments": {"x-match": "sometimes"}}]}"#;
    let out = import(late, &[]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("removed again"));
    assert!(t.ns.queue_stats("c").is_err() && t.ns.declare_exchange_passive("h").is_err(), "rolled back");
    // Several vhosts: pick one.
    let two = r#"{"vhosts": [{"name": "/"}, {"name": "eu"}],
        "queues": [{"name": "root-q", "vhost": "/", "arguments": {}}, {"name": "eu-q", "vhost": "eu", "arguments": {}}]}"#;
    let out = import(two, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 vhosts (/, eu): pick one with --vhost NAME"));
    let out = import(two, &["--vhost", "eu"]);
    assert!(out.status.success());
    assert!(t.ns.queue_stats("eu-q").is_ok() && t.ns.queue_stats("root-q").is_err());
    assert!(String::from_utf8_lossy(&import(two, &["--vhost", "us"]).stderr).contains("no vhost 'us'; it has: /, eu"));
    // A `block` queue is exported as RabbitMQ's nearest, with a warning.
    t.run(&["declare-queue", "held", "--max-length", "3", "--overflow", "block"]);
    let out = t.shmq().args(["export"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("queue 'held' has overflow 'block'"));
    let exported: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let held = exported["queues"].as_array().unwrap().iter().find(|q| q["name"] == "held").unwrap().clone();
    assert_eq!((held["arguments"]["x-overflow"].as_str(), held["shmq"]["overflow"].as_str()), (Some("reject-publish"), Some("block")));
}

#[test]
fn importing_a_rabbitmq_export_maps_its_arguments() {
    // As written by `rabbitmqctl export_definitions` (trimmed).
    let defs = r#"{
      "rabbit_version": "3.12.4", "users": [], "vhosts": [{"name": "/"}],
      "queues": [{"name": "hello", "vhost": "/", "durable": true, "auto_delete": false,
                  "arguments": {"x-queue-type": "classic", "x-max-length-bytes": 262144, "x-overflow": "reject-publish"}}],
      "exchanges": [{"name": "logs", "vhost": "/", "type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": {}}],
      "bindings": [{"source": "logs", "vhost": "/", "destination": "hello", "destination_type": "queue", "routing_key": "", "arguments": {}}]
    }"#;
    let t = TempNs::in_shm("cli-rabbit-import");
    let file = t.path().join("rabbit.json");
    std::fs::write(&file, defs).unwrap();
    t.run(&["import", file.to_str().unwrap()]);
    let q = json(&t.run(&["list-queues", "--json"]));
    assert_eq!(
        (q[0]["name"].as_str(), q[0]["max_length_bytes"].as_u64(), q[0]["overflow"].as_str()),
        (Some("hello"), Some(262144), Some("reject-publish"))
    );
    t.run(&["publish", "--exchange", "logs", "", "via the imported binding"]);
    assert_eq!(finish(t.spawn(&["consume", "hello", "--count", "1"])), "via the imported binding\t0\n");
}

#[test]
fn shell_completions_are_generated() {
    let t = TempNs::in_shm("cli-completions");
    let bash = t.run(&["completions", "bash"]);
    assert!(bash.contains("list-queues") && bash.contains("declare-exchange"));
}

#[test]
fn top_shows_live_rates_of_a_publishing_process() {
    let t = TempNs::in_shm("cli-top");
    t.run(&["declare-queue", "work", "--overflow", "drop-oldest"]);
    let mut publisher =
        t.shmq().args(["publish", "work", "m{i}", "--count", "1000000", "--interval-ms", "1"]).stdout(Stdio::null()).spawn().unwrap();
    let screen = t.run(&["top", "--iterations", "2", "--interval-ms", "300"]);
    publisher.kill().unwrap();
    publisher.wait().unwrap();
    let last_frame = screen.split("┌ shmq top").last().unwrap();
    assert!(last_frame.contains("peers 1 alive"), "{last_frame}");
    let row = last_frame.lines().find(|l| l.contains("│work")).expect("a row for the queue");
    let cells: Vec<&str> = row.trim_matches('│').split_whitespace().collect();
    let publish_rate: f64 = cells[4].parse().unwrap();
    assert!(publish_rate > 0.0, "a publishing process shows a publish rate: {row}");
    assert!(last_frame.contains("publish rate, all queues"));
}

#[test]
fn list_queues_reports_rates_of_a_running_publisher() {
    let t = TempNs::in_shm("cli-rates");
    t.run(&["declare-queue", "q", "--overflow", "drop-oldest"]);
    let mut publisher =
        t.shmq().args(["publish", "q", "m{i}", "--count", "1000000", "--interval-ms", "1"]).stdout(Stdio::null()).spawn().unwrap();
    let q = json(&t.run(&["list-queues", "--rates", "--json"]));
    publisher.kill().unwrap();
    publisher.wait().unwrap();
    assert!(q[0]["publish_rate"].as_f64().unwrap() > 0.0, "{q}");
    assert_eq!(q[0]["deliver_rate"].as_f64(), Some(0.0));
}

#[test]
fn bench_runs_producers_and_consumers_and_reports_rates_and_latency() {
    let t = TempNs::in_shm("cli-bench");
    for mode in [&["--threads"][..], &[][..]] {
        let mut args = vec![
            "bench",
            "--messages",
            "20000",
            "--producers",
            "2",
            "--consumers",
            "2",
            "--queues",
            "2",
            "--exchange-type",
            "direct",
            "--json",
        ];
        args.extend_from_slice(mode);
        let out = t.run(&args);
        let summary = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| v.get("summary").cloned())
            .expect("a summary line");
        assert_eq!(summary["sent"], 40000, "{out}");
        assert_eq!(summary["received"], 40000, "each message once, over two queues: {out}");
        assert!(summary["latency_ns"]["p50"].as_u64().unwrap() > 0);
    }
    let out = t.shmq().args(["bench", "--queues", "3", "--consumers", "1"]).output().unwrap();
    assert!(!out.status.success());
}

/// `shmq top` in a real terminal: a detached tmux session (tmux is
/// installed by .ci/run), killed when dropped.
struct TopInTmux {
    session: String,
}

impl TopInTmux {
    /// Starts `shmq --namespace DIR top ARGS` in a `width` × `height` terminal.
    fn start(namespace: &std::path::Path, args: &str, width: u16, height: u16) -> TopInTmux {
        static SESSIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let session = format!("shmq-top-{}-{n}", std::process::id());
        let cmd = format!("{} --namespace {} top {args}", env!("CARGO_BIN_EXE_shmq"), namespace.display());
        let top = TopInTmux { session };
        let (w, h) = (width.to_string(), height.to_string());
        assert!(top.tmux(&["new-session", "-d", "-s", &top.session, "-x", &w, "-y", &h, &cmd]).status.success());
        top
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("tmux").args(args).output().expect("tmux is installed")
    }

    /// Presses keys, by tmux's names (`End`, `PPage`, `Escape`, `/`).
    fn press(&self, keys: &[&str]) {
        for key in keys {
            assert!(self.tmux(&["send-keys", "-t", &self.session, key]).status.success());
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-t", &self.session, "-p"]).stdout).into_owned()
    }

    /// The screen once `shows` holds of it; panics with the screen if it
    /// does not within 30 s (debug builds on a busy machine are slow).
    fn wait_until(&self, what: &str, shows: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if shows(&screen) {
                return screen;
            }
            assert!(std::time::Instant::now() < deadline, "top never showed {what}:\n{screen}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Whether the session ended (top exited) within 3 s.
    fn exits(&self) -> bool {
        for _ in 0..30 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if !self.tmux(&["has-session", "-t", &self.session]).status.success() {
                return true;
            }
        }
        false
    }
}

impl Drop for TopInTmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-session", "-t", &self.session]);
    }
}

/// The first cell of each table row on a top screen whose first cell
/// starts with `prefix`, top to bottom.
fn rows_shown(screen: &str, prefix: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| l.strip_prefix('│')?.split_whitespace().next().filter(|w| w.starts_with(prefix)).map(str::to_owned))
        .collect()
}

#[test]
fn top_runs_interactively_in_a_terminal_and_quits_on_q() {
    let t = TempNs::in_shm("cli-top-tmux");
    t.run(&["declare-queue", "visible_queue"]);
    let top = TopInTmux::start(t.path(), "--interval-ms 200", 120, 30);
    top.wait_until("the queue", |s| s.contains("shmq top") && s.contains("visible_queue"));
    top.press(&["q"]);
    assert!(top.exits(), "q quits top");
}

#[test]
fn top_scrolls_sorts_and_filters_the_queues() {
    let t = TempNs::in_shm("cli-top-keys");
    // q-00 .. q-39 holding i * 7 % 40 messages: q-17 the most (39), q-00 none.
    for i in 0..40u64 {
        let name = format!("q-{i:02}");
        t.ns.declare_queue(&name, &shmq::QueueOptions::default().capacity_bytes(16384)).unwrap();
        let mut producer = t.ns.producer(&name).unwrap();
        for _ in 0..i * 7 % 40 {
            producer.publish(b"m").unwrap();
        }
    }
    let top = TopInTmux::start(t.path(), "--interval-ms 300", 120, 30);
    let first_page = rows_shown(&top.wait_until("the first page", |s| s.contains("│q-00")), "q-");
    assert_eq!(first_page[0], "q-00", "by name at start");
    assert!(first_page.len() < 40 && !first_page.contains(&"q-39".to_owned()), "one page: {first_page:?}");

    // Each wait is for a whole frame: the screen may be caught mid-draw.
    top.press(&["End"]);
    let last_page = top.wait_until("the last page", |s| rows_shown(s, "q-").last().map(String::as_str) == Some("q-39"));
    assert!(!rows_shown(&last_page, "q-").contains(&"q-00".to_owned()), "{last_page}");
    top.press(&["Home", "Down", "j"]);
    top.wait_until("the page scrolled by two", |s| rows_shown(s, "q-").first().map(String::as_str) == Some("q-02"));
    top.press(&["PPage"]);
    top.wait_until("the first page again", |s| rows_shown(s, "q-").first().map(String::as_str) == Some("q-00"));

    top.press(&["s"]);
    top.wait_until("q-17, q-34 and q-11 (39, 38 and 37 messages) first", |s| {
        s.contains("by messages largest first") && rows_shown(s, "q-").starts_with(&["q-17".into(), "q-34".into(), "q-11".into()])
    });
    top.press(&["r"]);
    top.wait_until("q-00 and q-23 (0 and 1 message) first", |s| {
        s.contains("by messages smallest first") && rows_shown(s, "q-").starts_with(&["q-00".into(), "q-23".into()])
    });

    top.press(&["/", "3", "9"]);
    top.wait_until("only q-39", |s| s.contains("matching \"39\"") && rows_shown(s, "q-") == ["q-39"]);
    top.press(&["Enter", "Escape"]);
    top.wait_until("every queue again", |s| s.contains("1-") && s.contains("of 40,") && !s.contains("matching"));
    top.press(&["q"]);
    assert!(top.exits(), "q quits top");
}

/// A namespace holding `count` small queues `q00000`, `q00001`, ...: the
/// default routing table holds 4096, so it is created with room for more.
fn namespace_with_queues(tag: &str, count: usize) -> TempNs {
    let dir = std::path::PathBuf::from(format!("/dev/shm/shmq-test-{tag}-{}", std::process::id()));
    let limits = shmq::RoutingLimits { max_queues: 16384, table_bytes: 16 << 20, ..Default::default() };
    let options = shmq::NamespaceOptions::default().routing_limits(limits);
    let ns = shmq::Namespace::open_with(dir.to_str().unwrap(), options).expect("create the namespace");
    for i in 0..count {
        ns.declare_queue(&format!("q{i:05}"), &shmq::QueueOptions::default().capacity_bytes(1024)).unwrap();
    }
    TempNs { dir, ns }
}

#[test]
fn top_with_ten_thousand_queues_shows_a_page_and_finds_one_near_the_end() {
    let t = namespace_with_queues("cli-top-10k", 10_000);
    let top = TopInTmux::start(t.path(), "--interval-ms 1000", 120, 30);
    let first = top.wait_until("the first page", |s| s.contains("│q00000"));
    assert!(first.contains("queues 10000") && first.contains("1-") && first.contains("of 10000,"), "{first}");
    let read_in = first.lines().find_map(|l| l.split("read in ").nth(1)).and_then(|rest| rest.split("ms").next());
    eprintln!("top read 10 000 queues in {} ms (debug build)", read_in.unwrap_or("?").trim());
    top.press(&["/", "q0999", "0"]);
    top.wait_until("only the queue near the end", |s| rows_shown(s, "q0") == ["q09990"]);
    top.press(&["Escape"]);
    top.wait_until("every queue again", |s| s.contains("of 10000,"));
    top.press(&["End"]);
    top.wait_until("the last queue", |s| s.contains("│q09999"));
    top.press(&["q"]);
    assert!(top.exits(), "q quits top");
}

#[test]
fn top_json_is_one_snapshot_of_queues_exchanges_consumers_peers_and_shovels() {
    let t = TempNs::in_shm("cli-top-json");
    t.run(&["declare-queue", "tasks"]);
    t.run(&["declare-exchange", "logs", "--type", "fanout"]);
    t.run(&["bind", "logs", "tasks"]);
    t.run(&["publish", "tasks", "a", "b"]);
    shovel_declare(&t, "to-rabbit", "tasks");
    let consumer = t.ns.consumer("tasks", shmq::ConsumerOptions::default().manual_ack().prefetch(7)).unwrap();
    let snapshot = json(&t.run(&["top", "--json", "--interval-ms", "100"]));
    drop(consumer);
    let queue = &snapshot["queues"][0];
    assert_eq!((queue["name"].as_str(), queue["messages_ready"].as_u64()), (Some("tasks"), Some(2)), "{snapshot}");
    assert_eq!(queue["publish_rate"].as_f64(), Some(0.0), "nothing published between the samples");
    let exchanges = snapshot["exchanges"].as_array().unwrap();
    assert!(exchanges.iter().any(|x| x["name"] == "logs" && x["type"] == "fanout"), "{snapshot}");
    assert!(exchanges.iter().any(|x| x["name"] == "amq.topic"));
    let consumers = snapshot["consumers"].as_array().unwrap();
    assert!(consumers.iter().any(|c| c["queue"] == "tasks" && c["role"] == "consumer" && c["prefetch"] == 7), "{snapshot}");
    assert!(snapshot["peers"].as_array().unwrap().iter().any(|p| p["alive"] == true && p["pid"] == std::process::id()));
    let shovels = snapshot["shovels"].as_array().unwrap();
    assert_eq!((shovels.len(), shovels[0]["name"].as_str(), shovels[0]["state"].as_str()), (1, Some("to-rabbit"), Some("not running")));
    assert!(!snapshot.to_string().contains("secret"), "passwords are hidden: {snapshot}");
}

/// Declares a shovel from `queue` to a RabbitMQ that need not exist (it
/// is not run), with a password that must never be shown.
fn shovel_declare(t: &TempNs, name: &str, queue: &str) {
    let src = format!("shm://{}", t.path().display());
    let dest = "amqp://guest:secret@127.0.0.1:5672/%2f";
    t.run(&["shovel", "declare", name, "--src-uri", &src, "--src-queue", queue, "--dest-uri", dest, "--dest-queue", queue]);
}

#[test]
fn a_declared_shovel_shows_in_status_and_top_as_shovel_list_shows_it() {
    let t = TempNs::in_shm("cli-shovel-status");
    t.run(&["declare-queue", "outbox"]);
    assert!(!t.run(&["status"]).contains("shovels"), "no shovels, no section");
    shovel_declare(&t, "outbox-to-rabbit", "outbox");
    let listed = json(&t.run(&["shovel", "list", "--json"]));
    let state = listed[0]["state"].as_str().unwrap().to_owned();
    assert_eq!(state, "not running");

    let status = t.run(&["status"]);
    let row = status.lines().find(|l| l.contains("outbox-to-rabbit")).unwrap_or_else(|| panic!("no shovel row: {status}"));
    assert!(status.contains("shovels:        1") && row.contains(&state) && row.trim_end().ends_with('-'), "{status}");
    let status = json(&t.run(&["status", "--json"]));
    assert_eq!(status["shovels"][0]["name"], "outbox-to-rabbit");
    assert_eq!(status["shovels"][0]["state"], state.as_str());
    assert_eq!(status["shovels"][0]["transferred"], serde_json::Value::Null, "never run");

    let top = TopInTmux::start(t.path(), "--interval-ms 300", 120, 30);
    top.wait_until("the queues", |s| s.contains("│outbox"));
    top.press(&["4"]);
    let shovels = top.wait_until("the shovel and its state", |s| {
        s.lines().any(|l| l.contains("│outbox-to-rabbit") && l.contains(&state) && l.contains("***@127.0.0.1"))
    });
    assert!(!shovels.contains("secret"), "{shovels}");
    top.press(&["q"]);
    assert!(top.exits(), "q quits top");
}

#[test]
fn read_only_commands_on_a_missing_namespace_fail_create_nothing_and_suggest_a_close_name() {
    let near = format!("cli-near-{}", std::process::id());
    let typo = format!("cli-naer-{}", std::process::id());
    let existing = shmq::Namespace::open(&near).unwrap();
    let root = shmq::default_root();
    for args in [&["list-queues"][..], &["status"], &["peek", "q"], &["consume", "q", "--count", "1"], &["gc"], &["export"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_shmq")).args(["-n", &typo]).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("no such namespace '{typo}'")), "{stderr}");
        assert!(stderr.contains(&format!("did you mean '{near}'?")), "{stderr}");
        assert!(!root.join(&typo).exists(), "{args:?} created the namespace");
    }
    // A namespace given by path: same, and nothing is created there either.
    let path = std::env::temp_dir().join(format!("shmq-cli-missing-{}", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shmq")).arg("-n").arg(&path).arg("list-queues").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!path.exists());
    let _ = std::fs::remove_dir_all(existing.path());
}

#[test]
fn names_with_control_characters_are_refused_saying_which_and_where() {
    let t = TempNs::new("cli-ctl");
    for (name, code, at) in [("a\nb", "U+000A", 1), ("tab\there", "U+0009", 3), ("\u{1b}[2Jspoof", "U+001B", 0), ("del\u{7f}", "U+007F", 3)]
    {
        let out = t.shmq().args(["declare-queue", name]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name:?}: {stderr}");
        assert!(stderr.contains(&format!("{code} at byte {at}")), "{stderr}");
    }
    assert!(t.ns.list_queues().unwrap().is_empty());
}

#[test]
fn status_and_list_queues_show_memory_in_use_against_the_budget_set_at_creation() {
    let t = TempNs::in_shm("cli-budget");
    // TempNs created the namespace already: use a fresh directory beside it.
    let dir = t.path().join("budgeted");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_shmq")).arg("--namespace").arg(&dir).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["--memory-budget", "33554432", "declare-queue", "q", "--capacity", "65536"]);
    let status = json(&run(&["status", "--json"]));
    assert_eq!(status["memory_budget"], 33554432);
    let in_use = status["memory_in_use"].as_u64().unwrap();
    assert!(in_use > 65536 && in_use < 1 << 20, "{in_use}");
    // Fixed at creation: a different --memory-budget is refused, not ignored.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shmq"))
        .arg("--namespace")
        .arg(&dir)
        .args(["--memory-budget", "1", "declare-queue", "other"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fixed when it was created"), "{}", String::from_utf8_lossy(&out.stderr));
    run(&["--memory-budget", "33554432", "declare-queue", "other"]);
    assert_eq!(json(&run(&["status", "--json"]))["memory_budget"], 33554432);
    let table = run(&["list-queues"]);
    assert!(table.contains("of a 33554432-byte budget"), "{table}");
}

#[test]
fn import_refuses_queue_arguments_shmq_does_not_implement_and_declares_nothing() {
    let defs = r#"{"queues": [{"name": "work", "vhost": "/", "durable": true, "auto_delete": false,
                  "arguments": {"x-queue-type": "classic", "x-queue-mode": "lazy"}}]}"#;
    let t = TempNs::in_shm("cli-import-refuse");
    let file = t.path().join("defs.json");
    std::fs::write(&file, defs).unwrap();
    let out = t.shmq().args(["import", file.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success(), "an argument shmq would ignore must fail the import");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("'x-queue-mode'") && stderr.contains("cannot honour"), "{stderr}");
    assert!(t.ns.declare_queue_passive("work").is_err(), "nothing was declared");
    // Dead-letter settings are imported, and exported back as RabbitMQ's.
    let defs = r#"{"queues": [{"name": "work", "vhost": "/", "durable": true, "auto_delete": false,
                  "arguments": {"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "dead",
                                "x-delivery-limit": 4, "x-expires": 600000, "x-queue-type": "quorum"}}]}"#;
    std::fs::write(&file, defs).unwrap();
    t.run(&["import", file.to_str().unwrap()]);
    let exported = json(&t.run(&["export"]));
    let args = &exported["queues"][0]["arguments"];
    assert_eq!((args["x-dead-letter-exchange"].as_str(), args["x-dead-letter-routing-key"].as_str()), (Some("dlx"), Some("dead")));
    assert_eq!((args["x-delivery-limit"].as_i64(), args["x-expires"].as_i64()), (Some(4), Some(600000)));
    assert_eq!(args["x-queue-type"], "quorum");
}

#[test]
fn dead_letter_settings_are_declared_listed_and_shown_on_messages() {
    let t = TempNs::in_shm("cli-dlx");
    t.run(&["declare-queue", "dead"]);
    t.run(&["declare-queue", "work", "--dead-letter-exchange", "", "--dead-letter-routing-key", "dead", "--arg", "x-delivery-limit=3"]);
    let q = json(&t.run(&["list-queues", "--json"]));
    let work = q.as_array().unwrap().iter().find(|q| q["name"] == "work").unwrap().clone();
    assert_eq!(work["dead_letter_exchange"], "");
    assert_eq!(work["dead_letter_routing_key"], "dead");
    assert_eq!(work["delivery_limit"], 3);
    assert_eq!(work["arguments"]["x-delivery-limit"], 3);
    assert!(t.run(&["list-queues"]).contains("to '' key 'dead': 0, limit 3"));
    // Unsupported or malformed arguments are refused, naming the argument,
    // and nothing is declared.
    for bad in [["--arg", "x-queue-mode=lazy"], ["--arg", "x-expires=0"], ["--arg", "no-equals-sign"]] {
        let out = t.shmq().args(["declare-queue", "other"]).args(bad).output().unwrap();
        assert!(!out.status.success(), "{bad:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(bad[1].split('=').next().unwrap()), "{bad:?}: {err}");
    }
    assert!(!t.run(&["list-queues"]).contains("other"));
    // A message rejected by a consumer process shows up with its x-death.
    t.run(&["publish", "work", "doomed"]);
    let consumer = t.ns.consumer("work", shmq::ConsumerOptions::default().manual_ack()).unwrap();
    consumer.try_recv().unwrap().reject(false).unwrap();
    let shown = t.run(&["peek", "dead"]);
    assert!(shown.contains("rejected@work×1"), "{shown}");
    let got = json(&t.run(&["get", "dead", "--json"]));
    assert_eq!(got[0]["headers"]["x-death"][0]["reason"], "rejected");
    assert_eq!(got[0]["headers"]["x-first-death-queue"], "work");
    let gc = json(&t.run(&["gc", "--json"]));
    assert_eq!(gc["queues_expired"], 0);
}

#[test]
fn delete_queue_if_empty_refuses_with_exit_code_4() {
    let t = TempNs::in_shm("cli-delete-if");
    t.run(&["declare-queue", "q"]);
    t.run(&["publish", "q", "x"]);
    let out = t.shmq().args(["delete-queue", "q", "--if-empty"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    t.run(&["delete-queue", "q", "--if-unused"]);
    assert!(t.ns.list_queues().unwrap().is_empty());
}
