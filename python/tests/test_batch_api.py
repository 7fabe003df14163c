"""The batch API (issue 19): `Namespace.publish_many`, `Consumer.recv_many`,
acks with `multiple`, and `BlockingChannel.basic_publish_many`, which must
have the outcomes of one `basic_publish` per body: compared with a loop of
`basic_publish` on RabbitMQ. Across processes, with Ctrl-C in a blocked
batch call and the GIL released while one waits."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from typing import Any, Dict, List

import pytest

import shmq
from conftest import run_python
from differential import both, drain


def test_a_batch_crosses_processes_in_order_with_its_properties(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    consumer_code = textwrap.dedent("""
        import shmq, sys
        consumer = shmq.Namespace().consumer("q", manual_ack=True)
        got = []
        while len(got) < 1000:
            batch = consumer.recv_many(300, timeout=10)
            if not batch:
                break
            got += [(m.body.decode(), m.properties.content_type, m.properties.headers["n"], m.routing_key) for m in batch]
            batch[-1].ack(multiple=True)
        print(len(got), got[0], got[-1], all(g[0] == f"m{i}" for i, g in enumerate(got)))
    """)
    proc = run_python(consumer_code, namespace)
    props = shmq.BasicProperties(content_type="text/plain", headers={"n": 7})
    for start in range(0, 1000, 250):
        assert ns.publish_many("", "q", [f"m{i}".encode() for i in range(start, start + 250)], props) == 250
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.split("\n")[0] == "1000 ('m0', 'text/plain', 7, 'q') ('m999', 'text/plain', 7, 'q') True"
    stats = ns.stats("q")
    assert (stats["ready"], stats["unacked"]) == (0, 0)


def test_bodies_of_every_buffer_type_and_a_refused_type(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    assert ns.publish_many("", "q", [b"bytes", "str", bytearray(b"bytearray"), memoryview(b"memoryview")]) == 4
    with pytest.raises(TypeError, match="body must be str, bytes, bytearray or memoryview, not int"):
        ns.publish_many("", "q", [b"ok", 5])
    with pytest.raises(TypeError):
        ns.publish_many("", "q", 5)  # not iterable
    consumer = ns.consumer("q")
    assert [m.body for m in consumer.recv_many(10, timeout=0)] == [b"bytes", b"str", b"bytearray", b"memoryview"]
    assert consumer.recv_many(10, timeout=0) == []  # the refused batch published nothing
    # The one-message call takes the same types.
    assert ns.publish("", "q", bytearray(b"one")) == 1
    assert consumer.recv(timeout=1).body == b"one"


def test_unroutable_and_refused_batches_are_reported(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("small", max_length=3, overflow="reject-publish")
    assert ns.publish_many("", "nobody", [b"a", b"b"]) == 0
    with pytest.raises(shmq.Unroutable):
        ns.publish_many("", "nobody", [b"a", b"b"], mandatory=True)
    assert ns.publish_many("", "small", [b"1", b"2", b"3", b"4", b"5"]) == 3
    assert [m.body for m in ns.consumer("small").recv_many(10, timeout=0)] == [b"1", b"2", b"3"]


def test_recv_many_waits_returns_what_is_ready_and_checks_max(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    consumer = ns.consumer("q")
    began = time.monotonic()
    assert consumer.recv_many(8, timeout=0.2) == []
    assert time.monotonic() - began >= 0.19
    ns.publish_many("", "q", [b"%d" % i for i in range(20)])
    assert [m.body for m in consumer.recv_many(8)] == [b"%d" % i for i in range(8)]
    assert len(consumer.recv_many(100, timeout=0)) == 12
    with pytest.raises(ValueError, match="max must be at least 1"):
        consumer.recv_many(0)


def test_multiple_settles_everything_up_to_the_tag(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    ns.publish_many("", "q", [b"a", b"b", b"c", b"d"])
    consumer = ns.consumer("q", manual_ack=True)
    a, b, c, d = consumer.recv_many(4)
    b.nack(requeue=True, multiple=True)  # a and b back, flagged redelivered
    c.ack()
    assert ns.stats("q")["unacked"] == 1
    again = consumer.recv_many(4)
    assert [(m.body, m.redelivered) for m in again] == [(b"a", True), (b"b", True)]
    # Redeliveries get new tags, above d's: multiple settles d too.
    assert again[-1].ack(multiple=True) == 3
    stats = ns.stats("q")
    assert (stats["ready"], stats["unacked"], stats["acked"]) == (0, 0, 4)
    for settled in (a, d):
        with pytest.raises(shmq.UnknownDeliveryTag):
            settled.reject(requeue=False)


def test_a_closed_consumer_requeues_even_while_its_messages_live(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    ns.publish_many("", "q", [b"a", b"b"])
    consumer = ns.consumer("q", manual_ack=True)
    held = consumer.recv_many(2)
    consumer.close()
    assert ns.stats("q")["ready"] == 2  # back in the queue although `held` lives
    with pytest.raises(shmq.ShmqError, match="consumer of this message was closed"):
        held[0].ack()
    assert [(m.body, m.redelivered) for m in ns.consumer("q").recv_many(2)] == [(b"a", True), (b"b", True)]


def test_the_gil_is_released_while_recv_many_waits(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    consumer = ns.consumer("q")
    ticks = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        assert consumer.recv_many(4, timeout=0.3) == []
    finally:
        stop.set()
        thread.join()
    assert len(ticks) > 20  # the other thread ran while recv_many waited


BLOCKED_BATCH = textwrap.dedent("""
    import sys, shmq
    ns = shmq.Namespace(sys.argv[1])
    ns.declare_queue("full", max_length=2, overflow="block")
    if sys.argv[2] == "publish":
        print("publishing", flush=True)
        ns.publish_many("", "full", [b"x"] * 5)
    else:
        consumer = ns.consumer("empty-" + sys.argv[2])
        print("receiving", flush=True)
        consumer.recv_many(16)
    print("returned", flush=True)
""")


@pytest.mark.parametrize("call", ["publish", "recv"])
def test_ctrl_c_interrupts_a_blocked_batch_call(namespace, call):
    if call == "recv":
        shmq.Namespace(namespace).declare_queue("empty-recv")
    proc = subprocess.Popen([sys.executable, "-c", BLOCKED_BATCH, namespace, call], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() in ("publishing", "receiving")
        time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read()  # still blocked
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert "returned" not in out
    assert err.rstrip().splitlines()[-1] == "KeyboardInterrupt", err[-2000:]
    assert ("publish_many" if call == "publish" else "recv_many") in err


def batch_outcomes(connection: Any, q: str) -> Dict[str, Any]:
    """A batch publish on shmq, one basic_publish per body on RabbitMQ (pika
    has no batch call): the same outcomes either way."""
    api = shmq if isinstance(connection, shmq.BlockingConnection) else __import__("pika")

    def publish_all(channel: Any, exchange: str, key: str, bodies: List[bytes], props: Any = None,
                    mandatory: bool = False) -> None:
        if hasattr(channel, "basic_publish_many"):
            channel.basic_publish_many(exchange, key, bodies, props, mandatory)
        else:
            for body in bodies:
                channel.basic_publish(exchange, key, body, props, mandatory)

    seen: Dict[str, Any] = {}
    ch = connection.channel()
    ch.queue_declare(q, arguments={"x-max-length": 3, "x-overflow": "reject-publish"})
    props = api.BasicProperties(content_type="text/plain", headers={"k": "v"})
    publish_all(ch, "", q, [b"1", b"2"], props)
    seen["plain"] = [(m.body.decode(), m.props.content_type, m.props.headers) for m in take(ch, q)]
    returned: List[str] = []
    ch.add_on_return_callback(lambda _ch, method, _p, body: returned.append(f"{method.reply_code} {body.decode()}"))
    publish_all(ch, "", "nobody-" + q, [b"r1", b"r2"], mandatory=True)
    connection.process_data_events(time_limit=0.3)
    seen["returned without confirms"] = returned
    confirm = connection.channel()
    confirm.confirm_delivery()
    try:
        publish_all(confirm, "", q, [b"a", b"b", b"c", b"d"])
        seen["over the limit, confirmed"] = "ok"
    except api.exceptions.NackError as e:
        seen["over the limit, confirmed"] = type(e).__name__
    seen["kept"] = drain(ch, q)
    try:
        publish_all(confirm, "", "nobody-" + q, [b"u1", b"u2"], mandatory=True)
        seen["unroutable, confirmed"] = "ok"
    except api.exceptions.UnroutableError as e:
        seen["unroutable, confirmed"] = (type(e).__name__, [m.body for m in e.messages][:1])
    tx = connection.channel()
    tx.tx_select()
    publish_all(tx, "", q, [b"t1", b"t2"])
    seen["before commit"] = drain(ch, q)
    tx.tx_commit()
    seen["after commit"] = drain(ch, q)
    ch.queue_delete(q)
    return seen


class _Taken:
    def __init__(self, props: Any, body: bytes) -> None:
        self.props, self.body = props, body


def take(channel: Any, q: str) -> List[_Taken]:
    out = []
    while True:
        method, props, body = channel.basic_get(q, auto_ack=True)
        if method is None:
            return out
        out.append(_Taken(props, body))


def test_basic_publish_many_has_the_outcomes_of_a_publish_per_body(rabbitmq, namespace):
    q = f"batch-{uuid.uuid4().hex[:8]}"
    expected, got = both(rabbitmq, namespace, batch_outcomes, q=q)
    assert got == expected
    assert expected["plain"] == [("1", "text/plain", {"k": "v"}), ("2", "text/plain", {"k": "v"})]
    assert expected["returned without confirms"] == ["312 r1", "312 r2"]
    assert expected["over the limit, confirmed"] == "NackError"
    assert expected["kept"] == [("a", False), ("b", False), ("c", False)]
    assert expected["before commit"] == [] and expected["after commit"] == [("t1", False), ("t2", False)]


def test_a_fork_child_dropping_inherited_handles_leaves_the_parent_alone(namespace):
    """multiprocessing's fork, Celery's prefork pool: a child that drops the
    consumer, publisher and namespace it inherited must not requeue the
    parent's unacked deliveries, free its rows, flush its counts or unlink
    its liveness file."""
    import gc
    import os

    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    ns.declare_queue("", exclusive=True)
    ns.publish_many("", "q", [b"held", b"ready"])
    consumer = ns.consumer("q", manual_ack=True, prefetch=1)
    held = consumer.recv(timeout=1)
    peers = sorted(os.listdir(os.path.join(namespace, "peers")))
    queues_before = sorted(ns._native.list_queues())
    pid = os.fork()
    if pid == 0:
        try:
            del consumer, held, ns
            gc.collect()
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    stats = ns.stats("q")
    assert (stats["ready"], stats["unacked"], stats["consumers"]) == (1, 1, 1)
    assert sorted(os.listdir(os.path.join(namespace, "peers"))) == peers
    assert sorted(ns._native.list_queues()) == queues_before  # the exclusive queue is still the parent's
    held.ack()
    assert ns.stats("q")["unacked"] == 0
