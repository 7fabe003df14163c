"""A transaction whose commit fails does nothing, as RabbitMQ's:
RabbitMQ refuses an unknown (or already acked) delivery tag when the ack is
sent, closing the channel, so nothing of the transaction is carried out.
(shmq checked tags only while committing, after the earlier steps ran,
before the fix found by review.)"""

from __future__ import annotations

import time
import uuid
from typing import Any, Dict

from differential import both, drain, outcome



def failed_commit(connection: Any) -> Dict[str, Any]:
    q = f"txa-{uuid.uuid4().hex[:8]}"
    ch = connection.channel()
    ch.queue_declare(q)
    seen: Dict[str, Any] = {}
    tx = connection.channel()
    tx.tx_select()
    tx.basic_publish("", q, b"published in the failed transaction")
    tx.basic_ack(999)
    seen["commit"] = outcome(tx.tx_commit)[0]
    time.sleep(0.2)
    seen["queue after unknown tag"] = [body for body, _again in drain(ch, q)]

    ch.basic_publish("", q, b"M")
    tx = connection.channel()
    tx.tx_select()
    method, _props, _body = tx.basic_get(q)
    tx.basic_publish("", q, b"B")
    tx.basic_ack(method.delivery_tag)
    tx.basic_ack(method.delivery_tag)
    seen["commit of a double ack"] = outcome(tx.tx_commit)[0]
    time.sleep(0.2)
    seen["queue after double ack"] = [body for body, _again in drain(ch, q)]
    return seen


def test_failed_commit_carries_out_nothing(rabbitmq: Any, namespace: str) -> None:
    expected, got = both(rabbitmq, namespace, failed_commit)
    assert expected == {"commit": 406, "queue after unknown tag": [], "commit of a double ack": 406,
                        "queue after double ack": ["M"]}
    assert got == expected
