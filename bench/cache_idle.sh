#!/usr/bin/env bash
# Last-value cache lookups on an idle server, one query in flight: the cost of a query itself,
# without ingest competing for the core.
#
# Usage: bench/cache_idle.sh [seconds per query kind, default 5]
# Needs a release build. Server on CPU 0 (one shard), load generator on CPU 1. Loads 100,000
# TSBS cpu hosts, creates the default last cache, then prints p50/p99 of a one-host lookup,
# of `SELECT 1` (the floor of any query) and of all 100,000 hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
bin=${SHARDLINE_BIN:-target/release/shardline}
port=${PORT:-18971}
url=http://127.0.0.1:$port
work=$(mktemp -d /tmp/shardline-cache-idle.XXXXXX)
taskset -c 0 "$bin" serve --without-auth --data-dir "$work/data" --shards 1 --http-bind "127.0.0.1:$port" \
  >"$work/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "$url/health" >/dev/null && break; sleep 0.1; done
lg() { taskset -c 1 "$bin" loadgen "$@" --url "$url" --cpus 1; }
lg write --db lvc100k --data cpu --hosts 100000 --lines 200000 --start now >/dev/null
curl -sf -X POST "$url/api/v3/configure/last_cache" -H 'Content-Type: application/json' \
  -d '{"db":"lvc100k","table":"cpu"}' >/dev/null
run() { # name sql
  printf '[{"name":"%s","weight":1,"query":"%s"}]' "$1" "$2" >"$work/q.json"
  lg query --db lvc100k --hosts 100000 --queries "$work/q.json" --duration "${secs}s" \
    --connections 1 --progress 0 --json "$work/$1.json" >/dev/null
  python3 - "$work/$1.json" <<'PY'
import json, sys
k = json.load(open(sys.argv[1]))["kinds"][0]
l = k["latency_ms"]
print(f"{k['name']:<12} n {k['ok']:>7}  p50 {l['p50']:8.3f} ms  p99 {l['p99']:8.3f} ms")
PY
}
run one-host "SELECT * FROM last_cache('cpu') WHERE hostname = '{host}'"
run select-1 "SELECT 1"
run all-100k "SELECT * FROM last_cache('cpu')"
