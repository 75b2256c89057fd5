"""Real parts for the proxy benchmarks: a loopback upstream server and a gameday proxy, each in its own process.

Each part runs in its own process, as in production (the proxy lives in the worker, the client and server
elsewhere), so the figures are not one event loop's time shared three ways.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_UPSTREAM = r"""
import socket, sys, threading
BLOB = b"x" * (1 << 20)

def serve(conn):
    # Protocol: "GET <n>\n" -> n bytes back; keep the connection for the next request.
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = conn.makefile("rb")
        for line in f:
            n = int(line.split()[1])
            while n:
                part = BLOB[: min(n, len(BLOB))]
                conn.sendall(part)
                n -= len(part)

srv = socket.create_server(("127.0.0.1", 0), backlog=512)
print(srv.getsockname()[1], flush=True)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

_PROXY = r"""
import asyncio, sys
from gameday.activities.proxy import FaultProxy, LatencyToxic, Stream

async def main():
    proxy = FaultProxy("127.0.0.1:0", sys.argv[1])
    await proxy.start()
    if float(sys.argv[2]) > 0:
        proxy.add(LatencyToxic("bench", Stream.DOWNSTREAM, latency=float(sys.argv[2])))
    print(proxy.address.rsplit(":", 1)[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


class Part:
    """A child process that prints its port on its first line."""

    def __init__(self, code: str, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def upstream() -> Part:
    return Part(_UPSTREAM)


def proxy(upstream_port: int, latency: float = 0.0) -> Part:
    return Part(_PROXY, f"127.0.0.1:{upstream_port}", str(latency))


def request(sock: socket.socket, size: int) -> float:
    """Ask for ``size`` bytes on ``sock`` and read them all; seconds it took."""
    start = time.perf_counter()
    sock.sendall(f"GET {size}\n".encode())
    left = size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("closed early")
        left -= len(chunk)
    return time.perf_counter() - start


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def fresh_request(port: int, size: int) -> float:
    """Connect, ask for ``size`` bytes, read them, close: seconds from before the connect."""
    start = time.perf_counter()
    with connect(port) as sock:
        request(sock, size)
    return time.perf_counter() - start


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def machine() -> str:
    return f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {os.uname().sysname} {os.uname().release}"
