#!/usr/bin/env bash
# Regenerates the comparison suite's plots and tables (docs/bench/), and the
# Python shmq-vs-pika figures when RabbitMQ can be started. Needs: libclang
# (iceoryx2 builds bindings), Debian's rabbitmq-server for the pika row.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang >/dev/null || { apt-get update -qq && apt-get install -y -qq libclang-dev clang; }
# POSIX mq: allow messages up to 1 MiB and queues of 256 messages.
echo 1048576 > /proc/sys/fs/mqueue/msgsize_max 2>/dev/null || echo "note: cannot raise mqueue limits; large POSIX mq runs will fail" >&2
echo 256 > /proc/sys/fs/mqueue/msg_max 2>/dev/null || true
# RabbitMQ for the lapin and pika rows: start Debian's server if installed.
if command -v rabbitmq-server >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 60); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 1; done
  sleep 3
fi
cargo build --release --manifest-path bench-suite/Cargo.toml
./bench-suite/target/release/shmq-bench-suite docs/bench
if python3 -c "import shmq" 2>/dev/null; then
  python3 -m pip install --quiet --root-user-action=ignore pika || true
  python3 python/benchmarks/bench.py --json > docs/bench/python.json || true
fi
echo "wrote docs/bench/results.md and docs/bench/*.svg"
