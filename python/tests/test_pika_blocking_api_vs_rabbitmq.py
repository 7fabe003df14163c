"""pika's BlockingConnection / BlockingChannel calls beyond the tutorials,
differentially against real pika and RabbitMQ 3.10 (issue 15): exchange
bindings, consumer tags and `DuplicateConsumerTag`, the `consume()`
generator with `inactivity_timeout`, `get_waiting_message_count()` and
`cancel()`, `basic_recover`, `call_later`/`remove_timeout`,
`add_callback_threadsafe`, and the names pika code imports (`spec`,
`exchange_type.ExchangeType`, `PlainCredentials`, `exceptions`).
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Dict, List

import pika
import pika.exchange_type
import pika.spec

import shmq
from differential import both, drain, error_kind, outcome


def blocking_api(connection: Any) -> Dict[str, Any]:
    api = shmq if isinstance(connection, shmq.BlockingConnection) else pika
    s = uuid.uuid4().hex[:8]
    seen: Dict[str, Any] = {}
    ch = connection.channel()
    q = f"api-{s}"
    ch.queue_declare(q)

    # Exchange-to-exchange bindings.
    src, dst = f"src-{s}", f"dst-{s}"
    ch.exchange_declare(src, api.exchange_type.ExchangeType.topic)
    ch.exchange_declare(dst, api.exchange_type.ExchangeType.fanout)
    ch.queue_bind(q, dst)
    ch.exchange_bind(dst, src, "a.*")
    ch.basic_publish(src, "a.b", b"through", api.spec.BasicProperties(delivery_mode=api.spec.PERSISTENT_DELIVERY_MODE))
    ch.basic_publish(src, "z.b", b"not-through")
    ch.exchange_unbind(dst, src, "a.*")
    ch.basic_publish(src, "a.c", b"after-unbind")
    method, props, body = ch.basic_get(q, auto_ack=True)
    seen["exchange bindings"] = [(body.decode(), props.delivery_mode)] + [(b, None) for b, _again in drain(ch, q)]

    # Consumer tags.
    tags = connection.channel()
    tags.basic_consume(q, lambda *a: None, consumer_tag="mine")
    try:
        tags.basic_consume(q, lambda *a: None, consumer_tag="mine")
        seen["duplicate tag"] = "accepted"
    except api.exceptions.DuplicateConsumerTag as e:
        seen["duplicate tag"] = type(e).__name__
    seen["consumer tags"] = list(tags.consumer_tags)
    tags.basic_cancel("mine")
    seen["consumer tags after cancel"] = list(tags.consumer_tags)

    # The consume() generator.
    for i in range(5):
        ch.basic_publish("", q, f"m{i}".encode())
    gen_ch = connection.channel()
    taken = []
    for method, props, body in gen_ch.consume(q, inactivity_timeout=1):
        taken.append(body.decode())
        gen_ch.basic_ack(method.delivery_tag)
        if len(taken) == 2:
            break
    connection.process_data_events(time_limit=0.3)
    seen["taken by the generator"] = taken
    seen["waiting in the generator"] = gen_ch.get_waiting_message_count()
    seen["requeued by cancel"] = gen_ch.cancel()
    seen["back in the queue"] = drain(ch, q)
    idle = connection.channel()
    seen["an idle generator yields"] = [next(idle.consume(q, inactivity_timeout=0.2))]
    idle.cancel()

    # basic_recover: what the channel holds comes back.
    ch.basic_publish("", q, b"held")
    holder = connection.channel()
    method, _props, _body = holder.basic_get(q)
    holder.basic_recover(requeue=True)
    method, _props, body = ch.basic_get(q, auto_ack=True)
    seen["recovered"] = (body.decode() if body else None, method.redelivered if method else None)

    # Timers and callbacks from other threads.
    events: List[str] = []
    connection.call_later(0.05, lambda: events.append("timer"))
    cancelled = connection.call_later(0.05, lambda: events.append("removed timer"))
    connection.remove_timeout(cancelled)
    seen["remove_timeout of a removed handle"] = error_kind(lambda: connection.remove_timeout(cancelled))
    seen["remove_timeout of a non-handle"] = error_kind(lambda: connection.remove_timeout(object()))
    worker = threading.Thread(target=lambda: connection.add_callback_threadsafe(lambda: events.append("from a thread")))
    worker.start()
    worker.join()
    for _ in range(20):
        connection.process_data_events(time_limit=0.05)
        if len(events) >= 2:
            break
    connection.process_data_events(time_limit=0.1)
    seen["callbacks"] = sorted(events)
    seen["remove_timeout of a handle that ran"] = error_kind(lambda: connection.remove_timeout(cancelled))
    seen["credentials"] = outcome(lambda: api.PlainCredentials("guest", "guest"))

    cleanup = connection.channel()
    cleanup.queue_delete(q)
    cleanup.exchange_delete(src)
    cleanup.exchange_delete(dst)
    return seen


def test_blocking_api_as_pika_with_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, blocking_api)
    for key in expected:
        assert got[key] == expected[key], key
    assert expected["exchange bindings"] == [("through", 2)]
    assert expected["requeued by cancel"] == 0 and expected["taken by the generator"] == ["m0", "m1"]
    assert expected["waiting in the generator"] == 3 and [b for b, again in expected["back in the queue"] if again] == ["m2", "m3", "m4"]
    assert expected["an idle generator yields"] == [(None, None, None)]


def recover_without_requeue(connection: Any, q: str) -> Dict[str, Any]:
    """RabbitMQ implements basic.recover only with requeue: without, it
    closes the connection (540), and what the connection held comes back."""
    api = shmq if isinstance(connection, shmq.BlockingConnection) else pika
    ch = connection.channel()
    ch.queue_declare(q)
    ch.basic_publish("", q, b"held")
    ch.basic_get(q)
    seen: Dict[str, Any] = {}
    try:
        ch.basic_recover(requeue=False)
        seen["recover(requeue=False)"] = "ok"
    except api.exceptions.ConnectionClosedByBroker as e:
        seen["recover(requeue=False)"] = (type(e).__name__, e.reply_code, e.reply_text, e.args)
    seen["open after"] = (connection.is_open, ch.is_open)
    seen["a new channel"] = error_kind(connection.channel)
    seen["close again"] = error_kind(connection.close)
    return seen


def left_in(connection: Any, q: str) -> Any:
    ch = connection.channel()
    left = drain(ch, q)
    ch.queue_delete(q)
    return left


def test_recover_without_requeue_closes_the_connection_as_rabbitmq(rabbitmq, namespace):
    q = f"recover-{uuid.uuid4().hex[:8]}"
    expected, got = both(rabbitmq, namespace, recover_without_requeue, q=q)
    assert got == expected
    assert both(rabbitmq, namespace, left_in, q=q) == ([("held", True)], [("held", True)])
    assert expected["recover(requeue=False)"] == ("ConnectionClosedByBroker", 540, "NOT_IMPLEMENTED - requeue=false",
                                                  (540, "NOT_IMPLEMENTED - requeue=false"))
    assert expected["open after"] == (False, False) and expected["a new channel"] == "ConnectionWrongStateError"


def server_named(connection: Any) -> Dict[str, Any]:
    """queue_declare('') names the queue (amq.gen-...), exclusive or not."""
    ch = connection.channel()
    shared = ch.queue_declare("", durable=False).method.queue
    own = ch.queue_declare("", exclusive=True).method.queue
    return {"names": [n.startswith("amq.gen-") and len(n) > len("amq.gen-") for n in (shared, own)],
            "distinct": shared != own, "queues": (shared, own)}


def still_there(connection: Any, queues: Any) -> Dict[str, Any]:
    ch = connection.channel()
    seen = {"shared": outcome(lambda: ch.queue_declare(queues[0], passive=True))}
    ch = connection.channel() if not ch.is_open else ch
    seen["exclusive"] = outcome(lambda: ch.queue_declare(queues[1], passive=True))[0]
    if seen["shared"] == "ok":
        connection.channel().queue_delete(queues[0])
    return seen


def test_server_named_queues_exclusive_or_not_as_rabbitmq(rabbitmq, namespace):
    from differential import on_rabbitmq, on_shmq

    expected, got = on_rabbitmq(rabbitmq, server_named), on_shmq(namespace, server_named)
    assert {k: v for k, v in got.items() if k != "queues"} == {k: v for k, v in expected.items() if k != "queues"}
    assert expected["names"] == [True, True]
    # After the declaring connection closed: the non-exclusive one stays.
    after = (on_rabbitmq(rabbitmq, still_there, queues=expected["queues"]),
             on_shmq(namespace, still_there, queues=got["queues"]))
    assert after[1] == after[0] == {"shared": "ok", "exclusive": 404}
