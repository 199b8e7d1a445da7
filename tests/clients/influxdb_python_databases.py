#!/usr/bin/env python3
"""influxdb-python's `get_list_database()` with a token as the password, as an application
authenticating to a 1.x server would.

usage: influxdb_python_databases.py HOST PORT TOKEN NAME...

Checks that the client lists exactly the databases NAME... (in that order); prints `ok`.
"""
import sys

from influxdb import InfluxDBClient


def main():
    host, port, token, want = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    client = InfluxDBClient(host, port, username="app", password=token)
    got = [d["name"] for d in client.get_list_database()]
    if got != want:
        raise AssertionError(f"get_list_database(): expected {want!r}, got {got!r}")
    print("ok")


if __name__ == "__main__":
    main()
