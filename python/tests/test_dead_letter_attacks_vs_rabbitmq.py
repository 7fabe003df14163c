"""Attacks on dead-lettering from an adversarial review, as pika scripts
run against RabbitMQ 3.10 and against shmq's pika API (the harness of
test_dead_letter_vs_rabbitmq.py): a dead-letter fanout with one full queue
gives one copy per queue with room, not one per retry; a queue TTL over
RabbitMQ's limit is refused as RabbitMQ refuses it."""

from __future__ import annotations

import uuid
from typing import Any

from differential import both


def fanout_dlx_with_one_full_queue(connection: Any, suffix: str) -> Any:
    """A message expires in `work`; its dead-letter exchange fans out to
    `a` (room) and `b` (x-max-length 1, reject-publish, full). How many
    copies reach `a` within 1.5 s?"""
    ch = connection.channel()
    dlx, a, b, work = (f"{n}-{suffix}" for n in ("dlx", "a", "b", "work"))
    ch.exchange_declare(dlx, "fanout")
    ch.queue_declare(a)
    ch.queue_declare(b, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.queue_bind(a, dlx)
    ch.queue_bind(b, dlx)
    ch.basic_publish("", b, b"filler")
    ch.queue_declare(work, arguments={"x-message-ttl": 50, "x-dead-letter-exchange": dlx})
    ch.basic_publish("", work, b"dies once")
    connection.sleep(1.5)
    copies = 0
    while ch.basic_get(a, auto_ack=True)[0] is not None:
        copies += 1
    left = ch.queue_declare(work, passive=True).method.message_count
    for q in (a, b, work):
        ch.queue_delete(q)
    ch.exchange_delete(dlx)
    return {"copies in a": copies, "left in work": left}


def test_one_dead_message_is_one_copy_per_queue(rabbitmq: Any, namespace: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    expected, got = both(rabbitmq, namespace, fanout_dlx_with_one_full_queue, suffix=suffix)
    # RabbitMQ 3.10: {'copies in a': 1, 'left in work': 0}
    assert got == expected


def huge_queue_ttl(connection: Any, suffix: str) -> Any:
    """x-message-ttl of 2^48 ms. RabbitMQ 3.10: 406 value_too_large (its
    limit is 2^32 - 1). shmq takes it, and then every message published to
    the queue expires at once (now + ttl overflows into the requeue-count
    bits of the slot's expiry word)."""
    ch = connection.channel()
    q = f"ttl-{suffix}"
    try:
        ch.queue_declare(q, arguments={"x-message-ttl": 2 ** 48})
    except Exception as e:  # noqa: BLE001 - ChannelClosedByBroker on both sides
        return ("refused", getattr(e, "reply_code", None))
    ch.basic_publish("", q, b"m")
    connection.sleep(0.2)
    body = ch.basic_get(q, auto_ack=True)[2]
    ch.queue_delete(q)
    return ("declared", body)


def test_a_huge_queue_ttl_is_refused_not_an_immediate_expiry(rabbitmq: Any, namespace: str) -> None:
    expected, got = both(rabbitmq, namespace, huge_queue_ttl, suffix=uuid.uuid4().hex[:8])
    # RabbitMQ 3.10: ('refused', 406); shmq: ('declared', None) - the message is gone.
    assert got == expected
