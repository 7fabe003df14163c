"""Review attacks on the batch API (`publish_many`, `recv_many`, acks with
`multiple`, the native `Message`), on fork safety and on server-named
queues. Each test pins a fix (in python/shmq, python/src/lib.rs or the
Rust crate) or behaviour that held under attack.
"""

from __future__ import annotations

import mmap
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

import shmq
from conftest import run_python
from differential import both, outcome


def publish_later(ns: shmq.Namespace, queue: str, body: bytes, delay: float = 0.2) -> threading.Timer:
    timer = threading.Timer(delay, lambda: ns.publish("", queue, body))
    timer.start()
    return timer


# -- timeouts


@pytest.mark.parametrize("timeout", [float("inf"), 1e300, 2e19])
def test_receive_timeouts_too_long_for_a_duration_wait_without_a_limit(namespace, timeout):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    consumer = ns.consumer("q")
    publish_later(ns, "q", b"one")
    assert consumer.recv(timeout=timeout).body == b"one"
    publish_later(ns, "q", b"two")
    assert [m.body for m in consumer.recv_many(10, timeout=timeout)] == [b"two"]
    with pytest.raises(ValueError, match="NaN"):
        consumer.recv(timeout=float("nan"))
    assert consumer.recv_many(10, timeout=-5) == []  # negative: do not wait


def test_native_calls_take_an_infinite_timeout_without_panicking(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    native = ns.consumer("q")._native
    publish_later(ns, "q", b"x")
    try:
        got = native.recv(float("inf"))
        ns._native.publisher().set_publish_timeout(float("inf"))
    except BaseException as e:  # noqa: BLE001 - pyo3's PanicException is a BaseException
        pytest.fail(f"raised {type(e).__name__}: {e}")
    assert got.body == b"x"


def test_a_kombu_publish_timeout_of_inf_waits_without_a_limit(namespace):
    import kombu

    import shmq.kombu  # noqa: F401 - registers shmq://

    with kombu.Connection(f"shmq://{namespace}") as connection:
        queue = kombu.Queue("kq", kombu.Exchange("kx"), "k")
        connection.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key="k", declare=[queue],
                                      timeout=float("inf"))
        assert connection.SimpleQueue(queue).get(timeout=1).payload == {"n": 1}


# -- bodies


def test_a_single_str_or_bytes_is_refused_as_a_batch_not_split(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    for single in ["hello", b"hello", bytearray(b"hello"), memoryview(b"hello")]:
        with pytest.raises(TypeError, match="wrap one body in a list"):
            ns.publish_many("", "q", single)
    with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
        with pytest.raises(TypeError, match="wrap one body in a list"):
            connection.channel().basic_publish_many("", "q", "hello")
    assert ns.stats("q")["ready"] == 0
    # What is a batch: any iterable of bodies, generators and odd buffers
    # included.
    import array

    strided = memoryview(array.array("B", b"a-b-c"))[::2]  # not contiguous
    assert ns.publish_many("", "q", (b for b in [b"gen", strided, type("B", (bytes,), {})(b"sub")])) == 3
    assert [m.body for m in ns.consumer("q").recv_many(10, timeout=1)] == [b"gen", b"abc", b"sub"]


def test_the_native_publish_many_refuses_a_single_str(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    with pytest.raises(TypeError):
        ns._native.publisher().publish_many("", "q", "hello")


# -- the native Message


def test_a_message_acked_from_another_thread_raises_runtime_error(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    ns.publish("", "q", b"x")
    consumer = ns.consumer("q", manual_ack=True)
    message = consumer.recv(timeout=1)
    raised = []

    def ack() -> None:
        try:
            message.ack()
        except BaseException as e:  # noqa: BLE001 - what it raises is the point
            raised.append(type(e).__name__)

    thread = threading.Thread(target=ack)
    thread.start()
    thread.join()
    assert raised == ["RuntimeError"]
    assert ns.stats("q")["unacked"] == 1


def test_settling_twice_after_close_and_multiple_on_a_priority_queue(namespace):
    ns = shmq.Namespace(namespace)
    ns._native.declare_queue("p", arguments={"x-max-priority": 5})
    for priority in [0, 3, 5, 1, 9]:
        ns.publish("", "p", f"p{priority}".encode(), shmq.BasicProperties(priority=priority))
    consumer = ns.consumer("p", manual_ack=True, prefetch=3)
    batch = consumer.recv_many(100, timeout=1)
    assert [m.body for m in batch] == [b"p5", b"p9", b"p3"]  # 9 counts as the maximum, 5; prefetch caps the batch
    with pytest.raises(shmq.ShmqError, match="prefetch limit of 3"):
        consumer.recv_many(100, timeout=0.1)
    assert batch[1].ack(multiple=True) == 2
    with pytest.raises(shmq.UnknownDeliveryTag):
        batch[0].ack()  # settled by the multiple ack
    rest = consumer.recv_many(100, timeout=1)
    assert [m.body for m in rest] == [b"p1", b"p0"]
    del consumer
    import gc

    gc.collect()
    with pytest.raises(shmq.ShmqError, match="was closed"):
        rest[0].ack(multiple=True)
    assert ns.stats("p")["ready"] == 3  # p3, p1, p0 went back


def test_message_repr_is_python_syntax(namespace):
    ns = shmq.Namespace(namespace)
    ns._native.declare_exchange("ex", "topic")
    ns.declare_queue("q")
    ns.bind("q", "ex", "#")
    key = "é\"\n\x00'"
    ns.publish("ex", key, b"x")
    message = ns.consumer("q").recv(timeout=1)
    assert repr(message) == f"Message(body=b'x', routing_key={key!r}, redelivered=False)"


def test_damaged_properties_in_shared_memory_read_as_a_value_or_empty(namespace):
    """Another process overwrites bytes of stored messages' properties (a
    hostile or buggy group member): every accessor returns, none raises or
    crashes, and the bodies are intact."""
    import datetime
    import decimal

    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    props = shmq.BasicProperties(content_type="CTMARK", correlation_id="cid", timestamp=123, priority=3, headers={
        "s": "str", "n": 2 ** 40, "f": 1.5, "t": datetime.datetime(2020, 1, 1), "d": decimal.Decimal("1.25"),
        "nest": {"a": [1, "x", {"b": None}]}, "bb": b"bytes"})
    segment = Path(namespace) / "queues" / "q"
    consumer = ns.consumer("q", manual_ack=True)
    ns.publish("", "q", b"BODY00000", props)
    with open(segment, "r+b") as f, mmap.mmap(f.fileno(), 0) as mm:
        body_at = mm.find(b"BODY00000")
        # The properties start with the routing key: tag 1, length 1, "q".
        span = body_at - mm.rfind(b"\x01\x01q", 0, mm.rfind(b"CTMARK", 0, body_at))
    consumer.recv(timeout=1).ack()
    seen = {"intact": 0, "damaged": 0}
    for value in (0x00, 0xFF, 0x80):
        ns.publish_many("", "q", [f"BODY{n:05d}".encode() for n in range(span)], props)
        with open(segment, "r+b") as f, mmap.mmap(f.fileno(), 0) as mm:
            for n in range(span):
                at = mm.rfind(f"BODY{n:05d}".encode()) - span + n  # the newest copy
                mm[at] = value if mm[at] != value else value ^ 1
        batch = consumer.recv_many(span + 1, timeout=1)
        assert [m.body for m in batch] == [f"BODY{n:05d}".encode() for n in range(span)]
        for m in batch:
            d = m.properties_dict
            assert isinstance(m.properties, shmq.BasicProperties) and isinstance(m.exchange, str)
            assert isinstance(m.routing_key, str) and repr(m)
            seen["intact" if d["content_type"] == "CTMARK" else "damaged"] += 1
        batch[-1].ack(multiple=True)
    assert seen["damaged"] > 0 and seen["intact"] > 0


# -- kill -9 mid-batch


def test_a_publisher_killed_mid_batch_leaves_whole_messages_in_order(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    code = textwrap.dedent("""
        import shmq
        ns = shmq.Namespace()
        i = 0
        while True:
            ns.publish_many("", "q", [b"%d:" % (i + k) + b"x" * ((i + k) % 300) for k in range(64)])
            i += 64
    """)
    consumer = ns.consumer("q")
    for round_ in range(3):
        proc = run_python(code, namespace)
        time.sleep(0.25 + 0.05 * round_)
        proc.kill()
        proc.wait()
        ns.publish("", "q", b"END")
        seen = []
        while True:
            batch = consumer.recv_many(100_000, timeout=3)
            assert batch, f"round {round_}: the queue stopped before END: {ns.stats('q')}"
            seen += [m.body for m in batch]
            if seen[-1] == b"END":
                break
        numbers = []
        for body in seen[:-1]:
            n, _, pad = body.partition(b":")
            assert pad == b"x" * (int(n) % 300), body[:40]
            numbers.append(int(n))
        assert numbers == list(range(len(numbers)))  # a prefix: nothing half-written, nothing skipped


# -- fork


def test_a_dead_parent_is_recovered_while_a_child_it_forked_lives(namespace):
    """multiprocessing's fork children (a Pool's workers outlive a killed
    parent) inherit the descriptor of the parent's liveness lock; they must
    not keep the dead parent alive, or its unacked deliveries stay stuck."""
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    ns.publish("", "q", b"held")
    code = textwrap.dedent("""
        import os, time, shmq
        consumer = shmq.Namespace().consumer("q", manual_ack=True)
        held = consumer.recv(timeout=5)
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        print(pid, flush=True)
        os.kill(os.getpid(), 9)
    """)
    proc = run_python(code, namespace)
    child = int(proc.stdout.readline())
    proc.wait()
    try:
        message = ns.consumer("q", manual_ack=True).recv(timeout=3)
    finally:
        os.kill(child, signal.SIGKILL)
    assert message is not None and (message.body, message.redelivered) == (b"held", True)


def test_a_dead_parent_of_a_raw_fork_child_is_recovered(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    ns.publish("", "q", b"held")
    # os.fork() runs Python's at-fork handlers; libc's fork() called
    # directly does not, as a C or Rust program's fork would not.
    code = textwrap.dedent("""
        import ctypes, os, time, shmq
        consumer = shmq.Namespace().consumer("q", manual_ack=True)
        held = consumer.recv(timeout=5)
        pid = ctypes.CDLL(None).fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        print(pid, flush=True)
        os.kill(os.getpid(), 9)
    """)
    proc = run_python(code, namespace)
    child = int(proc.stdout.readline())
    proc.wait()
    try:
        message = ns.consumer("q", manual_ack=True).recv(timeout=1.5)
    finally:
        os.kill(child, signal.SIGKILL)
    assert message is not None and message.body == b"held"


def test_a_fork_child_using_an_inherited_namespace_gets_its_own_liveness(namespace):
    """Handles a child opens from a Namespace it inherited are the child's:
    one that dies holding a delivery, or in the middle of a publish, is
    recovered while its parent lives (before the fix its handles counted as
    the parent's, so the delivery stayed unacked and a claim half-made by a
    killed child wedged the queue)."""
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    ns.publish("", "q", b"taken by the child")
    pid = os.fork()
    if pid == 0:
        try:
            got = ns.consumer("q", manual_ack=True).recv(timeout=5)
        finally:
            os._exit(0 if got is not None else 3)
    assert os.waitpid(pid, 0)[1] == 0
    consumer = ns.consumer("q")
    message = consumer.recv(timeout=3)
    assert message is not None and message.body == b"taken by the child"
    for trial in range(8):
        pid = os.fork()
        if pid == 0:
            while True:
                ns.publish_many("", "q", [b"c"] * 64)
        time.sleep(0.02 + 0.01 * trial)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        ns.publish("", "q", b"END")
        deadline = time.monotonic() + 3
        last = None
        while last != b"END":
            assert time.monotonic() < deadline, f"trial {trial}: the queue is wedged: {ns.stats('q')}"
            batch = consumer.recv_many(100_000, timeout=0.5)
            last = batch[-1].body if batch else last


def test_an_inherited_consumer_refuses_use_in_the_child(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    ns.publish("", "q", b"x")
    consumer = ns.consumer("q", manual_ack=True)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            consumer.recv(timeout=0)
            os.write(write, b"used")
        except shmq.ShmqError as e:
            os.write(write, str(e).encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert b"opened by the parent of this forked process" in os.read(read, 4096)
    assert consumer.recv(timeout=1).body == b"x"  # the parent's still works


def test_a_fork_child_of_the_native_namespace_is_recovered_when_it_dies(namespace):
    native = shmq._native.Namespace(namespace)
    native.declare_queue("q")
    native.publisher().publish("", "q", b"taken by the child")
    native.declare_queue("keepalive")
    keep = native.consumer("keepalive")  # the parent registers its liveness first
    pid = os.fork()
    if pid == 0:
        try:
            got = native.consumer("q", True, 0).recv(5)
        finally:
            os._exit(0 if got is not None else 3)
    assert os.waitpid(pid, 0)[1] == 0
    message = native.consumer("q", True, 0).recv(1.5)
    del keep
    assert message is not None and message.body == b"taken by the child"


def test_celery_worker_parent_killed_after_its_pool_process_was_replaced(namespace, tmp_path):
    """A pool process the worker forks after it connected (the replacement
    of a killed one) inherits the worker's handles: the worker killed alone
    with kill -9 still hands its acks_late task to the other worker (Celery
    sets PDEATHSIG on pool processes, and the inherited lock is let go)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_celery import Worker, runs, wait_for

    from celery import Celery

    client = Celery("client", broker=f"shmq://{namespace}", backend="rpc://")
    started = []

    def start(name):
        worker = Worker(name, namespace, tmp_path, options=["-c", "1"])
        started.append(worker)
        worker.wait_ready()
        return worker

    try:
        w1 = start("w1")
        marker = tmp_path / "runs"
        first = client.send_task("test_celery.record_run", (str(marker), 30.0))
        wait_for(lambda: runs(marker), 10, "the task to start")
        os.kill(runs(marker)[0][1], signal.SIGKILL)
        assert first.get(timeout=20) == w1.hostname
        marker2 = tmp_path / "runs2"
        second = client.send_task("test_celery.record_run", (str(marker2), 30.0))
        wait_for(lambda: runs(marker2), 10, "the second task to start")
        w2 = start("w2")
        os.kill(w1.process.pid, signal.SIGKILL)  # the worker alone, not its pool
        assert second.get(timeout=15) == w2.hostname
    finally:
        client.close()
        for worker in started:
            worker.kill()


# -- server-named queues


def server_named(connection, tag):
    seen = {}
    channel = connection.channel()
    name = channel.queue_declare("").method.queue
    seen["prefix"] = name[:8]
    channel.basic_publish("", name, b"kept")
    seen["durable"] = channel.queue_declare("", durable=True).method.queue[:8]
    seen["passive empty"] = outcome(lambda: connection.channel().queue_declare("", passive=True))
    return seen, name


def test_a_server_named_queue_is_not_exclusive_and_outlives_its_connection(rabbitmq, namespace):
    (expected, rabbit_name), (got, shmq_name) = both(rabbitmq, namespace, server_named, tag="t")
    assert got == expected
    assert expected["passive empty"] == (404, "NOT_FOUND - no queue '' in vhost '/'")
    with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
        ok = connection.channel().queue_declare(shmq_name, passive=True)
        assert ok.method.message_count == 1
    connection = rabbitmq.connect()
    try:
        assert connection.channel().queue_declare(rabbit_name, passive=True).method.message_count == 1
        connection.channel().queue_delete(rabbit_name)
    finally:
        connection.close()


def empty_queue_names(connection, tag):
    seen = {}
    channel = connection.channel()
    seen["purge '' first"] = outcome(lambda: channel.queue_purge(""))
    channel = connection.channel()
    seen["bind '' first"] = outcome(lambda: channel.queue_bind("", "amq.fanout"))
    channel = connection.channel()
    seen["get '' first"] = outcome(lambda: channel.basic_get(""))
    channel = connection.channel()
    name = channel.queue_declare("").method.queue
    channel.basic_publish("", name, b"x")
    seen["consume '' after a declare"] = outcome(lambda: channel.basic_consume("", lambda *args: None))
    # Another channel: its own last declared queue, bound with no routing
    # key (pika sends the queue's name, '', which RabbitMQ reads as it too).
    channel = connection.channel()
    other = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind("", "amq.direct")
    channel.basic_publish("amq.direct", other, b"by its name")
    seen["get '' after a bind ''"] = channel.basic_get("", auto_ack=True)[2]
    channel.queue_unbind("", "amq.direct")
    channel.basic_publish("amq.direct", other, b"unbound")
    seen["purge '' after an unbind ''"] = channel.queue_purge("").method.message_count
    seen["delete ''"] = outcome(lambda: channel.queue_delete(""))
    seen["the last declared queue is gone"] = outcome(lambda: connection.channel().queue_declare(other, passive=True))[0]
    connection.channel().queue_delete(name)
    return seen


def test_an_empty_queue_name_is_the_channels_last_declared_queue_as_in_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, empty_queue_names, tag="t")
    assert expected == {"purge '' first": (404, "NOT_FOUND - no previously declared queue"),
                        "bind '' first": (404, "NOT_FOUND - no previously declared queue"),
                        "get '' first": (404, "NOT_FOUND - no previously declared queue"),
                        "consume '' after a declare": "ok",
                        "get '' after a bind ''": b"by its name",
                        "purge '' after an unbind ''": 0,
                        "delete ''": "ok",
                        "the last declared queue is gone": 404}, expected
    assert got == expected


# -- acks with multiple, pika and kombu, against RabbitMQ


def multiple_acks(connection, q):
    seen = {}
    channel = connection.channel()
    channel.queue_declare(q)
    for i in range(3):
        channel.basic_publish("", q, b"m%d" % i)
    seen["tags"] = [channel.basic_get(q)[0].delivery_tag for _ in range(3)]
    channel.basic_ack(2, multiple=True)
    channel.basic_ack(2, multiple=True)  # 2 is settled; 3 is still held
    seen["again"] = outcome(lambda: channel.queue_declare(q, passive=True))
    channel = connection.channel()
    for i in range(3):
        channel.basic_publish("", q, b"n%d" % i)
    [channel.basic_get(q) for _ in range(3)]
    channel.basic_ack(99, multiple=True)  # above every tag it holds
    seen["above"] = outcome(lambda: channel.queue_declare(q, passive=True))
    channel = connection.channel()
    seen["ready"] = channel.queue_declare(q, passive=True).method.message_count  # the closed channels' requeued
    channel.queue_delete(q)
    return seen


def test_a_multiple_ack_of_a_tag_not_held_is_unknown_as_in_rabbitmq(rabbitmq, namespace):
    """Before the fix shmq settled every tag below it: a wrong tag acked
    messages nobody had processed."""
    expected, got = both(rabbitmq, namespace, multiple_acks, q=f"multi-{uuid.uuid4().hex[:8]}")
    assert got == expected
    assert expected["above"] == (406, "PRECONDITION_FAILED - unknown delivery tag 99") and expected["ready"] == 4


def kombu_multiple_ack(connection, q):
    channel = connection.channel()
    channel.queue_declare(q, auto_delete=False)
    for i in range(3):
        channel.basic_publish(channel.prepare_message(b"m%d" % i), "", q)
    [channel.basic_get(q) for _ in range(3)]
    # pyamqp raises RabbitMQ's 406 at the next call; shmq's at this one.
    return outcome(lambda: (channel.basic_ack(99, multiple=True), channel.queue_declare(q, passive=True)))


def test_kombu_multiple_ack_of_a_tag_not_held_is_unknown_as_with_pyamqp(rabbitmq, namespace):
    import kombu

    import shmq.kombu  # noqa: F401

    q = f"kmulti-{uuid.uuid4().hex[:8]}"
    with kombu.Connection(f"amqp://guest:guest@127.0.0.1:{rabbitmq.port}//") as connection:
        expected = kombu_multiple_ack(connection.connection, q)
        connection.channel().queue_delete(q)
    with kombu.Connection(f"shmq://{namespace}") as connection:
        got = kombu_multiple_ack(connection.connection, q)
        assert shmq.Namespace(namespace).stats(q)["ready"] == 3  # the closed channel's went back
    assert got == expected == (406, "PRECONDITION_FAILED - unknown delivery tag 99")


# -- queues the routing table does not list


def declare_exclusive_and_die(namespace: str) -> None:
    code = textwrap.dedent("""
        import os, shmq
        ns = shmq.Namespace()
        ns.declare_queue("mine", exclusive=True)
        ns.publish_many("", "mine", [b"a", b"b"])
        print("declared", flush=True)
        os.kill(os.getpid(), 9)
    """)
    proc = run_python(code, namespace)
    assert proc.stdout.readline().strip() == "declared"
    proc.wait()


def test_a_consumer_of_an_exclusive_queue_whose_owner_was_killed_finds_no_queue(namespace):
    ns = shmq.Namespace(namespace)
    declare_exclusive_and_die(namespace)
    with pytest.raises(shmq.QueueNotFound):
        ns.consumer("mine")


def test_an_exclusive_queue_of_a_killed_owner_is_gone_and_a_planted_file_is_no_queue(namespace):
    ns = shmq.Namespace(namespace)
    declare_exclusive_and_die(namespace)
    assert ns.publish("", "mine", b"x") == 0  # the look reaps it
    with pytest.raises(shmq.QueueNotFound):
        ns.stats("mine")
    assert "mine" not in ns._native.list_queues()
    assert ns.declare_queue("mine") == "mine" and ns.stats("mine")["ready"] == 0  # a new queue, not the old one
    # A member copies a queue's file under a name the table does not list.
    ns.declare_queue("real")
    ns.publish("", "real", b"secret")
    planted = Path(namespace) / "queues" / "planted"
    planted.write_bytes((Path(namespace) / "queues" / "real").read_bytes())
    with pytest.raises(shmq.QueueNotFound):
        ns.consumer("planted")
    assert ns.publish("", "planted", b"x") == 0
    with pytest.raises(shmq.QueueNotFound):
        ns.stats("planted")


def test_list_queues_lists_only_queues_that_exist(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("real")
    planted = Path(namespace) / "queues" / "planted"
    planted.write_bytes((Path(namespace) / "queues" / "real").read_bytes())
    assert ns._native.list_queues() == ["real"]
