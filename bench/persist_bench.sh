#!/usr/bin/env bash
# Persistence benchmarks (issue 4): ingest with snapshots vs buffer-only, restart time, and
# TSBS queries over data mostly in Parquet before and after compaction.
#
# usage: bench/persist_bench.sh ingest [SNAPSHOT_SECS] [BUFFER_SECS]
#        bench/persist_bench.sh restart BODYDIR
#        bench/persist_bench.sh queries BODYDIR [RUNS]
#
# BODYDIR holds gen_cpu.py bodies (../shared/peers/gen_cpu.py; 2,000 bodies = 10M rows).
# One shard, pinned to CPU 0, clients on CPU 1, like the peer figures. Server CPU time
# includes the snapshot and compaction threads (they inherit the shard's CPU).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${SHARDLINE_BIN:-$here/../target/release/shardline}
peers=${PEERS:-$here/../../shared/peers}
port=18951
mode=${1:?ingest|restart|queries}

start() { # data dir, then extra flags
    local data=$1; shift
    taskset -c 0 "$bin" serve --without-auth --data-dir "$data" --shards 1 --http-bind 127.0.0.1:$port \
        --without-auth --log-filter info,glommio::reactor=off "$@" >>"$data.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do curl -sf http://127.0.0.1:$port/health >/dev/null && return; sleep 0.05; done
    echo "server did not start"; cat "$data.log"; exit 1
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
q() { curl -sfG "http://127.0.0.1:$port/api/v3/query_sql" --data-urlencode "db=bench" --data-urlencode "q=$1" --data-urlencode format=csv | tail -n +2; }
# Waits until the files hold at least $1 rows and their list stops changing (snapshots and
# compaction done).
settle() {
    local want=$1 prev="" cur rows
    for _ in $(seq 720); do
        cur=$(q "SELECT count(*), sum(row_count) FROM system.parquet_files")
        rows=${cur#*,}; rows=${rows:-0}
        [ "$cur" = "$prev" ] && [ "$rows" -ge "$want" ] && return
        prev=$cur; sleep 5
    done
    echo "files did not settle: $cur"
}
echo "# $mode $(date -u +%FT%TZ) $(uname -r) $(nproc) CPUs, $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB"

case $mode in
ingest)
    snap_secs=${2:-300}; buf_secs=${3:-60}
    # Peak RSS of the server ingest_bench.sh starts, sampled every second.
    hwm() { local p; p=$(pgrep -f "shardline serve --data-dir /tmp/peers/data" | head -1); [ -n "$p" ] && awk '/VmHWM/ {print $2}' /proc/$p/status; }
    for run in 1 2; do
        echo "## run $run: buffer only (limit 20GiB, no snapshot), ${buf_secs}s"
        SHARDLINE_BUFFER_MEM_LIMIT=20GiB SHARDLINE_SNAPSHOT_INTERVAL=600m SHARDLINE_BIN=$bin \
            bash "$peers/ingest_bench.sh" shardline "$buf_secs" 8
        echo "## run $run: snapshots (buffer limit 1GiB, snapshot interval 10m), ${snap_secs}s"
        ( peak=0; while sleep 1; do v=$(hwm || true); [ -n "${v:-}" ] && [ "$v" -gt "$peak" ] && peak=$v && echo "$peak" > /tmp/persist_bench.hwm; done ) &
        sampler=$!
        SHARDLINE_BUFFER_MEM_LIMIT=1GiB SHARDLINE_BIN=$bin \
            bash "$peers/ingest_bench.sh" shardline "$snap_secs" 8
        kill $sampler 2>/dev/null || true
        echo "peak RSS: $(cat /tmp/persist_bench.hwm) kB"
    done
    ;;
restart)
    bodies=${2:?body directory}
    data=$(mktemp -d); rm -f "$data.log"
    trap 'stop; rm -rf "$data" "$data.log"' EXIT
    # 1: everything in the WAL (no snapshot), restart replays it.
    start "$data" --snapshot-interval 600m
    taskset -c 1 python3 "$peers/query_bench.py" --url http://127.0.0.1:$port --lang sql --load "$bodies" --runs 0 >/dev/null
    echo "rows: $(q 'SELECT count(*) FROM cpu')"
    stop
    t0=$(date +%s.%N); start "$data" --snapshot-interval 600m; t1=$(date +%s.%N)
    echo "restart, all in WAL: $(python3 -c "print(f'{$t1-$t0:.2f}')") s to ready; rows $(q 'SELECT count(*) FROM cpu')"
    grep "replayed WAL" "$data.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g'
    # 2: let a snapshot persist it (snapshot interval 1ms), then restart.
    stop; start "$data" --snapshot-interval 1ms; settle 10000000; stop
    t0=$(date +%s.%N); start "$data"; t1=$(date +%s.%N)
    echo "restart, all in Parquet: $(python3 -c "print(f'{$t1-$t0:.2f}')") s to ready; rows $(q 'SELECT count(*) FROM cpu'); files $(q 'SELECT count(*) FROM system.parquet_files')"
    grep "replayed WAL" "$data.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g'
    ;;
queries)
    bodies=${2:?body directory}; runs=${3:-30}
    for phase in before after; do
        data=$(mktemp -d); rm -f "$data.log"
        trap 'stop; rm -rf "$data" "$data.log"' EXIT
        extra=(--buffer-mem-limit 256MiB)
        [ $phase = before ] && extra+=(--no-compaction)
        start "$data" "${extra[@]}"
        taskset -c 1 python3 "$peers/query_bench.py" --url http://127.0.0.1:$port --lang sql --load "$bodies" --runs 0 >/dev/null
        settle $(( $(ls "$bodies" | wc -l) * 5000 * 8 / 10 ))
        echo "## $phase compaction: $(q 'SELECT count(*), sum(row_count), sum(size_bytes) FROM system.parquet_files') (files, rows, bytes in Parquet); $(q 'SELECT count(*) FROM cpu') rows"
        taskset -c 1 python3 "$here/query_latency.py" --url http://127.0.0.1:$port --peers "$peers" \
            --rows "$(( $(ls "$bodies" | wc -l) * 5000 ))" --runs "$runs"
        stop; rm -rf "$data" "$data.log"
    done
    ;;
esac
