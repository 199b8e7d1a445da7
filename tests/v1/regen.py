#!/usr/bin/env python3
"""Regenerates the v1 golden files from a real InfluxDB 1.x.

    python3 tests/v1/regen.py                          # starts influxd (Debian's `influxdb`) itself
    python3 tests/v1/regen.py --influx /path/to/influx # the 1.6 shell to drive (default: the one
                                                       # the e2e tests install, else `influx`)

encodings.golden: database `v1` gets data.lp (precision ns), then every request of requests.txt is
sent as GET /query with its parameters and Accept header; the status, Content-Type and body are
written down (MessagePack bodies as hex, beside their decoded value).

shell.golden: the runs of shell.txt of the `influx` shell against that server, in order, with
their exit status, standard output and standard error (Go's log date prefix removed).

Python 3 standard library only. See README.md beside this file for the formats.
"""
import argparse
import datetime
import glob
import importlib.util
import json
import os
import re
import subprocess
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))

_spec = importlib.util.spec_from_file_location("influxql_regen", os.path.join(HERE, "..", "influxql", "regen.py"))
influxql_regen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(influxql_regen)
http = influxql_regen.http

LOG_DATE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ")


def read_lines(path):
    """The non-comment, non-blank lines of a file."""
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("##")]


# ---------------------------------------------------------------- a small MessagePack reader

def unpack(data, at=0):
    """(value, next offset). Extension values become {"ext": type, "hex": payload}."""
    b = data[at]
    at += 1

    def take(n):
        return data[at:at + n], at + n

    def uint(n):
        return int.from_bytes(data[at:at + n], "big"), at + n

    def sint(n):
        return int.from_bytes(data[at:at + n], "big", signed=True), at + n

    def ext(n, at):
        kind = int.from_bytes(data[at:at + 1], "big", signed=True)
        return {"ext": kind, "hex": data[at + 1:at + 1 + n].hex()}, at + 1 + n

    def seq(n, at):
        out = []
        for _ in range(n):
            v, at = unpack(data, at)
            out.append(v)
        return out, at

    def mapping(n, at):
        out = {}
        for _ in range(n):
            k, at = unpack(data, at)
            v, at = unpack(data, at)
            out[k] = v
        return out, at

    import struct
    if b <= 0x7F:
        return b, at
    if 0x80 <= b <= 0x8F:
        return mapping(b & 0x0F, at)
    if 0x90 <= b <= 0x9F:
        return seq(b & 0x0F, at)
    if 0xA0 <= b <= 0xBF:
        n = b & 0x1F
        return data[at:at + n].decode("utf-8"), at + n
    if b >= 0xE0:
        return b - 0x100, at
    if b == 0xC0:
        return None, at
    if b in (0xC2, 0xC3):
        return b == 0xC3, at
    if b in (0xC4, 0xC5, 0xC6):
        n, at = uint({0xC4: 1, 0xC5: 2, 0xC6: 4}[b])
        return {"bin": data[at:at + n].hex()}, at + n
    if b in (0xC7, 0xC8, 0xC9):
        n, at = uint({0xC7: 1, 0xC8: 2, 0xC9: 4}[b])
        return ext(n, at)
    if b == 0xCA:
        raw, at = take(4)
        return struct.unpack(">f", raw)[0], at
    if b == 0xCB:
        raw, at = take(8)
        return struct.unpack(">d", raw)[0], at
    if b in (0xCC, 0xCD, 0xCE, 0xCF):
        return uint({0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[b])
    if b in (0xD0, 0xD1, 0xD2, 0xD3):
        return sint({0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}[b])
    if b in (0xD4, 0xD5, 0xD6, 0xD7, 0xD8):
        return ext({0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}[b], at)
    if b in (0xD9, 0xDA, 0xDB):
        n, at = uint({0xD9: 1, 0xDA: 2, 0xDB: 4}[b])
        return data[at:at + n].decode("utf-8"), at + n
    if b in (0xDC, 0xDD):
        n, at = uint({0xDC: 2, 0xDD: 4}[b])
        return seq(n, at)
    if b in (0xDE, 0xDF):
        n, at = uint({0xDE: 2, 0xDF: 4}[b])
        return mapping(n, at)
    raise ValueError(f"MessagePack byte {b:#x} at {at - 1} is not a value")


def body_lines(body):
    """A text body as `| ` lines; a missing final newline is said so."""
    text = body.decode("utf-8", "replace")
    complete = text.endswith("\n")
    lines = (text[:-1] if complete else text).split("\n")
    out = ["| " + l if l else "|" for l in lines]
    return out if complete else out + ["no newline at end"]


def encodings(url, requests):
    blocks = []
    for line in requests:
        req = json.loads(line)
        query = urllib.parse.urlencode(req["params"], quote_via=urllib.parse.quote)
        headers = {"Accept": req["accept"]} if "accept" in req else {}
        status, body, ctype = http_raw(url + "/query?" + query, headers)
        block = [f"request: {line}", f"status: {status}", f"content-type: {ctype}"]
        if ctype == "application/x-msgpack":
            value, end = unpack(body)
            if end != len(body):
                sys.exit(f"{line}: {len(body) - end} bytes after the MessagePack value")
            block.append("msgpack: " + body.hex())
            block.append("decoded: " + json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
        else:
            block.extend(body_lines(body))
        blocks.append("\n".join(block))
    return blocks


def http_raw(url, headers):
    import urllib.request
    import urllib.error
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


def shell(url, influx, runs):
    port = urllib.parse.urlparse(url).port
    blocks = []
    for line in runs:
        args = [os.path.join(HERE, a[1:]) if a.startswith("@") else a for a in json.loads(line)]
        p = subprocess.run([influx, "-host", "127.0.0.1", "-port", str(port)] + args,
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        block = [f"args: {line}", f"exit: {p.returncode}"]
        for prefix, stream in (("| ", p.stdout), ("! ", p.stderr)):
            for l in stream.decode("utf-8", "replace").splitlines():
                l = LOG_DATE.sub("", l)
                block.append(prefix + l if l else prefix.rstrip())
        blocks.append("\n".join(block))
    return blocks


def default_influx():
    home = os.path.expanduser("~/.cache/shardline-test-clients")
    found = sorted(glob.glob(os.path.join(home, "influxdb-client-*", "usr", "bin", "influx")))
    return found[-1] if found else "influx"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--influxd", default="influxd", help="influxd binary to start (default: influxd)")
    ap.add_argument("--influx", default=default_influx(), help="the 1.x `influx` shell to drive")
    ap.add_argument("--keep", action="store_true", help="keep the started server's temp dir")
    args = ap.parse_args()
    version = subprocess.run([args.influxd, "version"], capture_output=True, text=True).stdout.strip()
    server = influxql_regen.Server(args.influxd, args.keep)
    try:
        url = server.url
        influxql_regen.DB = "v1"
        influxql_regen.load(url, os.path.join(HERE, "data.lp"))
        stamp = f"# {version}, {datetime.date.today().isoformat()}, written by tests/v1/regen.py"
        blocks = encodings(url, read_lines(os.path.join(HERE, "requests.txt")))
        with open(os.path.join(HERE, "encodings.golden"), "w", encoding="utf-8") as f:
            f.write(stamp + "\n\n" + "\n\n".join(blocks) + "\n")
        print(f"encodings.golden: {len(blocks)} requests")
        # The shell's runs see only what they make themselves.
        http("POST", url + "/query?" + urllib.parse.urlencode({"q": "DROP DATABASE v1"}))
        blocks = shell(url, args.influx, read_lines(os.path.join(HERE, "shell.txt")))
        with open(os.path.join(HERE, "shell.golden"), "w", encoding="utf-8") as f:
            f.write(stamp + "\n\n" + "\n\n".join(blocks) + "\n")
        print(f"shell.golden: {len(blocks)} runs")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
