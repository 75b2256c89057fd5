"""Observation under load: one worker observing 100 concurrent drills, each probing every second.

What runs: the embedded dev server (free ports, a temporary database file), ONE ``gameday worker`` subprocess,
and a loopback HTTP server in a process of its own (asyncio, keep-alive) that notes the arrival of every
request per path: ``time.monotonic()``, CLOCK_MONOTONIC, the same clock in every process. Each drill has a
``command`` target whose fault does nothing (``run: "true"``, ``revert: "true"``), a hypothesis probe
``answers`` (``mode: during``: every ``observe.interval`` during the observation, nothing else) on a path of
its own, ``/probe/<n>``, and a probe ``ready`` (``mode: edge``: preflight and verify) on ``/ready/<n>``, so
the ``/probe/<n>`` arrivals are exactly the observation's ticks. After one warm-up drill and a few idle seconds
(the idle baseline), ``--drills`` drills are started at once.

Measured while every drill observes (the window from the last drill's first tick to the first drill's last
tick, from the arrivals):

* the worker process's CPU (user + system of all its threads, ``/proc/PID/stat``, read every 0.25 s) as a
  share of one core, and per drill; its RSS (``/proc/PID/status``); the dev server's and the probe server's
  CPU beside it, since all share the machine's cores;
* probe interval jitter: ``|inter-arrival - interval|`` of consecutive ticks of each drill, p50/p95/p99/max
  over all drills; intervals of 1.5 intervals or more (a tick skipped: the observation skips ticks it is too
  late for) are counted apart as well;
* missed heartbeats: during the run every drill is described in turn (spread evenly, one sweep every
  ``--describe-every`` s): the age of each pending observation's last heartbeat and its attempt; after the run,
  every history is read for activity attempts > 1 (a retry, e.g. after a heartbeat timeout),
  ``ActivityTaskTimedOut`` and ``ActivityTaskFailed``; the worker log for WARNING/ERROR lines;
* every drill's verdict (RESILIENT expected).

Target (issue 5): no missed heartbeats, and probe interval jitter p99 < 100 ms. For diagnosis, ``--gc-log`` runs
the worker with its garbage collections noted (``gc.callbacks``, no other change) beside a canary process that
notes the machine's stalls, and ``--profile FILE`` records the worker with py-spy while every drill observes.

    .venv/bin/python bench/observe_load.py [--drills 100] [--duration 60] [--interval 1] [--describe-every 5]
                                           [--gc-log] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _drills import SCRIPTS, Lab, machine, percentile
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from gameday.model.records import RunRecord, Verdict
from gameday.workflows.drill_workflow import DrillWorkflow

TARGET_JITTER_P99 = 0.100
SAMPLE_EVERY = 0.25
"""Seconds between reads of the processes' ``/proc`` counters."""
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

DRILL = """\
version: 1
name: bench-observe-{n}
max_duration: {max_duration}s
targets:
  shell: {{command: {{}}}}
hypothesis:
  - name: ready
    mode: edge
    http: {{url: "{base}/ready/{n}", timeout: 2s}}
  - name: answers
    mode: during
    http: {{url: "{base}/probe/{n}", timeout: 2s}}
faults:
  - {{target: shell, action: run, run: "true", revert: "true"}}
observe: {{duration: {duration}s, interval: {interval}s}}
recovery: {{within: 10s, interval: 100ms}}
"""

_PROBE_SERVER = r"""
import asyncio, json, sys, time
arrivals = {}

async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            now = time.monotonic()
            path = head.split(b" ", 2)[1].decode()
            if path == "/_arrivals":
                body = json.dumps(arrivals).encode()
            else:
                arrivals.setdefault(path, []).append(now)
                body = b"ok"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


_GC_LOGGED_WORKER = r"""
import gc, sys, time
out = open(sys.argv[1], "a", buffering=1)
began = [0.0]
def note(phase, info):
    if phase == "start":
        began[0] = time.monotonic()
        return
    took = time.monotonic() - began[0]
    if info["generation"] == 2 or took >= 0.005:
        out.write(f"{began[0]:.6f} {took:.6f} {info['generation']}\n")
gc.callbacks.append(note)
sys.argv = ["gameday", "worker"]
from gameday.cli.main import main
main()
"""
"""``gameday worker`` with every full (and every >= 5 ms) garbage collection noted: start, seconds, generation."""

_CANARY = r"""
import sys, time
out = open(sys.argv[1], "a", buffering=1)
while True:
    asked = time.monotonic()
    time.sleep(0.005)
    late = time.monotonic() - asked - 0.005
    if late >= 0.010:
        out.write(f"{asked:.6f} {late:.6f}\n")
"""
"""A process that only sleeps 5 ms at a time and notes when it woke >= 10 ms late: the machine's own stalls."""


def pauses(path: Path) -> list[tuple[float, float]]:
    """(start, seconds) of the pauses a GC log or canary log noted."""
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(float(row[0]), float(row[1])) for row in rows if len(row) >= 2]


@dataclass
class ProbeServer:
    """The loopback server every probe calls; it keeps each path's arrival times (``time.monotonic()``)."""

    process: subprocess.Popen[str]
    port: int

    @classmethod
    def start(cls) -> ProbeServer:
        proc = subprocess.Popen([sys.executable, "-c", _PROBE_SERVER], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip():
            proc.kill()
            proc.wait()
            raise RuntimeError("the probe server did not start")
        return cls(proc, int(line))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arrivals(self) -> dict[str, list[float]]:
        with urllib.request.urlopen(f"{self.base}/_arrivals", timeout=10) as answer:
            data: dict[str, list[float]] = json.loads(answer.read())
        return data

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@dataclass
class Usage:
    """One read of a process's counters."""

    at: float
    """``time.monotonic()`` of the read."""
    cpu: float
    """User + system CPU seconds of all its threads so far."""
    rss: int
    """Resident set size, bytes."""


def read_usage(pid: int) -> Usage | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # After the ")" the state is field 3 of proc(5); utime and stime are fields 14 and 15.
    ticks = int(fields[11]) + int(fields[12])
    return Usage(time.monotonic(), ticks / CLK_TCK, int(statm.split()[1]) * PAGE)


class Sampler(threading.Thread):
    """Reads the ``/proc`` counters of some processes every :data:`SAMPLE_EVERY` s until stopped."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.reads: dict[str, list[Usage]] = {name: [] for name in pids}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for name, pid in self.pids.items():
                if (usage := read_usage(pid)) is not None:
                    self.reads[name].append(usage)
            self.done.wait(SAMPLE_EVERY)

    def between(self, name: str, start: float, end: float) -> tuple[float, float, int] | None:
        """(CPU seconds, wall seconds, max RSS) of ``name`` over the reads within [start, end]."""
        inside = [u for u in self.reads[name] if start <= u.at <= end]
        if len(inside) < 2:
            return None
        return inside[-1].cpu - inside[0].cpu, inside[-1].at - inside[0].at, max(u.rss for u in inside)


@dataclass
class Sweep:
    """What the ``describe`` sweeps saw of the pending observations."""

    described: int = 0
    ages: list[float] = field(default_factory=list)
    """Seconds since the last heartbeat of each pending ``observe`` activity, at each describe."""
    retried: set[str] = field(default_factory=set)
    """Workflows seen with an activity attempt > 1."""
    failures: list[str] = field(default_factory=list)


@dataclass
class DrillOutcome:
    workflow_id: str
    verdict: str
    summary: str
    events: int
    attempts: Counter[str] = field(default_factory=Counter)
    """Activity type → the highest attempt seen, only where > 1."""
    timed_out: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    spans: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """Activity type (or ``workflow task``) → (scheduled → started, started → closed) seconds, from the history."""
    task_timeouts: int = 0
    """``WorkflowTaskTimedOut`` events: a workflow task not taken from the sticky queue in time, or not finished."""
    to_observe: float | None = None
    """Workflow started → its ``observe`` activity started, seconds (history times)."""


@dataclass
class Results:
    drills: int = 0
    start_spread: float = 0.0
    """Seconds to start every workflow (client calls, all at once)."""
    idle: tuple[float, float, int] | None = None
    window: tuple[float, float] = (0.0, 0.0)
    usage: dict[str, tuple[float, float, int] | None] = field(default_factory=dict)
    rss_before: int = 0
    ramp: dict[str, tuple[float, float, int] | None] = field(default_factory=dict)
    """The same as ``usage``, from the start of the drills until every drill observes."""
    began: float = 0.0
    """``time.monotonic()`` just before the drills were started."""
    ticks: list[list[float]] = field(default_factory=list)
    """Per drill, the arrival times of its observation's probe requests."""
    outcomes: list[DrillOutcome] = field(default_factory=list)
    sweep: Sweep = field(default_factory=Sweep)
    log_problems: list[str] = field(default_factory=list)
    gc: list[tuple[float, float]] = field(default_factory=list)
    """With ``--gc-log``: the worker's full (or >= 5 ms) garbage collections, (start, seconds)."""
    stalls: list[tuple[float, float]] = field(default_factory=list)
    """With ``--gc-log``: when the canary process woke >= 10 ms late, (start, seconds late)."""


async def describe_sweeps(
    handles: list[WorkflowHandle[DrillWorkflow, RunRecord]], every: float, sweep: Sweep, done: asyncio.Event
) -> None:
    """Describe each running drill in turn, spread over ``every`` s, until ``done``."""
    while not done.is_set():
        for handle in handles:
            if done.is_set():
                return
            try:
                description = await handle.describe()
            except Exception as err:
                sweep.failures.append(f"{handle.id}: {err}")
                continue
            sweep.described += 1
            now = datetime.now(UTC)
            for pending in description.raw_description.pending_activities:
                if pending.attempt > 1:
                    sweep.retried.add(handle.id)
                if pending.activity_type.name == "observe" and pending.HasField("last_heartbeat_time"):
                    sweep.ages.append((now - pending.last_heartbeat_time.ToDatetime(tzinfo=UTC)).total_seconds())
            await asyncio.sleep(every / len(handles))


async def profile_worker(pid: int, probes: ProbeServer, drills: int, seconds: float, out: Path) -> None:
    """Once every drill has ticked, ``py-spy record`` the worker for ``seconds`` (collapsed stacks to ``out``).

    ``--nonblocking``: py-spy reads the worker's memory without stopping it, so the worker keeps its timing
    (at the price of an occasional torn stack).
    """
    while True:
        arrivals = await asyncio.to_thread(probes.arrivals)
        if all(f"/probe/{n}" in arrivals for n in range(drills)):
            break
        await asyncio.sleep(0.5)
    command = [str(SCRIPTS / "py-spy"), "record", "--pid", str(pid), "--duration", f"{max(1, round(seconds))}"]
    command += ["--rate", "100", "--nonblocking", "--format", "raw", "--output", str(out)]
    spy = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await spy.wait()
    finally:
        if spy.returncode is None:
            spy.kill()
            await spy.wait()


def report_profile(out: Path, top: int = 15) -> None:
    """The functions the worker spent its sampled time in: inclusive (on the stack) and self (on top)."""
    if not out.exists():
        print(f"  py-spy wrote no profile ({out})")
        return
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, tail = line.rpartition(" ")
        if not stack or not tail.isdigit():
            continue
        frames, samples = stack.split(";"), int(tail)
        total += samples
        leaf[frames[-1]] += samples
        for frame in set(frames[1:]):  # the first frame is the thread
            inclusive[frame] += samples
    print(f"  py-spy: {total} samples of the worker's busy Python threads (100/s), collapsed stacks in {out}")
    print("  inclusive (share of samples with the function on the stack):")
    for frame, hits in inclusive.most_common(top):
        print(f"    {100 * hits / max(total, 1):5.1f}%  {frame[:150]}")
    print("  self (share of samples with the function on top):")
    for frame, hits in leaf.most_common(top):
        print(f"    {100 * hits / max(total, 1):5.1f}%  {frame[:150]}")


async def outcome_of(handle: WorkflowHandle[DrillWorkflow, RunRecord], within: float) -> DrillOutcome:
    record = await asyncio.wait_for(handle.result(), within)
    history = await handle.fetch_history()
    names: dict[int, str] = {}
    outcome = DrillOutcome(
        handle.id, record.verdict.value if record.verdict else "none", record.summary, len(history.events)
    )
    times: dict[int, float] = {}
    first = history.events[0].event_time.ToDatetime().timestamp() if history.events else 0.0

    def span(name: str, scheduled: int, started: int, at: float) -> None:
        if scheduled in times and started in times:
            pair = (times[started] - times[scheduled], at - times[started])
            outcome.spans.setdefault(name, []).append(pair)

    for event in history.events:
        at = times[event.event_id] = event.event_time.ToDatetime().timestamp()
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            name = names.get(started.scheduled_event_id, "?")
            if started.attempt > 1:
                outcome.attempts[name] = max(outcome.attempts[name], started.attempt)
            if name == "observe" and outcome.to_observe is None:
                outcome.to_observe = at - first
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            span(names.get(done.scheduled_event_id, "?"), done.scheduled_event_id, done.started_event_id, at)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            outcome.task_timeouts += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            task = event.workflow_task_completed_event_attributes
            span("workflow task", task.scheduled_event_id, task.started_event_id, at)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            timed_out = event.activity_task_timed_out_event_attributes
            outcome.timed_out.append(names.get(timed_out.scheduled_event_id, "?"))
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            failed = event.activity_task_failed_event_attributes
            outcome.failed.append(names.get(failed.scheduled_event_id, "?"))
    return outcome


async def measure(workdir: Path, args: argparse.Namespace, results: Results) -> None:
    lab = Lab(workdir)
    probes = ProbeServer.start()
    sampler: Sampler | None = None
    canary: subprocess.Popen[bytes] | None = None
    queue, database, log = "bench-observe", workdir / "results.db", workdir / "worker.log"
    drill_args = {"base": probes.base, "interval": f"{args.interval:g}", "duration": f"{args.duration:g}"}
    drill_args["max_duration"] = f"{args.duration + 300:g}"
    try:
        await lab.start()
        if args.gc_log:
            worker = start_gc_logged_worker(lab, queue, database, log, workdir / "gc.log")
            canary = start_canary(workdir / "canary.log")
        else:
            worker = lab.start_worker(queue, database, log)
        await lab.wait_polling(log, worker)
        assert lab.server is not None
        pids = {"worker": worker.pid, "probe server": probes.process.pid, "bench": os.getpid()}
        if lab.server.process is not None:
            pids["dev server"] = lab.server.process.pid
        sampler = Sampler(pids)
        sampler.start()

        warm = await lab.start_drill(queue, DRILL.format(n="warm", **{**drill_args, "duration": "3"}), "warm")
        warm_record = await asyncio.wait_for(warm.result(), 120)
        if warm_record.verdict != Verdict.RESILIENT:
            raise RuntimeError(f"warm-up drill ended {warm_record.verdict}: {warm_record.summary}")
        idle_from = time.monotonic()
        await asyncio.sleep(args.idle)
        results.idle = sampler.between("worker", idle_from, time.monotonic())
        results.rss_before = sampler.reads["worker"][-1].rss

        began = results.began = time.monotonic()
        handles = list(
            await asyncio.gather(
                *(lab.start_drill(queue, DRILL.format(n=n, **drill_args), f"d{n}") for n in range(args.drills))
            )
        )
        results.drills = len(handles)
        results.start_spread = time.monotonic() - began
        print(f"  {len(handles)} drills started in {results.start_spread:.2f} s; observing {args.duration:g} s")
        profiling = None
        if args.profile is not None:
            spy = profile_worker(worker.pid, probes, args.drills, args.duration / 2, args.profile)
            profiling = asyncio.create_task(spy)
        done = asyncio.Event()
        sweeping = asyncio.create_task(describe_sweeps(handles, args.describe_every, results.sweep, done))
        within = args.duration + 300
        try:
            results.outcomes = list(await asyncio.gather(*(outcome_of(h, within) for h in handles)))
        finally:
            done.set()
            await sweeping
            if profiling is not None:
                await profiling
        sampler.done.set()
        sampler.join()

        arrivals = probes.arrivals()
        ticks = [arrivals.get(f"/probe/{n}", []) for n in range(args.drills)]
        results.ticks = ticks
        if all(len(t) >= 2 for t in ticks):
            start, end = max(t[0] for t in ticks), min(t[-1] for t in ticks)
            results.window = (start, end)
            results.usage = {name: sampler.between(name, start, end) for name in pids}
            results.ramp = {name: sampler.between(name, began, start) for name in pids}
        results.gc = pauses(workdir / "gc.log")
        results.stalls = pauses(workdir / "canary.log")
        results.log_problems = [
            line for line in log.read_text(errors="replace").splitlines() if " WARNING " in line or " ERROR " in line
        ]
    finally:
        if sampler is not None:
            sampler.done.set()
        if canary is not None:
            canary.kill()
            canary.wait()
        lab.close()
        probes.stop()


def start_canary(log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _CANARY, str(log)])


def start_gc_logged_worker(lab: Lab, queue: str, database: Path, log: Path, gc_log: Path) -> subprocess.Popen[bytes]:
    """``gameday worker`` as :meth:`Lab.start_worker` starts it, with its garbage collections noted in ``gc_log``."""
    with open(log, "ab") as out:
        command = [sys.executable, "-c", _GC_LOGGED_WORKER, str(gc_log)]
        proc = subprocess.Popen(command, env=lab.env(queue, database), stdout=out, stderr=out)
    lab.workers.append(proc)  # so that Lab.close() kills it
    return proc


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def jitter_cells(pairs: list[tuple[float, float]], interval: float) -> str:
    """``n, p50 / p95 / p99 / max`` of ``|b - a - interval|`` over the ``(a, b)`` arrival pairs."""
    if not pairs:
        return "no intervals"
    jitter = [abs(b - a - interval) for a, b in pairs]
    cells = [percentile(jitter, 50), percentile(jitter, 95), percentile(jitter, 99), max(jitter)]
    return f"n {len(jitter):>5}: " + " / ".join(_ms(c) for c in cells)


def report_causes(results: Results, pairs: list[tuple[float, float]], interval: float) -> None:
    """Which late ticks (jitter > 50 ms) a worker GC or a machine stall overlapped, in the 0.5 s before them."""
    late = [b if b - a > interval else a for a, b in pairs if abs(b - a - interval) > 0.050]
    start, end = results.began, max((t[-1] for t in results.ticks if t), default=results.began)
    full = [(at, took) for at, took in results.gc if start <= at <= end]
    stalls = [(at, took) for at, took in results.stalls if start <= at <= end]

    def near(events: list[tuple[float, float]], tick: float) -> bool:
        return any(at <= tick and at + took >= tick - 0.5 for at, took in events)

    if full:
        took = [t for _, t in full]
        print(
            f"  worker GC during the drills: {len(full)} collections >= 5 ms or full;"
            f" p50 {_ms(statistics.median(took))}, max {_ms(max(took))}, {sum(took):.2f} s in all"
        )
    if stalls:
        print(f"  canary: {len(stalls)} wake-ups >= 10 ms late, max {_ms(max(t for _, t in stalls))}")
    big_gc = [(at, took) for at, took in full if took >= 0.020]
    both = sum(near(big_gc, t) and near(stalls, t) for t in late)
    print(
        f"  late ticks (jitter > 50 ms): {len(late)}; a worker GC >= 20 ms within 0.5 s before:"
        f" {sum(near(big_gc, t) for t in late)}; a canary stall: {sum(near(stalls, t) for t in late)}; both: {both}"
    )


def report_jitter(results: Results, interval: float) -> bool:
    """Print the probe interval jitter, overall and where it comes from; whether p99 is under the target."""
    pairs = [pair for times in results.ticks for pair in itertools.pairwise(times)]
    if not pairs:
        print("  no probe intervals")
        return False
    jitter = [abs(b - a - interval) for a, b in pairs]
    p99 = percentile(jitter, 99)
    gaps = [b - a for a, b in pairs]
    skipped = sum(g >= 1.5 * interval for g in gaps)
    print(f"  probe interval jitter |inter-arrival - interval|, p50 / p95 / p99 / max, {len(pairs)} intervals:")
    print(f"    {'all drills, whole observation':<46}{jitter_cells(pairs, interval)}")
    start, end = results.window
    inside = [(a, b) for a, b in pairs if a >= start and b <= end]
    ramp = [(a, b) for a, b in pairs if not (a >= start and b <= end)]
    print(f"    {'while every drill observes':<46}{jitter_cells(inside, interval)}")
    print(f"    {'while drills start or end observing':<46}{jitter_cells(ramp, interval)}")
    firsts = [(times[0], times[1]) for times in results.ticks if len(times) > 1]
    print(f"    {'first interval of each drill':<46}{jitter_cells(firsts, interval)}")
    print(f"  inter-arrival min {_ms(min(gaps))}, max {_ms(max(gaps))}; skipped ticks (>= 1.5 intervals): {skipped}")
    first_ticks = sorted(times[0] - results.began for times in results.ticks if times)
    if first_ticks:
        print(
            f"  first tick after the start: first drill {first_ticks[0]:.2f} s, median"
            f" {statistics.median(first_ticks):.2f} s, last drill {first_ticks[-1]:.2f} s"
        )
    if results.gc or results.stalls:
        report_causes(results, pairs, interval)
    slices: dict[int, list[float]] = {}
    for (_, b), j in zip(pairs, jitter, strict=True):
        slices.setdefault(int((b - results.began) // 10), []).append(j)
    print("  by 10 s slice since the start (interval's end): intervals, jitter > 50 ms, max")
    for key in sorted(slices):
        values = slices[key]
        late = sum(v > 0.050 for v in values)
        print(f"    {key * 10:>4}-{key * 10 + 10:<4} s {len(values):>6} {late:>6}   {_ms(max(values))}")
    return p99 < TARGET_JITTER_P99


def report_spans(outcomes: list[DrillOutcome]) -> None:
    """Where a drill's time went before and around its observation: queue waits and run times from the histories."""
    to_observe = sorted(o.to_observe for o in outcomes if o.to_observe is not None)
    if to_observe:
        print(
            f"  workflow started → observe started: median {statistics.median(to_observe):.2f} s,"
            f" p95 {percentile(to_observe, 95):.2f} s, max {to_observe[-1]:.2f} s"
        )
    spans: dict[str, list[tuple[float, float]]] = {}
    for outcome in outcomes:
        for name, pairs in outcome.spans.items():
            spans.setdefault(name, []).extend(pairs)
    heading = f"  {'from the histories':<22}{'n':>6}   {'scheduled → started p50 / p95 / max':<38}"
    print(heading + "started → closed p50 / p95 / max")
    for name in sorted(spans):
        waits, runs = [w for w, _ in spans[name]], [r for _, r in spans[name]]
        wait = " / ".join(_ms(v) for v in (statistics.median(waits), percentile(waits, 95), max(waits)))
        run = " / ".join(_ms(v) for v in (statistics.median(runs), percentile(runs, 95), max(runs)))
        print(f"  {name:<22}{len(waits):>6}   {wait:<38}{run}")


def report(results: Results, args: argparse.Namespace) -> bool:
    """Print the figures; whether the target was met."""
    print()
    print(f"== observation under load: {results.drills} drills observing at once on one worker ==")
    for line in machine():
        print("  " + line)
    print(f"  drills: observe {args.duration:g} s every {args.interval:g} s, one http probe each; idle {args.idle:g} s")
    start, end = results.window
    span = end - start
    print(f"  window with every drill observing: {span:.1f} s")
    if results.idle is not None:
        cpu, wall, rss = results.idle
        share = 100 * cpu / wall
        print(f"  worker idle (after a warm-up drill): CPU {share:.1f}% of one core, RSS {rss / 2**20:.0f} MiB")
    for name, usage in results.usage.items():
        if usage is None:
            print(f"  {name}: no reads in the window")
            continue
        cpu, wall, rss = usage
        share = 100 * cpu / wall
        extra = f", {share / max(results.drills, 1):.2f}% per drill" if name == "worker" else ""
        print(f"  {name:<13} CPU {share:5.1f}% of one core{extra}, RSS max {rss / 2**20:.0f} MiB")
    print(f"  worker RSS before the drills {results.rss_before / 2**20:.0f} MiB")
    ramp = [(name, usage) for name, usage in results.ramp.items() if usage is not None]
    if ramp:
        shares = ", ".join(f"{name} {100 * cpu / wall:.0f}%" for name, (cpu, wall, _) in ramp)
        print(f"  while the drills start (until every drill observes, {ramp[0][1][1]:.1f} s): CPU {shares}")

    print()
    met_jitter = report_jitter(results, args.interval)
    expected = round(args.duration / args.interval)
    counts = Counter(len(t) for t in results.ticks)
    print(f"  ticks per drill (expected {expected}): {dict(sorted(counts.items()))}")

    print()
    report_spans(results.outcomes)

    sweep = results.sweep
    print()
    if sweep.ages:
        ages = sweep.ages
        print(
            f"  describe sweeps: {sweep.described} describes, {len(ages)} observe heartbeats aged"
            f" p50 {_ms(statistics.median(ages))}, p99 {_ms(percentile(ages, 99))}, max {_ms(max(ages))}"
            f" (timeout 5 s); workflows with an attempt > 1: {len(sweep.retried)}; describe errors:"
            f" {len(sweep.failures)}"
        )
    retried = [o for o in results.outcomes if o.attempts]
    timed_out = [o for o in results.outcomes if o.timed_out]
    failed = [o for o in results.outcomes if o.failed]
    events = [o.events for o in results.outcomes] or [0]
    print(
        f"  histories: activities retried (attempt > 1) in {len(retried)} drills"
        f" {dict(sum((o.attempts for o in retried), Counter()))}; ActivityTaskTimedOut in {len(timed_out)};"
        f" ActivityTaskFailed in {len(failed)}; events per history"
        f" {min(events)}-{max(events)}"
    )
    task_timeouts = [o.task_timeouts for o in results.outcomes if o.task_timeouts]
    print(f"  WorkflowTaskTimedOut: {sum(task_timeouts)} in {len(task_timeouts)} drills (not heartbeats; see docs)")
    print(f"  worker log WARNING/ERROR lines: {len(results.log_problems)}")
    for line in results.log_problems[:5]:
        print(f"    {line[:200]}")
    verdicts = Counter(o.verdict for o in results.outcomes)
    print(f"  verdicts: {dict(verdicts)}")
    for o in results.outcomes:
        if o.verdict != Verdict.RESILIENT.value:
            print(f"    {o.workflow_id}: {o.verdict}: {o.summary}")

    missed = bool(retried or timed_out or sweep.retried or results.log_problems)
    all_resilient = verdicts.get(Verdict.RESILIENT.value, 0) == results.drills
    met = met_jitter and not missed and all_resilient
    print()
    print(
        f"  target (no missed heartbeats, jitter p99 < {TARGET_JITTER_P99 * 1000:.0f} ms):"
        f" {'met' if met else 'NOT met'} (heartbeats {'missed' if missed else 'none missed'},"
        f" jitter p99 {'met' if met_jitter else 'NOT met'}, {'all' if all_resilient else 'NOT all'} RESILIENT)"
    )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drills", type=int, default=100, help="drills started at once")
    parser.add_argument("--duration", type=float, default=60.0, help="observe.duration of each drill, seconds")
    parser.add_argument("--interval", type=float, default=1.0, help="observe.interval, seconds")
    parser.add_argument("--describe-every", type=float, default=5.0, help="seconds per sweep of describe calls")
    parser.add_argument(
        "--profile",
        type=Path,
        help="also py-spy the worker for half the observation once all drills observe; collapsed stacks to this file",
    )
    parser.add_argument(
        "--gc-log",
        action="store_true",
        help="run the worker with its garbage collections noted, and a canary process noting the machine's stalls",
    )
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle worker measured before the drills")
    args = parser.parse_args()
    if args.drills < 1 or args.duration < 5 * args.interval:
        parser.error("--drills must be ≥ 1 and --duration at least 5 intervals")
    if args.profile is not None and not (SCRIPTS / "py-spy").exists():
        parser.error("--profile needs py-spy: .venv/bin/pip install py-spy")
    results = Results()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="gameday-bench-observe-") as tmp:
            asyncio.run(measure(Path(tmp), args, results))
    except Exception:
        traceback.print_exc()
        print("observe_load: could not run (see above)", file=sys.stderr)
        return 1
    report(results, args)
    if args.profile is not None:
        report_profile(args.profile)
    print(f"  ({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
