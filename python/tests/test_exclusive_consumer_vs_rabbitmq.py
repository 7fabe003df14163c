"""Exclusive consumers (`basic_consume(exclusive=True)`), differentially
against RabbitMQ 3.10: an exclusive consume of a queue that has a consumer
is refused, and so is any consume of a queue an exclusive consumer holds
(403 ACCESS_REFUSED "in exclusive use"); `basic_get` is no consumer and is
not refused; once the exclusive consumer is cancelled, others may consume.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict

from differential import both, outcome



def exclusive_consumers(connection: Any) -> Dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    busy, held = f"ex-busy-{suffix}", f"ex-held-{suffix}"
    ch = connection.channel()
    for q in (busy, held):
        ch.queue_declare(q)
    ch.basic_publish("", held, b"m")
    ch.basic_consume(busy, lambda *a: None, auto_ack=True)
    holder = connection.channel()
    tag = holder.basic_consume(held, lambda *a: None, exclusive=True)
    seen: Dict[str, Any] = {
        "exclusive on a busy queue": outcome(lambda: connection.channel().basic_consume(busy, lambda *a: None, exclusive=True)),
        "consume on a held queue": outcome(lambda: connection.channel().basic_consume(held, lambda *a: None)),
        "second exclusive on a held queue": outcome(lambda: connection.channel().basic_consume(held, lambda *a: None,
                                                                                             exclusive=True)),
    }
    getter = connection.channel()
    seen["basic_get on a held queue"] = outcome(lambda: getter.basic_get(held, auto_ack=True))
    holder.basic_cancel(tag)
    seen["consume after the cancel"] = outcome(lambda: connection.channel().basic_consume(held, lambda *a: None))
    cleanup = connection.channel()
    for q in (busy, held):
        cleanup.queue_delete(q)
    return {k: v if v == "ok" else (v[0], v[1].replace(suffix, "*")) for k, v in seen.items()}


def test_exclusive_consumers_as_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, exclusive_consumers)
    assert got == expected
    assert expected["exclusive on a busy queue"] == (403, "ACCESS_REFUSED - queue 'ex-busy-*' in vhost '/' in exclusive use")
    assert expected["consume on a held queue"] == (403, "ACCESS_REFUSED - queue 'ex-held-*' in vhost '/' in exclusive use")
    assert expected["consume after the cancel"] == "ok"


# A process that declares an exclusive queue (pika against RabbitMQ, or
# shmq's pika API), says its name, and waits to be killed.
EXCLUSIVE_OWNER = """
import sys, time
if sys.argv[1] == "shmq":
    import shmq
    connection = shmq.BlockingConnection(shmq.ConnectionParameters(namespace=sys.argv[2]))
else:
    import pika
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", int(sys.argv[2])))
print(connection.channel().queue_declare("", exclusive=True).method.queue, flush=True)
time.sleep(60)
"""


def after_the_owner_died(connection: Any, queue: str) -> Dict[str, Any]:
    ch = connection.channel()
    seen = {"passive declare": outcome(lambda: ch.queue_declare(queue, passive=True))}
    ch = connection.channel()
    ch.confirm_delivery()
    seen["mandatory publish"] = outcome(lambda: ch.basic_publish("", queue, b"x", mandatory=True))
    return {k: v if v == "ok" else (v[0], v[1].replace(queue, "*")) for k, v in seen.items()}


def test_an_exclusive_queue_goes_with_its_killed_owner_as_in_rabbitmq(rabbitmq, namespace):
    """kill -9 of the declaring process: RabbitMQ deletes the queue when the
    connection drops; shmq at once on the next look (not only at the next
    routing-table change)."""
    import signal
    import subprocess
    import sys
    import time

    from differential import on_rabbitmq, on_shmq

    def owner_killed(*args: str) -> str:
        proc = subprocess.Popen([sys.executable, "-c", EXCLUSIVE_OWNER, *args], stdout=subprocess.PIPE, text=True)
        try:
            queue = proc.stdout.readline().strip()
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert queue.startswith("amq.gen-"), queue
        return queue

    rabbit_queue = owner_killed("pika", str(rabbitmq.port))
    expected = None
    for _ in range(50):  # RabbitMQ notices the dropped connection shortly after
        expected = on_rabbitmq(rabbitmq, after_the_owner_died, queue=rabbit_queue)
        if expected["passive declare"] != "ok":
            break
        time.sleep(0.1)
    got = on_shmq(namespace, after_the_owner_died, queue=owner_killed("shmq", namespace))
    assert got == expected
    assert expected["passive declare"] == (404, "NOT_FOUND - no queue '*' in vhost '/'")
