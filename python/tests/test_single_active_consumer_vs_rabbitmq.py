"""Single active consumer (`x-single-active-consumer`), differentially
against RabbitMQ 3.10: of three consumers, the first registered gets every
message; when its channel closes, the message it held unacked is redelivered
first to the next registered, which then gets everything; a cancelled
standby never receives. Wrong values and redeclares fail as in RabbitMQ.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List, Tuple

from differential import both, masked, outcome



def single_active_consumer(connection: Any) -> Dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    queue = f"sac-{suffix}"
    setup = connection.channel()
    setup.queue_declare(queue, arguments={"x-single-active-consumer": True})
    got: List[Tuple[str, str, bool]] = []
    held: Dict[str, Any] = {}
    channels = {}
    tags = {}

    def consumer(name: str, ack: bool) -> Any:
        def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
            got.append((name, body.decode(), method.redelivered))
            if ack:
                ch.basic_ack(method.delivery_tag)
            else:
                held[name] = method.delivery_tag
        return on_message

    # c1 holds what it gets (prefetch 1); c2, c3 ack.
    for name, ack in (("c1", False), ("c2", True), ("c3", True)):
        ch = connection.channel()
        ch.basic_qos(prefetch_count=1)
        tags[name] = ch.basic_consume(queue, consumer(name, ack))
        channels[name] = ch

    def publish(*bodies: str) -> None:
        for body in bodies:
            setup.basic_publish("", queue, body.encode())

    def wait_for(count: int) -> None:
        for _ in range(200):
            if len(got) >= count:
                break
            connection.process_data_events(time_limit=0.05)
        connection.process_data_events(time_limit=0.2)

    publish("m1", "m2", "m3")
    wait_for(1)
    seen: Dict[str, Any] = {"while c1 holds one": list(got)}
    channels["c3"].basic_cancel(tags["c3"])
    channels["c1"].close()
    wait_for(3)
    seen["after c1's channel closed"] = list(got)
    publish("m4")
    wait_for(4)
    seen["all"] = list(got)
    seen["wrong type"] = outcome(lambda: connection.channel().queue_declare(
        f"sac-bad-{suffix}", arguments={"x-single-active-consumer": "yes"}))
    seen["redeclared without it"] = outcome(lambda: connection.channel().queue_declare(queue))
    setup = connection.channel()
    setup.queue_delete(queue)
    return masked(seen, suffix)


def test_single_active_consumer_as_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, single_active_consumer)
    assert got == expected
    assert expected["while c1 holds one"] == [("c1", "m1", False)]
    assert expected["all"][:4] == [("c1", "m1", False), ("c2", "m1", True), ("c2", "m2", False), ("c2", "m3", False)]
