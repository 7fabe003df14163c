"""Direct reply-to (`amq.rabbitmq.reply-to`), differentially against
RabbitMQ 3.10: an RPC client that consumes the pseudo-queue (auto ack) and
publishes requests with `reply_to="amq.rabbitmq.reply-to"` on the same
channel gets the server's replies without declaring a queue; the server
sees a routable `amq.rabbitmq.reply-to.…` address; a reply to a client
that is gone is dropped; misuse is refused in RabbitMQ's words.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List

import pika

import shmq
from differential import both, masked, outcome

REPLY_TO = "amq.rabbitmq.reply-to"



def direct_reply_to(connection: Any) -> Dict[str, Any]:
    api = shmq if isinstance(connection, shmq.BlockingConnection) else pika
    suffix = uuid.uuid4().hex[:8]
    rpc_queue = f"rpc-{suffix}"
    server = connection.channel()
    server.queue_declare(rpc_queue)
    addresses: List[str] = []

    def on_request(ch: Any, method: Any, props: Any, body: bytes) -> None:
        addresses.append(props.reply_to)
        ch.basic_publish("", props.reply_to, body.upper(), api.BasicProperties(correlation_id=props.correlation_id))
        ch.basic_ack(method.delivery_tag)

    server.basic_consume(rpc_queue, on_request)
    client = connection.channel()
    replies: List[Any] = []
    client.basic_consume(REPLY_TO, lambda _ch, m, p, b: replies.append((b.decode(), p.correlation_id, m.exchange,
                                                                        m.routing_key.startswith(REPLY_TO + "."),
                                                                        m.redelivered)), auto_ack=True)
    for i in range(3):
        client.basic_publish("", rpc_queue, f"ping-{i}".encode(), api.BasicProperties(reply_to=REPLY_TO, correlation_id=str(i)))
    for _ in range(100):
        if len(replies) >= 3:
            break
        connection.process_data_events(time_limit=0.05)
    seen: Dict[str, Any] = {
        "replies": replies,
        "server saw a routable address": [a.startswith(REPLY_TO + ".") and len(a) > len(REPLY_TO) + 1 for a in addresses],
        "one address per channel": len(set(addresses)) == 1,
    }
    # The client goes; a reply to it is dropped, nothing fails.
    client.close()
    seen["reply to a client that is gone"] = outcome(lambda: server.basic_publish("", addresses[0], b"late"))
    connection.process_data_events(time_limit=0.1)
    lone = connection.channel()
    # A round trip after the publish: RabbitMQ closes the channel
    # asynchronously; shmq refuses the publish itself.
    seen["publish without the reply consumer"] = outcome(lambda: [
        lone.basic_publish("", rpc_queue, b"x", api.BasicProperties(reply_to=REPLY_TO)),
        lone.queue_declare(rpc_queue, passive=True)])
    seen["reply consumer with manual ack"] = outcome(lambda: connection.channel().basic_consume(
        REPLY_TO, lambda *a: None, auto_ack=False))
    twice = connection.channel()
    twice.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    seen["second reply consumer on a channel"] = outcome(lambda: twice.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True))
    connection.channel().queue_delete(rpc_queue)
    return masked(seen, suffix)


def test_direct_reply_to_as_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, direct_reply_to)
    assert got == expected
    assert [r[0] for r in expected["replies"]] == ["PING-0", "PING-1", "PING-2"]
    assert expected["server saw a routable address"] == [True] * 3
