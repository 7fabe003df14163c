"""shmq: RabbitMQ's semantics over shared memory, with no broker.

Two APIs over the same queues (and the same queues Rust processes use):

* a pika-style blocking API, so that pika code ports by changing the import
  and the connection line::

      import shmq
      connection = shmq.BlockingConnection(shmq.ConnectionParameters(namespace='myapp'))
      channel = connection.channel()
      channel.queue_declare(queue='hello')
      channel.basic_publish(exchange='', routing_key='hello', body='Hello World')

* a native Pythonic API: ``shmq.Namespace``, context managers, ``for msg in
  consumer``, and ``shmq.aio`` for asyncio.
"""

from __future__ import annotations

import enum
import functools
import itertools
import os
import queue
import threading
import urllib.parse
import warnings
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from . import _native
from ._native import (
    MAX_HEADER_DEPTH,
    QUEUE_ARGUMENTS,
    ExchangeNotFound,
    InvalidArgument,
    PreconditionFailed,
    QueueFull,
    QueueNotFound,
    ShmqError,
    Unroutable,
    UnknownDeliveryTag,
    topic_matches,
)

#: RabbitMQ's direct reply-to pseudo-queue: consume it (auto ack) and
#: publish requests with ``reply_to=DIRECT_REPLY_TO`` on the same channel.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"

__all__ = [
    "AMQPChannelError",
    "AMQPConnectionError",
    "AMQPError",
    "BasicProperties",
    "BlockingChannel",
    "BlockingConnection",
    "ConnectionBlocked",
    "ConnectionBlockedTimeout",
    "ConnectionParameters",
    "ConnectionUnblocked",
    "ConnectionWrongStateError",
    "ChannelClosed",
    "ChannelClosedByBroker",
    "ChannelWrongStateError",
    "Consumer",
    "DeliveryMode",
    "DuplicateConsumerTag",
    "PlainCredentials",
    "URLParameters",
    "DIRECT_REPLY_TO",
    "ExchangeNotFound",
    "InvalidArgument",
    "MAX_HEADER_DEPTH",
    "Message",
    "MethodFrame",
    "NackError",
    "Namespace",
    "PreconditionFailed",
    "QUEUE_ARGUMENTS",
    "QueueFull",
    "QueueNotFound",
    "ShmqError",
    "ReturnedMessage",
    "Unroutable",
    "UnroutableError",
    "UnknownDeliveryTag",
    "exceptions",
    "topic_matches",
]

# ---------------------------------------------------------------- native API


# A received message (the native class: see its docstring).
Message = _native.Message


class Consumer:
    """Consumes one queue. Iterate it (``for msg in consumer``) or call
    ``recv``. Use it from the thread that created it."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self._thread: Optional[int] = threading.get_ident()
        _CONSUMERS.add(self)

    def _check_thread(self) -> None:
        if threading.get_ident() != self._thread:
            if self._thread is None:  # see _after_fork_in_child
                raise ShmqError("this shmq Consumer was opened by the parent of this forked process: open a new one "
                                "here (what it holds stays the parent's)")
            raise RuntimeError("an shmq Consumer belongs to the thread that created it: create one consumer per thread "
                               "(publishing from any thread through the Namespace is fine)")

    def recv(self, timeout: Optional[float] = None) -> Optional[Message]:
        """Wait for a message (``None`` on timeout). Releases the GIL."""
        self._check_thread()
        return self._native.recv(timeout)

    def try_recv(self) -> Optional[Message]:
        """A message if one is ready now, else ``None``."""
        self._check_thread()
        return self._native.try_recv()

    def recv_many(self, max: int = 64, timeout: Optional[float] = None) -> List[Message]:
        """Wait for a message (at most ``timeout`` seconds; ``None``: as long
        as it takes), then take up to ``max`` that are ready, in one call:
        the batch path (empty list on timeout). Releases the GIL while it
        waits and copies; Ctrl-C raises KeyboardInterrupt within 100 ms. A
        manual-ack consumer settles the batch with
        ``batch[-1].ack(multiple=True)``. Bodies are ``bytes`` copied out of
        shared memory, so they stay valid after the ack."""
        self._check_thread()
        return self._native.recv_many(max, timeout)

    def __iter__(self) -> Iterator[Message]:
        while True:
            yield self.recv()  # type: ignore[misc]

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Detach; unacked messages are requeued, as when a channel closes."""
        self._native = None  # dropping the native consumer requeues


class Namespace:
    """A namespace: a name under /dev/shm/shmq-<uid>, a directory path, or
    ``None`` for ``$SHMQ_NAMESPACE`` (else ``default``).

    ``memory_budget`` (bytes) caps what the namespace's queues may take in
    all; at the budget a publish that needs room waits (flow control) until
    consumers make some. It is fixed when the namespace is created (``None``:
    40 % of the free space then); a different one for an existing namespace
    is refused with ``ShmqError``, not ignored."""

    def __init__(self, name: Optional[str] = None, memory_budget: Optional[int] = None) -> None:
        self._native = _native.Namespace(name, memory_budget)
        self._local = threading.local()
        _NAMESPACES.add(self)

    @property
    def path(self) -> str:
        return self._native.path

    def declare_queue(self, name: str = "", **options: Any) -> str:
        """Declare a queue; returns its name (generated for ``name=''``, as
        RabbitMQ's ``amq.gen-...`` names). Options: passive, exclusive, auto_delete,
        capacity_bytes (the first ring's size), max_length, max_length_bytes,
        max_message_bytes, overflow ('drop-head' (the default),
        'reject-publish', 'reject-publish-dlx' or 'block'), message_ttl_ms,
        and ``arguments``: RabbitMQ's queue arguments (``QUEUE_ARGUMENTS``:
        ``{'x-dead-letter-exchange': 'dlx', 'x-delivery-limit': 3,
        'x-expires': 60000, ...}``), checked as RabbitMQ checks them
        (``InvalidArgument``; a redeclare with other options raises
        ``PreconditionFailed``)."""
        return self._native.declare_queue(name, **options)[0]

    def declare_exchange(self, name: str, kind: str = "direct", **options: Any) -> None:
        self._native.declare_exchange(name, kind, **options)

    def bind(self, queue: str, exchange: str, routing_key: str = "", arguments: Optional[Dict[str, Any]] = None) -> None:
        self._native.bind_queue(queue, exchange, routing_key, arguments)

    def publish(self, exchange: str, routing_key: str, body: Any, properties: Optional["BasicProperties"] = None, mandatory: bool = False) -> int:
        """Publish through an exchange ('' = the default exchange, by queue
        name); returns how many queues it reached (a queue at its limit with
        overflow 'reject-publish' refuses the message and is not counted).
        At the memory budget it waits for room with the GIL released; Ctrl-C
        interrupts the wait with KeyboardInterrupt."""
        try:
            publisher = self._local.publisher
        except AttributeError:
            publisher = self._publisher()
        # The native call takes str, bytes, bytearray and memoryview bodies.
        return publisher.publish(exchange, routing_key, body, None if properties is None else _properties_dict(properties),
                                 mandatory)

    def _publisher(self) -> Any:
        """This thread's native publisher (a publisher is not thread-safe)."""
        publisher = getattr(self._local, "publisher", None)
        if publisher is None:
            publisher = self._local.publisher = self._native.publisher()
        return publisher

    def publish_many(self, exchange: str, routing_key: str, bodies: Iterable[Any],
                     properties: Optional["BasicProperties"] = None, mandatory: bool = False) -> int:
        """Publish every body of ``bodies`` with the same exchange, routing
        key and properties, in one call: routed once, copied a chunk per
        claim with the GIL released (the batch path). Returns the copies
        enqueued, summed over the messages (a message that reaches 2 queues
        counts 2; a queue at its limit with overflow 'reject-publish'
        refuses what does not fit, which is not counted). With ``mandatory``
        a batch no queue would take raises ``Unroutable`` and nothing is
        published."""
        return self._publisher().publish_many(exchange, routing_key, bodies, _properties_dict(properties), mandatory)[0]

    def consumer(self, queue: str, manual_ack: bool = False, prefetch: int = 0) -> Consumer:
        return Consumer(self._native.consumer(queue, manual_ack, prefetch))

    def stats(self, queue: str) -> Dict[str, Any]:
        """The queue's counts (ready, unacked, consumers, published,
        delivered, acked, redelivered, dropped, expired, dead_lettered) and
        ``arguments``, the RabbitMQ arguments it was declared with."""
        return self._native.queue_stats(queue)

    def housekeep(self) -> Tuple[int, int]:
        """Run the namespace's timers now: dead-letter expired messages at
        the head of queues nobody consumes, delete queues unused past their
        ``x-expires``. Waiting consumers run them every 100-200 ms on their
        own; a process that only polls may call this. Returns (messages
        dead-lettered, queues deleted)."""
        return self._native.housekeep()

    def __enter__(self) -> "Namespace":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._local = threading.local()


def _check_bodies(bodies: Any) -> None:
    """A batch's ``bodies`` must be an iterable of bodies: a single str,
    bytes, bytearray or memoryview would be taken apart (a str into one
    message per character). The native call checks it too; a transaction
    holds the bodies before they reach it."""
    if isinstance(bodies, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"bodies must be an iterable of message bodies, not a single {type(bodies).__name__}: "
                        "wrap one body in a list")


def _body_bytes(body: Any) -> bytes:
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise TypeError("body must be str, bytes, bytearray or memoryview")


# ----------------------------------------------------------- pika-style API


class DeliveryMode(enum.Enum):
    """``BasicProperties.delivery_mode``, as ``pika.DeliveryMode`` (pika
    1.3+; a plain ``Enum`` there too, so ``.value`` is the integer). shmq keeps every message in shared memory either way (it survives
    its publisher and consumers, not a reboot); the mode is carried to the
    consumer as RabbitMQ carries it."""

    Transient = 1
    Persistent = 2


@dataclass
class BasicProperties:
    """AMQP basic properties, as ``pika.BasicProperties``. ``delivery_mode``
    takes a ``DeliveryMode`` (shmq's or real pika's) or its integer, and
    stores the integer, as pika does."""

    content_type: Optional[str] = None
    content_encoding: Optional[str] = None
    headers: Optional[Dict[str, Any]] = None
    delivery_mode: Optional[int] = None
    priority: Optional[int] = None
    correlation_id: Optional[str] = None
    reply_to: Optional[str] = None
    expiration: Optional[str] = None
    message_id: Optional[str] = None
    timestamp: Optional[int] = None
    type: Optional[str] = None
    user_id: Optional[str] = None
    app_id: Optional[str] = None
    cluster_id: Optional[str] = None

    def __post_init__(self) -> None:
        if isinstance(self.delivery_mode, enum.Enum):  # pika's own DeliveryMode too
            self.delivery_mode = self.delivery_mode.value

    def as_dict(self) -> Dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if v is not None and k != "cluster_id"}
        if "expiration" in d:
            d["expiration"] = str(d["expiration"])
        return d


def _properties_dict(properties: Any) -> Optional[Dict[str, Any]]:
    """A publish's properties as a dict: shmq's ``BasicProperties``, or
    real pika's (same field names), so code that builds them with pika
    still publishes every property."""
    if properties is None:
        return None
    if not isinstance(properties, BasicProperties):
        fields = BasicProperties.__dataclass_fields__
        properties = BasicProperties(**{k: getattr(properties, k) for k in fields if getattr(properties, k, None) is not None})
    return properties.as_dict()


@dataclass
class PlainCredentials:
    """As ``pika.PlainCredentials``: accepted so pika call sites keep
    working. A namespace's access is its directory's permissions (the
    processes' uid and groups, docs/SECURITY.md), so they are not used."""

    username: str
    password: str
    erase_on_connect: bool = False


_IGNORED_WARNED = False


def _warn_ignored(names: List[str]) -> None:
    """Once per process: which network parameters a connection ignores."""
    global _IGNORED_WARNED
    if names and not _IGNORED_WARNED:
        _IGNORED_WARNED = True
        warnings.warn(f"shmq ignores {', '.join(names)}: there is no broker to reach; the namespace is the connection "
                      "(access is the namespace directory's permissions)", stacklevel=4)


@dataclass
class ConnectionParameters:
    """Where to connect: a namespace instead of a host. ``host`` and
    ``port`` are accepted (and ignored) so pika call sites keep working.

    ``blocked_connection_timeout`` (seconds, as pika's): a publish held back
    by flow control longer than this raises ``ConnectionBlockedTimeout`` and
    closes the connection. ``memory_budget`` (bytes): the namespace's memory
    budget, set if this connection creates the namespace and refused if it
    differs from an existing one's (see ``Namespace``)."""

    namespace: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = None
    virtual_host: Optional[str] = None
    credentials: Any = None
    blocked_connection_timeout: Optional[float] = None
    memory_budget: Optional[int] = None
    heartbeat: Optional[int] = None

    def __post_init__(self) -> None:
        _warn_ignored([k for k in ("host", "port", "virtual_host", "credentials", "heartbeat") if getattr(self, k) is not None])
        timeout = self.blocked_connection_timeout
        if timeout is not None:  # pika's checks and messages
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError(f"blocked_connection_timeout must be a Real number, but got {timeout!r}")
            if timeout < 0:
                raise ValueError(f"blocked_connection_timeout must be >= 0, but got {timeout!r}")


def URLParameters(url: str) -> ConnectionParameters:  # noqa: N802 - pika's name
    """As ``pika.URLParameters``: ``shm://NAMESPACE`` (a name, or
    ``shm:///path/to/dir`` for a directory) names the namespace; an
    ``amqp://`` URL connects to the default namespace (``$SHMQ_NAMESPACE``,
    else ``default``), its host, port and credentials ignored, with a
    warning."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "shm":
        name = parsed.netloc or parsed.path
        return ConnectionParameters(namespace=urllib.parse.unquote(name) or None)
    if parsed.scheme in ("amqp", "amqps"):
        _warn_ignored([f"the broker address in {parsed.scheme}://{parsed.hostname or ''}"])
        return ConnectionParameters()
    raise ValueError(f"URL scheme must be shm (or amqp, ignored), not {parsed.scheme!r}: {url!r}")


class AMQPError(ShmqError):
    """Base of the exceptions named after ``pika.exceptions`` (all of them
    are also ``ShmqError``s); see ``shmq.exceptions``."""


class AMQPConnectionError(AMQPError):
    """A connection-level error, as ``pika.exceptions.AMQPConnectionError``."""


class ConnectionWrongStateError(AMQPConnectionError):
    """The connection is closed, as ``pika.exceptions.ConnectionWrongStateError``."""


class ConnectionBlockedTimeout(AMQPConnectionError):
    """A publish was held back by flow control (the namespace at its memory
    budget) for longer than ``ConnectionParameters.blocked_connection_timeout``;
    the connection is closed, as pika closes it when RabbitMQ does not send
    ``connection.unblocked`` in time."""


class AMQPChannelError(AMQPError):
    """A channel-level error, as ``pika.exceptions.AMQPChannelError``."""


class ChannelWrongStateError(AMQPChannelError):
    """The channel (or its connection) is closed, as
    ``pika.exceptions.ChannelWrongStateError``."""


class DuplicateConsumerTag(AMQPChannelError):
    """``basic_consume`` with a consumer tag this channel uses already, as
    ``pika.exceptions.DuplicateConsumerTag``."""

    def __repr__(self) -> str:
        return f"DuplicateConsumerTag: {self.args[0]!r}"


class _ClosedWithReply:
    """``reply_code`` and ``reply_text`` of a closed channel or connection,
    kept in ``args`` as pika keeps them."""

    def __init__(self, reply_code: int, reply_text: str) -> None:
        super().__init__(int(reply_code), str(reply_text))  # type: ignore[call-arg]

    @property
    def reply_code(self) -> int:
        return self.args[0]  # type: ignore[attr-defined,no-any-return]

    @property
    def reply_text(self) -> str:
        return self.args[1]  # type: ignore[attr-defined,no-any-return]

    def __str__(self) -> str:
        return f"({self.reply_code}, {self.reply_text!r})"


class ChannelClosed(_ClosedWithReply, AMQPChannelError):
    """The channel was closed, as ``pika.exceptions.ChannelClosed``."""


class ChannelClosedByBroker(ChannelClosed):
    """Raised where pika raises ChannelClosedByBroker (e.g. a passive declare
    of a missing queue); ``reply_code`` and ``reply_text`` as in pika."""


# The rest of pika.exceptions' names, in its hierarchy, so that code that
# catches them (a reconnect loop's ``except ConnectionClosedByBroker``)
# runs. shmq raises the ones that can happen here; a lost socket cannot.
class ConnectionClosed(_ClosedWithReply, AMQPConnectionError):
    """As ``pika.exceptions.ConnectionClosed``: ``reply_code``, ``reply_text``."""


class ConnectionClosedByBroker(ConnectionClosed):
    """As ``pika.exceptions.ConnectionClosedByBroker``: what RabbitMQ closes
    the connection with (540 for ``basic_recover(requeue=False)``)."""


class ConnectionClosedByClient(ConnectionClosed):
    """As ``pika.exceptions.ConnectionClosedByClient``."""


class StreamLostError(AMQPConnectionError):
    """As ``pika.exceptions.StreamLostError``."""


class AMQPHeartbeatTimeout(AMQPConnectionError):
    """As ``pika.exceptions.AMQPHeartbeatTimeout``."""


class ChannelClosedByClient(ChannelClosed):
    """As ``pika.exceptions.ChannelClosedByClient``."""


class ConsumerCancelled(AMQPChannelError):
    """As ``pika.exceptions.ConsumerCancelled``."""


class NackError(AMQPChannelError):
    """Raised by ``basic_publish`` on a channel in confirm mode
    (``confirm_delivery()``) when the message was refused, as
    ``pika.exceptions.NackError``: RabbitMQ nacks a publish to a full
    ``x-overflow: reject-publish`` queue. ``messages`` holds the returned
    messages, empty here as in pika (only mandatory publishes return)."""

    def __init__(self, messages: Optional[List[Any]] = None) -> None:
        self.messages = list(messages or [])
        super().__init__(f"{len(self.messages)} message(s) NACKed")

    def __repr__(self) -> str:
        return f"NackError: {len(self.messages)} unroutable messages returned by broker"


class ReturnedMessage:
    """A message handed back to its publisher (``UnroutableError.messages``),
    as pika's ``ReturnedMessage``: ``method`` (``Return``), ``properties``,
    ``body``."""

    __slots__ = ("method", "properties", "body")

    def __init__(self, method: "Return", properties: Optional[BasicProperties], body: bytes) -> None:
        self.method = method
        self.properties = properties
        self.body = body


@dataclass
class Return:
    """``ReturnedMessage.method``, as ``pika.spec.Basic.Return``."""

    reply_code: int
    reply_text: str
    exchange: str
    routing_key: str


class UnroutableError(AMQPChannelError, Unroutable):
    """Raised by ``basic_publish(..., mandatory=True)`` on a channel in
    confirm mode when no queue took the message, as
    ``pika.exceptions.UnroutableError``; ``messages`` holds it as a
    ``ReturnedMessage`` (reply 312 NO_ROUTE). Also an ``Unroutable``, which
    a channel without confirms raises in the same case."""

    def __init__(self, messages: List[ReturnedMessage]) -> None:
        self.messages = list(messages)
        super().__init__(f"{len(self.messages)} unroutable message(s) returned")

    def __repr__(self) -> str:
        return f"UnroutableError: {len(self.messages)} unroutable messages returned by broker"


class ConnectionBlocked:
    """``method_frame.method`` given to connection-blocked callbacks, as
    ``pika.spec.Connection.Blocked``: ``reason`` says why (RabbitMQ's text
    for its memory alarm, "low on memory")."""

    NAME = "Connection.Blocked"

    def __init__(self, reason: str = "") -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<{self.NAME}(['reason={self.reason}'])>"


class ConnectionUnblocked:
    """``method_frame.method`` given to connection-unblocked callbacks, as
    ``pika.spec.Connection.Unblocked``."""

    NAME = "Connection.Unblocked"

    def __repr__(self) -> str:
        return f"<{self.NAME}>"


class MethodFrame:
    """The frame given to connection callbacks, as ``pika.frame.Method``:
    ``channel_number`` (0: the connection) and ``method``."""

    __slots__ = ("channel_number", "method")

    def __init__(self, channel_number: int, method: Any) -> None:
        self.channel_number = channel_number
        self.method = method

    def __repr__(self) -> str:
        return f"<METHOD(['channel_number={self.channel_number}', 'method={self.method!r}'])>"


@dataclass
class _QueueDeclareOk:
    queue: str
    message_count: int
    consumer_count: int


@dataclass
class _Frame:
    method: Any


class Deliver:
    """``method`` passed to callbacks, as ``pika.spec.Basic.Deliver``."""

    __slots__ = ("consumer_tag", "delivery_tag", "redelivered", "exchange", "routing_key")

    def __init__(self, consumer_tag: str, delivery_tag: int, redelivered: bool, exchange: str, routing_key: str) -> None:
        self.consumer_tag = consumer_tag
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routing_key = routing_key

    def __repr__(self) -> str:
        return (f"Deliver(consumer_tag={self.consumer_tag!r}, delivery_tag={self.delivery_tag}, "
                f"redelivered={self.redelivered}, exchange={self.exchange!r}, routing_key={self.routing_key!r})")


class _LazyProperties:
    """``BasicProperties`` of a received message, read from the native
    message only when a field is first used."""

    __slots__ = ("_native", "_props")

    def __init__(self, native: Any) -> None:
        self._native = native
        self._props: Optional[BasicProperties] = None

    def __getattr__(self, name: str) -> Any:
        if self._props is None:
            self._props = BasicProperties(**self._native.properties_dict)
        return getattr(self._props, name)

    def __repr__(self) -> str:
        return repr(BasicProperties(**self._native.properties_dict))


@dataclass
class GetOk:
    """``method`` returned by ``basic_get``, as ``pika.spec.Basic.GetOk``."""

    delivery_tag: int
    redelivered: bool
    exchange: str
    routing_key: str
    message_count: int = 0


def _counts_deliveries(arguments: Dict[str, Any]) -> bool:
    """True if deliveries from a queue declared with ``arguments`` carry
    ``x-delivery-count``: a quorum queue's do in RabbitMQ (the only type
    there that takes ``x-delivery-limit``); in shmq so do those of any
    queue with a delivery limit."""
    return arguments.get("x-queue-type") == "quorum" or "x-delivery-limit" in arguments


class long(int):
    """What pika decodes a header integer wider than 32 bits as: an ``int``
    whose ``repr`` ends in ``L`` (``pika.compat.long``)."""

    def __str__(self) -> str:
        return str(int(self))

    def __repr__(self) -> str:
        return str(self) + "L"


@dataclass
class _Subscription:
    tag: str
    queue: str
    callback: Callable[..., None]
    consumer: Any
    auto_ack: bool
    prefetch: int = 0


def _closed(e: Exception) -> ChannelClosedByBroker:
    if isinstance(e, (QueueNotFound, ExchangeNotFound)):
        return ChannelClosedByBroker(404, getattr(e, "reply_text", None) or f"NOT_FOUND - {e}")
    if isinstance(e, _native.AccessRefused):
        return ChannelClosedByBroker(403, getattr(e, "reply_text", None) or f"ACCESS_REFUSED - {e}")
    if isinstance(e, PreconditionFailed):
        # RabbitMQ's own text where the native side knows it (invalid and
        # inequivalent queue arguments), else shmq's.
        return ChannelClosedByBroker(406, getattr(e, "reply_text", None) or f"PRECONDITION_FAILED - {e}")
    return ChannelClosedByBroker(500, str(e))


def _open_only(method: Callable[..., Any]) -> Callable[..., Any]:
    """A channel call that raises ``ChannelWrongStateError`` once the
    channel is closed (by ``close()`` or a channel error), as pika's."""

    @functools.wraps(method)
    def checked(self: "BlockingChannel", *args: Any, **kwargs: Any) -> Any:
        if not self.is_open:
            raise self._closed_error()
        return method(self, *args, **kwargs)

    return checked


class BlockingChannel:
    """A channel, as ``pika.adapters.blocking_connection.BlockingChannel``.
    Use it from one thread; give each thread its own channel."""

    _tags = itertools.count(1)

    def __init__(self, connection: "BlockingConnection") -> None:
        self.connection = connection
        self._ns = connection._ns
        self._publisher = self._ns.publisher()
        # A waiting publish reports to the connection (flow-control
        # callbacks, blocked_connection_timeout); a weak reference, as the
        # native publisher does not take part in garbage collection.
        self._publisher.set_wait_callback(_wait_callback(weakref.ref(connection)))
        self._confirm = False
        self._prefetch = 0
        self._subs: Dict[str, _Subscription] = {}
        self._consuming = False
        self._next_tag = itertools.count(1)
        # channel delivery tag -> (native consumer, native tag)
        self._tags_out: Dict[int, Tuple[Any, int]] = {}
        # queue -> (native consumer for basic_get, the queue has x-expires)
        self._get_consumers: Dict[str, Tuple[Any, bool]] = {}
        self._on_cancel: List[Callable[[Any], None]] = []
        # The channel error an asynchronous call (an ack of an unknown tag)
        # caused, for the next call to raise.
        self._failed: Optional[ChannelClosedByBroker] = None
        # Returned (unroutable mandatory) messages, for the return callbacks.
        self._on_return: List[Callable[..., Any]] = []
        self._returned: List[Tuple[Return, Any, bytes]] = []
        # Transactions: None, or what tx_commit will carry out, and the
        # deliveries acked in it (back to unacked on rollback).
        self._tx: Optional[List[Callable[[], None]]] = None
        self._tx_held: List[Tuple[int, Tuple[Any, int]]] = []
        # The consume() generator: (consumer tag, its parameters, messages
        # dispatched to it and not yet yielded).
        self._generator: Optional[Tuple[str, Any, List[Tuple[Any, Any, Any]]]] = None
        # Direct reply-to: (consumer tag, this channel's reply queue) while
        # it consumes amq.rabbitmq.reply-to.
        self._reply: Optional[Tuple[str, str]] = None
        # The queue this channel declared last: AMQP's '' in bind, unbind,
        # purge, delete, consume and get.
        self._last_declared: Optional[str] = None
        self.is_open = True

    def _named(self, queue: str) -> str:
        """AMQP's shortcut, as RabbitMQ has it: the queue name '' is the
        queue this channel declared last (404 if it declared none)."""
        if queue != "":
            return queue
        if self._last_declared is None:
            raise self._closed_with(404, "NOT_FOUND - no previously declared queue")
        return self._last_declared

    # -- queues and exchanges

    @_open_only
    def queue_declare(self, queue: str = "", passive: bool = False, durable: bool = False, exclusive: bool = False,
                      auto_delete: bool = False, arguments: Optional[Dict[str, Any]] = None) -> _Frame:
        """As pika's. ``arguments`` takes the RabbitMQ queue arguments in
        ``shmq.QUEUE_ARGUMENTS`` (limits, TTLs, dead-lettering, delivery
        limit, expiry, queue type), checked as RabbitMQ checks them; any
        other is refused with 406 rather than ignored. A passive declare
        ignores them, as RabbitMQ's does."""
        args = arguments or {}
        if passive and queue == "":
            # A passive declare names no server-named queue: RabbitMQ looks
            # for one called '' (whatever the channel declared before).
            raise self._closed_with(404, "NOT_FOUND - no queue '' in vhost '/'")
        try:
            if not passive:
                # RabbitMQ's order: the arguments; then, for a new queue, a
                # quorum queue's properties, for an existing one whether the
                # declare is equivalent.
                _native.check_queue_arguments(queue, args)
                quorum = args.get("x-queue-type") == "quorum"
                if quorum and (auto_delete or exclusive or not durable) and self._existing_arguments(queue) is None:
                    # A quorum queue is an ordinary shmq queue (there is one
                    # node, so nothing to replicate), with RabbitMQ's checks
                    # on its properties, in RabbitMQ's order and words.
                    for bad, prop in ((auto_delete, "auto-delete"), (exclusive, "exclusive-owner"), (not durable, "non-durable")):
                        if bad:
                            raise self._closed_with(
                                406, f"PRECONDITION_FAILED - invalid property '{prop}' for queue '{queue}' in vhost '/'")
                if quorum and not durable:
                    self._check_durable_redeclare(queue)
            name, ready, consumers = self._ns.declare_queue(queue, passive=passive, exclusive=exclusive,
                                                            auto_delete=auto_delete, durable=durable,
                                                            arguments=None if passive else args)
        except ShmqError as e:
            if isinstance(e, ChannelClosedByBroker):
                raise
            if isinstance(e, PreconditionFailed) and not durable and not passive:
                self._check_durable_redeclare(queue)
            raise self._closed_with(_closed(e)) from e
        self._last_declared = name
        return _Frame(_QueueDeclareOk(name, ready, consumers))

    def _existing_arguments(self, queue: str) -> Optional[Dict[str, Any]]:
        """The RabbitMQ arguments of `queue` if it exists, else None."""
        try:
            return self._ns.queue_stats(queue)["arguments"]
        except ShmqError:  # not found, or no valid name (a server-named queue)
            return None

    def _check_durable_redeclare(self, queue: str) -> None:
        """A non-durable declare of `queue`: shmq keeps no durable flag, but
        a quorum queue is always durable, and RabbitMQ compares that before
        anything else of an existing queue."""
        existing = self._existing_arguments(queue)
        if existing is not None and existing.get("x-queue-type") == "quorum":
            raise self._closed_with(406, f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{queue}' "
                                             "in vhost '/': received 'false' but current is 'true'")

    def _shortcut_key(self, queue: str, routing_key: Optional[str]) -> str:
        """A binding's routing key, as pika sends it (the queue's name if
        none is given) and RabbitMQ reads it: '' with the queue '' is the
        name of the queue this channel declared last."""
        key = routing_key if routing_key is not None else queue
        return self._named("") if queue == "" and key == "" else key

    @_open_only
    def exchange_declare(self, exchange: str, exchange_type: str = "direct", passive: bool = False, durable: bool = False,
                         auto_delete: bool = False, internal: bool = False, arguments: Optional[Dict[str, Any]] = None) -> None:
        alternate = (arguments or {}).get("alternate-exchange")
        kind = getattr(exchange_type, "value", exchange_type)
        try:
            self._ns.declare_exchange(exchange, kind, passive, auto_delete, internal, alternate, durable)
        except ShmqError as e:
            raise self._closed_with(_closed(e)) from e

    @_open_only
    def exchange_delete(self, exchange: Optional[str] = None, if_unused: bool = False) -> None:
        """As pika's; deleting an exchange that does not exist succeeds, as
        in RabbitMQ."""
        try:
            self._ns.delete_exchange(exchange or "", if_unused)
        except ExchangeNotFound:
            pass
        except ShmqError as e:
            raise self._closed_with(_closed(e)) from e

    @_open_only
    def queue_bind(self, queue: str, exchange: str, routing_key: Optional[str] = None, arguments: Optional[Dict[str, Any]] = None) -> None:
        routing_key = self._shortcut_key(queue, routing_key)
        queue = self._named(queue)
        try:
            self._ns.bind_queue(queue, exchange, routing_key, arguments)
        except ShmqError as e:
            raise self._closed_with(_closed(e)) from e

    @_open_only
    def exchange_bind(self, destination: str, source: str, routing_key: str = "",
                      arguments: Optional[Dict[str, Any]] = None) -> _Frame:
        """Bind exchange ``destination`` to ``source``, as pika's: messages
        routed to ``source`` with a matching key go on to ``destination``."""
        try:
            self._ns.bind_exchange(destination, source, routing_key, arguments)
        except ShmqError as e:
            raise self._closed_with(_closed(e)) from e
        return _Frame(type("BindOk", (), {"NAME": "Exchange.BindOk"})())

    @_open_only
    def exchange_unbind(self, destination: Optional[str] = None, source: Optional[str] = None, routing_key: str = "",
                        arguments: Optional[Dict[str, Any]] = None) -> _Frame:
        """Remove an exchange-to-exchange binding, as pika's."""
        try:
            self._ns.unbind_exchange(destination or "", source or "", routing_key, arguments)
        except (QueueNotFound, ExchangeNotFound):
            pass  # nothing bound, nothing to undo: RabbitMQ answers UnbindOk
        except ShmqError as e:
            raise self._closed_with(_closed(e)) from e
        return _Frame(type("UnbindOk", (), {"NAME": "Exchange.UnbindOk"})())

    @_open_only
    def queue_unbind(self, queue: str, exchange: Optional[str] = None, routing_key: Optional[str] = None,
                     arguments: Optional[Dict[str, Any]] = None) -> None:
        routing_key = self._shortcut_key(queue, routing_key)
        queue = self._named(queue)
        try:
            self._ns.unbind_queue(queue, exchange or "", routing_key, arguments)
        except (QueueNotFound, ExchangeNotFound):
            pass  # nothing bound, nothing to undo: RabbitMQ answers UnbindOk
        except ShmqError as e:
            raise self._closed_with(_closed(e)) from e

    @_open_only
    def queue_purge(self, queue: str) -> _Frame:
        queue = self._named(queue)
        try:
            purged = self._ns.purge_queue(queue)
        except ShmqError as e:
            raise self._closed_with(_closed(e)) from e
        return _Frame(type("PurgeOk", (), {"message_count": purged})())

    @_open_only
    def queue_delete(self, queue: str, if_unused: bool = False, if_empty: bool = False) -> _Frame:
        """Delete a queue, as pika's: with `if_unused` or `if_empty`, a queue
        with consumers or messages is refused with RabbitMQ's 406. Deleting a
        queue that does not exist is not an error, as in RabbitMQ. Returns
        the frame with `method.message_count`, the messages deleted."""
        queue = self._named(queue)
        try:
            count = self._ns.queue_stats(queue)["ready"]
            self._ns.delete_queue(queue, if_unused, if_empty)
        except QueueNotFound:
            count = 0
        except ShmqError as e:
            raise self._closed_with(_closed(e)) from e
        return _Frame(type("DeleteOk", (), {"message_count": count})())

    # -- publishing

    @_open_only
    def confirm_delivery(self) -> None:
        """Turn on publisher confirms, as pika's: from now on
        ``basic_publish`` raises ``NackError`` when a queue refuses the
        message (at its limit with ``x-overflow: reject-publish``) and
        ``UnroutableError`` when a ``mandatory`` message reaches no queue."""
        if self._tx is not None:
            raise self._closed_with(406, "PRECONDITION_FAILED - cannot switch from tx to confirm mode")
        self._confirm = True

    # -- transactions

    @_open_only
    def tx_select(self) -> _Frame:
        """Make the channel transactional, as pika's: from now on its
        publishes and acks/nacks/rejects take effect at ``tx_commit`` and
        are dropped by ``tx_rollback`` (the messages stay unacked)."""
        if self._confirm:
            raise self._closed_with(406, "PRECONDITION_FAILED - cannot switch from confirm to tx mode")
        if self._tx is None:
            self._tx = []
        return _Frame(type("SelectOk", (), {"NAME": "Tx.SelectOk"})())

    def tx_commit(self) -> _Frame:
        """Carry out what the transaction holds, in order."""
        work = self._transaction("tx_commit")
        self._tx, self._tx_held = [], []
        for step in work:
            step()
        return _Frame(type("CommitOk", (), {"NAME": "Tx.CommitOk"})())

    def tx_rollback(self) -> _Frame:
        """Drop what the transaction holds."""
        self._transaction("tx_rollback")
        # The acks are undone: those deliveries are unacked again.
        self._tags_out.update(self._tx_held)
        self._tx, self._tx_held = [], []
        return _Frame(type("RollbackOk", (), {"NAME": "Tx.RollbackOk"})())

    def _transaction(self, call: str) -> List[Callable[[], None]]:
        if not self.is_open:
            raise self._closed_error()
        if self._tx is None:
            raise self._closed_with(406, "PRECONDITION_FAILED - channel is not transactional")
        return self._tx

    def _closed_error(self) -> AMQPChannelError:
        """What a call on a closed channel raises, as pika: the error that
        closed it, once, if an asynchronous call (an ack) caused it; else
        ``ChannelWrongStateError``."""
        failed, self._failed = self._failed, None
        return failed if failed is not None else ChannelWrongStateError("Channel is closed.")

    def _closed_with(self, error: Any, text: Optional[str] = None) -> "ChannelClosedByBroker":
        """A channel error (a ``ChannelClosedByBroker``, or its reply code
        and text), as RabbitMQ's: the channel closes (its unacked
        deliveries go back to their queues) and later calls on it raise
        ``ChannelWrongStateError``, as pika's."""
        self._teardown()
        return error if isinstance(error, ChannelClosedByBroker) else ChannelClosedByBroker(error, text or "")

    def basic_publish(self, exchange: str, routing_key: str, body: Any, properties: Optional[BasicProperties] = None,
                      mandatory: bool = False) -> None:
        """Publish, as pika's ``BlockingChannel.basic_publish``. Returns None.

        Without confirms a message a queue refuses (``x-overflow:
        reject-publish`` at its limit) is dropped silently, as with RabbitMQ;
        with ``confirm_delivery()`` that raises ``NackError``, and an
        unroutable ``mandatory`` message raises ``UnroutableError`` (without
        confirms: ``Unroutable``). At the namespace's memory budget the call
        waits for room (flow control: the connection's blocked and unblocked
        callbacks run), at most ``blocked_connection_timeout`` seconds if set
        (then ``ConnectionBlockedTimeout``, and the connection closes). The
        GIL is released while it waits; Ctrl-C raises KeyboardInterrupt."""
        if not self.is_open:
            raise self._closed_error()
        if self._tx is not None:
            # Held until tx_commit (the body is copied now, as sent).
            held = _body_bytes(body)
            self._tx.append(lambda: self._publish_now(exchange, routing_key, held, properties, mandatory))
            return None
        return self._publish_now(exchange, routing_key, body, properties, mandatory)

    def basic_publish_many(self, exchange: str, routing_key: str, bodies: Iterable[Any],
                           properties: Optional[BasicProperties] = None, mandatory: bool = False) -> None:
        """shmq's batch publish (pika has none): ``basic_publish`` of each
        body in turn with the same properties, in one call that routes once
        and copies the messages a chunk per claim with the GIL released.
        The same outcomes as one ``basic_publish`` per body, in bulk: in
        confirm mode ``NackError`` if a queue refused any copy (the others
        are enqueued); a ``mandatory`` batch no queue takes is returned
        whole (``UnroutableError`` in confirm mode) and nothing is
        published; in a transaction it is held until ``tx_commit``."""
        if not self.is_open:
            raise self._closed_error()
        _check_bodies(bodies)
        if self._tx is not None:
            held = [_body_bytes(b) for b in bodies]
            self._tx.append(lambda: self._publish_now(exchange, routing_key, held, properties, mandatory, many=True))
            return None
        return self._publish_now(exchange, routing_key, bodies, properties, mandatory, many=True)

    def _publish_now(self, exchange: str, routing_key: str, body: Any, properties: Optional[BasicProperties],
                     mandatory: bool, many: bool = False) -> None:
        """Publishes `body`, or with `many` each body of the iterable `body`."""
        data = (body if isinstance(body, (list, tuple)) else list(body)) if many else _body_bytes(body)
        props = _properties_dict(properties)
        if props is not None and props.get("reply_to") == DIRECT_REPLY_TO:
            if self._reply is None:
                raise self._closed_with(406, "PRECONDITION_FAILED - fast reply consumer does not exist")
            props["reply_to"] = self._reply[1]
        connection = self.connection
        publish = self._publisher.publish_many if many else self._publisher.publish_routed
        try:
            _queues, refused = publish(exchange, routing_key, data, props, mandatory)
        except Unroutable:
            connection._publish_done()
            # As RabbitMQ's basic.return: the channel's return callbacks get
            # it from the next process_data_events; without confirms the
            # publish raises nothing, with them UnroutableError (both as
            # pika does).
            method = Return(312, "NO_ROUTE", exchange, routing_key)
            returned_props = properties if properties is not None else BasicProperties()
            bodies = [_body_bytes(b) for b in data] if many else [data]
            self._returned.extend((method, returned_props, b) for b in bodies)
            if not self._confirm:
                return None
            raise UnroutableError([ReturnedMessage(method, properties, b) for b in bodies]) from None
        except ConnectionBlockedTimeout:
            connection._blocked_timed_out()
            raise
        # (Interrupted otherwise, e.g. by Ctrl-C: the connection stays
        # blocked until a publish gets through, and its timeout runs on.)
        connection._publish_done()
        if refused and self._confirm:
            raise NackError([])

    # -- consuming

    @_open_only
    def basic_qos(self, prefetch_size: int = 0, prefetch_count: int = 0, global_qos: bool = False) -> None:
        self._prefetch = prefetch_count

    @property
    def consumer_tags(self) -> List[str]:
        """The tags of this channel's consumers, as pika's."""
        return list(self._subs)

    def basic_consume(self, queue: str, on_message_callback: Callable[..., None], auto_ack: bool = False,
                      exclusive: bool = False, consumer_tag: Optional[str] = None, arguments: Optional[Dict[str, Any]] = None) -> str:
        if not self.is_open:
            raise self._closed_error()
        if consumer_tag is not None and consumer_tag in self._subs:
            raise DuplicateConsumerTag(consumer_tag)
        tag = consumer_tag or f"ctag1.{next(self._tags)}"
        if queue == DIRECT_REPLY_TO:
            return self._consume_replies(tag, on_message_callback, auto_ack)
        queue = self._named(queue)
        arguments = dict(arguments or {})
        priority = arguments.pop("x-priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            kind = "longstr" if isinstance(priority, (str, bytes)) else "bool" if isinstance(priority, bool) else type(priority).__name__
            raise self._closed_with(406, f"PRECONDITION_FAILED - invalid arg 'x-priority' for queue '{queue}' in vhost '/': "
                                             f'"expected integer, got {kind}"')
        if not -(1 << 31) <= priority < (1 << 31):
            raise self._closed_with(406, f"PRECONDITION_FAILED - x-priority {priority} is outside the 32-bit range "
                                             "shmq supports")
        if arguments:
            # Refused, not ignored: the rest are not implemented.
            raise self._closed_with(406, f"PRECONDITION_FAILED - consumer arguments {sorted(arguments)} are not "
                                             "supported by shmq; consume without them (x-priority is)")
        try:
            # As RabbitMQ 3.10's quorum queues: x-delivery-count on
            # redeliveries (a consumer's first delivery has none).
            count_header = "redelivered" if _counts_deliveries(self._ns.queue_stats(queue)["arguments"]) else None
            # Always manual natively: an auto-ack message is acked once its
            # callback ran, so stopping mid-batch loses nothing.
            native = self._ns.consumer(queue, True, 0 if auto_ack else self._prefetch, count_header, exclusive=exclusive,
                                       priority=priority)
        except ShmqError as e:
            raise self._closed_with(_closed(e)) from e
        self._subs[tag] = _Subscription(tag, queue, on_message_callback, native, auto_ack, 0 if auto_ack else self._prefetch)
        return tag

    def _consume_replies(self, tag: str, on_message_callback: Callable[..., None], auto_ack: bool) -> str:
        """Direct reply-to: consuming the pseudo-queue gives this channel a
        reply queue of its own (exclusive, auto-delete), which requests
        published here with ``reply_to="amq.rabbitmq.reply-to"`` name."""
        # `exclusive` and consumer arguments mean nothing here; RabbitMQ 3.10
        # accepts and ignores them for the reply consumer too (checked).
        if not auto_ack:
            raise self._closed_with(406, "PRECONDITION_FAILED - reply consumer cannot acknowledge")
        if self._reply is not None:
            raise self._closed_with(406, "PRECONDITION_FAILED - reply consumer already set")
        try:
            queue = self._ns.declare_reply_queue()
            native = self._ns.consumer(queue, True, 0)
        except ShmqError as e:
            raise self._closed_with(_closed(e)) from e
        self._reply = (tag, queue)
        self._subs[tag] = _Subscription(tag, queue, on_message_callback, native, True)
        return tag

    def _drop_reply_queue(self) -> None:
        """The reply consumer is gone: so is its queue, and replies sent to
        it from now on are dropped, as RabbitMQ drops them."""
        if self._reply is not None:
            _tag, queue = self._reply
            self._reply = None
            try:
                self._ns.delete_queue(queue)
            except ShmqError:
                pass  # already gone (deleted with its exclusive owner)

    def basic_cancel(self, consumer_tag: str) -> None:
        sub = self._subs.pop(consumer_tag, None)
        if sub is not None:
            if sub.consumer is not None:
                # Kept alive by its unacked deliveries, if any: those can
                # still be acked, but it receives no more and hands over.
                sub.consumer.cancel()
            sub.consumer = None
        if self._reply is not None and self._reply[0] == consumer_tag:
            self._drop_reply_queue()

    def stop_consuming(self, consumer_tag: Optional[str] = None) -> None:
        if consumer_tag:
            self.basic_cancel(consumer_tag)
        self._consuming = False

    def start_consuming(self) -> None:
        """Deliver to the callbacks until ``stop_consuming`` or no consumers
        are left. Ctrl-C raises KeyboardInterrupt promptly."""
        if not self.is_open:
            raise self._closed_error()
        self._consuming = True
        running = lambda: self._consuming  # noqa: E731
        connection = self.connection
        # Inside a callback, connection.process_data_events() dispatches
        # nothing, as pika's.
        was_dispatching, connection._dispatching = connection._dispatching, True
        try:
            while self._consuming and self._subs:
                ran = connection._run_callbacks()
                if not self._deliver_ready(running) and not ran and self._consuming and self._subs:
                    self._wait_and_deliver(connection._next_timer_in(0.1))
        finally:
            connection._dispatching = was_dispatching

    def consume(self, queue: str, auto_ack: bool = False, exclusive: bool = False,
                arguments: Optional[Dict[str, Any]] = None, inactivity_timeout: Optional[float] = None,
                consumer_tag: Optional[str] = None) -> Iterator[Tuple[Any, Any, Any]]:
        """As pika's generator: yields ``(method, properties, body)`` for
        each message of ``queue``; ``(None, None, None)`` each time
        ``inactivity_timeout`` seconds pass without one. One such consumer
        per channel (a call with the same queue, ``auto_ack`` and
        ``exclusive`` resumes it); ``cancel()`` ends it, and so does the
        consumer's cancellation (its queue deleted, or ``basic_cancel``)."""
        if inactivity_timeout is not None and inactivity_timeout < 0:
            raise ValueError(f"inactivity_timeout must be non-negative, but got {inactivity_timeout!r}")
        params = (queue, auto_ack, exclusive)
        if self._generator is None:
            pending: List[Tuple[Any, Any, Any]] = []
            tag = self.basic_consume(queue, lambda _ch, m, p, b: pending.append((m, p, b)), auto_ack, exclusive,
                                     consumer_tag=consumer_tag, arguments=arguments)
            self._generator = (tag, params, pending)
        elif self._generator[1] != params:
            raise ValueError("Consume with different params not supported on existing channel consumer generator")
        while self._generator is not None and self.is_open:
            tag, _params, pending = self._generator
            if pending:
                yield pending.pop(0)
                continue
            if tag not in self._subs:
                # Cancelled (its queue deleted, or basic_cancel): done.
                self._generator = None
                return
            deadline = None if inactivity_timeout is None else time.monotonic() + inactivity_timeout
            # Wait the whole timeout for a message of ours: timers, other
            # consumers' deliveries and returns do not cut it short.
            while not pending and tag in self._subs and self.is_open:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self.connection.process_data_events(time_limit=left)
            if not pending and tag in self._subs and inactivity_timeout is not None:
                yield (None, None, None)

    def get_waiting_message_count(self) -> int:
        """Messages the ``consume()`` generator holds, not yet yielded."""
        return len(self._generator[2]) if self._generator is not None else 0

    def cancel(self) -> int:
        """End the ``consume()`` generator's consumer, as pika's: the
        messages it holds but did not yield are requeued (rejected with
        requeue) unless they were auto-acked. Returns 0, as pika 1.x does
        (its count was not meaningful)."""
        if self._generator is None:
            return 0
        tag, (_queue, auto_ack, _exclusive), pending = self._generator
        self._generator = None
        self.basic_cancel(tag)
        if not auto_ack:
            for method, _props, _body in pending:
                self.basic_reject(method.delivery_tag, requeue=True)
        return 0

    @_open_only
    def basic_recover(self, requeue: bool = True) -> None:
        """Redeliver every message this channel holds unacked, as pika's.
        RabbitMQ implements only ``requeue=True``; ``requeue=False`` closes
        the connection with 540 ``NOT_IMPLEMENTED`` there and here."""
        if not requeue:
            # A connection error in RabbitMQ: every channel goes.
            self.connection.close()
            raise ConnectionClosedByBroker(540, "NOT_IMPLEMENTED - requeue=false")
        if self._tags_out:
            self.basic_nack(0, multiple=True, requeue=True)

    def add_on_cancel_callback(self, callback: Callable[[Any], None]) -> None:
        """As pika's: ``callback(method_frame)`` when a consumer of this
        channel is cancelled because its queue was deleted;
        ``method_frame.method.consumer_tag`` names it. The consumer is gone
        then, and ``start_consuming`` returns once none is left."""
        self._on_cancel.append(callback)

    def _cancelled(self, sub: _Subscription) -> bool:
        """If `sub`'s queue was deleted: drop it and tell the on-cancel
        callbacks, as pika does on the broker's basic.cancel."""
        if sub.consumer is None or not sub.consumer.cancelled:
            return False
        self._subs.pop(sub.tag, None)
        sub.consumer = None
        frame = _Frame(type("Cancel", (), {"consumer_tag": sub.tag, "NAME": "Basic.Cancel"})())
        for callback in list(self._on_cancel):
            callback(frame)
        return True

    def add_on_return_callback(self, callback: Callable[..., Any]) -> None:
        """As pika's: ``callback(channel, method, properties, body)`` for
        each ``mandatory`` message that reached no queue (``method`` a
        ``Basic.Return``: 312 ``NO_ROUTE``), from ``process_data_events``
        or ``start_consuming``. Without publisher confirms that is how an
        unroutable mandatory publish is reported (the publish raises
        nothing); with them, the publish raises ``UnroutableError`` too."""
        self._on_return.append(callback)

    def _deliver_returns(self) -> int:
        """Hands returned messages to the return callbacks; how many."""
        returned, self._returned = self._returned, []
        for method, properties, body in returned:
            for callback in list(self._on_return):
                callback(self, method, properties, body)
        return len(returned)

    def _deliver_ready(self, running: Callable[[], bool] = lambda: True) -> int:
        """Dispatch what the consumers hold ready (within prefetch), without
        waiting; returns how many callbacks ran. A batch taken while
        ``running()`` turns false goes back to its queue."""
        delivered = self._deliver_returns() if self._returned else 0
        for sub in list(self._subs.values()):
            # Take what is ready in one native call (within prefetch).
            consumer = sub.consumer
            if consumer is None or self._cancelled(sub):
                continue
            done = []
            try:
                ready = consumer.try_recv_many(64)
            except ShmqError:
                if self._cancelled(sub):  # deleted since the check above
                    continue
                raise
            for m in ready:
                if not running() or sub.tag not in self._subs:
                    consumer.nack(m.delivery_tag, True)  # stopped mid-batch: hand it back
                    continue
                self._dispatch(sub, m)
                if sub.auto_ack:
                    done.append(m.delivery_tag)
                delivered += 1
            if done:
                consumer.ack_many(done)
        return delivered

    def _wait_and_deliver(self, timeout: float) -> int:
        """Wait at most about ``timeout`` seconds for a message on any
        consumer (with the GIL released, so signals are checked) and
        dispatch it; returns how many callbacks ran (0 or 1)."""
        subs = list(self._subs.values())
        each = timeout if len(subs) == 1 else min(timeout, 0.01)
        waited = False
        for sub in subs:
            consumer = sub.consumer
            if consumer is None or sub.tag not in self._subs or self._cancelled(sub):
                continue
            if sub.prefetch and consumer.unacked >= sub.prefetch:
                continue  # as a pika consumer whose channel is at prefetch_count
            waited = True
            try:
                m = consumer.recv(each)
            except ShmqError:
                if self._cancelled(sub):  # deleted while it waited
                    continue
                raise
            if m is not None:
                self._dispatch(sub, m)
                if sub.auto_ack:
                    consumer.ack(m.delivery_tag)
                return 1
        if not waited:
            time.sleep(min(timeout, 0.01))
        return 0

    def _dispatch(self, sub: _Subscription, m: Any) -> None:
        tag = next(self._next_tag)
        if not sub.auto_ack:
            self._tags_out[tag] = (sub.consumer, m.delivery_tag)
        method = Deliver(sub.tag, tag, m.redelivered, m.exchange, m.routing_key)
        sub.callback(self, method, _LazyProperties(m), m.body)

    def basic_get(self, queue: str, auto_ack: bool = False) -> Tuple[Optional[GetOk], Optional[BasicProperties], Optional[bytes]]:
        """As pika's: ``(GetOk, BasicProperties, body)``, or ``(None, None,
        None)`` if the queue has nothing ready. Finding nothing, it first
        runs the namespace's timers if they are due (as a broker runs them
        on its own), so that a message that expired into this queue from an
        unconsumed one (dead-lettering) arrives while a script polls."""
        if not self.is_open:
            raise self._closed_error()
        queue = self._named(queue)
        entry = self._get_consumers.get(queue)
        if entry is None:
            try:
                arguments = self._ns.queue_stats(queue)["arguments"]
                # As RabbitMQ 3.10's quorum queues: basic.get always carries
                # x-delivery-count, 0 on the first delivery.
                count_header = "always" if _counts_deliveries(arguments) else None
                entry = (self._ns.consumer(queue, True, 0, count_header, get_only=True), "x-expires" in arguments)
            except ShmqError as e:
                raise self._closed_with(_closed(e)) from e
            self._get_consumers[queue] = entry
        consumer, expires = entry
        m = consumer.try_recv()
        if m is None and self.connection._housekeep():
            m = consumer.try_recv()
        if m is not None:
            tag = next(self._next_tag)
            if auto_ack:
                consumer.ack(m.delivery_tag)
            else:
                self._tags_out[tag] = (consumer, m.delivery_tag)
        if expires and consumer.unacked == 0:
            # basic.get is no consumer in RabbitMQ: an idle one kept here
            # would keep an x-expires queue from expiring. (One holding
            # deliveries stays reachable through _tags_out until settled.)
            del self._get_consumers[queue]
        if m is None:
            return None, None, None
        return GetOk(tag, m.redelivered, m.exchange, m.routing_key), BasicProperties(**m.properties_dict), m.body

    def _settle(self, delivery_tag: int, multiple: bool, how: Callable[[Any, int], None]) -> None:
        if not self.is_open:
            raise self._closed_error()
        tags = [t for t in self._tags_out if t <= delivery_tag] if multiple else [delivery_tag]
        if multiple and delivery_tag == 0:
            tags = list(self._tags_out)
        elif multiple and delivery_tag not in self._tags_out:
            # As RabbitMQ: `multiple` settles up to a tag this channel still
            # holds; another (settled already, or never given) is unknown,
            # not "everything below it".
            tags.append(delivery_tag)
        # Every tag checked (and taken) now, as RabbitMQ checks an ack when
        # it arrives, inside a transaction too: an unknown one closes the
        # channel with 406 (its unacked deliveries go back to their queues)
        # before anything is settled.
        if any(t not in self._tags_out for t in tags):
            # As pika: an ack is sent, not answered; RabbitMQ's 406 closes
            # the channel and the next call on it raises it.
            unknown = next(t for t in tags if t not in self._tags_out)
            self._failed = self._closed_with(406, f"PRECONDITION_FAILED - unknown delivery tag {unknown}")
            return
        entries = [(t, self._tags_out.pop(t)) for t in tags]
        if self._tx is not None:
            # Held: carried out by tx_commit, given back by tx_rollback.
            self._tx_held.extend(entries)
            self._tx.append(lambda: [how(entry[0], entry[1]) for _t, entry in entries])
            return
        for _t, entry in entries:
            how(entry[0], entry[1])

    def basic_ack(self, delivery_tag: int = 0, multiple: bool = False) -> None:
        self._settle(delivery_tag, multiple, lambda c, t: c.ack(t))

    def basic_nack(self, delivery_tag: int = 0, multiple: bool = False, requeue: bool = True) -> None:
        """As pika's. Without requeue the message is dead-lettered to its
        queue's ``x-dead-letter-exchange`` (reason ``rejected``) if it has
        one, else discarded; a requeue past the queue's ``x-delivery-limit``
        dead-letters it (reason ``delivery_limit``) or discards it."""
        self._settle(delivery_tag, multiple, lambda c, t: c.nack(t, requeue))

    def basic_reject(self, delivery_tag: int, requeue: bool = True) -> None:
        """As pika's; dead-letters as ``basic_nack`` does."""
        self.basic_nack(delivery_tag, False, requeue)

    def close(self, reply_code: int = 0, reply_text: str = "Normal shutdown") -> None:
        """Close the channel, as pika's: unacked deliveries are requeued
        (the native consumers go); closing a closed channel raises
        ``ChannelWrongStateError``."""
        if not self.is_open:
            raise self._closed_error()
        self._teardown()

    def _teardown(self) -> None:
        """Closes the channel, whatever its state (a channel error, the
        connection closing)."""
        # A transaction and a generator go with it; what they held goes back
        # to its queues with the native consumers.
        self._tx, self._tx_held, self._generator = None, [], None
        self._subs.clear()
        self._drop_reply_queue()
        self._get_consumers.clear()
        self._tags_out.clear()
        # Dropped here, on the channel's thread: the native publisher may not
        # be dropped on another (a garbage collection elsewhere would).
        self._publisher = None
        self.is_open = False

    @property
    def is_closed(self) -> bool:
        """True once the channel is closed, as pika's."""
        return not self.is_open


def _wait_callback(connection: "weakref.ReferenceType[BlockingConnection]") -> Callable[[str], None]:
    """The native publisher's wait callback for a channel of `connection`."""

    def on_wait(reason: str) -> None:
        c = connection()
        if c is not None:
            c._publish_waiting(reason)

    return on_wait


class _Timer:
    """A ``call_later`` handle: the opaque id ``remove_timeout`` takes."""

    __slots__ = ("due", "sequence", "callback", "_pending")

    def __init__(self, due: float, sequence: int, callback: Callable[[], Any], pending: List["_Timer"]) -> None:
        self.due, self.sequence, self.callback, self._pending = due, sequence, callback, pending

    def cancel(self) -> None:
        """Take the timer out of its connection's pending list, if still there."""
        if self in self._pending:
            self._pending.remove(self)


class BlockingConnection:
    """As ``pika.BlockingConnection``, over a namespace.

    Flow control: when the namespace reaches its memory budget, a publish
    that needs room waits until consumers make some. As with RabbitMQ's
    memory alarm, the connection then counts as blocked: the callbacks of
    ``add_on_connection_blocked_callback`` run when a publish starts waiting,
    those of ``add_on_connection_unblocked_callback`` when it is over, and
    ``ConnectionParameters.blocked_connection_timeout`` bounds the wait."""

    def __init__(self, parameters: Optional[ConnectionParameters] = None) -> None:
        params = parameters or ConnectionParameters()
        self._params = params
        self._ns = _native.Namespace(params.namespace, params.memory_budget)
        self._channels: List[BlockingChannel] = []
        self._on_blocked: List[Callable[..., Any]] = []
        self._on_unblocked: List[Callable[..., Any]] = []
        self._blocked_since: Optional[float] = None
        self._dispatching = False
        self._housekept_at = 0.0
        # call_later: [due (monotonic), sequence, callback]; threadsafe
        # callbacks from other threads.
        self._timers: List[_Timer] = []
        self._timer_sequence = itertools.count()
        self._threadsafe: "queue.SimpleQueue[Callable[[], Any]]" = queue.SimpleQueue()
        # Once threadsafe callbacks are used, waits are cut into 10 ms
        # slices, so that one runs within 10 ms (a native wait cannot be
        # woken from Python).
        self._threadsafe_used = False
        self.is_open = True

    @property
    def is_closed(self) -> bool:
        """True once the connection is closed, as pika's."""
        return not self.is_open

    @property
    def native_namespace(self) -> Any:
        """The native namespace handle this connection works through (what
        shmq's kombu transport shares with it: exclusive queues belong to
        it), or ``None`` once closed."""
        return self._ns

    def add_on_connection_blocked_callback(self, callback: Callable[["BlockingConnection", MethodFrame], Any]) -> None:
        """Call ``callback(connection, method_frame)`` when a publish starts
        waiting for the namespace's memory budget (flow control), as pika
        does on RabbitMQ's ``connection.blocked``; ``method_frame.method`` is
        a ``ConnectionBlocked`` (``reason``: "low on memory"). It runs on the
        publishing thread, inside ``basic_publish``."""
        self._on_blocked.append(callback)

    def add_on_connection_unblocked_callback(self, callback: Callable[["BlockingConnection", MethodFrame], Any]) -> None:
        """Call ``callback(connection, method_frame)`` when a publish gets
        through after flow control blocked the connection, as pika does on
        ``connection.unblocked``; ``method_frame.method`` is a
        ``ConnectionUnblocked``. (A publish interrupted while blocked, say by
        Ctrl-C, leaves the connection blocked.)"""
        self._on_unblocked.append(callback)

    def _publish_waiting(self, reason: str) -> None:
        """A publish on one of our channels is waiting (called by the
        native publisher every 10-50 ms, on the publishing thread)."""
        if reason != "memory":
            return  # a full `block` queue: shmq's own policy, not flow control
        now = time.monotonic()
        if self._blocked_since is None:
            self._blocked_since = now
            frame = MethodFrame(0, ConnectionBlocked(reason="low on memory"))
            for callback in list(self._on_blocked):
                callback(self, frame)
        timeout = self._params.blocked_connection_timeout
        if timeout is not None and now - self._blocked_since >= timeout:
            raise ConnectionBlockedTimeout("Blocked connection timeout expired.")

    def _publish_done(self) -> None:
        """A publish got through: if the connection was blocked, it is
        unblocked now."""
        if self._blocked_since is None:
            return
        self._blocked_since = None
        if self.is_open:
            frame = MethodFrame(0, ConnectionUnblocked())
            for callback in list(self._on_unblocked):
                callback(self, frame)

    def _housekeep(self) -> bool:
        """Run the namespace's timers (expiry into dead-letter queues,
        x-expires) if this connection has not in the last 100 ms; True if it
        did. Consumers that wait run them on their own; this serves a
        process that only polls (basic_get) or sleeps."""
        now = time.monotonic()
        if self._ns is None or now - self._housekept_at < 0.1:
            return False
        self._housekept_at = now
        self._ns.housekeep()
        return True

    def _blocked_timed_out(self) -> None:
        """As pika: the connection is torn down when it stays blocked too long."""
        self._blocked_since = None
        self.close()

    def call_later(self, delay: float, callback: Callable[[], Any]) -> Any:
        """Run ``callback()`` on this connection's thread ``delay`` seconds
        from now, from inside ``process_data_events``, ``sleep`` or
        ``start_consuming``, as pika's. Returns a handle for
        ``remove_timeout``."""
        if delay < 0:
            raise ValueError(f"call_later: delay must be non-negative, but got {delay!r}")
        if not callable(callback):
            raise TypeError(f"callback must be a callable, but got {callback!r}")
        timer = _Timer(time.monotonic() + max(delay, 0), next(self._timer_sequence), callback, self._timers)
        self._timers.append(timer)
        return timer

    def remove_timeout(self, timeout_id: Any) -> None:
        """Cancel a ``call_later`` that has not run (one that ran, or was
        cancelled, is no error). Anything but a ``call_later`` handle raises
        ``AttributeError``, as pika's."""
        timeout_id.cancel()

    def add_callback_threadsafe(self, callback: Callable[[], Any]) -> None:
        """Run ``callback()`` on this connection's thread, from any thread,
        as pika's: the way to hand work (an ack, a publish) to the thread
        that owns the connection. It runs at the next
        ``process_data_events``, ``sleep`` or ``start_consuming`` turn
        (within 100 ms of waiting)."""
        if not callable(callback):
            raise TypeError(f"callback must be a callable, but got {callback!r}")
        if not self.is_open:
            raise ConnectionWrongStateError("BlockingConnection.add_callback_threadsafe() called on closed or closing connection.")
        self._threadsafe_used = True
        self._threadsafe.put(callback)

    def _run_callbacks(self) -> int:
        """Runs the threadsafe callbacks queued and the timers due; how
        many ran."""
        ran = 0
        # Checked first: the common case, nothing queued, costs no exception.
        while not self._threadsafe.empty():
            try:
                callback = self._threadsafe.get_nowait()
            except queue.Empty:
                break
            callback()
            ran += 1
        if not self._timers:
            return ran
        now = time.monotonic()
        due = sorted((t for t in self._timers if t.due <= now), key=lambda t: (t.due, t.sequence))
        for timer in due:
            if timer in self._timers:
                self._timers.remove(timer)
                timer.callback()
                ran += 1
        return ran

    def _next_timer_in(self, default: float) -> float:
        """Seconds until the next timer, at most `default` (and 10 ms once
        threadsafe callbacks are in use)."""
        if self._threadsafe_used:
            default = min(default, 0.01)
        if not self._timers:
            return default
        return max(0.0, min(default, min(t.due for t in self._timers) - time.monotonic()))

    def channel(self, channel_number: Optional[int] = None) -> BlockingChannel:
        """A new channel (raises ``ConnectionWrongStateError`` once closed)."""
        if not self.is_open:
            raise ConnectionWrongStateError("Channel allocation requires an open connection: " + repr(self))
        ch = BlockingChannel(self)
        self._channels.append(ch)
        return ch

    def process_data_events(self, time_limit: Optional[float] = 0) -> None:
        """Dispatch the consumer callbacks of this connection's channels, as
        pika's: wait until at least one message is ready, at most
        ``time_limit`` seconds (``None``: without limit; 0: do not wait),
        then run the callbacks of everything ready and return. Waits with the
        GIL released; Ctrl-C raises KeyboardInterrupt within 100 ms. Called
        from inside a callback it dispatches nothing (as pika's) and only
        waits out ``time_limit``."""
        if self._dispatching:
            if time_limit:
                time.sleep(time_limit)
            return
        deadline = None if time_limit is None else time.monotonic() + max(time_limit, 0)
        self._dispatching = True
        try:
            while True:
                ran = self._run_callbacks()
                channels = [ch for ch in self._channels if ch.is_open]
                if sum(ch._deliver_ready() for ch in channels) + ran:
                    return
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return
                step = self._next_timer_in(0.1 if left is None else min(0.1, left))
                consuming = [ch for ch in channels if ch._subs]
                if not consuming:
                    # Nothing to dispatch: wait out the limit, as pika does
                    # (while the broker's timers run: ours, here).
                    self._housekeep()
                    time.sleep(step)
                    continue
                each = step if len(consuming) == 1 else min(step, 0.01)
                if any(ch._wait_and_deliver(each) for ch in consuming):
                    for ch in channels:  # and whatever else is ready now
                        ch._deliver_ready()
                    return
        finally:
            self._dispatching = False

    def sleep(self, duration: float) -> None:
        """Sleep ``duration`` seconds while dispatching consumer callbacks,
        as pika's ``BlockingConnection.sleep``."""
        assert duration >= 0, duration
        deadline = time.monotonic() + duration
        time_limit = duration
        while True:  # dispatch at least once
            self.process_data_events(time_limit)
            time_limit = deadline - time.monotonic()
            if time_limit <= 0:
                break

    def close(self, reply_code: int = 200, reply_text: str = "Normal shutdown") -> None:
        """Close every channel (their unacked deliveries are requeued) and
        the connection; closing a closed connection raises
        ``ConnectionWrongStateError``, as pika's."""
        if not self.is_open:
            raise ConnectionWrongStateError(f"BlockingConnection.close({reply_code}, {reply_text!r}) called on closed connection.")
        for ch in self._channels:
            ch._teardown()
        self._channels.clear()
        self._ns = None
        self.is_open = False

    def __enter__(self) -> "BlockingConnection":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.is_open:
            self.close()


# ---------------------------------------------------------------- fork
#
# A forked child (multiprocessing, a prefork server) inherits its parent's
# handles, and with them the descriptor of the parent's liveness lock (a
# flock on <namespace>/peers/<token>): while the child keeps it, the kernel
# sees the lock held, so a parent that dies stays alive to every other
# process, and what it held unacked is never handed back. Handles opened
# from an inherited namespace would register under the parent's liveness
# token too, so a child that died holding deliveries, or mid-publish, would
# count as alive while its parent lives. In the child, then: the native
# library's fork handler points the inherited lock descriptors at /dev/null
# (the parent's lock stays its own: a flock goes only when every descriptor
# of it is closed), each ``Namespace`` gets a handle of its own, and
# inherited consumers refuse to be used (what they hold is the parent's).
_NAMESPACES: "weakref.WeakSet[Namespace]" = weakref.WeakSet()
_CONSUMERS: "weakref.WeakSet[Consumer]" = weakref.WeakSet()


class _OpenedInChild:
    """An inherited native namespace, in a forked child: the first use opens
    the child's own handle on the same directory (not at fork: the
    directory may be gone by then, and opening would make it again)."""

    __slots__ = ("_owner", "path")

    def __init__(self, owner: "Namespace", path: str) -> None:
        self._owner = weakref.ref(owner)
        self.path = path

    def __getattr__(self, name: str) -> Any:
        native = _native.Namespace(self.path)
        owner = self._owner()
        if owner is not None and owner._native is self:
            owner._native = native
        return getattr(native, name)


def _after_fork_in_child() -> None:
    # The native library's own fork handler lets go of the inherited
    # liveness locks (src/liveness.rs), for any fork, not only os.fork.
    for consumer in list(_CONSUMERS):
        consumer._thread = None
    for namespace in list(_NAMESPACES):
        namespace._native = _OpenedInChild(namespace, namespace._native.path)
        namespace._local = threading.local()


os.register_at_fork(after_in_child=_after_fork_in_child)


from . import exceptions, exchange_type, spec  # noqa: E402 - pika's modules, on the names defined above
