#!/bin/bash
# Runs bench/recv_probe.mjs: receiver and sender, pinned to one core ("same"), to two ("split"),
# or left to the scheduler (default). Usage: recv_probe.sh MODE [MiB] [same|split]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mode=$1
mib=${2:-256}
case "${3:-}" in
  same) rt="taskset -c 0" st="taskset -c 0" ;;
  split) rt="taskset -c 0" st="taskset -c 1" ;;
  *) rt="" st="" ;;
esac
out=$(mktemp)
timeout 120 $rt node "$here/recv_probe.mjs" recv "$mode" 0 "$mib" 1024 >"$out" &
pid=$!
port=""
for _ in $(seq 200); do
  port=$(head -1 "$out")
  [ -n "$port" ] && break
  sleep 0.05
done
timeout 120 $st node "$here/recv_probe.mjs" send x "$port" "$mib" 1024
wait $pid
tail -1 "$out"
rm -f "$out"
