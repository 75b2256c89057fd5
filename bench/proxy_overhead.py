"""Figure: what the fault proxy costs with no toxic, against the same requests sent directly.

- added latency: p50 (and p95) of a small request/response, on a fresh connection each time and on a kept
  connection, through the proxy minus direct (target: p50 added < 1 ms);
- throughput: a 10 MB response through the proxy as a share of direct (target: >= 50%).

Upstream server, proxy and this client are three processes on loopback.

    .venv/bin/python bench/proxy_overhead.py [--requests 500] [--transfers 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loopback import connect, fresh_request, machine, percentile, proxy, request, upstream

SMALL = 100
BIG = 10 * 1000 * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--transfers", type=int, default=30)
    args = parser.parse_args()
    server = upstream()
    fault_proxy = proxy(server.port)
    try:
        paths = {"direct": server.port, "proxy": fault_proxy.port}
        results: dict[str, dict[str, list[float]]] = {k: {"fresh": [], "kept": [], "big": []} for k in paths}
        socks = {label: connect(port) for label, port in paths.items()}
        for label, port in paths.items():  # warm up both paths
            for _ in range(50):
                fresh_request(port, SMALL)
            request(socks[label], BIG)
        # Interleaved, one sample of each path in turn, so a neighbour's load hits both alike.
        for _ in range(args.requests):
            for label, port in paths.items():
                results[label]["fresh"].append(fresh_request(port, SMALL))
                results[label]["kept"].append(request(socks[label], SMALL))
        for _ in range(args.transfers):
            for label in paths:
                results[label]["big"].append(request(socks[label], BIG))
        for sock in socks.values():
            sock.close()
    finally:
        fault_proxy.stop()
        server.stop()

    print(f"proxy overhead, no toxic ({machine()}); {args.requests} requests of {SMALL} B, {args.transfers} x 10 MB")
    for kind in ("fresh", "kept"):
        d, p = results["direct"][kind], results["proxy"][kind]
        added50 = (percentile(p, 50) - percentile(d, 50)) * 1000
        added95 = (percentile(p, 95) - percentile(d, 95)) * 1000
        print(
            f"  {kind:5} connection: direct p50 {percentile(d, 50) * 1000:.3f} ms, proxy p50 "
            f"{percentile(p, 50) * 1000:.3f} ms -> added p50 {added50:.3f} ms, p95 {added95:.3f} ms"
        )
    direct_mbs = BIG / statistics.median(results["direct"]["big"]) / 1e6
    proxy_mbs = BIG / statistics.median(results["proxy"]["big"]) / 1e6
    share = proxy_mbs / direct_mbs
    print(f"  10 MB transfer: direct {direct_mbs:.0f} MB/s, proxy {proxy_mbs:.0f} MB/s -> {share:.0%} of direct")
    fresh_added = (percentile(results["proxy"]["fresh"], 50) - percentile(results["direct"]["fresh"], 50)) * 1000
    ok = fresh_added < 1.0 and share >= 0.5
    print(f"  targets (added p50 < 1 ms, throughput >= 50% of direct): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
