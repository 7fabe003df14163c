"""Attacker-minded review of `shmq shovel` against the private RabbitMQ of
the `rabbitmq` fixture: poison messages that stop a shovel for ever, and a
destination that returns or nacks (each a defect it found, fixed since);
the rest pin attacks that held. The shm-only proofs are
in tests/review_attacks_shovel_management.rs.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import Any, List

import pika
import pytest

import shmq

WAIT = 20


def shovel(shmq_bin: str, namespace: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([shmq_bin, "-n", namespace, "shovel", *args], capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 0, result.stderr
    return result


def run_for(shmq_bin: str, namespace: str, name: str, seconds: float) -> str:
    """Runs the shovel for `seconds`, then stops it; its log."""
    proc = subprocess.Popen([shmq_bin, "-n", namespace, "shovel", "run", name], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        _out, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return err


def amqp_uri(rabbitmq: Any) -> str:
    return f"amqp://guest:guest@127.0.0.1:{rabbitmq.port}/%2f"


def rabbit_bodies(rabbitmq: Any, queue: str) -> List[bytes]:
    connection = rabbitmq.connect()
    try:
        ch = connection.channel()
        out = []
        while True:
            method, _props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(body)
    finally:
        connection.close()


def shmq_bodies(namespace: str, queue: str) -> List[bytes]:
    with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
        ch = connection.channel()
        out = []
        while True:
            method, _props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(body)


def test_a_message_rabbitmq_refuses_does_not_stop_the_shmq_to_rabbitmq_shovel(shmq_bin, namespace, rabbitmq):
    dest = f"poison-out-{uuid.uuid4().hex[:8]}"
    with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
        ch = connection.channel()
        ch.queue_declare("outbox")
        # shmq takes any user_id; RabbitMQ refuses one that is not the
        # connection's user (PRECONDITION_FAILED), closing the channel.
        ch.basic_publish("", "outbox", b"poison", shmq.BasicProperties(user_id="mallory"))
        ch.basic_publish("", "outbox", b"good", shmq.BasicProperties())
    shovel(shmq_bin, namespace, "declare", "out", "--src-uri", f"shm://{namespace}", "--src-queue", "outbox",
           "--dest-uri", amqp_uri(rabbitmq), "--dest-queue", dest, "--reconnect-delay", "0.2")
    log = run_for(shmq_bin, namespace, "out", 5)
    assert b"good" in rabbit_bodies(rabbitmq, dest), log[-1500:]


def test_a_message_shmq_cannot_store_does_not_stop_the_rabbitmq_to_shmq_shovel(shmq_bin, namespace, rabbitmq):
    src = f"poison-in-{uuid.uuid4().hex[:8]}"
    deep: Any = 1
    for _ in range(20):
        deep = {"d": deep}
    connection = rabbitmq.connect()
    try:
        ch = connection.channel()
        ch.queue_declare(src, durable=True)
        ch.basic_publish("", src, b"poison", pika.BasicProperties(headers={"deep": deep}))
        ch.basic_publish("", src, b"good", pika.BasicProperties())
    finally:
        connection.close()
    shovel(shmq_bin, namespace, "declare", "in", "--src-uri", amqp_uri(rabbitmq), "--src-queue", src,
           "--dest-uri", f"shm://{namespace}", "--dest-queue", "inbox", "--reconnect-delay", "0.2")
    log = run_for(shmq_bin, namespace, "in", 5)
    assert b"good" in shmq_bodies(namespace, "inbox"), log[-1500:]


def test_on_publish_does_not_silently_drop_what_rabbitmq_returns(shmq_bin, namespace, rabbitmq):
    with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
        ch = connection.channel()
        ch.queue_declare("outbox")
        for i in range(5):
            ch.basic_publish("", "outbox", f"m{i}".encode(), shmq.BasicProperties())
    nowhere = f"nowhere-{uuid.uuid4().hex[:8]}"
    shovel(shmq_bin, namespace, "declare", "pub", "--src-uri", f"shm://{namespace}", "--src-queue", "outbox",
           "--dest-uri", amqp_uri(rabbitmq), "--dest-exchange", "amq.direct", "--dest-exchange-key", nowhere,
           "--ack-mode", "on-publish", "--reconnect-delay", "0.2", "--src-delete-after", "queue-length")
    log = run_for(shmq_bin, namespace, "pub", 5)
    left = shmq.Namespace(namespace).stats("outbox")["ready"]
    # Either the messages stay in the source, or the loss is reported (the
    # shovel, done at src-delete-after, is deleted: its log says it).
    assert left == 5 or "returned or refused by the destination" in log, (left, log[-1500:])


def test_a_destination_that_nacks_keeps_the_rest_in_the_source(shmq_bin, namespace, rabbitmq):
    """Held: a RabbitMQ queue full under reject-publish nacks; on-confirm
    leaves what it refused in the shmq source."""
    dest = f"nack-{uuid.uuid4().hex[:8]}"
    connection = rabbitmq.connect()
    try:
        connection.channel().queue_declare(dest, durable=True,
                                           arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
    finally:
        connection.close()
    with shmq.BlockingConnection(shmq.ConnectionParameters(namespace=namespace)) as connection:
        ch = connection.channel()
        ch.queue_declare("outbox")
        for i in range(5):
            ch.basic_publish("", "outbox", f"m{i}".encode(), shmq.BasicProperties())
    shovel(shmq_bin, namespace, "declare", "nk", "--src-uri", f"shm://{namespace}", "--src-queue", "outbox",
           "--dest-uri", amqp_uri(rabbitmq), "--dest-queue", dest, "--reconnect-delay", "0.2",
           "--src-prefetch-count", "1")
    log = run_for(shmq_bin, namespace, "nk", 4)
    assert "nacked" in log, log[-1500:]
    got = rabbit_bodies(rabbitmq, dest)
    left = shmq.Namespace(namespace).stats("outbox")
    assert got == [b"m0", b"m1"], got
    assert left["ready"] + left["unacked"] == 3, left
