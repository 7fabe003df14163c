"""Flow control across real processes: a namespace at its memory budget
blocks publishers (RabbitMQ's memory alarm and `connection.blocked`, as pika
reports it) until a consumer makes room; `blocked_connection_timeout` bounds
the wait; Ctrl-C interrupts it.

Sizes: a queue's first ring is 8 MiB of data (plus its slot table); the
next ring is larger, so with a 24 MiB budget the first ring's worth of
messages fits and the publish after it waits for the budget."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
import textwrap
import time
from typing import List

import pytest

import shmq

BUDGET = 24 << 20
BODY = 64 << 10
# 40 MiB of bodies: well past the 8 MiB first ring and the 24 MiB budget.
COUNT = 640


def start(code: str, namespace: str) -> subprocess.Popen:
    """Runs `code` in a separate Python process, with `namespace` as argv[1]."""
    return subprocess.Popen([sys.executable, "-c", code, namespace], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The next line `proc` prints, waiting at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                proc.kill()
                out, err = proc.communicate(timeout=10)
                pytest.fail(f"no line from the child within {timeout} s; stdout: {out!r}; stderr: {err[-3000:]}")
            line = proc.stdout.readline()
            if not line:
                out, err = proc.communicate(timeout=10)
                pytest.fail(f"the child exited ({proc.returncode}) before printing; stderr: {err[-3000:]}")
            return line.rstrip("\n")


def finish(proc: subprocess.Popen, timeout: float) -> List[str]:
    """Waits for `proc` (killing it after `timeout` s); its remaining stdout lines."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        pytest.fail(f"the child did not finish within {timeout} s; stdout: {out[-3000:]!r}; stderr: {err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    return out.splitlines()


PUBLISHER = textwrap.dedent(f"""
    import sys, threading, time
    import shmq

    params = shmq.ConnectionParameters(namespace=sys.argv[1], memory_budget={BUDGET})
    connection = shmq.BlockingConnection(params)
    channel = connection.channel()
    channel.queue_declare(queue='flow')
    ticks = [0]
    def tick():  # runs only while the publishing thread lets the GIL go
        while True:
            time.sleep(0.01)
            ticks[0] += 1
    threading.Thread(target=tick, daemon=True).start()
    events = []
    def on_blocked(conn, frame):
        assert conn is connection
        events.append(('blocked', published, ticks[0], time.monotonic()))
        print('blocked', frame.channel_number, type(frame.method).__name__, frame.method.NAME,
              repr(frame.method.reason), published, flush=True)
    def on_unblocked(conn, frame):
        assert conn is connection
        events.append(('unblocked', published, ticks[0], time.monotonic()))
        print('unblocked', frame.channel_number, type(frame.method).__name__, frame.method.NAME, published, flush=True)
    connection.add_on_connection_blocked_callback(on_blocked)
    connection.add_on_connection_unblocked_callback(on_unblocked)
    published = 0
    for i in range({COUNT}):
        assert channel.basic_publish(exchange='', routing_key='flow', body=b'%08d' % i + b'.' * ({BODY} - 8)) is None
        published += 1
    (_, _, t0, s0), (_, _, t1, s1) = events[0], events[1]
    print('ticks-while-blocked', t1 - t0, round(s1 - s0, 3), flush=True)
    print('published', published, channel._publisher.is_blocked(), flush=True)
""")

CONSUMER = textwrap.dedent(f"""
    import sys
    import shmq

    connection = shmq.BlockingConnection(shmq.ConnectionParameters(namespace=sys.argv[1]))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=50)
    got = []
    def on_message(ch, method, properties, body):
        assert len(body) == {BODY}, len(body)
        got.append(int(body[:8]))
        ch.basic_ack(delivery_tag=method.delivery_tag)
        if len(got) == {COUNT}:
            ch.stop_consuming()
    channel.basic_consume('flow', on_message)
    channel.start_consuming()
    print('consumed', len(got), got == list(range({COUNT})), flush=True)
""")


def test_publisher_blocks_at_the_memory_budget_and_resumes_when_a_consumer_drains(namespace):
    publisher = start(PUBLISHER, namespace)
    try:
        blocked = read_line(publisher, 60).split()
        # pika's shapes: frame.channel_number 0, frame.method a Connection.Blocked
        assert blocked[:5] == ["blocked", "0", "ConnectionBlocked", "Connection.Blocked", "'low"]
        published_before_block = int(blocked[-1])
        # Most of the first ring's 8 MiB fits, far from all 40 MiB.
        assert 64 <= published_before_block < COUNT // 2
        # It stays blocked while nobody consumes.
        time.sleep(1.0)
        assert publisher.poll() is None
        consumer = start(CONSUMER, namespace)
        try:
            assert finish(consumer, 120) == [f"consumed {COUNT} True"]  # nothing lost, order kept
        finally:
            consumer.kill()
        rest = finish(publisher, 60)
    finally:
        publisher.kill()
    unblocked = [line for line in rest if line.startswith("unblocked")]
    assert unblocked, rest
    assert unblocked[0].split()[:4] == ["unblocked", "0", "ConnectionUnblocked", "Connection.Unblocked"]
    # The blocked publish got through when the consumer made room.
    assert int(unblocked[0].split()[-1]) == published_before_block
    ticks_line = next(line for line in rest if line.startswith("ticks-while-blocked")).split()
    ticks, blocked_seconds = int(ticks_line[1]), float(ticks_line[2])
    assert blocked_seconds >= 1.0
    # Another thread ran while the publish waited: the GIL was released
    # (10 ms ticks; a held GIL would allow a few at most).
    assert ticks >= 20 * blocked_seconds, (ticks, blocked_seconds)
    assert rest[-1] == f"published {COUNT} False"


TIMEOUT_PUBLISHER = textwrap.dedent(f"""
    import sys, time
    import shmq
    from shmq import exceptions

    params = shmq.ConnectionParameters(namespace=sys.argv[1], memory_budget={BUDGET}, blocked_connection_timeout=0.5)
    connection = shmq.BlockingConnection(params)
    channel = connection.channel()
    channel.queue_declare(queue='flow')
    blocked_at = []
    connection.add_on_connection_blocked_callback(lambda conn, frame: blocked_at.append(time.monotonic()))
    unblocked = []
    connection.add_on_connection_unblocked_callback(lambda conn, frame: unblocked.append(frame))
    try:
        for i in range({COUNT}):
            channel.basic_publish(exchange='', routing_key='flow', body=b'.' * {BODY})
        print('never blocked', flush=True)
    except exceptions.ConnectionBlockedTimeout as e:
        waited = time.monotonic() - blocked_at[0]
        print('timeout', i, len(blocked_at), round(waited, 3), str(e), flush=True)
        print('closed', connection.is_open, connection.is_closed, channel.is_open, len(unblocked), flush=True)
        try:
            channel.basic_publish(exchange='', routing_key='flow', body=b'after')
        except exceptions.ChannelWrongStateError as refused:
            print('publish after close:', type(refused).__name__, flush=True)
        print('is pika-named:', isinstance(e, exceptions.AMQPConnectionError) and isinstance(e, shmq.ShmqError), flush=True)
""")


def test_blocked_connection_timeout_raises_connection_blocked_timeout_and_closes(namespace):
    began = time.monotonic()
    proc = start(TIMEOUT_PUBLISHER, namespace)
    try:
        out = finish(proc, 60)
    finally:
        proc.kill()
    assert time.monotonic() - began < 30
    kind, index, blocks, waited, *text = out[0].split()
    assert kind == "timeout", out
    assert 64 <= int(index) < COUNT // 2
    assert blocks == "1"
    assert 0.5 <= float(waited) < 3.0  # within a few seconds of the timeout
    assert " ".join(text) == "Blocked connection timeout expired."
    # As pika: the connection is closed and no unblocked callback ran.
    assert out[1:] == ["closed False True False 0", "publish after close: ChannelWrongStateError", "is pika-named: True"]


SIGINT_PUBLISHER = textwrap.dedent(f"""
    import sys
    import shmq

    connection = shmq.BlockingConnection(shmq.ConnectionParameters(namespace=sys.argv[1], memory_budget={BUDGET}))
    channel = connection.channel()
    channel.queue_declare(queue='flow')
    connection.add_on_connection_blocked_callback(lambda conn, frame: print('blocked', flush=True))
    for i in range({COUNT}):
        channel.basic_publish(exchange='', routing_key='flow', body=b'.' * {BODY})
    print('never blocked', flush=True)
""")


def test_ctrl_c_interrupts_a_publish_blocked_by_flow_control(namespace):
    proc = start(SIGINT_PUBLISHER, namespace)
    try:
        assert read_line(proc, 60) == "blocked"
        time.sleep(0.3)
        assert proc.poll() is None  # still blocked
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("a publisher blocked by flow control ignored SIGINT for 10 s")
        ended = time.monotonic() - sent
    finally:
        proc.kill()
    assert ended < 2.0, ended
    assert proc.returncode != 0
    assert "never blocked" not in out
    assert err.rstrip().splitlines()[-1] == "KeyboardInterrupt", err[-2000:]
    assert "basic_publish" in err  # raised from the blocked publish


def test_native_publish_waits_for_the_budget_and_ctrl_c_style_errors_propagate(namespace):
    """The native publisher's wait callback: called with "memory" while the
    budget holds a publish back; an exception it raises ends the publish and
    is raised by it (the path Ctrl-C and ConnectionBlockedTimeout take)."""
    ns = shmq._native.Namespace(namespace, BUDGET)
    ns.declare_queue("flow")
    publisher = ns.publisher()
    reasons: List[str] = []

    class Stop(Exception):
        pass

    def on_wait(reason: str) -> None:
        reasons.append(reason)
        if len(reasons) == 3:
            raise Stop("enough")

    publisher.set_wait_callback(on_wait)
    body = b"." * BODY
    sent = 0
    with pytest.raises(Stop, match="enough"):
        for _ in range(COUNT):
            assert publisher.publish("", "flow", body) == 1
            sent += 1
    assert reasons == ["memory"] * 3
    assert 64 <= sent < COUNT // 2
    assert publisher.is_blocked()
    # The interrupted message was not published.
    assert ns.queue_stats("flow")["ready"] == sent
