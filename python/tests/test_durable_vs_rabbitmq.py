"""The durable flag on redeclare, compared with RabbitMQ 3.10: exchanges
refuse a redeclare with another durable flag in RabbitMQ's words, and
exclusive queues are never durable. Both differed before their fix."""

from __future__ import annotations

import uuid
from typing import Any, Dict

from differential import both, outcome



def exchange_redeclares(connection: Any) -> Dict[str, Any]:
    x = f"x-{uuid.uuid4().hex[:8]}"
    connection.channel().exchange_declare(x, "direct", durable=True)
    seen = {
        "durable=False": outcome(lambda: connection.channel().exchange_declare(x, "direct", durable=False)),
        "amq.direct durable=False": outcome(lambda: connection.channel().exchange_declare("amq.direct", "direct", durable=False)),
    }
    connection.channel().exchange_delete(x)
    return {k: v if not isinstance(v, tuple) else (v[0], v[1].replace(x, "X")) for k, v in seen.items()}


def test_exchange_durable_redeclare_is_refused_in_rabbitmqs_words(rabbitmq, namespace):
    """3cea2db compares an exchange's durable flag on redeclare, but the
    refusal is shmq's own sentence ("exchange 'X' already exists as direct,
    durable, but this declare asks for direct: ...") where RabbitMQ (and so
    code that parses it) says "inequivalent arg 'durable' for exchange 'X'
    in vhost '/': received 'false' but current is 'true'". The same holds
    for type, auto_delete and internal: the queue side has
    python/src/lib.rs `inequivalent`, exchanges have nothing like it."""
    expected, got = both(rabbitmq, namespace, exchange_redeclares)
    assert got == expected


def exclusive_redeclares(connection: Any) -> Dict[str, Any]:
    q = f"excl-{uuid.uuid4().hex[:8]}"
    ch = connection.channel()
    ch.queue_declare(q, exclusive=True, durable=True)
    seen = {"exclusive, durable then not": outcome(lambda: ch.queue_declare(q, exclusive=True, durable=False))}
    ch.queue_delete(q)
    return {k: v if not isinstance(v, tuple) else (v[0], v[1].replace(q, "Q")) for k, v in seen.items()}


def test_an_exclusive_queue_is_never_durable(rabbitmq, namespace):
    """RabbitMQ makes an exclusive queue non-durable whatever the declare
    says (rabbit_channel: Durable andalso not Exclusive), so redeclaring it
    with the other durable flag is fine there; shmq stores the flag as
    given (f638b4e) and refuses with 406 inequivalent arg 'durable'."""
    expected, got = both(rabbitmq, namespace, exclusive_redeclares)
    assert got == expected
