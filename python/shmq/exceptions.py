"""The exceptions of shmq's pika-style API under ``pika.exceptions``' names,
so that ``from pika import exceptions`` ports to ``from shmq import
exceptions``. The classes are those of ``shmq`` itself (this module only
re-exports them), and every one is also a ``shmq.ShmqError``.

The hierarchy follows pika's::

    AMQPError
    ├── AMQPConnectionError
    │   ├── ConnectionBlockedTimeout   a publish blocked by flow control too long
    │   └── ConnectionWrongStateError  the connection is closed
    └── AMQPChannelError
        ├── ChannelWrongStateError     the channel is closed
        ├── ChannelClosed
        │   └── ChannelClosedByBroker  406/404 replies, as RabbitMQ's
        ├── NackError                  refused under publisher confirms
        └── UnroutableError            mandatory and unroutable, under confirms

Example::

    from shmq import exceptions
    try:
        channel.basic_publish(exchange='', routing_key='jobs', body=b'x')
    except exceptions.NackError:
        ...  # the queue is at its limit (x-overflow: reject-publish)
"""

from . import (
    AMQPChannelError,
    AMQPConnectionError,
    AMQPHeartbeatTimeout,
    ChannelClosedByClient,
    ConnectionClosed,
    ConnectionClosedByBroker,
    ConnectionClosedByClient,
    ConsumerCancelled,
    StreamLostError,
    AMQPError,
    ChannelClosed,
    ChannelClosedByBroker,
    ChannelWrongStateError,
    ConnectionBlockedTimeout,
    ConnectionWrongStateError,
    DuplicateConsumerTag,
    NackError,
    UnroutableError,
)

__all__ = [
    "AMQPChannelError",
    "AMQPConnectionError",
    "AMQPHeartbeatTimeout",
    "ChannelClosedByClient",
    "ConnectionClosed",
    "ConnectionClosedByBroker",
    "ConnectionClosedByClient",
    "ConsumerCancelled",
    "StreamLostError",
    "AMQPError",
    "ChannelClosed",
    "ChannelClosedByBroker",
    "ChannelWrongStateError",
    "ConnectionBlockedTimeout",
    "ConnectionWrongStateError",
    "DuplicateConsumerTag",
    "NackError",
    "UnroutableError",
]
