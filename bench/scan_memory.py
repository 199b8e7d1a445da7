#!/usr/bin/env python3
"""Memory a full scan costs: the server's peak RSS during `SELECT count(*)` over the whole
table, above its RSS before the query, against the buffer's size (RSS loaded minus RSS at start).

usage: scan_memory.py --url URL --pid PID --base-rss KB [--table cpu] [--runs 5]
Resets the kernel's peak-RSS mark (/proc/PID/clear_refs) first, so it needs to own PID.
"""
import argparse

import requests


def status(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True); ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--base-rss", type=int, required=True); ap.add_argument("--db", default="bench")
    ap.add_argument("--table", default="cpu"); ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    before = status(a.pid)["VmRSS"]
    with open(f"/proc/{a.pid}/clear_refs", "w") as f:
        f.write("5")
    n = None
    for _ in range(a.runs):
        r = requests.get(a.url + "/api/v3/query_sql",
                         params={"db": a.db, "q": f"SELECT count(*) AS n FROM {a.table}", "format": "jsonl"})
        r.raise_for_status()
        n = r.json()["n"]
    peak = status(a.pid)["VmHWM"]
    buffer_kb = before - a.base_rss
    growth = peak - before
    print(f"count(*) = {n}; buffer ~{buffer_kb / 1024:.0f} MiB (RSS loaded - RSS at start); "
          f"peak RSS growth during {a.runs} scans {growth / 1024:.1f} MiB = {100 * growth / max(buffer_kb, 1):.2f}% of the buffer")


if __name__ == "__main__":
    main()
