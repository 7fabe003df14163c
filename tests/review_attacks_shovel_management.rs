//! Attacker-minded review of `shmq shovel` and `shmq management`: each test
//! proves one defect (ignored while unfixed, with the defect named) or pins
//! an attack that held. Shovels here run shm -> shm, so no RabbitMQ is
//! needed; the RabbitMQ-side proofs are in
//! python/tests/test_review_attacks_shovel_management.py.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TempNs;
use shmq::{HeaderValue, Overflow, Properties, QueueOptions};

fn shmq_cmd(ns: &TempNs) -> Command {
    ns.shmq()
}

/// Runs `shmq -n NS ARGS` and returns (success, stdout, stderr).
fn shmq_out(ns: &TempNs, args: &[&str]) -> (bool, String, String) {
    let out = shmq_cmd(ns).args(args).output().expect("run shmq");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn declare(ns: &TempNs, args: &[&str]) {
    let mut all = vec!["shovel", "declare"];
    all.extend_from_slice(args);
    let (ok, _, err) = shmq_out(ns, &all);
    assert!(ok, "shovel declare {args:?}: {err}");
}

/// `shmq shovel run NAMES`, stderr captured to a file (so it cannot block).
fn runner(ns: &TempNs, names: &[&str], log: &std::path::Path) -> Child {
    shmq_cmd(ns)
        .args(["shovel", "run"])
        .args(names)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("spawn shovel run")
}

fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Every message of `queue` (acked), as (body, src-redelivered marks).
fn drain(ns: &TempNs, queue: &str) -> Vec<(Vec<u8>, Vec<bool>)> {
    let consumer = ns.ns.consumer(queue, shmq::ConsumerOptions::default().manual_ack()).unwrap();
    let mut out = Vec::new();
    while let Ok(d) = consumer.try_recv() {
        let mut marks = Vec::new();
        if let Some(HeaderValue::Array(a)) = d.properties().headers.get("x-shovelled") {
            for entry in a.iter() {
                if let HeaderValue::Table(t) = entry {
                    if let Some(HeaderValue::Bool(b)) = t.get("src-redelivered") {
                        marks.push(b);
                    }
                }
            }
        }
        out.push((d.body().to_vec(), marks));
        let tag = d.tag();
        consumer.ack(tag).unwrap();
    }
    out
}

// ---------------------------------------------------------------- shovel

/// A fanout destination with one `reject-publish` queue full: the shovel's
/// retry (publish_local) publishes the whole message again to every queue,
/// so the queue that took it the first time gets a copy per retry, with
/// nothing marking them (src-redelivered is false: the source never
/// redelivered anything). docs/SCALE-OUT.md: "Duplicates happen only after
/// a fault and are marked".
#[test]
fn a_full_reject_queue_behind_a_fanout_marks_the_copies_the_other_queues_get_again() {
    let src = TempNs::new("rv-dup-src");
    let dst = TempNs::new("rv-dup-dst");
    src.ns.declare_queue("outbox", &QueueOptions::default()).unwrap();
    dst.ns.declare_queue("ok", &QueueOptions::default()).unwrap();
    dst.ns.declare_queue("full", &QueueOptions::default().max_length(1).overflow(Overflow::Reject)).unwrap();
    dst.ns.bind_queue("ok", "amq.fanout", "", &[]).unwrap();
    dst.ns.bind_queue("full", "amq.fanout", "", &[]).unwrap();
    dst.ns.producer("full").unwrap().publish(b"filler").unwrap();
    src.ns.producer("outbox").unwrap().publish(b"one").unwrap();
    let (s, d) = (format!("shm://{}", src.path().display()), format!("shm://{}", dst.path().display()));
    declare(
        &src,
        &["dup", "--src-uri", &s, "--src-queue", "outbox", "--dest-uri", &d, "--dest-exchange", "amq.fanout", "--dest-add-forward-headers"],
    );
    let log = src.path().join("dup.log");
    let mut child = runner(&src, &["dup"], &log);
    std::thread::sleep(Duration::from_millis(1500));
    // Make room: the retry now succeeds.
    dst.ns.purge_queue("full").unwrap();
    assert!(wait_until(Duration::from_secs(10), || src.ns.queue_stats("outbox").map(|s| s.ready + s.unacked == 0).unwrap_or(false)));
    common::kill(&mut child);
    let got = drain(&dst, "ok");
    let unmarked = got.iter().filter(|(_, marks)| !marks.contains(&true)).count();
    // The full queue's retries give the other queue copies again: every
    // copy but the first is marked (docs/SCALE-OUT.md).
    assert!(!got.is_empty());
    assert_eq!(unmarked, 1, "queue 'ok' got {} copies of one message, {unmarked} of them unmarked", got.len());
}

/// `src-exchange` on shmq: the server-named queue is exclusive to the
/// session's namespace handle, so a session that ends at a fault deletes
/// it with the message it held unacked. docs/SCALE-OUT.md: on-confirm,
/// "nothing is lost"; a destination that cannot route "leaves the message
/// in the source".
#[test]
fn an_src_exchange_shovel_keeps_the_message_a_faulted_session_held() {
    let src = TempNs::new("rv-sx-src");
    let dst = TempNs::new("rv-sx-dst");
    let (s, d) = (format!("shm://{}", src.path().display()), format!("shm://{}", dst.path().display()));
    // The destination routes nothing yet: every try is a fault.
    declare(
        &src,
        &[
            "sx",
            "--src-uri",
            &s,
            "--src-exchange",
            "amq.fanout",
            "--dest-uri",
            &d,
            "--dest-exchange",
            "amq.direct",
            "--dest-exchange-key",
            "k",
            "--reconnect-delay",
            "0.2",
        ],
    );
    let log = src.path().join("sx.log");
    let mut child = runner(&src, &["sx"], &log);
    // Bound, not only declared (the session declares, then binds).
    let bound = || src.ns.publisher().route_count("amq.fanout", "", &Properties::new()).unwrap() == 1;
    assert!(wait_until(Duration::from_secs(10), bound), "the shovel bound no queue");
    let routed = src.ns.publisher().publish("amq.fanout", "", &Properties::new(), b"precious").unwrap();
    assert_eq!(routed.queues, 1);
    // Let it fail at least once, then give it somewhere to go.
    assert!(wait_until(Duration::from_secs(10), || std::fs::read_to_string(&log).unwrap_or_default().contains("no queue takes")));
    dst.ns.declare_queue("inbox", &QueueOptions::default()).unwrap();
    dst.ns.bind_queue("inbox", "amq.direct", "k", &[]).unwrap();
    let arrived = wait_until(Duration::from_secs(4), || dst.ns.queue_stats("inbox").map(|s| s.ready > 0).unwrap_or(false));
    common::kill(&mut child);
    assert!(arrived, "the message was lost: {}", std::fs::read_to_string(&log).unwrap_or_default());
}

/// A FIFO planted where a definition is read (a group member of a shared
/// namespace can do it): read_bounded opens it before checking its type,
/// and open(2) of a FIFO blocks until a writer comes: `shovel list` (and
/// `run`) hang for ever.
#[test]
fn a_fifo_planted_in_shovels_does_not_hang_list() {
    let ns = TempNs::new("rv-fifo");
    let s = format!("shm://{}", ns.path().display());
    declare(&ns, &["real", "--src-uri", &s, "--src-queue", "q", "--dest-uri", &s, "--dest-queue", "q2"]);
    let fifo = ns.path().join("shovels/evil.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut child = shmq_cmd(&ns).args(["shovel", "list"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let finished = wait_until(Duration::from_secs(3), || child.try_wait().unwrap().is_some());
    common::kill(&mut child);
    assert!(finished, "`shmq shovel list` hangs on a FIFO named shovels/evil.json");
}

/// The shovels directory and its definitions are trusted whatever their
/// owner and mode: a world-writable `shovels/` (anyone could have planted
/// the file) is run, and the planted definition reads another namespace
/// the runner's user can open. nsdir.rs refuses such directories for the
/// namespace itself (docs/SECURITY.md); the shovel module joins paths and
/// never checks.
#[test]
fn a_world_writable_shovels_directory_is_refused() {
    let shared = TempNs::new("rv-trust-shared");
    let private = TempNs::new("rv-trust-private");
    private.ns.declare_queue("secrets", &QueueOptions::default()).unwrap();
    private.ns.producer("secrets").unwrap().publish(b"the victim's data").unwrap();
    let dir = shared.path().join("shovels");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let planted = serde_json::json!({
        "src-uri": format!("shm://{}", private.path().display()), "src-queue": "secrets",
        "dest-uri": format!("shm://{}", shared.path().display()), "dest-queue": "loot",
        "src-delete-after": 1,
    });
    let file = dir.join("innocent.json");
    std::fs::write(&file, planted.to_string()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    // The victim runs "every shovel of the namespace", as docs/SCALE-OUT.md shows.
    let out = shmq_cmd(&shared).args(["shovel", "run"]).output().unwrap();
    let looted = shared.ns.queue_stats("loot").map(|s| s.ready).unwrap_or(0);
    assert_eq!(looted, 0, "a definition planted in a 0777 shovels/ moved the private namespace's message (exit {:?})", out.status);
    assert!(!out.status.success(), "a 0777 shovels/ should be refused, naming its mode");
}

/// The same with `shovels` a symlink to a directory elsewhere: followed.
#[test]
fn a_symlinked_shovels_directory_is_not_followed() {
    let ns = TempNs::new("rv-symdir");
    let elsewhere = std::env::temp_dir().join(format!("rv-elsewhere-{}", std::process::id()));
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, ns.path().join("shovels")).unwrap();
    let s = format!("shm://{}", ns.path().display());
    let (ok, _, _) =
        shmq_out(&ns, &["shovel", "declare", "x", "--src-uri", &s, "--src-queue", "q", "--dest-uri", &s, "--dest-queue", "q2"]);
    let landed = elsewhere.join("x.json").exists();
    let _ = std::fs::remove_dir_all(&elsewhere);
    assert!(!ok && !landed, "declare followed the shovels symlink and wrote x.json outside the namespace (ok={ok}, landed={landed})");
}

/// `shmq --json shovel list` hides the password in `src`/`dest` but prints
/// the definition whole, password included.
#[test]
fn shovel_list_json_does_not_print_passwords() {
    let ns = TempNs::new("rv-pw");
    let s = format!("shm://{}", ns.path().display());
    declare(&ns, &["pw", "--src-uri", &s, "--src-queue", "q", "--dest-uri", "amqp://app:hunter2@127.0.0.1:1/%2f", "--dest-queue", "q"]);
    let (ok, out, err) = shmq_out(&ns, &["--json", "shovel", "list"]);
    assert!(ok, "{err}");
    assert!(!out.contains("hunter2"), "password in the listing: {out}");
}

/// redact() cuts the userinfo at the first '@': a password with a raw '@'
/// (which the URL parser lapin uses accepts: the userinfo ends at the last
/// '@') shows its tail in `shovel list`, logs and status.
#[test]
fn a_password_with_an_at_sign_is_hidden_whole() {
    let ns = TempNs::new("rv-pw-at");
    let s = format!("shm://{}", ns.path().display());
    declare(&ns, &["pw", "--src-uri", &s, "--src-queue", "q", "--dest-uri", "amqp://app:pa@ss-TAIL@127.0.0.1:1/%2f", "--dest-queue", "q"]);
    let (ok, out, err) = shmq_out(&ns, &["shovel", "list"]);
    assert!(ok, "{err}");
    assert!(!out.contains("ss-TAIL"), "part of the password shown: {out}");
}

/// `src-delete-after N` is counted per process: a completed shovel keeps
/// its definition (RabbitMQ deletes the shovel when done), so the next
/// `shovel run` (a supervisor's restart, or the documented `shovel run` of
/// every shovel) moves N more, and a kill -9 mid-way restarts the count.
#[test]
fn a_completed_delete_after_shovel_moves_nothing_more() {
    let ns = TempNs::new("rv-delafter");
    ns.ns.declare_queue("a", &QueueOptions::default()).unwrap();
    let mut producer = ns.ns.producer("a").unwrap();
    for i in 0..6u8 {
        producer.publish(&[i]).unwrap();
    }
    drop(producer);
    let s = format!("shm://{}", ns.path().display());
    declare(&ns, &["three", "--src-uri", &s, "--src-queue", "a", "--dest-uri", &s, "--dest-queue", "b", "--src-delete-after", "3"]);
    let (ok, _, err) = shmq_out(&ns, &["shovel", "run"]);
    assert!(ok, "{err}");
    assert_eq!(ns.ns.queue_stats("b").unwrap().ready, 3);
    let (_, _, _) = shmq_out(&ns, &["shovel", "run"]);
    assert_eq!(ns.ns.queue_stats("b").unwrap().ready, 3, "a second run moved more after src-delete-after 3 was reached");
}

/// reconnect-delay accepts any positive float: 1 µs against a closed port
/// is a hot loop of connects, log lines and status-file rewrites.
#[test]
fn a_tiny_reconnect_delay_does_not_spin() {
    let ns = TempNs::new("rv-spin");
    let s = format!("shm://{}", ns.path().display());
    let tiny = [
        "shovel",
        "declare",
        "spin",
        "--src-uri",
        &s,
        "--src-queue",
        "q",
        "--dest-uri",
        "amqp://u:p@127.0.0.1:1/%2f",
        "--reconnect-delay",
        "0.000001",
    ];
    let (ok, _, err) = shmq_out(&ns, &tiny);
    assert!(!ok && err.contains("0.1 to 86400"), "a reconnect-delay below 0.1 s is refused: {err}");
    declare(&ns, &["spin", "--src-uri", &s, "--src-queue", "q", "--dest-uri", "amqp://u:p@127.0.0.1:1/%2f", "--reconnect-delay", "0.1"]);
    let log = ns.path().join("spin.log");
    let mut child = runner(&ns, &["spin"], &log);
    std::thread::sleep(Duration::from_secs(2));
    common::kill(&mut child);
    let faults = std::fs::read_to_string(&log).unwrap().lines().filter(|l| l.contains("reconnecting")).count();
    assert!(faults <= 20, "{faults} reconnect attempts in 2 s");
}

/// Held: a second runner of the same shovel is refused, and the first
/// keeps running.
#[test]
fn a_second_runner_of_one_shovel_is_refused() {
    let ns = TempNs::new("rv-twice");
    let s = format!("shm://{}", ns.path().display());
    declare(&ns, &["once", "--src-uri", &s, "--src-queue", "q", "--dest-uri", &s, "--dest-queue", "q2"]);
    let log = ns.path().join("once.log");
    let mut first = runner(&ns, &["once"], &log);
    assert!(wait_until(Duration::from_secs(10), || std::fs::read_to_string(&log).unwrap_or_default().contains("running")));
    let (ok, _, err) = shmq_out(&ns, &["shovel", "run", "once"]);
    assert!(!ok && err.contains("run by another process"), "{err}");
    assert!(first.try_wait().unwrap().is_none(), "the first runner stopped");
    common::kill(&mut first);
}

/// Held: names that are paths are refused before any file is touched.
#[test]
fn shovel_names_that_are_paths_are_refused() {
    let ns = TempNs::new("rv-names");
    let s = format!("shm://{}", ns.path().display());
    for name in ["../x", "a/b", ".hidden", "x\u{0}y"] {
        let out = shmq_cmd(&ns)
            .args(["shovel", "declare", name, "--src-uri", &s, "--src-queue", "q", "--dest-uri", &s, "--dest-queue", "q2"])
            .output();
        if let Ok(out) = out {
            assert!(!out.status.success(), "{name:?} accepted");
        }
        for args in [vec!["shovel", "run", name], vec!["shovel", "delete", name]] {
            if let Ok(out) = shmq_cmd(&ns).args(&args).output() {
                assert!(!out.status.success(), "{args:?} accepted");
            }
        }
    }
    assert!(!ns.path().parent().unwrap().join("x.json").exists());
}

// ------------------------------------------------------------ management

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(t: &TempNs, extra: &[&str]) -> Server {
        let mut child = t.shmq().args(["management", "--port", "0"]).args(extra).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        common::kill(&mut self.child);
    }
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// One request; (status, body), or None if no answer came within `wait`.
fn request(port: u16, method: &str, path: &str, auth: (&str, &str), body: Option<&str>, wait: Duration) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(wait)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {}\r\n",
        base64(&format!("{}:{}", auth.0, auth.1))
    );
    if let Some(b) = body {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    head.push_str(body.unwrap_or(""));
    s.write_all(head.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (h, b) = text.split_once("\r\n\r\n")?;
    Some((h.split(' ').nth(1)?.parse().ok()?, b.to_owned()))
}

/// With `--users` naming only alice, guest/guest still logs in from
/// loopback, as an administrator: any local account on the machine can
/// read (`/get`) and delete every queue of the namespaces served, whatever
/// their file permissions (docs/SECURITY.md: "the namespace directory's
/// file permissions decide who may touch the queues"), and there is no
/// way to turn guest off.
#[test]
fn guest_is_refused_when_a_users_file_names_other_users() {
    let ns = TempNs::new("rv-guest");
    ns.ns.declare_queue("payroll", &QueueOptions::default()).unwrap();
    ns.ns.producer("payroll").unwrap().publish(b"salary").unwrap();
    let users = ns.path().join("users");
    // alice:s3cret
    let line = String::from_utf8(ns.shmq().args(["management", "hash-password", "alice", "s3cret"]).output().unwrap().stdout).unwrap();
    std::fs::write(&users, line).unwrap();
    let server = Server::start(&ns, &["--users", users.to_str().unwrap()]);
    let wait = Duration::from_secs(10);
    let (status, _) = request(server.port, "GET", "/api/whoami", ("alice", "s3cret"), None, wait).unwrap();
    assert_eq!(status, 200, "alice logs in");
    let body = r#"{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}"#;
    let (status, reply) = request(server.port, "POST", "/api/queues/%2F/payroll/get", ("guest", "guest"), Some(body), wait).unwrap();
    assert_eq!(status, 401, "guest, not in the users file, read the queue: {reply}");
}

/// Slowloris: `--threads` silent connections hold every worker for 30 s
/// (REQUEST_DEADLINE is also the wait for the first byte, before any
/// authentication), so an unauthenticated client with 2 sockets keeps an
/// authenticated one from being answered. docs/MANAGEMENT.md: "idle
/// clients cannot hold the pool".
#[test]
fn silent_connections_do_not_starve_authenticated_requests() {
    let ns = TempNs::new("rv-slow");
    let server = Server::start(&ns, &["--threads", "2"]);
    assert_eq!(request(server.port, "GET", "/api/overview", ("guest", "guest"), None, Duration::from_secs(10)).unwrap().0, 200);
    let _idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let answered = request(server.port, "GET", "/api/overview", ("guest", "guest"), None, Duration::from_secs(6));
    assert!(answered.is_some_and(|(s, _)| s == 200), "two silent sockets kept /api/overview from being answered for 6 s");
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Totals are "monotonic across deleted queues" only when the new queue of
/// a name has published fewer than the old: a queue deleted and declared
/// again between two samples that has published as many or more is taken
/// for the same queue, so its acked/delivered fall back, and so do the
/// Prometheus counters.
#[test]
fn global_counters_never_decrease_when_a_queue_is_redeclared() {
    let ns = TempNs::new("rv-mono");
    let server = Server::start(&ns, &["--sample-interval", "0"]);
    let scrape = || request(server.port, "GET", "/metrics", ("guest", "guest"), None, Duration::from_secs(10)).unwrap().1;
    ns.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    ns.ns.producer("q").unwrap().publish(b"a").unwrap();
    {
        let c = ns.ns.consumer("q", shmq::ConsumerOptions::default().manual_ack()).unwrap();
        let d = c.try_recv().unwrap();
        let tag = d.tag();
        c.ack(tag).unwrap();
    }
    let before = scrape();
    let acked_before = metric(&before, "rabbitmq_global_messages_acknowledged_total");
    assert_eq!(acked_before, 1);
    ns.ns.delete_queue("q").unwrap();
    ns.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    let mut p = ns.ns.producer("q").unwrap();
    p.publish(b"b").unwrap();
    p.publish(b"c").unwrap();
    drop(p);
    let after = scrape();
    let acked_after = metric(&after, "rabbitmq_global_messages_acknowledged_total");
    let published_after = metric(&after, "rabbitmq_global_messages_received_total");
    assert!(acked_after >= acked_before, "acknowledged_total fell from {acked_before} to {acked_after}");
    assert_eq!(published_after, 3, "received_total lost the deleted queue's message");
}

/// Held: /get refuses negative, fractional and absurd counts and bad
/// bodies with 400, and a huge count is served within MAX_GET without
/// holding memory for it.
#[test]
fn get_refuses_hostile_counts_and_bodies() {
    let ns = TempNs::new("rv-get");
    ns.ns.declare_queue("q", &QueueOptions::default()).unwrap();
    ns.ns.producer("q").unwrap().publish(b"x").unwrap();
    let server = Server::start(&ns, &[]);
    let w = Duration::from_secs(10);
    let g = ("guest", "guest");
    for body in [
        r#"{"count":-1,"ackmode":"ack_requeue_true","encoding":"auto"}"#,
        r#"{"count":1e9,"ackmode":"ack_requeue_true","encoding":"auto"}"#,
        r#"{"count":1,"ackmode":"ack_requeue_true","encoding":"auto","truncate":-1}"#,
        "{\"count\":1,\"ackmode\":\"\u{fffd}\",\"encoding\":\"auto\"}",
        "not json",
    ] {
        let (status, reply) = request(server.port, "POST", "/api/queues/%2F/q/get", g, Some(body), w).unwrap();
        assert_eq!(status, 400, "{body}: {reply}");
    }
    let body = r#"{"count":18446744073709551615,"ackmode":"ack_requeue_true","encoding":"auto","truncate":"18446744073709551615"}"#;
    let (status, reply) = request(server.port, "POST", "/api/queues/%2F/q/get", g, Some(body), w).unwrap();
    assert_eq!(status, 200, "{reply}");
    assert_eq!(ns.ns.queue_stats("q").unwrap().ready, 1, "requeued");
    // Invalid UTF-8 in a path segment: 400, and the server goes on.
    let (status, _) = request(server.port, "GET", "/api/queues/%2F/%FF%FE", g, None, w).unwrap();
    assert_eq!(status, 400);
    assert_eq!(request(server.port, "GET", "/api/overview", g, None, w).unwrap().0, 200);
}
