"""Review attacks on b54b2fe's pika '' shortcut (the channel's last
declared queue) with code written as the RabbitMQ tutorials write it."""
from __future__ import annotations

import shmq


def test_tutorial_three_with_the_empty_name_everywhere(namespace):
    """Publish/subscribe (tutorial 3) with '' in bind and consume, and the
    consume() generator on '': each subscriber gets the fanout message."""
    with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
        channel = connection.channel()
        channel.exchange_declare(exchange="logs", exchange_type="fanout")
        first = channel.queue_declare(queue="", exclusive=True).method.queue
        channel.queue_bind(exchange="logs", queue="")
        got = []
        channel.basic_consume(queue="", on_message_callback=lambda ch, m, p, body: got.append(body), auto_ack=True)
        other = connection.channel()
        second = other.queue_declare(queue="", exclusive=True).method.queue
        assert second != first
        other.queue_bind(exchange="logs", queue="")
        channel.basic_publish(exchange="logs", routing_key="", body=b"hello")
        connection.process_data_events(time_limit=0.5)
        assert got == [b"hello"]
        for method, _props, body in other.consume("", auto_ack=True, inactivity_timeout=1):
            assert method is not None, "the second subscriber's '' queue got nothing"
            assert body == b"hello"
            break
        other.cancel()
        # '' still names each channel's own queue.
        assert channel.queue_purge("").method.message_count == 0
        assert other.queue_declare(second, passive=True).method.queue == second
