"""Channel errors where pika raises them, as pika's exceptions.
A purge of a missing queue is RabbitMQ's 404 (ChannelClosedByBroker, the
channel closes); unbinding what is not bound is fine in RabbitMQ 3.10; a
closed channel refuses start_consuming (ChannelWrongStateError)."""

from __future__ import annotations

import uuid
from typing import Any, Dict


def _kind(action: Any) -> Any:
    try:
        action()
        return "ok"
    except Exception as e:  # noqa: BLE001 - the class and reply code are compared
        return (type(e).__name__, getattr(e, "reply_code", None))


def errors(connection: Any) -> Dict[str, Any]:
    s = uuid.uuid4().hex[:8]
    seen: Dict[str, Any] = {}
    ch = connection.channel()
    seen["queue_purge of a missing queue"] = _kind(lambda: ch.queue_purge(f"missing-{s}"))
    seen["channel open after"] = ch.is_open
    ch = connection.channel()
    seen["exchange_unbind of a missing exchange"] = _kind(lambda: ch.exchange_unbind(f"x-{s}", "amq.direct"))
    seen["start_consuming on a closed channel"] = _kind(ch.start_consuming if not ch.is_open else
                                                        (lambda: (ch.close(), ch.start_consuming())))
    return seen


def test_channel_errors_as_pika(rabbitmq: Any, namespace: str) -> None:
    from differential import both

    expected, got = both(rabbitmq, namespace, errors)
    assert expected == {"queue_purge of a missing queue": ("ChannelClosedByBroker", 404), "channel open after": False,
                        "exchange_unbind of a missing exchange": "ok",
                        "start_consuming on a closed channel": ("ChannelWrongStateError", None)}
    assert got == expected
