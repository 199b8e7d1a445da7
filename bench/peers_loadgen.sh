#!/usr/bin/env bash
# Shardline, VictoriaMetrics 1.79 and InfluxDB 1.6 driven by the same load generator in one run.
# Each server is pinned to CPU 0 (one core, GOMAXPROCS=1 for the Go servers), the load generator
# to CPU 1. Rounds alternate between the servers; the table gives medians of lines/s, server CPU
# ns per line (utime+stime of the server process over the run / lines accepted) and p99.
#
# usage: bench/peers_loadgen.sh [ROUNDS] [SECONDS] [CONNECTIONS]
#   env: TARGETS (default "shardline vm influx1"), PEERS (../shared/peers, for influx1.conf)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; secs=${2:-20}; conns=${3:-8}
peers=${PEERS:-../shared/peers}
work=$(mktemp -d /tmp/peers-loadgen.XXXX)
need() { command -v "$1" >/dev/null || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
targets=${TARGETS:-shardline vm influx1}
for t in $targets; do case $t in influx1) need influxd influxdb ;; vm) need victoria-metrics victoria-metrics ;; esac; done
cargo build --release --locked -p shardline -p shardline-loadgen >/dev/null
port=18900
results=$work/results.jsonl
for r in $(seq 1 "$rounds"); do
  for t in $targets; do
    data=$(mktemp -d "$work/data.XXXX")
    extra=(--endpoint v1)
    case $t in
      shardline)
        taskset -c 0 setsid target/release/shardline serve --without-auth --data-dir "$data" --shards 1 \
          --http-bind 127.0.0.1:$port --without-auth --log-filter warn >"$data/log" 2>&1 & pid=$!
        extra=(--endpoint v3) ;;
      vm)
        GOMAXPROCS=1 taskset -c 0 setsid victoria-metrics -storageDataPath="$data" -httpListenAddr=127.0.0.1:$port \
          -retentionPeriod=100y >"$data/log" 2>&1 & pid=$! ;;
      influx1)
        sed -e "s#/var/lib/influxdb#$data#g" -e "s#bind-address = \":8086\"#bind-address = \"127.0.0.1:$port\"#" \
            -e 's#bind-address = "127.0.0.1:8088"#bind-address = "127.0.0.1:18988"#' \
            -e 's#log-enabled = true#log-enabled = false#' -e 's#query-log-enabled = true#query-log-enabled = false#' \
            -e 's#reporting-disabled = false#reporting-disabled = true#' "$peers/influx1.conf" > "$data/influx.conf"
        GOMAXPROCS=1 taskset -c 0 setsid influxd -config "$data/influx.conf" >"$data/log" 2>&1 & pid=$!
        extra=(--endpoint v1 --create-db) ;;
    esac
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 0.1; done
    sleep 1
    if ! kill -0 "$pid" 2>/dev/null; then echo "$t did not start:"; cat "$data/log"; exit 1; fi
    cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
    c0=$(cpu)
    target/release/shardline-loadgen write --url http://127.0.0.1:$port --db bench "${extra[@]}" --cpus 1 \
      --connections "$conns" --duration "${secs}s" --hosts 1000 --batch-lines 5000 --progress 0 \
      --json "$data/report.json" >"$data/loadgen.out" 2>&1 || true
    c1=$(cpu)
    python3 - "$t" "$c0" "$c1" "$(getconf CLK_TCK)" "$data/report.json" >>"$results" <<'PY'
import json, sys
t, c0, c1, hz, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
r = json.load(open(path))
lines = r["lines_accepted"]
print(json.dumps({"target": t, "lines_per_s": r["lines_per_s"], "ns_per_line": (c1 - c0) / hz * 1e9 / max(lines, 1),
                  "p99_ms": r["latency_ms"]["p99"], "failed": r["failed_requests"], "stalls": r["generator_stalls"]}))
PY
    tail -1 "$results"
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    rm -rf "$data"
  done
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| server | lines/s (median) | server CPU ns/line | p99 ms | failed requests | runs |")
print("|---|---|---|---|---|---|")
for t in dict.fromkeys(r["target"] for r in rows):
    rs = [r for r in rows if r["target"] == t]
    med = lambda k: statistics.median(r[k] for r in rs)
    print(f"| {t} | {med('lines_per_s'):,.0f} | {med('ns_per_line'):,.0f} | {med('p99_ms'):.1f} | {sum(r['failed'] for r in rs)} | {len(rs)} |")
PY
rm -rf "$work"
