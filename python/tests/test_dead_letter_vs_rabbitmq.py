"""Dead-lettering, delivery limits, x-expires and queue-argument checks,
differentially: each pika script below runs against a private RabbitMQ 3.10
with real pika and against shmq's pika API, and what it observed must be
equal.

What RabbitMQ 3.10.8 (Debian 12's rabbitmq-server, Erlang 25, pika 1.4.4)
did, as observed by these scripts:

  case                              | observed
  ----------------------------------+--------------------------------------------------------------
  reject/nack, requeue=False        | the message goes to the dead-letter exchange with its body and
                                    | properties, the queue's x-dead-letter-routing-key or its own
                                    | routing key; x-death [{count 1, reason 'rejected', queue,
                                    | exchange, routing-keys [its keys], time}] and
                                    | x-first-death-reason/queue/exchange headers
  queue TTL, nobody consumes        | dead-lettered by the queue's timer, reason 'expired'
  per-message expiration            | the same, x-death has 'original-expiration' and the copy has no
                                    | expiration property (it does not expire again)
  x-max-length, drop-head           | the dropped head is dead-lettered, reason 'maxlen'
  reject-publish-dlx + confirms     | the publish raises NackError and the refused message is
                                    | dead-lettered, reason 'maxlen'
  quorum, x-delivery-limit N        | delivered N + 1 times; x-delivery-count: basic.get always (0
                                    | first), a consumer only on redeliveries (1, 2, ...); then
                                    | dead-lettered, reason 'delivery_limit'
  retry cycle work -> delay -> work | x-death keeps one entry per (queue, reason), the newest first,
                                    | counting; x-first-death-* stays the first death
  a cycle with no rejection         | the message is dropped
  x-expires                         | the unused queue is deleted: a passive declare gets 404
  invalid / inequivalent arguments  | 406 with the texts compared below

Times differ by nature: every x-death 'time' must be a UTC datetime within a
minute of now on both sides, and is then left out of the comparison.
"""

from __future__ import annotations

import datetime
import time
from typing import Any, Callable, Dict, List, Optional

import pytest

import shmq

from differential import both, on_rabbitmq, on_shmq  # noqa: E402,F401 - used by the scripts' tests


# ------------------------------------------------------- what a script records

LAST_DEATH = ("x-last-death-reason", "x-last-death-queue", "x-last-death-exchange")


def _recent(value: Any) -> bool:
    """An x-death 'time': a UTC datetime within a minute of now."""
    return (isinstance(value, datetime.datetime) and value.utcoffset() == datetime.timedelta(0)
            and abs((datetime.datetime.now(datetime.timezone.utc) - value).total_seconds()) < 60)


def observed_headers(headers: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """`headers` for comparison: each x-death entry's 'time' checked and
    replaced by the check's outcome, and x-last-death-* (which shmq sets and
    RabbitMQ 3.10 does not) moved under '(last-death)' to be compared
    separately (see `split_last_death`)."""
    out = dict(headers or {})
    if "x-death" in out:
        out["x-death"] = [dict(entry, time="recent" if _recent(entry.get("time")) else repr(entry.get("time")))
                          for entry in out["x-death"]]
    last = {k: out.pop(k) for k in LAST_DEATH if k in out}
    if last:
        out["(last-death)"] = last
    return out


def observed(method: Any, properties: Any, body: Optional[bytes]) -> Any:
    """What a consumer sees of one delivery (None: none)."""
    if method is None:
        return None
    return {"body": body, "exchange": method.exchange, "routing_key": method.routing_key,
            "redelivered": method.redelivered, "content_type": properties.content_type,
            "correlation_id": properties.correlation_id, "delivery_mode": properties.delivery_mode,
            "expiration": properties.expiration, "headers": observed_headers(properties.headers)}


def get_within(connection: Any, channel: Any, queue: str, seconds: float, auto_ack: bool = False) -> Any:
    """basic_get on `queue` until a message comes, at most `seconds`: what
    basic_get returned last. (RabbitMQ's queues take publishes and requeues
    asynchronously, a quorum queue's in particular.)"""
    deadline = time.monotonic() + seconds
    while True:
        got = channel.basic_get(queue, auto_ack=auto_ack)
        if got[0] is not None or time.monotonic() > deadline:
            return got
        connection.sleep(0.05)


def poll(connection: Any, channel: Any, queue: str, seconds: float = 5.0) -> Any:
    """basic_get (auto-ack) on `queue` until a message comes, at most
    `seconds`; what it saw, or None."""
    return observed(*get_within(connection, channel, queue, seconds, auto_ack=True))


def split_last_death(seen: Any) -> List[Any]:
    """Takes every '(last-death)' out of `seen` (nested dicts and lists) and
    returns them in order, each with the newest x-death entry of the same
    headers."""
    found: List[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "(last-death)" in value:
                found.append((value.pop("(last-death)"), (value.get("x-death") or [None])[0]))
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    walk(seen)
    return found


def assert_same(expected: Any, got: Any) -> None:
    """`got` (shmq) equals `expected` (RabbitMQ), but for the x-last-death-*
    headers: RabbitMQ 3.10 does not set them (3.13 does); shmq sets them on
    every dead-lettered message, naming its newest x-death entry."""
    assert split_last_death(expected) == [], "RabbitMQ 3.10.8 set x-last-death-*: drop this difference"
    ours = split_last_death(got)
    assert got == expected
    assert ours, "shmq set no x-last-death-*"
    for last, newest in ours:
        assert newest is not None and last == {"x-last-death-reason": newest["reason"], "x-last-death-queue": newest["queue"],
                                               "x-last-death-exchange": newest["exchange"]}


def _outcome(action: Callable[[], Any]) -> Any:
    try:
        return ("ok", action())
    except Exception as e:  # noqa: BLE001 - the exception itself is the observation
        return (type(e).__name__, getattr(e, "reply_code", None), getattr(e, "reply_text", str(e)))


def declare_dead_letter_queue(channel: Any, exchange: str, queue: str) -> None:
    """A fanout dead-letter exchange `exchange` and its queue `queue`."""
    channel.exchange_declare(exchange=exchange, exchange_type="fanout")
    channel.queue_declare(queue=queue)
    channel.queue_bind(queue=queue, exchange=exchange)


def cleanup(channel: Any, queues: List[str], exchanges: List[str] = ()) -> None:
    for q in queues:
        channel.queue_delete(queue=q)
    for x in exchanges:
        channel.exchange_delete(exchange=x)


# ------------------------------------------------------------------ the cases


def rejected_and_nacked(connection: Any) -> Any:
    """reject(requeue=False) through a fanout DLX; nack(requeue=False) by a
    consumer through the default exchange with x-dead-letter-routing-key."""
    seen: Dict[str, Any] = {}
    ch = connection.channel()
    declare_dead_letter_queue(ch, "dl-rj-dlx", "dl-rj-dead")
    ch.queue_declare(queue="dl-rj-work", arguments={"x-dead-letter-exchange": "dl-rj-dlx"})
    ch.queue_declare(queue="dl-rk-dead")
    ch.queue_declare(queue="dl-rk-work", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dl-rk-dead"})
    props = shmq_or_pika_properties(connection, content_type="text/plain", correlation_id="c-1", delivery_mode=2,
                                    headers={"app": "x", "nested": {"list": [1, "two", b"3"]}})
    ch.basic_publish(exchange="", routing_key="dl-rj-work", body=b"rejected", properties=props)
    method, _, _ = ch.basic_get("dl-rj-work")
    ch.basic_reject(method.delivery_tag, requeue=False)
    seen["reject"] = poll(connection, ch, "dl-rj-dead")
    seen["work-left"] = ch.basic_get("dl-rj-work")[0] is None

    ch.basic_publish(exchange="", routing_key="dl-rk-work", body=b"nacked", properties=props)
    consumer = connection.channel()
    consumer.basic_qos(prefetch_count=1)
    deliveries = []

    def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
        deliveries.append(observed(method, properties, body)["headers"])
        channel.basic_nack(method.delivery_tag, requeue=False)
        channel.stop_consuming()

    consumer.basic_consume("dl-rk-work", on_message)
    consumer.start_consuming()
    seen["nack-delivery-headers"] = deliveries
    seen["nack"] = poll(connection, ch, "dl-rk-dead")
    consumer.close()
    cleanup(ch, ["dl-rj-work", "dl-rj-dead", "dl-rk-work", "dl-rk-dead"], ["dl-rj-dlx"])
    return seen


def shmq_or_pika_properties(connection: Any, **kwargs: Any) -> Any:
    """BasicProperties of the library `connection` belongs to."""
    if isinstance(connection, shmq.BlockingConnection):
        return shmq.BasicProperties(**kwargs)
    import pika

    return pika.BasicProperties(**kwargs)


def test_rejected_and_nacked_messages_are_dead_lettered_as_rabbitmq_does(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, rejected_and_nacked)
    assert expected["reject"]["headers"]["x-death"][0]["reason"] == "rejected"  # the script saw what it tests
    assert_same(expected, got)


def expired(connection: Any) -> Any:
    """Queue TTL with nobody consuming the source queue, then a message's
    own expiration: both arrive in the dead-letter queue while a script
    polls it."""
    seen: Dict[str, Any] = {}
    ch = connection.channel()
    declare_dead_letter_queue(ch, "dl-ttl-dlx", "dl-ttl-dead")
    ch.queue_declare(queue="dl-ttl-work", arguments={"x-message-ttl": 300, "x-dead-letter-exchange": "dl-ttl-dlx"})
    ch.queue_declare(queue="dl-exp-work", arguments={"x-dead-letter-exchange": "dl-ttl-dlx"})
    published = time.monotonic()
    ch.basic_publish(exchange="", routing_key="dl-ttl-work", body=b"queue ttl")
    seen["queue-ttl"] = poll(connection, ch, "dl-ttl-dead")
    seen["not-before-the-ttl"] = time.monotonic() - published >= 0.3
    props = shmq_or_pika_properties(connection, expiration="300", correlation_id="own")
    published = time.monotonic()
    ch.basic_publish(exchange="", routing_key="dl-exp-work", body=b"own ttl", properties=props)
    seen["message-expiration"] = poll(connection, ch, "dl-ttl-dead")
    seen["not-before-the-expiration"] = time.monotonic() - published >= 0.3
    seen["sources-empty"] = [ch.basic_get(q)[0] is None for q in ("dl-ttl-work", "dl-exp-work")]
    cleanup(ch, ["dl-ttl-work", "dl-exp-work", "dl-ttl-dead"], ["dl-ttl-dlx"])
    return seen


def test_expired_messages_are_dead_lettered_without_a_consumer_as_rabbitmq_does(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, expired)
    death = expected["message-expiration"]["headers"]["x-death"][0]
    assert (death["reason"], death["original-expiration"], expected["message-expiration"]["expiration"]) == ("expired", "300", None)
    assert_same(expected, got)


def maxlen(connection: Any) -> Any:
    """drop-head dead-letters the dropped head; reject-publish-dlx nacks the
    publish (under confirms) and dead-letters the refused message."""
    seen: Dict[str, Any] = {}
    ch = connection.channel()
    declare_dead_letter_queue(ch, "dl-max-dlx", "dl-max-dead")
    ch.queue_declare(queue="dl-max-head", arguments={"x-max-length": 2, "x-dead-letter-exchange": "dl-max-dlx"})
    ch.queue_declare(queue="dl-max-refuse", arguments={"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                                                       "x-dead-letter-exchange": "dl-max-dlx"})
    ch.confirm_delivery()
    seen["drop-head publishes"] = [_outcome(lambda i=i: ch.basic_publish(exchange="", routing_key="dl-max-head", body=b"h%d" % i))
                                   for i in range(4)]
    seen["drop-head dead"] = [poll(connection, ch, "dl-max-dead") for _ in range(2)]
    seen["drop-head kept"] = [ch.basic_get("dl-max-head", auto_ack=True)[2] for _ in range(3)]
    seen["refuse publishes"] = [_outcome(lambda i=i: ch.basic_publish(exchange="", routing_key="dl-max-refuse", body=b"r%d" % i))
                                for i in range(2)]
    seen["refuse dead"] = poll(connection, ch, "dl-max-dead")
    seen["refuse kept"] = [ch.basic_get("dl-max-refuse", auto_ack=True)[2] for _ in range(2)]
    cleanup(ch, ["dl-max-head", "dl-max-refuse", "dl-max-dead"], ["dl-max-dlx"])
    return seen


def test_length_limits_dead_letter_as_rabbitmq_does(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, maxlen)
    assert expected["refuse publishes"][1][0] == "NackError"
    assert_same(expected, got)


def delivery_limit(connection: Any) -> Any:
    """A quorum queue with x-delivery-limit 2: a poison message nacked with
    requeue by basic.get and by a consumer, the x-delivery-count headers
    each saw, and its death."""
    seen: Dict[str, Any] = {}
    ch = connection.channel()
    declare_dead_letter_queue(ch, "dl-lim-dlx", "dl-lim-dead")
    for q in ("dl-lim-get", "dl-lim-consume"):
        ch.queue_declare(queue=q, durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": 2,
                                                           "x-dead-letter-exchange": "dl-lim-dlx"})
    props = shmq_or_pika_properties(connection, headers={"job": 7})
    ch.confirm_delivery()
    ch.basic_publish(exchange="", routing_key="dl-lim-get", body=b"poison get", properties=props)
    gets = []
    for _ in range(5):
        method, properties, _ = get_within(connection, ch, "dl-lim-get", 0.5)
        if method is None:
            break
        gets.append((method.redelivered, properties.headers))
        ch.basic_nack(method.delivery_tag, requeue=True)
    seen["gets"] = gets
    seen["get dead"] = poll(connection, ch, "dl-lim-dead")

    ch.basic_publish(exchange="", routing_key="dl-lim-consume", body=b"poison consume", properties=props)
    consumer = connection.channel()
    consumer.basic_qos(prefetch_count=1)
    deliveries = []

    def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
        deliveries.append((method.redelivered, properties.headers))
        channel.basic_nack(method.delivery_tag, requeue=True)

    consumer.basic_consume("dl-lim-consume", on_message)
    dead = None
    for _ in range(50):
        connection.process_data_events(time_limit=0.1)
        got = ch.basic_get("dl-lim-dead", auto_ack=True)
        if got[0] is not None:
            dead = observed(*got)
            break
    connection.process_data_events(time_limit=0.3)  # and no delivery after its death
    seen["consumed"] = deliveries
    seen["consume dead"] = dead
    consumer.close()
    cleanup(ch, ["dl-lim-get", "dl-lim-consume", "dl-lim-dead"], ["dl-lim-dlx"])
    return seen


def test_a_quorum_queue_dead_letters_past_its_delivery_limit_as_rabbitmq_does(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, delivery_limit)
    assert [h["x-delivery-count"] for _, h in expected["gets"]] == [0, 1, 2]
    assert [h.get("x-delivery-count") for _, h in expected["consumed"]] == [None, 1, 2]
    assert expected["consume dead"]["headers"]["x-death"][0]["reason"] == "delivery_limit"
    assert_same(expected, got)


def retry_cycle(connection: Any) -> Any:
    """work --rejected--> delay --expired (TTL)--> work, twice: the x-death
    record merged at every step; then a queue that expires into itself (a
    cycle with no rejection): the message is dropped."""
    seen: Dict[str, Any] = {}
    ch = connection.channel()
    ch.queue_declare(queue="dl-cyc-work", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dl-cyc-delay"})
    ch.queue_declare(queue="dl-cyc-delay", arguments={"x-message-ttl": 100, "x-dead-letter-exchange": "",
                                                      "x-dead-letter-routing-key": "dl-cyc-work"})
    ch.basic_publish(exchange="", routing_key="dl-cyc-work", body=b"job",
                     properties=shmq_or_pika_properties(connection, headers={"try": 1}))
    arrivals = []
    deadline = time.monotonic() + 10
    while len(arrivals) < 3 and time.monotonic() < deadline:
        method, properties, body = ch.basic_get("dl-cyc-work")
        if method is None:
            connection.sleep(0.05)
            continue
        arrivals.append(observed(method, properties, body))
        if len(arrivals) < 3:
            ch.basic_reject(method.delivery_tag, requeue=False)
        else:
            ch.basic_ack(method.delivery_tag)
    seen["arrivals"] = arrivals
    seen["delay-empty"] = ch.basic_get("dl-cyc-delay")[0] is None

    ch.queue_declare(queue="dl-cyc-self", arguments={"x-message-ttl": 100, "x-dead-letter-exchange": ""})
    ch.basic_publish(exchange="", routing_key="dl-cyc-self", body=b"loop")
    connection.sleep(0.6)
    seen["self-cycle"] = [ch.basic_get("dl-cyc-self", auto_ack=True)[0] is None,
                          ch.queue_declare(queue="dl-cyc-self", passive=True).method.message_count]
    cleanup(ch, ["dl-cyc-work", "dl-cyc-delay", "dl-cyc-self"])
    return seen


def test_x_death_merges_through_a_retry_cycle_and_a_cycle_without_rejection_drops_as_rabbitmq_does(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, retry_cycle)
    last = expected["arrivals"][2]["headers"]
    assert [(d["queue"], d["reason"], d["count"]) for d in last["x-death"]] == [
        ("dl-cyc-delay", "expired", 2), ("dl-cyc-work", "rejected", 2)]
    assert (last["x-first-death-queue"], last["x-first-death-reason"]) == ("dl-cyc-work", "rejected")
    assert expected["self-cycle"] == [True, 0]
    assert_same(expected, got)


def expires(connection: Any) -> Any:
    """x-expires 300 ms on four queues, watched for 1.2 s: one unused, one
    with a consumer, one polled with basic_get, one polled with passive
    declares. Which ones are left (a passive declare of a deleted one fails
    with 404)?"""
    ch = connection.channel()
    for q in ("dl-xp-unused", "dl-xp-used", "dl-xp-got", "dl-xp-passive"):
        ch.queue_declare(queue=q, arguments={"x-expires": 300})
    consumer = connection.channel()
    consumer.basic_consume("dl-xp-used", lambda *a: None)
    declared = time.monotonic()
    while time.monotonic() - declared < 1.2:
        _outcome(lambda: connection.channel().queue_declare(queue="dl-xp-passive", passive=True))
        ch.basic_get("dl-xp-got")
        connection.sleep(0.1)
    seen = {}
    for q in ("dl-xp-unused", "dl-xp-used", "dl-xp-got", "dl-xp-passive"):
        probe = connection.channel()  # a 404 closes the channel
        outcome = _outcome(lambda: probe.queue_declare(queue=q, passive=True).method.message_count)
        seen[q] = outcome[:2] + ((outcome[2].startswith("NOT_FOUND - "),) if outcome[0] != "ok" else ())
    consumer.close()
    cleanup(connection.channel(), [q for q, outcome in seen.items() if outcome[0] == "ok"])
    return seen


def test_x_expires_deletes_an_unused_queue_as_rabbitmq_does(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, expires)
    gone, kept = ("ChannelClosedByBroker", 404, True), ("ok", 0)
    assert expected == {"dl-xp-unused": gone, "dl-xp-used": kept, "dl-xp-got": kept, "dl-xp-passive": kept}
    # A passive declare renews the lease on both (RabbitMQ's `stat` re-arms
    # its expiry timer; shmq's passive declare marks the queue used).
    assert got == expected


# ------------------------------------------------------ the arguments themselves

# Each: (arguments, the argument refused). What both refuse with the same
# text, and what they refuse with texts whose differences the test asserts.
INVALID = [
    ({"x-expires": 0}, "x-expires"),
    ({"x-expires": -1}, "x-expires"),
    ({"x-message-ttl": -1}, "x-message-ttl"),
    ({"x-max-length": -2**40}, "x-max-length"),
    ({"x-max-length-bytes": -5}, "x-max-length-bytes"),
    ({"x-overflow": "bogus"}, "x-overflow"),
    ({"x-overflow": 3}, "x-overflow"),
    ({"x-overflow": None}, "x-overflow"),
    ({"x-queue-type": 5}, "x-queue-type"),
    ({"x-dead-letter-routing-key": "k"}, "x-dead-letter-routing-key"),
    ({"x-dead-letter-exchange": "d", "x-dead-letter-routing-key": 3}, "x-dead-letter-routing-key"),
    # The arguments are checked before a quorum queue's properties (this
    # one is not durable):
    ({"x-queue-type": "quorum", "x-expires": 0}, "x-expires"),
    # Texts that differ (see the test):
    ({"x-expires": "1"}, "x-expires"),
    ({"x-max-length": True}, "x-max-length"),
    ({"x-dead-letter-exchange": 5}, "x-dead-letter-exchange"),
    ({"x-queue-type": "bogus"}, "x-queue-type"),
]


def invalid_arguments(connection: Any) -> Any:
    seen = []
    for i, (arguments, _) in enumerate(INVALID):
        channel = connection.channel()  # a refused declare closes the channel
        seen.append(_outcome(lambda: channel.queue_declare(queue=f"dl-inv-{i}", arguments=arguments).method.queue))
    return seen


def test_invalid_arguments_are_refused_with_rabbitmqs_406(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, invalid_arguments)
    assert len(expected) == len(got) == len(INVALID)
    for i, ((arguments, arg), rabbit, ours) in enumerate(zip(INVALID, expected, got)):
        assert (rabbit[:2], ours[:2]) == (("ChannelClosedByBroker", 406),) * 2, (arguments, rabbit, ours)
        # The same code and the same words, RabbitMQ's, for every case:
        # "invalid type ..." for a name argument given a number,
        # "expected integer, got ..." (an Erlang string, quoted) for an
        # integer argument given another type, and the rest.
        assert ours == rabbit, (arguments, rabbit, ours)
        if arguments == {"x-dead-letter-exchange": 5}:
            assert rabbit[2] == f"PRECONDITION_FAILED - invalid type 'signedint' for arg '{arg}' in queue 'dl-inv-{i}' in vhost '/'"
        else:
            assert rabbit[2].startswith(f"PRECONDITION_FAILED - invalid arg '{arg}' for queue 'dl-inv-{i}' in vhost '/': ")


def shmq_only_refusals(connection: Any) -> Any:
    """Arguments RabbitMQ 3.10 accepts and shmq refuses, rather than ignore
    them (an unknown argument), or by design."""
    seen = []
    for i, (arguments, durable) in enumerate([({"x-queue-mode": "lazy"}, False), ({"x-queue-master-locator": "client-local"}, False),
                                              ({"x-queue-type": "stream"}, True)]):
        channel = connection.channel()
        seen.append(_outcome(lambda: [channel.queue_declare(queue=f"dl-only-{i}", durable=durable, arguments=arguments),
                                      channel.queue_delete(queue=f"dl-only-{i}")][1]))
    return seen


def test_arguments_rabbitmq_takes_and_shmq_does_not_implement_are_refused(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, shmq_only_refusals)
    assert [e[0] for e in expected] == ["ok"] * 3
    for arg, ours in zip(["x-queue-mode", "x-queue-master-locator", "x-queue-type"], got):
        assert ours[:2] == ("ChannelClosedByBroker", 406)
        assert ours[2].startswith(f"PRECONDITION_FAILED - invalid arg '{arg}' for queue "), ours
        assert "not supported by shmq" in ours[2], ours


def inequivalent(connection: Any) -> Any:
    """Redeclares with other arguments: RabbitMQ names the first that
    differs, in its own order per queue type."""
    seen = []
    ch = connection.channel()
    classic = {"x-max-length": 10, "x-dead-letter-exchange": "a"}
    ch.queue_declare(queue="dl-eq-classic", arguments=classic)
    quorum = {"x-queue-type": "quorum", "x-delivery-limit": 2, "x-dead-letter-exchange": "a"}
    ch.queue_declare(queue="dl-eq-quorum", durable=True, arguments=quorum)
    attempts = [
        ("dl-eq-classic", {"x-max-length": 20, "x-dead-letter-exchange": "a"}),
        ("dl-eq-classic", {"x-max-length": 10, "x-dead-letter-exchange": "b"}),
        ("dl-eq-classic", {"x-max-length": 10}),
        ("dl-eq-classic", dict(classic, **{"x-message-ttl": 5})),
        ("dl-eq-classic", dict(classic, **{"x-expires": 50000})),
        ("dl-eq-classic", dict(classic, **{"x-dead-letter-routing-key": "k"})),
        ("dl-eq-classic", dict(classic, **{"x-queue-type": "quorum"})),
        ("dl-eq-classic", dict(classic, **{"x-queue-type": "classic"})),
        ("dl-eq-classic", {"x-max-length": 11, "x-dead-letter-exchange": "b", "x-expires": 9000, "x-message-ttl": 1}),
        ("dl-eq-quorum", {"x-queue-type": "quorum", "x-dead-letter-exchange": "a"}),
        ("dl-eq-quorum", {"x-delivery-limit": 2, "x-dead-letter-exchange": "a"}),
        ("dl-eq-quorum", {"x-queue-type": "classic", "x-delivery-limit": 2, "x-dead-letter-exchange": "a"}),
        ("dl-eq-quorum", dict(quorum, **{"x-delivery-limit": 3})),
        ("dl-eq-quorum", dict(quorum, **{"x-delivery-limit": 3, "x-dead-letter-exchange": "b", "x-message-ttl": 5})),
        ("dl-eq-quorum", quorum),
        # A quorum queue is durable: a non-durable redeclare is compared on that first.
        ("dl-eq-quorum-transient", quorum),
        ("dl-eq-quorum-transient", {"x-delivery-limit": 2, "x-dead-letter-exchange": "a"}),
    ]
    for queue, arguments in attempts:
        channel = connection.channel()
        seen.append(_outcome(lambda: channel.queue_declare(queue=queue.replace("-transient", ""), durable=queue == "dl-eq-quorum",
                                                           arguments=arguments).method.queue))
    cleanup(connection.channel(), ["dl-eq-classic", "dl-eq-quorum"])
    return seen


def test_redeclaring_with_other_arguments_fails_with_rabbitmqs_text(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, inequivalent)
    assert expected[0] == ("ChannelClosedByBroker", 406, "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue "
                                                         "'dl-eq-classic' in vhost '/': received '20' but current is '10'")
    assert got == expected
