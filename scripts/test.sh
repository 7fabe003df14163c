#!/usr/bin/env bash
# The whole test suite: unit, integration (real processes, kill -9, hostile
# segments), doc tests, the comparison suite's smoke run, the loom models,
# and the Python bindings' pytest suite (which installs the package with pip
# first).
set -euo pipefail
cd "$(dirname "$0")/.."

# tmux drives `shmq top` in a real terminal; libclang lets iceoryx2 (a
# dependency of the bench-suite workspace member only) generate bindings.
need=()
command -v tmux >/dev/null || need+=(tmux)
command -v clang >/dev/null || need+=(libclang-dev clang)
# The differential tests start their own private RabbitMQ node (own node
# name, ports and data directory), so a system broker the package may start
# on 5672 does not get in their way.
command -v rabbitmq-server >/dev/null || test -x /usr/sbin/rabbitmq-server || need+=(rabbitmq-server)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}"; fi

echo "== cargo test (unit, integration, doc)"
cargo test --workspace

echo "== 2^32 slot positions past an idle producer (release build, about a minute)"
cargo test --release --test wrap_slots

echo "== a 1 GiB burst into a default queue across processes, drained, memory given back (release build)"
SHMQ_BURST_BYTES=$((1 << 30)) cargo test --release --test elastic a_burst

echo "== loom models (LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3})"
RUSTFLAGS="--cfg shmq_loom" CARGO_TARGET_DIR=target/loom \
  LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" \
  cargo test -p shmq-loom-tests --release

echo "== python bindings (pip install ./python, then pytest)"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore maturin pytest 'pika==1.4.4' 'aio-pika==10.2.1' 'celery==5.7.0' 'kombu==5.7.0'
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore ./python
python3 -m pytest -q python/tests
