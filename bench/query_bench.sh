#!/usr/bin/env bash
# TSBS query latency and scan memory on a loaded Shardline.
#
# usage: bench/query_bench.sh SHARDS BODYDIR [RUNS]
#
# BODYDIR holds gen_cpu.py bodies (../shared/peers/gen_cpu.py; 2,000 bodies = 10M rows).
# Starts target/release/shardline on a fresh data directory with SHARDS shards (one shard:
# pinned to CPU 0 with the client on CPU 1, as the peer figures were taken; two shards: both
# CPUs, shared with the client), loads BODYDIR, runs the peers' query_bench.py, then
# bench/query_latency.py (median and p99 over RUNS runs) and bench/scan_memory.py.
set -euo pipefail
shards=${1:?shards}
bodies=${2:?body directory}
runs=${3:-30}
here=$(cd "$(dirname "$0")" && pwd)
bin=${SHARDLINE_BIN:-$here/../target/release/shardline}
peers=${PEERS:-$here/../../shared/peers}
data=$(mktemp -d)
port=18950
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
pin_server=() pin_client=()
if [ "$shards" = 1 ]; then pin_server=(taskset -c 0); pin_client=(taskset -c 1); fi
"${pin_server[@]}" "$bin" serve --without-auth --data-dir "$data" --shards "$shards" \
    --http-bind 127.0.0.1:$port --without-auth --log-filter warn,glommio::reactor=off &
pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/health >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' /proc/$pid/status; }
base=$(rss)
echo "# shards=$shards bodies=$(ls "$bodies" | wc -l) $(date -u +%FT%TZ) $(uname -r)"
"${pin_client[@]}" python3 "$peers/query_bench.py" --url http://127.0.0.1:$port --lang sql \
    --load "$bodies" --runs 10
echo "# server RSS: ${base} kB at start, $(rss) kB loaded"
"${pin_client[@]}" python3 "$here/query_latency.py" --url http://127.0.0.1:$port --peers "$peers" \
    --rows "$(( $(ls "$bodies" | wc -l) * 5000 ))" --runs "$runs"
"${pin_client[@]}" python3 "$here/scan_memory.py" --url http://127.0.0.1:$port --pid $pid --base-rss "$base"
