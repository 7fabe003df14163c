"""`queue.delete` with `if_unused` and `if_empty`, differentially: the same
pika script against RabbitMQ 3.10 and shmq. A queue with a consumer is
refused under `if_unused`, one with messages under `if_empty` (406, the
channel closes), and deleted otherwise; deleting a queue that does not
exist succeeds, as in RabbitMQ; `message_count` says what was deleted.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict

from differential import both


def deletes(connection: Any) -> Dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    seen: Dict[str, Any] = {}
    ch = connection.channel()
    busy, full, idle = (f"del-{n}-{suffix}" for n in ("busy", "full", "idle"))
    for q in (busy, full, idle):
        ch.queue_declare(q)
    ch.basic_consume(busy, lambda *a: None, auto_ack=True)
    ch.basic_publish("", full, b"one")
    ch.basic_publish("", full, b"two")
    for name, q, kw in (("busy if_unused", busy, {"if_unused": True}), ("full if_empty", full, {"if_empty": True}),
                        ("full if_unused", full, {"if_unused": True}), ("idle both", idle, {"if_unused": True, "if_empty": True}),
                        ("missing", f"del-missing-{suffix}", {})):
        probe = connection.channel()
        try:
            seen[name] = ("deleted", probe.queue_delete(q, **kw).method.message_count)
        except Exception as e:  # noqa: BLE001 - ChannelClosedByBroker on both sides
            seen[name] = (getattr(e, "reply_code", None), str(getattr(e, "reply_text", e)).replace(suffix, "*"))
    connection.channel().queue_delete(busy)
    return seen


def test_queue_delete_conditions_as_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, deletes)
    assert got == expected
    assert expected == {
        "busy if_unused": (406, "PRECONDITION_FAILED - queue 'del-busy-*' in vhost '/' in use"),
        "full if_empty": (406, "PRECONDITION_FAILED - queue 'del-full-*' in vhost '/' not empty"),
        "full if_unused": ("deleted", 2),
        "idle both": ("deleted", 0),
        "missing": ("deleted", 0),
    }
