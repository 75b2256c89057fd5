"""Maximum sustained request rate of the traffic generator on one core, side by side with locust and wrk.

What runs, in this order, against one trivial target: nginx (Debian ``nginx-light``, one worker process,
``return 200 "ok"``, access log off) pinned to core 0 with ``taskset``. Every load generator is pinned to
core 1, alone, so each gets exactly one core and the server never competes with it for CPU (wrk drives this
nginx past 150k requests/s, so the server is never the bottleneck below that).

1. The HTTP clients themselves, closed loop (32 connections, N requests back to back): httpx and aiohttp on
   asyncio, aiohttp on uvloop. This is why the generator sends with aiohttp on uvloop, not httpx.
2. wrk: ``wrk -t1 -c64 -d<D>s`` (C, closed loop: the ceiling of this core and this server).
3. locust: ``FastHttpUser`` (geventhttpclient), ``wait_time = constant(0)``, 64 users, ``-t <D>s``, headless,
   one process: closed loop, as fast as it goes.
4. ours: ``TrafficRun`` at a fixed open-model rate for D seconds, rates stepping up by ``--step`` from
   ``--start``, in a process that called ``gc.freeze()`` after its imports (as a worker should: otherwise each
   full collection walks the whole long-lived heap, 15-60ms here, pausing the generator's thread too;
   ``--no-gc-freeze`` to measure without). A rate is *sustained* when every request was answered and at most
   1% of them (after the first second, which opens the connections) left more than 10ms after their intended
   time: the generator's own lateness, what an overloaded open-model generator shows first. The figure is the
   highest rate sustained; each rate gets two tries (the machine is shared), and the search stops at the
   first rate that fails both.

wrk and locust are closed loops: they report how fast they went. Ours keeps a schedule, so its figure is the
fastest schedule it kept, a stricter test. Requests per CPU-second are given where the tool's own CPU can be
isolated from its start-up: ours, ``time.process_time()`` around the run; the clients, the same; locust, the
CPU of its run (``os.wait4``) minus that of an idle run (same start-up and shutdown, one user that never
sends). wrk saturates its core, so its requests/s is its per-core figure.

    .venv/bin/python bench/traffic_max_rate.py [--duration 10] [--start 4000] [--step 1000]

Needs ``nginx`` and ``wrk`` (``apt-get install nginx-light wrk``) and locust (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER_CORE, CLIENT_CORE = "0", "1"
CONNECTIONS = 64
WARM_UP = 1
"""Seconds of ours not judged for lateness: the first second opens the connections (as locust spawns users)."""

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir}; uwsgi_temp_path {dir};
  scgi_temp_path {dir};
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok"; }} }}
}}
"""

LOCUSTFILE = """
from locust import FastHttpUser, constant, task

class Trivial(FastHttpUser):
    wait_time = constant(0)

    @task
    def root(self):
        self.client.get("/")
"""

CLIENTS = r"""
import asyncio, sys, time
URL, N, CONC = sys.argv[2], 20000, 32

async def drive(one):
    left = N
    async def worker():
        nonlocal left
        while left > 0:
            left -= 1
            await one()
    c0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONC)))
    return N / (time.process_time() - c0)

async def with_httpx():
    import httpx
    limits = httpx.Limits(max_connections=CONC, max_keepalive_connections=CONC)
    async with httpx.AsyncClient(limits=limits) as client:
        return await drive(lambda: client.get(URL))

async def with_aiohttp():
    import aiohttp
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONC)) as session:
        async def one():
            async with session.get(URL) as response:
                await response.read()
        return await drive(one)

which = sys.argv[1]
if which == "aiohttp-uvloop":
    import uvloop
    print(uvloop.run(with_aiohttp()))
else:
    print(asyncio.run(with_httpx() if which == "httpx" else with_aiohttp()))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def pinned(core: str, *command: str) -> list[str]:
    return ["taskset", "-c", core, *command]


def start_nginx(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port))
    process = subprocess.Popen(pinned(SERVER_CORE, "nginx", "-c", str(conf), "-p", str(workdir)))
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, url
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("nginx did not start; see " + str(workdir / "error.log"))


def run_wrk(url: str, duration: int) -> float:
    out = subprocess.run(
        pinned(CLIENT_CORE, "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", url),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise SystemExit("cannot read wrk's output:\n" + out)
    return float(match.group(1))


def cpu_seconds_of(command: list[str]) -> float:
    """Run ``command`` to completion; the user + system CPU seconds it used."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{command[0]} failed with exit code {process.returncode}")
    return usage.ru_utime + usage.ru_stime


def run_locust(url: str, duration: int, workdir: Path) -> tuple[float, int, float]:
    """Returns locust's requests/s, its request count, and the CPU seconds of its load phase.

    The load phase's CPU is the whole run's minus an idle run's (one user waiting the whole time): the same
    imports, start-up and shutdown, no requests.
    """
    locust = str(Path(sys.executable).with_name("locust"))

    def command(locustfile: str, users: int, csv: Path) -> list[str]:
        path = workdir / "locustfile.py"
        path.write_text(locustfile)
        args = [locust, "-f", str(path), "--headless", "-u", str(users), "-r", str(users), "-t", f"{duration}s"]
        args += ["--host", url.rstrip("/"), "--only-summary", "--csv", str(csv), "--loglevel", "WARNING"]
        return pinned(CLIENT_CORE, *args)

    idle = cpu_seconds_of(command(LOCUSTFILE.replace("constant(0)", "constant(3600)"), 1, workdir / "idle"))
    busy = cpu_seconds_of(command(LOCUSTFILE, CONNECTIONS, workdir / "locust"))
    header, *rows = (workdir / "locust_stats.csv").read_text().splitlines()
    total = dict(zip(header.split(","), rows[-1].split(","), strict=True))  # the "Aggregated" row
    if int(total["Failure Count"]):
        raise SystemExit(f"locust saw {total['Failure Count']} failures")
    return float(total["Requests/s"]), int(total["Request Count"]), busy - idle


def run_client(which: str, url: str) -> float:
    out = subprocess.run(
        pinned(CLIENT_CORE, sys.executable, "-c", CLIENTS, which, url), capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip())


def run_ours(url: str, rate: float, duration: int) -> dict[str, float]:
    out = subprocess.run(
        pinned(CLIENT_CORE, sys.executable, __file__, "--child", url, str(rate), str(duration)),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def sustained(result: dict[str, float]) -> bool:
    return result["ok"] == result["sent"] and result["late_warm"] <= 0.01 * result["sent_warm"]


async def child(url: str, rate: float, duration: float) -> None:
    """One run of ours, in its own pinned process; prints its figures as JSON."""
    sys.path.insert(0, str(ROOT))
    from gameday.activities.traffic import TrafficRun
    from gameday.model.traffic import Traffic

    if os.environ.get("GAMEDAY_BENCH_GC_FREEZE") == "1":
        # What a worker should do once its imports are done (locust does it too before forking): full
        # collections then skip the long-lived heap, and stop pausing every thread, the generator's included.
        gc.collect()
        gc.freeze()

    run = TrafficRun(Traffic.model_validate({"url": url, "rate": rate, "max_in_flight": CONNECTIONS}))
    cpu0, wall0 = time.process_time(), time.monotonic()
    summary = await run.run(until=datetime.now(UTC) + timedelta(seconds=duration))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    total = summary.total
    latency = total.latency
    warm = [p for p in summary.timeline.points() if p.second >= WARM_UP]
    print(
        json.dumps(
            {
                "sent": total.sent,
                "ok": total.ok,
                "late": total.late,
                "sent_warm": sum(p.sent for p in warm),
                "late_warm": sum(p.late for p in warm),
                "cpu": cpu,
                "wall": wall,
                "p50": latency.p50 if latency else 0.0,
                "p99": latency.p99 if latency else 0.0,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--start", type=float, default=4000, help="first rate tried for ours (requests/s)")
    parser.add_argument("--step", type=float, default=1000, help="rate increment for ours (requests/s)")
    parser.add_argument("--no-gc-freeze", action="store_true", help="run ours without gc.freeze() after imports")
    parser.add_argument("--child", nargs=3, metavar=("URL", "RATE", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child[0], float(args.child[1]), float(args.child[2])))
        return
    os.environ["GAMEDAY_BENCH_GC_FREEZE"] = "0" if args.no_gc_freeze else "1"
    for tool in ("nginx", "wrk", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"'{tool}' is missing: apt-get install nginx-light wrk util-linux")

    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(
        f"# load average before: {os.getloadavg()[0]:.2f}; server on core {SERVER_CORE}, clients on core {CLIENT_CORE}"
    )
    print(f"# ours with gc.freeze() after imports: {'no' if args.no_gc_freeze else 'yes'}")
    with tempfile.TemporaryDirectory(prefix="gameday-bench-") as tmp:
        nginx, url = start_nginx(Path(tmp))
        try:
            print("\n## HTTP clients, closed loop, 32 connections, 20000 requests (requests per CPU-second)")
            for which in ("httpx", "aiohttp", "aiohttp-uvloop"):
                print(f"{which:16s} {run_client(which, url):10.0f}")

            print(f"\n## load generators, one core each, {args.duration}s runs")
            wrk = run_wrk(url, args.duration)
            print(f"wrk -t1 -c{CONNECTIONS}             {wrk:10.0f} requests/s")
            rps, count, locust_cpu = run_locust(url, args.duration, Path(tmp))
            locust_per_cpu = count / locust_cpu
            print(
                f"locust FastHttpUser x{CONNECTIONS}     {rps:10.0f} requests/s ({count} requests, "
                f"{locust_cpu:.2f} CPU-s in the load phase: {locust_per_cpu:.0f} requests per CPU-second)"
            )

            best: tuple[float, dict[str, float]] | None = None
            rate = args.start
            while True:
                tries = [run_ours(url, rate, args.duration)]
                if not sustained(tries[0]):
                    tries.append(run_ours(url, rate, args.duration))
                for result in tries:
                    late = result["late"] / max(result["sent"], 1)
                    late_warm = result["late_warm"] / max(result["sent_warm"], 1)
                    print(
                        f"ours at {rate:7.0f}/s: sent {result['sent']:.0f}, ok {result['ok']:.0f}, "
                        f"late {late:.2%} ({late_warm:.2%} after {WARM_UP}s), "
                        f"p50 {result['p50'] * 1e3:.2f}ms, p99 {result['p99'] * 1e3:.2f}ms, "
                        f"CPU {result['cpu'] / result['wall']:.0%} of the core, "
                        f"{result['sent'] / result['cpu']:.0f} requests per CPU-second"
                        + ("" if sustained(result) else "  (not sustained)")
                    )
                held = [r for r in tries if sustained(r)]
                if not held:
                    break
                best = (rate, held[-1])
                rate += args.step
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)

    print("\n## summary (one core each)              requests/s   requests per CPU-second")
    print(f"wrk -t1 -c{CONNECTIONS}, closed loop            {wrk:10.0f}   (saturates its core)")
    print(f"locust FastHttpUser x{CONNECTIONS}, closed loop {rps:10.0f}   {locust_per_cpu:10.0f}")
    if best is None:
        print(f"ours: nothing sustained from {args.start:.0f}/s: lower --start")
    else:
        rate, result = best
        per_cpu = result["sent"] / result["cpu"]
        print(f"ours, open model, sustained         {rate:10.0f}   {per_cpu:10.0f}")
        print(f"ours / locust                       {rate / rps:10.2f}   {per_cpu / locust_per_cpu:10.2f}")


if __name__ == "__main__":
    main()
