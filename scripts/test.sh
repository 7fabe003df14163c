#!/usr/bin/env bash
# The whole test suite: unit, integration (real processes, kill -9, hostile
# segments), doc tests, and the loom models of the ring.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (unit, integration, doc)"
cargo test --workspace

echo "== loom models (LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3})"
RUSTFLAGS="--cfg shmq_loom" CARGO_TARGET_DIR=target/loom \
  LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" \
  cargo test -p shmq-loom-tests --release
