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
