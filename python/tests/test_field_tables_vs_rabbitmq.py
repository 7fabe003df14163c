"""AMQP field tables in message headers, differentially against RabbitMQ
3.10: every type pika sends (str, bytes, ints of 32 and 64 bits, bool,
None, decimal.Decimal, datetime, nested dicts and lists) comes back from a
queue as the same Python value, and of the same type, on both. (pika 1.4.4
cannot encode a float header; shmq's pika layer can, a superset.)
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any, Dict

import pika

import shmq
from differential import both

HEADERS: Dict[str, Any] = {
    "text": "héllo",
    "raw": b"\x00\xff",
    "small": -5,
    "large": 2 ** 40,
    "yes": True,
    "nothing": None,
    "price": decimal.Decimal("12.34"),
    "whole": decimal.Decimal("100"),
    "negative": decimal.Decimal("-0.5"),
    "when": datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.timezone.utc),
    "nested": {"list": [1, "two", [3, {"deep": decimal.Decimal("0.001")}]], "empty": {}},
}


def round_trip(connection: Any) -> Dict[str, Any]:
    q = f"fields-{uuid.uuid4().hex[:8]}"
    api = shmq if isinstance(connection, shmq.BlockingConnection) else pika
    ch = connection.channel()
    ch.queue_declare(q)
    ch.basic_publish("", q, b"m", properties=api.BasicProperties(headers=HEADERS))
    _, props, _ = ch.basic_get(q, auto_ack=True)
    ch.queue_delete(q)

    def typed(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: typed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [typed(v) for v in value]
        return (type(value).__name__, value)

    return typed(props.headers)


def test_field_tables_round_trip_as_through_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, round_trip)
    assert got == expected
    assert expected["price"] == ("Decimal", decimal.Decimal("12.34"))
    assert expected["large"] == ("long", 2 ** 40)  # pika's long: an int whose repr ends in L
