#!/usr/bin/env python3
"""Regenerates the InfluxQL golden files from a real InfluxDB 1.x.

    python3 tests/influxql/regen.py                      # starts influxd (Debian's `influxdb`) itself
    python3 tests/influxql/regen.py --url http://127.0.0.1:8086   # uses a running server

Steps: (re)create database `golden`, write data.lp into it (precision ns), run every query of
queries.txt with GET /query?db=golden&epoch=ns&q=..., and write golden/<topic>.golden, one file
per `# Topic` header of queries.txt.  `diff:` and `expect:` lines that humans added to a block
are carried over to the block with the same query text.  Python 3 standard library only.
See README.md beside this file for the formats.
"""
import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DB = "golden"
KEPT_PREFIXES = ("diff:", "expect:")


# ---------------------------------------------------------------- queries.txt

def slugify(title):
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
    return slug or "misc"


def parse_queries(path):
    """Returns [(slug, title, [query, ...])] in file order; topics with the same slug merge.

    `# Title` starts a topic, `## text` is a comment, blank lines only group, any other line
    is one query.
    """
    topics, order, current = {}, [], None
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            text = raw.rstrip("\r\n")
            stripped = text.strip()
            if not stripped or stripped.startswith("##"):
                continue
            if stripped.startswith("#"):
                title = stripped.lstrip("#").strip()
                current = slugify(title)
                if current not in topics:
                    topics[current] = (title, [])
                    order.append(current)
                continue
            if current is None:
                sys.exit(f"{path}:{n}: query before the first '# Topic' header")
            topics[current][1].append(stripped)
    seen = {}
    for slug in order:
        for q in topics[slug][1]:
            if q in seen:
                sys.exit(f"duplicate query (topics {seen[q]} and {slug}): {q}")
            seen[q] = slug
    return [(slug, topics[slug][0], topics[slug][1]) for slug in order]


# ---------------------------------------------------------------- golden files

def read_kept_lines(golden_dir):
    """query text -> the human-written diff:/expect: lines of its block, over all golden files."""
    kept = {}
    if not os.path.isdir(golden_dir):
        return kept
    for name in sorted(os.listdir(golden_dir)):
        if not name.endswith(".golden"):
            continue
        with open(os.path.join(golden_dir, name), encoding="utf-8") as f:
            blocks = f.read().split("\n\n")
        for block in blocks:
            lines = block.split("\n")
            query = next((l[len("query: "):] for l in lines if l.startswith("query: ")), None)
            extra = [l for l in lines if l.startswith(KEPT_PREFIXES)]
            if query is not None and extra:
                kept[query] = extra
    return kept


def compact(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def result_lines(status, body):
    """The status:/result: lines of one block: one result: line per statement of the query."""
    lines = [] if status == 200 else [f"status: {status}"]
    try:
        doc = json.loads(body)
    except ValueError:
        return lines + ["result: " + compact({"error": "non-JSON body: " + body.strip()})]
    if isinstance(doc, dict) and "error" in doc:
        return lines + ["result: " + compact({"error": doc["error"]})]
    results = doc.get("results") if isinstance(doc, dict) else None
    if not results:
        return lines + ["result: " + compact(doc)]
    return lines + ["result: " + compact(r) for r in results]


def classify(lines):
    """'error' if any statement failed, 'empty' if every statement returned no rows, else 'ok'."""
    results = [json.loads(l[len("result: "):]) for l in lines if l.startswith("result: ")]
    if any("error" in r for r in results):
        return "error"
    if all(not any(s.get("values") for s in r.get("series", [])) for r in results):
        return "empty"
    return "ok"


# ---------------------------------------------------------------- the server

def http(method, url, data=None, timeout=60):
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "text/plain; charset=utf-8")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8"), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), dict(e.headers)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
  logging-enabled = false
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  index-version = "inmem"
  query-log-enabled = false
[coordinator]
  query-timeout = "0s"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  pprof-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
  suppress-logo = true
"""


class Server:
    """influxd in a temporary directory, bound to loopback; stopped by stop()."""

    def __init__(self, binary, keep):
        exe = shutil.which(binary)
        if exe is None:
            sys.exit(f"{binary} not found: install Debian's package (apt-get install -y influxdb) "
                     "or pass --url of a running InfluxDB 1.x")
        self.root = tempfile.mkdtemp(prefix="influxql-golden-")
        self.keep = keep
        http_port = free_port()
        with open(os.path.join(self.root, "influxd.conf"), "w") as f:
            f.write(CONFIG.format(root=self.root, http_port=http_port, rpc_port=free_port()))
        self.url = f"http://127.0.0.1:{http_port}"
        self.log = open(os.path.join(self.root, "influxd.log"), "wb")
        self.proc = subprocess.Popen([exe, "-config", os.path.join(self.root, "influxd.conf")],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                sys.exit(f"influxd exited with {self.proc.returncode}; see its log above")
            try:
                if http("GET", self.url + "/ping", timeout=2)[0] == 204:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        sys.exit("influxd did not answer /ping within 30 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.proc.returncode not in (0, -15, None):
            with open(os.path.join(self.root, "influxd.log"), "rb") as f:
                sys.stderr.write(f.read().decode("utf-8", "replace")[-4000:])
        if self.keep:
            print(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def load(url, data_path):
    for q in (f'DROP DATABASE "{DB}"', f'CREATE DATABASE "{DB}"'):
        status, body, _ = http("POST", url + "/query?" + urllib.parse.urlencode({"q": q}))
        if status != 200 or '"error"' in body:
            sys.exit(f"{q}: HTTP {status} {body}")
    with open(data_path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    for i in range(0, len(lines), 5000):
        status, body, _ = http("POST", f"{url}/write?db={DB}&precision=ns", b"".join(lines[i:i + 5000]))
        if status != 204:
            sys.exit(f"write of data.lp lines {i + 1}..: HTTP {status} {body}")
    return len(lines)


def query(url, q):
    params = urllib.parse.urlencode({"db": DB, "epoch": "ns", "q": q}, quote_via=urllib.parse.quote)
    status, body, _ = http("GET", f"{url}/query?{params}")
    return status, body


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="use this running InfluxDB 1.x (its database golden is dropped "
                                  "and recreated) instead of starting influxd")
    ap.add_argument("--influxd", default="influxd", help="influxd binary to start (default: influxd)")
    ap.add_argument("--keep", action="store_true", help="keep the started server's temp dir")
    ap.add_argument("--queries", default=os.path.join(HERE, "queries.txt"))
    ap.add_argument("--data", default=os.path.join(HERE, "data.lp"))
    ap.add_argument("--out", default=os.path.join(HERE, "golden"))
    args = ap.parse_args()

    topics = parse_queries(args.queries)
    with open(args.data, "rb") as f:
        data_sha = hashlib.sha256(f.read()).hexdigest()
    server = None if args.url else Server(args.influxd, args.keep)
    url = (args.url or server.url).rstrip("/")
    try:
        _, _, headers = http("GET", url + "/ping")
        version = headers.get("X-Influxdb-Version", "unknown")
        build = headers.get("X-Influxdb-Build", "")
        version = f"{version} ({build})" if build else version
        n_lines = load(url, args.data)
        kept = read_kept_lines(args.out)
        os.makedirs(args.out, exist_ok=True)
        today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        written, totals = set(), {"ok": 0, "empty": 0, "error": 0}
        used_kept = set()
        print(f"InfluxDB {version} at {url}; loaded {n_lines} lines")
        for slug, title, queries in topics:
            out = [f"# generated by tests/influxql/regen.py against InfluxDB {version} on {today}; "
                   "do not edit results by hand",
                   f"# topic: {title}",
                   f"# data: data.lp sha256 {data_sha}, database {DB}, GET /query?db={DB}&epoch=ns"]
            counts = {"ok": 0, "empty": 0, "error": 0}
            blocks = []
            for q in queries:
                status, body = query(url, q)
                lines = result_lines(status, body)
                counts[classify(lines)] += 1
                extra = kept.get(q, [])
                if extra:
                    used_kept.add(q)
                blocks.append("\n".join([f"query: {q}"] + lines + extra))
            name = slug + ".golden"
            with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
                f.write("\n".join(out) + "\n\n" + "\n\n".join(blocks) + "\n")
            written.add(name)
            for k in totals:
                totals[k] += counts[k]
            print(f"  {name:32} {len(queries):4} queries: {counts['ok']} ok, "
                  f"{counts['empty']} empty, {counts['error']} error")
        for name in sorted(os.listdir(args.out)):
            if name.endswith(".golden") and name not in written:
                os.remove(os.path.join(args.out, name))
                print(f"  removed {name} (no such topic any more)")
        for q in sorted(set(kept) - used_kept):
            print(f"  warning: dropped diff:/expect: lines of a query no longer present: {q}")
        print(f"total {sum(totals.values())} queries: {totals['ok']} ok, {totals['empty']} empty, "
              f"{totals['error']} error")
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    main()
