"""asyncio support: consume and publish from coroutines, without threads.

Two APIs:

* aio-pika's core shape, so that aio-pika code ports by changing the import
  and the connect line (``import shmq.aio as aio_pika``; ``connect()`` with
  no URL takes the namespace in ``$SHMQ_NAMESPACE``, else ``default``;
  ``connect("shm://NAME")`` names one)::

      connection = await aio_pika.connect_robust()
      async with connection:
          channel = await connection.channel()
          await channel.set_qos(prefetch_count=10)
          queue = await channel.declare_queue("test_queue", auto_delete=True)
          await channel.default_exchange.publish(aio_pika.Message(b"hi"), routing_key="test_queue")
          async with queue.iterator() as queue_iter:
              async for message in queue_iter:
                  async with message.process():
                      print(message.body)

  It runs over the pika-style ``BlockingConnection``/``BlockingChannel``
  (same queues, same semantics), on the event loop's thread: a channel with
  consumers polls them from a task (no syscall, no GIL release), awaiting
  ``asyncio.sleep`` with a backoff from 0 to 1 ms while nothing is ready.
  Each delivery to ``queue.consume(callback)`` runs as its own task, so
  ``set_qos(prefetch_count=N)`` bounds how many run at once, as in aio-pika.

  Channels have publisher confirms by default, as aio-pika's: a publish
  returns its ``Basic.Ack`` (pamqp's class when pamqp is installed) or
  raises ``DeliveryError`` when a queue refuses the message; a channel
  opened with ``publisher_confirms=False`` can run transactions
  (``channel.transaction()``). Both are shmq's publisher confirms and
  transactions (``BlockingChannel.confirm_delivery``, ``tx_select``...)
  under aio-pika's names; a publish is confirmed before it returns, as
  nothing stands between the publisher and the queue.

* the native ``AsyncConsumer`` / ``AsyncPublisher`` over a ``Namespace``.

A receive polls the queue and, while it is empty, awaits ``asyncio.sleep``
with a backoff from 0 to 1 ms, so the event loop keeps running other tasks.
Publishing does not wait unless a queue with the ``block`` policy is full.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import sys
import types
import uuid
from datetime import datetime, timedelta, timezone
from pprint import pformat
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional, Set, Tuple, Union

from . import BasicProperties, Consumer, Namespace
from . import BlockingChannel, BlockingConnection, ChannelClosedByBroker, ConnectionParameters, NackError
from . import UnroutableError, URLParameters
from . import Message as _NativeMessage

log = logging.getLogger(__name__)

__all__ = [
    "AsyncConsumer",
    "AsyncPublisher",
    "Channel",
    "Connection",
    "DeliveryError",
    "DeliveryMode",
    "Exchange",
    "ExchangeType",
    "IncomingMessage",
    "Message",
    "PublishError",
    "Queue",
    "QueueIterator",
    "RobustChannel",
    "RobustConnection",
    "RobustExchange",
    "RobustQueue",
    "Transaction",
    "TransactionState",
    "abc",
    "connect",
    "connect_robust",
    "exceptions",
]


# ------------------------------------------------------------- native asyncio


class AsyncConsumer:
    """``async for msg in AsyncConsumer(ns, 'queue')`` or ``await c.recv()``."""

    def __init__(self, ns: Namespace, queue: str, manual_ack: bool = False, prefetch: int = 0) -> None:
        self._consumer: Consumer = ns.consumer(queue, manual_ack, prefetch)

    async def recv(self, timeout: Optional[float] = None) -> Optional[_NativeMessage]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        delay = 0.0
        while True:
            m = self._consumer.try_recv()
            if m is not None:
                return m
            if deadline is not None and loop.time() >= deadline:
                return None
            await asyncio.sleep(delay)
            delay = min(0.001, delay * 2 or 0.00005)

    def __aiter__(self) -> AsyncIterator[_NativeMessage]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[_NativeMessage]:
        while True:
            m = await self.recv()
            if m is not None:
                yield m

    def close(self) -> None:
        self._consumer.close()


class AsyncPublisher:
    """``await p.publish(exchange, routing_key, body)``."""

    def __init__(self, ns: Namespace) -> None:
        self._ns = ns

    async def publish(self, exchange: str, routing_key: str, body: Any, properties: Optional[BasicProperties] = None,
                      mandatory: bool = False) -> int:
        routed = self._ns.publish(exchange, routing_key, body, properties, mandatory)
        await asyncio.sleep(0)
        return routed


# ------------------------------------------------------- aio-pika-style API


class DeliveryMode(enum.IntEnum):
    """As ``aio_pika.DeliveryMode``. shmq keeps every message in shared
    memory either way (it survives its publisher and consumers, not a
    reboot); the mode is carried to the consumer as RabbitMQ carries it."""

    NOT_PERSISTENT = 1
    PERSISTENT = 2


class ExchangeType(str, enum.Enum):
    """As ``aio_pika.ExchangeType`` (the kinds shmq implements)."""

    FANOUT = "fanout"
    DIRECT = "direct"
    TOPIC = "topic"
    HEADERS = "headers"


# -- protocol frames: what publish and the transaction calls return
#
# pamqp's classes when it is installed (aio-pika code checks
# ``isinstance(confirmation, pamqp.commands.Basic.Ack)``), else ours, with
# the same names and fields.

try:
    from pamqp.commands import Basic, Tx
except ImportError:  # pragma: no cover - exercised only without pamqp
    class _Frame:
        name = ""

        def __init__(self, **fields: Any) -> None:
            self.__dict__.update(fields)

        def __repr__(self) -> str:
            return f"<{self.name} object at {id(self):#x}>"

    class Basic:  # type: ignore[no-redef]
        """``pamqp.commands.Basic``'s confirmation frames."""

        class Ack(_Frame):
            name = "Basic.Ack"

            def __init__(self, delivery_tag: int = 0, multiple: bool = False) -> None:
                super().__init__(delivery_tag=delivery_tag, multiple=multiple)

        class Nack(_Frame):
            name = "Basic.Nack"

            def __init__(self, delivery_tag: int = 0, multiple: bool = False, requeue: bool = True) -> None:
                super().__init__(delivery_tag=delivery_tag, multiple=multiple, requeue=requeue)

        class Return(_Frame):
            name = "Basic.Return"

            def __init__(self, reply_code: int = 0, reply_text: str = "", exchange: str = "",
                         routing_key: str = "") -> None:
                super().__init__(reply_code=reply_code, reply_text=reply_text, exchange=exchange,
                                 routing_key=routing_key)

    class Tx:  # type: ignore[no-redef]
        """``pamqp.commands.Tx``'s replies."""

        class SelectOk(_Frame):
            name = "Tx.SelectOk"

        class CommitOk(_Frame):
            name = "Tx.CommitOk"

        class RollbackOk(_Frame):
            name = "Tx.RollbackOk"


# -- exceptions, under aio_pika.exceptions' names
#
# DeliveryError and PublishError also derive from aiormq's when it is
# installed (aio-pika re-exports aiormq's), so that ``except
# aiormq.exceptions.DeliveryError`` catches a refused publish here too.

try:
    from aiormq.exceptions import DeliveryError as _AiormqDeliveryError
    from aiormq.exceptions import PublishError as _AiormqPublishError
    _DELIVERY_BASES: Tuple[type, ...] = (_AiormqDeliveryError,)
    _PUBLISH_BASES: Tuple[type, ...] = (_AiormqPublishError,)
except ImportError:  # pragma: no cover - exercised only without aiormq
    _DELIVERY_BASES = _PUBLISH_BASES = ()


class AMQPException(Exception):
    """Base of aio-pika's exceptions here."""


class MessageProcessError(AMQPException):
    """An incoming message settled twice, as aio-pika's."""


class QueueEmpty(AMQPException, asyncio.QueueEmpty):
    """``queue.get(fail=True)`` found nothing, as aio-pika's."""


class ChannelInvalidStateError(AMQPException, RuntimeError):
    """The channel (or connection) is closed, as aio-pika's."""


class DeliveryError(AMQPException, *_DELIVERY_BASES):  # type: ignore[misc]
    """A queue refused a message published on a channel with publisher
    confirms (``x-overflow: reject-publish`` at its limit), as aiormq's:
    ``frame`` is the ``Basic.Nack``, ``message`` None."""

    def __init__(self, message: Any, frame: Any, *args: Any) -> None:
        Exception.__init__(self, message, frame, *args)
        self.message = message
        self.frame = frame

    def __str__(self) -> str:
        frame = self.frame
        name = getattr(frame, "name", type(frame).__name__)
        fields = {"Basic.Nack": ("delivery_tag", "multiple"), "Basic.Reject": ("delivery_tag", "requeue"),
                  "Basic.Return": ("reply_code", "reply_text", "exchange", "routing_key")}.get(name, ())
        details = ", ".join(f"{field}={getattr(frame, field)!r}" for field in fields)
        return f"Message delivery failed: {name}({details})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self}>"


class PublishError(DeliveryError, *_PUBLISH_BASES):  # type: ignore[misc]
    """An unroutable mandatory message on a channel opened with
    ``on_return_raises=True``, as aio-pika's: ``message`` is the returned
    ``IncomingMessage``, ``frame`` the ``Basic.Return`` (312 NO_ROUTE)."""

    def __init__(self, message: Any, frame: Any, *args: Any) -> None:
        Exception.__init__(self, frame.reply_text, frame.routing_key, *args)
        self.message = message
        self.frame = frame


class CallbackCollection:
    """A set of callbacks, as aio-pika's ``CallbackCollection``:
    ``add(cb)``/``discard(cb)``; calling it calls each ``cb(sender,
    *args)`` (an awaitable result runs as a task), and logs what one
    raises."""

    def __init__(self, sender: Any) -> None:
        self._sender = sender
        self._callbacks: Dict[Callable[..., Any], None] = {}

    def add(self, callback: Callable[..., Any]) -> None:
        if not callable(callback):
            raise ValueError("Callback is not callable")
        self._callbacks[callback] = None

    def discard(self, callback: Callable[..., Any]) -> None:
        self._callbacks.pop(callback, None)

    def remove(self, callback: Callable[..., Any]) -> None:
        del self._callbacks[callback]

    def clear(self) -> None:
        self._callbacks.clear()

    def __contains__(self, callback: object) -> bool:
        return callback in self._callbacks

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return iter(list(self._callbacks))

    def __len__(self) -> int:
        return len(self._callbacks)

    def __call__(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            try:
                result = callback(self._sender, *args)
                if inspect.isawaitable(result):
                    asyncio.ensure_future(result)
            except Exception:  # noqa: BLE001 - logged, as aio-pika's
                log.exception("Callback %r error", callback)


def _expiration_ms(value: Any) -> Optional[str]:
    """aio-pika's expiration (seconds, a timedelta or a datetime) as AMQP's
    (milliseconds, a string)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return str(int((value - datetime.now(tz=value.tzinfo)).total_seconds() * 1000))
    if isinstance(value, timedelta):
        return str(int(value.total_seconds() * 1000))
    return str(int(value * 1000))


def _timestamp(value: Any) -> Optional[datetime]:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, timedelta):
        return datetime.now(tz=timezone.utc) + value
    return datetime.fromtimestamp(value, tz=timezone.utc)


def _optional(value: Any, func: Callable[[Any], Any], default: Any = None) -> Any:
    return func(value) if value else default


class Message:
    """An outgoing message, as ``aio_pika.Message``: ``Message(body,
    delivery_mode=DeliveryMode.PERSISTENT, headers=..., ...)``. Its
    ``repr`` is aio-pika's."""

    def __init__(self, body: bytes, *, headers: Optional[Dict[str, Any]] = None, content_type: Optional[str] = None,
                 content_encoding: Optional[str] = None, delivery_mode: Union[DeliveryMode, int, None] = None,
                 priority: Optional[int] = None, correlation_id: Optional[str] = None, reply_to: Optional[str] = None,
                 expiration: Any = None, message_id: Optional[str] = None, timestamp: Any = None,
                 type: Optional[str] = None, user_id: Optional[str] = None, app_id: Optional[str] = None) -> None:
        self.body = body if isinstance(body, bytes) else bytes(body)
        self.body_size = len(self.body)
        self.headers: Dict[str, Any] = headers or {}
        self.content_type = content_type
        self.content_encoding = content_encoding
        self.delivery_mode = DeliveryMode(_optional(delivery_mode, int, DeliveryMode.NOT_PERSISTENT))
        self.priority = _optional(priority, int, 0)
        self.correlation_id = _optional(correlation_id, str)
        self.reply_to = _optional(reply_to, str)
        self.expiration = expiration
        self.message_id = _optional(message_id, str)
        self.timestamp = _timestamp(timestamp)
        self.type = _optional(type, str)
        self.user_id = _optional(user_id, str)
        self.app_id = _optional(app_id, str)

    @property
    def properties(self) -> BasicProperties:
        """The message's properties for the publish."""
        return BasicProperties(
            content_type=self.content_type, content_encoding=self.content_encoding,
            headers=dict(self.headers) if self.headers else None, delivery_mode=int(self.delivery_mode),
            priority=self.priority or None, correlation_id=self.correlation_id, reply_to=self.reply_to,
            expiration=_expiration_ms(self.expiration), message_id=self.message_id,
            timestamp=int(self.timestamp.timestamp()) if self.timestamp is not None else None,
            type=self.type, user_id=self.user_id, app_id=self.app_id)

    def info(self) -> Dict[str, Any]:
        return dict(
            app_id=self.app_id, body_size=self.body_size, cluster_id=None, consumer_tag=None,
            content_encoding=self.content_encoding, content_type=self.content_type,
            correlation_id=self.correlation_id, delivery_mode=self.delivery_mode, delivery_tag=None, exchange=None,
            expiration=self.expiration, headers=self.headers, message_id=self.message_id, priority=self.priority,
            redelivered=None, reply_to=self.reply_to, routing_key=None, timestamp=self.timestamp,
            type=str(self.type), user_id=self.user_id)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}:{pformat(self.info())}"

    def __iter__(self) -> Any:
        return iter(self.body)


class IncomingMessage(Message):
    """A delivered message, as ``aio_pika.IncomingMessage``: ``ack()``,
    ``reject(requeue=False)``, ``nack(requeue=True)`` (each at most once,
    else ``MessageProcessError``), and ``process()``."""

    def __init__(self, channel: "Channel", body: bytes, props: Any, *, delivery_tag: Optional[int],
                 consumer_tag: Optional[str], exchange: str, routing_key: str, redelivered: bool,
                 message_count: Optional[int] = None, no_ack: bool = False) -> None:
        get = lambda name: getattr(props, name, None) if props is not None else None  # noqa: E731
        expiration = get("expiration")
        super().__init__(body, headers=get("headers"), content_type=get("content_type"),
                         content_encoding=get("content_encoding"), delivery_mode=get("delivery_mode"),
                         priority=get("priority"), correlation_id=get("correlation_id"), reply_to=get("reply_to"),
                         expiration=float(expiration) / 1000 if expiration is not None else None,
                         message_id=get("message_id"), timestamp=get("timestamp"), type=get("type"),
                         user_id=get("user_id"), app_id=get("app_id"))
        self._channel = channel
        self.cluster_id = get("cluster_id") or ""  # as aio-pika (pamqp) decodes an absent one
        self.consumer_tag = consumer_tag
        self.delivery_tag = delivery_tag
        self.exchange = exchange
        self.routing_key = routing_key
        self.redelivered = redelivered
        self.message_count = message_count
        self._no_ack = no_ack
        self._processed = bool(no_ack or not delivery_tag)

    @property
    def channel(self) -> "Channel":
        if self._channel.is_closed:
            raise ChannelInvalidStateError("channel is closed")
        return self._channel

    @property
    def processed(self) -> bool:
        return self._processed

    def _settle(self, what: str) -> BlockingChannel:
        if self._no_ack:
            raise TypeError(f'Can\'t {what} message with "no_ack" flag')
        if self._processed:
            raise MessageProcessError("Message already processed", self)
        blocking = self.channel._blocking
        self._processed = True
        return blocking

    async def ack(self, multiple: bool = False) -> None:
        self._settle("ack").basic_ack(self.delivery_tag or 0, multiple)

    async def reject(self, requeue: bool = False) -> None:
        """Requeued with ``requeue=True``; otherwise dead-lettered to the
        queue's ``x-dead-letter-exchange`` if it has one, else dropped."""
        self._settle("reject").basic_reject(self.delivery_tag or 0, requeue)

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        self._settle("nack").basic_nack(self.delivery_tag or 0, multiple, requeue)

    def process(self, requeue: bool = False, reject_on_redelivered: bool = False,
                ignore_processed: bool = False) -> "ProcessContext":
        """``async with message.process():`` acks when the block succeeds and
        rejects (requeued if ``requeue``) when it raises, as aio-pika's."""
        return ProcessContext(self, requeue=requeue, reject_on_redelivered=reject_on_redelivered,
                              ignore_processed=ignore_processed)

    def info(self) -> Dict[str, Any]:
        info = super().info()
        info.update(cluster_id=self.cluster_id, consumer_tag=self.consumer_tag, delivery_tag=self.delivery_tag,
                    exchange=self.exchange, redelivered=self.redelivered, routing_key=self.routing_key)
        return info


class ProcessContext:
    def __init__(self, message: IncomingMessage, *, requeue: bool, reject_on_redelivered: bool,
                 ignore_processed: bool) -> None:
        self.message = message
        self.requeue = requeue
        self.reject_on_redelivered = reject_on_redelivered
        self.ignore_processed = ignore_processed

    async def __aenter__(self) -> IncomingMessage:
        return self.message

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self.ignore_processed or not self.message.processed:
            if exc_type is None:
                await self.message.ack()
                return
            try:
                if self.reject_on_redelivered and self.message.redelivered:
                    log.info("Message %r was redelivered and will be rejected", self.message)
                    await self.message.reject(requeue=False)
                else:
                    await self.message.reject(requeue=self.requeue)
            except ChannelInvalidStateError:
                log.warning("Reject is not sent since channel is closed")


class Exchange:
    """An exchange, as ``aio_pika.Exchange``; ``channel.default_exchange``
    is the default (nameless) one."""

    def __init__(self, channel: "Channel", name: str, type: Union[ExchangeType, str] = ExchangeType.DIRECT, *,
                 auto_delete: bool = False, durable: bool = False, internal: bool = False, passive: bool = False,
                 arguments: Optional[Dict[str, Any]] = None) -> None:
        self.channel = channel
        self.name = name
        self._type = getattr(type, "value", type)
        self.auto_delete = auto_delete
        self.durable = durable
        self.internal = internal
        self.passive = passive
        self.arguments = arguments

    async def declare(self, timeout: Optional[float] = None) -> None:
        self.channel._blocking.exchange_declare(self.name, self._type, passive=self.passive, durable=self.durable,
                                                auto_delete=self.auto_delete, internal=self.internal,
                                                arguments=self.arguments)

    async def publish(self, message: Message, routing_key: str, *, mandatory: bool = True, immediate: bool = False,
                      timeout: Optional[float] = None) -> Optional[Any]:
        """Publish ``message`` with ``routing_key``, as aio-pika's.

        On a channel with publisher confirms (``connection.channel()``'s
        default) it returns a ``Basic.Ack``, raises ``DeliveryError`` when a
        queue refuses the message (``x-overflow: reject-publish`` at its
        limit), and, ``mandatory`` (the default) and unroutable, hands the
        message to the channel's ``return_callbacks`` and returns it (raises
        ``PublishError`` on a channel opened with ``on_return_raises=True``).
        Without confirms it returns None, and a refused or returned message
        is dropped (aio-pika logs the return), as with RabbitMQ. Publishing
        to an internal exchange raises ``ValueError``. ``timeout`` is
        accepted: the publish does not wait for a broker (a publish waiting
        for room at the memory budget is bounded by the connection's
        ``blocked_connection_timeout``, not by it)."""
        if self.internal:
            # Refused here, as aio-pika refuses it, before the channel sees it.
            raise ValueError(f"Can not publish to internal exchange: '{self.name}'!")
        if immediate:
            raise NotImplementedError("immediate: RabbitMQ refuses it (540 NOT_IMPLEMENTED), shmq too")
        return await self.channel._publish(self.name, routing_key, message, mandatory)

    async def bind(self, exchange: Union["Exchange", str], routing_key: str = "", *,
                   arguments: Optional[Dict[str, Any]] = None, timeout: Optional[float] = None) -> None:
        self.channel._blocking.exchange_bind(self.name, _name(exchange), routing_key, arguments)

    async def unbind(self, exchange: Union["Exchange", str], routing_key: str = "",
                     arguments: Optional[Dict[str, Any]] = None, timeout: Optional[float] = None) -> None:
        self.channel._blocking.exchange_unbind(self.name, _name(exchange), routing_key, arguments)

    async def delete(self, if_unused: bool = False, timeout: Optional[float] = None) -> None:
        self.channel._blocking.exchange_delete(self.name, if_unused)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Exchange({self.name}): auto_delete={self.auto_delete}, durable={self.durable}, " \
               f"arguments={self.arguments!r})>"


def _name(thing: Any) -> str:
    return thing if isinstance(thing, str) else thing.name


class Queue:
    """A queue, as ``aio_pika.Queue``."""

    def __init__(self, channel: "Channel", name: str, durable: bool, exclusive: bool, auto_delete: bool,
                 arguments: Optional[Dict[str, Any]], passive: bool = False) -> None:
        self.channel = channel
        self.name = name
        self.durable = durable
        self.exclusive = exclusive
        self.auto_delete = auto_delete
        self.arguments = arguments
        self.passive = passive
        self.declaration_result: Any = None

    async def declare(self, timeout: Optional[float] = None) -> Any:
        frame = self.channel._blocking.queue_declare(self.name, passive=self.passive, durable=self.durable,
                                                     exclusive=self.exclusive, auto_delete=self.auto_delete,
                                                     arguments=self.arguments)
        self.name = frame.method.queue
        self.declaration_result = frame.method
        return frame.method

    async def bind(self, exchange: Union[Exchange, str], routing_key: Optional[str] = None, *,
                   arguments: Optional[Dict[str, Any]] = None, timeout: Optional[float] = None) -> None:
        """As aio-pika's: ``routing_key`` defaults to the queue's name."""
        self.channel._blocking.queue_bind(self.name, _name(exchange),
                                          self.name if routing_key is None else routing_key, arguments)

    async def unbind(self, exchange: Union[Exchange, str], routing_key: Optional[str] = None,
                     arguments: Optional[Dict[str, Any]] = None, timeout: Optional[float] = None) -> None:
        self.channel._blocking.queue_unbind(self.name, _name(exchange),
                                            self.name if routing_key is None else routing_key, arguments)

    async def consume(self, callback: Callable[[IncomingMessage], Any], no_ack: bool = False,
                      exclusive: bool = False, arguments: Optional[Dict[str, Any]] = None,
                      consumer_tag: Optional[str] = None, timeout: Optional[float] = None) -> str:
        """Call ``callback(message)`` for each delivery, each in its own
        task (a coroutine function's, or a plain function's result when it
        is awaitable); returns the consumer tag. Without ``no_ack`` the
        callback settles the message (``message.process()``); the channel's
        ``prefetch_count`` bounds how many are unsettled at once."""
        return self.channel._consume(self, callback, no_ack, exclusive, arguments, consumer_tag)

    async def cancel(self, consumer_tag: str, timeout: Optional[float] = None, nowait: bool = False) -> None:
        self.channel._blocking.basic_cancel(consumer_tag)

    async def get(self, *, no_ack: bool = False, fail: bool = True,
                  timeout: Optional[float] = 5) -> Optional[IncomingMessage]:
        """One message (basic.get), or ``QueueEmpty`` (None with
        ``fail=False``) if none is ready."""
        channel = self.channel
        method, props, body = channel._blocking.basic_get(self.name, auto_ack=no_ack)
        if method is None:
            if fail:
                raise QueueEmpty()
            return None
        return IncomingMessage(channel, body, props, delivery_tag=method.delivery_tag, consumer_tag=None,
                               exchange=method.exchange, routing_key=method.routing_key,
                               redelivered=method.redelivered, message_count=method.message_count, no_ack=no_ack)

    async def purge(self, no_wait: bool = False, timeout: Optional[float] = None) -> Any:
        return self.channel._blocking.queue_purge(self.name).method

    async def delete(self, *, if_unused: bool = True, if_empty: bool = True, timeout: Optional[float] = None) -> Any:
        """As aio-pika's: by default only an unused, empty queue."""
        return self.channel._blocking.queue_delete(self.name, if_unused=if_unused, if_empty=if_empty).method

    def iterator(self, **kwargs: Any) -> "QueueIterator":
        """``async with queue.iterator() as it: async for message in it``;
        ``kwargs`` as ``consume``'s, and ``timeout`` (seconds without a
        message before the iteration ends with ``TimeoutError``)."""
        return QueueIterator(self, **kwargs)

    def __aiter__(self) -> "QueueIterator":
        return self.iterator()

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Queue({self.name}): auto_delete={self.auto_delete}, durable={self.durable}, " \
               f"exclusive={self.exclusive}, arguments={self.arguments!r}>"


class QueueIterator:
    """As aio-pika's: consumes the queue while it is iterated, yields each
    delivery, and on ``close()`` (leaving ``async with``) cancels the
    consumer and requeues what it received and did not yield."""

    def __init__(self, queue: Queue, **kwargs: Any) -> None:
        self._amqp_queue = queue
        self._queue: "asyncio.Queue[IncomingMessage]" = asyncio.Queue()
        self._timeout: Optional[float] = kwargs.pop("timeout", None)
        self._consume_kwargs = kwargs
        self._consumer_tag: Optional[str] = None
        self._closed = False

    @property
    def consumer_tag(self) -> Optional[str]:
        return self._consumer_tag

    async def _on_message(self, message: IncomingMessage) -> None:
        self._queue.put_nowait(message)

    async def consume(self) -> None:
        self._consumer_tag = await self._amqp_queue.consume(self._on_message, **self._consume_kwargs)

    async def close(self) -> None:
        self._closed = True
        tag, self._consumer_tag = self._consumer_tag, None
        channel = self._amqp_queue.channel
        if tag is None or channel.is_closed:
            return
        channel._blocking.basic_cancel(tag)
        no_ack = self._consume_kwargs.get("no_ack", False)
        while not self._queue.empty():
            message = self._queue.get_nowait()
            if no_ack:
                log.warning("Message %r lost for consumer with no_ack %r", message, self)
            else:
                await message.nack(requeue=True)
        # Wake an __anext__ waiting in another task.
        self._queue.put_nowait(None)  # type: ignore[arg-type]

    def __aiter__(self) -> "QueueIterator":
        return self

    async def __aenter__(self) -> "QueueIterator":
        if self._consumer_tag is None:
            await self.consume()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def __anext__(self) -> IncomingMessage:
        if self._closed:
            raise StopAsyncIteration
        if self._consumer_tag is None:
            await self.consume()
        try:
            if self._timeout is not None and self._timeout > 0:
                message = await asyncio.wait_for(self._queue.get(), self._timeout)
            else:
                message = await self._queue.get()
        except (asyncio.TimeoutError, asyncio.CancelledError):
            await self.close()
            raise
        if message is None or self._amqp_queue.channel.is_closed:
            raise StopAsyncIteration
        return message

    def __repr__(self) -> str:
        return f"<QueueIterator: queue={self._amqp_queue.name!r} ctag={self._consumer_tag!r}>"


class Channel:
    """A channel, as ``aio_pika.Channel``: ``async with`` closes it.

    With ``publisher_confirms`` (the default, as in aio-pika) each publish
    returns its confirmation (see ``Exchange.publish``); without it the
    channel can be made transactional (``transaction()``)."""

    def __init__(self, connection: "Connection", publisher_confirms: bool = True,
                 on_return_raises: bool = False) -> None:
        if not publisher_confirms and on_return_raises:
            raise RuntimeError('"on_return_raises" not applicable without "publisher_confirms"')
        self.connection = connection
        self.publisher_confirms = publisher_confirms
        self.on_return_raises = on_return_raises
        self._blocking: BlockingChannel = connection._blocking.channel()
        if publisher_confirms:
            self._blocking.confirm_delivery()
        self._blocking.add_on_return_callback(self._on_return)
        # The publish sequence number, as a broker counts publishes on a
        # channel: the delivery tag of each confirmation.
        self._delivery_tag = 0
        self._returned: List[IncomingMessage] = []
        self.return_callbacks = CallbackCollection(self)
        self.close_callbacks = CallbackCollection(self)
        self._poller: Optional["asyncio.Task[None]"] = None
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self.default_exchange = Exchange(self, "", ExchangeType.DIRECT)

    @property
    def is_closed(self) -> bool:
        return self._blocking.is_closed or self.connection.is_closed

    async def set_qos(self, prefetch_count: int = 0, prefetch_size: int = 0, global_: bool = False,
                      timeout: Optional[float] = None, all_channels: Optional[bool] = None) -> None:
        """How many deliveries a consumer started afterwards may hold
        unsettled (0: no limit)."""
        self._check()
        self._blocking.basic_qos(prefetch_size, prefetch_count, global_)

    async def declare_queue(self, name: Optional[str] = None, *, durable: bool = False, exclusive: bool = False,
                            passive: bool = False, auto_delete: bool = False,
                            arguments: Optional[Dict[str, Any]] = None, timeout: Optional[float] = None) -> Queue:
        """As aio-pika's; no name: a server-named queue (``amq.gen-...``)."""
        self._check()
        queue = Queue(self, name or "", durable, exclusive, auto_delete, arguments, passive)
        await queue.declare()
        return queue

    async def get_queue(self, name: str, *, ensure: bool = True) -> Queue:
        if ensure:
            return await self.declare_queue(name, passive=True)
        return Queue(self, name, False, False, False, None, passive=True)

    async def declare_exchange(self, name: str, type: Union[ExchangeType, str] = ExchangeType.DIRECT, *,
                               durable: bool = False, auto_delete: bool = False, internal: bool = False,
                               passive: bool = False, arguments: Optional[Dict[str, Any]] = None,
                               timeout: Optional[float] = None) -> Exchange:
        self._check()
        exchange = Exchange(self, name, type, auto_delete=auto_delete, durable=durable, internal=internal,
                            passive=passive, arguments=arguments)
        if name:
            await exchange.declare()
        return exchange

    async def get_exchange(self, name: str, *, ensure: bool = True) -> Exchange:
        if ensure:
            return await self.declare_exchange(name, passive=True)
        return Exchange(self, name)

    async def queue_delete(self, queue_name: str, timeout: Optional[float] = None, if_unused: bool = False,
                           if_empty: bool = False, nowait: bool = False) -> Any:
        return self._blocking.queue_delete(queue_name, if_unused=if_unused, if_empty=if_empty).method

    async def exchange_delete(self, exchange_name: str, timeout: Optional[float] = None, if_unused: bool = False,
                              nowait: bool = False) -> None:
        self._blocking.exchange_delete(exchange_name, if_unused)

    async def close(self, exc: Optional[BaseException] = None) -> None:
        """Closes the channel: its consumers go, and what they hold
        unsettled goes back to its queues."""
        if self._poller is not None:
            poller, self._poller = self._poller, None
            if poller is not asyncio.current_task():
                poller.cancel()
        if not self._blocking.is_closed:
            self._blocking.close()
            self.close_callbacks(exc)

    async def __aenter__(self) -> "Channel":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _check(self) -> None:
        if self.is_closed:
            raise ChannelInvalidStateError("channel is closed")

    # -- publishing

    def _on_return(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        message = IncomingMessage(self, body, properties, delivery_tag=None, consumer_tag=None,
                                  exchange=method.exchange, routing_key=method.routing_key, redelivered=False,
                                  no_ack=True)
        if self.publisher_confirms:
            self._returned.append(message)  # for the publish it answers
        else:
            # aio-pika (aiormq) matches a return to its publish by the
            # publish's confirmation: without confirms it has none, and
            # logs the message instead of calling the return callbacks.
            log.error("Unhandled message %r returning", message)

    async def _publish(self, exchange: str, routing_key: str, message: Message, mandatory: bool) -> Optional[Any]:
        self._check()
        properties = message.properties
        if not properties.message_id:
            # As aio-pika (aiormq): every message published carries a
            # message_id, a random UUID's hex unless it has one.
            properties.message_id = uuid.uuid4().hex
        self._delivery_tag += 1
        tag = self._delivery_tag
        refused = False
        try:
            self._blocking.basic_publish(exchange, routing_key, message.body, properties, mandatory)
        except NackError:  # confirms only: a queue refused it
            refused = True
        except UnroutableError:  # confirms only: also handed to _on_return, next
            pass
        self._blocking._deliver_returns()
        returned, self._returned = self._returned, []
        await asyncio.sleep(0)
        if not self.publisher_confirms:
            return None
        if refused:
            # RabbitMQ nacks a refused publish with multiple=True when
            # nothing older is unconfirmed, as is always so here.
            raise DeliveryError(None, Basic.Nack(delivery_tag=tag, multiple=True))
        if returned:
            frame = Basic.Return(reply_code=312, reply_text="NO_ROUTE", exchange=exchange, routing_key=routing_key)
            if self.on_return_raises:
                raise PublishError(returned[0], frame)
            self.return_callbacks(returned[0])
            return returned[0]
        return Basic.Ack(delivery_tag=tag, multiple=False)

    def transaction(self) -> "Transaction":
        """A transaction on this channel, as aio-pika's (``async with
        channel.transaction():`` commits, or rolls back on an exception):
        the channel's publishes and acks take effect at its commit. A
        channel with publisher confirms has none: ``RuntimeError``."""
        if self.publisher_confirms:
            raise RuntimeError("Cannot create transaction when publisher confirms are enabled")
        return Transaction(self)

    # -- consuming

    def _consume(self, queue: Queue, callback: Callable[[IncomingMessage], Any], no_ack: bool, exclusive: bool,
                 arguments: Optional[Dict[str, Any]], consumer_tag: Optional[str]) -> str:
        self._check()
        loop = asyncio.get_running_loop()
        tags: List[str] = []

        def deliver(_ch: Any, method: Any, properties: Any, body: bytes) -> None:
            message = IncomingMessage(self, body, properties, delivery_tag=method.delivery_tag,
                                      consumer_tag=method.consumer_tag, exchange=method.exchange,
                                      routing_key=method.routing_key, redelivered=method.redelivered, no_ack=no_ack)
            self._spawn(loop, callback, message)

        tag = self._blocking.basic_consume(queue.name, deliver, auto_ack=no_ack, exclusive=exclusive,
                                           consumer_tag=consumer_tag, arguments=arguments)
        tags.append(tag)
        if self._poller is None or self._poller.done():
            self._poller = loop.create_task(self._poll())
        return tag

    def _spawn(self, loop: asyncio.AbstractEventLoop, callback: Callable[[IncomingMessage], Any],
               message: IncomingMessage) -> None:
        async def run() -> Any:
            result = callback(message)
            if inspect.isawaitable(result):
                result = await result
            return result

        task = loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: "asyncio.Task[Any]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.exception("Consumer callback failed", exc_info=task.exception())

    async def _poll(self) -> None:
        """Deliver what the channel's consumers hold ready, while it has
        any; idle, back off from 0 to 1 ms."""
        blocking = self._blocking
        delay = 0.0
        while not self.is_closed and blocking._subs:
            if blocking._deliver_ready():
                delay = 0.0
                await asyncio.sleep(0)
                continue
            self.connection._blocking._housekeep()  # the namespace's timers (TTLs, expiry)
            await asyncio.sleep(delay)
            delay = min(0.001, delay * 2 or 0.00005)
        if self._poller is asyncio.current_task():
            self._poller = None


class TransactionState(str, enum.Enum):
    """As ``aio_pika.abc.TransactionState`` (its spelling too)."""

    CREATED = "created"
    COMMITED = "commited"
    ROLLED_BACK = "rolled back"
    STARTED = "started"


class Transaction:
    """A transaction, as ``aio_pika.Transaction`` (from
    ``channel.transaction()``): ``select()`` makes the channel
    transactional; from then on its publishes and its acks, nacks and
    rejects are held until ``commit()`` carries them out, in order, or
    ``rollback()`` drops them (the deliveries stay unacked). ``async with``
    selects, then commits, or rolls back if the block raises. ``state``
    says which of these ran last."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self.state = TransactionState.CREATED

    @property
    def channel(self) -> Channel:
        if self._channel.is_closed:
            raise RuntimeError("Closed channel")
        return self._channel

    async def select(self, timeout: Optional[float] = None) -> Any:
        self.channel._blocking.tx_select()
        self.state = TransactionState.STARTED
        return Tx.SelectOk()

    async def commit(self, timeout: Optional[float] = None) -> Any:
        channel = self.channel
        channel._blocking.tx_commit()
        channel._blocking._deliver_returns()  # what the commit published and no queue took
        self.state = TransactionState.COMMITED
        return Tx.CommitOk()

    async def rollback(self, timeout: Optional[float] = None) -> Any:
        self.channel._blocking.tx_rollback()
        self.state = TransactionState.ROLLED_BACK
        return Tx.RollbackOk()

    async def __aenter__(self) -> "Transaction":
        await self.select()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            await self.rollback()
        else:
            await self.commit()

    def __str__(self) -> str:
        return self.state.value

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self.state.value}>"


class Connection:
    """A connection to a namespace, as ``aio_pika.Connection``: ``async
    with`` closes it (and its channels)."""

    def __init__(self, parameters: ConnectionParameters) -> None:
        self._blocking = BlockingConnection(parameters)
        self._channels: List[Channel] = []
        self.close_callbacks = CallbackCollection(self)

    @property
    def is_closed(self) -> bool:
        return not self._blocking.is_open

    async def channel(self, channel_number: Optional[int] = None, publisher_confirms: bool = True,
                      on_return_raises: bool = False) -> Channel:
        if self.is_closed:
            raise ChannelInvalidStateError("connection is closed")
        channel = Channel(self, publisher_confirms=publisher_confirms, on_return_raises=on_return_raises)
        self._channels.append(channel)
        return channel

    async def ready(self) -> None:
        return None

    async def close(self, exc: Optional[BaseException] = None) -> None:
        if self.is_closed:
            return
        for channel in self._channels:
            await channel.close(exc)
        self._channels.clear()
        self._blocking.close()
        self.close_callbacks(exc)

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class RobustConnection(Connection):
    """``connect_robust``'s connection. There is no broker to lose, so it
    is an ordinary one."""


RobustChannel = Channel
RobustQueue = Queue
RobustExchange = Exchange


def _parameters(url: Any, namespace: Optional[str], memory_budget: Optional[int]) -> ConnectionParameters:
    if namespace is not None:
        return ConnectionParameters(namespace=namespace, memory_budget=memory_budget)
    if url is None:
        return ConnectionParameters(memory_budget=memory_budget)
    params = URLParameters(str(url))
    params.memory_budget = memory_budget
    return params


async def connect(url: Any = None, *, namespace: Optional[str] = None, memory_budget: Optional[int] = None,
                  **kwargs: Any) -> Connection:
    """As ``aio_pika.connect``: no URL connects to the namespace in
    ``$SHMQ_NAMESPACE`` (else ``default``), as aio-pika's connects to
    localhost; ``shm://NAME`` (``shm:///path``) names one; an ``amqp://``
    URL is the default namespace, its address ignored with a warning.
    aio-pika's other keyword arguments (host, login, ssl...) are accepted
    and have no use here."""
    return Connection(_parameters(url, namespace, memory_budget))


async def connect_robust(url: Any = None, *, namespace: Optional[str] = None, memory_budget: Optional[int] = None,
                         **kwargs: Any) -> RobustConnection:
    """As ``aio_pika.connect_robust`` (see ``connect``)."""
    return RobustConnection(_parameters(url, namespace, memory_budget))


# ``from shmq.aio.abc import AbstractIncomingMessage``, as ``aio_pika.abc``.
abc = types.ModuleType(__name__ + ".abc", "aio-pika's abstract types: shmq.aio's classes under aio_pika.abc's names.")
abc.AbstractMessage = Message  # type: ignore[attr-defined]
abc.AbstractIncomingMessage = IncomingMessage  # type: ignore[attr-defined]
abc.AbstractProcessContext = ProcessContext  # type: ignore[attr-defined]
abc.AbstractQueue = Queue  # type: ignore[attr-defined]
abc.AbstractQueueIterator = QueueIterator  # type: ignore[attr-defined]
abc.AbstractExchange = Exchange  # type: ignore[attr-defined]
abc.AbstractChannel = Channel  # type: ignore[attr-defined]
abc.AbstractRobustChannel = Channel  # type: ignore[attr-defined]
abc.AbstractConnection = Connection  # type: ignore[attr-defined]
abc.AbstractRobustConnection = RobustConnection  # type: ignore[attr-defined]
abc.DeliveryMode = DeliveryMode  # type: ignore[attr-defined]
abc.ExchangeType = ExchangeType  # type: ignore[attr-defined]
abc.AbstractTransaction = Transaction  # type: ignore[attr-defined]
abc.TransactionState = TransactionState  # type: ignore[attr-defined]
sys.modules[abc.__name__] = abc

# ``from shmq.aio.exceptions import DeliveryError``, as ``aio_pika.exceptions``.
exceptions = types.ModuleType(__name__ + ".exceptions",
                              "aio-pika's exceptions: shmq.aio's under aio_pika.exceptions' names.")
for _name_, _exception_ in dict(
        AMQPException=AMQPException, AMQPError=AMQPException, MessageProcessError=MessageProcessError,
        QueueEmpty=QueueEmpty, ChannelInvalidStateError=ChannelInvalidStateError, DeliveryError=DeliveryError,
        PublishError=PublishError, ChannelClosed=ChannelClosedByBroker).items():
    setattr(exceptions, _name_, _exception_)
del _name_, _exception_
sys.modules[exceptions.__name__] = exceptions
