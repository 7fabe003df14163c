//! `shmq management` as a process: every endpoint of its RabbitMQ-style
//! management API, authentication, hostile input and the definitions round
//! trip, spoken to with a minimal HTTP client over `std::net::TcpStream`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::TempNs;
use serde_json::{json, Value};

/// A running `shmq management`, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Starts `shmq --namespace <t> management --port 0 EXTRA...` and reads
    /// the port from the line it prints.
    fn start(t: &TempNs, extra: &[&str]) -> Server {
        let mut child =
            t.shmq().args(["management", "--port", "0"]).args(extra).stdout(Stdio::piped()).spawn().expect("spawn shmq management");
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

    fn call(&self, method: &str, path: &str, auth: Option<(&str, &str)>, body: Option<&str>) -> Reply {
        call(self.port, method, path, auth, body.map(str::as_bytes), &[])
    }

    /// As guest, from loopback.
    fn guest(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        self.call(method, path, Some(("guest", "guest")), body)
    }

    fn get_json(&self, path: &str) -> Value {
        let reply = self.guest("GET", path, None);
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
        reply.json()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        common::kill(&mut self.child);
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
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

/// One request on a new connection; the whole reply.
fn call(port: u16, method: &str, path: &str, auth: Option<(&str, &str)>, body: Option<&[u8]>, extra: &[&str]) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some((user, password)) = auth {
        head.push_str(&format!("Authorization: Basic {}\r\n", base64(&format!("{user}:{password}"))));
    }
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    if let Some(body) = body {
        stream.write_all(body).unwrap();
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read reply");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no reply head in {text:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {head:?}"));
    Reply { status, head: head.to_owned(), body: body.to_owned() }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect()
}

const NOT_FOUND: &str = r#"{"error":"Object Not Found","reason":"Not Found"}"#;

#[test]
fn every_endpoint_answers_in_rabbitmqs_shapes() {
    let t = TempNs::in_shm("mgmt-api");
    let server = Server::start(&t, &[]);
    let vhost = t.ns.name().to_owned();

    // Declare through the API: 201 new, 204 again, 400 inequivalent.
    let declare = r#"{"durable":true,"auto_delete":false,"arguments":{"x-max-length":100}}"#;
    assert_eq!(server.guest("PUT", "/api/queues/%2F/tasks", Some(declare)).status, 201);
    assert_eq!(server.guest("PUT", "/api/queues/%2F/tasks", Some(declare)).status, 204);
    let conflict = server.guest("PUT", "/api/queues/%2F/tasks", Some(r#"{"durable":false}"#));
    assert_eq!(conflict.status, 400);
    assert_eq!(
        conflict.json(),
        json!({"error": "bad_request", "reason": format!("inequivalent arg 'durable' for queue 'tasks' in vhost '{vhost}': received 'false' but current is 'true'")})
    );
    assert_eq!(server.guest("PUT", "/api/queues/%2F/orders%2Feu", Some("{}")).status, 201);
    assert!(t.ns.queue_stats("orders/eu").is_ok(), "a percent-encoded name is decoded");
    assert_eq!(server.guest("PUT", "/api/exchanges/%2F/logs", Some(r#"{"type":"fanout","durable":true}"#)).status, 201);
    assert_eq!(
        server.guest("PUT", "/api/exchanges/%2F/shop", Some(r#"{"type":"topic","arguments":{"alternate-exchange":"logs"}}"#)).status,
        201
    );
    assert_eq!(server.guest("PUT", "/api/exchanges/%2F/shop", Some(r#"{"type":"fanout"}"#)).status, 400);
    assert_eq!(server.guest("PUT", "/api/exchanges/%2F/x", Some(r#"{"type":"bogus"}"#)).json()["reason"], "invalid exchange type 'bogus'");
    assert_eq!(server.guest("PUT", "/api/exchanges/%2F/amq.mine", Some(r#"{"type":"direct"}"#)).status, 401, "amq.* is reserved");

    // Bindings: queue and exchange destinations, with a Location.
    let bound = server.guest("POST", "/api/bindings/%2F/e/logs/q/tasks", Some(r#"{"routing_key":"","arguments":{}}"#));
    assert_eq!((bound.status, bound.header("location").as_deref()), (201, Some("tasks/~")));
    let bound = server.guest("POST", "/api/bindings/%2F/e/shop/q/orders%2Feu", Some(r#"{"routing_key":"order.*","arguments":{"k":1}}"#));
    assert_eq!(bound.status, 201);
    assert_eq!(server.guest("POST", "/api/bindings/%2F/e/shop/e/logs", Some(r##"{"routing_key":"#"}"##)).status, 201);
    let missing = server.guest("POST", "/api/bindings/%2F/e/shop/q/nope", Some("{}"));
    assert_eq!((missing.status, missing.json()["reason"].as_str().unwrap()), (404, &*format!("no queue 'nope' in vhost '{vhost}'")));
    let e2q = server.get_json("/api/bindings/%2F/e/shop/q/orders%2Feu");
    assert_eq!(e2q.as_array().unwrap().len(), 1);
    let props = e2q[0]["properties_key"].as_str().unwrap().to_owned();
    assert!(props.starts_with("order.%2A~"), "{props}");
    assert_eq!(e2q[0]["arguments"], json!({"k": 1}));
    let one = server.get_json(&format!("/api/bindings/%2F/e/shop/q/orders%2Feu/{}", props.replace('%', "%25")));
    assert_eq!(one["routing_key"], "order.*");
    assert_eq!(server.get_json("/api/bindings/%2F/e/shop/e/logs")[0]["properties_key"], "%23");
    let all = server.get_json("/api/bindings/%2F");
    let keys: Vec<(String, String)> =
        all.as_array().unwrap().iter().map(|b| (b["source"].as_str().unwrap().into(), b["destination"].as_str().unwrap().into())).collect();
    assert!(keys.contains(&("".into(), "tasks".into())), "the default exchange's implicit binding: {keys:?}");
    assert!(keys.contains(&("logs".into(), "tasks".into())));
    assert_eq!(server.get_json("/api/bindings").as_array().unwrap().len(), all.as_array().unwrap().len());
    assert_eq!(server.get_json("/api/exchanges/%2F/shop/bindings/source").as_array().unwrap().len(), 2);
    assert_eq!(server.get_json("/api/exchanges/%2F/logs/bindings/destination").as_array().unwrap().len(), 1);
    assert_eq!(server.get_json("/api/queues/%2F/tasks/bindings").as_array().unwrap().len(), 2);

    // Publish: routed or not; base64; the exchange must exist.
    let publish = |exchange: &str, key: &str, payload: &str, encoding: &str| {
        let body = json!({"properties": {"content_type": "text/plain", "headers": {"n": 1, "t": {"deep": [1, "x"]}}, "delivery_mode": 2},
                          "routing_key": key, "payload": payload, "payload_encoding": encoding});
        server.guest("POST", &format!("/api/exchanges/%2F/{exchange}/publish"), Some(&body.to_string()))
    };
    assert_eq!(publish("logs", "", "one", "string").json(), json!({"routed": true}));
    assert_eq!(publish("amq.default", "tasks", "dHdv", "base64").json(), json!({"routed": true}));
    assert_eq!(publish("amq.default", "nobody", "x", "string").json(), json!({"routed": false}));
    let no_exchange = publish("nox", "", "x", "string");
    assert_eq!(
        (no_exchange.status, no_exchange.json()["reason"].as_str().unwrap()),
        (400, &*format!("404 NOT_FOUND - no exchange 'nox' in vhost '{vhost}'"))
    );
    let no_encoding = server.guest("POST", "/api/exchanges/%2F/logs/publish", Some(r#"{"properties":{},"routing_key":"","payload":"x"}"#));
    assert_eq!(no_encoding.json(), json!({"error": "bad_request", "reason": "[{key_missing,payload_encoding}]"}));

    // The overview counts them (and keeps counting them after the queue goes).
    let overview = server.get_json("/api/overview");
    assert_eq!((overview["message_stats"]["publish"].as_u64(), overview["message_stats"]["drop_unroutable"].as_u64()), (Some(2), Some(1)));
    assert_eq!(overview["queue_totals"]["messages_ready"], 2);

    // Queues: list, one, RabbitMQ's fields.
    let queues = server.get_json("/api/queues");
    assert_eq!(names(&queues), ["orders/eu", "tasks"]);
    let tasks = server.get_json(&format!("/api/queues/{vhost}/tasks"));
    for key in [
        "name",
        "vhost",
        "durable",
        "auto_delete",
        "exclusive",
        "arguments",
        "messages",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
        "state",
        "type",
        "node",
        "message_stats",
        "messages_details",
    ] {
        assert!(tasks.get(key).is_some(), "{key} missing from {tasks}");
    }
    assert_eq!((tasks["messages"].as_u64(), tasks["messages_ready"].as_u64(), tasks["durable"].as_bool()), (Some(2), Some(2), Some(true)));
    assert_eq!(tasks["arguments"], json!({"x-max-length": 100}));
    assert_eq!(tasks["message_stats"]["publish"], 2);
    assert_eq!(server.get_json("/api/queues/%2F/tasks")["name"], "tasks", "/ is the first namespace");
    assert_eq!(server.get_json(&format!("/api/queues/{vhost}")).as_array().unwrap().len(), 2);
    let columns = server.get_json("/api/queues?columns=name,messages");
    assert_eq!(columns[1], json!({"name": "tasks", "messages": 2}));
    let page = server.get_json("/api/queues?page=1&page_size=1");
    assert_eq!((page["total_count"].as_u64(), page["page_count"].as_u64(), page["items"].as_array().unwrap().len()), (Some(2), Some(2), 1));

    // Get: requeue, then ack; message shape as RabbitMQ's.
    let get = |mode: &str, encoding: &str| {
        let body = json!({"count": 5, "ackmode": mode, "encoding": encoding, "truncate": 50000});
        server.guest("POST", "/api/queues/%2F/tasks/get", Some(&body.to_string())).json()
    };
    let peeked = get("ack_requeue_true", "auto");
    assert_eq!(peeked.as_array().unwrap().len(), 2);
    assert_eq!(peeked[0]["payload"], "one");
    assert_eq!(peeked[0]["payload_encoding"], "string");
    assert_eq!(peeked[0]["exchange"], "logs");
    assert_eq!(peeked[0]["message_count"], 1);
    assert_eq!(peeked[0]["properties"]["headers"], json!({"n": 1, "t": {"deep": [1, "x"]}}));
    assert_eq!(peeked[0]["properties"]["delivery_mode"], 2);
    assert_eq!(peeked[1]["routing_key"], "tasks");
    assert_eq!(t.ns.queue_stats("tasks").unwrap().ready, 2, "requeued");
    let taken = get("ack_requeue_false", "base64");
    assert_eq!((taken[0]["payload"].as_str(), taken[0]["redelivered"].as_bool()), (Some("b25l"), Some(true)));
    assert_eq!(t.ns.queue_stats("tasks").unwrap().ready, 0, "acked");
    let bad_mode = server.guest("POST", "/api/queues/%2F/tasks/get", Some(r#"{"count":1,"encoding":"auto"}"#));
    assert_eq!(bad_mode.json()["reason"], "[{key_missing,ackmode}]");

    // Exchanges.
    let exchanges = server.get_json(&format!("/api/exchanges/{vhost}"));
    let listed = names(&exchanges);
    assert_eq!(listed[0], "", "the default exchange first");
    assert!(listed.contains(&"amq.topic".to_string()) && listed.contains(&"shop".to_string()));
    let shop = server.get_json("/api/exchanges/%2F/shop");
    assert_eq!((shop["type"].as_str(), shop["arguments"].clone()), (Some("topic"), json!({"alternate-exchange": "logs"})));
    assert_eq!(server.get_json("/api/exchanges/%2F/amq.default")["name"], "");
    assert!(server.get_json("/api/exchanges").as_array().unwrap().len() >= 7);

    // Consumers: a consumer in this process.
    t.ns.producer("tasks").unwrap().publish(b"held").unwrap();
    let consumer = t.ns.consumer("tasks", shmq::ConsumerOptions::default().manual_ack().prefetch(3)).unwrap();
    let held = consumer.recv().unwrap();
    let consumers = server.get_json("/api/consumers");
    assert_eq!(consumers.as_array().unwrap().len(), 1);
    assert_eq!(consumers[0]["queue"], json!({"name": "tasks", "vhost": vhost}));
    assert_eq!((consumers[0]["prefetch_count"].as_u64(), consumers[0]["active"].as_bool()), (Some(3), Some(true)));
    assert_eq!(consumers[0]["shmq"]["pid"], std::process::id());
    assert_eq!(server.get_json(&format!("/api/consumers/{vhost}")), consumers);
    let tasks = server.get_json("/api/queues/%2F/tasks");
    assert_eq!((tasks["consumers"].as_u64(), tasks["messages_unacknowledged"].as_u64()), (Some(1), Some(1)));

    // Connections and channels: this process (the server's own is not one).
    let me = format!("pid {}", std::process::id());
    let connections = server.get_json("/api/connections");
    let mine: Vec<&Value> = connections.as_array().unwrap().iter().filter(|c| c["name"] == me.as_str()).collect();
    assert_eq!(mine.len(), 1, "{connections}");
    assert_eq!((mine[0]["state"].as_str(), mine[0]["vhost"].as_str()), (Some("running"), Some(vhost.as_str())));
    assert_eq!(server.get_json(&format!("/api/connections/pid%20{}", std::process::id()))["name"], me.as_str());
    assert_eq!(server.get_json(&format!("/api/vhosts/{vhost}/connections")), connections);
    assert_eq!(server.guest("GET", "/api/connections/pid%200", None).status, 404);
    assert_eq!(server.guest("DELETE", &format!("/api/connections/pid%20{}", std::process::id()), None).status, 405);
    let channels = server.get_json(&format!("/api/connections/pid%20{}/channels", std::process::id()));
    let consuming: Vec<&Value> = channels.as_array().unwrap().iter().filter(|c| c["consumer_count"] == 1).collect();
    assert_eq!(consuming.len(), 1, "{channels}");
    assert_eq!((consuming[0]["prefetch_count"].as_u64(), consuming[0]["messages_unacknowledged"].as_u64()), (Some(3), Some(1)));
    assert_eq!(consuming[0]["connection_details"]["name"], me.as_str());
    assert_eq!(mine[0]["channels"].as_u64(), Some(channels.as_array().unwrap().len() as u64));
    let overview = server.get_json("/api/overview");
    assert_eq!(overview["object_totals"]["connections"].as_u64(), Some(connections.as_array().unwrap().len() as u64));
    assert_eq!(overview["object_totals"]["channels"].as_u64(), Some(server.get_json("/api/channels").as_array().unwrap().len() as u64));

    // Delete with conditions, purge.
    let in_use = server.guest("DELETE", "/api/queues/%2F/tasks?if-unused=true", None);
    assert_eq!(in_use.json()["reason"], format!("queue 'tasks' in vhost '{vhost}' in use"));
    held.ack().unwrap();
    drop(consumer);
    t.ns.producer("tasks").unwrap().publish(b"left").unwrap();
    let not_empty = server.guest("DELETE", "/api/queues/%2F/tasks?if-empty=true", None);
    assert_eq!(
        (not_empty.status, not_empty.json()["reason"].as_str().unwrap()),
        (400, &*format!("queue 'tasks' in vhost '{vhost}' not empty"))
    );
    assert_eq!(server.guest("DELETE", "/api/queues/%2F/tasks/contents", None).status, 204);
    assert_eq!(t.ns.queue_stats("tasks").unwrap().ready, 0, "purged");
    assert_eq!(server.guest("DELETE", "/api/queues/%2F/tasks?if-empty=true&if-unused=true", None).status, 204);
    assert_eq!(server.guest("GET", "/api/queues/%2F/tasks", None).body, NOT_FOUND);
    assert_eq!(server.guest("DELETE", "/api/queues/%2F/tasks", None).status, 404);
    let props_path = format!("/api/bindings/%2F/e/shop/q/orders%2Feu/{}", props.replace('%', "%25"));
    assert_eq!(server.guest("DELETE", &props_path, None).status, 204);
    assert_eq!(server.guest("DELETE", &props_path, None).status, 404);
    // The properties key (`%23`), percent-encoded once more in the path.
    assert_eq!(server.guest("DELETE", "/api/bindings/%2F/e/shop/e/logs/%23", None).status, 404);
    assert_eq!(server.guest("DELETE", "/api/bindings/%2F/e/shop/e/logs/%2523", None).status, 204);
    server.guest("PUT", "/api/queues/%2F/audit", Some("{}"));
    server.guest("POST", "/api/bindings/%2F/e/logs/q/audit", Some("{}"));
    let in_use = server.guest("DELETE", "/api/exchanges/%2F/logs?if-unused=true", None);
    assert_eq!((in_use.status, in_use.json()["reason"].as_str().unwrap()), (400, &*format!("exchange 'logs' in vhost '{vhost}' in use")));
    assert_eq!(server.guest("DELETE", "/api/exchanges/%2F/logs", None).status, 204);
    server.guest("DELETE", "/api/queues/%2F/audit", None);
    assert_eq!(server.guest("DELETE", "/api/exchanges/%2F/shop", None).status, 204);
    assert_eq!(server.guest("DELETE", "/api/exchanges/%2F/amq.direct", None).status, 401);

    // Overview, vhosts, whoami, health.
    let overview = server.get_json("/api/overview");
    assert_eq!(overview["management_version"], "3.10.8");
    assert_eq!(overview["object_totals"]["queues"], 1);
    assert!(overview["message_stats"]["publish"].as_u64().unwrap() >= 2, "monotonic after tasks went: {overview}");
    assert!(overview["queue_totals"].get("messages_ready").is_some());
    assert!(overview["message_stats"]["publish_details"]["rate"].is_number());
    assert_eq!(names(&server.get_json("/api/vhosts")), std::slice::from_ref(&vhost));
    assert_eq!(server.get_json("/api/vhosts/%2F")["name"], vhost);
    assert_eq!(server.get_json("/api/whoami"), json!({"name": "guest", "tags": ["administrator"]}));
    assert_eq!(server.get_json("/api/healthchecks/node"), json!({"status": "ok"}));
    assert_eq!(server.get_json("/api/aliveness-test/%2F"), json!({"status": "ok"}));
    assert_eq!(server.guest("GET", "/api/aliveness-test/nowhere", None).status, 404);

    // Methods a path does not take: 405 with Allow.
    let post = server.guest("POST", "/api/queues/%2F/orders%2Feu", Some("{}"));
    assert_eq!((post.status, post.header("allow").as_deref()), (405, Some("HEAD, GET, PUT, DELETE, OPTIONS")));
    // HEAD: the head of GET.
    let head = server.guest("HEAD", "/api/overview", None);
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert!(head.header("content-length").unwrap().parse::<usize>().unwrap() > 100);
}

#[test]
fn authentication_as_rabbitmq() {
    let t = TempNs::in_shm("mgmt-auth");
    let line = t.run(&["management", "hash-password", "alice", "s3cret"]);
    let users = t.dir.join("users");
    std::fs::write(&users, format!("# users of this test\n{line}")).unwrap();
    let server = Server::start(&t, &["--users", users.to_str().unwrap()]);

    let none = server.call("GET", "/api/overview", None, None);
    assert_eq!((none.status, none.body.as_str()), (401, ""));
    assert_eq!(none.header("www-authenticate").as_deref(), Some("Basic realm=\"RabbitMQ Management\""));
    let wrong = server.call("GET", "/api/overview", Some(("guest", "nope")), None);
    assert_eq!((wrong.status, wrong.json()), (401, json!({"error": "not_authorized", "reason": "Login failed"})));
    assert!(wrong.header("www-authenticate").is_some());
    assert_eq!(server.call("GET", "/api/queues", Some(("alice", "wrong")), None).status, 401);
    assert_eq!(server.call("GET", "/api/queues", Some(("mallory", "s3cret")), None).status, 401);
    assert_eq!(server.call("GET", "/metrics", None, None).status, 401, "every request is authenticated");
    assert_eq!(server.call("GET", "/nothing/here", None, None).status, 401, "even one for nothing");
    // A users file that does not list guest turns guest off (every local
    // account could otherwise use it over loopback).
    assert_eq!(server.call("GET", "/api/overview", Some(("guest", "guest")), None).status, 401, "guest is not in the users file");
    let alice = server.call("GET", "/api/whoami", Some(("alice", "s3cret")), None);
    assert_eq!(alice.json(), json!({"name": "alice", "tags": ["administrator"]}));

    // A malformed users file is refused at start, naming the line.
    std::fs::write(&users, "alice\n").unwrap();
    let out = t.shmq().args(["management", "--port", "0", "--users", users.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn bad_input_is_answered_and_the_server_goes_on() {
    let t = TempNs::in_shm("mgmt-bad");
    let server = Server::start(&t, &[]);
    let bad_json = server.guest("PUT", "/api/queues/%2F/q", Some("{bad"));
    assert_eq!((bad_json.status, bad_json.json()), (400, json!({"error": "bad_request", "reason": "not_json"})));
    assert_eq!(server.guest("PUT", "/api/queues/%2F/q", Some("[1]")).status, 400);
    let not_boolean = server.guest("PUT", "/api/queues/%2F/q", Some(r#"{"durable":"yes"}"#));
    assert_eq!(not_boolean.json()["reason"], json!(["not_boolean", "yes"]));
    assert_eq!(server.guest("PUT", "/api/queues/%2F/q", Some(r#"{"arguments":{"x-max-length":"five"}}"#)).status, 400);
    assert_eq!(server.guest("PUT", "/api/queues/%2F/q", Some(r#"{"arguments":{"x-unknown":1}}"#)).status, 400);
    assert_eq!(server.guest("PUT", "/api/queues/%2F/q", Some(r#"{"arguments":{"x-max-length":1.5}}"#)).status, 400);
    assert_eq!(server.guest("GET", "/api/queues/%2F/missing", None).body, NOT_FOUND);
    assert_eq!(server.guest("GET", "/api/queues/%2F/missing", None).status, 404);
    assert_eq!(server.guest("GET", "/api/queues/nowhere", None).status, 404);
    assert_eq!(server.guest("GET", "/api/queues/nowhere/q", None).status, 404);
    let write_nowhere = server.guest("PUT", "/api/queues/nowhere/q", Some("{}"));
    assert_eq!((write_nowhere.status, write_nowhere.json()), (404, json!({"error": "not_found", "reason": "vhost_not_found"})));
    assert_eq!(server.guest("GET", "/api/no/such/thing", None).body, NOT_FOUND);
    assert_eq!(server.guest("GET", "/api/queues/%2F/q%ZZ", None).status, 400, "bad percent-encoding");
    assert_eq!(server.guest("GET", "/api/queues/%2F/q%FF", None).status, 400, "not UTF-8");
    assert_eq!(server.guest("GET", "/api/queues?page=0", None).status, 400);
    assert_eq!(server.guest("POST", "/api/definitions", Some("nope")).json()["reason"], "failed_to_parse_json");
    let get = server.guest("POST", "/api/queues/%2F/missing/get", Some(r#"{"count":1,"ackmode":"ack_requeue_true","encoding":"auto"}"#));
    assert_eq!(get.status, 404);
    let encoding = server.guest(
        "POST",
        "/api/exchanges/%2F/amq.direct/publish",
        Some(r#"{"properties":{},"routing_key":"","payload":"!","payload_encoding":"base64"}"#),
    );
    assert_eq!(encoding.status, 400);
    // An oversized body is refused from its Content-Length, before it is read.
    let big = call(server.port, "PUT", "/api/queues/%2F/q", Some(("guest", "guest")), None, &["Content-Length: 16777217"]);
    assert_eq!(big.status, 413, "{big:?}");
    // And one that is sent whole: 16 MiB + 1 of JSON string.
    let mut huge = b"\"".to_vec();
    huge.resize((16 << 20) + 1, b'a');
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /api/definitions HTTP/1.1\r\nAuthorization: Basic {}\r\nContent-Length: {}\r\n\r\n",
        base64("guest:guest"),
        huge.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // Sent from another thread (the server stops reading it), the reply
    // read here.
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&huge);
    });
    let mut reply = [0u8; 64];
    let n = stream.read(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply[..n]).into_owned();
    drop(stream);
    sender.join().unwrap();
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply:.100}");
    // A head larger than 16 KiB: 431.
    let long = format!("/api/queues/{}", "a".repeat(20_000));
    assert_eq!(server.guest("GET", &long, None).status, 431);
    // Garbage instead of HTTP.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.write_all(b"\x16\x03\x01 hello? \r\n\r\n").unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    // Still serving.
    assert_eq!(server.guest("GET", "/api/overview", None).status, 200);
    assert!(t.ns.list_queues().unwrap().is_empty(), "nothing was declared by the refused requests");
}

#[test]
fn definitions_round_trip_all_or_nothing() {
    let t = TempNs::in_shm("mgmt-defs");
    let server = Server::start(&t, &[]);
    server.guest("PUT", "/api/exchanges/%2F/shop", Some(r#"{"type":"topic","durable":true}"#));
    server.guest("PUT", "/api/queues/%2F/orders", Some(r#"{"durable":true,"arguments":{"x-max-length":7,"x-overflow":"reject-publish"}}"#));
    server.guest("POST", "/api/bindings/%2F/e/shop/q/orders", Some(r#"{"routing_key":"order.#"}"#));
    let exported = server.get_json("/api/definitions");
    assert_eq!(names(&exported["queues"]), ["orders"]);
    assert_eq!(exported["exchanges"][0]["name"], "shop");
    assert_eq!(exported["bindings"][0]["routing_key"], "order.#");
    let per_vhost = server.get_json("/api/definitions/%2F");
    assert!(per_vhost.get("vhosts").is_none() && per_vhost["queues"][0].get("vhost").is_none(), "{per_vhost}");

    for (method, path) in [("DELETE", "/api/queues/%2F/orders"), ("DELETE", "/api/exchanges/%2F/shop")] {
        assert_eq!(server.guest(method, path, None).status, 204);
    }
    assert!(t.ns.list_queues().unwrap().is_empty());

    // With something shmq cannot honour: refused whole, nothing declared.
    let mut with_policy = exported.clone();
    with_policy["policies"] = json!([{"vhost": exported["vhosts"][0]["name"], "name": "p", "pattern": ".*", "definition": {}}]);
    let refused = server.guest("POST", "/api/definitions", Some(&with_policy.to_string()));
    assert_eq!(refused.status, 400);
    assert!(refused.json()["reason"].as_str().unwrap().contains("policy 'p'"), "{}", refused.body);
    assert!(t.ns.list_queues().unwrap().is_empty(), "all or nothing");
    // A vhost this server does not serve: refused whole.
    let mut elsewhere = exported.clone();
    elsewhere["queues"][0]["vhost"] = json!("elsewhere");
    assert_eq!(server.guest("POST", "/api/definitions", Some(&elsewhere.to_string())).status, 400);
    assert!(t.ns.list_queues().unwrap().is_empty());

    assert_eq!(server.guest("POST", "/api/definitions", Some(&exported.to_string())).status, 204);
    assert_eq!(server.get_json("/api/definitions")["queues"], exported["queues"]);
    assert_eq!(server.get_json("/api/definitions")["bindings"], exported["bindings"]);
    let orders = server.get_json("/api/queues/%2F/orders");
    assert_eq!(orders["arguments"], json!({"x-max-length": 7, "x-overflow": "reject-publish"}));
    // With ?skip-unsupported=true the rest goes in; per-vhost POST too.
    server.guest("DELETE", "/api/queues/%2F/orders", None);
    assert_eq!(server.guest("POST", "/api/definitions?skip-unsupported=true", Some(&with_policy.to_string())).status, 204);
    assert_eq!(t.ns.list_queues().unwrap(), ["orders"]);
    let single = json!({"queues": [{"name": "solo", "durable": false, "auto_delete": false, "arguments": {}}]});
    assert_eq!(server.guest("POST", "/api/definitions/%2F", Some(&single.to_string())).status, 204);
    assert!(t.ns.queue_stats("solo").is_ok());
}

#[test]
fn metrics_and_rates_follow_the_traffic() {
    let t = TempNs::in_shm("mgmt-metrics");
    t.ns.declare_queue("work", &shmq::QueueOptions::default()).unwrap();
    let server = Server::start(&t, &[]);
    let vhost = t.ns.name().to_owned();
    let mut producer = t.ns.producer("work").unwrap();
    for _ in 0..10 {
        producer.publish(b"job").unwrap();
    }
    let consumer = t.ns.consumer("work", shmq::ConsumerOptions::default().manual_ack()).unwrap();
    for _ in 0..4 {
        consumer.recv().unwrap().ack().unwrap();
    }
    let unacked = consumer.recv().unwrap();
    let before = server.get_json("/api/overview");
    assert_eq!(before["message_stats"]["publish"], 10);
    for _ in 0..50 {
        producer.publish(b"job").unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    let after = server.get_json("/api/overview");
    let rate = after["message_stats"]["publish_details"]["rate"].as_f64().unwrap();
    // At most all 60 publishes within the 1 s a rate spans at least.
    assert!(rate > 5.0 && rate <= 60.0, "50 publishes in about a second: {rate}");
    // The background sampler took the queue's first sample at start.
    let queue_rate = server.get_json("/api/queues/%2F/work")["message_stats"]["publish_details"]["rate"].as_f64().unwrap();
    assert!(queue_rate > 5.0 && queue_rate <= 60.0, "{queue_rate}");

    let metrics = server.guest("GET", "/metrics", None);
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.body;
    let label = format!("{{vhost=\"{vhost}\",queue=\"work\"}}");
    for expected in [
        format!("rabbitmq_queue_messages_ready{label} 55"),
        format!("rabbitmq_queue_messages_unacked{label} 1"),
        format!("rabbitmq_queue_messages{label} 56"),
        format!("rabbitmq_queue_consumers{label} 1"),
        format!("rabbitmq_queue_messages_published_total{label} 60"),
        "rabbitmq_global_messages_received_total 60".into(),
        "rabbitmq_global_messages_delivered_total 5".into(),
        "rabbitmq_global_messages_acknowledged_total 4".into(),
        "rabbitmq_queues 1".into(),
        "rabbitmq_consumers 1".into(),
        "# TYPE rabbitmq_global_messages_received_total counter".into(),
        "# HELP rabbitmq_queue_messages_ready Messages ready to be delivered to consumers".into(),
    ] {
        assert!(text.lines().any(|l| l == expected), "{expected} missing from\n{text}");
    }
    // Counters stay monotonic when a queue goes.
    drop(unacked);
    drop(consumer);
    drop(producer);
    t.ns.delete_queue("work").unwrap();
    let text = server.guest("GET", "/metrics", None).body;
    assert!(text.lines().any(|l| l == "rabbitmq_global_messages_received_total 60"), "{text}");
    assert!(text.lines().any(|l| l == "rabbitmq_queues 0"));

    // --prometheus-only: /metrics and nothing else.
    let only = Server::start(&t, &["--prometheus-only"]);
    assert_eq!(only.guest("GET", "/metrics", None).status, 200);
    assert_eq!(only.guest("GET", "/api/overview", None).status, 404);
}

#[test]
fn serves_several_namespaces_as_vhosts() {
    let a = TempNs::in_shm("mgmt-va");
    let b = TempNs::in_shm("mgmt-vb");
    b.ns.declare_queue("only-in-b", &shmq::QueueOptions::default()).unwrap();
    let server = Server::start(&a, &["--namespace", a.dir.to_str().unwrap(), "--namespace", b.dir.to_str().unwrap()]);
    let (va, vb) = (a.ns.name().to_owned(), b.ns.name().to_owned());
    assert_eq!(names(&server.get_json("/api/vhosts")), [va.clone(), vb.clone()]);
    assert_eq!(server.get_json(&format!("/api/queues/{vb}/only-in-b"))["vhost"], vb);
    assert_eq!(server.guest("GET", "/api/queues/%2F/only-in-b", None).status, 404, "/ is the first namespace");
    assert_eq!(server.guest("PUT", &format!("/api/queues/{va}/in-a"), Some("{}")).status, 201);
    assert!(a.ns.queue_stats("in-a").is_ok() && b.ns.queue_stats("in-a").is_err());
    assert_eq!(server.get_json("/api/queues").as_array().unwrap().len(), 2);

    // A process attached to both (this one, a consumer in each) is a
    // connection in each vhost, each with a name of its own.
    let _in_a = a.ns.consumer("in-a", shmq::ConsumerOptions::default()).unwrap();
    let _in_b = b.ns.consumer("only-in-b", shmq::ConsumerOptions::default()).unwrap();
    let me = std::process::id();
    let connections = server.get_json("/api/connections");
    let mine: Vec<(String, String)> = connections
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["shmq"]["pid"] == me)
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["vhost"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(mine, [(format!("pid {me}"), va.clone()), (format!("pid {me} on {vb}"), vb.clone())]);
    let in_b = server.get_json(&format!("/api/connections/pid%20{me}%20on%20{vb}/channels"));
    assert_eq!(names(&in_b), [format!("pid {me} on {vb} (1)")]);
    let consumers = server.get_json(&format!("/api/consumers/{vb}"));
    assert_eq!(consumers[0]["channel_details"]["name"], format!("pid {me} on {vb}"));
}
