"""Stop latency: from "stop" to the SIGSTOPped target running again, gameday against Chaos Toolkit.

What runs: the embedded dev server (free ports, a temporary database file), one ``gameday worker`` subprocess,
and a loopback HTTP service in its own process. Each drill pauses the service (``process`` target by
``pidfile``, action ``pause``: SIGSTOP) and observes it for up to 2 minutes (an http probe every second).
Once the service is stopped (``/proc/PID/stat`` state ``T``) and the drill reports ``observe``, after a random
0.2-1.2 s, the drill is stopped, alternating between:

* (a) the ``emergency_stop`` signal sent with the Temporal client (clock starts before the call);
* (b) ``gameday stop RUN_ID --reason ...`` launched as a subprocess (clock starts before the launch, so Python
  start-up and the CLI's imports are included).

Measured: the time until the service is seen running again, reading its ``/proc`` state every 1 ms.
Targets (issue 3): p95 < 250 ms for (a), p95 < 600 ms for (b). Each drill must end ``ABORTED``.

Then, for comparison, Chaos Toolkit: ``chaos run`` of an experiment whose method SIGSTOPs the same kind of
service and pauses, and whose rollback runs ``kill -CONT PID`` (``process`` provider). ``chaos run`` gets SIGTERM
mid-pause; measured: SIGTERM → the service running again. With ``--rollback-strategy always`` (chaoslib plays
no rollback on an interrupted run by default) and a few runs with the default strategy, to show that.

    .venv/bin/python bench/stop_latency.py [--runs 30] [--chaos-runs 30] [--chaos-default-runs 5]   # --runs: of each
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from _drills import (
    SCRIPTS,
    Lab,
    Service,
    chaos_run,
    chaos_version,
    machine,
    pause_drill,
    percentile,
    stats_header,
    stats_line,
    wait_observing,
    wait_state,
)

from gameday.model.records import StopRequest, Verdict
from gameday.workflows.drill_workflow import DrillWorkflow

TARGET_SIGNAL = 0.250
TARGET_COMMAND = 0.600


@dataclass
class Results:
    signal: list[float] = field(default_factory=list)
    """(a): ``emergency_stop`` sent → target running."""
    command: list[float] = field(default_factory=list)
    """(b): ``gameday stop`` launched → target running."""
    command_exit: list[float] = field(default_factory=list)
    """(b): ``gameday stop`` launched → the command exited."""
    time_to_safe: list[float] = field(default_factory=list)
    """What the workflow recorded: stop received → last revert done."""
    verdicts: dict[str, int] = field(default_factory=dict)
    chaos_always: list[float] = field(default_factory=list)
    chaos_always_missed: int = 0
    chaos_default_missed: int = 0
    chaos_default: list[float] = field(default_factory=list)


def launch_stop(run_id: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``gameday stop RUN_ID --reason ...`` as a person would type it, pointed at the benchmark's server."""
    command = [str(SCRIPTS / "gameday"), "stop", run_id, "--reason", "bench: stop latency"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def measure_gameday(workdir: Path, runs: int, results: Results) -> None:
    service = Service.start(workdir, "target")
    lab = Lab(workdir)
    try:
        await lab.start()
        queue, database, log = "bench-stop", workdir / "results.db", workdir / "worker.log"
        worker = lab.start_worker(queue, database, log)
        await lab.wait_polling(log, worker)
        drill = pause_drill("bench-stop", service)
        for n in range(2 * runs + 1):  # drill 0 warms the worker up and is not counted
            handle = await lab.start_drill(queue, drill, "bench-stop")
            await wait_observing(handle, service.pid)
            await asyncio.sleep(random.uniform(0.2, 1.2))
            by_command = n % 2 == 0
            started = time.monotonic()
            if by_command:
                cli = launch_stop(handle.id, lab.env(queue, database))
            else:
                await handle.signal(DrillWorkflow.emergency_stop, StopRequest(reason="bench: stop latency", by="bench"))
            running = wait_state(service.pid, stopped=False, within=30)
            if running is None:
                raise RuntimeError(f"{handle.id}: the target was still stopped 30 s after the stop")
            if by_command:
                _, err = cli.communicate(timeout=60)
                exited = time.monotonic()
                if cli.returncode != 0:
                    raise RuntimeError(f"gameday stop exited {cli.returncode}: {err.decode()}")
            record = await asyncio.wait_for(handle.result(), 120)
            verdict = record.verdict.value if record.verdict else "none"
            if n == 0:
                continue
            results.verdicts[verdict] = results.verdicts.get(verdict, 0) + 1
            if record.verdict != Verdict.ABORTED:
                print(f"  {handle.id}: verdict {verdict}: {record.summary}", file=sys.stderr)
            if record.time_to_safe is not None:
                results.time_to_safe.append(record.time_to_safe)
            if by_command:
                results.command.append(running - started)
                results.command_exit.append(exited - started)
            else:
                results.signal.append(running - started)
            print(f"  drill {n:>2} {'command' if by_command else 'signal '}: {(running - started) * 1000:7.1f} ms")
    finally:
        lab.close()
        service.stop()


def measure_chaos(workdir: Path, runs: int, strategy: str, into: list[float]) -> int:
    """``runs`` Chaos Toolkit runs SIGTERMed mid-pause; times into ``into``; returns how many never resumed it."""
    service = Service.start(workdir, f"chaos-target-{strategy}")
    missed = 0
    try:
        for n in range(runs):
            run = chaos_run(workdir / f"chaos-{strategy}-{n}", service.pid, hold=60, strategy=strategy)
            try:
                if wait_state(service.pid, stopped=True, within=60) is None:
                    raise RuntimeError("chaos run never stopped the target")
                time.sleep(random.uniform(0.3, 1.0))
                started = time.monotonic()
                run.send_signal(signal.SIGTERM)
                running = wait_state(service.pid, stopped=False, within=5)
                if running is None:
                    missed += 1
                else:
                    into.append(running - started)
                run.wait(timeout=30)
            finally:
                if run.poll() is None:
                    run.kill()
                    run.wait()
                service.resume()
    finally:
        service.stop()
    return missed


def report(results: Results, args: argparse.Namespace) -> None:
    print()
    print("== stop latency: stop → SIGSTOPped target running again (/proc polled every 1 ms) ==")
    for line in machine():
        print("  " + line)
    print(stats_header("gameday, embedded dev server, one worker subprocess"))
    print(stats_line("(a) emergency_stop signal sent by the client", results.signal))
    print(stats_line("(b) `gameday stop RUN_ID --reason` launched", results.command))
    print(stats_line("    (b) the command's own exit", results.command_exit))
    print(stats_line("recorded time_to_safe (stop received → revert done)", results.time_to_safe))
    print(f"  verdicts: {results.verdicts}")
    if results.signal and results.command:
        a, b = percentile(results.signal, 95), percentile(results.command, 95)
        print(f"  target (a) p95 < {TARGET_SIGNAL * 1000:.0f} ms: {'met' if a < TARGET_SIGNAL else 'NOT met'}")
        print(f"  target (b) p95 < {TARGET_COMMAND * 1000:.0f} ms: {'met' if b < TARGET_COMMAND else 'NOT met'}")
    if args.chaos_runs or args.chaos_default_runs:
        print(stats_header("Chaos Toolkit, `chaos run` SIGTERMed mid-method"))
        print(stats_line("--rollback-strategy always: SIGTERM → running", results.chaos_always))
        print(f"    runs whose rollback never resumed the target within 5 s: {results.chaos_always_missed}")
        print(stats_line("--rollback-strategy default: SIGTERM → running", results.chaos_default))
        print(
            f"    runs whose rollback never resumed the target within 5 s: {results.chaos_default_missed}"
            f" of {args.chaos_default_runs}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="measured drills of each of (a) and (b), alternating")
    parser.add_argument("--chaos-runs", type=int, default=30, help="Chaos Toolkit runs, rollback strategy always")
    parser.add_argument("--chaos-default-runs", type=int, default=5, help="Chaos Toolkit runs, default strategy")
    args = parser.parse_args()
    if (args.chaos_runs or args.chaos_default_runs) and chaos_version() is None:
        print("stop_latency: chaos is not installed (pip install -e '.[bench]'): no Chaos Toolkit comparison")
        args.chaos_runs = args.chaos_default_runs = 0
    results = Results()
    try:
        with tempfile.TemporaryDirectory(prefix="gameday-bench-stop-") as tmp:
            workdir = Path(tmp)
            asyncio.run(measure_gameday(workdir, args.runs, results))
            results.chaos_always_missed = measure_chaos(workdir, args.chaos_runs, "always", results.chaos_always)
            results.chaos_default_missed = measure_chaos(
                workdir, args.chaos_default_runs, "default", results.chaos_default
            )
    except Exception:
        traceback.print_exc()
        print("stop_latency: could not run (see above)", file=sys.stderr)
        return 1
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
