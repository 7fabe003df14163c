"""The native API (iterators, context managers, asyncio, threads) and
interop with Rust processes in both directions."""

import asyncio
import subprocess
import threading

import pytest

import shmq


def test_python_publishes_and_a_rust_process_consumes(namespace, shmq_bin):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("py_to_rust")
    for i in range(3):
        ns.publish("", "py_to_rust", f"from python {i}", shmq.BasicProperties(correlation_id=f"c{i}"))
    out = subprocess.run([shmq_bin, "--namespace", namespace, "consume", "py_to_rust", "--count", "3"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out == "from python 0\t0\nfrom python 1\t0\nfrom python 2\t0\n"


def test_a_rust_process_publishes_and_python_consumes(namespace, shmq_bin):
    ns = shmq.Namespace(namespace)
    ns.declare_exchange("events", "topic")
    q = ns.declare_queue("", exclusive=True)
    ns.bind(q, "events", "order.*")
    subprocess.run([shmq_bin, "--namespace", namespace, "publish", "--exchange", "events", "order.created", "o1",
                    "--content-type", "text/plain", "--header", "attempt=2"], check=True, timeout=30)
    with ns.consumer(q) as consumer:
        msg = consumer.recv(timeout=5)
    assert msg.body == b"o1"
    assert msg.routing_key == "order.created" and msg.exchange == "events"
    assert msg.properties.content_type == "text/plain"
    assert msg.properties.headers == {"attempt": 2}


def test_iterating_a_consumer_and_manual_acks(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    for i in range(5):
        ns.publish("", "q", bytes([i]))
    got = []
    with ns.consumer("q", manual_ack=True, prefetch=2) as consumer:
        for msg in consumer:
            got.append(msg.body[0])
            msg.ack()
            if len(got) == 5:
                break
    assert got == [0, 1, 2, 3, 4]
    assert ns.stats("q")["ready"] == 0


def test_recv_times_out_and_memoryview_bodies_are_accepted(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    consumer = ns.consumer("q")
    assert consumer.recv(timeout=0.05) is None
    ns.publish("", "q", memoryview(b"zero-copy source"))
    assert consumer.recv(timeout=1).body == b"zero-copy source"


def test_a_consumer_used_from_another_thread_is_a_clear_error(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    consumer = ns.consumer("q")
    errors = []

    def use():
        try:
            consumer.try_recv()
        except RuntimeError as e:
            errors.append(str(e))

    t = threading.Thread(target=use)
    t.start()
    t.join()
    assert errors and "thread" in errors[0]


def test_blocking_recv_releases_the_gil(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    consumer = ns.consumer("q")
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.005)

    t = threading.Thread(target=ticker)
    t.start()
    assert consumer.recv(timeout=0.3) is None
    stop.set()
    t.join()
    assert len(ticks) > 10, "another Python thread ran while recv waited"


def test_asyncio_consumer_and_publisher(namespace):
    from shmq.aio import AsyncConsumer, AsyncPublisher

    async def main():
        ns = shmq.Namespace(namespace)
        ns.declare_queue("aq")
        consumer = AsyncConsumer(ns, "aq")
        publisher = AsyncPublisher(ns)

        async def produce():
            for i in range(3):
                await publisher.publish("", "aq", f"m{i}")
                await asyncio.sleep(0.01)

        task = asyncio.create_task(produce())
        got = []
        async for msg in consumer:
            got.append(msg.body)
            if len(got) == 3:
                break
        await task
        assert await consumer.recv(timeout=0.05) is None
        return got

    assert asyncio.run(main()) == [b"m0", b"m1", b"m2"]


def test_topic_matches_is_rabbitmqs():
    assert shmq.topic_matches("a.#.b", "a.b")
    assert not shmq.topic_matches("a#b", "a.x.b")


def test_publishing_from_several_threads_through_one_namespace(namespace):
    ns = shmq.Namespace(namespace)
    ns.declare_queue("q")
    threads = [threading.Thread(target=lambda i=i: [ns.publish("", "q", f"t{i}-{n}") for n in range(50)]) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ns.stats("q")["ready"] == 200
