"""`shmq management` against RabbitMQ 3.10's management plugin, with
Python's urllib: the same topology is declared through the HTTP API of
each (a queue with arguments, a durable one, a queue named `orders/eu`, a
fanout and a topic exchange with an alternate exchange, queue and
exchange-to-exchange bindings, one with arguments), the same messages are
published and one is held unacked by a consumer (pika on RabbitMQ, a
`shmq consume` process on shmq). Then:

- `/api/queues`, `/api/exchanges` (the test's exchanges) and
  `/api/bindings`: the sets of JSON keys, exactly as docs/MANAGEMENT.md
  says they differ, and the values that must match (names, durable,
  auto_delete, exclusive, arguments, messages, ready, unacked, consumers,
  types, routing keys, properties keys of bindings without arguments);
- `POST .../get`: the message's shape and values;
- the error shapes of a missing queue, a wrong password, no credentials and
  a bad JSON body;
- `promtool check metrics` on shmq's `/metrics` (promtool comes with
  Debian's `prometheus` package: installed here if missing, about 9 s with
  apt-get update on the development VM).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Dict, Optional, Tuple

import pytest

# Keys of a RabbitMQ queue object that shmq does not serve (Erlang process
# figures, paging, policies' effects and per-consumer figures it does not
# keep), and the one it adds: docs/MANAGEMENT.md lists both.
QUEUE_KEYS_ONLY_RABBITMQ = {
    "backing_queue_status", "consumer_capacity", "consumer_utilisation", "garbage_collection", "head_message_timestamp",
    "idle_since", "message_bytes_paged_out", "message_bytes_persistent", "message_bytes_ram", "message_bytes_ready",
    "message_bytes_unacknowledged", "messages_paged_out", "messages_persistent", "messages_ram", "messages_ready_ram",
    "messages_unacknowledged_ram", "recoverable_slaves", "reductions", "reductions_details",
}
QUEUE_KEYS_ONLY_SHMQ = {"shmq"}
# RabbitMQ's queue message_stats also split deliver_get into deliver,
# deliver_no_ack, get, get_no_ack and get_empty: shmq counts deliveries
# whole.
QUEUE_MESSAGE_STATS_ONLY_RABBITMQ = {
    "deliver", "deliver_details", "deliver_no_ack", "deliver_no_ack_details", "get", "get_details", "get_empty",
    "get_empty_details", "get_no_ack", "get_no_ack_details",
}


def request(base: str, method: str, path: str, body: Any = None, auth: Optional[Tuple[str, str]] = ("guest", "guest"),
            raw: Optional[bytes] = None) -> Tuple[int, Dict[str, str], Any]:
    """One request; (status, lower-case headers, JSON body or text or None)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if auth is not None:
        req.add_header("authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as reply:
            status, headers, text = reply.status, reply.headers, reply.read().decode()
    except urllib.error.HTTPError as e:
        status, headers, text = e.code, e.headers, e.read().decode()
    headers = {k.lower(): v for k, v in headers.items()}
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return status, headers, parsed


def ok(base: str, method: str, path: str, body: Any = None) -> Any:
    status, _, parsed = request(base, method, path, body)
    assert status in (200, 201, 204), f"{method} {path}: {status} {parsed}"
    return parsed


@pytest.fixture(scope="module")
def rabbitmq_management():
    """A private RabbitMQ with the management and Prometheus plugins; its
    management API's base URL. Fails, never skips, when RabbitMQ is
    missing."""
    from rabbitmq import Broker, BrokerError

    try:
        broker = Broker(plugins=["rabbitmq_management", "rabbitmq_prometheus"]).start(timeout=120)
    except BrokerError as e:
        pytest.fail(str(e), pytrace=False)
    base = f"http://127.0.0.1:{broker.management_port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if request(base, "GET", "/api/overview")[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            tail = broker.log_tail()
            broker.stop()
            pytest.fail(f"RabbitMQ's management plugin did not answer on {base}:\n{tail}", pytrace=False)
        time.sleep(0.5)
    try:
        yield broker, base
    finally:
        broker.stop()


@pytest.fixture
def shmq_management(shmq_bin, namespace):
    """`shmq management` on a fresh namespace: (base URL, vhost name)."""
    process = subprocess.Popen([shmq_bin, "--namespace", namespace, "management", "--port", "0"], stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    try:
        port = int(line.split("http://127.0.0.1:")[1].split()[0])
    except (IndexError, ValueError):
        process.kill()
        pytest.fail(f"shmq management printed no address: {line!r}", pytrace=False)
    try:
        yield f"http://127.0.0.1:{port}", namespace.rstrip("/").rsplit("/", 1)[-1]
    finally:
        process.kill()
        process.wait()


def declare_topology(base: str, s: str) -> None:
    """The test's topology and messages, through the management API."""
    ok(base, "PUT", f"/api/exchanges/%2F/logs-{s}", {"type": "fanout", "durable": True})
    ok(base, "PUT", f"/api/exchanges/%2F/shop-{s}", {"type": "topic", "durable": False, "arguments": {"alternate-exchange": f"logs-{s}"}})
    ok(base, "PUT", f"/api/queues/%2F/tasks-{s}", {"durable": True, "arguments": {"x-max-length": 100, "x-message-ttl": 60000}})
    ok(base, "PUT", f"/api/queues/%2F/orders%2Feu-{s}", {"durable": False, "auto_delete": False, "arguments": {}})
    ok(base, "POST", f"/api/bindings/%2F/e/logs-{s}/q/tasks-{s}", {"routing_key": "all", "arguments": {}})
    ok(base, "POST", f"/api/bindings/%2F/e/shop-{s}/q/orders%2Feu-{s}", {"routing_key": "order.*", "arguments": {"k": "v"}})
    ok(base, "POST", f"/api/bindings/%2F/e/shop-{s}/e/logs-{s}", {"routing_key": "#", "arguments": {}})
    for i in range(3):
        routed = ok(base, "POST", f"/api/exchanges/%2F/logs-{s}/publish",
                    {"properties": {"content_type": "text/plain", "headers": {"n": i}, "delivery_mode": 2},
                     "routing_key": "", "payload": f"task {i}", "payload_encoding": "string"})
        assert routed == {"routed": True}


def wait_for(base: str, path: str, check, what: str, timeout: float = 20) -> Any:
    """GETs `path` until `check(json)` holds (RabbitMQ's figures lag up to
    its 5 s statistics interval)."""
    deadline = time.monotonic() + timeout
    while True:
        got = ok(base, "GET", path)
        if check(got):
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: {path} never got there: {json.dumps(got)[:2000]}", pytrace=False)
        time.sleep(0.5)


def mine(items, s: str):
    return sorted((i for i in items if s in i.get("name", "") + i.get("source", "") + i.get("destination", "")),
                  key=lambda i: json.dumps([i.get("name"), i.get("source"), i.get("destination"), i.get("routing_key")]))


def test_management_api_matches_rabbitmq(rabbitmq_management, shmq_management, shmq_bin, namespace):
    broker, rabbit = rabbitmq_management
    shmq, shmq_vhost = shmq_management
    s = uuid.uuid4().hex[:8]
    declare_topology(rabbit, s)
    declare_topology(shmq, s)

    # One message held unacked by a consumer on each side.
    connection = broker.connect()
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(f"tasks-{s}", lambda *args: None)
    connection.process_data_events(time_limit=1)
    holder = subprocess.Popen([shmq_bin, "--namespace", namespace, "consume", f"tasks-{s}", "--manual-ack", "--prefetch", "1",
                               "--count", "1", "--work-ms", "60000"], stdout=subprocess.DEVNULL)
    try:
        held = lambda qs: any(q["name"] == f"tasks-{s}" and q.get("messages_unacknowledged") == 1 and q.get("consumers") == 1  # noqa: E731
                              for q in qs)
        rabbit_queues = mine(wait_for(rabbit, "/api/queues", held, "RabbitMQ's consumer"), s)
        # RabbitMQ's message_stats come a statistics interval after the rest.
        rabbit_queues = mine(wait_for(rabbit, "/api/queues", lambda qs: held(qs) and all(
            "message_stats" in q for q in qs if q["name"] == f"tasks-{s}"), "RabbitMQ's stats"), s)
        shmq_queues = mine(wait_for(shmq, "/api/queues", held, "shmq's consumer"), s)

        # Queues: keys as documented, values equal.
        assert [q["name"] for q in rabbit_queues] == [q["name"] for q in shmq_queues] == [f"orders/eu-{s}", f"tasks-{s}"]
        for r, m in zip(rabbit_queues, shmq_queues):
            assert set(r) - set(m) == QUEUE_KEYS_ONLY_RABBITMQ, (r["name"], sorted(set(r) - set(m)))
            assert set(m) - set(r) == QUEUE_KEYS_ONLY_SHMQ, (m["name"], sorted(set(m) - set(r)))
            for key in ["name", "durable", "auto_delete", "exclusive", "arguments", "messages", "messages_ready",
                        "messages_unacknowledged", "consumers", "type", "state", "policy", "exclusive_consumer_tag"]:
                assert r[key] == m[key], (r["name"], key, r[key], m[key])
            assert (r["vhost"], m["vhost"]) == ("/", shmq_vhost)
            if "message_stats" in r:
                assert set(r["message_stats"]) - set(m["message_stats"]) == QUEUE_MESSAGE_STATS_ONLY_RABBITMQ
                assert set(m["message_stats"]) <= set(r["message_stats"])
                assert r["message_stats"]["publish"] == m["message_stats"]["publish"] == 3
            for key in ["messages_details", "messages_ready_details", "messages_unacknowledged_details"]:
                assert set(r[key]) == set(m[key]) == {"rate"}

        # A single queue, by its percent-encoded name.
        r = ok(rabbit, "GET", f"/api/queues/%2F/orders%2Feu-{s}")
        m = ok(shmq, "GET", f"/api/queues/%2F/orders%2Feu-{s}")
        assert (r["name"], r["arguments"], r["durable"]) == (m["name"], m["arguments"], m["durable"])

        # Exchanges: the test's, every key and value alike.
        rabbit_exchanges = mine(ok(rabbit, "GET", "/api/exchanges/%2F"), s)
        shmq_exchanges = mine(ok(shmq, "GET", "/api/exchanges/%2F"), s)
        assert [x["name"] for x in rabbit_exchanges] == [x["name"] for x in shmq_exchanges] == [f"logs-{s}", f"shop-{s}"]
        for r, m in zip(rabbit_exchanges, shmq_exchanges):
            assert set(r) - {"message_stats"} == set(m) - {"message_stats"}, (r["name"], sorted(set(r) ^ set(m)))
            for key in ["name", "type", "durable", "auto_delete", "internal", "arguments"]:
                assert r[key] == m[key], (r["name"], key, r[key], m[key])
        # The default exchange and the amq.* ones RabbitMQ 3.10 has (but
        # amq.rabbitmq.trace, which shmq has not).
        builtin = lambda xs: {(x["name"], x["type"], x["durable"]) for x in xs if x["name"] == "" or x["name"].startswith("amq.")}  # noqa: E731
        assert builtin(ok(rabbit, "GET", "/api/exchanges/%2F")) - {("amq.rabbitmq.trace", "topic", True)} == \
            builtin(ok(shmq, "GET", "/api/exchanges/%2F"))

        # Bindings: the same, key by key; properties keys of bindings
        # without arguments alike (those with arguments hash differently).
        rabbit_bindings = mine(ok(rabbit, "GET", "/api/bindings/%2F"), s)
        shmq_bindings = mine(ok(shmq, "GET", "/api/bindings/%2F"), s)
        assert len(rabbit_bindings) == len(shmq_bindings) == 5, (rabbit_bindings, shmq_bindings)
        for r, m in zip(rabbit_bindings, shmq_bindings):
            assert set(r) == set(m)
            for key in ["source", "destination", "destination_type", "routing_key", "arguments"]:
                assert r[key] == m[key], (key, r, m)
            if not r["arguments"]:
                assert r["properties_key"] == m["properties_key"], (r, m)
            else:
                assert m["properties_key"].startswith(r["properties_key"].split("~")[0] + "~")
        for side in (rabbit, shmq):
            one = ok(side, "GET", f"/api/bindings/%2F/e/shop-{s}/e/logs-{s}/%2523")
            assert one["routing_key"] == "#"

        # basic.get through the API: one message, requeued.
        body = {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 50000}
        r = ok(rabbit, "POST", f"/api/queues/%2F/tasks-{s}/get", body)
        m = ok(shmq, "POST", f"/api/queues/%2F/tasks-{s}/get", body)
        assert len(r) == len(m) == 1
        assert set(r[0]) == set(m[0])
        for key in ["payload", "payload_bytes", "payload_encoding", "exchange", "routing_key", "redelivered", "message_count",
                    "properties"]:
            assert r[0][key] == m[0][key], (key, r[0][key], m[0][key])
    finally:
        holder.kill()
        holder.wait()
        connection.close()


def test_error_shapes_match_rabbitmq(rabbitmq_management, shmq_management):
    _, rabbit = rabbitmq_management
    shmq, _ = shmq_management
    cases = [
        ("missing queue", "GET", "/api/queues/%2F/no-such-queue", None, ("guest", "guest"), None),
        ("wrong password", "GET", "/api/queues", None, ("guest", "wrong"), None),
        ("unknown user", "GET", "/api/overview", None, ("nobody", "x"), None),
        ("no credentials", "GET", "/api/overview", None, None, None),
        ("bad JSON", "PUT", "/api/queues/%2F/bad-json", None, ("guest", "guest"), b"{bad"),
        ("not a boolean", "PUT", "/api/queues/%2F/bad-flag", {"durable": "yes"}, ("guest", "guest"), None),
        ("missing payload_encoding", "POST", "/api/exchanges/%2F/amq.direct/publish",
         {"properties": {}, "routing_key": "", "payload": "x"}, ("guest", "guest"), None),
        ("method not allowed", "POST", "/api/queues/%2F/x", {}, ("guest", "guest"), None),
    ]
    for what, method, path, body, auth, raw in cases:
        r = request(rabbit, method, path, body, auth, raw)
        m = request(shmq, method, path, body, auth, raw)
        assert r[0] == m[0], (what, r, m)
        assert r[2] == m[2], (what, r[2], m[2])
        for header in ["www-authenticate", "allow"]:
            assert r[1].get(header) == m[1].get(header), (what, header, r[1].get(header), m[1].get(header))


def promtool() -> Optional[str]:
    """promtool, installed from Debian's `prometheus` package if missing
    and apt-get is there to do it (about 9 s on the development VM)."""
    found = shutil.which("promtool")
    if found or not shutil.which("apt-get"):
        return found
    subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"], capture_output=True, timeout=600)
    return shutil.which("promtool")


def test_metrics_pass_promtool(shmq_management, shmq_bin, namespace):
    shmq, _ = shmq_management
    ok(shmq, "PUT", "/api/queues/%2F/measured", {"arguments": {}})
    ok(shmq, "POST", "/api/exchanges/%2F/amq.default/publish",
       {"properties": {}, "routing_key": "measured", "payload": "x", "payload_encoding": "string"})
    status, headers, text = request(shmq, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'rabbitmq_queue_messages_ready{vhost="' in text
    tool = promtool()
    if tool is None:
        pytest.skip("promtool is not installed and could not be (apt-get install prometheus): the metrics text was not linted")
    checked = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == "", checked.stdout + checked.stderr


def test_a_real_prometheus_scrapes_the_metrics(shmq_management, tmp_path):
    """Debian's Prometheus server scrapes shmq's /metrics (basic auth, as
    for RabbitMQ's plugin when it is behind the management listener) and
    its query API returns the queue's ready count."""
    shmq, _ = shmq_management
    ok(shmq, "PUT", "/api/queues/%2F/scraped", {"arguments": {}})
    for i in range(7):
        ok(shmq, "POST", "/api/exchanges/%2F/amq.default/publish",
           {"properties": {}, "routing_key": "scraped", "payload": f"m{i}", "payload_encoding": "string"})
    promtool()  # installs Debian's prometheus package (server and promtool) if missing
    server = shutil.which("prometheus")
    if server is None:
        pytest.skip("Debian's prometheus server is not installed and could not be (apt-get install prometheus)")
    from rabbitmq import free_port
    port = free_port()
    target = shmq.split("://", 1)[1]
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: shmq\n    basic_auth: {username: guest, password: guest}\n"
        f"    static_configs:\n      - targets: ['{target}']\n")
    process = subprocess.Popen([server, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    try:
        query = urllib.parse.quote('rabbitmq_queue_messages_ready{queue="scraped"}')
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query={query}", timeout=5) as response:
                    result = json.load(response)["data"]["result"]
                if result:
                    break
            except (urllib.error.URLError, ConnectionError, KeyError):
                pass
            assert time.monotonic() < deadline, "Prometheus never got a sample of the queue"
            time.sleep(0.5)
        assert result[0]["value"][1] == "7"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5) as response:
            targets = json.load(response)["data"]["activeTargets"]
        assert [t["health"] for t in targets] == ["up"], targets
    finally:
        process.kill()
        process.wait()
