"""``pika.exchange_type``'s names, so that ``from pika.exchange_type import
ExchangeType`` ports to ``from shmq.exchange_type import ExchangeType``.
``exchange_declare`` takes these, real pika's, or the plain strings.

Example::

    from shmq.exchange_type import ExchangeType
    channel.exchange_declare(exchange='logs', exchange_type=ExchangeType.fanout)
"""

import enum


class ExchangeType(enum.Enum):
    """The exchange types, as ``pika.exchange_type.ExchangeType``."""

    direct = "direct"
    fanout = "fanout"
    headers = "headers"
    topic = "topic"
