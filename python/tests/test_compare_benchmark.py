"""Smoke test of python/benchmarks/compare.py: a quick run over the systems
that need nothing beyond the standard library and shmq completes, reports a
rate and a latency for each, and leaves no namespace behind. (The full
comparison, with pyzmq, faster-fifo, iceoryx2, RabbitMQ, Redis and Celery,
is run by hand: see docs/BENCHMARKS.md.)"""

import json
import subprocess
import sys
from pathlib import Path

COMPARE = Path(__file__).resolve().parents[1] / "benchmarks" / "compare.py"
SYSTEMS = ["shmq", "shmq-batch", "multiprocessing"]
SIZES = ["64", "1024", "65536"]


def test_quick_run_reports_rates_for_stdlib_and_shmq_systems():
    before = set(Path("/dev/shm").glob("shmq-compare-*"))
    run = subprocess.run(
        [sys.executable, str(COMPARE), "--quick", "--systems", ",".join(SYSTEMS), "--no-plot", "--json",
         "--messages", "4096", "--max-bytes", str(8 << 20), "--round-trips", "400", "--timeout", "30"],
        capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["unavailable"] == {}
    summary = result["summary"]["messaging"]
    assert sorted(summary) == sorted(SYSTEMS)
    for system in SYSTEMS:
        for size in SIZES:
            s = summary[system][size]
            assert s["errors"] == [], (system, size, s["errors"])
            assert s["msgs_per_s"] > 0 and s["mb_per_s"] > 0, (system, size, s)
            assert 0 < s["p50_ns"] <= s["p99_ns"], (system, size, s)
        assert summary[system]["64"]["throughput_vs_shmq"]["pairs"] == 1
    assert set(Path("/dev/shm").glob("shmq-compare-*")) <= before, "compare.py left a namespace directory"
