"""Type stubs of the Rust extension module `shmq._native`."""

from typing import Any, Callable, Dict, List, Optional, Tuple

class ShmqError(Exception): ...
class QueueNotFound(ShmqError): ...
class ExchangeNotFound(ShmqError): ...
class PreconditionFailed(ShmqError): ...
class InvalidArgument(PreconditionFailed):
    """A queue argument shmq does not implement, or of a wrong type or
    value; `reply_text` is RabbitMQ's 406 text for it."""
    reply_text: str
class AccessRefused(ShmqError):
    """Refused: the queue is in exclusive use; `reply_text` is RabbitMQ's 403 text."""
    reply_text: str
class QueueFull(ShmqError): ...
class Unroutable(ShmqError): ...
class UnknownDeliveryTag(ShmqError): ...

QUEUE_ARGUMENTS: List[str]
MAX_HEADER_DEPTH: int

def check_queue_arguments(queue: str, arguments: Optional[Dict[str, Any]] = None) -> None:
    """Raise `InvalidArgument` if `arguments` would be refused at declare."""

def topic_matches(binding_key: str, routing_key: str) -> bool:
    """True if `routing_key` matches the topic pattern `binding_key`."""

class Message:
    body: bytes
    delivery_tag: int
    redelivered: bool
    delivery_count: int
    exchange: str
    routing_key: str
    properties: Dict[str, Any]

class Consumer:
    queue: str
    unacked: int
    def recv(self, timeout: Optional[float] = None) -> Optional[Message]:
        """Wait for a message (None: forever); None on timeout. Releases the GIL."""
    def try_recv(self) -> Optional[Message]: ...
    def ack(self, delivery_tag: int) -> None: ...
    def nack(self, delivery_tag: int, requeue: bool = True) -> None: ...
    def cancel(self) -> None: ...

class Publisher:
    def publish(self, exchange: str, routing_key: str, body: bytes, props: Optional[Dict[str, Any]] = None,
                mandatory: bool = False) -> int:
        """Publish; returns how many queues the message reached. Waits for
        room with the GIL released; Ctrl-C raises KeyboardInterrupt."""
    def publish_routed(self, exchange: str, routing_key: str, body: bytes, props: Optional[Dict[str, Any]] = None,
                       mandatory: bool = False) -> Tuple[int, int]:
        """Publish; returns (queues reached, queues that refused it)."""
    def set_wait_callback(self, callback: Optional[Callable[[str], Any]] = None) -> None:
        """`callback("memory" | "queue-full")` every 10-50 ms while a publish
        waits; an exception it raises stops the publish and is raised by it."""
    def set_publish_timeout(self, timeout: Optional[float] = None) -> None:
        """Most seconds a publish waits for room (None: no limit)."""
    def is_blocked(self) -> bool:
        """True while flow control (the memory budget) holds this publisher back."""

class Namespace:
    path: str
    def __init__(self, name: Optional[str] = None, memory_budget: Optional[int] = None) -> None: ...
    def declare_queue(self, name: str, passive: bool = False, exclusive: bool = False, auto_delete: bool = False,
                      durable: bool = False, capacity_bytes: Optional[int] = None, max_length: Optional[int] = None,
                      max_length_bytes: Optional[int] = None,
                      max_message_bytes: Optional[int] = None, overflow: Optional[str] = None,
                      message_ttl_ms: Optional[int] = None,
                      arguments: Optional[Dict[str, Any]] = None) -> Tuple[str, int, int]: ...
    def housekeep(self) -> Tuple[int, int]:
        """Dead-letter expired messages of unconsumed queues and delete queues
        past their x-expires now: (messages dead-lettered, queues deleted)."""
    def delete_queue(self, name: str) -> None: ...
    def purge_queue(self, name: str) -> int: ...
    def list_queues(self) -> List[str]: ...
    def queue_stats(self, name: str) -> Dict[str, Any]: ...
    def declare_exchange(self, name: str, kind: str = "direct", passive: bool = False, auto_delete: bool = False,
                         internal: bool = False, alternate_exchange: Optional[str] = None,
                         durable: bool = False) -> None: ...
    def delete_exchange(self, name: str, if_unused: bool = False) -> None: ...
    def bind_queue(self, queue: str, exchange: str, key: str = "", arguments: Optional[Dict[str, Any]] = None) -> None: ...
    def unbind_queue(self, queue: str, exchange: str, key: str = "", arguments: Optional[Dict[str, Any]] = None) -> None: ...
    def publisher(self) -> Publisher: ...
    def declare_reply_queue(self) -> str: ...
    def bind_exchange(self, destination: str, source: str, key: str = "", arguments: Optional[Dict[str, Any]] = None) -> None: ...
    def unbind_exchange(self, destination: str, source: str, key: str = "", arguments: Optional[Dict[str, Any]] = None) -> None: ...
    def consumer(self, queue: str, manual_ack: bool = False, prefetch: int = 0,
                 delivery_count_header: Optional[str] = None, get_only: bool = False,
                 exclusive: bool = False, priority: int = 0) -> Consumer: ...
