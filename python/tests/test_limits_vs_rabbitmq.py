"""Queue length limits, differentially: one pika script (`scenario`) runs
against a private RabbitMQ 3.10 with real pika and against shmq's pika API,
and what each observer saw must be equal.

What RabbitMQ 3.10.8 (Debian 12's rabbitmq-server, Erlang 25, pika 1.4.4)
did, as observed by this harness. N = x-max-length, B = x-max-length-bytes
(body bytes of ready messages); "held" = deliveries a manual-ack consumer
holds unacked while the publishes happen; publishes use confirm_delivery().

  family                        | publishes                          | ready messages afterwards
  ------------------------------+------------------------------------+----------------------------------------------
  N, x-overflow absent or       | all confirmed (N = 0 too)          | the newest N, oldest dropped (N = 0: none)
  "drop-head" (same results)    |                                    |
  N, "reject-publish"           | the first N confirmed, each later  | the first N
                                | one raises pika's NackError: str   |
                                | "0 message(s) NACKed", .messages [] |
  B, absent or "drop-head"      | all confirmed                      | oldest dropped until bytes <= B, the new one
                                |                                    | counted: a body larger than B empties the
                                |                                    | queue, itself included (and is confirmed)
  B, "reject-publish"           | nacked iff ready bytes + its size  | the accepted ones; a later smaller message
                                | > B (exactly B is accepted)        | still fits
  any, with 1-2 held            | held messages never count: every result equals the one without held
                                | messages, and message_count leaves them out
  held, nack(requeue=True) into | drop-head: the requeued go back to the head (redelivered) and the
  a queue full again            | head is dropped to the limit again, so they go first (with B, only as
                                | many as needed); reject-publish: the requeue ignores the limit
                                | (N + held ready), requeued first with redelivered=True
  "reject-publish", no confirms | basic_publish returns None, the refusal is silent; same contents
  invalid arguments             | negative or string N/B, unknown x-overflow: ChannelClosedByBroker 406;
                                | redeclaring with x-overflow "drop-head" a queue declared without it: 406
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import pytest

import shmq

import differential

# ------------------------------------------------------------------ the script


def length_body(i: int) -> bytes:
    return b"m-%d" % i


def sized_body(i: int) -> bytes:
    """1 to 7 bytes (at least the digits of i), so byte limits fall between messages."""
    return (b"%d" % i).ljust(1 + (i * 3) % 7, b".")


def _outcome(publish: Callable[[], Any]) -> Any:
    """What a publish showed its caller: its return value, or the
    exception's class name, text and returned messages (pika's NackError
    and UnroutableError carry `.messages`)."""
    try:
        return ("ok", publish())
    except Exception as e:  # noqa: BLE001 - the exception itself is the observation
        return (type(e).__name__, str(e), len(getattr(e, "messages", None) or []))


def _drain(channel: Any, queue: str) -> List[Any]:
    got = []
    while True:
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return got
        got.append((body, method.redelivered))


def scenario(channel_factory: Callable[[], Any], queue: str, arguments: Dict[str, Any], bodies: List[bytes],
             held: int = 0, confirm: bool = True) -> Dict[str, Any]:
    """Declares `queue` with `arguments`; if `held`, publishes that many
    messages and lets a manual-ack consumer (prefetch `held`) take and hold
    them; publishes `bodies` (with publisher confirms if `confirm`); reads message_count and
    drains the queue with basic_get. With held messages it then nacks them
    with requeue and reads the queue again. Deletes the queue.

    Written against pika's BlockingChannel API: only `channel_factory`
    (`connection.channel`) differs between RabbitMQ and shmq."""
    seen: Dict[str, Any] = {}
    channel = channel_factory()
    if confirm:
        seen["confirm_delivery"] = channel.confirm_delivery()
    seen["declare"] = channel.queue_declare(queue=queue, arguments=arguments).method.message_count
    consumer_channel = None
    if held:
        for i in range(held):
            channel.basic_publish(exchange="", routing_key=queue, body=b"h-%d" % i)
        consumer_channel = channel_factory()
        consumer_channel.basic_qos(prefetch_count=held)
        taken: List[Any] = []

        def on_message(ch: Any, method: Any, _properties: Any, body: bytes) -> None:
            taken.append((body, method.redelivered))
            if len(taken) == held:
                ch.stop_consuming()

        consumer_channel.basic_consume(queue=queue, on_message_callback=on_message, auto_ack=False)
        consumer_channel.start_consuming()
        seen["held"] = taken
    seen["publishes"] = [_outcome(lambda b=b: channel.basic_publish(exchange="", routing_key=queue, body=b))
                         for b in bodies]
    # Without confirms RabbitMQ's publishes are casts to the queue process,
    # which a passive declare's `stat` call can overtake (it counted 0 of 3
    # accepted messages here); a basic_get from the same channel cannot. So
    # one basic_get first, then the count (plus what it took), then the rest.
    first = channel.basic_get(queue, auto_ack=True)
    taken_first = [] if first[0] is None else [(first[2], first[0].redelivered)]
    seen["message_count"] = (channel.queue_declare(queue=queue, passive=True).method.message_count
                             + len(taken_first))
    seen["drained"] = taken_first + _drain(channel, queue)
    if consumer_channel is not None:
        # Fill the queue again, then requeue the held messages into it.
        seen["publishes_again"] = [
            _outcome(lambda b=b: channel.basic_publish(exchange="", routing_key=queue, body=b)) for b in bodies]
        consumer_channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)
        # On RabbitMQ the requeue is a cast to the queue process, and a
        # passive declare's `stat` call jumps ahead of casts (gen_server2
        # priorities), so it can miss the requeue; a basic_get from the same
        # channel cannot. So: one basic_get, then the count, then the rest.
        first = consumer_channel.basic_get(queue, auto_ack=True)
        seen["first_after_requeue"] = None if first[0] is None else (first[2], first[0].redelivered)
        seen["message_count_after_requeue"] = consumer_channel.queue_declare(queue=queue, passive=True).method.message_count
        seen["drained_after_requeue"] = _drain(consumer_channel, queue)
        consumer_channel.close()
    channel.queue_delete(queue=queue)
    channel.close()
    return seen


# ------------------------------------------------------------------ the sides


def on_rabbitmq(rabbitmq: Any, script: Callable[..., Any], **kwargs: Any) -> Any:
    """`script` gets a channel factory here."""
    return differential.on_rabbitmq(rabbitmq, lambda connection, **kw: script(connection.channel, **kw), **kwargs)


def on_shmq(namespace: str, script: Callable[..., Any], timeout: float = 60, **kwargs: Any) -> Any:
    """As `on_rabbitmq`, against shmq in a forked child (a publish that
    blocks for good fails the test instead of hanging the suite)."""
    return differential.on_shmq(namespace, lambda connection, **kw: script(connection.channel, **kw), timeout, **kwargs)


# ------------------------------------------------------------------ the cases


def _cases() -> List[Any]:
    cases = []
    overflows: List[Optional[str]] = [None, "drop-head", "reject-publish"]
    for limit_arg, limit, bodies in (
        [("x-max-length", n, [length_body(i) for i in range(n + 3)]) for n in (0, 1, 3, 10, 1000)]
        + [("x-max-length-bytes", 10, [sized_body(i) for i in range(8)]),
           ("x-max-length-bytes", 1000, [sized_body(i) for i in range(300)]),
           # a body larger than the whole limit, between small ones
           ("x-max-length-bytes", 10, [b"a", b"bb", b"ccc", b"0123456789AB", b"d", b"ee"])]
    ):
        for overflow in overflows:
            for held in sorted({0, min(limit, 2)}):
                arguments: Dict[str, Any] = {limit_arg: limit}
                if overflow is not None:
                    arguments["x-overflow"] = overflow
                oversize = any(len(b) > limit for b in bodies) and limit_arg == "x-max-length-bytes"
                name = f"{limit_arg}={limit}{'-oversize' if oversize else ''}-{overflow or 'default'}-held{held}"
                cases.append(pytest.param(dict(queue=f"limits-{name}", arguments=arguments, bodies=bodies, held=held),
                                          id=name))
    # Without confirms a refused publish is silent on RabbitMQ.
    for limit_arg, limit, bodies in [("x-max-length", 3, [length_body(i) for i in range(6)]),
                                     ("x-max-length-bytes", 10, [sized_body(i) for i in range(8)])]:
        name = f"{limit_arg}={limit}-reject-publish-no-confirms"
        cases.append(pytest.param(dict(queue=f"limits-{name}", arguments={limit_arg: limit, "x-overflow": "reject-publish"},
                                       bodies=bodies, confirm=False), id=name))
    return cases


@pytest.mark.parametrize("case", _cases())
def test_queue_limits_match_rabbitmq(rabbitmq, namespace, case):
    expected = on_rabbitmq(rabbitmq, scenario, **case)
    assert on_shmq(namespace, scenario, **case) == expected


# ------------------------------------------------------ the arguments themselves


def declare_outcomes(channel_factory: Callable[[], Any], queue: str) -> List[Any]:
    """Declares `queue` with valid and invalid limit arguments, one channel
    per attempt (a refused declare closes the channel on RabbitMQ); returns
    "ok" or the exception's class name and reply code for each."""
    attempts = [
        {"x-max-length": -1},
        {"x-max-length": "3"},
        {"x-max-length-bytes": -5},
        {"x-overflow": "bogus"},
        {"x-max-length": 3},
        {"x-max-length": 4},                             # redeclared with another limit
        {"x-max-length": 3, "x-overflow": "drop-head"},  # the default, but stated
        {"x-max-length": 3},
    ]
    seen = []
    for arguments in attempts:
        channel = channel_factory()
        try:
            channel.queue_declare(queue=queue, arguments=arguments)
            seen.append("ok")
        except Exception as e:  # noqa: BLE001 - the exception itself is the observation
            seen.append((type(e).__name__, getattr(e, "reply_code", None)))
    channel = channel_factory()
    if "ok" in seen:
        seen.append(_outcome(lambda: [channel.queue_delete(queue=queue), "deleted"][1]))
    channel.close()
    return seen


def test_limit_arguments_are_checked_as_rabbitmq_does(rabbitmq, namespace):
    expected = on_rabbitmq(rabbitmq, declare_outcomes, queue="limits-arguments")
    assert on_shmq(namespace, declare_outcomes, queue="limits-arguments") == expected
