"""The seed's asynchronous-processing scenario as a Celery app: registering
a user queues a welcome e-mail and a welcome SMS, each a task on a queue of
its own, and workers elsewhere send them after the web request returned.

    celery -A tasks worker -Q email -n email@%h
    celery -A tasks worker -Q sms -n sms@%h
    python register_user.py alice@example.com --wait
"""
import time

import shmq.kombu  # noqa: F401 - registers shmq:// with kombu
from celery import Celery

# shmq:// is the namespace $SHMQ_NAMESPACE names (else 'default');
# rpc:// sends each result back to the caller over the same namespace.
app = Celery("registration", broker="shmq://", backend="rpc://")
app.conf.task_routes = {
    "tasks.send_welcome_email": {"queue": "email"},
    "tasks.send_welcome_sms": {"queue": "sms"},
}


@app.task(bind=True)
def send_welcome_email(self, user):
    time.sleep(0.2)  # the mail server is slow; the web request does not wait for it
    return f"welcome e-mail sent to {user} by {self.request.hostname}"


@app.task(bind=True)
def send_welcome_sms(self, user):
    time.sleep(0.2)  # the SMS gateway too
    return f"welcome SMS sent to {user} by {self.request.hostname}"
