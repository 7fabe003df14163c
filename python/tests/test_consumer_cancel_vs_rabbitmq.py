"""A consumer whose queue is deleted is cancelled, differentially against
RabbitMQ 3.10: the channel's on-cancel callbacks get a `Basic.Cancel`
naming the consumer, the consumer is gone, and `start_consuming` returns
once no consumer is left.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict

from differential import both


def cancelled_by_delete(connection: Any) -> Dict[str, Any]:
    q = f"cancel-{uuid.uuid4().hex[:8]}"
    ch = connection.channel()
    ch.queue_declare(q)
    seen: Dict[str, Any] = {"cancelled": []}
    ch.add_on_cancel_callback(lambda frame: seen["cancelled"].append((frame.method.NAME, frame.method.consumer_tag)))
    tag = ch.basic_consume(q, lambda *a: None, auto_ack=True, consumer_tag="the-consumer")
    connection.channel().queue_delete(q)
    ch.start_consuming()  # returns: its only consumer was cancelled
    seen["tag"] = tag
    seen["channel open"] = ch.is_open
    return seen


def test_deleting_the_queue_cancels_its_consumer_as_rabbitmq_does(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, cancelled_by_delete)
    assert got == expected
    assert expected == {"cancelled": [("Basic.Cancel", "the-consumer")], "tag": "the-consumer", "channel open": True}
