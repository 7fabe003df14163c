"""Definitions round trip RabbitMQ -> shmq -> RabbitMQ with the real tools:
a topology declared in RabbitMQ 3.10 with pika (queue arguments shmq
supports, a queue named `orders/eu`, non-durable and auto-delete queues,
every exchange type, an alternate exchange, headers and exchange-to-exchange
bindings; not an internal exchange, which RabbitMQ 3.10's own export leaves
out) is exported with `rabbitmqctl export_definitions`, imported with
`shmq import --skip-unsupported` (RabbitMQ's users, permissions and global
parameters are what it skips, and it says so), exported with `shmq
export`, deleted from RabbitMQ and imported back with `rabbitmqctl
import_definitions`. RabbitMQ's second export must hold the same queues,
exchanges and bindings as its first.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any, Dict, List, Tuple


def _topology(defs: Dict[str, Any], suffix: str) -> Tuple[List[Any], List[Any], List[Any]]:
    """The parts of a definitions file that belong to this test, comparable."""
    ours = lambda name: suffix in name  # noqa: E731
    queues = sorted((q["name"], q["durable"], q["auto_delete"], json.dumps(q["arguments"], sort_keys=True))
                    for q in defs["queues"] if ours(q["name"]))
    exchanges = sorted((x["name"], x["type"], x["durable"], x["auto_delete"], x.get("internal", False),
                        json.dumps(x["arguments"], sort_keys=True)) for x in defs["exchanges"] if ours(x["name"]))
    bindings = sorted((b["source"], b["destination"], b["destination_type"], b["routing_key"],
                       json.dumps(b["arguments"], sort_keys=True)) for b in defs["bindings"] if ours(b["destination"]))
    return queues, exchanges, bindings


def test_a_topology_survives_rabbitmq_to_shmq_to_rabbitmq(rabbitmq, namespace, shmq_bin, tmp_path):
    s = uuid.uuid4().hex[:8]
    connection = rabbitmq.connect()
    ch = connection.channel()
    ch.exchange_declare(f"unrouted-{s}", "fanout", durable=True)
    ch.exchange_declare(f"shop-{s}", "topic", durable=True, arguments={"alternate-exchange": f"unrouted-{s}"})
    ch.exchange_declare(f"hx-{s}", "headers", durable=True)
    ch.exchange_declare(f"dlx-{s}", "direct", durable=False, auto_delete=True)
    queues = {
        f"orders/eu-{s}": dict(durable=True, arguments={"x-max-length": 100, "x-overflow": "reject-publish",
                                                         "x-dead-letter-exchange": f"dlx-{s}", "x-message-ttl": 60000}),
        f"prio-{s}": dict(durable=True, arguments={"x-max-priority": 5}),
        f"sac-{s}": dict(durable=False, arguments={"x-single-active-consumer": True}),
        f"auto-{s}": dict(durable=True, auto_delete=True),
        f"quorum-{s}": dict(durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": 3}),
        f"expiring-{s}": dict(durable=True, arguments={"x-expires": 600000, "x-dead-letter-exchange": f"dlx-{s}",
                                                       "x-dead-letter-routing-key": "dead"}),
    }
    for name, options in queues.items():
        ch.queue_declare(name, **options)
    ch.queue_bind(f"orders/eu-{s}", f"shop-{s}", "order.*")
    ch.queue_bind(f"auto-{s}", f"hx-{s}", arguments={"x-match": "any", "kind": "refund", "region": "eu"})
    ch.exchange_bind(f"hx-{s}", f"shop-{s}", "#")
    ch.queue_bind(f"expiring-{s}", f"dlx-{s}", "dead")
    connection.close()

    first = tmp_path / "rabbitmq-1.json"
    out = rabbitmq._ctl("export_definitions", str(first))
    assert out.returncode == 0, out.stderr
    original = json.loads(first.read_text())

    # Into shmq: RabbitMQ's users, permissions and the like are named, and
    # refused without --skip-unsupported.
    refused = subprocess.run([shmq_bin, "--namespace", namespace, "import", str(first)], capture_output=True, text=True)
    assert refused.returncode != 0 and "user 'guest'" in refused.stderr, refused.stderr
    imported = subprocess.run([shmq_bin, "--namespace", namespace, "import", "--skip-unsupported", str(first)],
                              capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    assert "skipped (not supported by shmq): user 'guest'" in imported.stderr
    ours = tmp_path / "shmq.json"
    exported = subprocess.run([shmq_bin, "--namespace", namespace, "export", str(ours)], capture_output=True, text=True)
    assert exported.returncode == 0, exported.stderr

    # Back into RabbitMQ, from scratch.
    connection = rabbitmq.connect()
    ch = connection.channel()
    for name in queues:
        ch.queue_delete(name)
    for x in ("unrouted", "shop", "hx", "dlx"):
        ch.exchange_delete(f"{x}-{s}")
    connection.close()
    out = rabbitmq._ctl("import_definitions", str(ours))
    assert out.returncode == 0, out.stdout + out.stderr
    second = tmp_path / "rabbitmq-2.json"
    assert rabbitmq._ctl("export_definitions", str(second)).returncode == 0
    again = json.loads(second.read_text())

    before, after = _topology(original, s), _topology(again, s)
    assert len(before[0]) == len(queues) and len(before[1]) == 4 and len(before[2]) == 4, before
    assert after == before
