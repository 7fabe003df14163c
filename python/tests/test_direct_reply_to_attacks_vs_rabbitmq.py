"""Direct reply-to in corners found by review, against RabbitMQ 3.10: a
40 KiB reply reaches the client, and a reply consumer going away deletes
no one else's exchange. Both failed before their fix."""

from __future__ import annotations

import uuid
from typing import Any, Dict, List

import pika

import shmq
from differential import both

REPLY_TO = "amq.rabbitmq.reply-to"


def rpc_with_reply_of(connection: Any, size: int) -> Dict[str, Any]:
    api = shmq if isinstance(connection, shmq.BlockingConnection) else pika
    rpc = f"rpc-{uuid.uuid4().hex[:8]}"
    server = connection.channel()
    server.queue_declare(rpc)

    def on_request(ch: Any, method: Any, props: Any, body: bytes) -> None:
        ch.basic_publish("", props.reply_to, b"r" * size, api.BasicProperties(correlation_id=props.correlation_id))
        ch.basic_ack(method.delivery_tag)

    server.basic_consume(rpc, on_request)
    client = connection.channel()
    replies: List[int] = []
    errors: List[str] = []
    client.basic_consume(REPLY_TO, lambda _ch, _m, _p, body: replies.append(len(body)), auto_ack=True)
    client.basic_publish("", rpc, b"request", api.BasicProperties(reply_to=REPLY_TO, correlation_id="1"))
    for _ in range(60):
        if replies:
            break
        try:
            connection.process_data_events(time_limit=0.05)
        except Exception as e:  # noqa: BLE001 - shmq raises the lost reply as "corrupt"
            errors.append(type(e).__name__)
            break
    connection.channel().queue_delete(rpc)
    return {"replies": replies, "errors": errors}


def test_a_40k_reply_reaches_the_client(rabbitmq, namespace):
    """A 40 000-byte reply (half to all of the reply queue's 64 KiB first
    ring, REPLY_QUEUE_BYTES) is published without error, then the client's
    process_data_events raises ShmqError "slot 0 of the queue is corrupt"
    and the reply is gone. Any reply of 32-64 KiB is lost this way; the root
    cause (a record over half a ring is claimed but never readable) loses
    4-8 MiB messages in default queues too."""
    expected, got = both(rabbitmq, namespace, rpc_with_reply_of, size=40_000)
    assert expected == {"replies": [40_000], "errors": []}
    assert got == expected


def reply_consumer_closes(connection: Any) -> Dict[str, Any]:
    x = f"events-{uuid.uuid4().hex[:8]}"
    connection.channel().exchange_declare(x, "fanout", auto_delete=True)
    client = connection.channel()
    client.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    client.close()
    try:
        connection.channel().exchange_declare(x, passive=True)
        found = True
    except Exception:  # noqa: BLE001 - 404 on shmq
        found = False
    if found:
        connection.channel().exchange_delete(x)
    return {"auto-delete exchange still there": found}


def test_a_reply_consumer_going_does_not_delete_others_exchanges(rabbitmq, namespace):
    """Closing a channel that consumed amq.rabbitmq.reply-to deletes its
    reply queue, and every queue deletion (Table::remove_queue ->
    remove_unused_auto_delete_exchanges) deletes all auto-delete exchanges
    that have no binding yet, though RabbitMQ deletes one only when its
    last binding goes. So every RPC client that finishes deletes other
    applications' freshly declared auto-delete exchanges."""
    expected, got = both(rabbitmq, namespace, reply_consumer_closes)
    assert expected == {"auto-delete exchange still there": True}
    assert got == expected
