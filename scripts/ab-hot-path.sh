#!/usr/bin/env bash
# Same-run A/B of the no-dead-letter hot path (benches/hot_path.rs) between
# an older commit (default 0ffb837, before dead-lettering) and the working
# tree: builds benches/hot_path.rs against each (as an example in a
# worktree of the old commit), then runs old, new, old, new, ... PAIRS times
# and prints each pair's new/old ratio per workload and their median.
# Usage: scripts/ab-hot-path.sh [BASE] [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-0ffb837}
pairs=${2:-5}
old=/tmp/shmq-ab-$base
if [ ! -d "$old" ]; then git worktree add --detach "$old" "$base" >/dev/null; fi
cp benches/hot_path.rs "$old/examples/hot_path_ab.rs"
(cd "$old" && cargo build --release --example hot_path_ab --quiet)
cargo build --release --bench hot_path --quiet
new_bin=$(ls -t target/release/deps/hot_path-* | grep -v '\.d$' | head -1)
old_bin=$old/target/release/examples/hot_path_ab
declare -A ratios
for i in $(seq "$pairs"); do
  o=$("$old_bin"); n=$("$new_bin")
  while read -r name rate; do
    new_rate=$(echo "$n" | awk -v w="$name" '$1 == w { print $2 }')
    r=$(awk -v a="$new_rate" -v b="$rate" 'BEGIN { printf "%.3f", a / b }')
    ratios[$name]+="$r "
    echo "pair $i $name old $rate new $new_rate new/old $r"
  done <<< "$o"
done
for name in one batch manual; do
  echo "$name median new/old: $(echo ${ratios[$name]} | tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)], "(min", a[1] ", max", a[NR] ")" }')"
done
