#!/usr/bin/env python3
"""The floor under any large query answer on this machine: sending N bytes over loopback TCP.

Usage: python3 bench/loopback_floor.py [bytes, default 41,500,000 (the 100,000-host
lastpoint as JSON)] [rounds, default 31]

The sender is pinned to CPU 0 (where the benchmarks put the server), the receiver to CPU 1
(the load generator's). Each round the receiver asks with one byte and reads the whole
answer; the sender times its `sendall`. Prints the median wall time per answer and the
sender's median CPU time: no server can send that many bytes faster on this core, whatever
it does to produce them.
"""
import os
import socket
import sys
import time

size = int(sys.argv[1]) if len(sys.argv) > 1 else 41_500_000
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 31
# Not compressible, not one repeated page: as the kernel sees an answer.
block = os.urandom(1 << 20)
payload = (block * (size // len(block) + 1))[:size]

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
port = listener.getsockname()[1]

pid = os.fork()
if pid == 0:
    os.sched_setaffinity(0, {1})
    c = socket.create_connection(("127.0.0.1", port))
    buf = memoryview(bytearray(1 << 20))
    for _ in range(rounds):
        c.sendall(b"?")
        got = 0
        while got < size:
            got += c.recv_into(buf)
    os._exit(0)

os.sched_setaffinity(0, {0})
conn, _ = listener.accept()
walls, cpus = [], []
for _ in range(rounds):
    conn.recv(1)
    w0, c0 = time.perf_counter(), time.process_time()
    conn.sendall(payload)
    walls.append((time.perf_counter() - w0) * 1000)
    cpus.append((time.process_time() - c0) * 1000)
os.waitpid(pid, 0)
walls.sort()
cpus.sort()
print(
    f"{size:,} bytes over loopback: median {walls[rounds // 2]:.1f} ms wall, "
    f"{cpus[rounds // 2]:.1f} ms of the sender's CPU ({rounds} rounds)"
)
