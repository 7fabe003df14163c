"""shmq.kombu, the kombu transport, tested as kombu tests its transports
(kombu's t/integration/common.py: basic functionality, exchange types,
TTL, priority, message states), plus what this transport promises of its
own: shmq's queues and acks under kombu (sizes, refusals, a prefetch limit
that changes at once, acks from other threads, redelivery after kill -9, a
forked child that leaves its parent's deliveries alone)."""

import gc
import os
import shutil
import signal
import socket
import threading
import time
import uuid

import kombu
import pytest

import shmq
import shmq.kombu  # noqa: F401 - registers shmq://
from conftest import run_python


@pytest.fixture
def connection(namespace):
    """A kombu connection to a fresh namespace (``shmq:///dev/shm/...``)."""
    with kombu.Connection(f"shmq://{namespace}") as conn:
        yield conn


def drain(conn, timeout=0.3):
    """Drain events until none comes for `timeout` seconds."""
    try:
        while True:
            conn.drain_events(timeout=timeout)
    except socket.timeout:
        pass


def ready(namespace, queue):
    return shmq.Namespace(namespace).stats(queue)["ready"]


# -- connecting


def test_the_url_names_the_namespace_by_name_or_by_directory(namespace):
    assert shmq.kombu.namespace_of("shmq://myapp") == "myapp"
    assert shmq.kombu.namespace_of("shmq:///dev/shm/x") == "/dev/shm/x"
    assert shmq.kombu.namespace_of("shmq://") is None
    for bad in ("shmq://user:pw@myapp", "shmq://myapp:5672", "shmq://myapp/vhost", "shmq://myapp?x=1", "amqp://h"):
        with pytest.raises(ValueError):
            shmq.kombu.namespace_of(bad)

    # A directory: the queue lands in it.
    with kombu.Connection(f"shmq://{namespace}") as conn:
        conn.SimpleQueue("by_directory").put("x")
    assert ready(namespace, "by_directory") == 1

    # A name: the namespace of that name, as shmq.Namespace('name') opens it.
    name = f"kombu-url-{uuid.uuid4().hex[:8]}"
    try:
        with kombu.Connection(f"shmq://{name}") as conn:
            conn.SimpleQueue("by_name").put("x")
            assert conn.transport.driver_type == "shmq"
        assert shmq.Namespace(name).stats("by_name")["ready"] == 1
    finally:
        shutil.rmtree(shmq.Namespace(name).path, ignore_errors=True)


def test_naming_the_transport_works_without_importing_shmq_kombu_first(namespace):
    # What a Celery config loaded by another program can do.
    program = run_python("""
from celery import Celery
from kombu.transport import TRANSPORT_ALIASES
assert 'shmq' not in TRANSPORT_ALIASES
app = Celery('elsewhere', broker='shmq://', broker_transport='shmq.kombu:Transport')
with app.connection_for_write() as conn:
    conn.SimpleQueue('named').put('x')
""", namespace)
    assert program.wait(timeout=60) == 0, program.stderr.read()
    assert ready(namespace, "named") == 1


# -- basic functionality (kombu's BasicFunctionality)


def test_connect(connection):
    assert connection.connect()
    assert connection.connection
    connection.close()
    assert connection.connection is None
    assert connection.connect()
    assert connection.connection


def test_publish_consume(connection):
    test_queue = kombu.Queue("test", routing_key="test")
    received = []

    def callback(body, message):
        received.append(body)
        assert message.content_type == "application/x-python-serialize"
        assert message.delivery_info["routing_key"] == "test"
        assert message.delivery_info["exchange"] == ""
        assert message.delivery_info["redelivered"] is False
        message.ack()

    with connection as conn:
        with conn.channel() as channel:
            producer = kombu.Producer(channel)
            producer.publish({"hello": "world"}, retry=True, exchange=test_queue.exchange,
                             routing_key=test_queue.routing_key, declare=[test_queue], serializer="pickle")
            consumer = kombu.Consumer(conn, [test_queue], accept=["pickle"], callbacks=[callback])
            with consumer:
                conn.drain_events(timeout=1)
    assert received == [{"hello": "world"}]


def test_consume_empty_queue(connection):
    with connection as conn:
        with conn.SimpleQueue("empty") as queue:
            with pytest.raises(queue.Empty):
                queue.get(timeout=0.2)
        with kombu.Consumer(conn, [kombu.Queue("empty")]):
            started = time.monotonic()
            with pytest.raises(socket.timeout):
                conn.drain_events(timeout=0.3)
            assert 0.25 < time.monotonic() - started < 2


def test_simple_queue_publish_consume(connection):
    with connection as conn:
        with conn.SimpleQueue("simple_queue_test") as queue:
            queue.put({"Hello": "World"}, headers={"k1": "v1"})
            message = queue.get(timeout=1)
            assert message.payload == {"Hello": "World"}
            assert message.content_type == "application/json"
            assert message.content_encoding == "utf-8"
            assert message.headers == {"k1": "v1"}
            message.ack()
            assert queue.qsize() == 0


def test_celerys_message_headers_and_properties_round_trip(connection):
    # What a Celery task message carries: None values, a list of them, an
    # empty table, nested values, and the reply properties.
    headers = {"task": "t.add", "id": "id-1", "eta": None, "timelimit": [None, None], "stamps": {},
               "argsrepr": "(2, 3)", "retries": 0, "ignore_result": False, "nested": {"a": [1, "b", {"c": None}]}}
    with connection as conn:
        with conn.SimpleQueue("celery_like") as queue:
            queue.put("body", headers=headers, correlation_id="id-1", reply_to="replies", priority=3,
                      expiration=60, serializer="json")
            message = queue.get(timeout=1)
            assert message.headers == headers
            assert message.properties["correlation_id"] == "id-1"
            assert message.properties["reply_to"] == "replies"
            assert message.properties["priority"] == 3
            assert message.properties["expiration"] == "60000"
            assert message.properties["delivery_mode"] == 2
            message.ack()


# -- exchange types (kombu's BaseExchangeTypes)


def consume_all(conn, queues):
    """What each queue holds, as {queue name: [(routing key, body)]}, acked."""
    got = {q.name: [] for q in queues}
    for q in queues:
        def callback(body, message, name=q.name):
            got[name].append((message.delivery_info["routing_key"], body))
            message.ack()
        with kombu.Consumer(conn, [q], callbacks=[callback]):
            drain(conn, 0.1)
    return got


def test_direct(connection):
    ex = kombu.Exchange("direct_ex", type="direct")
    errors, everything = kombu.Queue("errors", ex, routing_key="error"), kombu.Queue("infos", ex, routing_key="info")
    with connection as conn:
        producer = kombu.Producer(conn, exchange=ex)
        producer.publish("disk full", routing_key="error", declare=[errors, everything])
        producer.publish("started", routing_key="info")
        producer.publish("nobody", routing_key="debug")
        assert consume_all(conn, [errors, everything]) == {"errors": [("error", "disk full")],
                                                           "infos": [("info", "started")]}


def test_fanout(connection):
    ex = kombu.Exchange("fanout_ex", type="fanout")
    a, b = kombu.Queue("fan_a", ex), kombu.Queue("fan_b", ex)
    with connection as conn:
        kombu.Producer(conn, exchange=ex).publish("to all", routing_key="ignored", declare=[a, b])
        assert consume_all(conn, [a, b]) == {"fan_a": [("ignored", "to all")], "fan_b": [("ignored", "to all")]}


def test_a_server_named_exclusive_queue_subscribes_to_a_fanout(connection):
    ex = kombu.Exchange("news", type="fanout")
    with connection as conn:
        subscriber = kombu.Queue("", ex, exclusive=True)(conn.default_channel)
        subscriber.declare()
        assert subscriber.name.startswith("amq.gen-")
        kombu.Producer(conn, exchange=ex).publish("extra!", declare=[ex])
        assert consume_all(conn, [subscriber]) == {subscriber.name: [("", "extra!")]}


def test_topic(connection):
    ex = kombu.Exchange("topic_ex", type="topic")
    kern, critical, everything = (kombu.Queue("kern", ex, routing_key="kern.*"),
                                  kombu.Queue("critical", ex, routing_key="*.critical"),
                                  kombu.Queue("all", ex, routing_key="#"))
    with connection as conn:
        producer = kombu.Producer(conn, exchange=ex)
        producer.publish("panic", routing_key="kern.critical", declare=[kern, critical, everything])
        producer.publish("crash", routing_key="app.critical")
        assert consume_all(conn, [kern, critical, everything]) == {
            "kern": [("kern.critical", "panic")],
            "critical": [("kern.critical", "panic"), ("app.critical", "crash")],
            "all": [("kern.critical", "panic"), ("app.critical", "crash")],
        }


def test_headers(connection):
    ex = kombu.Exchange("headers_ex", type="headers")
    pdf = kombu.Queue("pdf", ex, binding_arguments={"x-match": "all", "format": "pdf", "type": "report"})
    with connection as conn:
        producer = kombu.Producer(conn, exchange=ex)
        producer.publish("yes", headers={"format": "pdf", "type": "report"}, declare=[pdf])
        producer.publish("no", headers={"format": "pdf", "type": "log"})
        assert consume_all(conn, [pdf]) == {"pdf": [("", "yes")]}


def test_publish_to_a_missing_exchange_is_a_channel_error(connection):
    with connection as conn:
        channel = conn.channel()
        with pytest.raises(shmq.ChannelClosedByBroker) as error:
            channel.basic_publish(channel.prepare_message(b"x"), exchange="missing", routing_key="k")
        assert error.value.reply_code == 404
        assert isinstance(error.value, conn.channel_errors)
        with pytest.raises(shmq.ChannelWrongStateError):  # the channel closed, as RabbitMQ closes it
            channel.queue_declare("q")


def test_an_unroutable_mandatory_message_comes_back(connection):
    returned = []
    with connection as conn:
        ex = kombu.Exchange("nowhere", type="direct")
        producer = kombu.Producer(conn, exchange=ex,
                                  on_return=lambda exc, exchange, routing_key, message: returned.append(routing_key))
        producer.publish("lost", routing_key="nobody", mandatory=True, declare=[ex])
        assert returned == ["nobody"]
        with pytest.raises(shmq.Unroutable):  # a channel without return handlers
            kombu.Producer(conn.channel(), exchange=ex).publish("lost", routing_key="nobody", mandatory=True)


def test_a_refused_publish_raises_only_when_publishes_are_confirmed(namespace):
    full = kombu.Queue("full", queue_arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    with kombu.Connection(f"shmq://{namespace}") as conn:
        producer = kombu.Producer(conn)
        producer.publish("fits", routing_key="full", declare=[full])
        producer.publish("refused, silently as with RabbitMQ", routing_key="full")
    with kombu.Connection(f"shmq://{namespace}", transport_options={"confirm_publish": True}) as conn:
        with pytest.raises(shmq.NackError):
            kombu.Producer(conn).publish("refused", routing_key="full")
    assert ready(namespace, "full") == 1


# -- TTL and priority (kombu's BaseTimeToLive, BasePriority)


def test_message_ttl(connection):
    queue = kombu.Queue("ttl_test", routing_key="ttl_test")
    with connection as conn:
        producer = kombu.Producer(conn)
        producer.publish("expires", routing_key="ttl_test", declare=[queue], expiration=0.2)
        producer.publish("stays", routing_key="ttl_test")
        time.sleep(0.4)
        assert consume_all(conn, [queue]) == {"ttl_test": [("ttl_test", "stays")]}


def test_queue_ttl_and_expiry_arguments_as_celery_declares_its_broadcast_queues(connection, namespace):
    queue = kombu.Queue("pidbox_like", kombu.Exchange("bcast", type="fanout"), auto_delete=True,
                        message_ttl=300.0, expires=10.0)
    with connection as conn:
        queue(conn.default_channel).declare()
    assert shmq.Namespace(namespace).stats("pidbox_like")["arguments"] == {"x-message-ttl": 300000, "x-expires": 10000}


def test_priority(connection):
    queue = kombu.Queue("priority_test", routing_key="priority_test", max_priority=10)
    with connection as conn:
        producer = kombu.Producer(conn)
        for priority in (3, 6, 1):
            producer.publish({"priority": priority}, routing_key="priority_test", declare=[queue], priority=priority)
        got = consume_all(conn, [queue])["priority_test"]
    assert [body["priority"] for _key, body in got] == [6, 3, 1]


# -- message states (kombu's BaseMessage)


def test_ack_reject_requeue_and_their_states(connection):
    with connection as conn:
        with conn.SimpleQueue("states") as queue:
            for i in range(3):
                queue.put(i)
            first = queue.get(timeout=1)
            first.ack()
            assert first.acknowledged
            with pytest.raises(kombu.exceptions.MessageStateError):
                first.ack()
            second = queue.get(timeout=1)
            second.reject()  # no requeue: gone
            third = queue.get(timeout=1)
            third.requeue()
            again = queue.get(timeout=1)
            assert again.payload == 2 and again.delivery_info["redelivered"] is True
            again.ack()
            with pytest.raises(queue.Empty):
                queue.get(timeout=0.1)


def test_ack_multiple(connection, namespace):
    with connection as conn:
        queue = kombu.Queue("multiple")
        kombu.Producer(conn).publish("declare", routing_key="multiple", declare=[queue])
        for i in range(3):
            kombu.Producer(conn).publish(i, routing_key="multiple")
        messages = []
        with kombu.Consumer(conn, [queue], callbacks=[lambda body, message: messages.append(message)]):
            drain(conn, 0.1)
            assert len(messages) == 4
            messages[2].ack(multiple=True)
            assert shmq.Namespace(namespace).stats("multiple")["unacked"] == 1


def test_reject_dead_letters_to_the_queues_dead_letter_exchange(connection):
    dead = kombu.Queue("dead", kombu.Exchange("dlx", type="fanout"))
    work = kombu.Queue("work", queue_arguments={"x-dead-letter-exchange": "dlx"})
    with connection as conn:
        with conn.channel() as channel:
            dead(channel).declare()
            work(channel).declare()
        kombu.Producer(conn).publish("bad job", routing_key="work")
        with conn.SimpleQueue(work) as queue:
            queue.get(timeout=1).reject(requeue=False)
        with conn.SimpleQueue(dead) as queue:
            message = queue.get(timeout=1)
            assert message.payload == "bad job"
            assert message.headers["x-death"][0]["reason"] == "rejected"


# -- sizes, purge, refusals


def test_queue_size_purge_and_delete(connection):
    queue = kombu.Queue("sized")
    with connection as conn:
        producer = kombu.Producer(conn)
        producer.publish("declare", routing_key="sized", declare=[queue])
        for i in range(4):
            producer.publish(i, routing_key="sized")
        channel = conn.default_channel
        name, message_count, consumer_count = queue(channel).queue_declare(passive=True)
        assert (name, message_count, consumer_count) == ("sized", 5, 0)
        assert queue(channel).purge() == 5
        assert queue(channel).queue_declare(passive=True).message_count == 0
        producer.publish("one more", routing_key="sized")
        assert channel.queue_delete("sized") == 1
        with pytest.raises(shmq.ChannelClosedByBroker) as error:
            queue(channel).queue_declare(passive=True)
        assert error.value.reply_code == 404


def test_arguments_shmq_does_not_implement_are_refused_not_ignored(connection):
    with connection as conn:
        with pytest.raises(shmq.ChannelClosedByBroker) as error:
            kombu.Queue("q", queue_arguments={"x-queue-mode": "lazy"})(conn.channel()).declare()
        assert error.value.reply_code == 406 and "x-queue-mode" in error.value.reply_text
        with pytest.raises(shmq.ChannelClosedByBroker) as error:
            kombu.Exchange("delayed", type="direct", arguments={"x-delayed-type": "direct"})(conn.channel()).declare()
        assert error.value.reply_code == 406 and "x-delayed-type" in error.value.reply_text
        with pytest.raises(shmq.ChannelClosedByBroker) as error:
            kombu.Consumer(conn.channel(), [kombu.Queue("plain", consumer_arguments={"x-stream-offset": 1})]).consume()
        assert error.value.reply_code == 406 and "x-stream-offset" in error.value.reply_text
        with pytest.raises(ValueError, match="unknown exchange type"):
            kombu.Exchange("x", type="x-delayed-message")(conn.channel()).declare()
        channel = conn.channel()  # what RabbitMQ refuses too (540 NOT_IMPLEMENTED)
        with pytest.raises(NotImplementedError, match="prefetch_size"):
            channel.basic_qos(1024, 0, False)
        with pytest.raises(NotImplementedError, match="immediate"):
            channel.basic_publish(channel.prepare_message(b"x"), "", "q", immediate=True)
        with pytest.raises(NotImplementedError, match="requeue=False"):
            channel.basic_recover(requeue=False)
        with pytest.raises(NotImplementedError, match="flow"):
            channel.flow(False)


# -- what shmq adds: prefetch, threads, kill -9, fork


def test_prefetch_limits_the_channel_and_a_new_limit_applies_at_once(connection, namespace):
    queue = kombu.Queue("prefetched")
    with connection as conn:
        producer = kombu.Producer(conn)
        producer.publish(0, routing_key="prefetched", declare=[queue])
        for i in range(1, 4):
            producer.publish(i, routing_key="prefetched")
        held = []
        consumer = kombu.Consumer(conn, [queue], callbacks=[lambda body, message: held.append(message)])
        consumer.qos(prefetch_count=1)
        with consumer:
            drain(conn, 0.1)
            assert len(held) == 1
            consumer.qos(prefetch_count=3)  # as Celery raises it for ETA tasks
            drain(conn, 0.1)
            assert len(held) == 3
            held[0].ack()
            drain(conn, 0.1)
            assert [m.payload for m in held] == [0, 1, 2, 3]
            assert shmq.Namespace(namespace).stats("prefetched")["unacked"] == 3


def test_acks_from_another_thread_are_carried_out_by_the_connections_thread(connection, namespace):
    # Celery's prefork pool acks acks_late tasks from its result thread.
    queue = kombu.Queue("threaded")
    with connection as conn:
        kombu.Producer(conn).publish("job", routing_key="threaded", declare=[queue])
        held = []
        with kombu.Consumer(conn, [queue], callbacks=[lambda body, message: held.append(message)]) as consumer:
            consumer.qos(prefetch_count=1)
            conn.drain_events(timeout=1)
            acker = threading.Thread(target=held[0].ack)
            acker.start()
            acker.join(5)
            assert shmq.Namespace(namespace).stats("threaded")["unacked"] == 1  # handed over, not done yet
            with pytest.raises(socket.timeout):
                conn.drain_events(timeout=0.2)
            assert shmq.Namespace(namespace).stats("threaded")["unacked"] == 0
            publisher = threading.Thread(
                target=lambda: kombu.Producer(conn).publish("from a thread", routing_key="threaded"))
            publisher.start()
            publisher.join(5)
            conn.drain_events(timeout=1)
            assert held[1].payload == "from a thread"
            errors = []  # draining belongs to the connection's thread
            drainer = threading.Thread(target=lambda: errors.append(_raised(conn.drain_events, timeout=0)))
            drainer.start()
            drainer.join(5)
            assert isinstance(errors[0], RuntimeError) and "another thread" in str(errors[0])


def _raised(call, **kwargs):
    try:
        call(**kwargs)
    except Exception as e:  # noqa: BLE001 - handed back to the test's thread
        return e
    return None


def test_a_consumer_killed_with_kill_9_has_its_unacked_message_redelivered(connection, namespace):
    with connection as conn:
        conn.SimpleQueue("jobs").put("job 1")
    holder = run_python("""
import time, kombu, shmq.kombu
with kombu.Connection('shmq://') as conn:
    message = conn.SimpleQueue('jobs').get(timeout=5)
    print(message.payload, flush=True)
    time.sleep(60)
""", namespace)
    try:
        assert holder.stdout.readline().strip() == "job 1"
        assert shmq.Namespace(namespace).stats("jobs")["unacked"] == 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    with kombu.Connection(f"shmq://{namespace}") as conn:
        message = conn.SimpleQueue("jobs").get(timeout=5)  # the liveness sweep hands it back
        assert message.payload == "job 1" and message.delivery_info["redelivered"] is True
        message.ack()


def test_a_forked_child_leaves_its_parents_deliveries_and_connection_alone(namespace):
    # Everything the parent holds, in one place the child can let go of.
    parent = {"connection": kombu.Connection(f"shmq://{namespace}")}
    parent["queue"] = parent["connection"].SimpleQueue("forked")
    parent["queue"].put("held by the parent")
    parent["message"] = parent["queue"].get(timeout=1)
    pid = os.fork()
    if pid == 0:  # the child: refuse the parent's connection, then drop it all, as a pool's child may
        code = 1
        try:
            try:
                parent["connection"].default_channel.basic_get("forked")
            except shmq.ConnectionWrongStateError as e:
                code = 0 if "open a new connection after fork" in str(e) else 2
            parent["connection"].collect()
            parent.clear()
            gc.collect()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    stats = shmq.Namespace(namespace).stats("forked")
    assert (stats["ready"], stats["unacked"], stats["consumers"]) == (0, 1, 1)
    parent["message"].ack()
    assert shmq.Namespace(namespace).stats("forked")["unacked"] == 0
    parent["connection"].close()


def test_a_consumer_whose_queue_is_deleted_is_cancelled(connection):
    cancelled = []
    with connection as conn:
        channel = conn.channel()
        channel.queue_declare("doomed", auto_delete=False)
        channel.basic_consume("doomed", callback=lambda raw: None, on_cancel=cancelled.append, consumer_tag="c1")
        conn.channel().queue_delete("doomed")
        conn.drain_events(timeout=1)  # the cancellation is the event
        assert cancelled == ["c1"]
        with pytest.raises(socket.timeout):  # and the consumer is gone
            conn.drain_events(timeout=0.2)
