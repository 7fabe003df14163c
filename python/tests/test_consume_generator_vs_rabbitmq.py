"""The consume() generator, against pika + RabbitMQ 3.10. A
generator whose queue is deleted ends (pika stops on the broker's
basic.cancel); an inactivity_timeout is a real period of inactivity, not cut
short by a timer or another consumer's delivery."""

from __future__ import annotations

import time
import uuid
from typing import Any, List

from differential import both


def queue_deleted(connection: Any) -> List[Any]:
    q = f"gen-{uuid.uuid4().hex[:8]}"
    ch, other = connection.channel(), connection.channel()
    ch.queue_declare(q)
    ch.basic_publish("", q, b"1")
    seen: List[Any] = []
    for i, (method, _props, body) in enumerate(ch.consume(q, inactivity_timeout=0.3)):
        seen.append(None if method is None else body.decode())
        if i == 0:
            other.queue_delete(q)
        if i > 4:
            seen.append("still yielding")
            break
    return seen


def test_generator_ends_when_its_queue_is_deleted(rabbitmq: Any, namespace: str) -> None:
    expected, got = both(rabbitmq, namespace, queue_deleted)
    assert expected == ["1"]
    assert got == expected


def timer_during_wait(connection: Any) -> float:
    q = f"gen-{uuid.uuid4().hex[:8]}"
    ch = connection.channel()
    ch.queue_declare(q)
    connection.call_later(0.2, lambda: None)
    start = time.monotonic()
    for _method, _props, _body in ch.consume(q, inactivity_timeout=1.5):
        return round(time.monotonic() - start, 1)
    return -1.0


def test_inactivity_timeout_is_not_cut_short_by_a_timer(rabbitmq: Any, namespace: str) -> None:
    expected, got = both(rabbitmq, namespace, timer_during_wait)
    assert expected >= 1.4
    assert got >= 1.4, f"(None, None, None) after {got} s of a 1.5 s inactivity_timeout"


def consume_with_consumer_tag(connection: Any) -> Any:
    q = f"gen-{uuid.uuid4().hex[:8]}"
    ch = connection.channel()
    ch.queue_declare(q)
    next(ch.consume(q, inactivity_timeout=0, consumer_tag="mine"))  # pika 1.3+
    return ch.consumer_tags


def test_consume_takes_consumer_tag(rabbitmq: Any, namespace: str) -> None:
    expected, got = both(rabbitmq, namespace, consume_with_consumer_tag)
    assert got == expected == ["mine"]
