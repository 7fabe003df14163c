"""asyncio support: consume and publish from coroutines, without threads.

A receive polls the queue (no syscall, no GIL release) and, while it is
empty, awaits ``asyncio.sleep`` with a backoff from 0 to 1 ms, so the event
loop keeps running other tasks. Publishing does not wait unless a queue with
the ``block`` policy is full.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Optional

from . import Consumer, Message, Namespace, BasicProperties


class AsyncConsumer:
    """``async for msg in AsyncConsumer(ns, 'queue')`` or ``await c.recv()``."""

    def __init__(self, ns: Namespace, queue: str, manual_ack: bool = False, prefetch: int = 0) -> None:
        self._consumer: Consumer = ns.consumer(queue, manual_ack, prefetch)

    async def recv(self, timeout: Optional[float] = None) -> Optional[Message]:
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

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
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
