#!/usr/bin/env python3
"""Retry with delay through dead-lettering, the classic RabbitMQ pattern: a
job that fails is rejected; the work queue dead-letters it into a delay
queue whose TTL holds it for a while, and the delay queue dead-letters it
back. The x-death header counts the trips; a job fails at most twice.

    python3 retry_with_delay.py submit flaky-1 ok-1   # "flaky" jobs fail twice
    python3 retry_with_delay.py work 2                # stops after 2 jobs

Plain pika code: the two lines marked as changed for shmq are all that differ
from the same program for RabbitMQ (python/tests/test_dead_letter_examples.py
runs it against both and compares the output). The delay is 500 ms
(RETRY_DELAY_MS changes it)."""
import os
import sys

import shmq as pika  # shmq: changed

DELAY_MS = int(os.environ.get("RETRY_DELAY_MS", "500"))
MAX_ATTEMPTS = 3

connection = pika.BlockingConnection(pika.ConnectionParameters())  # shmq: changed
channel = connection.channel()
channel.queue_declare(queue="jobs", arguments={
    "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "jobs.retry"})
channel.queue_declare(queue="jobs.retry", arguments={
    "x-message-ttl": DELAY_MS, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "jobs"})


def attempt_of(properties):
    """1 + how often the work queue rejected this message."""
    for death in (properties.headers or {}).get("x-death", []):
        if death["queue"] == "jobs" and death["reason"] == "rejected":
            return death["count"] + 1
    return 1


if sys.argv[1] == "submit":
    for job in sys.argv[2:]:
        channel.basic_publish(exchange="", routing_key="jobs", body=job)
        print(f" [x] submitted {job}")
    connection.close()
    sys.exit(0)

finished = 0
wanted = int(sys.argv[2]) if len(sys.argv) > 2 else None


def callback(ch, method, properties, body):
    global finished
    job = body.decode()
    attempt = attempt_of(properties)
    if job.startswith("flaky") and attempt < MAX_ATTEMPTS:
        print(f" [!] {job}: attempt {attempt} failed, retrying in {DELAY_MS} ms", flush=True)
        ch.basic_reject(delivery_tag=method.delivery_tag, requeue=False)
    else:
        print(f" [x] {job}: done after {attempt} attempt(s)", flush=True)
        ch.basic_ack(delivery_tag=method.delivery_tag)
        finished += 1
        if finished == wanted:
            ch.stop_consuming()


channel.basic_qos(prefetch_count=1)
channel.basic_consume(queue="jobs", on_message_callback=callback)
channel.start_consuming()
connection.close()
