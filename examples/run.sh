#!/usr/bin/env bash
# Runs each example pair end to end in a throwaway namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --examples
# A name: the namespace lives in this user's own root, /dev/shm/shmq-<uid>/.
export SHMQ_NAMESPACE="examples-$$"
trap 'rm -rf "/dev/shm/shmq-$(id -u)/$SHMQ_NAMESPACE"' EXIT
bin=target/debug/examples

echo "== tutorial 1: send / receive"
"$bin/receive" 1 &
receiver=$!
sleep 0.2
"$bin/send"
wait "$receiver"

echo "== tutorial 2: new_task / two workers"
export SHMQ_FAST_TASKS=1 SHMQ_IDLE_EXIT=1
"$bin/worker" > /tmp/worker1.$$ &
w1=$!
"$bin/worker" > /tmp/worker2.$$ &
w2=$!
for i in 1 2 3 4 5 6; do "$bin/new_task" "task $i."; done
wait "$w1" "$w2"
echo "-- worker 1"; cat /tmp/worker1.$$
echo "-- worker 2"; cat /tmp/worker2.$$
rm -f /tmp/worker1.$$ /tmp/worker2.$$

echo "== tutorial 3: emit_log / receive_logs"
"$bin/receive_logs" 1 > /tmp/logs.$$ &
r=$!; sleep 0.3
"$bin/emit_log" "info: hello"
wait "$r"; cat /tmp/logs.$$; rm -f /tmp/logs.$$

echo "== tutorial 6: rpc_server / rpc_client"
"$bin/rpc_server" 1 &
s=$!; sleep 0.3
"$bin/rpc_client" 30
wait "$s"

echo "== seed: place_order, then inventory_service"
"$bin/place_order" 3
"$bin/inventory_service" 3
