"""Figure: how exactly the proxy's latency toxic delays a request/response.

A 200 ms downstream ``latency`` toxic on a proxy in its own process; small requests on kept connections
(so each request is one chunk each way), several clients at once to keep the run short. Reports the
measured p50/p99 request time through the toxic and the same minus the direct p50 (the added latency).
Targets: p50 within ±5% of the configured latency, p99 within +10%.

    .venv/bin/python bench/proxy_latency.py [--latency-ms 200] [--requests 500] [--clients 10]
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loopback import connect, machine, percentile, proxy, request, upstream

SMALL = 100


def run_clients(port: int, total: int, clients: int) -> list[float]:
    """``total`` requests split over ``clients`` threads, each on its own kept connection."""
    samples: list[float] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        with connect(port) as sock:
            request(sock, SMALL)  # the connection's first exchange is not a sample
            mine = [request(sock, SMALL) for _ in range(n)]
        with lock:
            samples.extend(mine)

    share = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    threads = [threading.Thread(target=client, args=(n,)) for n in share]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=10)
    args = parser.parse_args()
    configured = args.latency_ms / 1000
    server = upstream()
    slow = proxy(server.port, latency=configured)
    try:
        direct = run_clients(server.port, args.requests, args.clients)
        through = run_clients(slow.port, args.requests, args.clients)
    finally:
        slow.stop()
        server.stop()

    base = percentile(direct, 50)
    p50, p99 = percentile(through, 50), percentile(through, 99)
    print(f"latency toxic accuracy ({machine()}); {len(through)} requests, {args.clients} clients")
    print(f"  configured {args.latency_ms:g} ms downstream; direct p50 {base * 1000:.3f} ms")
    print(f"  through the toxic: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, max {max(through) * 1000:.2f} ms")
    print(f"  added over direct: p50 {(p50 - base) * 1000:.2f} ms, p99 {(p99 - base) * 1000:.2f} ms")
    p50_ok = abs(p50 - configured) <= 0.05 * configured
    p99_ok = p99 <= 1.10 * configured
    print(f"  p50 within ±5%: {'met' if p50_ok else 'MISSED'}; p99 within +10%: {'met' if p99_ok else 'MISSED'}")
    return 0 if p50_ok and p99_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
