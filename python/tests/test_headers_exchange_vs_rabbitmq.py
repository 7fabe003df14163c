"""The headers exchange's four `x-match` modes, differentially: the same pika
script binds queues with `all`, `any`, `all-with-x` and `any-with-x` and
publishes messages with and without `x-` headers, against RabbitMQ 3.10
and against shmq; which queues got which messages must be the same. In the
plain modes `x-` binding arguments are ignored; in the `-with-x` modes they
take part. An `x-match` RabbitMQ does not know is refused at bind.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List

import pika

import shmq
from differential import both

MODES = ["all", "any", "all-with-x", "any-with-x"]
MESSAGES = {
    "format-only": {"format": "pdf"},
    "both": {"format": "pdf", "x-tenant": "acme"},
    "x-only": {"x-tenant": "acme"},
    "wrong-x": {"format": "pdf", "x-tenant": "other"},
    "none": {},
}


def route_by_headers(connection: Any) -> Dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    ch = connection.channel()
    exchange = f"hx-{suffix}"
    ch.exchange_declare(exchange, "headers")
    queues = {}
    for mode in MODES:
        q = f"hx-{mode}-{suffix}"
        ch.queue_declare(q)
        ch.queue_bind(q, exchange, arguments={"x-match": mode, "format": "pdf", "x-tenant": "acme"})
        queues[mode] = q
    api = shmq if isinstance(connection, shmq.BlockingConnection) else pika
    for name, headers in MESSAGES.items():
        ch.basic_publish(exchange, "", name.encode(), properties=api.BasicProperties(headers=headers) if headers else None)
    got: Dict[str, List[str]] = {}
    for mode, q in queues.items():
        got[mode] = []
        while True:
            method, _, body = ch.basic_get(q, auto_ack=True)
            if method is None:
                break
            got[mode].append(body.decode())
    refused: Any = "bound"
    probe = connection.channel()
    try:
        probe.queue_bind(queues["all"], exchange, arguments={"x-match": "sometimes"})
    except Exception as e:  # noqa: BLE001 - ChannelClosedByBroker on both sides
        refused = getattr(e, "reply_code", type(e).__name__)
    cleanup = connection.channel()
    for q in queues.values():
        cleanup.queue_delete(q)
    cleanup.exchange_delete(exchange)
    return {"got": got, "bad x-match": refused}


def test_headers_exchange_matches_as_rabbitmq_does(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, route_by_headers)
    assert got == expected
    assert expected["got"] == {
        "all": ["format-only", "both", "wrong-x"],
        "any": ["format-only", "both", "wrong-x"],
        "all-with-x": ["both"],
        "any-with-x": ["format-only", "both", "x-only", "wrong-x"],
    }
    assert expected["bad x-match"] == 406
