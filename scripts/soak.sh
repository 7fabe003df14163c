#!/usr/bin/env bash
# The kill -9 soak: random kills of producers and consumers on multi-consumer
# queues and a fanout (tests/stress.rs) and, at the same time, of a single
# consumer taking one message at a time and in batches
# (tests/chaos_single_consumer.rs), for SECS seconds (default 600), with
# every message accounted for. Prints each run's figures.
#   bash scripts/soak.sh [SECS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
cargo test --release --no-run --test stress --test chaos_single_consumer >/dev/null 2>&1 || \
  cargo test --release --no-run --test stress --test chaos_single_consumer
export SHMQ_SOAK_SECS="$secs"
status=0
cargo test --release --test stress -- --nocapture 2>&1 | grep -E "^stress:|test result|panicked|FAILED" &
stress=$!
cargo test --release --test chaos_single_consumer -- --nocapture 2>&1 | grep -E "^chaos|test result|panicked|FAILED" &
chaos=$!
wait "$stress" || status=1
wait "$chaos" || status=1
exit "$status"
