#!/usr/bin/env python3
"""Python publisher and consumer in separate processes, 64-byte messages:
shmq's pika-style API against pika + RabbitMQ in the same run.

    python3 python/benchmarks/bench.py [--messages N] [--round-trips N] [--trials N] [--no-rabbitmq]

Throughput is measured plain and in confirm mode (``confirm_delivery()``:
every ``basic_publish`` returns only once the message is enqueued, or raises),
the two interleaved over --trials runs; the confirm-mode cost is the median
of the paired ratios. RabbitMQ is measured when a server answers on
localhost:5672, or when Debian's rabbitmq-server is installed (this script
starts it). Prints a table and, with --json, one JSON object.
"""

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import time
import uuid

BODY = b"x" * 64


# ------------------------------------------------------------------ shmq

def consume_n(ch, queue, n, ready):
    """Consumes n messages from queue on a pika-style channel (shmq's or
    pika's: the calls are the same), after signalling ready."""
    ch.queue_declare(queue=queue)
    count = 0

    def cb(ch, method, props, body):
        nonlocal count
        count += 1
        if count >= n:
            ch.stop_consuming()

    ch.basic_consume(queue, cb, auto_ack=True)
    ready.set()
    ch.start_consuming()


def shmq_consumer(ns_path, queue, n, ready):
    import shmq
    consume_n(shmq.BlockingConnection(shmq.ConnectionParameters(namespace=ns_path)).channel(), queue, n, ready)


def shmq_throughput(ns_path, n, confirm=False):
    import shmq
    queue = "tp"
    ch = shmq.BlockingConnection(shmq.ConnectionParameters(namespace=ns_path)).channel()
    ch.queue_declare(queue=queue)
    if confirm:
        ch.confirm_delivery()
    ready = mp.Event()
    proc = mp.Process(target=shmq_consumer, args=(ns_path, queue, n, ready))
    proc.start()
    ready.wait()
    start = time.perf_counter()
    for _ in range(n):
        ch.basic_publish(exchange="", routing_key=queue, body=BODY)
    proc.join()
    return n / (time.perf_counter() - start)


def shmq_echo(ns_path, n, ready):
    import shmq
    ns = shmq.Namespace(ns_path)
    consumer = ns.consumer("ping")
    ready.set()
    for _ in range(n):
        m = consumer.recv()
        ns.publish("", "pong", m.body)


def shmq_latency(ns_path, n):
    import shmq
    ns = shmq.Namespace(ns_path)
    ns.declare_queue("ping")
    ns.declare_queue("pong")
    ready = mp.Event()
    proc = mp.Process(target=shmq_echo, args=(ns_path, n, ready))
    proc.start()
    ready.wait()
    consumer = ns.consumer("pong")
    samples = []
    for _ in range(n):
        t = time.perf_counter_ns()
        ns.publish("", "ping", BODY)
        consumer.recv()
        samples.append((time.perf_counter_ns() - t) / 2)
    proc.join()
    return statistics.median(samples[n // 10:])


# -------------------------------------------------------------- RabbitMQ

def rabbit_up():
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=0.5):
            return True
    except OSError:
        return False


def start_rabbitmq():
    if rabbit_up():
        return True
    if not shutil.which("rabbitmq-server"):
        return False
    subprocess.run(["rabbitmq-server", "-detached"], check=False, capture_output=True)
    for _ in range(120):
        if rabbit_up():
            time.sleep(2)
            return True
        time.sleep(0.5)
    return False


def pika_consumer(queue, n, ready):
    import pika
    conn = pika.BlockingConnection(pika.ConnectionParameters("localhost"))
    consume_n(conn.channel(), queue, n, ready)
    conn.close()


def pika_throughput(n, confirm=False):
    import pika
    queue = f"tp-{uuid.uuid4().hex[:8]}"
    conn = pika.BlockingConnection(pika.ConnectionParameters("localhost"))
    ch = conn.channel()
    ch.queue_declare(queue=queue)
    if confirm:
        ch.confirm_delivery()
    ready = mp.Event()
    proc = mp.Process(target=pika_consumer, args=(queue, n, ready))
    proc.start()
    ready.wait()
    start = time.perf_counter()
    for _ in range(n):
        ch.basic_publish(exchange="", routing_key=queue, body=BODY)
    proc.join()
    rate = n / (time.perf_counter() - start)
    ch.queue_delete(queue)
    conn.close()
    return rate


def pika_echo(n, ready):
    import pika
    conn = pika.BlockingConnection(pika.ConnectionParameters("localhost"))
    ch = conn.channel()
    ch.queue_declare(queue="ping")
    ch.queue_declare(queue="pong")
    seen = 0

    def cb(ch, method, props, body):
        nonlocal seen
        ch.basic_publish(exchange="", routing_key="pong", body=body)
        seen += 1
        if seen >= n:
            ch.stop_consuming()

    ch.basic_consume("ping", cb, auto_ack=True)
    ready.set()
    ch.start_consuming()
    conn.close()


def pika_latency(n):
    import pika
    conn = pika.BlockingConnection(pika.ConnectionParameters("localhost"))
    ch = conn.channel()
    ch.queue_declare(queue="ping")
    ch.queue_declare(queue="pong")
    ch.queue_purge("ping")
    ch.queue_purge("pong")
    ready = mp.Event()
    proc = mp.Process(target=pika_echo, args=(n, ready))
    proc.start()
    ready.wait()
    samples = []
    for _ in range(n):
        t = time.perf_counter_ns()
        ch.basic_publish(exchange="", routing_key="ping", body=BODY)
        while True:
            method, props, body = ch.basic_get("pong", auto_ack=True)
            if method is not None:
                break
        samples.append((time.perf_counter_ns() - t) / 2)
    proc.join()
    conn.close()
    return statistics.median(samples[n // 10:])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--round-trips", type=int, default=20_000)
    ap.add_argument("--rabbit-messages", type=int, default=20_000)
    ap.add_argument("--no-rabbitmq", action="store_true")
    ap.add_argument("--trials", type=int, default=3, help="interleaved plain/confirm throughput runs")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ns_path = f"/dev/shm/shmq-pybench-{os.getpid()}"
    try:
        plain, confirmed = interleaved(lambda confirm: shmq_throughput(ns_path, args.messages, confirm), args.trials)
        results = {
            "shmq_msgs_per_sec": statistics.median(plain),
            "shmq_confirm_msgs_per_sec": statistics.median(confirmed),
            "shmq_confirm_ratio": statistics.median(c / p for p, c in zip(plain, confirmed)),
            "shmq_one_way_median_ns": shmq_latency(ns_path, args.round_trips),
        }
    finally:
        shutil.rmtree(ns_path, ignore_errors=True)
    if not args.no_rabbitmq and start_rabbitmq():
        plain, confirmed = interleaved(lambda confirm: pika_throughput(args.rabbit_messages, confirm), args.trials)
        results["pika_msgs_per_sec"] = statistics.median(plain)
        results["pika_confirm_msgs_per_sec"] = statistics.median(confirmed)
        results["pika_confirm_ratio"] = statistics.median(c / p for p, c in zip(plain, confirmed))
        results["pika_one_way_median_ns"] = pika_latency(min(args.round_trips, 2000))
        results["throughput_ratio"] = results["shmq_msgs_per_sec"] / results["pika_msgs_per_sec"]
        results["confirm_throughput_ratio"] = results["shmq_confirm_msgs_per_sec"] / results["pika_confirm_msgs_per_sec"]
    if args.json:
        print(json.dumps(results))
        return
    print(f"{'system':<22}{'msgs/s':>14}{'confirm mode':>14}{'confirm/plain':>15}{'one-way p50':>16}")
    for name, key in (("shmq (Python)", "shmq"), ("pika + RabbitMQ", "pika")):
        if f"{key}_msgs_per_sec" in results:
            print(f"{name:<22}{results[f'{key}_msgs_per_sec']:>14,.0f}{results[f'{key}_confirm_msgs_per_sec']:>14,.0f}"
                  f"{results[f'{key}_confirm_ratio']:>15.2f}{results[f'{key}_one_way_median_ns'] / 1000:>13.1f} us")
    if "pika_msgs_per_sec" in results:
        print(f"shmq / pika throughput: {results['throughput_ratio']:.1f}x plain, "
              f"{results['confirm_throughput_ratio']:.1f}x in confirm mode")
    else:
        print("RabbitMQ not measured: no server on localhost:5672 and no rabbitmq-server installed")


def interleaved(measure, trials):
    """`measure(confirm)` run plain, then in confirm mode, `trials` times:
    the two lists of rates, paired by trial."""
    plain, confirmed = [], []
    for _ in range(trials):
        plain.append(measure(False))
        confirmed.append(measure(True))
    return plain, confirmed


if __name__ == "__main__":
    main()
