"""`shmq shovel` between shmq and a real RabbitMQ (the private broker of the
`rabbitmq` fixture), in both directions: every message arrives intact
(body byte for byte, every basic property, nested headers) and in order;
kill -9 of the shovel process at random moments and a connection closed
from the broker's side lose nothing, and a duplicate is always marked
(RabbitMQ's `x-shovelled` header, with shmq's `src-redelivered`); bad
definitions are refused with what to fix; `list` shows state and counts.
"""

from __future__ import annotations

import datetime
import json
import random
import subprocess
import time
import uuid
from collections import Counter
from typing import Any, Dict, List, Tuple

import pika
import pytest

import shmq
from rabbitmq import free_port

WAIT = 60  # seconds: the bound on any one wait


def shovel(shmq_bin: str, namespace: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([shmq_bin, "-n", namespace, "shovel", *args], capture_output=True, text=True, timeout=WAIT)
    if check and result.returncode != 0:
        pytest.fail(f"shmq shovel {' '.join(args)} exited {result.returncode}: {result.stderr}", pytrace=False)
    return result


def runner(shmq_bin: str, namespace: str, *names: str) -> subprocess.Popen:
    return subprocess.Popen([shmq_bin, "-n", namespace, "shovel", "run", *names], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def amqp_uri(rabbitmq: Any) -> str:
    return f"amqp://guest:guest@127.0.0.1:{rabbitmq.port}/%2f"


def message(i: int) -> Tuple[bytes, Dict[str, Any]]:
    """Message i: a binary body and a varied set of properties."""
    body = bytes((i + k) % 256 for k in range(i % 300)) + i.to_bytes(4, "big")
    props: Dict[str, Any] = {"delivery_mode": 2 if i % 2 else 1, "headers": {"i": i, "tags": ["a", i], "nested": {"k": "v", "n": [1, 2]}}}
    if i % 3 == 0:
        props.update(content_type="application/octet-stream", correlation_id=f"c{i}", reply_to="replies",
                     message_id=f"m{i}", app_id="tests", type="t", priority=i % 10,
                     timestamp=1_700_000_000 + i, content_encoding="identity", expiration="600000")
    return body, props


def comparable(props: Any) -> Dict[str, Any]:
    """The properties both sides carry, with x-shovel* headers left out."""
    out = {}
    for key in ("content_type", "content_encoding", "correlation_id", "reply_to", "message_id", "app_id", "type",
                "priority", "delivery_mode", "expiration"):
        value = getattr(props, key, None)
        out[key] = value.value if hasattr(value, "value") else value
    ts = getattr(props, "timestamp", None)
    out["timestamp"] = int(ts.timestamp()) if isinstance(ts, datetime.datetime) else ts
    headers = {k: v for k, v in (props.headers or {}).items() if not k.startswith("x-shovelled")}
    out["headers"] = json.loads(json.dumps(headers, default=lambda v: v.decode() if isinstance(v, bytes) else str(v)))
    return out


def expected_props(props: Dict[str, Any]) -> Dict[str, Any]:
    keys = ("content_type", "content_encoding", "correlation_id", "reply_to", "message_id", "app_id", "type", "priority",
            "delivery_mode", "expiration")
    out = {k: props.get(k) for k in keys}
    out["timestamp"] = props.get("timestamp")
    out["headers"] = props["headers"]
    return out


def publish_to_shmq(namespace: str, queue: str, indices: range) -> None:
    with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
        ch = connection.channel()
        ch.queue_declare(queue)
        for i in indices:
            body, props = message(i)
            ch.basic_publish("", queue, body, shmq.BasicProperties(**props))


def publish_to_rabbitmq(rabbitmq: Any, queue: str, indices: range) -> None:
    connection = rabbitmq.connect()
    try:
        ch = connection.channel()
        ch.queue_declare(queue, durable=True)
        for i in indices:
            body, props = message(i)
            ch.basic_publish("", queue, body, pika.BasicProperties(**props))
    finally:
        connection.close()


def index_of(body: bytes) -> int:
    return int.from_bytes(body[-4:], "big")


def drain_rabbitmq(rabbitmq: Any, queue: str) -> List[Tuple[bytes, Any]]:
    connection = rabbitmq.connect()
    try:
        ch = connection.channel()
        ch.basic_qos(prefetch_count=1000)
        left = ch.queue_declare(queue, passive=True).method.message_count
        out = []
        for method, props, body in ch.consume(queue, auto_ack=True, inactivity_timeout=2):
            if method is not None:
                out.append((body, props))
            if len(out) >= left:
                break
        ch.cancel()
        return out
    finally:
        connection.close()


def drain_shmq(namespace: str, queue: str) -> List[Tuple[bytes, Any]]:
    with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
        ch = connection.channel()
        out = []
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append((body, props))


def check_intact(received: List[Tuple[bytes, Any]], count: int) -> None:
    """Each of messages 0..count once, in order, intact, marked as shovelled."""
    assert [index_of(b) for b, _ in received] == list(range(count))
    for body, props in received:
        i = index_of(body)
        expected_body, expected = message(i)
        assert body == expected_body, i
        assert comparable(props) == expected_props(expected), i
        shovelled = props.headers["x-shovelled"]
        assert len(shovelled) == 1 and shovelled[0]["shovel-name"] in ("out", "in"), shovelled


def wait_for(proc: subprocess.Popen) -> str:
    try:
        _out, err = proc.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
        pytest.fail(f"the shovel did not finish within {WAIT} s:\n{err[-3000:]}", pytrace=False)
    assert proc.returncode == 0, err[-3000:]
    return err


def test_shmq_to_rabbitmq_moves_every_message_intact_in_order(shmq_bin, namespace, rabbitmq):
    dest = f"from-shmq-{uuid.uuid4().hex[:8]}"
    publish_to_shmq(namespace, "outbox", range(3000))
    shovel(shmq_bin, namespace, "declare", "out", "--src-uri", f"shm://{namespace}", "--src-queue", "outbox",
           "--dest-uri", amqp_uri(rabbitmq), "--dest-queue", dest, "--dest-add-forward-headers",
           "--src-delete-after", "queue-length")
    log = wait_for(runner(shmq_bin, namespace, "out"))
    assert "terminated" in log
    check_intact(drain_rabbitmq(rabbitmq, dest), 3000)
    assert shmq.Namespace(namespace).stats("outbox")["ready"] == 0
    # As RabbitMQ: a shovel that reached src-delete-after is deleted.
    assert "definition was removed" in log
    assert json.loads(shovel(shmq_bin, namespace, "list", "--json").stdout) == []


def test_rabbitmq_to_shmq_moves_every_message_intact_in_order(shmq_bin, namespace, rabbitmq):
    src = f"to-shmq-{uuid.uuid4().hex[:8]}"
    publish_to_rabbitmq(rabbitmq, src, range(3000))
    shovel(shmq_bin, namespace, "declare", "in", "--src-uri", amqp_uri(rabbitmq), "--src-queue", src,
           "--dest-uri", f"shm://{namespace}", "--dest-queue", "inbox", "--dest-add-forward-headers",
           "--src-delete-after", "queue-length")
    wait_for(runner(shmq_bin, namespace, "in"))
    check_intact(drain_shmq(namespace, "inbox"), 3000)
    assert drain_rabbitmq(rabbitmq, src) == []


def received_with_marks(received: List[Tuple[bytes, Any]]) -> Tuple[Counter, set]:
    counts = Counter(index_of(b) for b, _ in received)
    marked = {index_of(b) for b, p in received if p.headers["x-shovelled"][-1]["src-redelivered"]}
    return counts, marked


@pytest.mark.parametrize("direction", ["shmq-to-rabbitmq", "rabbitmq-to-shmq"])
def test_kill_9_at_random_moments_loses_nothing_and_marks_duplicates(shmq_bin, namespace, rabbitmq, direction):
    count = 20_000
    remote = f"kill-{uuid.uuid4().hex[:8]}"
    if direction == "shmq-to-rabbitmq":
        publish_to_shmq(namespace, "local", range(count))
        src, dest = (f"shm://{namespace}", "local"), (amqp_uri(rabbitmq), remote)
    else:
        publish_to_rabbitmq(rabbitmq, remote, range(count))
        src, dest = (amqp_uri(rabbitmq), remote), (f"shm://{namespace}", "local-in")
    shovel(shmq_bin, namespace, "declare", "k", "--src-uri", src[0], "--src-queue", src[1], "--dest-uri", dest[0],
           "--dest-queue", dest[1], "--dest-add-forward-headers", "--reconnect-delay", "0.2",
           "--src-prefetch-count", "500")
    rng = random.Random(1234)
    kills = 0
    for _ in range(5):
        proc = runner(shmq_bin, namespace, "k")
        time.sleep(rng.uniform(0.05, 0.6))
        proc.kill()
        proc.wait()
        kills += 1
    # The last run goes on until the source is empty.
    proc = runner(shmq_bin, namespace, "k")
    deadline = time.monotonic() + WAIT
    try:
        while time.monotonic() < deadline:
            if direction == "shmq-to-rabbitmq":
                left = shmq.Namespace(namespace).stats("local")
                if left["ready"] == 0 and left["unacked"] == 0:
                    break
            else:
                connection = rabbitmq.connect()
                q = connection.channel().queue_declare(remote, passive=True).method
                connection.close()
                if q.message_count == 0 and q.consumer_count == 1 and shmq.Namespace(namespace).stats("local-in")["ready"] >= count:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the source did not drain in time")
    finally:
        proc.kill()
        _out, err = proc.communicate()
    received = drain_rabbitmq(rabbitmq, remote) if direction == "shmq-to-rabbitmq" else drain_shmq(namespace, "local-in")
    counts, marked = received_with_marks(received)
    assert kills == 5
    assert set(counts) == set(range(count)), f"lost: {sorted(set(range(count)) - set(counts))[:10]}; log: {err[-2000:]}"
    duplicated = {i for i, n in counts.items() if n > 1}
    assert duplicated <= marked, f"unmarked duplicates: {sorted(duplicated - marked)[:10]}"
    # Apart from redeliveries, the order of the source is kept.
    firsts = [i for i in dict.fromkeys(index_of(b) for b, p in received if not p.headers["x-shovelled"][-1]["src-redelivered"])]
    assert firsts == sorted(firsts)


def test_a_connection_closed_by_the_broker_is_reconnected_without_loss(shmq_bin, namespace, rabbitmq):
    count = 30_000
    dest = f"closed-{uuid.uuid4().hex[:8]}"
    publish_to_shmq(namespace, "local", range(count))
    shovel(shmq_bin, namespace, "declare", "c", "--src-uri", f"shm://{namespace}", "--src-queue", "local",
           "--dest-uri", amqp_uri(rabbitmq), "--dest-queue", dest, "--dest-add-forward-headers",
           "--reconnect-delay", "0.2", "--src-delete-after", str(count),
           # A confirm round trip every 10 messages: slow enough to be
           # closed twice before it is done.
           "--src-prefetch-count", "10")
    proc = runner(shmq_bin, namespace, "c")
    closed: List[str] = []
    deadline = time.monotonic() + WAIT
    while len(closed) < 2 and time.monotonic() < deadline and proc.poll() is None:
        # The shovel's connection (a new one after each reconnect).
        listed = [p for p in rabbitmq._ctl("list_connections", "pid", "--no-table-headers", "--silent").stdout.split()
                  if p not in closed]
        for pid in listed:
            rabbitmq._ctl("close_connection", pid, "closed by the test")
            closed.append(pid)
        time.sleep(0.05)
    err = wait_for(proc)
    assert len(closed) == 2, err
    assert "reconnecting" in err
    counts, marked = received_with_marks(drain_rabbitmq(rabbitmq, dest))
    # src-delete-after counts what was moved: redelivered copies count too,
    # so a few may be left in the source; nothing is lost either way.
    left = [index_of(b) for b, _ in drain_shmq(namespace, "local")]
    missing = sorted(set(range(count)) - set(counts) - set(left))
    assert not missing, (len(counts), len(left), missing[:3], missing[-3:], len(missing), err[-1500:])
    assert {i for i, n in counts.items() if n > 1} <= marked


@pytest.mark.parametrize("args, expected", [
    (["--src-queue", "q", "--src-exchange", "x"], "not both"),
    (["--ack-mode", "sometimes", "--src-queue", "q"], "ack-mode"),
    (["--src-queue", "q", "--src-prefetch-count", "0"], "1 to 65535"),
    (["--src-queue", "q", "--src-delete-after", "later"], "src-delete-after"),
])
def test_bad_definitions_are_refused_with_what_to_fix(shmq_bin, namespace, args, expected):
    result = shovel(shmq_bin, namespace, "declare", "bad", "--src-uri", f"shm://{namespace}", "--dest-uri",
                    "amqp://guest:guest@127.0.0.1:1/%2f", *args, check=False)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    listed = json.loads(shovel(shmq_bin, namespace, "list", "--json").stdout)
    assert listed == []


def test_both_ends_rabbitmq_and_bad_uris_are_refused(shmq_bin, namespace):
    for src, dest, expected in [("amqp://h/", "amqp://g/", "both ends are RabbitMQ"), ("http://h/", f"shm://{namespace}", "expected shm://"),
                                ("amqps://h/?verify=verify_none", f"shm://{namespace}", "always verifies"),
                                ("amqp://h/?cacertfile=/ca.pem", f"shm://{namespace}", "use amqps://")]:
        result = shovel(shmq_bin, namespace, "declare", "bad", "--src-uri", src, "--src-queue", "q", "--dest-uri", dest,
                        check=False)
        assert result.returncode == 2 and expected in result.stderr, result.stderr


def test_a_second_runner_of_the_same_shovel_is_refused_and_delete_forgets_it(shmq_bin, namespace, rabbitmq):
    shovel(shmq_bin, namespace, "declare", "one", "--src-uri", f"shm://{namespace}", "--src-queue", "q",
           "--dest-uri", amqp_uri(rabbitmq), "--dest-queue", f"one-{uuid.uuid4().hex[:6]}")
    first = runner(shmq_bin, namespace, "one")
    try:
        deadline = time.monotonic() + WAIT
        while json.loads(shovel(shmq_bin, namespace, "list", "--json").stdout)[0]["state"] != "running":
            assert time.monotonic() < deadline and first.poll() is None, first.stderr.read() if first.poll() is not None else ""
            time.sleep(0.1)
        second = subprocess.run([shmq_bin, "-n", namespace, "shovel", "run", "one"], capture_output=True, text=True, timeout=WAIT)
        assert second.returncode == 4 and "run by another process" in second.stderr
    finally:
        first.kill()
        first.wait()
    shovel(shmq_bin, namespace, "delete", "one")
    assert json.loads(shovel(shmq_bin, namespace, "list", "--json").stdout) == []
    missing = shovel(shmq_bin, namespace, "delete", "one", check=False)
    assert missing.returncode == 3 and "no shovel" in missing.stderr


def test_export_and_import_carry_shovels_as_rabbitmq_parameters(shmq_bin, namespace, tmp_path):
    shovel(shmq_bin, namespace, "declare", "to-cluster", "--src-uri", f"shm://{namespace}", "--src-queue", "outbox",
           "--dest-uri", "amqp://app:secret@rabbit-1:5672/%2f", "--dest-exchange", "events", "--ack-mode", "on-publish",
           "--src-prefetch-count", "250", "--dest-add-forward-headers")
    exported = subprocess.run([shmq_bin, "-n", namespace, "export"], capture_output=True, text=True, check=True, timeout=WAIT).stdout
    parameters = json.loads(exported)["parameters"]
    assert parameters == [{"vhost": "/", "component": "shovel", "name": "to-cluster", "value": {
        "src-uri": f"shm://{namespace}", "src-queue": "outbox", "src-prefetch-count": 250,
        "dest-uri": "amqp://app:secret@rabbit-1:5672/%2f", "dest-exchange": "events", "ack-mode": "on-publish",
        "dest-add-forward-headers": True}}]
    other = namespace + "-imported"
    try:
        defs = tmp_path / "defs.json"
        defs.write_text(exported)
        imported = subprocess.run([shmq_bin, "-n", other, "import", str(defs)], capture_output=True, text=True, timeout=WAIT)
        assert imported.returncode == 0, imported.stderr
        assert imported.stdout.strip().endswith("1 shovels")
        listed = json.loads(shovel(shmq_bin, other, "list", "--json").stdout)
        # Listed with the password hidden.
        shown = dict(parameters[0]["value"], **{"dest-uri": "amqp://app:***@rabbit-1:5672/%2f"})
        assert [(s["name"], s["definition"]) for s in listed] == [("to-cluster", shown)]
        # A parameter that is no valid shovel: nothing is imported.
        bad = json.loads(exported)
        bad["parameters"][0]["name"] = "broken"
        bad["parameters"][0]["value"]["ack-mode"] = "maybe"
        defs.write_text(json.dumps(bad))
        refused = subprocess.run([shmq_bin, "-n", other, "import", str(defs)], capture_output=True, text=True, timeout=WAIT)
        assert refused.returncode != 0 and "shovel 'broken'" in refused.stderr and "ack-mode" in refused.stderr
        assert [s["name"] for s in json.loads(shovel(shmq_bin, other, "list", "--json").stdout)] == ["to-cluster"]
    finally:
        import shutil
        shutil.rmtree(other, ignore_errors=True)


def test_a_full_reject_publish_queue_slows_the_shovel_and_loses_nothing(shmq_bin, namespace, rabbitmq):
    """RabbitMQ → shmq into a queue of 50 with x-overflow reject-publish: the
    shovel waits for room (flow control) instead of dropping."""
    src = f"flow-{uuid.uuid4().hex[:8]}"
    count = 1000
    publish_to_rabbitmq(rabbitmq, src, range(count))
    with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
        connection.channel().queue_declare("small", arguments={"x-max-length": 50, "x-overflow": "reject-publish"})
    shovel(shmq_bin, namespace, "declare", "flow", "--src-uri", amqp_uri(rabbitmq), "--src-queue", src,
           "--dest-uri", f"shm://{namespace}", "--dest-queue", "small", "--src-delete-after", "queue-length")
    proc = runner(shmq_bin, namespace, "flow")
    got: List[int] = []
    deadline = time.monotonic() + WAIT
    consumer = shmq.Namespace(namespace).consumer("small")
    peak = 0
    while len(got) < count and time.monotonic() < deadline:
        peak = max(peak, shmq.Namespace(namespace).stats("small")["ready"])
        m = consumer.recv(timeout=1)
        if m is not None:
            got.append(index_of(m.body))
            if len(got) % 100 == 0:
                # The queue was full meanwhile: the shovel waited.
                assert shmq.Namespace(namespace).stats("small")["dropped"] == 0
                time.sleep(0.05)
    wait_for(proc)
    assert got == list(range(count))
    assert peak == 50  # it was full, and the shovel waited for room
    assert shmq.Namespace(namespace).stats("small")["dropped"] == 0


def test_a_broker_restart_mid_stream_loses_nothing(shmq_bin, namespace, rabbitmq):
    """shmq → RabbitMQ while RabbitMQ's application is stopped and started
    again (rabbitmqctl stop_app / start_app: connections drop, the durable
    queue and its persistent messages stay): the shovel retries until the
    broker is back; nothing is lost, duplicates are marked."""
    count = 30_000
    dest = f"restart-{uuid.uuid4().hex[:8]}"
    with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
        ch = connection.channel()
        ch.queue_declare("local")
        for i in range(count):
            ch.basic_publish("", "local", i.to_bytes(4, "big"), shmq.BasicProperties(delivery_mode=2))
    shovel(shmq_bin, namespace, "declare", "r", "--src-uri", f"shm://{namespace}", "--src-queue", "local",
           "--dest-uri", amqp_uri(rabbitmq), "--dest-queue", dest, "--dest-add-forward-headers",
           "--reconnect-delay", "0.5", "--src-prefetch-count", "10")
    proc = runner(shmq_bin, namespace, "r")
    try:
        deadline = time.monotonic() + WAIT
        while shmq.Namespace(namespace).stats("local")["ready"] > count * 0.8:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        assert rabbitmq._ctl("stop_app").returncode == 0
        moved_while_down = shmq.Namespace(namespace).stats("local")
        time.sleep(1.0)
        assert shmq.Namespace(namespace).stats("local")["ready"] + 10 >= moved_while_down["ready"]  # nothing moves
        assert rabbitmq._ctl("start_app").returncode == 0
        assert rabbitmq._ctl("await_startup").returncode == 0
        while True:
            left = shmq.Namespace(namespace).stats("local")
            if left["ready"] == 0 and left["unacked"] == 0:
                break
            assert time.monotonic() < deadline, left
            time.sleep(0.1)
    finally:
        proc.kill()
        _out, err = proc.communicate()
    assert "reconnecting" in err
    received = drain_rabbitmq(rabbitmq, dest)
    counts = Counter(int.from_bytes(b, "big") for b, _ in received)
    marked = {int.from_bytes(b, "big") for b, p in received if p.headers["x-shovelled"][-1]["src-redelivered"]}
    assert set(counts) == set(range(count)), f"lost: {sorted(set(range(count)) - set(counts))[:10]}"
    assert {i for i, n in counts.items() if n > 1} <= marked


def test_a_rabbitmq_memory_alarm_slows_the_shovel_and_loses_nothing(shmq_bin, namespace, rabbitmq):
    """shmq → RabbitMQ while RabbitMQ's memory alarm is on (its watermark set
    to 1 byte): the broker blocks the shovel's connection, the shovel waits
    with the messages still held in shmq (acked only after a confirm), and
    once the alarm clears every message arrives, in order, once."""
    count = 2000
    dest = f"alarm-{uuid.uuid4().hex[:8]}"
    shovel(shmq_bin, namespace, "declare", "alarm", "--src-uri", f"shm://{namespace}", "--src-queue", "local",
           "--dest-uri", amqp_uri(rabbitmq), "--dest-queue", dest, "--src-prefetch-count", "100")
    with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
        connection.channel().queue_declare("local")
    proc = runner(shmq_bin, namespace, "alarm")
    try:
        deadline = time.monotonic() + WAIT
        while json.loads(shovel(shmq_bin, namespace, "list", "--json").stdout)[0]["state"] != "running":
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        assert rabbitmq._ctl("set_vm_memory_high_watermark", "absolute", "1").returncode == 0
        try:
            publish_to_shmq(namespace, "local", range(count))
            while "blocked" not in rabbitmq._ctl("list_connections", "state").stdout:
                assert time.monotonic() < deadline, rabbitmq._ctl("list_connections", "state").stdout
                time.sleep(0.1)
            time.sleep(1.0)
            held = shmq.Namespace(namespace).stats("local")
            with rabbitmq.connect() as connection:
                arrived = connection.channel().queue_declare(dest, passive=True).method.message_count
            # Blocked: what RabbitMQ has not confirmed is still in shmq.
            assert held["ready"] + held["unacked"] + arrived == count, (held, arrived)
            assert held["ready"] + held["unacked"] >= count - 100, (held, arrived)
            assert proc.poll() is None
        finally:
            assert rabbitmq._ctl("set_vm_memory_high_watermark", "0.4").returncode == 0
        while True:
            left = shmq.Namespace(namespace).stats("local")
            if left["ready"] == 0 and left["unacked"] == 0:
                break
            assert time.monotonic() < deadline + WAIT, left
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    received = drain_rabbitmq(rabbitmq, dest)
    assert [index_of(b) for b, _ in received] == list(range(count))


def test_a_list_of_uris_fails_over_to_the_next_node(shmq_bin, namespace, rabbitmq):
    """dest-uri names two nodes, the first down (nothing listens on its
    port): the shovel's first session fails there, the next connects to the
    second and moves everything; listings hide both passwords."""
    count = 500
    dest = f"failover-{uuid.uuid4().hex[:8]}"
    publish_to_shmq(namespace, "local", range(count))
    down = f"amqp://guest:secret1@127.0.0.1:{free_port()}/%2f"
    shovel(shmq_bin, namespace, "declare", "out", "--src-uri", f"shm://{namespace}", "--src-queue", "local",
           "--dest-uri", down, "--dest-uri", amqp_uri(rabbitmq), "--dest-queue", dest,
           "--dest-add-forward-headers", "--reconnect-delay", "0.2")
    listed = json.loads(shovel(shmq_bin, namespace, "list", "--json").stdout)[0]
    assert listed["definition"]["dest-uri"] == [down.replace("secret1", "***"), amqp_uri(rabbitmq).replace("guest:guest", "guest:***")]
    assert "secret1" not in json.dumps(listed)
    proc = runner(shmq_bin, namespace, "out")
    try:
        deadline = time.monotonic() + WAIT
        while True:
            left = shmq.Namespace(namespace).stats("local")
            if left["ready"] == 0 and left["unacked"] == 0:
                break
            assert time.monotonic() < deadline and proc.poll() is None, left
            time.sleep(0.1)
    finally:
        proc.kill()
        _out, err = proc.communicate()
    assert "reconnecting" in err and "secret1" not in err
    received = drain_rabbitmq(rabbitmq, dest)
    check_intact(received, count)
    assert all(p.headers["x-shovelled"][0]["dest-uri"].endswith(f":{rabbitmq.port}/%2f") for _, p in received)
