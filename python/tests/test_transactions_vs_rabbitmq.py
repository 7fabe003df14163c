"""Channel transactions (`tx_select`/`tx_commit`/`tx_rollback`) and a
channel after a channel error, differentially against pika + RabbitMQ
3.10 (issue 15): publishes and acks take effect at commit, a rollback drops
them (the message stays unacked), misuse is refused in RabbitMQ's words,
and a channel closed by an error raises `ChannelWrongStateError` after.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict

from differential import both, drain, error_kind, masked, outcome



def transactions(connection: Any) -> Dict[str, Any]:
    s = uuid.uuid4().hex[:8]
    q = f"tx-{s}"
    ch = connection.channel()
    ch.queue_declare(q)
    count = lambda: ch.queue_declare(q, passive=True).method.message_count  # noqa: E731
    seen: Dict[str, Any] = {}
    tx = connection.channel()
    tx.tx_select()
    tx.basic_publish("", q, b"rolled back")
    tx.tx_rollback()
    tx.basic_publish("", q, b"committed")
    seen["ready before the commit"] = count()
    tx.tx_commit()
    seen["ready after the commit"] = count()
    ch.basic_publish("", q, b"second")
    first, _p, _b = tx.basic_get(q)
    second, _p, _b = tx.basic_get(q)
    tx.basic_ack(first.delivery_tag)
    tx.tx_rollback()
    tx.basic_ack(second.delivery_tag)
    tx.tx_commit()
    tx.close()
    seen["after the transactional channel closed"] = drain(ch, q)
    seen["commit without select"] = outcome(lambda: connection.channel().tx_commit())
    confirming = connection.channel()
    confirming.confirm_delivery()
    seen["tx after confirm"] = outcome(lambda: confirming.tx_select())
    transactional = connection.channel()
    transactional.tx_select()
    seen["confirm after tx"] = outcome(lambda: transactional.confirm_delivery())
    bad = connection.channel()
    seen["a channel error"] = outcome(lambda: bad.queue_declare(f"nope-{s}", passive=True))
    seen["the channel after it"] = (bad.is_closed, error_kind(lambda: bad.basic_publish("", q, b"x")),
                                    error_kind(lambda: bad.queue_declare(q, passive=True)))
    connection.channel().queue_delete(q)
    return masked(seen, s)


def test_transactions_as_pika_with_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, transactions)
    for key in expected:
        assert got[key] == expected[key], key
    assert expected["ready before the commit"] == 0 and expected["ready after the commit"] == 1
    assert expected["after the transactional channel closed"] == [("committed", True)]
