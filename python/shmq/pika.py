"""shmq under pika's module name, for code that reads ``from shmq import
pika`` (the other way is ``import shmq as pika``): everything ``shmq``
exports, with pika's submodules ``exceptions``, ``spec`` and
``exchange_type``.

Example::

    from shmq import pika
    connection = pika.BlockingConnection(pika.ConnectionParameters(namespace='app'))
"""

from . import *  # noqa: F401,F403 - the whole pika-style API
from . import __all__ as _everything
from . import exceptions, exchange_type, spec  # noqa: F401 - pika's submodules

__all__ = [*_everything, "exceptions", "exchange_type", "spec"]
