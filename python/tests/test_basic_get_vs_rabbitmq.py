"""`basic.get` is not a consumer, differentially against RabbitMQ 3.10: after
a `basic_get` (its message still unacked), `queue_declare` reports no
consumer and one unacked message is not ready; an auto-delete queue read
only by `basic_get` is not deleted when the channel closes.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict

from differential import both


def get_is_no_consumer(connection: Any) -> Dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    q, auto = f"get-{suffix}", f"get-auto-{suffix}"
    ch = connection.channel()
    ch.queue_declare(q)
    ch.queue_declare(auto, auto_delete=True)
    for target in (q, q, auto):
        ch.basic_publish("", target, b"m")
    method, _, _ = ch.basic_get(q)
    ch.basic_get(auto, auto_ack=True)
    declared = ch.queue_declare(q, passive=True).method
    seen: Dict[str, Any] = {"after get": (declared.message_count, declared.consumer_count)}
    ch.basic_ack(method.delivery_tag)
    ch.close()
    probe = connection.channel()
    seen["auto-delete queue after the channel closed"] = probe.queue_declare(auto, passive=True).method.consumer_count
    probe.queue_delete(q)
    probe.queue_delete(auto)
    return seen


def test_basic_get_is_not_a_consumer_as_in_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, get_is_no_consumer)
    assert got == expected
    assert expected == {"after get": (1, 0), "auto-delete queue after the channel closed": 0}
