#!/usr/bin/env bash
# TSBS lastpoint from the last-value cache while ingest runs at half its maximum rate.
#
# Usage: bench/cache_bench.sh [seconds per query kind, default 20]
# Needs a release build (cargo build --release). The server gets CPU 0 (one shard and its
# query threads); the load generator, both its ingest and its queries, gets CPU 1.
#
# Steps: load db lvc1k (1,000 hosts) and lvc100k (100,000 hosts) with TSBS cpu rows; create
# the default last cache on each `cpu` table (keys: every tag); measure the closed-loop ingest
# rate of the same shape as the ingest that runs during the queries (100,000 hosts, into a
# third database); then, with ingest into lvc100k running open loop at half that rate, run
# each query kind at concurrency 1 (one connection, one query in flight) and print p50/p99
# per kind.
#
# The querying load generator shares CPU 1 with the ingesting one, which is busy; at normal
# priority the querier waits for the kernel to schedule it (a syscall trace put 1.9 ms of a
# 2.3 ms p99 there, between the server's answer and the client reading it). It runs under
# `chrt -f 10` (SCHED_FIFO) so the latencies are the server's; it uses little CPU, one query
# at a time. Set QUERY_PRIORITY= (empty) to run it at normal priority. Results are JSON unless the kind's name ends in its format. For scale, the same
# one-host lastpoint is also run against the table itself (no cache).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
bin=${SHARDLINE_BIN:-target/release/shardline}
port=${PORT:-18961}
url=http://127.0.0.1:$port
work=$(mktemp -d /tmp/shardline-cache-bench.XXXXXX)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "${ingest_pid:-}" ] && kill "$ingest_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

taskset -c 0 "$bin" serve --without-auth --data-dir "$work/data" --shards 1 --http-bind "127.0.0.1:$port" \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -sf "$url/health" >/dev/null && break; sleep 0.1; done

lg() { taskset -c 1 "$bin" loadgen "$@" --url "$url" --cpus 1; }
# shellcheck disable=SC2086 # the priority command is words on purpose
lgq() { ${QUERY_PRIORITY-chrt -f 10} taskset -c 1 "$bin" loadgen "$@" --url "$url" --cpus 1; }
echo "== loading"
lg write --db lvc1k --data cpu --hosts 1000 --lines 10000 --start now >"$work/load1k.out"
lg write --db lvc100k --data cpu --hosts 100000 --lines 200000 --start now >"$work/load100k.out"
for db in lvc1k lvc100k; do
  curl -sf -X POST "$url/api/v3/configure/last_cache" -H 'Content-Type: application/json' \
    -d "{\"db\":\"$db\",\"table\":\"cpu\"}" >/dev/null
done

echo "== maximum ingest rate (closed loop, 10 s)"
lg write --db ingest --data cpu --hosts 100000 --duration 10s --start now --json "$work/max.json" \
  >"$work/max.out"
max=$(python3 -c "import json;print(int(json.load(open('$work/max.json'))['lines_per_s']))")
half=$((max / 2))
echo "max $max lines/s; ingest at $half lines/s during the queries"

total=$((secs * 7 + 15))
lg write --db lvc100k --data cpu --hosts 100000 --rate "$half" --duration "${total}s" --start now \
  --json "$work/ingest.json" >"$work/ingest.out" 2>&1 &
ingest_pid=$!
sleep 2

run() { # name db sql [hosts] [format]
  printf '[{"name":"%s","weight":1,"query":"%s"}]' "$1" "$3" >"$work/q.json"
  lgq query --db "$2" --hosts "${4:-100000}" --queries "$work/q.json" --duration "${secs}s" \
    --connections 1 --format "${5:-json}" --json "$work/$1.json" >"$work/$1.out"
  python3 - "$work/$1.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
k = r["kinds"][0]
l = k["latency_ms"]
print(f"{k['name']:<24} n {k['ok']:>7} failed {k['failed']:>3}  p50 {l['p50']:8.3f} ms  p99 {l['p99']:8.3f} ms  max {l['max']:8.3f} ms")
PY
}
echo "== queries (concurrency 1, ${secs}s each, ingest running)"
run lvc-one-host lvc100k "SELECT * FROM last_cache('cpu') WHERE hostname = '{host}'"
run lvc-ten-hosts lvc100k "SELECT * FROM last_cache('cpu') WHERE hostname IN ({hosts:10})"
run lvc-all-1k lvc1k "SELECT * FROM last_cache('cpu')" 1000
run lvc-all-100k lvc100k "SELECT * FROM last_cache('cpu')"
run lvc-all-100k-csv lvc100k "SELECT * FROM last_cache('cpu')" 100000 csv
run lvc-all-100k-parquet lvc100k "SELECT * FROM last_cache('cpu')" 100000 parquet
run table-one-host lvc100k "SELECT * FROM cpu WHERE hostname = '{host}' ORDER BY time DESC LIMIT 1"
wait "$ingest_pid" || true
ingest_pid=
python3 - "$work/ingest.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"ingest during the queries: {r['lines_per_s']:.0f} lines/s (target {r['target_rate']:.0f}), failed requests {r['failed_requests']}")
PY
