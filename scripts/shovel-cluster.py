#!/usr/bin/env python3
"""Not part of CI (three RabbitMQ nodes need more memory and time): a
3-node RabbitMQ cluster on this machine (Debian's rabbitmq-server, each
node with its own name, ports and data directory), a quorum queue on it,
`shmq shovel` moving messages from a shmq queue into it, and one node
stopped mid-stream. Checks that every message is in the quorum queue
(duplicates allowed only when marked) and prints what it saw.

    python3 scripts/shovel-cluster.py [--messages N]

Exit status 0 when nothing was lost.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python" / "tests"))

import pika  # noqa: E402

import shmq  # noqa: E402
from rabbitmq import Broker  # noqa: E402  (the tests' private broker)

BIN = REPO / "target" / "release" / "shmq"


def ctl(broker: Broker, *args: str) -> str:
    result = broker._ctl(*args, timeout=120)
    if result.returncode != 0:
        raise SystemExit(f"rabbitmqctl {' '.join(args)} on {broker.node}: {result.stderr}")
    return result.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    args = ap.parse_args()
    if not BIN.exists():
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "shmq"], cwd=REPO, check=True)
    nodes = [Broker() for _ in range(3)]
    cookie = uuid.uuid4().hex.upper()
    for node in nodes:  # one cluster: one Erlang cookie
        path = node.dir / "home" / ".erlang.cookie"
        path.chmod(0o600)
        path.write_text(cookie)
        path.chmod(0o400)
    ns = f"/dev/shm/shmq-cluster-{os.getpid()}"
    try:
        began = time.monotonic()
        for node in nodes:
            node.start(timeout=120)
        for node in nodes[1:]:
            ctl(node, "stop_app")
            ctl(node, "join_cluster", nodes[0].node)
            ctl(node, "start_app")
        print(f"cluster of 3 up in {time.monotonic() - began:.0f} s:", ", ".join(n.node for n in nodes))
        connection = pika.BlockingConnection(nodes[0].connection_parameters())
        connection.channel().queue_declare("orders", durable=True, arguments={"x-queue-type": "quorum"})
        connection.close()
        local = shmq.Namespace(ns)
        local.declare_queue("outbox")
        for start in range(0, args.messages, 1000):
            local.publish_many("", "outbox", [i.to_bytes(4, "big") for i in range(start, min(start + 1000, args.messages))],
                               shmq.BasicProperties(delivery_mode=2))
        uri = f"amqp://guest:guest@127.0.0.1:{nodes[0].port}/%2f"
        subprocess.run([str(BIN), "-n", ns, "shovel", "declare", "to-cluster", "--src-uri", f"shm://{ns}", "--src-queue",
                        "outbox", "--dest-uri", uri, "--dest-queue", "orders", "--dest-add-forward-headers",
                        "--reconnect-delay", "1"], check=True)
        shovel = subprocess.Popen([str(BIN), "-n", ns, "shovel", "run", "to-cluster"], stderr=subprocess.PIPE, text=True)
        while local.stats("outbox")["ready"] > args.messages * 0.6:
            time.sleep(0.05)
        stopped_at = args.messages - local.stats("outbox")["ready"]
        nodes[2].stop()
        print(f"stopped {nodes[2].node} after about {stopped_at} messages")
        deadline = time.monotonic() + 600
        while True:
            left = local.stats("outbox")
            if left["ready"] == 0 and left["unacked"] == 0:
                break
            if time.monotonic() > deadline or shovel.poll() is not None:
                raise SystemExit(f"the shovel did not finish: {left}")
            time.sleep(0.2)
        shovel.kill()
        _out, log = shovel.communicate()
        connection = pika.BlockingConnection(nodes[0].connection_parameters())
        ch = connection.channel()
        ch.basic_qos(prefetch_count=1000)
        in_queue = ch.queue_declare("orders", passive=True).method.message_count
        got: Counter = Counter()
        marked = set()
        for method, props, body in ch.consume("orders", inactivity_timeout=5):
            if method is None:
                break
            i = int.from_bytes(body, "big")
            got[i] += 1
            if props.headers["x-shovelled"][-1]["src-redelivered"]:
                marked.add(i)
            ch.basic_ack(method.delivery_tag)
            if sum(got.values()) >= in_queue:
                break
        ch.cancel()
        connection.close()
        lost = sorted(set(range(args.messages)) - set(got))
        duplicates = {i for i, n in got.items() if n > 1}
        print(f"quorum queue held {in_queue} messages; {len(got)} distinct of {args.messages}; "
              f"{len(lost)} lost; {len(duplicates)} duplicated, {len(duplicates - marked)} of them unmarked")
        print("shovel log:", " | ".join(log.strip().splitlines()[-6:]))
        return 0 if not lost and duplicates <= marked else 1
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(ns, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
