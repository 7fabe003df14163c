"""The pika-style API across real processes: the seed's code, tutorials
1-6, acks and redelivery, and the errors pika users expect."""

import signal
import textwrap
import time

import pytest

import shmq
from conftest import run_python


def connect(namespace):
    return shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace))


def test_the_seeds_hello_world_between_two_processes(namespace):
    # The seed's sender, with only the import and connection line changed.
    sender = textwrap.dedent(f"""
        import shmq
        connection = shmq.BlockingConnection(shmq.ConnectionParameters(namespace={namespace!r}))
        channel = connection.channel()
        channel.queue_declare(queue='hello')
        channel.basic_publish(exchange='', routing_key='hello', body='Hello World')
        connection.close()
    """)
    ch = connect(namespace).channel()
    ch.queue_declare(queue="hello")
    assert run_python(sender, namespace).wait(timeout=30) == 0
    got = []

    def callback(ch, method, properties, body):
        got.append(body)
        ch.basic_ack(delivery_tag=method.delivery_tag)
        ch.stop_consuming()

    ch.basic_consume("hello", callback, False)
    ch.start_consuming()
    assert got == [b"Hello World"]


def test_work_queue_with_two_worker_processes_and_prefetch_one(namespace):
    # Each worker consumes with prefetch 1 and manual acks, and stops after
    # a second without work (a publisher process may still be running).
    worker = textwrap.dedent("""
        import threading, time
        import shmq
        ch = shmq.BlockingConnection(shmq.ConnectionParameters()).channel()
        ch.queue_declare(queue='task_queue')
        ch.basic_qos(prefetch_count=1)
        done, last = [], [time.time()]
        def callback(ch, method, properties, body):
            time.sleep(0.01 * body.count(b'.'))
            done.append(body.decode())
            last[0] = time.time()
            ch.basic_ack(delivery_tag=method.delivery_tag)
        ch.basic_consume(queue='task_queue', on_message_callback=callback)
        print('ready', flush=True)
        def idle_stop():
            while time.time() - last[0] < 1.0:
                time.sleep(0.1)
            ch.stop_consuming()
        threading.Thread(target=idle_stop, daemon=True).start()
        ch.start_consuming()
        print('\\n'.join(done))
    """)
    ch = connect(namespace).channel()
    ch.queue_declare(queue="task_queue")
    workers = [run_python(worker, namespace) for _ in range(2)]
    for w in workers:
        assert w.stdout.readline().strip() == "ready"
    for i in range(20):
        ch.basic_publish(exchange="", routing_key="task_queue", body=f"task-{i}" + "." * (i % 3),
                         properties=shmq.BasicProperties(delivery_mode=2))
    outs = [w.communicate(timeout=60)[0].split() for w in workers]
    tasks = sorted(t.rstrip(".") for out in outs for t in out)
    assert tasks == sorted(f"task-{i}" for i in range(20)), outs
    assert all(outs), "with prefetch 1 both workers get tasks"


def test_publish_subscribe_routing_and_topics(namespace):
    ch = connect(namespace).channel()
    ch.exchange_declare(exchange="logs", exchange_type="fanout")
    ch.exchange_declare(exchange="direct_logs", exchange_type="direct")
    ch.exchange_declare(exchange="topic_logs", exchange_type="topic")
    subscribers = []
    for exchange, keys in [("logs", [""]), ("logs", [""]), ("direct_logs", ["error"]), ("topic_logs", ["kern.*", "*.critical"])]:
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        assert q.startswith("amq.gen-")
        for key in keys:
            ch.queue_bind(exchange=exchange, queue=q, routing_key=key)
        subscribers.append(q)
    ch.basic_publish(exchange="logs", routing_key="", body="to all")
    for sev in ["info", "error"]:
        ch.basic_publish(exchange="direct_logs", routing_key=sev, body=sev)
    for key in ["kern.info", "app.critical", "app.info"]:
        ch.basic_publish(exchange="topic_logs", routing_key=key, body=key)

    def drain(q):
        out = []
        while True:
            method, props, body = ch.basic_get(q, auto_ack=True)
            if method is None:
                return out
            out.append(body.decode())

    assert [drain(q) for q in subscribers] == [["to all"], ["to all"], ["error"], ["kern.info", "app.critical"]]


def test_rpc_with_reply_to_and_correlation_id(namespace):
    server = textwrap.dedent("""
        import shmq
        ch = shmq.BlockingConnection(shmq.ConnectionParameters()).channel()
        ch.queue_declare(queue='rpc_queue')
        def fib(n):
            a, b = 0, 1
            for _ in range(n):
                a, b = b, a + b
            return a
        def on_request(ch, method, props, body):
            ch.basic_publish(exchange='', routing_key=props.reply_to,
                             properties=shmq.BasicProperties(correlation_id=props.correlation_id),
                             body=str(fib(int(body))))
            ch.basic_ack(delivery_tag=method.delivery_tag)
            ch.stop_consuming()
        ch.basic_qos(prefetch_count=1)
        ch.basic_consume(queue='rpc_queue', on_message_callback=on_request)
        print('ready', flush=True)
        ch.start_consuming()
    """)
    proc = run_python(server, namespace)
    assert proc.stdout.readline().strip() == "ready"
    ch = connect(namespace).channel()
    callback = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.basic_publish(exchange="", routing_key="rpc_queue", body="30",
                     properties=shmq.BasicProperties(reply_to=callback, correlation_id="abc"))
    reply = {}

    def on_response(ch, method, props, body):
        reply["corr"], reply["body"] = props.correlation_id, body
        ch.stop_consuming()

    ch.basic_consume(queue=callback, on_message_callback=on_response, auto_ack=True)
    ch.start_consuming()
    assert reply == {"corr": "abc", "body": b"832040"}
    assert proc.wait(timeout=30) == 0


def test_nack_requeue_sets_redelivered_and_multiple_ack(namespace):
    ch = connect(namespace).channel()
    ch.queue_declare(queue="q")
    for i in range(3):
        ch.basic_publish(exchange="", routing_key="q", body=str(i))
    m, _, body = ch.basic_get("q")
    assert (body, m.redelivered) == (b"0", False)
    ch.basic_nack(delivery_tag=m.delivery_tag, requeue=True)
    m, _, body = ch.basic_get("q")
    assert (body, m.redelivered) == (b"0", True)
    m2, _, _ = ch.basic_get("q")
    ch.basic_ack(delivery_tag=m2.delivery_tag, multiple=True)
    # Acking a settled tag: RabbitMQ 3.10.8 (Debian) + pika 1.4.4 close the
    # channel with ChannelClosedByBroker(406, 'PRECONDITION_FAILED - unknown
    # delivery tag 1'), raised by the next call (an ack is not answered);
    # the same script against shmq must agree.
    ch.basic_ack(delivery_tag=m.delivery_tag)
    with pytest.raises(shmq.ChannelClosedByBroker) as closed:
        ch.basic_get("q")
    assert (closed.value.reply_code, closed.value.reply_text) == (406, f"PRECONDITION_FAILED - unknown delivery tag {m.delivery_tag}")
    ch = connect(namespace).channel()
    m3, _, body = ch.basic_get("q")
    ch.basic_reject(delivery_tag=m3.delivery_tag, requeue=False)
    assert ch.basic_get("q") == (None, None, None)


def test_errors_pika_users_expect(namespace):
    connection = connect(namespace)
    ch = connection.channel()
    with pytest.raises(shmq.ChannelClosedByBroker) as missing:
        ch.queue_declare(queue="nope", passive=True)
    assert missing.value.reply_code == 404
    # A channel error closes the channel, as in pika: a new one goes on.
    assert ch.is_closed
    with pytest.raises(shmq.ChannelWrongStateError):
        ch.queue_declare(queue="q")
    ch = connection.channel()
    ch.queue_declare(queue="q", arguments={"x-overflow": "reject-publish"})
    with pytest.raises(shmq.ChannelClosedByBroker) as conflict:
        ch.queue_declare(queue="q")
    assert conflict.value.reply_code == 406
    ch = connection.channel()
    ch.exchange_declare(exchange="x", exchange_type="direct")
    with pytest.raises(shmq.ChannelClosedByBroker):
        ch.exchange_declare(exchange="x", exchange_type="topic")
    ch = connection.channel()
    # Unroutable and mandatory, without confirms: returned, not raised, as
    # in pika (python/tests/test_returns_vs_rabbitmq.py).
    assert ch.basic_publish(exchange="x", routing_key="none", body="b", mandatory=True) is None
    with pytest.raises(shmq.ExchangeNotFound):
        ch.basic_publish(exchange="missing", routing_key="", body="b")
    with pytest.raises(TypeError):
        ch.basic_publish(exchange="", routing_key="q", body=123)


def test_ctrl_c_interrupts_start_consuming_promptly(namespace):
    consumer = textwrap.dedent("""
        import shmq
        ch = shmq.BlockingConnection(shmq.ConnectionParameters()).channel()
        ch.queue_declare(queue='idle')
        ch.basic_consume('idle', lambda *a: None, True)
        print('consuming', flush=True)
        try:
            ch.start_consuming()
        except KeyboardInterrupt:
            print('interrupted', flush=True)
    """)
    proc = run_python(consumer, namespace)
    assert proc.stdout.readline().strip() == "consuming"
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert "interrupted" in out
    assert time.monotonic() - sent < 2.0


def test_stop_consuming_mid_batch_loses_nothing_with_auto_ack(namespace):
    ch = connect(namespace).channel()
    ch.queue_declare(queue="q")
    for i in range(10):
        ch.basic_publish(exchange="", routing_key="q", body=str(i))
    got = []

    def cb(ch, method, properties, body):
        got.append(body)
        if len(got) == 3:
            ch.stop_consuming()

    tag = ch.basic_consume("q", cb, auto_ack=True)
    ch.start_consuming()
    ch.basic_cancel(tag)
    rest = []
    while True:
        method, _, body = ch.basic_get("q", auto_ack=True)
        if method is None:
            break
        rest.append(body)
    assert got == [b"0", b"1", b"2"]
    assert sorted(rest, key=int) == [str(i).encode() for i in range(3, 10)]


def test_publisher_confirms_report_refused_and_unroutable_publishes_as_pika_does(namespace):
    ch = connect(namespace).channel()
    ch.queue_declare(queue="q", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.exchange_declare(exchange="x", exchange_type="direct")
    # Without confirms (as RabbitMQ + pika): a refused publish is silent.
    assert ch.basic_publish(exchange="", routing_key="q", body="1") is None
    assert ch.basic_publish(exchange="", routing_key="q", body="2") is None
    assert ch.confirm_delivery() is None
    with pytest.raises(shmq.exceptions.NackError) as nacked:
        ch.basic_publish(exchange="", routing_key="q", body="3")
    assert (str(nacked.value), nacked.value.messages) == ("0 message(s) NACKed", [])
    props = shmq.BasicProperties(correlation_id="c")
    with pytest.raises(shmq.exceptions.UnroutableError) as returned:
        ch.basic_publish(exchange="x", routing_key="nobody", body=b"lost", properties=props, mandatory=True)
    assert str(returned.value) == "1 unroutable message(s) returned"
    (message,) = returned.value.messages
    assert (message.method.reply_code, message.method.reply_text, message.method.exchange, message.method.routing_key) == (
        312, "NO_ROUTE", "x", "nobody")
    assert (message.properties, message.body) == (props, b"lost")
    # A non-mandatory unroutable publish is confirmed (dropped), as RabbitMQ does.
    assert ch.basic_publish(exchange="x", routing_key="nobody", body=b"dropped") is None
    assert ch.queue_declare(queue="q", passive=True).method.message_count == 1
    assert isinstance(returned.value, shmq.Unroutable) and isinstance(nacked.value, shmq.ShmqError)


def test_queue_arguments_shmq_does_not_implement_are_refused_not_ignored(namespace):
    ch = connect(namespace).channel()
    for arguments, reason in (({"x-queue-mode": "lazy"}, "not supported by shmq"),
                              ({"x-queue-master-locator": "client-local"}, "not supported by shmq"),
                              ({"x-queue-type": "stream"}, "not supported by shmq"),
                              ({"x-expires": 0}, "{value_zero,0}"),
                              ({"x-delivery-limit": "3"}, "\"expected integer, got longstr\""),
                              ({"x-dead-letter-routing-key": "k"}, "routing_key_but_no_dlx_defined")):
        with pytest.raises(shmq.ChannelClosedByBroker) as refused:
            connect(namespace).channel().queue_declare(queue="q", arguments=arguments)
        assert refused.value.reply_code == 406, arguments
        arg = next(iter(arguments))
        assert refused.value.reply_text.startswith(f"PRECONDITION_FAILED - invalid arg '{arg}' for queue 'q' in vhost '/': "), \
            refused.value.reply_text
        assert reason in refused.value.reply_text, refused.value.reply_text
    # The native API raises the same check as InvalidArgument (a PreconditionFailed).
    with pytest.raises(shmq.InvalidArgument) as native:
        shmq.Namespace(namespace).declare_queue("q", arguments={"x-max-length": -1})
    assert isinstance(native.value, shmq.PreconditionFailed)
    assert native.value.reply_text == "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"
    # What it implements is accepted, classic queue type included.
    ch.queue_declare(queue="q", arguments={"x-queue-type": "classic", "x-max-length": 10, "x-overflow": "reject-publish",
                                           "x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "dead",
                                           "x-delivery-limit": 3, "x-expires": 60000, "x-message-ttl": 1000})
    assert shmq.Namespace(namespace).stats("q")["arguments"] == {
        "x-max-length": 10, "x-overflow": "reject-publish", "x-message-ttl": 1000, "x-dead-letter-exchange": "dlx",
        "x-dead-letter-routing-key": "dead", "x-delivery-limit": 3, "x-expires": 60000}
    # A passive declare ignores arguments, as RabbitMQ's does.
    ch.queue_declare(queue="q", passive=True, arguments={"x-queue-mode": "lazy"})


def test_redeclaring_with_other_arguments_names_the_first_that_differs_as_rabbitmq_does(namespace):
    connection = connect(namespace)
    connection.channel().queue_declare(queue="q", arguments={"x-max-length": 10, "x-dead-letter-exchange": "a"})
    for arguments, text in (
        ({"x-max-length": 20, "x-dead-letter-exchange": "a"}, "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': "
                                                              "received '20' but current is '10'"),
        ({"x-max-length": 10}, "inequivalent arg 'x-dead-letter-exchange' for queue 'q' in vhost '/': "
                               "received none but current is the value 'a' of type 'longstr'"),
        ({"x-max-length": 10, "x-dead-letter-exchange": "a", "x-expires": 5000},
         "inequivalent arg 'x-expires' for queue 'q' in vhost '/': received the value '5000' of type 'signedint' but current is none"),
    ):
        with pytest.raises(shmq.ChannelClosedByBroker) as conflict:
            connection.channel().queue_declare(queue="q", arguments=arguments)
        assert (conflict.value.reply_code, conflict.value.reply_text) == (406, "PRECONDITION_FAILED - " + text)
    with pytest.raises(shmq.ChannelClosedByBroker) as conflict:
        connection.channel().queue_declare(queue="q", auto_delete=True, arguments={"x-max-length": 10, "x-dead-letter-exchange": "a"})
    assert conflict.value.reply_text == ("PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'q' in vhost '/': "
                                         "received 'true' but current is 'false'")


def test_nested_headers_round_trip_as_pika_decodes_them(namespace):
    import datetime

    ch = connect(namespace).channel()
    ch.queue_declare(queue="q")
    utc = datetime.timezone.utc
    headers = {"s": "text", "b": b"\x00raw", "i": -5, "big": 2**40, "f": 1.5, "t": True, "none": None,
               "naive": datetime.datetime(2020, 1, 2, 3, 4, 5),  # naive: counted as UTC, as pika does
               "aware": datetime.datetime(2020, 1, 2, 4, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
               "table": {"list": [1, "two", b"3", [4.0, {"deep": False}]], "empty": {}}, "tuple": (1, 2)}
    ch.basic_publish(exchange="", routing_key="q", body=b"x", properties=shmq.BasicProperties(headers=headers))
    _, props, _ = ch.basic_get("q", auto_ack=True)
    expected = dict(headers, naive=datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=utc),
                    aware=datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=utc), tuple=[1, 2])
    assert props.headers == expected
    assert props.headers["naive"].tzinfo is utc
    # Nesting is bounded, which also stops a table that contains itself.
    deep = leaf = {}
    for _ in range(shmq.MAX_HEADER_DEPTH - 1):
        leaf["t"] = {}
        leaf = leaf["t"]
    ch.basic_publish(exchange="", routing_key="q", body=b"deep", properties=shmq.BasicProperties(headers={"d": deep}))
    assert ch.basic_get("q", auto_ack=True)[1].headers == {"d": deep}
    loop = {}
    loop["self"] = loop
    for bad in ({"d": {"t": deep}}, loop, {"d": datetime.date(2020, 1, 1)}, {"i": 2**64}):
        with pytest.raises(ValueError):
            ch.basic_publish(exchange="", routing_key="q", body=b"bad", properties=shmq.BasicProperties(headers=bad))
    assert ch.basic_get("q") == (None, None, None)


def test_quorum_and_delivery_limited_queues_count_deliveries_in_a_header(namespace):
    ch = connect(namespace).channel()
    ch.queue_declare(queue="qq", durable=True, arguments={"x-queue-type": "quorum"})
    ch.queue_declare(queue="limited", arguments={"x-delivery-limit": 5})
    ch.queue_declare(queue="classic")
    for queue in ("qq", "limited", "classic"):
        ch.basic_publish(exchange="", routing_key=queue, body=queue, properties=shmq.BasicProperties(headers={"h": 1}))
    seen = {}
    for queue in ("qq", "limited", "classic"):
        for _ in range(3):
            method, props, _ = ch.basic_get(queue)
            seen.setdefault(queue, []).append((method.redelivered, props.headers))
            ch.basic_nack(method.delivery_tag, requeue=True)
    counted = [(False, {"h": 1, "x-delivery-count": 0}), (True, {"h": 1, "x-delivery-count": 1}),
               (True, {"h": 1, "x-delivery-count": 2})]
    assert seen == {"qq": counted, "limited": counted, "classic": [(False, {"h": 1}), (True, {"h": 1}), (True, {"h": 1})]}
    # A consumer's first delivery has none (RabbitMQ 3.10's quorum queues).
    got = []

    def on_message(channel, method, properties, body):
        got.append(properties.headers)
        channel.basic_ack(method.delivery_tag)
        channel.stop_consuming()

    ch.queue_declare(queue="fresh", durable=True, arguments={"x-queue-type": "quorum"})
    ch.basic_publish(exchange="", routing_key="fresh", body=b"1")
    ch.basic_consume("fresh", on_message)
    ch.start_consuming()
    ch.basic_consume("qq", on_message)
    ch.start_consuming()
    assert got == [None, {"h": 1, "x-delivery-count": 3}]
