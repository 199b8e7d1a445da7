#!/usr/bin/env python3
"""Median and p99 latency of the TSBS query shapes (the SQL of ../shared/peers/query_bench.py).

usage: query_latency.py --url URL --peers DIR --rows N [--runs 30] [--hosts 1000]
"""
import argparse, statistics, sys, time

import requests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True); ap.add_argument("--peers", required=True)
    ap.add_argument("--rows", type=int, required=True); ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--hosts", type=int, default=1000); ap.add_argument("--db", default="bench")
    a = ap.parse_args()
    sys.path.insert(0, a.peers)
    import query_bench
    span_s = (a.rows // a.hosts) * 10
    s = requests.Session()
    print(f"{'query':24s} {'median ms':>10s} {'p99 ms':>10s} {'rows':>8s}")
    for name, q in query_bench.queries("sql", span_s).items():
        ts, rows = [], 0
        for i in range(a.runs + 1):
            t = time.perf_counter()
            r = s.get(a.url + "/api/v3/query_sql", params={"db": a.db, "q": q, "format": "jsonl"}, timeout=600)
            dt = (time.perf_counter() - t) * 1000
            if r.status_code != 200:
                print(f"{name:24s} ERROR {r.text[:200]}"); break
            rows = len(r.text.strip().splitlines())
            if i:  # the first run warms up
                ts.append(dt)
        if ts:
            ts.sort()
            p99 = ts[min(len(ts) - 1, round(0.99 * (len(ts) - 1)))]
            print(f"{name:24s} {statistics.median(ts):10.1f} {p99:10.1f} {rows:8d}")


if __name__ == "__main__":
    main()
