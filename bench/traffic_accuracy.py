"""Percentile accuracy of the traffic generator against a server with a known delay distribution.

What runs: ``tests/activities/traffic/loopback_server.py`` (its own process, pinned to core 0) and the
generator (this process, pinned to core 1).

1. **Floor**: ``/delay/0`` at the bench rate: what loopback, the server and the client add to any latency.
2. **Known distribution**: six endpoints ``/delay/<ms>`` weighted so that the injected delays are 5ms (45%),
   10ms (30%), 20ms (13%), 50ms (5%), 100ms (4.5%) and 500ms (2.5%). Weighted round-robin makes the counts
   exact, so the injected percentiles are known exactly (same rank rule as HdrHistogram's); each measured
   percentile is printed next to its injected value, with the error.
3. **A 1s stall** (SIGSTOP of the server, 3s into a 10s run): ours at the bench rate, then two closed loops
   through the same stall: locust (``FastHttpUser``, 10 users, no wait), whose percentiles are what it
   recorded, and ``wrk -t1 -c10 --latency``, which corrects its histogram for coordinated omission after the
   run (``stats_correct``: synthetic samples for the requests a stalled connection did not send).

    .venv/bin/python bench/traffic_accuracy.py [--rate 200] [--duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gameday.activities.traffic import TrafficRun  # noqa: E402
from gameday.model.traffic import Latency, Traffic  # noqa: E402

SERVER = ROOT / "tests" / "activities" / "traffic" / "loopback_server.py"
DISTRIBUTION = [(5, 45.0), (10, 30.0), (20, 13.0), (50, 5.0), (100, 4.5), (500, 2.5)]
"""(injected delay in ms, weight in %)."""
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 100.0)


def start_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(["taskset", "-c", "0", sys.executable, str(SERVER)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, f"http://127.0.0.1:{int(process.stdout.readline())}"


def injected_percentiles(sent: int) -> dict[float, float]:
    """The percentiles of the delays actually injected into ``sent`` requests (seconds)."""
    from gameday.activities.traffic.weights import WeightedCycle

    cycle = WeightedCycle([w for _, w in DISTRIBUTION])
    delays = sorted(DISTRIBUTION[cycle.next()][0] / 1000 for _ in range(sent))
    # HdrHistogram's rule: the value at which the count reaches int(p% x total + 0.5), at least 1.
    return {p: delays[max(int(p / 100 * sent + 0.5), 1) - 1] for p in PERCENTILES}


def as_dict(latency: Latency | None) -> dict[float, float]:
    assert latency is not None
    return dict(zip(PERCENTILES, (latency.p50, latency.p90, latency.p95, latency.p99, latency.max), strict=True))


async def measure(config: dict[str, object], seconds: float, stall_after: float | None = None, pid: int = 0) -> Latency:
    run = TrafficRun(Traffic.model_validate(config))
    sending = asyncio.create_task(run.run(until=datetime.now(UTC) + timedelta(seconds=seconds)))
    if stall_after is not None:
        await asyncio.sleep(stall_after)
        os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(1.0)
        os.kill(pid, signal.SIGCONT)
    summary = await sending
    total = summary.total
    print(f"  sent {total.sent}, ok {total.ok}, errors {total.errors}, late {total.late}")
    assert total.latency is not None
    return total.latency


def stall_in(pid: int, after: float) -> None:
    """Freeze the server for 1s, ``after`` seconds from now, from a thread (the caller runs a subprocess)."""

    def stall() -> None:
        time.sleep(after)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(1)
        os.kill(pid, signal.SIGCONT)

    threading.Thread(target=stall, daemon=True).start()


def wrk_through_stall(url: str, pid: int) -> str:
    stall_in(pid, 3)
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c10", "-d10s", "--latency", f"{url}/ok"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    spread = re.search(r"Latency Distribution\n((?:\s+\d+%.*\n)+)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    maximum = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out)
    lines = " ".join(spread.group(1).split()) if spread else "?"
    return f"{lines}; max {maximum.group(1) if maximum else '?'}; {rate.group(1) if rate else '?'} requests/s"


def locust_through_stall(url: str, pid: int) -> str:
    locust = Path(sys.executable).with_name("locust")
    if not locust.exists():
        return "not installed (pip install -e '.[bench]')"
    with tempfile.TemporaryDirectory(prefix="gameday-bench-") as tmp:
        locustfile = Path(tmp) / "locustfile.py"
        locustfile.write_text(
            "from locust import FastHttpUser, constant, task\n"
            "class Ok(FastHttpUser):\n    wait_time = constant(0)\n\n    @task\n"
            "    def ok(self):\n        self.client.get('/ok')\n"
        )
        command = ["taskset", "-c", "1", str(locust), "-f", str(locustfile), "--headless", "-u", "10", "-r", "10"]
        command += ["-t", "10s", "--host", url, "--only-summary", "--csv", f"{tmp}/out", "--loglevel", "WARNING"]
        stall_in(pid, 4)  # about 3s into the load: locust takes ~1s to start
        subprocess.run(command, capture_output=True, check=True)
        header, *rows = (Path(tmp) / "out_stats.csv").read_text().splitlines()
    row = dict(zip(header.split(","), rows[-1].split(","), strict=True))
    spread = " ".join(f"{p} {row[p]}ms" for p in ("50%", "90%", "95%", "99%", "100%"))
    return f"{spread}; {float(row['Requests/s']):.0f} requests/s"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f}ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores")
    print(f"# load average before: {os.getloadavg()[0]:.2f}; rate {args.rate:g}/s, {args.duration:g}s per run")
    process, url = start_server()
    try:
        print("\n## 1. floor: /delay/0")
        floor = as_dict(await measure({"url": f"{url}/delay/0", "rate": args.rate}, args.duration))
        print("  " + "  ".join(f"p{p:g} {ms(v).strip()}" for p, v in floor.items()))

        print("\n## 2. known distribution (injected -> measured, error)")
        endpoints = [{"url": f"{url}/delay/{d}", "weight": w} for d, w in DISTRIBUTION]
        config = {"endpoints": endpoints, "rate": args.rate, "timeout": "5s"}
        latency = await measure(config, args.duration)
        sent = round(args.rate * args.duration)
        truth = injected_percentiles(sent)
        for p, measured in as_dict(latency).items():
            error = measured - truth[p]
            print(f"  p{p:<5g} {ms(truth[p])} -> {ms(measured)}   {error * 1000:+7.2f}ms  {error / truth[p]:+6.1%}")

        print("\n## 3. a 1s stall of the server, 3s into a 10s run")
        stalled = as_dict(await measure({"url": f"{url}/ok", "rate": args.rate, "timeout": "5s"}, 10, 3.0, process.pid))
        print("  ours: " + "  ".join(f"p{p:g} {ms(v).strip()}" for p, v in stalled.items()))
        print("  locust FastHttpUser x10 (closed loop, as recorded): " + locust_through_stall(url, process.pid))
        if shutil.which("wrk"):
            print("  wrk -t1 -c10 (closed loop, corrected afterwards): " + wrk_through_stall(url, process.pid))
        else:
            print("  wrk: not installed (apt-get install wrk)")
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.kill()
        process.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
