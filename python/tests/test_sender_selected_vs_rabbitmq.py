"""Sender-selected distribution (`CC` and `BCC` headers), differentially:
the same pika script against RabbitMQ 3.10 and shmq. A message published
to a direct exchange with routing key `a`, `CC: [b]` and `BCC: [c]`
reaches the queues bound to `a`, `b` and `c`, each once; `BCC` is removed
before delivery and `CC` kept; dead-lettered, its `x-death` routing-keys
list the key and the CC keys, and with `x-dead-letter-routing-key` set the
copy loses `CC` (it is routed by that key alone).
"""

from __future__ import annotations

import uuid
from typing import Any, Dict

import pika

import shmq
from differential import both


def sender_selected(connection: Any) -> Dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    api = shmq if isinstance(connection, shmq.BlockingConnection) else pika
    ch = connection.channel()
    exchange = f"ssd-{suffix}"
    ch.exchange_declare(exchange, "direct")
    queues = {k: f"ssd-{k}-{suffix}" for k in ("a", "b", "c", "d", "dead")}
    ch.queue_declare(queues["dead"])
    for key in ("a", "b", "c", "d"):
        arguments = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queues["dead"]} if key == "b" else None
        ch.queue_declare(queues[key], arguments=arguments)
        ch.queue_bind(queues[key], exchange, routing_key=key)
    # `b` twice (as CC and BCC): still one copy.
    headers = {"CC": ["b"], "BCC": ["c", "b"], "app": "kept"}
    ch.basic_publish(exchange, "a", b"m", properties=api.BasicProperties(headers=headers))
    seen: Dict[str, Any] = {}
    for key in ("a", "b", "c", "d"):
        got = []
        while True:
            method, props, body = ch.basic_get(queues[key], auto_ack=key != "b")
            if method is None:
                break
            got.append((body.decode(), method.routing_key, {k: v for k, v in (props.headers or {}).items() if not k.startswith("x-")}))
            if key == "b":
                ch.basic_reject(method.delivery_tag, requeue=False)
        seen[key] = got
    connection.sleep(0.3)
    method, props, _ = ch.basic_get(queues["dead"], auto_ack=True)
    seen["x-death routing-keys"] = props.headers["x-death"][0]["routing-keys"] if method else None
    # Dead-lettered with x-dead-letter-routing-key: routed by that key alone.
    seen["dead copy's other headers"] = {k: v for k, v in (props.headers or {}).items() if not k.startswith("x-")} if method else None
    cleanup = connection.channel()
    for q in queues.values():
        cleanup.queue_delete(q)
    cleanup.exchange_delete(exchange)
    return seen


def test_cc_and_bcc_route_as_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, sender_selected)
    assert got == expected
    delivered = ("m", "a", {"CC": ["b"], "app": "kept"})
    assert expected == {"a": [delivered], "b": [delivered], "c": [delivered], "d": [], "x-death routing-keys": ["a", "b"],
                        "dead copy's other headers": {"app": "kept"}}
