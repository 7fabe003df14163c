#!/usr/bin/env python3
"""The shovel's throughput and added latency against a private RabbitMQ
(Debian's rabbitmq-server, started here on free ports), next to lapin alone
with the shovel's client settings, in the same run, interleaved:

    python3 python/benchmarks/shovel.py [--messages N] [--trials N] [--sizes 64,1024] [--json]

* shmq -> RabbitMQ: `shmq shovel run` moving N messages out of a shmq
  queue, against `shmq shovel baseline --mode publish` (lapin publishing N
  with confirms, 1000 in flight, as the shovel). Both are timed as whole
  processes (start, connect, move, exit).
* RabbitMQ -> shmq: the shovel moving N messages into shmq, against lapin
  consuming N with acks (prefetch 1000).
* Added latency: 2000 messages, one every 0.5 ms, published into shmq and
  carried by a running shovel to a pika consumer on RabbitMQ, against the
  same messages published to RabbitMQ directly with pika; p50 and p99 of
  (arrival - publish) on one clock.

Needs the release binary (built here if missing). Ratios are medians of
per-trial ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python" / "tests"))

import shmq  # noqa: E402
from rabbitmq import Broker  # noqa: E402  (the tests' private broker)

BIN = REPO / "target" / "release" / "shmq"


def sh(*args: str) -> str:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, check=True, timeout=600).stdout


def timed(args: list) -> float:
    began = time.perf_counter()
    sh(*args)
    return time.perf_counter() - began


def timed_shovel(ns: str, name: str, src: str, src_queue: str, dest: str, dest_queue: str) -> float:
    sh("-n", ns, "shovel", "declare", name, "--src-uri", src, "--src-queue", src_queue, "--dest-uri", dest,
       "--dest-queue", dest_queue, "--src-delete-after", "queue-length")
    elapsed = timed(["-n", ns, "shovel", "run", name])
    # src-delete-after reached: the runner removed the definition itself,
    # as RabbitMQ does.
    listed = [s["name"] for s in json.loads(sh("-n", ns, "shovel", "list", "--json"))]
    assert name not in listed, f"shovel {name} still defined after it finished"
    return elapsed


def throughput(broker: Broker, ns: str, size: int, count: int) -> dict:
    uri = f"amqp://guest:guest@127.0.0.1:{broker.port}/%2f"
    direct_q, shovel_q = f"direct-{uuid.uuid4().hex[:6]}", f"shovelled-{uuid.uuid4().hex[:6]}"
    out = {}
    # Each side timed as a whole process (start, connect, move, exit).
    out["direct_publish"] = count / timed(["shovel", "baseline", "--uri", uri, "--queue", direct_q, "--mode", "publish",
                                           "--count", str(count), "--size", str(size)])
    local = shmq.Namespace(ns)
    local.declare_queue("outbox")
    body = b"x" * size
    for start in range(0, count, 1000):
        local.publish_many("", "outbox", [body] * min(1000, count - start))
    out["shovel_out"] = count / timed_shovel(ns, "out", f"shm://{ns}", "outbox", uri, shovel_q)
    out["direct_consume"] = count / timed(["shovel", "baseline", "--uri", uri, "--queue", direct_q, "--mode", "consume",
                                           "--count", str(count), "--size", str(size)])
    out["shovel_in"] = count / timed_shovel(ns, "in", uri, shovel_q, f"shm://{ns}", "inbox")
    local._native.purge_queue("inbox")
    connection = broker.connect()
    for q in (direct_q, shovel_q):
        connection.channel().queue_delete(q)
    connection.close()
    return out


def latencies(broker: Broker, ns: str, via_shovel: bool, n: int = 2000) -> list:
    """Publish n timestamped messages (one every 0.5 ms) and return the
    one-way delays in microseconds seen by a pika consumer on RabbitMQ."""
    import pika

    queue = f"lat-{uuid.uuid4().hex[:6]}"
    uri = f"amqp://guest:guest@127.0.0.1:{broker.port}/%2f"
    consumer_conn = broker.connect()
    ch = consumer_conn.channel()
    ch.queue_declare(queue, durable=True)
    delays: list = []
    proc = None
    if via_shovel:
        sh("-n", ns, "shovel", "declare", "lat", "--src-uri", f"shm://{ns}", "--src-queue", "lat-out", "--dest-uri", uri,
           "--dest-queue", queue, "--src-prefetch-count", "1")
        shmq.Namespace(ns).declare_queue("lat-out")
        proc = subprocess.Popen([str(BIN), "-n", ns, "shovel", "run", "lat"], stderr=subprocess.DEVNULL)
        time.sleep(1.0)

    def publish() -> None:
        if via_shovel:
            local = shmq.Namespace(ns)
            for _ in range(n):
                local.publish("", "lat-out", time.time_ns().to_bytes(8, "big"))
                time.sleep(0.0005)
        else:
            conn = pika.BlockingConnection(pika.URLParameters(uri))
            pub = conn.channel()
            for _ in range(n):
                pub.basic_publish("", queue, time.time_ns().to_bytes(8, "big"))
                time.sleep(0.0005)
            conn.close()

    publisher = threading.Thread(target=publish)
    publisher.start()
    for method, _props, body in ch.consume(queue, auto_ack=True, inactivity_timeout=10):
        if method is None:
            break
        delays.append((time.time_ns() - int.from_bytes(body, "big")) / 1000)
        if len(delays) >= n:
            break
    ch.cancel()
    publisher.join()
    consumer_conn.channel().queue_delete(queue)
    consumer_conn.close()
    if proc is not None:
        proc.kill()
        proc.wait()
        sh("-n", ns, "shovel", "delete", "lat")
    return delays


def percentile(values: list, p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--sizes", default="64,1024")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not BIN.exists():
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "shmq"], cwd=REPO, check=True)
    broker = Broker().start()
    ns = f"/dev/shm/shmq-shovel-bench-{os.getpid()}"
    results: dict = {"messages": args.messages, "trials": args.trials, "sizes": {}}
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            runs = [throughput(broker, ns, size, args.messages) for _ in range(args.trials)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            results["sizes"][size] = {
                **{f"{k}_msgs_per_sec": v for k, v in med.items()},
                "out_ratio": statistics.median(r["shovel_out"] / r["direct_publish"] for r in runs),
                "in_ratio": statistics.median(r["shovel_in"] / r["direct_consume"] for r in runs),
            }
        direct, shovelled = latencies(broker, ns, False), latencies(broker, ns, True)
        results["latency_us"] = {
            "direct_p50": percentile(direct, 50), "direct_p99": percentile(direct, 99),
            "shovel_p50": percentile(shovelled, 50), "shovel_p99": percentile(shovelled, 99),
        }
    finally:
        broker.stop()
        shutil.rmtree(ns, ignore_errors=True)
    if args.json:
        print(json.dumps(results))
        return
    print(f"{args.messages} messages, median of {args.trials} interleaved trials")
    print(f"{'size':>6} {'lapin publish':>14} {'shovel shmq->RMQ':>17} {'ratio':>6} {'lapin consume':>14} {'shovel RMQ->shmq':>17} {'ratio':>6}")
    for size, r in results["sizes"].items():
        print(f"{size:>6} {r['direct_publish_msgs_per_sec']:>14,.0f} {r['shovel_out_msgs_per_sec']:>17,.0f} {r['out_ratio']:>6.2f}"
              f" {r['direct_consume_msgs_per_sec']:>14,.0f} {r['shovel_in_msgs_per_sec']:>17,.0f} {r['in_ratio']:>6.2f}")
    lat = results["latency_us"]
    print(f"one-way latency to a RabbitMQ consumer (us): direct p50 {lat['direct_p50']:.0f} p99 {lat['direct_p99']:.0f};"
          f" via shmq + shovel p50 {lat['shovel_p50']:.0f} p99 {lat['shovel_p99']:.0f}")


if __name__ == "__main__":
    main()
