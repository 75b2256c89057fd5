"""Chaos Toolkit experiments: crash survival and overhead, gameday vs `chaos run` (issue 16).

Crash survival. One experiment file, run unchanged by both: the method touches FAULT (the fault) then holds
(``sleep 3``); its rollback removes FAULT. Each run is killed (SIGKILL) at a moment drawn uniformly from the hold:

* gameday: ``gameday worker`` in a process of its own runs the experiment (``DrillWorkflow``); once FAULT exists
  the worker is killed at the drawn moment and a new worker started. Counted once the run's result is back (or not,
  within 90 s): FAULT still there (a fault left applied), the run record present.
* ``chaos run`` (default rollback strategy, and ``--rollback-strategy always``): the process is killed at the drawn
  moment. Counted 2 s after the kill: FAULT still there, a journal written.

Overhead. An experiment of one hypothesis probe and three ``process`` actions (``true``) with one rollback, end to
end: ``gameday run --wait experiment.json`` (warm worker, dev server running) against ``chaos run``, wall time
per run, medians and their ratio.

    .venv/bin/python bench/ctk_survival.py [--runs 20] [--overhead-runs 5]
"""

# ruff: noqa: ASYNC220, ASYNC221, ASYNC230, ASYNC240 -- one run at a time, timed from outside: blocking is the point

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from _drills import SCRIPTS, Lab, chaos_version, machine

from gameday.model.ctk import parse_experiment
from gameday.model.records import DrillInput
from gameday.workflows.drill_workflow import DrillWorkflow

HOLD = 3.0


def crash_experiment(workdir: Path) -> dict[str, object]:
    fault = str(workdir / "FAULT")
    return {
        "title": "crash survival",
        "description": "touch FAULT, hold; the rollback removes FAULT",
        "method": [
            {
                "type": "action",
                "name": "inject",
                "provider": {"type": "process", "path": "touch", "arguments": [fault]},
            },
            {
                "type": "action",
                "name": "hold",
                "provider": {"type": "process", "path": "sleep", "arguments": [str(HOLD)]},
            },
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "remove",
                "provider": {"type": "process", "path": "rm", "arguments": ["-f", fault]},
            }
        ],
    }


def overhead_experiment() -> dict[str, object]:
    true = {"type": "process", "path": "true"}
    return {
        "title": "overhead",
        "description": "one probe, three actions, one rollback",
        "steady-state-hypothesis": {
            "title": "t",
            "probes": [{"type": "probe", "name": "p", "tolerance": 0, "provider": true}],
        },
        "method": [{"type": "action", "name": f"a{i}", "provider": true} for i in range(3)],
        "rollbacks": [{"type": "action", "name": "r", "provider": true}],
    }


async def wait_for(path: Path, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} never appeared")
        await asyncio.sleep(0.01)


async def gameday_crashes(lab: Lab, root: Path, runs: int) -> tuple[int, int, int]:
    queue = f"ctk-bench-{uuid.uuid4().hex[:8]}"
    database = root / "results.db"
    log = root / "workers.log"
    worker = lab.start_worker(queue, database, log)
    await lab.wait_polling(log, worker)
    left = recorded = 0
    assert lab.client is not None
    for i in range(runs):
        workdir = root / f"gameday-{i}"
        workdir.mkdir()
        path = workdir / "experiment.json"
        path.write_text(json.dumps(crash_experiment(workdir)))
        drill = parse_experiment(path.read_text(), str(path)).drill
        run_id = f"ctk-bench-{i}-{uuid.uuid4().hex[:6]}"
        inp = DrillInput(run_id=run_id, drill=drill, source=str(path), started_by="bench")
        handle = await lab.client.start_workflow(DrillWorkflow.run, inp, id=run_id, task_queue=queue)
        await wait_for(workdir / "FAULT")
        await asyncio.sleep(random.uniform(0, HOLD))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        worker = lab.start_worker(queue, database, log)
        try:
            await asyncio.wait_for(handle.result(), 90)
            recorded += 1
        except TimeoutError:
            pass
        left += (workdir / "FAULT").exists()
    return runs, left, recorded


async def chaos_crashes(root: Path, runs: int, strategy: str) -> tuple[int, int, int]:
    left = journals = 0
    for i in range(runs):
        workdir = root / f"chaos-{strategy}-{i}"
        workdir.mkdir()
        path = workdir / "experiment.json"
        path.write_text(json.dumps(crash_experiment(workdir)))
        command = [
            str(SCRIPTS / "chaos"),
            "--no-version-check",
            "--log-file",
            str(workdir / "chaos.log"),
            "run",
            "--rollback-strategy",
            strategy,
            "--journal-path",
            str(workdir / "journal.json"),
            str(path),
        ]
        with open(workdir / "chaos.out", "ab") as out:
            proc = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=out)
        await wait_for(workdir / "FAULT")
        await asyncio.sleep(random.uniform(0, HOLD))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        await asyncio.sleep(2.0)
        left += (workdir / "FAULT").exists()
        journals += (workdir / "journal.json").exists()
    return runs, left, journals


async def overhead(lab: Lab, root: Path, runs: int) -> tuple[list[float], list[float]]:
    queue = f"ctk-overhead-{uuid.uuid4().hex[:8]}"
    database = root / "overhead.db"
    log = root / "overhead-worker.log"
    worker = lab.start_worker(queue, database, log)
    await lab.wait_polling(log, worker)
    path = root / "overhead.json"
    path.write_text(json.dumps(overhead_experiment()))
    ours: list[float] = []
    theirs: list[float] = []
    env = lab.env(queue, database)
    for _ in range(runs + 1):  # the first of each is a warm-up, not counted
        began = time.monotonic()
        subprocess.run([str(SCRIPTS / "gameday"), "run", "--wait", str(path)], env=env, capture_output=True, check=True)
        ours.append(time.monotonic() - began)
        began = time.monotonic()
        subprocess.run(
            [
                str(SCRIPTS / "chaos"),
                "--no-version-check",
                "--no-log-file",
                "run",
                "--journal-path",
                str(root / "overhead-journal.json"),
                str(path),
            ],
            cwd=root,
            capture_output=True,
            check=False,
        )
        theirs.append(time.monotonic() - began)
    return ours[1:], theirs[1:]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--overhead-runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ctk-bench-") as tmp:
        root = Path(tmp)
        lab = Lab(root)
        try:
            await lab.start()
            print(f"# {chaos_version()}; {'; '.join(machine())}")
            rows = [
                ("gameday (worker SIGKILLed, new worker)", await gameday_crashes(lab, root, args.runs)),
                ("chaos run (default strategy)", await chaos_crashes(root, args.runs, "default")),
                ("chaos run --rollback-strategy always", await chaos_crashes(root, args.runs, "always")),
            ]
            print("| runner | runs | faults left applied | record / journal present |")
            print("|---|---|---|---|")
            for label, (n, left, kept) in rows:
                print(f"| {label} | {n} | {left} | {kept} |")
            ours, theirs = await overhead(lab, root, args.overhead_runs)
            a, b = statistics.median(ours), statistics.median(theirs)
            print(
                f"overhead: gameday run --wait median {a:.2f}s (min {min(ours):.2f}s), chaos run median {b:.2f}s "
                f"(min {min(theirs):.2f}s), ratio {a / b:.2f}"
            )
        finally:
            lab.close()


if __name__ == "__main__":
    asyncio.run(main())
