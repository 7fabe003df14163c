#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for SECONDS_PER_TARGET
# (default 10), starting from the committed corpus (fuzz/corpus/<target>).
# Fails (non-zero) if any target crashes, panics, hangs (-timeout=5) or uses
# more than 512 MB (-rss_limit_mb); the input is left in
# fuzz/artifacts/<target>/ and every target is run even after a failure.
#
#   bash scripts/fuzz.sh          # CI: 5 × 10 s of fuzzing plus the build
#   bash scripts/fuzz.sh 600      # a longer run: 10 minutes per target
#
# Built without a sanitizer and with debug assertions (so overflow checks):
# the decoders are safe Rust and the unsafe code works on mmap'd segments,
# which AddressSanitizer does not cover; the build stays short for CI.
# FUZZ_ARGS adds libFuzzer flags, e.g. FUZZ_ARGS="-fork=2 -ignore_crashes=1".
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

seconds=${1:-10}
case $seconds in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;; esac

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi
cargo +nightly fuzz --version

flags=(--sanitizer none --debug-assertions)
start=$(date +%s)
cargo +nightly fuzz build "${flags[@]}"
echo "== fuzz build: $(($(date +%s) - start)) s"

# Scratch for the segment target's namespaces (tmpfs when there is one) and
# for new corpus entries, so that a run never grows the committed corpus.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then scratch_root=/dev/shm; else scratch_root=${TMPDIR:-/tmp}; fi
scratch=$(mktemp -d "$scratch_root/shmq-fuzz-XXXXXX")
trap 'rm -rf "$scratch"' EXIT

failed=()
for target in $(cargo +nightly fuzz list); do
    echo "== fuzz $target for ${seconds}s"
    mkdir -p "$scratch/corpus/$target" "fuzz/corpus/$target"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    if ! TMPDIR="$scratch" cargo +nightly fuzz run "${flags[@]}" "$target" "$scratch/corpus/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=512 -timeout=5 -print_final_stats=1 ${FUZZ_ARGS:-}; then
        failed+=("$target")
    fi
done

echo "== fuzzing took $(($(date +%s) - start)) s in all"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/; replay one with" >&2
    echo "  cargo +nightly fuzz run ${flags[*]} <target> <input>)" >&2
    exit 1
fi
