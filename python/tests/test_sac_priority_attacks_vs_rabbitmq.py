"""Single active consumer, priority queues and consumer priorities in
corners found by review, differentially against RabbitMQ 3.10: cancelling
the active consumer while it holds a message, an exclusive consumer of a
single-active-consumer queue, x-max-priority 0 in redeclares, consumer
priorities on a single-active-consumer queue. Each differed before its
fix."""

from __future__ import annotations

import uuid
from typing import Any, Dict, List

from differential import both, masked, outcome


def outcome(action: Any) -> Any:
    try:
        action()
        return "ok"
    except Exception as e:  # noqa: BLE001 - ChannelClosedByBroker on both sides
        return (getattr(e, "reply_code", None), str(getattr(e, "reply_text", e)).split(" in vhost")[0])


def cancel_active_holding_unacked(connection: Any) -> Dict[str, Any]:
    """The active consumer is cancelled (basic.cancel, channel kept open)
    while it holds one message unacked. RabbitMQ activates the next consumer
    at once; the held message stays with the cancelled consumer's channel."""
    queue = f"sac-cancel-{uuid.uuid4().hex[:8]}"
    setup = connection.channel()
    setup.queue_declare(queue, arguments={"x-single-active-consumer": True})
    got: List[Any] = []
    held: Dict[str, int] = {}
    channels: Dict[str, Any] = {}
    tags: Dict[str, str] = {}
    for name in ("c1", "c2"):
        ch = connection.channel()
        ch.basic_qos(prefetch_count=1)

        def on_message(c: Any, method: Any, _props: Any, body: bytes, name: str = name) -> None:
            got.append((name, body.decode(), method.redelivered))
            if name == "c1":
                held[name] = method.delivery_tag
            else:
                c.basic_ack(method.delivery_tag)

        tags[name] = ch.basic_consume(queue, on_message)
        channels[name] = ch

    def pump(count: int) -> None:
        for _ in range(60):
            if len(got) >= count:
                break
            connection.process_data_events(time_limit=0.05)
        connection.process_data_events(time_limit=0.2)

    setup.basic_publish("", queue, b"m1")
    pump(1)
    channels["c1"].basic_cancel(tags["c1"])
    setup.basic_publish("", queue, b"m2")
    pump(2)
    seen = {"after cancelling the active consumer": list(got)}
    channels["c1"].basic_ack(held["c1"])
    connection.channel().queue_delete(queue)
    return seen


def test_cancelling_the_active_consumer_hands_over_at_once(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, cancel_active_holding_unacked)
    assert expected["after cancelling the active consumer"] == [("c1", "m1", False), ("c2", "m2", False)]
    assert got == expected


def exclusive_on_single_active(connection: Any) -> Dict[str, Any]:
    """basic.consume with exclusive on a single-active-consumer queue."""
    queue = f"sac-excl-{uuid.uuid4().hex[:8]}"
    connection.channel().queue_declare(queue, arguments={"x-single-active-consumer": True})
    seen = {
        "exclusive consumer": outcome(lambda: connection.channel().basic_consume(queue, lambda *a: None, exclusive=True)),
        "then a plain one": outcome(lambda: connection.channel().basic_consume(queue, lambda *a: None)),
    }
    connection.channel().queue_delete(queue)
    return masked(seen, queue)


def test_exclusive_consume_on_a_single_active_consumer_queue_as_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, exclusive_on_single_active)
    assert got == expected


def max_priority_zero(connection: Any) -> Dict[str, Any]:
    """x-max-priority 0 is a valid argument, and part of the queue's
    equivalence: redeclaring without it (or adding it) is refused."""
    suffix = uuid.uuid4().hex[:8]
    zero, plain = f"prio0-{suffix}", f"plain-{suffix}"
    connection.channel().queue_declare(zero, arguments={"x-max-priority": 0})
    connection.channel().queue_declare(plain)
    seen = {
        "zero redeclared without": outcome(lambda: connection.channel().queue_declare(zero)),
        "plain redeclared with zero": outcome(lambda: connection.channel().queue_declare(plain, arguments={"x-max-priority": 0})),
    }
    cleanup = connection.channel()
    cleanup.queue_delete(zero)
    cleanup.queue_delete(plain)
    return masked(seen, suffix)


def test_max_priority_zero_is_part_of_declare_equivalence(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, max_priority_zero)
    assert [v[0] for v in expected.values()] == [406, 406]
    assert [v if v == "ok" else v[0] for v in got.values()] == [406, 406], got


def single_active_with_consumer_priority(connection: Any) -> Dict[str, Any]:
    """A single-active-consumer queue; the second consumer has x-priority 10."""
    queue = f"sac-xprio-{uuid.uuid4().hex[:8]}"
    setup = connection.channel()
    setup.queue_declare(queue, arguments={"x-single-active-consumer": True})
    got: List[Any] = []
    for name, arguments in (("first", None), ("higher", {"x-priority": 10})):
        ch = connection.channel()
        ch.basic_qos(prefetch_count=10)
        ch.basic_consume(queue, lambda c, m, p, b, name=name: (got.append((name, b.decode())), c.basic_ack(m.delivery_tag)),
                         arguments=arguments)
    for body in ("m1", "m2"):
        setup.basic_publish("", queue, body.encode())
    for _ in range(40):
        if len(got) >= 2:
            break
        connection.process_data_events(time_limit=0.05)
    connection.channel().queue_delete(queue)
    return {"deliveries": got}


def test_consumer_priority_on_a_single_active_consumer_queue_as_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, single_active_with_consumer_priority)
    assert expected["deliveries"] == [("first", "m1"), ("first", "m2")]
    assert got == expected
