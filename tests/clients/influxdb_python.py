#!/usr/bin/env python3
"""Drives influxdb-python (PyPI `influxdb` 5.3.2, the InfluxDB 1.x client) against a server.

usage: influxdb_python.py HOST PORT

Each step calls the client as an application would and checks what it got back; the first
mismatch raises with what was expected and what came. Prints `ok` at the end.
"""
import sys

from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError


def expect(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: expected {want!r}, got {got!r}")


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    # The client asks for MessagePack by default; a second one for JSON.
    mp = InfluxDBClient(host, port, database="pyclient")
    js = InfluxDBClient(host, port, database="pyclient", headers={"Accept": "application/json"})

    version = mp.ping()
    expect("ping() returns the version header", bool(version), True)

    mp.create_database("pyclient")
    mp.create_database("pyclient")  # idempotent, as in 1.x
    dbs = mp.get_list_database()
    expect("the new database is listed", {"name": "pyclient"} in dbs, True)

    points = [
        {"measurement": "cpu", "tags": {"host": "a", "region": "eu"},
         "time": "2026-01-01T00:00:00Z", "fields": {"usage": 1.5, "n": 3, "ok": True, "note": "x<y"}},
        {"measurement": "cpu", "tags": {"host": "b", "region": "eu"},
         "time": "2026-01-01T00:00:10Z", "fields": {"usage": 2.0, "n": 4}},
        {"measurement": "cpu", "tags": {"host": "a", "region": "eu"},
         "time": "2026-01-01T00:00:20.5Z", "fields": {"usage": 3.25, "n": 5}},
        {"measurement": "mem", "tags": {"host": "a"},
         "time": "2026-01-01T00:00:00Z", "fields": {"free": 10}},
    ]
    expect("write_points", mp.write_points(points), True)

    expect("get_list_measurements", mp.get_list_measurements(), [{"name": "cpu"}, {"name": "mem"}])

    want = [
        {"time": "2026-01-01T00:00:00Z", "host": "a", "n": 3, "note": "x<y", "ok": True, "region": "eu", "usage": 1.5},
        {"time": "2026-01-01T00:00:10Z", "host": "b", "n": 4, "note": None, "ok": None, "region": "eu", "usage": 2.0},
        {"time": "2026-01-01T00:00:20.500000Z", "host": "a", "n": 5, "note": None, "ok": None, "region": "eu", "usage": 3.25},
    ]
    got = list(mp.query("SELECT * FROM cpu").get_points())
    expect("query over MessagePack", got, want)
    want_json = [dict(p) for p in want]
    want_json[2]["time"] = "2026-01-01T00:00:20.5Z"
    got = list(js.query("SELECT * FROM cpu").get_points())
    expect("query over JSON", got, want_json)

    got = list(js.query("SELECT usage FROM cpu", epoch="s").get_points())
    expect("epoch=s", [p["time"] for p in got], [1767225600, 1767225610, 1767225620])
    got = list(mp.query("SELECT usage FROM cpu", epoch="ms").get_points())
    expect("epoch=ms over MessagePack", [p["time"] for p in got], [1767225600000, 1767225610000, 1767225620500])

    rs = mp.query("SELECT mean(usage) FROM cpu GROUP BY host")
    expect("GROUP BY host", sorted((k[1]["host"], list(v)[0]["mean"]) for k, v in rs.items()),
           [("a", 2.375), ("b", 2.0)])

    got = list(mp.query("SELECT usage FROM cpu WHERE host = $h AND usage > $min",
                        bind_params={"h": "a", "min": 2}).get_points())
    expect("bind_params", [p["usage"] for p in got], [3.25])

    chunks = list(mp.query("SELECT usage FROM cpu", chunked=True, chunk_size=2))
    expect("chunked: one ResultSet per chunk", len(chunks), 2)
    expect("chunked: all rows", [p["usage"] for c in chunks for p in c.get_points()], [1.5, 2.0, 3.25])

    several = mp.query("SELECT usage FROM cpu LIMIT 1; SELECT free FROM mem")
    expect("two statements, two results", [list(r.get_points())[0].get("usage", None) for r in several], [1.5, None])

    try:
        mp.query("SELECT * FROM cpu", database="no_such_db")
        raise AssertionError("a query of a missing database did not fail")
    except InfluxDBClientError as e:
        expect("missing database error", "database not found: no_such_db" in str(e), True)
    try:
        mp.query("SELEC 1")
        raise AssertionError("a parse error did not fail")
    except InfluxDBClientError as e:
        expect("parse error status", e.code, 400)

    mp.drop_measurement("mem")
    expect("drop_measurement", mp.get_list_measurements(), [{"name": "cpu"}])
    mp.drop_database("pyclient")
    expect("drop_database", {"name": "pyclient"} in mp.get_list_database(), False)
    print("ok")


if __name__ == "__main__":
    main()
