"""A kombu transport over shmq, so that Celery (and any kombu program) runs
on shared memory with no broker process.

Importing this module registers the ``shmq://`` scheme with kombu::

    import shmq.kombu
    from celery import Celery

    app = Celery('tasks', broker='shmq://myapp', backend='rpc://')

    import kombu
    with kombu.Connection('shmq://myapp') as connection:
        queue = connection.SimpleQueue('hello')
        queue.put({'hello': 'world'})

``shmq://NAME`` is the namespace ``NAME`` (/dev/shm/shmq-<uid>/NAME, as
``shmq.Namespace('NAME')``), ``shmq:///abs/dir`` a namespace in that
directory, and ``shmq://`` ``$SHMQ_NAMESPACE`` (else ``default``). Where
this module cannot be imported before kombu parses the URL (a Celery config
read by another program), name the transport instead:
``broker_transport='shmq.kombu:Transport'``.

Why a native transport and not kombu's virtual one
--------------------------------------------------
Most of kombu's transports for stores that are not AMQP brokers (redis,
SQS, the filesystem) build on ``kombu.transport.virtual``: the store keeps
lists of messages, and kombu emulates exchange routing, prefetch and
acknowledgements inside each client process. An unacked message lives in
that client's memory, so one killed with -9 loses it unless the store has
a visibility timeout. shmq has all of these itself,
shared between processes and safe across kill -9, so this transport is
shaped like kombu's ``pyamqp`` one: its ``Connection`` and ``Channel`` take
AMQP 0-9-1's methods straight to shmq's.

* Declarations, bindings, purge, delete and ``basic_get`` go through shmq's
  pika-compatible ``BlockingChannel``, so they check arguments and fail as
  RabbitMQ does (``ChannelClosedByBroker`` 404/406, which closes the
  channel).
* Publishing uses shmq's native publishers, one per thread: Celery
  publishes from its timer and pool threads too.
* Consuming uses shmq's native consumers, because Celery needs prefetch to
  be a limit on the whole channel that it can change while consuming (it
  raises the limit for every ETA task it holds, as RabbitMQ's global QoS
  allows). A channel here takes a message off a queue only while it holds
  fewer than ``prefetch_count`` unacked ones, so a new limit applies at
  once. (A pika channel fixes a consumer's prefetch when it starts.)
* There is no socket to poll, so ``implements.asynchronous`` is False and a
  Celery worker runs its blocking loop (``drain_events(timeout=2.0)``).
  ``drain_events`` waits on the consumers' futexes with the GIL released.

Threads: a connection belongs to the thread that opened it, which drains
events, consumes and gets (and best opens the channels too, as kombu and
Celery do). Publishing, declaring, and acking or rejecting work from any
thread (Celery's prefork pool acks ``acks_late`` tasks from its result
thread): an ack, or a close, from another thread is carried out by the
owning thread at its next ``drain_events`` turn, within about 0.1 s.

Fork: a process forked while a connection is open (a prefork pool
replacing a child) inherits it but must not use it; the child keeps it,
never freed, and using it raises an error that says to open a new
connection (kombu and Celery do).

Refused rather than ignored: queue arguments shmq does not implement (406;
``shmq.QUEUE_ARGUMENTS`` lists those it does), consumer arguments other
than ``x-priority`` and exchange arguments other than ``alternate-exchange``
(406), and ``prefetch_size``, ``immediate``, ``basic_recover(requeue=False)``
and ``flow(active=False)``, which RabbitMQ refuses too.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
import urllib.parse
import weakref
from dataclasses import dataclass
from importlib import metadata
from itertools import count
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Set

from amqp.protocol import queue_declare_ok_t
from kombu.transport import TRANSPORT_ALIASES, base

import shmq
# The pika layer's RabbitMQ error replies and its x-delivery-count rule,
# shared so that both layers answer alike.
from shmq import _closed, _counts_deliveries

__all__ = ["Channel", "Connection", "Message", "Transport", "namespace_of"]

SCHEME = "shmq"

#: Longest a wait on one consumer lasts before ``drain_events`` looks at
#: acks handed over by other threads (and Ctrl-C).
_WAIT_SLICE = 0.1
#: The wait on each consumer in turn when several can receive.
_ROTATION_SLICE = 0.01

#: The AMQP basic properties kombu hands to ``prepare_message`` in its
#: ``properties`` (the others come as arguments of their own). Any other key
#: there is not a message property and is dropped, as pyamqp drops it.
_PROPERTY_NAMES = ("delivery_mode", "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type",
                   "user_id", "app_id")

_EXCHANGE_ARGUMENTS = {"alternate-exchange"}


def namespace_of(url: Optional[str]) -> Optional[str]:
    """The shmq namespace a broker URL names, for ``shmq.Namespace``:
    ``shmq://NAME`` is ``NAME``, ``shmq:///abs/dir`` the directory, and
    ``shmq://`` None (``$SHMQ_NAMESPACE``, else ``default``). A value without
    a scheme (a kombu ``hostname``) is the namespace itself.

    >>> namespace_of('shmq://myapp'), namespace_of('shmq:///var/lib/q'), namespace_of('shmq://')
    ('myapp', '/var/lib/q', None)

    Raises ``ValueError`` for another scheme, and for a URL with more than a
    namespace in it (a user, port, query, or a path after a name) rather
    than drop what shmq would not use.
    """
    if not url:
        return None
    if "://" not in url:
        return url
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != SCHEME:
        raise ValueError(f"shmq.kombu takes {SCHEME}:// URLs, not {url!r}")
    extra = parsed.username is not None or parsed.password is not None or parsed.query or parsed.fragment
    if ":" in parsed.netloc or extra or (parsed.netloc and parsed.path not in ("", "/")):
        raise ValueError(f"{url!r}: a shmq URL names one namespace, as shmq://NAME or shmq:///absolute/directory "
                         "(there is no host, port, user or virtual host)")
    name = parsed.netloc or (parsed.path if parsed.path != "/" else "")
    return urllib.parse.unquote(name) or None


class RawMessage(NamedTuple):
    """A delivery as the channel hands it to a consumer callback, before
    ``Channel.message_to_python`` makes it a kombu ``Message`` (pyamqp's
    is an ``amqp.Message``): ``channel.basic_get('jobs')`` returns one."""

    body: bytes
    delivery_tag: int
    delivery_info: Dict[str, Any]
    properties: Dict[str, Any]


class OutgoingMessage(NamedTuple):
    """What ``Channel.prepare_message`` makes for ``basic_publish``: the
    body, and the properties as shmq's publisher takes them, e.g.
    ``channel.prepare_message(b'hi', headers={'k': 1})``."""

    body: bytes
    properties: Dict[str, Any]


def _amqp_properties(properties: Dict[str, Any]) -> Dict[str, Any]:
    """shmq's properties as pyamqp names them for kombu: only those set,
    the headers table as ``application_headers``."""
    props = {k: v for k, v in properties.items() if v is not None}
    if "headers" in props:
        props["application_headers"] = props.pop("headers")
    return props


class Message(base.Message):
    """A received message, as kombu's ``pyamqp`` transport makes one:
    ``headers`` is the AMQP headers table, ``properties`` the basic
    properties (the table as ``application_headers``), ``delivery_info``
    the exchange, routing key, ``redelivered`` and consumer tag.

    Example::

        message = connection.SimpleQueue('jobs').get(timeout=1)
        print(message.payload, message.delivery_info['redelivered'])
        message.ack()        # or message.reject(), message.requeue()
    """

    def __init__(self, raw: RawMessage, channel: Optional["Channel"] = None, **kwargs: Any) -> None:
        props = raw.properties
        super().__init__(
            body=raw.body,
            channel=channel,
            delivery_tag=raw.delivery_tag,
            content_type=props.get("content_type"),
            content_encoding=props.get("content_encoding"),
            delivery_info=raw.delivery_info,
            properties=props,
            headers=props.get("application_headers") or {},
            **kwargs,
        )


@dataclass
class _Subscription:
    tag: str
    native: Any  # shmq._native.Consumer, manual ack, no prefetch of its own
    callback: Callable[[RawMessage], Any]
    no_ack: bool
    on_cancel: Optional[Callable[[str], Any]]


class _Held(NamedTuple):
    """An unacked delivery: the native consumer holding it (None for one
    taken by ``basic_get``, settled through the pika channel) and its tag
    there."""

    consumer: Any
    tag: int


_channel_ids = count(1)


class Channel(base.StdChannel):
    """An AMQP channel over shmq, as kombu's ``pyamqp`` ``Channel``.

    Example (kombu makes channels; this is what it calls)::

        channel = kombu.Connection('shmq://myapp').channel()
        channel.queue_declare('jobs', durable=True, auto_delete=False)
        channel.basic_publish(channel.prepare_message(b'job 1'), '', 'jobs')
        message = channel.message_to_python(channel.basic_get('jobs'))
        message.ack()

    Defaults are pyamqp's (``queue_declare`` and ``exchange_declare``
    default to ``auto_delete=True`` there too).
    """

    Message = Message

    def __init__(self, connection: "Connection") -> None:
        self.connection = connection
        self.channel_id = next(_channel_ids)
        self._pika = connection._blocking.channel()
        self._subscriptions: Dict[str, _Subscription] = {}
        # delivery tag -> the delivery, for every unacked one (the counted
        # ones are those of consumers, which prefetch limits).
        self._held: Dict[int, _Held] = {}
        self._counted = 0
        self._tags = count(1)
        self._consumer_tags = count(1)
        self.prefetch_count = 0
        #: Consumer tags of no-ack consumers; kombu's ``Message.ack`` skips them.
        self.no_ack_consumers: Set[str] = set()
        #: ``events['basic_return']``: handlers ``(exc, exchange, routing_key,
        #: message)`` for a ``mandatory`` message no queue took, as pyamqp's.
        self.events: Dict[str, Set[Callable[..., Any]]] = {"basic_return": set()}
        # The channel error work handed over by another thread met (an ack
        # of an unknown tag), for the next call to raise.
        self._error: Optional[BaseException] = None
        self.is_open = True

    # -- declarations (any thread)

    def exchange_declare(self, exchange: str, type: str = "direct", passive: bool = False, durable: bool = False,
                         auto_delete: bool = True, nowait: bool = False, arguments: Optional[Dict[str, Any]] = None,
                         **_: Any) -> None:
        unsupported = sorted(set(arguments or {}) - _EXCHANGE_ARGUMENTS)
        if unsupported:
            raise self._failed(shmq.ChannelClosedByBroker(
                406, f"PRECONDITION_FAILED - exchange arguments {unsupported} are not supported by shmq "
                     "(alternate-exchange is)"))
        self._delegate(self._pika.exchange_declare, exchange, type, passive, durable, auto_delete, False, arguments)

    def exchange_delete(self, exchange: str, if_unused: bool = False, nowait: bool = False, **_: Any) -> None:
        self._delegate(self._pika.exchange_delete, exchange, if_unused)

    def exchange_bind(self, destination: str, source: str = "", routing_key: str = "", nowait: bool = False,
                      arguments: Optional[Dict[str, Any]] = None, **_: Any) -> None:
        self._delegate(self._pika.exchange_bind, destination, source, routing_key, arguments)

    def exchange_unbind(self, destination: str, source: str = "", routing_key: str = "", nowait: bool = False,
                        arguments: Optional[Dict[str, Any]] = None, **_: Any) -> None:
        self._delegate(self._pika.exchange_unbind, destination, source, routing_key, arguments)

    def queue_declare(self, queue: str = "", passive: bool = False, durable: bool = False, exclusive: bool = False,
                      auto_delete: bool = True, nowait: bool = False, arguments: Optional[Dict[str, Any]] = None,
                      **_: Any) -> queue_declare_ok_t:
        """Declare a queue; returns ``(queue, message_count,
        consumer_count)`` as pyamqp does (``message_count``: ready
        messages). ``arguments`` are RabbitMQ's, checked as RabbitMQ checks
        them; one shmq does not implement is refused with 406."""
        ok = self._delegate(self._pika.queue_declare, queue, passive, durable, exclusive, auto_delete, arguments).method
        return queue_declare_ok_t(ok.queue, ok.message_count, ok.consumer_count)

    def queue_bind(self, queue: str, exchange: str = "", routing_key: str = "", nowait: bool = False,
                   arguments: Optional[Dict[str, Any]] = None, **_: Any) -> None:
        self._delegate(self._pika.queue_bind, queue, exchange, routing_key, arguments)

    def queue_unbind(self, queue: str, exchange: str, routing_key: str = "", nowait: bool = False,
                     arguments: Optional[Dict[str, Any]] = None, **_: Any) -> None:
        self._delegate(self._pika.queue_unbind, queue, exchange, routing_key, arguments)

    def queue_purge(self, queue: str = "", nowait: bool = False, **_: Any) -> int:
        """Drop the queue's ready messages; returns how many."""
        return self._delegate(self._pika.queue_purge, queue).method.message_count

    def queue_delete(self, queue: str = "", if_unused: bool = False, if_empty: bool = False, nowait: bool = False,
                     **_: Any) -> int:
        """Delete the queue (a missing one is no error, as in RabbitMQ);
        returns how many messages went with it."""
        return self._delegate(self._pika.queue_delete, queue, if_unused, if_empty).method.message_count

    def prepare_queue_arguments(self, arguments: Dict[str, Any], **kwargs: Any) -> Dict[str, Any]:
        """kombu's ``expires``/``message_ttl``/``max_length``/... as
        RabbitMQ's ``x-`` arguments, as pyamqp does."""
        return base.to_rabbitmq_queue_arguments(arguments, **kwargs)

    # -- publishing (any thread)

    def prepare_message(self, body: Any, priority: Optional[int] = None, content_type: Optional[str] = None,
                        content_encoding: Optional[str] = None, headers: Optional[Dict[str, Any]] = None,
                        properties: Optional[Dict[str, Any]] = None) -> OutgoingMessage:
        """The message ``basic_publish`` sends, as pyamqp prepares it."""
        fields = {k: v for k, v in (properties or {}).items() if k in _PROPERTY_NAMES and v is not None}
        props = shmq.BasicProperties(content_type=content_type, content_encoding=content_encoding, headers=headers,
                                     priority=priority, **fields)
        if isinstance(body, str):
            body = body.encode(content_encoding or "utf-8")
        return OutgoingMessage(bytes(body), props.as_dict())

    def basic_publish(self, message: OutgoingMessage, exchange: str = "", routing_key: str = "",
                      mandatory: bool = False, immediate: bool = False, timeout: Optional[float] = None,
                      confirm_timeout: Optional[float] = None, **_: Any) -> None:
        """Publish through an exchange; the message is in its queues when
        this returns. A queue at its limit with ``x-overflow:
        reject-publish`` refuses it: silently, as RabbitMQ does, unless the
        connection confirms publishes (``transport_options={'confirm_publish':
        True}``, as pyamqp's), then ``shmq.NackError`` is raised. A
        ``mandatory`` message no queue takes goes to the
        ``events['basic_return']`` handlers, or raises ``shmq.Unroutable``
        if there are none. At the namespace's memory budget the publish
        waits for room, at most ``timeout`` seconds (then
        ``shmq.QueueFull``)."""
        self._check_open()
        if immediate:
            raise NotImplementedError("basic_publish(immediate=True): RabbitMQ refuses it since 3.0 "
                                      "(540 NOT_IMPLEMENTED), and so does shmq")
        publisher = self.connection._publisher()
        publisher.set_publish_timeout(timeout)  # inf (or over 1e9 s): no limit
        try:
            _reached, refused = publisher.publish_routed(exchange, routing_key, message.body, message.properties,
                                                         mandatory)
        except shmq.Unroutable as e:
            handlers = list(self.events["basic_return"])
            if not handlers:
                raise
            for handler in handlers:
                handler(e, exchange, routing_key, message)
            return
        except shmq.ExchangeNotFound as e:
            raise self._failed(_closed(e)) from e
        if refused and self.connection.confirm_publish:
            raise shmq.NackError([])

    # -- consuming (the connection's thread)

    def basic_qos(self, prefetch_size: int = 0, prefetch_count: int = 0, a_global: bool = False, **_: Any) -> None:
        """At most ``prefetch_count`` unacked deliveries (0: no limit) for
        all of this channel's consumers together, from the next delivery on.
        ``a_global`` makes no difference: the limit is always the channel's
        (AMQP's reading, and RabbitMQ's for ``global=True``)."""
        self._check_open()
        if prefetch_size:
            raise NotImplementedError(f"basic_qos(prefetch_size={prefetch_size}): RabbitMQ refuses a size limit "
                                      "(540 NOT_IMPLEMENTED), and so does shmq; limit the count")
        self.prefetch_count = prefetch_count

    def basic_consume(self, queue: str = "", consumer_tag: str = "", no_local: bool = False, no_ack: bool = False,
                      exclusive: bool = False, nowait: bool = False,
                      callback: Optional[Callable[[RawMessage], Any]] = None,
                      arguments: Optional[Dict[str, Any]] = None, on_cancel: Optional[Callable[[str], Any]] = None,
                      **_: Any) -> str:
        """Start a consumer; ``callback(raw_message)`` runs for each delivery
        from ``drain_events``. ``arguments`` may hold ``x-priority``, the
        consumer's priority; any other is refused with 406. ``no_local``
        means nothing here, as in RabbitMQ."""
        self._check_open()
        self.connection._check_thread("basic_consume")
        tag = consumer_tag or f"shmq.ctag-{self.channel_id}.{next(self._consumer_tags)}"
        if tag in self._subscriptions:
            raise shmq.DuplicateConsumerTag(tag)
        arguments = dict(arguments or {})
        priority = arguments.pop("x-priority", 0)
        if arguments:
            raise self._failed(shmq.ChannelClosedByBroker(
                406, f"PRECONDITION_FAILED - consumer arguments {sorted(arguments)} are not supported by shmq "
                     "(x-priority is)"))
        namespace = self.connection.namespace
        try:
            counted = _counts_deliveries(namespace.queue_stats(queue)["arguments"])
            native = namespace.consumer(queue, True, 0, "redelivered" if counted else None, exclusive=exclusive,
                                        priority=priority)
        except shmq.ShmqError as e:
            raise self._failed(_closed(e)) from e
        self._subscriptions[tag] = _Subscription(tag, native, callback or (lambda raw: None), no_ack, on_cancel)
        if no_ack:
            self.no_ack_consumers.add(tag)
        return tag

    def basic_cancel(self, consumer_tag: str, nowait: bool = False, **_: Any) -> None:
        """Stop a consumer. Its unacked deliveries can still be acked."""
        if self._elsewhere(self.basic_cancel, consumer_tag):
            return
        subscription = self._subscriptions.pop(consumer_tag, None)
        self.no_ack_consumers.discard(consumer_tag)
        if subscription is not None:
            subscription.native.cancel()

    def basic_get(self, queue: str = "", no_ack: bool = False, **_: Any) -> Optional[RawMessage]:
        """The queue's next ready message, or None."""
        self.connection._check_thread("basic_get")
        method, properties, body = self._delegate(self._pika.basic_get, queue, no_ack)
        if method is None:
            return None
        tag = next(self._tags)
        if not no_ack:
            self._held[tag] = _Held(None, method.delivery_tag)
        info = {"delivery_tag": tag, "redelivered": method.redelivered, "exchange": method.exchange,
                "routing_key": method.routing_key, "message_count": method.message_count}
        return RawMessage(body, tag, info, _amqp_properties(vars(properties)))

    def basic_ack(self, delivery_tag: int, multiple: bool = False, **_: Any) -> None:
        self._settle(delivery_tag, multiple, None)

    def basic_reject(self, delivery_tag: int, requeue: bool = True, **_: Any) -> None:
        """Reject: requeue (flagged redelivered), or dead-letter to the
        queue's ``x-dead-letter-exchange`` (or drop) without requeue."""
        self._settle(delivery_tag, False, requeue)

    def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True, **_: Any) -> None:
        self._settle(delivery_tag, multiple, requeue)

    def basic_recover(self, requeue: bool = True, **_: Any) -> None:
        """Requeue every delivery this channel holds unacked."""
        if not requeue:
            raise NotImplementedError("basic_recover(requeue=False): RabbitMQ answers 540 NOT_IMPLEMENTED, shmq too")
        self._settle(0, True, True)

    def flow(self, active: bool) -> None:
        if not active:
            raise NotImplementedError("channel.flow(active=False): RabbitMQ refuses it (540 NOT_IMPLEMENTED), "
                                      "and so does shmq; cancel the consumers or lower the prefetch instead")

    def message_to_python(self, raw_message: RawMessage) -> Message:
        return self.Message(raw_message, channel=self)

    def close(self) -> None:
        """Close the channel: its consumers stop, its unacked deliveries go
        back to their queues."""
        if not self.is_open or self._elsewhere(self.close):
            return
        self.is_open = False
        for subscription in self._subscriptions.values():
            subscription.native.cancel()
        self._subscriptions.clear()
        self.no_ack_consumers.clear()
        for held in self._held.values():
            if held.consumer is not None:
                try:
                    held.consumer.nack(held.tag, True)
                except shmq.ShmqError:
                    pass  # gone with its deleted queue
        self._held.clear()  # the get deliveries go back with the pika channel
        self._counted = 0
        if self._pika.is_open:
            self._pika.close()
        if self in self.connection._channels:
            self.connection._channels.remove(self)

    # -- what drain_events uses

    def _can_receive(self, subscription: _Subscription) -> bool:
        return (self.is_open and subscription.tag in self._subscriptions
                and (subscription.no_ack or not self.prefetch_count or self._counted < self.prefetch_count))

    def _receive(self, subscription: _Subscription, timeout: Optional[float]) -> bool:
        """Take one message for `subscription` (waiting at most `timeout`
        seconds; None: not at all) and run its callback. True if something
        happened: a delivery, or the consumer cancelled by its queue's
        deletion."""
        native = subscription.native
        try:
            m = native.try_recv() if timeout is None else native.recv(timeout)
        except shmq.ShmqError:
            if not native.cancelled:
                raise
            m = None
        if m is None:
            if native.cancelled:
                self._cancelled(subscription)
                return True
            return False
        tag = next(self._tags)
        if subscription.no_ack:
            native.ack(m.delivery_tag)
        else:
            self._held[tag] = _Held(native, m.delivery_tag)
            self._counted += 1
        info = {"consumer_tag": subscription.tag, "delivery_tag": tag, "redelivered": m.redelivered,
                "exchange": m.exchange, "routing_key": m.routing_key}
        subscription.callback(RawMessage(m.body, tag, info, _amqp_properties(m.properties_dict)))
        return True

    def _cancelled(self, subscription: _Subscription) -> None:
        """Its queue was deleted: as RabbitMQ's basic.cancel, the consumer
        is gone; ``on_cancel(tag)`` is told, else ``ConsumerCancelled``
        raised (both as pyamqp)."""
        self._subscriptions.pop(subscription.tag, None)
        self.no_ack_consumers.discard(subscription.tag)
        if subscription.on_cancel is None:
            raise shmq.exceptions.ConsumerCancelled(f"consumer {subscription.tag!r} cancelled: its queue was deleted")
        subscription.on_cancel(subscription.tag)

    # -- internals

    def _settle(self, delivery_tag: int, multiple: bool, requeue: Optional[bool]) -> None:
        """Ack (``requeue`` None) or reject the delivery, or with `multiple`
        every one up to it (0: all)."""
        self._check_open()
        if self._elsewhere(self._settle, delivery_tag, multiple, requeue):
            return
        if multiple and (delivery_tag == 0 or delivery_tag in self._held):
            # Up to a tag the channel still holds, as RabbitMQ: another is
            # unknown (406), not "everything below it".
            tags = [t for t in self._held if delivery_tag == 0 or t <= delivery_tag]
        elif delivery_tag in self._held:
            tags = [delivery_tag]
        else:
            raise self._failed(shmq.ChannelClosedByBroker(
                406, f"PRECONDITION_FAILED - unknown delivery tag {delivery_tag}"))
        for tag in tags:
            held = self._held.pop(tag)
            if held.consumer is None:
                self._delegate(self._pika.basic_ack if requeue is None else self._pika.basic_nack, held.tag,
                               *(() if requeue is None else (False, requeue)))
                continue
            self._counted -= 1
            if requeue is None:
                held.consumer.ack(held.tag)
            else:
                held.consumer.nack(held.tag, requeue)

    def _delegate(self, method: Callable[..., Any], *args: Any) -> Any:
        """Call the pika channel; a channel error it raises closes this
        channel too, as RabbitMQ closes the whole channel."""
        self._check_open()
        try:
            return method(*args)
        except shmq.ChannelClosedByBroker as e:
            raise self._failed(e) from None

    def _failed(self, error: BaseException) -> BaseException:
        """Close the channel for `error` (a channel error) and return it to
        raise."""
        self.close()
        return error

    def _elsewhere(self, work: Callable[..., Any], *args: Any) -> bool:
        """On another thread than the connection's: hand ``work(*args)``
        over to it and return True (a channel error it meets is raised by
        this channel's next call, as pyamqp raises an asynchronous one).
        On the connection's thread: return False, to do the work now."""

        def run() -> None:
            try:
                work(*args)
            except shmq.AMQPChannelError as e:
                self._error = e

        return self.connection._defer_unless_owner(run)

    def _check_open(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if not self.is_open:
            raise shmq.ChannelWrongStateError("Channel is closed.")


class Connection:
    """A connection to a namespace, as kombu's ``pyamqp`` ``Connection``.
    kombu's ``Transport`` makes it; ``kombu.Connection('shmq://myapp')`` is
    the way to get one. kombu's ``transport_options`` may set
    ``memory_budget`` (bytes: the namespace's, if this connection creates
    it) and ``confirm_publish`` (a publish a queue refuses raises); kombu
    keeps other options of its own there, which are no concern of shmq.

    Example::

        connection = Connection('myapp')
        channel = connection.channel()
        channel.basic_consume('jobs', callback=print)
        connection.drain_events(timeout=1)   # socket.timeout if nothing came
    """

    Channel = Channel

    def __init__(self, namespace: Optional[str] = None, memory_budget: Optional[int] = None,
                 confirm_publish: bool = False) -> None:
        #: Raise ``shmq.NackError`` when a queue refuses a publish.
        self.confirm_publish = confirm_publish
        self._blocking = shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace,
                                                                           memory_budget=memory_budget))
        #: The native namespace: the pika channels declare in it and the
        #: consumers here take from it, so that an exclusive queue this
        #: connection declares is its own to consume.
        self.namespace = self._blocking.native_namespace
        self._serial = next(_connection_serials)
        _OPEN_SERIALS.add(self._serial)
        self._channels: List[Channel] = []
        # Work other threads hand to the owning thread (acks, closes).
        self._handed_over: "queue.SimpleQueue[Callable[[], Any]]" = queue.SimpleQueue()
        self._woken = threading.Event()
        self._thread = threading.get_ident()
        self._pid = os.getpid()
        #: The ``kombu.Connection`` this belongs to (kombu's declaration cache).
        self.client: Any = None
        self.connected = True
        _OPEN.add(self)

    def channel(self) -> Channel:
        self._check_usable()
        channel = self.Channel(self)
        self._channels.append(channel)
        return channel

    def drain_events(self, timeout: Optional[float] = None) -> None:
        """Deliver to the consumers' callbacks: wait until a message is
        taken for one of them (at most ``timeout`` seconds; None: no limit)
        and return. Raises ``socket.timeout`` if none came, as pyamqp.
        Waits with the GIL released, on each consumer's futex in turn when
        several can receive; Ctrl-C interrupts it."""
        self._check_thread("drain_events")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._run_handed_over()
            receivers = [(channel, s) for channel in list(self._channels)
                         for s in list(channel._subscriptions.values()) if channel._can_receive(s)]
            # One message at most for each consumer per call, so that a busy
            # queue does not starve the others (Celery's broadcast queue).
            delivered = [channel._receive(s, None) for channel, s in receivers if channel._can_receive(s)]
            if any(delivered):
                return
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise socket.timeout("timed out")
            step = _WAIT_SLICE if left is None else min(_WAIT_SLICE, left)
            if not receivers:
                # Nothing may be taken (no consumers, or all at their
                # prefetch): wait for another thread's ack.
                self._woken.wait(step)
                self._woken.clear()
                continue
            each = step if len(receivers) == 1 else min(step, _ROTATION_SLICE)
            for channel, subscription in receivers:
                if channel._can_receive(subscription) and channel._receive(subscription, each):
                    return

    def close(self) -> None:
        """Close every channel (unacked deliveries go back to their queues)
        and the namespace. Idempotent."""
        if not self.connected or self._pid != os.getpid() or self._defer_unless_owner(self.close):
            return
        self._run_handed_over()
        for channel in list(self._channels):
            channel.close()
        self._blocking.close()
        self.connected = False
        _OPEN.discard(self)
        _OPEN_SERIALS.discard(self._serial)
        _PUBLISHERS.get(threading.get_ident(), {}).pop(self._serial, None)  # the others: see _thread_publisher

    def _publisher(self) -> Any:
        """This thread's native publisher."""
        self._check_usable()
        return _thread_publisher(self)

    def _defer_unless_owner(self, work: Callable[..., Any], *args: Any) -> bool:
        """On another thread than the owner: hand ``work(*args)`` to the
        owner (its next ``drain_events`` runs it) and return True. On the
        owner: return False, for the caller to do the work itself."""
        self._check_usable()
        if threading.get_ident() == self._thread:
            return False
        self._handed_over.put(lambda: work(*args))
        self._woken.set()
        return True

    def _run_handed_over(self) -> None:
        while True:
            try:
                work = self._handed_over.get_nowait()
            except queue.Empty:
                return
            work()

    def _check_thread(self, what: str) -> None:
        self._check_usable()
        if threading.get_ident() != self._thread:
            raise RuntimeError(f"{what} on a shmq connection from another thread than the one that opened it: "
                               "give each thread its own kombu Connection (publishing and acking may come from any "
                               "thread)")

    def _check_usable(self) -> None:
        if self._pid != os.getpid():
            raise shmq.ConnectionWrongStateError(
                f"this shmq connection was opened by process {self._pid}, the parent of this forked one: "
                "open a new connection after fork")
        if not self.connected:
            raise shmq.ConnectionWrongStateError("the shmq connection is closed")


# Fork: a child gets copies of its parent's open connections. The native
# handles do nothing when a child frees them (they leave the parent's shared
# state alone), but they belong to threads the child does not have, so
# freeing them there would only warn; the child keeps them, unused, for its
# whole life.
_OPEN: "weakref.WeakSet[Connection]" = weakref.WeakSet()
_INHERITED: List[Connection] = []


def _keep_inherited_connections() -> None:
    _INHERITED.extend(_OPEN)
    _OPEN.clear()


os.register_at_fork(after_in_child=_keep_inherited_connections)


# Publishers: a native publisher may be used, and freed, only by the thread
# that made it. Each thread keeps its own here, one per connection, and
# frees them itself: all of them when it ends (a thread-local marker goes
# then, on that thread), and those of connections closed since whenever it
# makes a new one. Nothing else frees them: not the thread that closes a
# connection (but its own), and not a forked child (CPython clears the
# other threads' thread-locals there, from the forking thread).
_PUBLISHERS: Dict[int, Dict[int, Any]] = {}  # thread ident -> connection serial -> publisher
_OPEN_SERIALS: Set[int] = set()
_connection_serials = count(1)
_thread_marker = threading.local()


class _ThreadEnd:
    """The marker: freed on its thread when the thread ends."""

    def __init__(self) -> None:
        self.ident = threading.get_ident()
        self.pid = os.getpid()

    # (Bound now: at interpreter exit the module's globals may be gone.)
    def __del__(self, getpid: Callable[[], int] = os.getpid, publishers: Dict[int, Any] = _PUBLISHERS) -> None:
        if getpid() == self.pid:
            publishers.pop(self.ident, None)


def _thread_publisher(connection: Connection) -> Any:
    mine = _PUBLISHERS.get(threading.get_ident())
    if mine is None:
        mine = _PUBLISHERS[threading.get_ident()] = {}
        _thread_marker.end = _ThreadEnd()
    publisher = mine.get(connection._serial)
    if publisher is None:
        for closed in [serial for serial in mine if serial not in _OPEN_SERIALS]:
            del mine[closed]
        publisher = mine[connection._serial] = connection.namespace.publisher()
    return publisher


class Transport(base.Transport):
    """kombu's transport for ``shmq://`` URLs (see the module docstring).

    Example::

        import kombu, shmq.kombu
        with kombu.Connection('shmq://myapp') as connection:
            connection.SimpleQueue('hello').put('hi')
    """

    Connection = Connection

    #: kombu hands the URL over whole: ``shmq:///abs/dir`` is a path, not
    #: an AMQP virtual host.
    can_parse_url = True
    default_port = None
    driver_type = "shmq"
    driver_name = "shmq"

    connection_errors = base.Transport.connection_errors + (shmq.AMQPConnectionError,)
    channel_errors = base.Transport.channel_errors + (shmq.AMQPChannelError,)
    #: A closed or flow-control-timed-out connection is worth reopening;
    #: a 404 or 406 is not worth repeating.
    recoverable_connection_errors = (shmq.AMQPConnectionError,)
    recoverable_channel_errors = ()

    implements = base.Transport.implements.extend(
        asynchronous=False,
        heartbeats=False,
        exchange_type=frozenset(["direct", "topic", "fanout", "headers"]),
    )

    def __init__(self, client: Any, **kwargs: Any) -> None:
        self.client = client

    def establish_connection(self) -> Connection:
        conninfo = self.client
        options = conninfo.transport_options or {}
        connection = self.Connection(namespace_of(conninfo.hostname), options.get("memory_budget"),
                                     bool(options.get("confirm_publish")))
        connection.client = conninfo
        return connection

    def close_connection(self, connection: Connection) -> None:
        connection.client = None
        connection.close()

    def create_channel(self, connection: Connection) -> Channel:
        return connection.channel()

    def drain_events(self, connection: Connection, **kwargs: Any) -> None:
        connection.drain_events(**kwargs)

    def verify_connection(self, connection: Connection) -> bool:
        return connection.connected

    def _collect(self, connection: Optional[Connection]) -> None:
        # kombu's pools call this after fork, instead of close: a connection
        # inherited from the parent is left alone (see _INHERITED).
        if connection is not None and connection._pid == os.getpid():
            connection.close()

    def qos_semantics_matches_spec(self, connection: Connection) -> bool:
        # basic_qos limits the whole channel: Celery then sends global=False.
        return True

    def driver_version(self) -> str:
        return metadata.version("shmq")


TRANSPORT_ALIASES[SCHEME] = "shmq.kombu:Transport"
