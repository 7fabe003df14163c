"""Celery on shmq (shmq.kombu): real `celery worker` processes with the
prefork pool, each test against a fresh namespace. Round trips over the
rpc:// result backend, acks_late tasks surviving a kill -9 of their pool
process and of their whole worker, ETA tasks, a broadcast revoke, task
events, and the seed's two scenarios as the Celery apps in
examples/python/celery/.

The workers run the tasks defined in this module (`celery -A test_celery`,
with the namespace in $SHMQ_NAMESPACE); the tests send them by name from a
client app of their own. Every wait is bounded, and a failing test prints
its workers' logs.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from celery.exceptions import TaskRevokedError

import shmq
import shmq.kombu  # noqa: F401 - registers shmq://

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples" / "python" / "celery"

# -- what the workers run

app = Celery("test_celery", broker="shmq://", backend="rpc://")  # shmq://: $SHMQ_NAMESPACE
app.conf.update(
    worker_prefetch_multiplier=1,
    # How long the worker waits for a pool process that died mid-task to
    # report before it counts the task lost (10 s by default).
    worker_lost_wait=1.0,
)


@app.task
def add(x, y):
    return x + y


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True)
def record_run(self, marker, seconds=0.0):
    """Appends who runs it (worker, pool process, redelivered?) to the file
    `marker`, then works for `seconds` (on its first delivery only, so that
    a test can kill it mid-task and see the redelivery finish at once)."""
    redelivered = self.request.delivery_info["redelivered"]
    with open(marker, "a") as f:
        f.write(f"{self.request.hostname} {os.getpid()} {redelivered}\n")
    if not redelivered:
        time.sleep(seconds)
    return self.request.hostname


# -- running workers


def wait_for(condition, timeout, what):
    """Poll `condition` until it is true; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def runs(marker):
    """The runs `record_run` wrote to `marker`: [(worker, pid, redelivered)]."""
    if not marker.exists():
        return []
    lines = marker.read_text().splitlines()
    return [(host, int(pid), flag == "True") for host, pid, flag in (line.split() for line in lines)]


class Worker:
    """A `celery worker` process (prefork pool) in a process group of its
    own, so that kill -9 can take it with its pool; its output goes to a log
    file."""

    def __init__(self, name, namespace, log_dir, app_module="test_celery", cwd=HERE, options=()):
        self.name = name
        self.hostname = f"{name}@{os.uname().nodename}"
        self.log = log_dir / f"{name}.log"
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", app_module, "worker", "-n", self.hostname, "--loglevel=INFO",
                 *options],
                cwd=cwd, env=dict(os.environ, SHMQ_NAMESPACE=namespace), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    def output(self):
        return self.log.read_text()

    def wait_ready(self, timeout=30):
        wait_for(lambda: f"{self.hostname} ready." in self.output() or self.process.poll() is not None, timeout,
                 f"worker {self.name} to start")
        assert self.process.poll() is None, f"worker {self.name} exited with {self.process.returncode}"

    def kill(self):
        """kill -9 the worker and its pool processes."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # gone already
        self.process.wait(10)

    def stop(self, timeout=20):
        """A warm shutdown (4 to 7 s: Celery's blocking loop looks for it
        between 2 s turns); returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


@pytest.fixture
def workers(namespace, tmp_path):
    """Starts workers on the test's namespace: ``workers(name, ...)`` takes
    ``Worker``'s keyword arguments, returns once the worker is ready. They
    are killed afterwards (a warm shutdown takes seconds; one test checks
    it), and their logs printed (pytest shows them when the test failed)."""
    started = []

    def start(*names, **kwargs):
        new = [Worker(name, namespace, tmp_path, **kwargs) for name in names]
        started.extend(new)
        for worker in new:
            worker.wait_ready()
        return new[0] if len(new) == 1 else new

    yield start
    for worker in started:
        worker.kill()
    for worker in started:
        print(f"===== {worker.name} (exit {worker.process.returncode}) =====\n{worker.output()}")


@pytest.fixture
def client(namespace):
    """A Celery app that sends tasks to the test's namespace and gets their
    results over rpc://."""
    sender = Celery("client", broker=f"shmq://{namespace}", backend="rpc://")
    yield sender
    sender.close()


# -- the tests


def test_a_task_round_trip_with_rpc_results_and_a_clean_warm_shutdown(workers, client, namespace):
    w1 = workers("w1", options=["-c", "2"])
    assert client.send_task("test_celery.add", (2, 3)).get(timeout=10) == 5
    results = [client.send_task("test_celery.add", (i, i)) for i in range(20)]
    assert [r.get(timeout=10) for r in results] == [2 * i for i in range(20)]
    with pytest.raises(TypeError):  # the task's error comes back too
        client.send_task("test_celery.add", (1,)).get(timeout=10)
    assert w1.stop() == 0
    # Only the task's own error; nothing went wrong in the worker itself.
    assert "ERROR/MainProcess" not in w1.output() and "unsendable" not in w1.output()
    stats = shmq.Namespace(namespace).stats("celery")
    assert (stats["ready"], stats["unacked"], stats["consumers"]) == (0, 0, 0)
    for i in range(3):  # with no worker left, they wait, until purged
        client.send_task("test_celery.add", (i, i))
    assert client.control.purge() == 3
    assert shmq.Namespace(namespace).stats("celery")["ready"] == 0


def test_an_acks_late_task_whose_pool_process_is_killed_runs_again(workers, client, tmp_path):
    # task_reject_on_worker_lost: the worker rejects it back to its queue.
    w1 = workers("w1", options=["-c", "1"])
    marker = tmp_path / "runs"
    result = client.send_task("test_celery.record_run", (str(marker), 30.0))
    wait_for(lambda: runs(marker), 10, "the task to start")
    (_host, pool_pid, redelivered), = runs(marker)
    assert not redelivered
    os.kill(pool_pid, signal.SIGKILL)
    assert result.get(timeout=20) == w1.hostname
    second = runs(marker)[1]
    assert second[1] != pool_pid and second[2] is True


def test_an_acks_late_task_of_a_worker_killed_with_kill_9_runs_on_another_worker(workers, client, tmp_path):
    # Nothing acked it and its worker is gone: shmq's liveness sweep hands
    # the delivery back, and the other worker takes it.
    w1, w2 = workers("w1", "w2", options=["-c", "1"])
    marker = tmp_path / "runs"
    result = client.send_task("test_celery.record_run", (str(marker), 30.0))
    wait_for(lambda: runs(marker), 10, "the task to start")
    (first_host, _pid, redelivered), = runs(marker)
    assert not redelivered
    killed, survivor = (w1, w2) if first_host == w1.hostname else (w2, w1)
    killed.kill()
    assert result.get(timeout=20) == survivor.hostname
    assert runs(marker)[1][0] == survivor.hostname and runs(marker)[1][2] is True


def test_countdown_tasks_wait_without_holding_back_other_tasks(workers, client):
    # One pool process, prefetch 1: the worker raises its prefetch for each
    # ETA task it holds, so a task sent after three of them runs at once.
    workers("w1", options=["-c", "1"])
    sent = time.monotonic()
    later = [client.send_task("test_celery.add", (i, 100), countdown=2) for i in range(3)]
    assert client.send_task("test_celery.add", (1, 1)).get(timeout=10) == 2
    assert not any(r.ready() for r in later)  # it did not wait for them
    assert [r.get(timeout=10) for r in later] == [100, 101, 102]
    assert time.monotonic() - sent >= 2.0


def test_a_revoke_is_broadcast_to_every_worker_and_the_task_never_runs(workers, client, tmp_path):
    w1, w2 = workers("w1", "w2", options=["-c", "1"])
    pongs = client.control.ping(timeout=5, limit=2)
    assert sorted(name for reply in pongs for name in reply) == [w1.hostname, w2.hostname]
    marker = tmp_path / "runs"
    result = client.send_task("test_celery.record_run", (str(marker),), countdown=2)
    client.control.revoke(result.id)
    revoked = client.control.inspect(timeout=5, limit=2).revoked()
    assert revoked == {w1.hostname: [result.id], w2.hostname: [result.id]}
    with pytest.raises(TaskRevokedError):
        result.get(timeout=10)
    assert runs(marker) == []


def test_task_events_reach_a_monitor_through_the_event_exchange(workers, client, namespace):
    # `celery events` and Flower listen so: a topic exchange, an auto-delete
    # queue with x-message-ttl and x-expires.
    w1 = workers("w1", options=["-c", "1", "-E"])
    seen, monitor_queue = [], []
    deadline = time.monotonic() + 15
    with client.connection_for_read() as conn:
        def on_event(event):
            seen.append((event["type"], event.get("hostname")))
            monitor_queue.append(shmq.Namespace(namespace).stats(receiver.queue.name)["arguments"])
            receiver.should_stop = event["type"] == "task-succeeded" or time.monotonic() > deadline

        receiver = client.events.Receiver(conn, handlers={"*": on_event})
        # Sent once the monitor's queue is bound: events before that go nowhere.
        receiver.on_consume_ready = lambda *args, **kwargs: client.send_task("test_celery.add", (1, 2))
        receiver.capture(limit=100, timeout=10, wakeup=False)
    assert [kind for kind, host in seen if host == w1.hostname and kind.startswith("task-")] == [
        "task-received", "task-started", "task-succeeded"]
    assert monitor_queue[0] == {"x-message-ttl": 5000, "x-expires": 60000}
    with pytest.raises(shmq.QueueNotFound):  # auto-deleted with its consumer
        shmq.Namespace(namespace).stats(receiver.queue.name)


# -- the seed's scenarios: examples/python/celery/


def test_example_registration_sends_email_and_sms_asynchronously(workers, namespace):
    here = EXAMPLES / "registration"
    email, sms = (workers(name, app_module="tasks", cwd=here, options=["-Q", name, "-c", "1"])
                  for name in ("email", "sms"))
    web = subprocess.run([sys.executable, "register_user.py", "alice@example.com", "bob@example.com", "--wait"],
                         cwd=here, env=dict(os.environ, SHMQ_NAMESPACE=namespace), capture_output=True, text=True,
                         timeout=60)
    assert web.returncode == 0, web.stderr
    lines = web.stdout.splitlines()
    assert [line.split(";")[0] for line in lines[:2]] == [" [web] registered alice@example.com",
                                                          " [web] registered bob@example.com"]
    assert lines[2:] == [f" [web] welcome {what} sent to {user} by {worker.hostname}"
                         for user in ("alice@example.com", "bob@example.com")
                         for what, worker in (("e-mail", email), ("SMS", sms))]


def test_example_orders_wait_for_the_inventory_worker(workers, namespace):
    here = EXAMPLES / "orders"
    shop = subprocess.run([sys.executable, "place_order.py", "3"], cwd=here,
                          env=dict(os.environ, SHMQ_NAMESPACE=namespace), capture_output=True, text=True, timeout=60)
    assert shop.returncode == 0, shop.stderr
    orders = [f"order-{i}: 1 x widget" for i in (1, 2, 3)]
    assert shop.stdout.splitlines() == [f" [orders] placed {order}" for order in orders]
    assert shmq.Namespace(namespace).stats("inventory")["ready"] == 3  # nobody to take them yet
    inventory = workers("inventory", app_module="tasks", cwd=here, options=["-Q", "inventory", "-c", "2"])
    wait_for(lambda: all(f"reserved stock for {order}" in inventory.output() for order in orders), 20,
             "the inventory worker to reserve stock for the three orders")
    wait_for(lambda: shmq.Namespace(namespace).stats("inventory")["unacked"] == 0, 10, "the acks")
    assert shmq.Namespace(namespace).stats("inventory")["ready"] == 0
