"""Placement overhead (issue 14): the same no-op drill end to end, its probe on a site's queue vs the shared queue.

What runs: the embedded dev server (free ports, a temporary database file), three ``gameday worker --site``
processes (sites ``a``, ``b``, ``c``; plain processes: the figure needs no PID namespaces) on one task queue, and a
loopback HTTP service (``bench/_drills.py``'s ``Service``). Each round runs, in alternating order so both share
the machine's noise, after ``--pause`` s of idle (see ``bench/orchestration_overhead.py`` on the dev server's
transfer-queue limiter):

* shared: ``faults: []``, one ``http`` probe on the service, ``observe: 0s``: the probe's preflight and verify
  samples run on any worker (the shared queue); no ``check_sites`` preflight;
* site: the same drill with ``from: a`` on the probe: the ``check_sites`` preflight (a ``describe_task_queue``
  per live site) and the samples on ``<queue>@site:a``, taken by site a's worker only.

A third drill, reported for scale and not in the ratio: one ``command`` target on site ``a`` with a fault
``run: "true"`` / ``revert: "true"`` (capture, apply, revert on the site queue). Every drill must end RESILIENT.
Printed: per variant n/min/p50/p95/max of client start → result, and site/shared ratios of p50 and p95.

    .venv/bin/python bench/placement_overhead.py [--runs 20] [--pause 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _drills import Lab, Service, machine, percentile, stats_header, stats_line

from gameday.model.records import Verdict

SITES = ("a", "b", "c")

PROBE_DRILL = """\
version: 1
name: bench-placement-{variant}
targets: {{}}
hypothesis:
  - {{name: up, http: {{url: "{url}"}}{where}}}
faults: []
observe: {{duration: 0s}}
"""

COMMAND_DRILL = """\
version: 1
name: bench-placement-command
targets:
  shell: {command: {}, site: a}
faults:
  - {target: shell, action: run, run: "true", revert: "true"}
observe: {duration: 0s}
"""


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--pause", type=float, default=1.0)
    args = parser.parse_args()
    for line in machine():
        print(line)
    workdir = Path(tempfile.mkdtemp(prefix="bench-placement-"))
    lab = Lab(workdir)
    service = Service.start(workdir / "service")
    drills = {
        "shared": PROBE_DRILL.format(variant="shared", url=service.url, where=""),
        "site": PROBE_DRILL.format(variant="site", url=service.url, where=", from: a"),
        "command": COMMAND_DRILL,
    }
    times: dict[str, list[float]] = {name: [] for name in drills}
    failures = 0
    try:
        await lab.start()
        queue, database = "bench-placement", workdir / "results.db"
        for site in SITES:
            log = workdir / f"worker-{site}.log"
            proc = lab.start_worker(queue, database, log, site=site)
            await lab.wait_polling(log, proc)
        for round_no in range(args.runs + 1):  # round 0 warms every path up and is not counted
            order = list(drills) if round_no % 2 == 0 else list(reversed(drills))
            for name in order:
                await asyncio.sleep(args.pause)
                began = time.monotonic()
                handle = await lab.start_drill(queue, drills[name], f"bench-placement-{name}")
                record = await handle.result()
                took = time.monotonic() - began
                if record.verdict != Verdict.RESILIENT:
                    failures += 1
                    print(f"round {round_no} {name}: {record.verdict}  <-- FAILED", flush=True)
                elif round_no:
                    times[name].append(took)
        print()
        print(stats_header(f"no-op drill end to end, {args.runs} runs each, 3 sites live"))
        print(stats_line("shared queue (http probe, no from:)", times["shared"]))
        print(stats_line("site queue (same drill, probe from: a)", times["site"]))
        print(stats_line("command fault true/true on site a (for scale)", times["command"]))
        if times["shared"] and times["site"]:
            p50 = statistics.median(times["site"]) / statistics.median(times["shared"])
            p95 = percentile(times["site"], 95) / percentile(times["shared"], 95)
            print(f"site/shared ratio: p50 {p50:.2f}, p95 {p95:.2f}; drills failed: {failures}")
        return 1 if failures else 0
    finally:
        service.stop()
        lab.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
