"""Runs one pika script against the private RabbitMQ (real pika) and against
shmq's pika API, for the differential tests (test_*_vs_rabbitmq.py). The
script gets a `BlockingConnection` and returns what it observed."""

from __future__ import annotations

import multiprocessing
import traceback
from typing import Any, Callable, Dict, List, Tuple

import pytest

import shmq


def on_rabbitmq(rabbitmq: Any, script: Callable[..., Any], **kwargs: Any) -> Any:
    connection = rabbitmq.connect()
    try:
        return script(connection, **kwargs)
    finally:
        if connection.is_open:
            connection.close()


def on_shmq(namespace: str, script: Callable[..., Any], timeout: float = 30, **kwargs: Any) -> Any:
    """Runs `script` against shmq in a forked child, so that a hang (a
    publish that blocks for good, say) fails the test instead of the
    suite."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def child() -> None:
        try:
            with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
                sender.send(("returned", script(connection, **kwargs)))
        except BaseException:  # noqa: BLE001 - reported to the parent as text
            sender.send(("raised", traceback.format_exc()))

    process = context.Process(target=child, daemon=True)
    process.start()
    try:
        if not receiver.poll(timeout):
            pytest.fail(f"the shmq side did not finish within {timeout:.0f} s", pytrace=False)
        outcome, value = receiver.recv()
    finally:
        process.kill()
        process.join()
    if outcome == "raised":
        pytest.fail(f"the shmq side raised:\n{value}", pytrace=False)
    return value


def both(rabbitmq: Any, namespace: str, script: Callable[..., Any], **kwargs: Any) -> Any:
    """The script's observations on RabbitMQ and on shmq: (expected, got)."""
    return on_rabbitmq(rabbitmq, script, **kwargs), on_shmq(namespace, script, **kwargs)


def outcome(action: Callable[[], Any]) -> Any:
    """What `action` came to: "ok", or the channel error's (reply code,
    reply text), the same on both sides (pika's ChannelClosedByBroker and
    shmq's)."""
    try:
        action()
        return "ok"
    except Exception as e:  # noqa: BLE001 - ChannelClosedByBroker on both sides
        return (getattr(e, "reply_code", None), str(getattr(e, "reply_text", e)))


def masked(seen: Dict[str, Any], text: str) -> Dict[str, Any]:
    """`seen` with `text` (a per-run suffix) shown as `*` in the reply texts
    of its outcomes, so that two runs compare equal."""
    return {k: v if not isinstance(v, tuple) else (v[0], v[1].replace(text, "*")) for k, v in seen.items()}


def error_kind(action: Callable[[], Any]) -> str:
    """"ok", or the class name of what `action` raised (pika's and shmq's
    exception classes share their names)."""
    try:
        action()
        return "ok"
    except Exception as e:  # noqa: BLE001 - the exception's class is what is compared
        return type(e).__name__


def drain(channel: Any, queue: str) -> List[Tuple[str, bool]]:
    """Every message left in `queue`, taken with basic_get (auto ack), as
    (body, redelivered)."""
    taken = []
    while True:
        method, _props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return taken
        taken.append((body.decode(), method.redelivered))
