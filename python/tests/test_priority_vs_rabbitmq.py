"""Priority queues (`x-max-priority`), differentially against RabbitMQ 3.10:
the same pika script publishes messages of random priorities (none, within
the max, above it) and reads them back with `basic_get` and with a
consumer; a requeued message comes back first, flagged redelivered; and
wrong values and redeclares fail with RabbitMQ's words.
"""

from __future__ import annotations

import random
import uuid
from typing import Any, Dict, List

import pika

from differential import both, masked, outcome



def priorities(connection: Any) -> Dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    queue = f"prio-{suffix}"
    ch = connection.channel()
    ch.queue_declare(queue, arguments={"x-max-priority": 10})
    rng = random.Random(7)
    seen: Dict[str, Any] = {}

    def publish_all(count: int) -> None:
        for i in range(count):
            priority = rng.choice([None, 0, 1, 2, 5, 9, 10, 11, 255])
            ch.basic_publish("", queue, f"{i}:{priority}".encode(), pika.BasicProperties(priority=priority))

    publish_all(120)
    got: List[str] = []
    while True:
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            break
        got.append(body.decode())
    seen["basic_get order"] = got

    publish_all(60)
    consumed: List[Any] = []

    def on_message(channel: Any, method: Any, props: Any, body: bytes) -> None:
        consumed.append((body.decode(), props.priority, method.redelivered))
        if len(consumed) == 1:
            channel.basic_nack(method.delivery_tag, requeue=True)
        else:
            channel.basic_ack(method.delivery_tag)

    consumer = connection.channel()
    consumer.basic_qos(prefetch_count=1)
    consumer.basic_consume(queue, on_message)
    for _ in range(200):
        if len(consumed) >= 61:
            break
        connection.process_data_events(time_limit=0.05)
    seen["consumer order"] = consumed

    plain = f"prio-zero-{suffix}"
    ch.queue_declare(plain, arguments={"x-max-priority": 0})
    for p in (1, 5, None, 3):
        ch.basic_publish("", plain, f"p{p}".encode(), pika.BasicProperties(priority=p))
    seen["x-max-priority 0"] = [ch.basic_get(plain, auto_ack=True)[2] for _ in range(4)]

    for name, value in (("too high", 256), ("negative", -1), ("text", "high")):
        seen[name] = outcome(lambda v=value: connection.channel().queue_declare(f"prio-bad-{suffix}", arguments={"x-max-priority": v}))
    seen["redeclared with another max"] = outcome(lambda: connection.channel().queue_declare(queue, arguments={"x-max-priority": 5}))
    seen["redeclared without"] = outcome(lambda: connection.channel().queue_declare(queue))
    cleanup = connection.channel()
    cleanup.queue_delete(queue)
    cleanup.queue_delete(plain)
    return masked(seen, suffix)


def test_priority_queues_as_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, priorities)
    for key in expected:
        assert got[key] == expected[key], key
    assert got == expected
    # Not vacuous: the order is by priority, not by publish.
    order = expected["basic_get order"]
    assert len(order) == 120 and order != sorted(order, key=lambda s: int(s.split(":")[0]))
    assert expected["consumer order"][1][2] is True  # the nacked one came back first
