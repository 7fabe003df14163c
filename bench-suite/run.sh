#!/usr/bin/env bash
# Regenerates everything the benchmark report shows: the seed's own stack
# (pika + RabbitMQ vs Python shmq, docs/bench/python.json), then the
# comparison suite's tables, target ratios and plots (docs/bench/).
# Needs: libclang (iceoryx2 builds bindings); Debian's rabbitmq-server for
# the RabbitMQ rows (started here if installed).
#   SUITE_REPEAT=5 (default)  SUITE_ONLY=shmq,ring  SUITE_SIZES=64,1024
#   SUITE_SCALING=0  SUITE_QUICK=1
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang >/dev/null || { apt-get update -qq && apt-get install -y -qq libclang-dev clang; }
# POSIX mq: allow messages up to 1 MiB and queues of 256 messages.
echo 1048576 > /proc/sys/fs/mqueue/msgsize_max 2>/dev/null || echo "note: cannot raise mqueue limits; large POSIX mq runs will fail" >&2
echo 256 > /proc/sys/fs/mqueue/msg_max 2>/dev/null || true
# RabbitMQ for the lapin and pika rows: start Debian's server if installed.
# Default broker settings (its schedulers busy-wait for speed); the suite
# measures RabbitMQ after every local system so that this cannot slow them.
if command -v rabbitmq-server >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 60); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 1; done
  sleep 3
fi
mkdir -p docs/bench
rm -f docs/bench/python.json
if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore pika maturin
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore ./python
  python3 python/benchmarks/bench.py --json > docs/bench/python.json || rm -f docs/bench/python.json
fi
cargo build --release -p shmq-bench-suite
SUITE_PIKA_JSON=docs/bench/python.json ./target/release/shmq-bench-suite docs/bench
echo "wrote docs/bench/results.md, docs/bench/*.svg and docs/bench/python.json"
