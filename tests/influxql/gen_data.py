#!/usr/bin/env python3
"""Writes tests/influxql/data.lp, the fixed data set of the InfluxQL golden tests.

Deterministic (seeded); data.lp is committed, so this only needs running when the data set
is meant to change -- and then the golden files must be regenerated with regen.py.
"""
import os
import random

rng = random.Random(20240101)
S = 10**9
T0 = 1704067200 * S            # 2024-01-01T00:00:00Z
T_END = T0 + 2 * 86400 * S     # 2024-01-03T00:00:00Z
out = []


def walk(start, lo_s, hi_s, end=T_END, subsec=True):
    """Irregular timestamps: gaps of lo_s..hi_s seconds, some with a sub-second part."""
    t = start
    while t < end:
        yield t
        t += rng.randint(lo_s, hi_s) * S
        if subsec and rng.random() < 0.3:
            t += rng.randint(1, 999) * 10**6 + rng.randint(0, 999)


def fl(x, nd=2):
    s = f"{x:.{nd}f}".rstrip("0").rstrip(".")
    return s if s not in ("", "-0") else "0"


def line(meas, tags, fields, t):
    tag_s = "".join(f",{k}={v}" for k, v in tags if v is not None)
    field_s = ",".join(f"{k}={v}" for k, v in fields if v is not None)
    out.append(f"{meas}{tag_s} {field_s} {t}")


# cpu: 5 hosts, 2 regions, server05 has no region tag; sparse usage_system/throttled/governor.
hosts = [("server01", "us-east", 4), ("server02", "us-east", 8), ("server03", "us-west", 8),
         ("server04", "us-west", 16), ("server05", None, 2)]
for host, region, cores in hosts:
    user = rng.uniform(10, 60)
    for t in walk(T0 + rng.randint(0, 300) * S, 120, 1800):
        user = min(99.5, max(0.5, user + rng.gauss(0, 6)))
        system = rng.uniform(1, 15) if rng.random() < 0.6 else None
        idle = 100 - user - (system or 0)
        line("cpu", [("host", host), ("region", region)], [
            ("usage_user", fl(user)),
            ("usage_system", fl(system) if system is not None else None),
            ("usage_idle", fl(idle)),
            ("cores", f"{cores}i"),
            ("load", fl(rng.uniform(0, cores), 3)),
            ("throttled", ("true" if rng.random() < 0.2 else "false") if rng.random() < 0.5 else None),
            ("governor", ('"performance"' if rng.random() < 0.6 else '"powersave"') if rng.random() < 0.3 else None),
        ], t)

# mem: 4 hosts; integers, a float, sparse swap_in.
for host, _, _ in hosts[:4]:
    total = 16 * 2**30
    for t in walk(T0 + rng.randint(0, 600) * S, 300, 3600):
        used = rng.randint(2 * 2**30, 15 * 2**30)
        line("mem", [("host", host)], [
            ("used", f"{used}i"), ("free", f"{total - used}i"),
            ("used_percent", fl(100 * used / total, 3)),
            ("swap_in", f"{rng.randint(0, 50)}i" if rng.random() < 0.25 else None),
        ], t)

# net: counters that reset (bytes_recv, bytes_sent) and a gauge that goes negative (delta).
for host, iface in [("server01", "eth0"), ("server01", "eth1"), ("server02", "eth0"),
                    ("server03", "eth0"), ("server03", None)]:
    recv, sent = rng.randint(0, 10**6), rng.randint(0, 10**6)
    for t in walk(T0 + rng.randint(0, 900) * S, 900, 3600):
        if rng.random() < 0.05:                      # counter reset (reboot)
            recv, sent = rng.randint(0, 5000), rng.randint(0, 5000)
        else:
            recv += rng.randint(0, 2 * 10**6)
            sent += rng.randint(0, 10**6)
        line("net", [("host", host), ("iface", iface)], [
            ("bytes_recv", f"{recv}i"), ("bytes_sent", f"{sent}i"),
            ("delta", fl(rng.gauss(0, 5), 3)),
            ("err", f"{rng.choice([0, 0, 0, 1, 2, -1])}i"),
        ], t)

# disk: tag values needing escapes (space, comma, equals) and a tag key with a space,
# present only on some series.
for host, path, fstype in [("server01", "/", "ext4"), ("server01", "/mnt/my data", None),
                           ("server02", "/", "xfs"), ("server02", "/mnt/a,b", "ext4"),
                           ("server03", "/mnt/k=v", None)]:
    total = rng.choice([100, 250, 500]) * 10**9
    used = rng.randint(10, 60) * 10**9
    label = rng.choice(["root", "data", "scratch"])
    esc = path.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")
    for t in walk(T0 + rng.randint(0, 1800) * S, 1800, 7200, subsec=False):
        used = max(0, used + rng.randint(-2 * 10**9, 3 * 10**9))
        line("disk", [("host", host), ("path", esc), (r"fs\ type", fstype)], [
            ("used", f"{used}i"), ("free", f"{total - used}i"),
            ("used_pct", fl(100 * used / total, 3)),
            ("readonly", "true" if rng.random() < 0.1 else "false"),
            ("label", f'"{label}"' if rng.random() < 0.5 else None),
        ], t)

# weather: location values with a space; station only on some series; negative temperatures.
for loc, station, base in [(r"New\ York", "JFK", -3.0), ("London", None, 6.0),
                           (r"New\ York", "LGA", -2.0), ("Oslo", "Blindern", -9.0)]:
    temp = base
    for t in walk(T0 + rng.randint(0, 3600) * S, 1200, 5400):
        temp += rng.gauss(0, 1.2)
        line("weather", [("location", loc), ("station", station)], [
            ("temperature", fl(temp, 1)),
            ("humidity", f"{rng.randint(30, 100)}i"),
            ("conditions", rng.choice(['"clear"', '"cloudy"', '"rain"', '"snow"', '"fog"'])),
            ("raining", rng.choice(["true", "false", "false"])),
            ("wind", fl(rng.uniform(0, 20), 1) if rng.random() < 0.4 else None),
        ], t)

# A measurement whose name has a space and a comma; tag key with '=', field key with a space,
# string values with quotes and backslashes.
for i, t in enumerate(walk(T0 + 1800 * S, 3600, 7200, subsec=False)):
    line(r"my\ measurement\,v2", [(r"tag\=key", rng.choice([r"a\ b", r"c\,d"]))], [
        (r"field\ one", fl(rng.uniform(-10, 10), 2)),
        ("value", f"{i}i"),
        ("note", '"say \\"hi\\" C:\\\\dir"' if i % 3 == 0 else None),
    ], t)

# A measurement whose name has '=' (no escape needed in a measurement name).
for i in range(12):
    line("load=avg", [("host", hosts[i % 3][0])], [("v", fl(i * 0.75 - 2, 2))], T0 + i * 7200 * S)

# events: few points with large gaps -- for fill() over empty buckets.
ev_times = [0, 5, 6, 20, 21, 22, 47, 60, 61, 90, 91, 140]   # minutes from T0
for i, m in enumerate(ev_times):
    line("events", [("kind", "deploy" if i % 2 == 0 else "alert")], [
        ("n", f"{(i * 7) % 10}i"), ("score", fl(i * 1.5 - 4, 1)),
        ("msg", f'"event {i}"'), ("ok", "true" if i % 3 else "false"),
    ], T0 + m * 60 * S)

# dst: regular points around the 2024 DST changes (US: 2024-03-10 07:00Z, EU: 2024-03-31 01:00Z).
for start in (1709985600, 1711800000):    # 2024-03-09T12:00Z, 2024-03-30T12:00Z
    for k in range(96):
        t = (start + k * 1800) * S
        for zone in ("ny", "london"):
            line("dst", [("zone", zone)], [("v", fl(k + (0.5 if zone == "ny" else 0), 1)),
                                           ("k", f"{k}i")], t)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.lp")
with open(path, "w") as f:
    f.write("\n".join(out) + "\n")
print(f"wrote {len(out)} lines to {path}")
