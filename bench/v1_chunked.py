#!/usr/bin/env python3
"""A whole-table `SELECT *` over the v1 API with `chunked=true`: rows/s, and how far the
server's memory grows while it answers.

usage: v1_chunked.py --url URL --pid PID [--db bench] [--load BODYDIR] [--runs 3]
                     [--query 'SELECT * FROM cpu'] [--chunk-size 10000]

Works against Shardline and InfluxDB 1.x alike (both serve /write and /query). The body is
read as it streams and its rows counted per line (`],[` separates rows of a series' values);
nothing is kept. While a run lasts, a thread samples the server's VmRSS from /proc every
20 ms; the growth is the peak less the RSS just before the request, reported twice: VmRSS
(everything resident, including the executable's code, which the first query of a kind pages
in: ~32 MiB on a fresh server, whatever the answer) and RssAnon (memory the server allocated). Server CPU time is the
change of utime+stime of PID over the run.
"""
import argparse
import os
import statistics
import sys
import threading
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared/peers"))
from query_bench import load  # noqa: E402  (the peers' loader)

TICK = os.sysconf("SC_CLK_TCK")


def rss_kib(pid, key="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key}")


def rss_both(pid):
    """(VmRSS, RssAnon) in KiB: all resident pages, and those of memory the process allocated
    (VmRSS also counts the executable's code as the first query of a kind pages it in)."""
    return rss_kib(pid), rss_kib(pid, "RssAnon")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def one_run(url, db, q, chunk_size, pid):
    base, base_anon = rss_both(pid)
    peak = [base, base_anon]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            now = rss_both(pid)
            peak[0] = max(peak[0], now[0])
            peak[1] = max(peak[1], now[1])
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu0, t0 = cpu_s(pid), time.perf_counter()
    rows, lines, nbytes = 0, 0, 0
    params = {"db": db, "q": q, "chunked": "true", "chunk_size": str(chunk_size), "epoch": "ns"}
    with requests.get(f"{url}/query", params=params, stream=True, timeout=3600) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")
        for line in r.iter_lines(chunk_size=1 << 20):
            if not line:
                continue
            lines += 1
            nbytes += len(line) + 1
            if b'"error"' in line[:200]:
                raise RuntimeError(line[:300].decode())
            if b'"values"' in line:
                rows += line.count(b"],[") + 1
    wall = time.perf_counter() - t0
    cpu = cpu_s(pid) - cpu0
    stop.set()
    sampler.join()
    return {"rows": rows, "lines": lines, "bytes": nbytes, "wall_s": wall, "cpu_s": cpu,
            "rss_base_mib": base / 1024, "rss_growth_mib": (peak[0] - base) / 1024,
            "anon_growth_mib": (peak[1] - base_anon) / 1024}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True, help="the server's process id (for RSS and CPU)")
    ap.add_argument("--db", default="bench")
    ap.add_argument("--load")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--query", default="SELECT * FROM cpu")
    ap.add_argument("--chunk-size", type=int, default=10000)
    a = ap.parse_args()
    url = a.url.rstrip("/")
    if a.load:
        t = time.time()
        n = load(url, "influxql", a.db, a.load, {})
        print(f"loaded {n} lines in {time.time() - t:.1f} s", flush=True)
    runs = []
    for i in range(a.runs):
        r = one_run(url, a.db, a.query, a.chunk_size, a.pid)
        runs.append(r)
        print(f"run {i + 1}: {r['rows']} rows, {r['bytes'] / 1e6:.0f} MB in {r['wall_s']:.1f} s "
              f"({r['rows'] / r['wall_s']:,.0f} rows/s), server CPU {r['cpu_s']:.1f} s "
              f"({r['cpu_s'] / max(r['rows'], 1) * 1e6:.2f} us/row), RSS {r['rss_base_mib']:.0f} MiB "
              f"+ {r['rss_growth_mib']:.1f} MiB peak (anonymous + {r['anon_growth_mib']:.1f} MiB)", flush=True)
    if not runs:
        return
    med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
    print(f"median: {med('rows') / med('wall_s'):,.0f} rows/s, server CPU {med('cpu_s'):.1f} s, "
          f"RSS growth {med('rss_growth_mib'):.1f} MiB (max {max(r['rss_growth_mib'] for r in runs):.1f}), "
          f"anonymous {med('anon_growth_mib'):.1f} MiB (max {max(r['anon_growth_mib'] for r in runs):.1f})")


if __name__ == "__main__":
    main()
