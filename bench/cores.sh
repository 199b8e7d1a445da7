#!/usr/bin/env bash
# Core-count benchmark: Shardline with 1..N shards, each driven by the bundled load generator
# (closed loop, durable writes), medians of alternating runs. Writes bench/cores.md and
# bench/cores.png. Extra arguments go to `shardline-loadgen cores` (see its --help), e.g.
#   bench/cores.sh --duration 30s --runs 5 --shards 1-2
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p shardline -p shardline-loadgen
exec target/release/shardline-loadgen cores --server-bin target/release/shardline --out bench/cores "$@"
