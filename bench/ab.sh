#!/usr/bin/env bash
# Two builds side by side, interleaved in one run: ingest (the peers' wrk yardstick: lines/s and
# server CPU ns/line) and the TSBS SQL query shapes (the peers' query_bench.py, median ms), so
# machine noise falls on both alike.
#
# usage: bench/ab.sh OLD_BIN NEW_BIN [PAIRS] [BODYDIR]
#   PAIRS: alternating runs of each (default 3). BODYDIR: gen_cpu.py bodies for the queries
#   (default: 200 bodies = 1M rows, made under /tmp if missing).
# One shard, server on CPU 0, client on CPU 1, as the peer figures were taken.
set -euo pipefail
old=${1:?old binary}; new=${2:?new binary}; pairs=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
peers=${PEERS:-$here/../../shared/peers}
bodies=${4:-/tmp/bodies-1m}
[ -d "$bodies" ] || python3 "$peers/gen_cpu.py" "$bodies" --hosts 1000 --bodies 200 >/dev/null
python3 -c 'import requests' 2>/dev/null || pip install -q requests
echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) CPUs; old=$old new=$new"
echo "## ingest (../shared/peers/ingest_bench.sh shardline 20 8)"
for i in $(seq "$pairs"); do
  for b in "$old" "$new"; do
    printf '%s run %s: ' "$([ "$b" = "$old" ] && echo old || echo new)" "$i"
    SHARDLINE_BIN=$b bash "$peers/ingest_bench.sh" shardline 20 8
  done
done
echo "## TSBS SQL queries, 1 shard ($(ls "$bodies" | wc -l) bodies; median ms, p90 ms, rows)"
port=18951
for i in $(seq "$pairs"); do
  for b in "$old" "$new"; do
    data=$(mktemp -d)
    taskset -c 0 "$b" serve --without-auth --data-dir "$data" --shards 1 \
        --http-bind 127.0.0.1:$port --log-filter warn,glommio::reactor=off &
    pid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/health >/dev/null && break; sleep 0.1; done
    echo "### $([ "$b" = "$old" ] && echo old || echo new) run $i"
    taskset -c 1 python3 "$peers/query_bench.py" --url http://127.0.0.1:$port --lang sql \
        --load "$bodies" --runs 10
    kill $pid; wait $pid 2>/dev/null || true
    rm -rf "$data"
  done
done
