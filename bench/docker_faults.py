"""Figure: how long docker faults take to apply and to revert, through the provider gameday runs.

For each of pause, stop and limit_cpu: apply then revert, N times, on a fresh busybox container (``httpd``
under an init, so SIGTERM stops it at once), timing ``activities.faults.docker.apply`` and ``revert`` (the
engine calls in a thread, as in the activity). Prints p50/p95 of each. Needs the Docker engine and the test
image (built like the tests build it: ``docker import`` of busybox-static).

    .venv/bin/python bench/docker_faults.py [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from gameday.activities.faults import docker as docker_faults  # noqa: E402
from gameday.model.drill import DockerTarget, Fault, LimitCpuFault, PauseFault, StopFault, Target  # noqa: E402
from gameday.model.records import FaultInput, FaultRecord  # noqa: E402
from tests.docker_support import TEST_LABEL, build_image  # noqa: E402

FAULTS: dict[str, Fault] = {
    "pause": PauseFault(action="pause", target="box"),
    "stop": StopFault(action="stop", target="box", timeout=timedelta(seconds=5)),
    "limit_cpu": LimitCpuFault(action="limit_cpu", target="box", cpus=0.5),
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(name: str, fault: Fault, container: str, runs: int) -> tuple[list[float], list[float]]:
    target = Target(docker=DockerTarget(container=container))
    record = FaultRecord(index=0, label=fault.label, target="box", kind="docker", action=fault.action)
    inp = FaultInput(run_id="bench", index=0, target_name="box", target=target, fault=fault, record=record)
    applies, reverts = [], []
    for _ in range(runs):
        start = time.perf_counter()
        applied = await docker_faults.apply(inp)
        applies.append(time.perf_counter() - start)
        start = time.perf_counter()
        await docker_faults.revert(inp.model_copy(update={"record": applied}))
        reverts.append(time.perf_counter() - start)
    return applies, reverts


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    client = docker.from_env()
    image = build_image(client)
    info = client.version()
    print(
        f"docker fault apply/revert times ({os.cpu_count()} CPUs, engine {info['Version']}, "
        f"storage {client.info()['Driver']}); {args.runs} runs each"
    )
    for name, fault in FAULTS.items():
        box = client.containers.run(
            image,
            ["httpd", "-f", "-p", "127.0.0.1:0", "-h", "/www"],
            detach=True,
            init=True,
            network_mode="none",
            name=f"gd-bench-{uuid.uuid4().hex[:8]}",
            labels={TEST_LABEL: "bench"},
        )
        try:
            applies, reverts = await measure(name, fault, str(box.name), args.runs)
        finally:
            box.remove(force=True)
        a50, a95 = percentile(applies, 50) * 1000, percentile(applies, 95) * 1000
        r50, r95 = percentile(reverts, 50) * 1000, percentile(reverts, 95) * 1000
        print(f"  {name:9}  apply p50 {a50:6.1f} ms  p95 {a95:6.1f} ms   revert p50 {r50:6.1f} ms  p95 {r95:6.1f} ms")
    client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
