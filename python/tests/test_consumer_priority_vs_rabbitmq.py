"""Consumer priorities (`basic_consume(arguments={"x-priority": n})`),
differentially against RabbitMQ 3.10: a higher-priority consumer gets every
message while it has prefetch room; once it is full, lower ones get the
rest, highest first; a consumer with no priority counts as 0 and one with
a negative priority comes last. A priority that is not an integer is
refused in RabbitMQ's words.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List, Tuple

from differential import both, masked, outcome



def consumer_priorities(connection: Any) -> Dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    queue = f"cp-{suffix}"
    setup = connection.channel()
    setup.queue_declare(queue)
    got: List[Tuple[str, str]] = []

    def consume(name: str, prefetch: int, priority: Any) -> None:
        ch = connection.channel()
        ch.basic_qos(prefetch_count=prefetch)
        arguments = None if priority is None else {"x-priority": priority}
        # Holds what it gets: the consumer stays at its prefetch limit.
        ch.basic_consume(queue, lambda _ch, method, _p, body: got.append((name, body.decode())), arguments=arguments)

    # Registered lowest first, so that registration order cannot explain
    # the result.
    consume("negative", 0, -5)
    consume("default", 3, None)
    consume("high", 2, 10)
    consume("mid", 4, 5)
    for i in range(12):
        setup.basic_publish("", queue, f"m{i}".encode())
    for _ in range(100):
        if len(got) >= 12:
            break
        connection.process_data_events(time_limit=0.05)
    connection.process_data_events(time_limit=0.2)
    seen: Dict[str, Any] = {"who got what": sorted(got, key=lambda g: int(g[1][1:]))}
    seen["text priority"] = outcome(lambda: connection.channel().basic_consume(queue, lambda *a: None,
                                                                           arguments={"x-priority": "high"}))
    connection.channel().queue_delete(queue)
    return masked(seen, suffix)


def test_consumer_priorities_as_rabbitmq(rabbitmq, namespace):
    expected, got = both(rabbitmq, namespace, consumer_priorities)
    assert got == expected
    who = [name for name, _ in expected["who got what"]]
    assert who == ["high"] * 2 + ["mid"] * 4 + ["default"] * 3 + ["negative"] * 3, who
