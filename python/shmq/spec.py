"""``pika.spec``'s names that pika code uses, so that ``from pika import
spec`` (or ``pika.spec.BasicProperties``) ports to ``shmq.spec``: the
properties class, the delivery-mode constants, and the method classes
callbacks and calls return (``spec.Basic.Deliver`` for ``isinstance``
checks, ``spec.Queue.DeclareOk`` and so on).

Example::

    from shmq import spec
    props = spec.BasicProperties(delivery_mode=spec.PERSISTENT_DELIVERY_MODE)
"""

from . import BasicProperties, Deliver, GetOk, Return, _QueueDeclareOk

#: ``delivery_mode`` of a message that survives a broker restart.
PERSISTENT_DELIVERY_MODE = 2
#: ``delivery_mode`` of a message that does not.
TRANSIENT_DELIVERY_MODE = 1


class Basic:
    """``pika.spec.Basic``'s method classes."""

    Deliver = Deliver
    GetOk = GetOk
    Return = Return


class Queue:
    """``pika.spec.Queue``'s method classes."""

    DeclareOk = _QueueDeclareOk


__all__ = ["BasicProperties", "Basic", "Queue", "PERSISTENT_DELIVERY_MODE", "TRANSIENT_DELIVERY_MODE"]
