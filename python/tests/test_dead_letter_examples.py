"""The dead-lettering examples (examples/python/dead_lettering/), run as the
user runs them, each program a separate process, against shmq and, with the
two lines marked `# shmq: changed` reverted to real pika, against a private
RabbitMQ: what each process prints and its exit status must be the same,
and must be what the example promises.

- retry_with_delay.py: a job rejected twice comes back through a delay queue
  (TTL + dead-letter exchange, nobody consuming it) and succeeds the third
  time; the attempt number comes from its x-death count.
- poison_message.py: a quorum queue with x-delivery-limit 2 parks a message
  that fails every time after its third delivery, reason delivery_limit,
  while the good orders go through.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples/python/dead_lettering"
MARK = "# shmq: changed"
WAIT = 30  # seconds: the bound on any one program


def for_rabbitmq(text: str, port: int) -> str:
    """The example for real pika against the broker on `port`."""
    text = text.replace(f"import shmq as pika  {MARK}", "import pika")
    return text.replace(f"pika.ConnectionParameters())  {MARK}",
                        f"pika.ConnectionParameters(host='127.0.0.1', port={port}))")


def test_examples_differ_from_plain_pika_in_the_marked_lines_only():
    for script in sorted(EXAMPLES.glob("*.py")):
        text = script.read_text()
        marked = [line.strip() for line in text.splitlines() if MARK in line]
        assert marked == [f"import shmq as pika  {MARK}",
                          f"connection = pika.BlockingConnection(pika.ConnectionParameters())  {MARK}"], script.name
        reverted = for_rabbitmq(text, 5672)
        assert "import shmq" not in reverted and "shmq." not in reverted, f"{script.name} uses shmq beyond the marked lines"


def run(directory: Path, env: Dict[str, str], script: str, *args: str) -> Tuple[List[str], int]:
    done = subprocess.run([sys.executable, script, *args], cwd=directory, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 0, f"{script} {args}: {done.stderr}"
    return done.stdout.splitlines(), done.returncode


def retry_with_delay(directory: Path, env: Dict[str, str]) -> Dict[str, object]:
    submitted = run(directory, env, "retry_with_delay.py", "submit", "flaky-1", "ok-1")
    began = time.monotonic()
    worked = run(directory, env, "retry_with_delay.py", "work", "2")
    # Two trips through the delay queue, each at least its TTL (200 ms).
    return {"submit": submitted, "work": worked, "waited for the delays": time.monotonic() - began >= 0.4}


def poison_message(directory: Path, env: Dict[str, str]) -> Dict[str, object]:
    return {
        "submit": run(directory, env, "poison_message.py", "submit", "order-1", "poison", "order-2"),
        "work": run(directory, env, "poison_message.py", "work", "2"),
        "parked": run(directory, env, "poison_message.py", "parked"),
    }


EXPECTED = {
    retry_with_delay: {
        "submit": ([" [x] submitted flaky-1", " [x] submitted ok-1"], 0),
        "work": ([" [!] flaky-1: attempt 1 failed, retrying in 200 ms", " [x] ok-1: done after 1 attempt(s)",
                  " [!] flaky-1: attempt 2 failed, retrying in 200 ms", " [x] flaky-1: done after 3 attempt(s)"], 0),
        "waited for the delays": True,
    },
    poison_message: {
        "submit": ([" [x] submitted order-1", " [x] submitted poison", " [x] submitted order-2"], 0),
        "work": ([" [x] order-1: processed", " [!] poison: delivery 1 failed", " [!] poison: delivery 2 failed",
                  " [!] poison: delivery 3 failed", " [x] order-2: processed"], 0),
        "parked": ([" [x] parked poison (delivery_limit)"], 0),
    },
}


@pytest.mark.parametrize("example", list(EXPECTED), ids=lambda e: e.__name__)
def test_example_runs_on_shmq_as_on_rabbitmq(example, rabbitmq, namespace, tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1", RETRY_DELAY_MS="200")
    for script in EXAMPLES.glob("*.py"):
        (tmp_path / script.name).write_text(for_rabbitmq(script.read_text(), rabbitmq.port))
    try:
        on_rabbitmq = example(tmp_path, env)
    finally:
        channel = rabbitmq.connect().channel()
        for queue in ("jobs", "jobs.retry", "orders", "orders.parked"):
            channel.queue_delete(queue=queue)
    on_shmq = example(EXAMPLES, dict(env, SHMQ_NAMESPACE=namespace))
    assert on_shmq == on_rabbitmq
    assert on_rabbitmq == EXPECTED[example]
