#!/usr/bin/env bash
# How long a last-value cache takes to fill from the shard's Parquet files: when it is
# created over persisted data, and after kill -9 and a restart.
#
# Usage: bench/cache_backfill.sh [lines, default 1,000,000]
# Needs a release build. One shard on CPU 0 with a 1 ms snapshot interval, so every row is
# in Parquet and the buffer holds none; the load generator on CPU 1 writes TSBS cpu rows for
# 100,000 hosts. Prints when all 100,000 entries were first answered (by polling a count) and
# the server's own log line for the end of each backfill (files, rows, elapsed_ms).
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
bin=${SHARDLINE_BIN:-target/release/shardline}
port=${PORT:-18977}
url=http://127.0.0.1:$port
work=$(mktemp -d /tmp/shardline-cache-backfill.XXXXXX)
server_pid=
start() {
  taskset -c 0 "$bin" serve --without-auth --data-dir "$work/data" --shards 1 \
    --snapshot-interval 1ms --http-bind "127.0.0.1:$port" --log-filter info \
    >>"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 200); do curl -sf "$url/health" >/dev/null && break; sleep 0.05; done
}
trap 'kill -9 $server_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
q() { curl -sf -G "$url/api/v3/query_sql" --data-urlencode db=b --data-urlencode "q=$1"; }
first() { python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[0].get("n", 0) if r else 0)'; }
ms_since() { python3 -c "import time; print(round((time.time() - $1) * 1000))"; }
# Polls the cache's size until it holds every host; prints how long that took.
wait_full() {
  local since=$1 c=0
  for _ in $(seq 6000); do
    c=$(q "SELECT count(*) AS n FROM last_cache('cpu')" | first)
    [ "$c" = 100000 ] && break
    sleep 0.01
  done
  echo "$c entries after $(ms_since "$since") ms"
}
# Waits for the n-th "caches backfilled" log line and prints its fields.
backfill_line() {
  for _ in $(seq 600); do
    [ "$(grep -c 'caches backfilled' "$work/server.log" || true)" -ge "$1" ] && break
    sleep 0.1
  done
  grep 'caches backfilled' "$work/server.log" | sed -n "$1p" | sed 's/\x1b\[[0-9;]*m//g' | grep -o 'files=.*'
}

start
taskset -c 1 "$bin" loadgen write --db b --data cpu --hosts 100000 --lines "$lines" --start now \
  --url "$url" --cpus 1 --progress 0 >/dev/null
for _ in $(seq 600); do
  n=$(q "SELECT sum(row_count) AS n FROM system.parquet_files" | first)
  [ "$n" = "$lines" ] && break
  sleep 0.1
done
echo "rows in Parquet: $n in $(q "SELECT count(*) AS n FROM system.parquet_files" | first) files"

t0=$(date +%s.%N)
curl -sf -X POST "$url/api/v3/configure/last_cache" -H 'Content-Type: application/json' \
  -d '{"db":"b","table":"cpu"}' >/dev/null
echo "created: $(wait_full "$t0")"
echo "  backfill: $(backfill_line 1)"

kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null || true
t0=$(date +%s.%N)
start
echo "restarted: $(wait_full "$t0") (from the start of the process)"
echo "  backfill: $(backfill_line 2)"
