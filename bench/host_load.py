"""Host resource faults (issue 17): how exactly a load holds what it is asked, and how soon a stop ends it.

What runs: the ``host`` fault provider (``activities/faults/host.py``) in this process, as a worker runs it; each
load is a real process group (``python -m gameday.activities.faults.host_load``), child of this process.

- CPU accuracy: ``cpu`` on 1 core at 25%, 50% and 100%, held ``--hold`` seconds after the apply returns, each
  ``--rounds`` times. Measured: CPU seconds of the load group (``/proc/PID/stat`` utime + stime of the supervisor
  and its burner) over the hold, divided by hold x requested load; and the time the scheduler kept the burner
  waiting for a core (``/proc/PID/schedstat``), which says how busy the machine was.
- Memory accuracy: ``memory`` of 64, 256 and 1024 MiB; the holder's resident size (``VmRSS``) once the apply
  returns, against the bytes asked for (the holder's own interpreter, ~10 MiB, included).
- Stop → gone: ``--stops`` times, a ``memory`` 64 MiB load applied, then the revert started; the clock runs from
  the revert's call until no process of the group is left (``/proc`` scanned by marker every 1 ms in a thread),
  and until the revert returns.

    .venv/bin/python bench/host_load.py [--hold 5] [--rounds 3] [--stops 20]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import TypeAdapter

from gameday.activities.faults import host
from gameday.model.drill import Fault, Target
from gameday.model.records import FaultInput, FaultRecord
from tests.host_support import group_cpu_seconds, rss_bytes, schedstat_seconds

MiB = 1024**2


def fault_input(fault: dict[str, Any], run_id: str, index: int = 0) -> FaultInput:
    target = Target.model_validate({"host": {}})
    model = TypeAdapter(Fault).validate_python({"target": "box", **fault})
    record = FaultRecord(index=index, label=model.label, target="box", kind="host", action=model.action_name)
    return FaultInput(run_id=run_id, index=index, target_name="box", target=target, fault=model, record=record)


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the p95 of 20 values is the 19th smallest."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


async def cpu_accuracy(hold: float, rounds: int) -> None:
    print(f"CPU: 1 core, held {hold:g} s after the apply returns, {rounds} round(s) per load")
    heads = f"{'asked CPU-s':>13}{'measured (p50)':>16}{'ratio min/p50/max':>22}{'waited for a core (p50)':>26}"
    print(f"  {'load':>6}{heads}")
    for load in (0.25, 0.5, 1.0):
        ratios, burnt_all, waited_all = [], [], []
        for r in range(rounds):
            inp = fault_input({"action": "cpu", "cores": 1, "load": f"{load * 100:g}%"}, f"bench-cpu-{load}-{r}")
            record = await host.apply(inp)
            pids = host.load_pids(host.marker(inp.run_id, 0))
            start, (_, waited0) = group_cpu_seconds(pids), schedstat_seconds(pids)
            await asyncio.sleep(hold)
            burnt, waited = group_cpu_seconds(pids) - start, schedstat_seconds(pids)[1] - waited0
            await host.revert(inp.model_copy(update={"record": record}))
            ratios.append(burnt / (hold * load))
            burnt_all.append(burnt)
            waited_all.append(waited)
        print(
            f"  {load * 100:>5g}%{hold * load:>13.2f}{statistics.median(burnt_all):>16.2f}"
            f"{f'{min(ratios):.3f}/{statistics.median(ratios):.3f}/{max(ratios):.3f}':>22}"
            f"{statistics.median(waited_all):>24.2f} s"
        )


async def memory_accuracy() -> None:
    print("Memory: resident size of the holder once the apply returns")
    print(f"  {'asked':>9}{'VmRSS':>12}{'ratio':>8}")
    for size in (64, 256, 1024):
        inp = fault_input({"action": "memory", "size": f"{size}MiB"}, f"bench-mem-{size}")
        record = await host.apply(inp)
        (pid,) = host.load_pids(host.marker(inp.run_id, 0))
        rss = rss_bytes(pid)
        await host.revert(inp.model_copy(update={"record": record}))
        print(f"  {size:>6} MiB{rss / MiB:>9.1f} MiB{rss / (size * MiB):>8.3f}")


async def stop_to_gone(stops: int) -> None:
    gone, returned = [], []
    for n in range(stops):
        inp = fault_input({"action": "memory", "size": "64MiB"}, f"bench-stop-{n}")
        record = await host.apply(inp)
        mark = host.marker(inp.run_id, 0)
        seen: list[float] = []

        def watch(began: float, mark: str = mark, seen: list[float] = seen) -> None:
            while host.load_pids(mark):
                time.sleep(0.001)
            seen.append(time.monotonic() - began)

        began = time.monotonic()
        watcher = threading.Thread(target=watch, args=(began,))
        watcher.start()
        await host.revert(inp.model_copy(update={"record": record}))
        returned.append(time.monotonic() - began)
        await asyncio.to_thread(watcher.join)
        gone.append(seen[0])
    print(f"Stop → gone, {stops} stops of a 64 MiB memory load")
    print(f"  {'':<33}{'min':>9}{'p50':>9}{'p95':>9}{'max':>9}  (ms)")
    for label, values in (("revert called → load gone", gone), ("revert called → revert returned", returned)):
        cells = (min(values), statistics.median(values), percentile(values, 95), max(values))
        print(f"  {label:<33}" + "".join(f"{v * 1000:9.1f}" for v in cells))


def _cpu_model() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stops", type=int, default=20)
    args = parser.parse_args()
    os.environ["GAMEDAY_DATA_DIR"] = tempfile.mkdtemp(prefix="gameday-bench-host-")
    cpu = _cpu_model()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"nproc {len(os.sched_getaffinity(0))}, CPU {cpu}, {platform.platform()}, python {platform.python_version()}")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load}")
    await cpu_accuracy(args.hold, args.rounds)
    await memory_accuracy()
    await stop_to_gone(args.stops)
    print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
