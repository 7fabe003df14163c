"""Returned messages (`basic_publish(mandatory=True)` that reaches no
queue), differentially against pika + RabbitMQ 3.10 (issue 15): without
publisher confirms the publish raises nothing and the channel's
`add_on_return_callback` callbacks get the message (reply code 312
`NO_ROUTE`) from the next `process_data_events`; with confirms the
publish raises `UnroutableError`. A routable mandatory message is simply
delivered.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List

import pika

import shmq
from differential import both, error_kind



def returns(connection: Any) -> Dict[str, Any]:
    api = shmq if isinstance(connection, shmq.BlockingConnection) else pika
    s = uuid.uuid4().hex[:8]
    x, q = f"rx-{s}", f"rq-{s}"
    ch = connection.channel()
    ch.exchange_declare(x, "direct")
    ch.queue_declare(q)
    ch.queue_bind(q, x, "known")
    returned: List[Any] = []
    ch.add_on_return_callback(lambda _ch, method, props, body: returned.append(
        (method.reply_code, method.reply_text, method.exchange, method.routing_key, props.correlation_id, body)))
    seen: Dict[str, Any] = {
        "unroutable, no confirms": error_kind(lambda: ch.basic_publish(x, "unknown", b"lost", api.BasicProperties(correlation_id="c1"),
                                                                 mandatory=True)),
        "routable, no confirms": error_kind(lambda: ch.basic_publish(x, "known", b"kept", mandatory=True)),
    }
    for _ in range(10):
        connection.process_data_events(time_limit=0.05)
        if returned:
            break
    seen["returned"] = [(r[0], r[1], r[2].replace(s, "*"), r[3], r[4], bytes(r[5])) for r in returned]
    seen["delivered"] = ch.queue_declare(q, passive=True).method.message_count
    confirming = connection.channel()
    confirming.confirm_delivery()
    confirmed: List[Any] = []
    confirming.add_on_return_callback(lambda *a: confirmed.append(a[1].reply_code))
    seen["unroutable, confirms"] = error_kind(lambda: confirming.basic_publish(x, "unknown", b"x", mandatory=True))
    connection.process_data_events(time_limit=0.1)
    seen["returned under confirms"] = confirmed
    cleanup = connection.channel()
    cleanup.queue_delete(q)
    cleanup.exchange_delete(x)
    return {k: (v.replace(s, "*") if isinstance(v, str) else v) for k, v in seen.items()}


def test_returns_as_pika_with_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, returns)
    for key in expected:
        assert got[key] == expected[key], key
    assert expected["unroutable, no confirms"] == "ok" and len(expected["returned"]) == 1
