"""The seed's decoupling scenario as a Celery app: placing an order queues
a reserve_stock task on the `inventory` queue. While the inventory worker is
down the tasks wait there; they run when it starts.

    python place_order.py 3
    celery -A tasks worker -Q inventory -n inventory@%h
"""
import shmq.kombu  # noqa: F401 - registers shmq:// with kombu
from celery import Celery
from celery.utils.log import get_task_logger

# No result backend: the shop does not wait for the stock to be reserved.
app = Celery("orders", broker="shmq://")
app.conf.task_routes = {"tasks.reserve_stock": {"queue": "inventory"}}
# An order leaves its queue when its stock is reserved, not when a worker
# takes it: a worker killed on the way leaves it for the next one.
app.conf.task_acks_late = True

logger = get_task_logger(__name__)


@app.task
def reserve_stock(order):
    logger.info("reserved stock for %s", order)
