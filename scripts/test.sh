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
# The management web UI's browser test drives Debian's headless chromium.
test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || need+=(chromium chromium-driver)
# The shovel's TLS test makes its certificates with openssl.
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}"; fi

echo "[${SECONDS}s] == cargo test (unit, integration, doc)"
cargo test --workspace

echo "[${SECONDS}s] == 2^32 slot positions past an idle producer (release build, about a minute)"
cargo test --release --test wrap_slots

echo "[${SECONDS}s] == a 1 GiB burst into a default queue across processes, drained, memory given back (release build)"
SHMQ_BURST_BYTES=$((1 << 30)) cargo test --release --test elastic a_burst

echo "[${SECONDS}s] == loom models (LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3})"
RUSTFLAGS="--cfg shmq_loom" CARGO_TARGET_DIR=target/loom \
  LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" \
  cargo test -p shmq-loom-tests --release

echo "[${SECONDS}s] == python bindings (an abi3 wheel built with maturin, installed into a fresh venv, then pytest)"
# The wheel, not the source tree, is what the tests import: a packaging
# mistake (a module left out of the wheel, say) cannot pass unseen.
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore maturin
rm -rf target/wheels target/python-venv
python3 -m maturin build --quiet --release --manifest-path python/Cargo.toml --out target/wheels
python3 -m venv target/python-venv
venv_pip() { target/python-venv/bin/python -m pip install --quiet --disable-pip-version-check "$@"; }
venv_pip pytest 'pika==1.4.4' 'aio-pika==10.2.1' 'celery==5.7.0' 'kombu==5.7.0' 'selenium==4.51.0'
venv_pip target/wheels/shmq-*abi3*.whl
# RabbitMQ's own CLI, rabbitmqadmin v2, for test_rabbitmqadmin_vs_rabbitmq.py
# (a crates.io build, unoptimized: 1.5 minutes on 2 cores instead of 4; kept
# in target/tools).
test -x target/tools/bin/rabbitmqadmin || cargo install --quiet --debug rabbitmqadmin --locked --root target/tools
# On PATH first, so the `python3` and `celery` the tests start are the venv's.
PATH="$PWD/target/python-venv/bin:$PATH" SHMQ_EXPECT_WHEEL=1 RABBITMQADMIN="$PWD/target/tools/bin/rabbitmqadmin" \
  target/python-venv/bin/python -m pytest -q --durations=12 python/tests
