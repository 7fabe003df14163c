#!/usr/bin/env python3
"""shmq against Python's IPC libraries and message brokers, in one run.

    python3 python/benchmarks/compare.py [--quick] [--trials N] [--systems a,b,...] [--json] [--no-plot]

One producer process and one consumer process per measurement, both
started fresh by this script (multiprocessing's "spawn"), with 64 B, 1 KiB
and 64 KiB messages:

* throughput: the producer sends N messages as fast as it can, the
  consumer takes them (and the length of each body); msg/s is N over the
  time from the producer's first send to the consumer's last receive
  (CLOCK_MONOTONIC in both processes), MB/s is that times the body size
  (10^6 bytes);
* one-way latency: ping-pong with one message in flight, each round trip
  halved; the first 10 % of the round trips are warm-up and dropped; p50
  and p99 of the rest.

Systems (``--systems``, default all):

=================  ========================================================
shmq               ``Namespace.publish`` / ``Consumer.recv`` (auto-ack), a
                   queue bounded at 4096 messages, overflow ``block``
shmq-batch         ``Namespace.publish_many`` of ``--batch`` bodies /
                   ``Consumer.recv_many(--batch)`` (auto-ack), same queue
multiprocessing    ``multiprocessing.Queue`` (``put`` / ``get``)
faster-fifo        ``faster_fifo.Queue`` (``put`` / ``get``), 8 MiB buffer
zmq                pyzmq PUSH/PULL over ``ipc://`` (default HWMs)
iceoryx2           iceoryx2's Python publish-subscribe API, a
                   ``Slice[c_uint8]`` service, no safe overflow and
                   ``RetryUntilDelivered`` (lossless, like the others),
                   subscriber buffer 1024; the subscriber polls
                   ``receive()`` in a loop (the API has no blocking
                   receive; its examples poll too) and copies the payload
                   out, as every other consumer gets ``bytes``; the
                   sender stays until the receiver has everything (a
                   subscriber loses what it has not taken when the
                   publisher goes) and sends again a sample that
                   ``send()`` says reached no subscriber (counted in the
                   output; see ``Iceoryx2.sender``)
rabbitmq           pika ``BlockingConnection`` + a private RabbitMQ
                   (``basic_publish`` without confirms / ``basic_consume``
                   with ``auto_ack``)
celery-shmq        Celery tasks (see below) on ``shmq://``
celery-rabbitmq    ... on ``pyamqp://`` to the private RabbitMQ
celery-redis       ... on ``redis://`` to a private redis-server
=================  ========================================================

Celery: a ``celery worker`` (prefork pool, concurrency 1, ``-Q`` a fresh
queue per trial, ``--without-mingle --without-gossip --without-heartbeat``
for every broker alike) runs an empty task declared ``acks_late=True,
ignore_result=True``; a client process fires N ``delay()`` calls and waits
until the worker has run all N. The task's only work is to append one byte
to a counter file (``O_APPEND``, opened once per pool process), and the
client polls the file's size: no result backend, so no broker does more
than carry the tasks. Reported: tasks/s = N over the time from the first
``delay()`` to the N-th run (after an untimed warm-up of a few tasks).

Brokers: RabbitMQ is Debian's rabbitmq-server, run on free ports with its
own node name and data directory by ``python/tests/rabbitmq.py``'s
``Broker``; Redis is Debian's redis-server on a free port, no persistence.
Both are started once for the run and stopped at the end.

Repetitions: ``--trials`` (default 3) runs every system once per trial, in
an order that rotates from trial to trial; the tables give the median over
the trials, and each system's ratio to shmq per message (for Celery: to
Celery on shmq) as the median of the ratios paired within a trial.

Every child process has a deadline (``--timeout``); the script stops its
processes, workers and brokers and removes its namespaces and files on
exit, on Ctrl-C and on SIGTERM. Prints Markdown tables (progress on
stderr), or one JSON object with ``--json``; writes a plot to
docs/bench/python-compare.png when matplotlib is installed (not in
``--quick`` mode unless ``--plot`` names a file).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import math
import multiprocessing
import os
import platform
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_PLOT = REPO / "docs" / "bench" / "python-compare.png"

MESSAGING = ["shmq", "shmq-batch", "multiprocessing", "faster-fifo", "zmq", "iceoryx2", "rabbitmq"]
CELERY = ["celery-shmq", "celery-rabbitmq", "celery-redis"]
ALL_SYSTEMS = MESSAGING + CELERY
LABELS = {
    "shmq": "shmq, per message",
    "shmq-batch": "shmq, batched",
    "multiprocessing": "multiprocessing.Queue",
    "faster-fifo": "faster-fifo",
    "zmq": "pyzmq PUSH/PULL ipc://",
    "iceoryx2": "iceoryx2",
    "rabbitmq": "pika + RabbitMQ",
    "celery-shmq": "Celery on shmq://",
    "celery-rabbitmq": "Celery on RabbitMQ (pyamqp://)",
    "celery-redis": "Celery on Redis (redis://)",
}
BASELINE = {"messaging": "shmq", "celery": "celery-shmq"}

QUEUE_BOUND = 4096          # shmq: max_length, overflow 'block' (as the comparison suite, bench-suite/, declares its queue)
FASTER_FIFO_BYTES = 8 << 20  # faster-fifo's circular buffer
IOX_BUFFER = 1024           # iceoryx2: subscriber buffer (samples in flight)
# Systems much slower than shmq get fewer messages, so that a run takes
# seconds, not minutes; the rates do not depend on the count once it is
# in the thousands.
MESSAGE_SCALE = {"rabbitmq": 0.05, "multiprocessing": 0.25, "faster-fifo": 0.25, "iceoryx2": 0.5}
ROUND_TRIP_SCALE = {"rabbitmq": 0.25}
MIN_MESSAGES = 200


class RunError(RuntimeError):
    """A measurement failed: a child reported an error, died or ran past its deadline."""


def now_ns() -> int:
    # CLOCK_MONOTONIC on Linux: one clock for every process of the machine.
    return time.perf_counter_ns()


def percentile(sorted_values: List[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def received(p: Dict[str, Any], count: int, nbytes: int, last: bytes) -> Dict[str, Any]:
    """What a consumer reports once it has taken `count` messages: the time,
    the count, the bytes, and whether the last body is the one sent."""
    return {"t_end": now_ns(), "count": count, "bytes": nbytes, "intact": last == b"x" * p["size"]}


def latency_stats(samples: List[float]) -> Dict[str, float]:
    """p50/p99 of one-way latencies (ns), without the first 10 % (warm-up)."""
    kept = sorted(samples[len(samples) // 10:])
    return {"p50_ns": percentile(kept, 50), "p99_ns": percentile(kept, 99), "samples": len(kept)}


# ---------------------------------------------------------------- systems
#
# Each system has `setup(run, kind)` and `teardown(spec)` in the parent,
# and four roles that run in the children: `consume` and `produce`
# (throughput), `echo` and `ping` (latency). A role gets the spec, the
# parameters (n, size, batch, timeout), and two events: it sets `ready`
# once it is connected, and the sending roles wait for `go` before the
# timed part. Hot loops bind methods to locals, as a careful user would.


class Run:
    """Where one measurement keeps its files: a token, a shm directory
    (for shmq namespaces) and a temp directory (sockets, logs)."""

    def __init__(self, state: "State", system: str, kind: str, size: int, trial: int) -> None:
        self.token = f"{system}-{kind}-{size}-{trial}-{uuid.uuid4().hex[:6]}"
        self.state = state
        self.size = size

    def shm_path(self) -> str:
        return str(self.state.shm_dir / self.token)

    def tmp_path(self, suffix: str) -> str:
        return str(self.state.tmp_dir / f"{self.token}{suffix}")


class Shmq:
    @staticmethod
    def setup(run: Run, kind: str) -> Dict[str, Any]:
        return {"ns": run.shm_path()}

    @staticmethod
    def teardown(spec: Dict[str, Any]) -> None:
        shutil.rmtree(spec["ns"], ignore_errors=True)

    @staticmethod
    def namespace(spec: Dict[str, Any], *queues: str) -> Any:
        import shmq

        ns = shmq.Namespace(spec["ns"])
        for q in queues:
            ns.declare_queue(q, max_length=QUEUE_BOUND, overflow="block")
        return ns

    @staticmethod
    def consume(spec, p, ready, go):
        ns = Shmq.namespace(spec, "tp")
        recv = ns.consumer("tp").recv
        ready.set()
        nbytes, body = 0, b""
        for _ in range(p["n"]):
            body = recv().body
            nbytes += len(body)
        return received(p, p["n"], nbytes, body)

    @staticmethod
    def produce(spec, p, ready, go):
        ns = Shmq.namespace(spec, "tp")
        publish = ns.publish
        body = b"x" * p["size"]
        ready.set()
        go.wait()
        t0 = now_ns()
        for _ in range(p["n"]):
            publish("", "tp", body)
        return {"t0": t0, "t1": now_ns()}

    @staticmethod
    def echo(spec, p, ready, go):
        ns = Shmq.namespace(spec, "ping", "pong")
        recv = ns.consumer("ping").recv
        publish = ns.publish
        ready.set()
        for _ in range(p["n"]):
            publish("", "pong", recv().body)
        return {}

    @staticmethod
    def ping(spec, p, ready, go):
        ns = Shmq.namespace(spec, "ping", "pong")
        recv = ns.consumer("pong").recv
        publish = ns.publish
        body = b"x" * p["size"]
        samples = []
        ready.set()
        go.wait()
        for _ in range(p["n"]):
            t = now_ns()
            publish("", "ping", body)
            recv()
            samples.append((now_ns() - t) / 2)
        return latency_stats(samples)


class ShmqBatch(Shmq):
    @staticmethod
    def consume(spec, p, ready, go):
        ns = Shmq.namespace(spec, "tp")
        recv_many = ns.consumer("tp").recv_many
        batch, n = p["batch"], p["n"]
        ready.set()
        got = nbytes = 0
        body = b""
        while got < n:
            messages = recv_many(batch)
            got += len(messages)
            for m in messages:
                body = m.body
                nbytes += len(body)
        return received(p, got, nbytes, body)

    @staticmethod
    def produce(spec, p, ready, go):
        ns = Shmq.namespace(spec, "tp")
        publish_many = ns.publish_many
        bodies = [b"x" * p["size"]] * p["batch"]
        full, rest = divmod(p["n"], p["batch"])
        ready.set()
        go.wait()
        t0 = now_ns()
        for _ in range(full):
            publish_many("", "tp", bodies)
        if rest:
            publish_many("", "tp", bodies[:rest])
        return {"t0": t0, "t1": now_ns()}

    @staticmethod
    def echo(spec, p, ready, go):
        ns = Shmq.namespace(spec, "ping", "pong")
        recv_many = ns.consumer("ping").recv_many
        publish_many = ns.publish_many
        batch = p["batch"]
        ready.set()
        got = 0
        while got < p["n"]:
            messages = recv_many(batch)
            got += len(messages)
            publish_many("", "pong", [m.body for m in messages])
        return {}

    @staticmethod
    def ping(spec, p, ready, go):
        ns = Shmq.namespace(spec, "ping", "pong")
        recv_many = ns.consumer("pong").recv_many
        publish_many = ns.publish_many
        bodies = [b"x" * p["size"]]
        batch = p["batch"]
        samples = []
        ready.set()
        go.wait()
        for _ in range(p["n"]):
            t = now_ns()
            publish_many("", "ping", bodies)
            recv_many(batch)
            samples.append((now_ns() - t) / 2)
        return latency_stats(samples)


class MpQueue:
    """multiprocessing.Queue: the parent makes the queues, the children
    inherit them as Process arguments."""

    @staticmethod
    def setup(run: Run, kind: str) -> Dict[str, Any]:
        ctx = multiprocessing.get_context("spawn")
        names = ["tp"] if kind == "throughput" else ["ping", "pong"]
        return {name: ctx.Queue() for name in names}

    @staticmethod
    def teardown(spec: Dict[str, Any]) -> None:
        for q in spec.values():
            q.close()

    @staticmethod
    def consume(spec, p, ready, go):
        get = spec["tp"].get
        ready.set()
        nbytes, body = 0, b""
        for _ in range(p["n"]):
            body = get()
            nbytes += len(body)
        return received(p, p["n"], nbytes, body)

    @staticmethod
    def produce(spec, p, ready, go):
        put = spec["tp"].put
        body = b"x" * p["size"]
        ready.set()
        go.wait()
        t0 = now_ns()
        for _ in range(p["n"]):
            put(body)
        return {"t0": t0, "t1": now_ns()}

    @staticmethod
    def echo(spec, p, ready, go):
        get, put = spec["ping"].get, spec["pong"].put
        ready.set()
        for _ in range(p["n"]):
            put(get())
        return {}

    @staticmethod
    def ping(spec, p, ready, go):
        put, get = spec["ping"].put, spec["pong"].get
        body = b"x" * p["size"]
        samples = []
        ready.set()
        go.wait()
        for _ in range(p["n"]):
            t = now_ns()
            put(body)
            get()
            samples.append((now_ns() - t) / 2)
        return latency_stats(samples)


class FasterFifo:
    """faster_fifo.Queue (a circular buffer in shared memory with a
    process-shared mutex and condition variables); bodies are pickled, as
    with multiprocessing.Queue."""

    @staticmethod
    def setup(run: Run, kind: str) -> Dict[str, Any]:
        import faster_fifo

        names = ["tp"] if kind == "throughput" else ["ping", "pong"]
        return {name: faster_fifo.Queue(max_size_bytes=FASTER_FIFO_BYTES) for name in names}

    @staticmethod
    def teardown(spec: Dict[str, Any]) -> None:
        for q in spec.values():
            q.close()

    @staticmethod
    def consume(spec, p, ready, go):
        get, timeout = spec["tp"].get, p["timeout"]
        ready.set()
        nbytes, body = 0, b""
        for _ in range(p["n"]):
            body = get(timeout=timeout)
            nbytes += len(body)
        return received(p, p["n"], nbytes, body)

    @staticmethod
    def produce(spec, p, ready, go):
        put, timeout = spec["tp"].put, p["timeout"]
        body = b"x" * p["size"]
        ready.set()
        go.wait()
        t0 = now_ns()
        for _ in range(p["n"]):
            put(body, timeout=timeout)
        return {"t0": t0, "t1": now_ns()}

    @staticmethod
    def echo(spec, p, ready, go):
        get, put, timeout = spec["ping"].get, spec["pong"].put, p["timeout"]
        ready.set()
        for _ in range(p["n"]):
            put(get(timeout=timeout), timeout=timeout)
        return {}

    @staticmethod
    def ping(spec, p, ready, go):
        put, get, timeout = spec["ping"].put, spec["pong"].get, p["timeout"]
        body = b"x" * p["size"]
        samples = []
        ready.set()
        go.wait()
        for _ in range(p["n"]):
            t = now_ns()
            put(body, timeout=timeout)
            get(timeout=timeout)
            samples.append((now_ns() - t) / 2)
        return latency_stats(samples)


class Zmq:
    """pyzmq PUSH/PULL over ipc:// sockets in the run's temp directory; the
    receiving side binds, the sending side connects."""

    @staticmethod
    def setup(run: Run, kind: str) -> Dict[str, Any]:
        names = ["tp"] if kind == "throughput" else ["ping", "pong"]
        return {name: "ipc://" + run.tmp_path(f".{name}") for name in names}

    @staticmethod
    def teardown(spec: Dict[str, Any]) -> None:
        for address in spec.values():
            try:
                os.unlink(address[len("ipc://"):])
            except FileNotFoundError:
                pass

    @staticmethod
    def sockets(spec, pull, push):
        import zmq

        ctx = zmq.Context()
        receiver = sender = None
        if pull:
            receiver = ctx.socket(zmq.PULL)
            receiver.bind(spec[pull])
        if push:
            sender = ctx.socket(zmq.PUSH)
            sender.connect(spec[push])
        return ctx, receiver, sender

    @staticmethod
    def consume(spec, p, ready, go):
        ctx, receiver, _ = Zmq.sockets(spec, "tp", None)
        recv = receiver.recv
        ready.set()
        nbytes, body = 0, b""
        for _ in range(p["n"]):
            body = recv()
            nbytes += len(body)
        out = received(p, p["n"], nbytes, body)
        receiver.close(linger=0)
        ctx.term()
        return out

    @staticmethod
    def produce(spec, p, ready, go):
        ctx, _, sender = Zmq.sockets(spec, None, "tp")
        send = sender.send
        body = b"x" * p["size"]
        ready.set()
        go.wait()
        t0 = now_ns()
        for _ in range(p["n"]):
            send(body)
        t1 = now_ns()
        sender.close()  # default linger: delivers what is queued first
        ctx.term()
        return {"t0": t0, "t1": t1}

    @staticmethod
    def echo(spec, p, ready, go):
        ctx, receiver, sender = Zmq.sockets(spec, "ping", "pong")
        recv, send = receiver.recv, sender.send
        ready.set()
        for _ in range(p["n"]):
            send(recv())
        sender.close()
        receiver.close(linger=0)
        ctx.term()
        return {}

    @staticmethod
    def ping(spec, p, ready, go):
        ctx, receiver, sender = Zmq.sockets(spec, "pong", "ping")
        recv, send = receiver.recv, sender.send
        body = b"x" * p["size"]
        samples = []
        ready.set()
        go.wait()
        for _ in range(p["n"]):
            t = now_ns()
            send(body)
            recv()
            samples.append((now_ns() - t) / 2)
        sender.close()
        receiver.close(linger=0)
        ctx.term()
        return latency_stats(samples)


class Iceoryx2:
    """iceoryx2's Python publish-subscribe API over a `Slice[c_uint8]`
    service. The receiving side creates the services, the sending side
    opens them (`open_or_create` on both, with the same settings)."""

    @staticmethod
    def setup(run: Run, kind: str) -> Dict[str, Any]:
        return {"service": f"shmq-compare/{run.token}"}

    @staticmethod
    def teardown(spec: Dict[str, Any]) -> None:
        pass  # each node removes its resources when its process ends

    @staticmethod
    def node():
        import iceoryx2 as iox2

        iox2.set_log_level(iox2.LogLevel.Error)
        return iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)

    @staticmethod
    def service(node, spec, name):
        import ctypes

        import iceoryx2 as iox2

        return (node.service_builder(iox2.ServiceName.new(f"{spec['service']}/{name}"))
                .publish_subscribe(iox2.Slice[ctypes.c_uint8])
                .enable_safe_overflow(False)
                .subscriber_max_buffer_size(IOX_BUFFER)
                .history_size(0)
                .open_or_create())

    @staticmethod
    def publisher(service, size):
        import iceoryx2 as iox2

        return (service.publisher_builder()
                .initial_max_slice_len(size)
                .allocation_strategy(iox2.AllocationStrategy.Static)
                .backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered)
                .create())

    @staticmethod
    def subscriber(service):
        return service.subscriber_builder().buffer_size(IOX_BUFFER).create()

    @staticmethod
    def sender(publisher, size):
        """send(body): loan a sample, copy the body in, send it; again while
        send() says it reached no subscriber. iceoryx2 0.10 does that now
        and then under backpressure despite RetryUntilDelivered (in about
        one 1 KiB run in six here, 166 to 1561 times from the first time the
        subscriber's buffer filled): the sample is dropped, and without the
        retry the consumer waits forever. `send.resent` counts them; the
        consumer checks that none arrived twice."""
        import ctypes

        loan, memmove = publisher.loan_slice_uninit, ctypes.memmove

        def send(body):
            while True:
                sample = loan(size)
                memmove(sample.payload_ptr, body, size)
                if sample.assume_init().send():
                    return
                send.resent += 1

        send.resent = 0
        return send

    @staticmethod
    def consume(spec, p, ready, go):
        import ctypes

        node = Iceoryx2.node()
        sub = Iceoryx2.subscriber(Iceoryx2.service(node, spec, "tp"))
        receive, string_at = sub.receive, ctypes.string_at
        n = p["n"]
        ready.set()
        got = nbytes = 0
        body = b""
        while got < n:
            sample = receive()
            if sample is None:
                continue
            body = string_at(sample.payload_ptr, sample.header.number_of_elements)
            sample.delete()
            nbytes += len(body)
            got += 1
        out = received(p, got, nbytes, body)
        time.sleep(0.2)  # untimed: a resent sample (see `sender`) must not have arrived twice
        while receive() is not None:
            out["count"] += 1
        return out

    @staticmethod
    def produce(spec, p, ready, go):
        node = Iceoryx2.node()
        size = p["size"]
        publisher = Iceoryx2.publisher(Iceoryx2.service(node, spec, "tp"), size)
        send = Iceoryx2.sender(publisher, size)
        body = b"x" * size
        ready.set()
        go.wait()
        t0 = now_ns()
        for _ in range(p["n"]):
            send(body)
        t1 = now_ns()
        # Samples live in the publisher's segment: a subscriber loses those it
        # has not taken yet when the publisher goes, so stay until it has all.
        p["done"].wait(p["timeout"])
        return {"t0": t0, "t1": t1, "resent": send.resent}

    @staticmethod
    def echo(spec, p, ready, go):
        import ctypes

        node = Iceoryx2.node()
        size = p["size"]
        sub = Iceoryx2.subscriber(Iceoryx2.service(node, spec, "ping"))
        send = Iceoryx2.sender(Iceoryx2.publisher(Iceoryx2.service(node, spec, "pong"), size), size)
        receive, string_at = sub.receive, ctypes.string_at
        ready.set()
        got = 0
        while got < p["n"]:
            sample = receive()
            if sample is None:
                continue
            body = string_at(sample.payload_ptr, sample.header.number_of_elements)
            sample.delete()
            send(body)
            got += 1
        p["done"].wait(p["timeout"])  # until the last pong is taken, as in produce
        return {"resent": send.resent}

    @staticmethod
    def ping(spec, p, ready, go):
        import ctypes

        node = Iceoryx2.node()
        size = p["size"]
        send = Iceoryx2.sender(Iceoryx2.publisher(Iceoryx2.service(node, spec, "ping"), size), size)
        sub = Iceoryx2.subscriber(Iceoryx2.service(node, spec, "pong"))
        receive, string_at = sub.receive, ctypes.string_at
        body = b"x" * size
        samples = []
        ready.set()
        go.wait()
        for _ in range(p["n"]):
            t = now_ns()
            send(body)
            while True:
                sample = receive()
                if sample is not None:
                    break
            string_at(sample.payload_ptr, sample.header.number_of_elements)
            sample.delete()
            samples.append((now_ns() - t) / 2)
        return dict(latency_stats(samples), resent=send.resent)


class Rabbitmq:
    """pika's BlockingConnection to the private RabbitMQ; auto-delete
    queues named after the run."""

    @staticmethod
    def setup(run: Run, kind: str) -> Dict[str, Any]:
        return {"port": run.state.rabbitmq.port, "prefix": run.token}

    @staticmethod
    def teardown(spec: Dict[str, Any]) -> None:
        pass  # auto-delete queues go with their consumers

    @staticmethod
    def channel(spec, *queues):
        import pika

        connection = pika.BlockingConnection(pika.ConnectionParameters(host="127.0.0.1", port=spec["port"]))
        channel = connection.channel()
        for q in queues:
            channel.queue_declare(queue=f"{spec['prefix']}.{q}", auto_delete=True)
        return connection, channel

    @staticmethod
    def consume(spec, p, ready, go):
        connection, ch = Rabbitmq.channel(spec, "tp")
        n = p["n"]
        state = {"got": 0, "bytes": 0}

        def on_message(ch, method, props, body):
            state["got"] += 1
            state["bytes"] += len(body)
            if state["got"] == n:
                state["out"] = received(p, n, state["bytes"], body)
                ch.stop_consuming()

        ch.basic_consume(f"{spec['prefix']}.tp", on_message, auto_ack=True)
        ready.set()
        ch.start_consuming()
        connection.close()
        return state["out"]

    @staticmethod
    def produce(spec, p, ready, go):
        connection, ch = Rabbitmq.channel(spec, "tp")
        publish, key = ch.basic_publish, f"{spec['prefix']}.tp"
        body = b"x" * p["size"]
        ready.set()
        go.wait()
        t0 = now_ns()
        for _ in range(p["n"]):
            publish("", key, body)
        t1 = now_ns()
        connection.close()
        return {"t0": t0, "t1": t1}

    @staticmethod
    def echo(spec, p, ready, go):
        connection, ch = Rabbitmq.channel(spec, "ping", "pong")
        n, pong = p["n"], f"{spec['prefix']}.pong"
        state = {"got": 0}

        def on_message(ch, method, props, body):
            ch.basic_publish("", pong, body)
            state["got"] += 1
            if state["got"] == n:
                ch.stop_consuming()

        ch.basic_consume(f"{spec['prefix']}.ping", on_message, auto_ack=True)
        ready.set()
        ch.start_consuming()
        connection.close()
        return {}

    @staticmethod
    def ping(spec, p, ready, go):
        connection, ch = Rabbitmq.channel(spec, "ping", "pong")
        publish, key = ch.basic_publish, f"{spec['prefix']}.ping"
        replies = ch.consume(f"{spec['prefix']}.pong", auto_ack=True)
        body = b"x" * p["size"]
        samples = []
        ready.set()
        go.wait()
        for _ in range(p["n"]):
            t = now_ns()
            publish("", key, body)
            next(replies)
            samples.append((now_ns() - t) / 2)
        ch.cancel()
        connection.close()
        return latency_stats(samples)


IMPLEMENTATIONS = {
    "shmq": Shmq,
    "shmq-batch": ShmqBatch,
    "multiprocessing": MpQueue,
    "faster-fifo": FasterFifo,
    "zmq": Zmq,
    "iceoryx2": Iceoryx2,
    "rabbitmq": Rabbitmq,
}


# ----------------------------------------------------------------- Celery

_counter_fd: Optional[int] = None


def celery_app(broker_url: str, queue_name: str, counter: str):
    """The Celery app of the worker and of the client: one empty task,
    `compare.bump`, acks_late, that appends a byte to `counter`."""
    if broker_url.startswith("shmq:"):
        import shmq.kombu  # noqa: F401 - registers shmq://
    from celery import Celery

    app = Celery("compare", broker=broker_url, set_as_current=False)
    app.conf.update(task_default_queue=queue_name, task_ignore_result=True,
                    broker_connection_retry_on_startup=True)

    @app.task(name="compare.bump", acks_late=True, ignore_result=True)
    def bump():
        global _counter_fd
        if _counter_fd is None:  # once per pool process
            _counter_fd = os.open(counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(_counter_fd, b".")

    return app, bump


def __getattr__(name: str) -> Any:
    """`celery -A compare worker` finds the app as `compare.app`, built
    from the environment the script gives the worker."""
    if name == "app" and "COMPARE_CELERY_BROKER" in os.environ:
        app, _ = celery_app(os.environ["COMPARE_CELERY_BROKER"], os.environ["COMPARE_CELERY_QUEUE"],
                            os.environ["COMPARE_CELERY_COUNTER"])
        globals()["app"] = app
        return app
    raise AttributeError(name)


class CeleryClient:
    @staticmethod
    def client(spec, p, ready, go):
        """Fire `warmup` tasks and wait for them, then time n more: from the
        first delay() to the n-th run seen in the counter file."""
        app, bump = celery_app(spec["url"], spec["queue"], spec["counter"])
        counter, deadline = spec["counter"], time.monotonic() + p["timeout"]

        def wait_for(total):
            while os.stat(counter).st_size < total:
                if time.monotonic() > deadline:
                    raise RunError(f"the worker ran {os.stat(counter).st_size} of {total} tasks in time")
                time.sleep(0.0005)

        ready.set()
        go.wait()
        warmup, n = p["warmup"], p["n"]
        for _ in range(warmup):
            bump.delay()
        wait_for(warmup)
        delay = bump.delay
        t0 = now_ns()
        for _ in range(n):
            delay()
        t_fired = now_ns()
        wait_for(warmup + n)
        t_done = now_ns()
        ran = os.stat(counter).st_size - warmup
        app.close()
        return {"seconds": (t_done - t0) / 1e9, "fire_seconds": (t_fired - t0) / 1e9, "ran": ran}


# -------------------------------------------------------------- processes


def _child(system: str, role: str, spec: Dict[str, Any], params: Dict[str, Any], ready, go, results) -> None:
    """Runs one role in a child process and reports (role, error, output)."""
    try:
        impl = CeleryClient if system in CELERY else IMPLEMENTATIONS[system]
        out = getattr(impl, role)(spec, params, ready, go)
        results.put((role, None, out))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which decides
        results.put((role, f"{type(e).__name__}: {e}", None))


def stop_process(p) -> None:
    """Terminate a multiprocessing child, then kill it if it lingers."""
    if p.is_alive():
        p.terminate()
        p.join(2)
    if p.is_alive():
        p.kill()
        p.join(2)


def run_roles(state: "State", system: str, roles: List[str], spec, params, timeout: float,
              done_after: Optional[str] = None) -> Dict[str, Any]:
    """Starts each role in its own process, in order, each once the one
    before it is ready (so receivers bind and declare first), then lets
    them all go; returns {role: output}. `params["done"]` is an event set
    once role `done_after` has reported (a sender that must outlive its
    receiver waits for it). Every child is stopped by `timeout` seconds
    after the first started."""
    ctx = multiprocessing.get_context("spawn")
    deadline = time.monotonic() + timeout
    results, go = ctx.Queue(), ctx.Event()
    params = dict(params, done=ctx.Event())
    procs = []

    def check(what: str) -> None:
        for p in procs:
            if p.exitcode not in (None, 0):
                raise RunError(f"{p.name} exited with {p.exitcode} {what}")
        if time.monotonic() > deadline:
            raise RunError(f"timed out after {timeout:.0f} s {what}")

    try:
        for role in roles:
            ready = ctx.Event()
            p = ctx.Process(target=_child, args=(system, role, spec, params, ready, go, results),
                            name=f"{system}-{role}", daemon=True)
            p.start()
            procs.append(p)
            state.children.add(p)
            while not ready.wait(0.05):
                try:  # a role that failed before it was ready has reported why
                    role_, err, _ = results.get_nowait()
                    raise RunError(f"{role_}: {err}")
                except queue.Empty:
                    check(f"before {role} was ready")
        go.set()
        outputs: Dict[str, Any] = {}
        while len(outputs) < len(roles):
            try:
                role, err, out = results.get(timeout=0.2)
            except queue.Empty:
                check(f"waiting for {', '.join(r for r in roles if r not in outputs)}")
                continue
            if err is not None:
                raise RunError(f"{role}: {err}")
            outputs[role] = out
            if role == done_after:
                params["done"].set()
        for p in procs:
            p.join(max(0.1, deadline - time.monotonic()))
        return outputs
    finally:
        for p in procs:
            stop_process(p)
            state.children.discard(p)
        results.close()


# ---------------------------------------------------------------- brokers


def _rabbitmq_module():
    sys.path.insert(0, str(HERE.parent / "tests"))
    try:
        import rabbitmq  # python/tests/rabbitmq.py: the private-broker helper of the test suite
    finally:
        sys.path.remove(str(HERE.parent / "tests"))
    return rabbitmq


class Redis:
    """A private redis-server on a free port, without persistence."""

    def __init__(self, tmp_dir: Path) -> None:
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = _rabbitmq_module().free_port()
        self.dir = tmp_dir / "redis"
        self.dir.mkdir()
        self.process: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 30) -> "Redis":
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--daemonize", "no", "--logfile", str(self.dir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RunError(f"redis-server exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RunError(f"redis-server did not answer within {timeout:.0f} s")

    def log_tail(self) -> str:
        log = self.dir / "redis.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class State:
    """Everything the run must clean up: directories, brokers, children."""

    def __init__(self) -> None:
        self.shm_dir = Path(f"/dev/shm/shmq-compare-{os.getpid()}")
        self.shm_dir.mkdir(mode=0o700)
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="shmq-compare-"))
        self.rabbitmq = None
        self.redis: Optional[Redis] = None
        self.children: set = set()
        self.workers: set = set()
        self.used_iceoryx2 = False

    def cleanup(self) -> None:
        for p in list(self.children):
            stop_process(p)
        for w in list(self.workers):
            stop_worker(w, grace=2)  # only a worker interrupted mid-run is left here
        if self.redis is not None:
            self.redis.stop()
        if self.rabbitmq is not None:
            print("stopping RabbitMQ ...", file=sys.stderr)
            self.rabbitmq.stop()
        if self.used_iceoryx2:
            try:  # resources of iceoryx2 nodes whose process was killed
                import iceoryx2 as iox2

                iox2.set_log_level(iox2.LogLevel.Error)
                node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
                node.try_cleanup_dead_nodes()
                del node
            except Exception as e:  # noqa: BLE001 - best effort
                print(f"iceoryx2 clean-up: {e}", file=sys.stderr)
        shutil.rmtree(self.shm_dir, ignore_errors=True)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)


def stop_worker(worker: subprocess.Popen, grace: float = 15) -> None:
    """Cold shutdown (SIGQUIT: every task has run and been acked by then),
    SIGKILL to the worker's process group if it lingers `grace` seconds."""
    if worker.poll() is None:
        try:
            os.killpg(worker.pid, signal.SIGQUIT)
            worker.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            pass
    try:
        os.killpg(worker.pid, signal.SIGKILL)  # its pool processes too
    except ProcessLookupError:
        pass
    worker.wait(10)


# ------------------------------------------------------------ measurements


def message_count(args, system: str, size: int) -> int:
    n = min(args.messages, args.max_bytes // size) * MESSAGE_SCALE.get(system, 1.0)
    return max(MIN_MESSAGES, int(n))


def measure_messaging(state: State, args, system: str, size: int, trial: int) -> List[Dict[str, Any]]:
    impl = IMPLEMENTATIONS[system]
    records = []
    n = message_count(args, system, size)
    if system == "shmq-batch":
        n -= n % args.batch
    base = {"trial": trial, "system": system, "size": size}
    for kind in ("throughput", "latency"):
        run = Run(state, system, kind, size, trial)
        if kind == "latency":
            n = max(MIN_MESSAGES, int(args.round_trips * ROUND_TRIP_SCALE.get(system, 1.0)))
        params = {"n": n, "size": size, "batch": args.batch, "timeout": args.timeout}
        record = dict(base, kind=kind, n=n)
        spec = impl.setup(run, kind)
        try:
            if kind == "throughput":
                out = run_roles(state, system, ["consume", "produce"], spec, params, args.timeout, "consume")
                got, nbytes = out["consume"]["count"], out["consume"]["bytes"]
                if got != n or nbytes != n * size or not out["consume"]["intact"]:
                    raise RunError(f"the consumer got {got} messages, {nbytes} bytes, last body "
                                   f"{'intact' if out['consume']['intact'] else 'different'}; expected {n}, {n * size}")
                seconds = (out["consume"]["t_end"] - out["produce"]["t0"]) / 1e9
                record.update(seconds=seconds, msgs_per_s=n / seconds, mb_per_s=n * size / seconds / 1e6)
                if "resent" in out["produce"]:
                    record["resent"] = out["produce"]["resent"]
            else:
                out = run_roles(state, system, ["echo", "ping"], spec, params, args.timeout, "ping")
                record.update(out["ping"])
                if "resent" in out["echo"]:
                    record["resent"] = record.get("resent", 0) + out["echo"]["resent"]
        except RunError as e:
            record["error"] = str(e)
        finally:
            impl.teardown(spec)
        records.append(record)
        progress(record)
    return records


def start_celery_worker(state: State, system: str, trial: int, timeout: float):
    token = f"{system}-{trial}-{uuid.uuid4().hex[:6]}"
    if system == "celery-shmq":
        url = "shmq://" + str(state.shm_dir / token)
    elif system == "celery-rabbitmq":
        url = f"pyamqp://guest:guest@127.0.0.1:{state.rabbitmq.port}//"
    else:
        url = state.redis.url
    counter = state.tmp_dir / f"{token}.count"
    counter.touch()
    log = state.tmp_dir / f"{token}.log"
    spec = {"url": url, "queue": f"compare-{token}", "counter": str(counter)}
    env = dict(os.environ, COMPARE_CELERY_BROKER=url, COMPARE_CELERY_QUEUE=spec["queue"],
               COMPARE_CELERY_COUNTER=str(counter),
               PYTHONPATH=os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]))
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "compare", "worker", "-P", "prefork", "-c", "1",
             "-n", f"{token}@%h", "-Q", spec["queue"], "--without-mingle", "--without-gossip",
             "--without-heartbeat", "-l", "INFO"],
            cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    state.workers.add(worker)
    deadline = time.monotonic() + timeout
    while " ready." not in log.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:]
            stop_worker(worker)
            state.workers.discard(worker)
            raise RunError(f"the Celery worker did not start ({'exited' if worker.returncode else 'timed out'}):\n"
                           f"{tail}")
        time.sleep(0.1)
    return worker, spec


def measure_celery(state: State, args, system: str, trial: int) -> List[Dict[str, Any]]:
    record = {"trial": trial, "system": system, "kind": "celery", "n": args.celery_tasks}
    worker = None
    try:
        worker, spec = start_celery_worker(state, system, trial, args.timeout)
        params = {"n": args.celery_tasks, "warmup": args.celery_warmup, "timeout": args.timeout}
        out = run_roles(state, system, ["client"], spec, params, args.timeout)["client"]
        if out["ran"] != args.celery_tasks:
            raise RunError(f"the worker ran {out['ran']} tasks, expected {args.celery_tasks}")
        record.update(out, tasks_per_s=args.celery_tasks / out["seconds"])
    except RunError as e:
        record["error"] = str(e)
    finally:
        if worker is not None:
            stop_worker(worker)
            state.workers.discard(worker)
        if system == "celery-shmq" and worker is not None:
            shutil.rmtree(spec["url"][len("shmq://"):], ignore_errors=True)
    progress(record)
    return [record]


def progress(record: Dict[str, Any]) -> None:
    what = f"trial {record['trial'] + 1} {record['system']:<16} {record['kind']:<10} {record.get('size', ''):>6}"
    if "error" in record:
        detail = "FAILED: " + record["error"].splitlines()[0]
    elif record["kind"] == "throughput":
        detail = f"{record['msgs_per_s']:>12,.0f} msg/s {record['mb_per_s']:>9,.1f} MB/s"
    elif record["kind"] == "latency":
        detail = f"p50 {record['p50_ns'] / 1000:8.2f} us  p99 {record['p99_ns'] / 1000:8.2f} us"
    else:
        detail = f"{record['tasks_per_s']:>10,.0f} tasks/s"
    if record.get("resent"):
        detail += f" ({record['resent']} sends reached no subscriber and were sent again)"
    print(f"{what} n={record['n']:<8} {detail}", file=sys.stderr, flush=True)


# ----------------------------------------------------------- availability


def unavailable_reason(system: str, state_hint: Dict[str, str]) -> Optional[str]:
    """Why `system` cannot be measured here, or None."""

    def missing(module: str, pip: str) -> Optional[str]:
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - any import failure makes the system unavailable
            return f"cannot import {module} ({type(e).__name__}: {e}); pip install {pip}"
        return None

    if system in ("shmq", "shmq-batch"):
        return missing("shmq", "./python")
    if system == "multiprocessing":
        return None
    if system == "faster-fifo":
        return missing("faster_fifo", "faster-fifo")
    if system == "zmq":
        return missing("zmq", "pyzmq")
    if system == "iceoryx2":
        reason = missing("iceoryx2", "iceoryx2")
        if reason:
            return reason
        import iceoryx2 as iox2

        needed = ["NodeBuilder", "ServiceName", "Slice", "AllocationStrategy", "BackpressureStrategy",
                  "ServiceBuilderPublishSubscribe", "PortFactoryPublisher"]
        absent = [name for name in needed if not hasattr(iox2, name)]
        absent += [f"ServiceBuilderPublishSubscribe.{m}" for m in ("enable_safe_overflow", "subscriber_max_buffer_size")
                   if hasattr(iox2, "ServiceBuilderPublishSubscribe") and not hasattr(iox2.ServiceBuilderPublishSubscribe, m)]
        absent += [f"PortFactoryPublisher.{m}" for m in ("backpressure_strategy", "initial_max_slice_len")
                   if hasattr(iox2, "PortFactoryPublisher") and not hasattr(iox2.PortFactoryPublisher, m)]
        if absent:
            return f"iceoryx2 {_version('iceoryx2')} lacks {', '.join(absent)}, which this benchmark uses"
        return None
    if system in ("rabbitmq", "celery-rabbitmq"):
        reason = missing("pika", "pika") if system == "rabbitmq" else missing("celery", "celery")
        if reason:
            return reason
        return state_hint.get("rabbitmq")  # set when the broker is not installed or did not start
    if system == "celery-shmq":
        return missing("celery", "celery") or missing("shmq.kombu", "./python")
    if system == "celery-redis":
        reason = missing("celery", "celery") or missing("redis", "redis")
        if reason:
            return reason
        if "redis" in state_hint:
            return state_hint["redis"]
        if not (shutil.which("redis-server") or Path("/usr/bin/redis-server").exists()):
            return "redis-server is not installed: apt-get install -y redis-server"
        return None
    return f"unknown system {system!r}"


def _version(dist: str) -> Optional[str]:
    try:
        import importlib.metadata as md

        return md.version(dist)
    except Exception:  # noqa: BLE001 - not installed
        return None


def _command_version(cmd: List[str]) -> Optional[str]:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def versions(systems: List[str]) -> Dict[str, Optional[str]]:
    v: Dict[str, Optional[str]] = {"python": platform.python_version(), "shmq": _version("shmq")}
    if "faster-fifo" in systems:
        v["faster-fifo"] = _version("faster-fifo")
    if "zmq" in systems:
        v["pyzmq"] = _version("pyzmq")
        try:
            import zmq

            v["libzmq"] = zmq.zmq_version()
        except ImportError:
            pass
    if "iceoryx2" in systems:
        v["iceoryx2"] = _version("iceoryx2")
    if "rabbitmq" in systems:
        v["pika"] = _version("pika")
    if any(s in systems for s in CELERY):
        v["celery"], v["kombu"] = _version("celery"), _version("kombu")
    if "celery-rabbitmq" in systems:
        v["amqp"] = _version("amqp")
    if "celery-redis" in systems:
        v["redis-py"] = _version("redis")
        v["redis-server"] = _command_version([shutil.which("redis-server") or "redis-server", "--version"])
    if "rabbitmq" in systems or "celery-rabbitmq" in systems:
        v["rabbitmq-server"] = _command_version(["dpkg-query", "-W", "-f", "${Version}", "rabbitmq-server"])
    return v


# ---------------------------------------------------------------- summary


def _median(values: List[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def summarize(records: List[Dict[str, Any]], sizes: List[int]) -> Dict[str, Any]:
    ok = [r for r in records if "error" not in r]

    def by(system, kind, size=None):
        return {r["trial"]: r for r in ok if r["system"] == system and r["kind"] == kind
                and (size is None or r["size"] == size)}

    def paired(system, base, kind, key, size=None):
        mine, theirs = by(system, kind, size), by(base, kind, size)
        ratios = [mine[t][key] / theirs[t][key] for t in mine if t in theirs and theirs[t][key]]
        if not ratios:
            return None
        return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios), "pairs": len(ratios)}

    summary: Dict[str, Any] = {"messaging": {}, "celery": {}}
    systems = list(dict.fromkeys(r["system"] for r in records))
    for system in systems:
        if system in CELERY:
            runs = list(by(system, "celery").values())
            summary["celery"][system] = {
                "tasks_per_s": _median([r["tasks_per_s"] for r in runs]),
                "seconds": _median([r["seconds"] for r in runs]),
                "fire_per_s": _median([r["n"] / r["fire_seconds"] for r in runs]),
                "trials": len(runs),
                "vs_baseline": paired(system, BASELINE["celery"], "celery", "tasks_per_s"),
                "errors": [r["error"] for r in records if r["system"] == system and "error" in r],
            }
            continue
        per_size = {}
        for size in sizes:
            tp, lat = list(by(system, "throughput", size).values()), list(by(system, "latency", size).values())
            per_size[str(size)] = {
                "msgs_per_s": _median([r["msgs_per_s"] for r in tp]),
                "mb_per_s": _median([r["mb_per_s"] for r in tp]),
                "p50_ns": _median([r["p50_ns"] for r in lat]),
                "p99_ns": _median([r["p99_ns"] for r in lat]),
                "throughput_trials": len(tp),
                "latency_trials": len(lat),
                "throughput_vs_shmq": paired(system, BASELINE["messaging"], "throughput", "msgs_per_s", size),
                "p50_vs_shmq": paired(system, BASELINE["messaging"], "latency", "p50_ns", size),
                "p99_vs_shmq": paired(system, BASELINE["messaging"], "latency", "p99_ns", size),
                "errors": [f"{r['kind']}: {r['error']}" for r in records
                           if r["system"] == system and r.get("size") == size and "error" in r],
            }
        summary["messaging"][system] = per_size
    return summary


def _fmt(value: Optional[float], spec: str, scale: float = 1.0) -> str:
    return "—" if value is None else format(value / scale, spec)


def _ratio(r: Optional[Dict[str, float]]) -> str:
    return "—" if r is None else f"{r['median']:.3g}"


def _size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def print_tables(result: Dict[str, Any], sizes: List[int]) -> None:
    meta = result["meta"]
    print(f"# shmq compare (Python), {meta['date']}, {meta['cpus']} CPUs, trials {meta['trials']}")
    print(f"load average before {meta['load_before']}, after {meta['load_after']}; 1-minute load at each trial's "
          "start and end: " + ", ".join(f"{t['load1_start']}–{t['load1_end']}" for t in meta.get("trial_loads", [])))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v))
    if meta["message_counts"]:
        sizes_label = " / ".join(_size_label(s) for s in sizes)
        print(f"messages per throughput run ({sizes_label}): " + "; ".join(
            f"{system} {' / '.join(str(n) for n in counts.values())}" for system, counts in meta["message_counts"].items()))
        print(f"round trips per latency run: {meta['round_trips']} (pika + RabbitMQ: "
              f"{max(MIN_MESSAGES, int(meta['round_trips'] * ROUND_TRIP_SCALE['rabbitmq']))}), the first 10 % dropped")
    messaging = result["summary"]["messaging"]
    if messaging:
        print()
        print("Throughput (msg/s, MB/s: medians over the trials; × shmq: median of the paired ratios to shmq "
              "per message, higher is faster) and one-way latency (ping-pong / 2, µs; × shmq: lower is faster)")
        print()
        print("| size | system | msg/s | MB/s | × shmq | p50 µs | p99 µs | p50 × shmq |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for size in sizes:
            for system, per_size in messaging.items():
                s = per_size[str(size)]
                print(f"| {_size_label(size)} | {LABELS[system]} | {_fmt(s['msgs_per_s'], ',.0f')} | "
                      f"{_fmt(s['mb_per_s'], ',.1f')} | {_ratio(s['throughput_vs_shmq'])} | "
                      f"{_fmt(s['p50_ns'], ',.1f', 1000)} | {_fmt(s['p99_ns'], ',.1f', 1000)} | "
                      f"{_ratio(s['p50_vs_shmq'])} |")
    celery = result["summary"]["celery"]
    if celery:
        print()
        print(f"Celery: {meta['celery_tasks']} empty acks_late tasks, one prefork worker (concurrency 1); "
              f"tasks/s from the first delay() to the last run (× Celery on shmq: paired ratio)")
        print()
        print("| broker | tasks/s | s for all | × shmq | delay() calls/s |")
        print("|---|---:|---:|---:|---:|")
        for system, s in celery.items():
            print(f"| {LABELS[system]} | {_fmt(s['tasks_per_s'], ',.0f')} | {_fmt(s['seconds'], '.2f')} | "
                  f"{_ratio(s['vs_baseline'])} | {_fmt(s['fire_per_s'], ',.0f')} |")
    notes = []
    for system, reason in result["unavailable"].items():
        notes.append(f"{LABELS.get(system, system)} not measured: {reason}")
    for system, per_size in messaging.items():
        for size, s in per_size.items():
            for err in s["errors"]:
                notes.append(f"{LABELS[system]} {_size_label(int(size))} failed in a trial: {err.splitlines()[0]}")
    for system, s in celery.items():
        for err in s["errors"]:
            notes.append(f"{LABELS[system]} failed in a trial: {err.splitlines()[0]}")
    resent = [r for r in result["runs"] if r.get("resent")]
    if resent:
        runs = sum(1 for r in result["runs"] if r["system"] == "iceoryx2")
        notes.append(f"iceoryx2: in {len(resent)} of {runs} runs send() reached no subscriber "
                     f"{sum(r['resent'] for r in resent)} times in all ("
                     + ", ".join(f"trial {r['trial'] + 1} {r['kind']} {_size_label(r['size'])}: {r['resent']}"
                                 for r in resent)
                     + "); those samples were sent again")
    if notes:
        print()
        for note in notes:
            print(f"- {note}")


def plot(result: Dict[str, Any], sizes: List[int], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: plot skipped (pip install matplotlib)", file=sys.stderr)
        return
    messaging, celery = result["summary"]["messaging"], result["summary"]["celery"]
    panels = 2 + (1 if celery else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.6))
    systems = list(messaging)
    width = 0.8 / max(1, len(systems))
    for ax, key, title in ((axes[0], "msgs_per_s", "throughput, msg/s (higher is better)"),
                           (axes[1], "p50_ns", "one-way latency p50, µs (lower is better)")):
        for i, system in enumerate(systems):
            values = [messaging[system][str(size)][key] for size in sizes]
            values = [float("nan") if v is None else (v / 1000 if key == "p50_ns" else v) for v in values]
            ax.bar([j + (i - (len(systems) - 1) / 2) * width for j in range(len(sizes))], values, width,
                   label=LABELS[system])
        ax.set_xticks(range(len(sizes)), [_size_label(s) for s in sizes])
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    if celery:
        names = list(celery)
        axes[2].bar(range(len(names)), [celery[s]["tasks_per_s"] or float("nan") for s in names],
                    color=[f"C{i}" for i in range(len(names))])
        axes[2].set_xticks(range(len(names)), [LABELS[s].replace(" (", "\n(") for s in names], fontsize=7)
        axes[2].set_title(f"Celery, {result['meta']['celery_tasks']} acks_late tasks: tasks/s", fontsize=10)
        axes[2].grid(axis="y", alpha=0.3)
    meta = result["meta"]
    fig.suptitle(f"Python, one producer and one consumer process, {meta['cpus']} CPUs, {meta['date'][:10]}, "
                 f"median of {meta['trials']} trial{'s' if meta['trials'] != 1 else ''}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}", file=sys.stderr)


# ------------------------------------------------------------------- main


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", default=",".join(ALL_SYSTEMS),
                    help=f"comma-separated, from {', '.join(ALL_SYSTEMS)} ('celery' = the three Celery ones)")
    ap.add_argument("--sizes", default="64,1024,65536", help="message sizes in bytes")
    ap.add_argument("--trials", type=int, default=None, help="interleaved repetitions (default 3; 1 with --quick)")
    ap.add_argument("--messages", type=int, default=None,
                    help="messages per throughput run (default 1000000; 20000 with --quick), capped by --max-bytes")
    ap.add_argument("--max-bytes", type=int, default=None,
                    help="cap on the bytes of one throughput run (default 1 GiB; 64 MiB with --quick)")
    ap.add_argument("--round-trips", type=int, default=None, help="per latency run (default 20000; 2000 with --quick)")
    ap.add_argument("--batch", type=int, default=64, help="shmq-batch: messages per publish_many / recv_many")
    ap.add_argument("--celery-tasks", type=int, default=None, help="tasks per Celery run (default 5000; 300 with --quick)")
    ap.add_argument("--celery-warmup", type=int, default=None, help="untimed tasks first (default 100; 20 with --quick)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds each child process (and Celery worker start) may take (default 300; 60 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a short run: small counts, one trial")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    ap.add_argument("--plot", type=Path, default=None, help=f"where to write the PNG (default {DEFAULT_PLOT})")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--report", type=Path, default=None, metavar="JSON",
                    help="measure nothing: print the tables (and the plot, with --plot) of a saved --json output")
    args = ap.parse_args(argv)
    quick = args.quick
    for name, full, short in (("trials", 3, 1), ("messages", 1_000_000, 20_000), ("max_bytes", 1 << 30, 64 << 20),
                              ("round_trips", 20_000, 2_000), ("celery_tasks", 5000, 300),
                              ("celery_warmup", 100, 20), ("timeout", 300.0, 60.0)):
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    systems = []
    for name in (s.strip() for s in args.systems.split(",") if s.strip()):
        systems.extend(CELERY if name == "celery" else [name])
    unknown = [s for s in systems if s not in ALL_SYSTEMS]
    if unknown:
        ap.error(f"unknown systems {', '.join(unknown)}; choose from {', '.join(ALL_SYSTEMS)}")
    args.system_list = list(dict.fromkeys(systems))
    args.size_list = [int(s) for s in args.sizes.split(",")]
    if args.trials < 1 or args.batch < 1 or any(s < 1 for s in args.size_list):
        ap.error("--trials, --batch and sizes must be at least 1")
    return args


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.report is not None:
        result = json.loads(args.report.read_text())
        print_tables(result, result["meta"]["sizes"])
        if args.plot is not None:
            plot(result, result["meta"]["sizes"], args.plot)
        return 0
    # Ctrl-C and kill both end in the clean-up below, also when a shell
    # started this in the background with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    state = State()
    records: List[Dict[str, Any]] = []
    try:
        hints: Dict[str, str] = {}
        wanted = args.system_list
        if any(s in ("rabbitmq", "celery-rabbitmq") and not unavailable_reason(s, hints) for s in wanted):
            print("starting a private RabbitMQ ...", file=sys.stderr)
            rabbitmq = _rabbitmq_module()
            try:
                state.rabbitmq = rabbitmq.Broker()  # raises BrokerError if rabbitmq-server is not installed
                state.rabbitmq.start()  # stops the node itself if it fails to start
            except rabbitmq.BrokerError as e:
                hints["rabbitmq"] = f"no private RabbitMQ: {e}"
                state.rabbitmq = None
        if "celery-redis" in wanted and not unavailable_reason("celery-redis", hints):
            try:
                state.redis = Redis(state.tmp_dir)
                state.redis.start()
            except RunError as e:
                hints["redis"] = f"the private redis-server did not start: {e}"
                state.redis = None
        unavailable = {s: r for s in wanted if (r := unavailable_reason(s, hints))}
        active = [s for s in wanted if s not in unavailable]
        state.used_iceoryx2 = "iceoryx2" in active
        for system, reason in unavailable.items():
            print(f"{system}: not measured: {reason}", file=sys.stderr)
        load_before = [round(x, 2) for x in os.getloadavg()]
        started = datetime.datetime.now().astimezone()
        trial_loads = []
        for trial in range(args.trials):
            shift = trial % max(1, len(active))
            order = active[shift:] + active[:shift]
            load = os.getloadavg()[0]
            for system in order:
                if system in CELERY:
                    records += measure_celery(state, args, system, trial)
                else:
                    for size in args.size_list:
                        records += measure_messaging(state, args, system, size, trial)
            trial_loads.append({"trial": trial + 1, "order": order, "load1_start": round(load, 2),
                                "load1_end": round(os.getloadavg()[0], 2)})
            print(f"trial {trial + 1} done; 1-minute load average {load:.2f} at its start, "
                  f"{os.getloadavg()[0]:.2f} at its end (this run itself keeps about 2 processes busy)",
                  file=sys.stderr, flush=True)
        load_after = [round(x, 2) for x in os.getloadavg()]
        result = {
            "meta": {
                "date": started.isoformat(timespec="seconds"),
                "seconds": round((datetime.datetime.now().astimezone() - started).total_seconds(), 1),
                "host": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform(),
                "load_before": load_before, "load_after": load_after, "trial_loads": trial_loads,
                "trials": args.trials, "sizes": args.size_list, "systems": active,
                "messages": args.messages, "max_bytes": args.max_bytes, "round_trips": args.round_trips,
                "batch": args.batch, "celery_tasks": args.celery_tasks, "celery_warmup": args.celery_warmup,
                "message_counts": {s: {str(size): message_count(args, s, size) for size in args.size_list}
                                   for s in active if s in MESSAGING},
                "versions": versions(active),
                "command": " ".join([Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]),
            },
            "unavailable": unavailable,
            "summary": summarize(records, args.size_list),
            "runs": records,
        }
        if args.json:
            print(json.dumps(result, indent=1))
        else:
            print_tables(result, args.size_list)
        sys.stdout.flush()
        if not args.no_plot and (args.plot is not None or not args.quick):
            plot(result, args.size_list, args.plot or DEFAULT_PLOT)
        failed = [r for r in records if "error" in r]
        return 1 if failed and not [r for r in records if "error" not in r] else 0
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        state.cleanup()


if __name__ == "__main__":
    sys.exit(main())
