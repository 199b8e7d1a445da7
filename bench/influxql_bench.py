#!/usr/bin/env python3
"""The TSBS query shapes in InfluxQL and in SQL on Shardline, side by side on the same data.

usage: influxql_bench.py --url URL [--db bench] [--load BODYDIR] [--hosts 1000] [--runs 10]

The shapes and the data are the peers' (../shared/peers/query_bench.py and gen_cpu.py), so the
figures compare with InfluxDB 1.6's from `query_bench.py --lang influxql` on the same bodies.
InfluxQL goes to /api/v3/query_influxql (the v1 /query endpoint is not served yet), SQL to
/api/v3/query_sql. Runs alternate InfluxQL and SQL per shape; prints median and p90 ms of each
and their ratio.
"""
import argparse
import os
import statistics
import sys
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared/peers"))
from query_bench import load, queries  # noqa: E402  (the peers' shapes and loader)


def ask(url, endpoint, db, q):
    r = requests.get(f"{url}/api/v3/{endpoint}", params={"db": db, "q": q, "format": "jsonl"}, timeout=600)
    if r.status_code != 200:
        raise RuntimeError(r.text[:300])
    return len(r.text.strip().splitlines())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--db", default="bench")
    ap.add_argument("--load")
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--lines", type=int, help="lines already loaded (sets the time span without --load)")
    a = ap.parse_args()
    url = a.url.rstrip("/")
    if a.load:
        t = time.time()
        n = load(url, "sql", a.db, a.load, {})
        print(f"loaded {n} lines in {time.time() - t:.1f} s")
    else:
        n = a.lines or 10_000_000
    span_s = (n // a.hosts) * 10
    iql, sql = queries("influxql", span_s), queries("sql", span_s)
    print(f"{'query':24s} {'influxql ms':>12s} {'sql ms':>10s} {'ratio':>6s}  rows (influxql/sql)")
    for name in iql:
        try:
            rows = (ask(url, "query_influxql", a.db, iql[name]), ask(url, "query_sql", a.db, sql[name]))
            ti, ts = [], []
            for _ in range(a.runs):
                t = time.perf_counter(); ask(url, "query_influxql", a.db, iql[name]); ti.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter(); ask(url, "query_sql", a.db, sql[name]); ts.append((time.perf_counter() - t) * 1000)
            mi, ms = statistics.median(ti), statistics.median(ts)
            print(f"{name:24s} {mi:12.1f} {ms:10.1f} {mi / ms:6.2f}  {rows[0]}/{rows[1]}")
        except Exception as e:  # a failing shape is reported, the others still run
            print(f"{name:24s} ERROR {str(e)[:200]}")


if __name__ == "__main__":
    main()
