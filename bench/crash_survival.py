"""Crash survival: drills whose worker is SIGKILLed at a random moment; are all faults reverted, all verdicts given?

What runs: the embedded dev server (free ports, a temporary database file) and ``--lanes`` independent lanes,
run concurrently to keep the total short. A lane has a loopback HTTP service in its own process, one
``gameday worker`` subprocess on a task queue and SQLite results file of the lane's own, and runs its share of
the drills one after another. A drill pauses the lane's service (``process`` target by ``pidfile``, action
``pause``: SIGSTOP), probes it over http during a 2 s observation (every 250 ms), reverts, verifies.

Each lane first runs two drills without a crash, all lanes at once: the median of the second (warm) ones is
the expected duration D. Then, for each drill, the lane's worker is SIGKILLed at a moment drawn uniformly from
[0, D) after the drill's start, so kills land in every phase (a drill that has ended before its moment is not
killed, not counted, and replaced); just before the kill the drill's phase (``status`` query) and the service's
``/proc`` state are noted. A new worker is started at once on the same queue. Counted at the end of each drill:
the verdict (a final one, or none within ``--timeout``), and whether the service is still stopped (a fault left
applied; the benchmark then resumes it so the next drill starts clean). Also measured, for kills while the
service was stopped: the kill → the service running again. Targets (issue 3): 0 faults left applied, every drill
a final verdict.

Two more cases (issue 11), on a ``command`` target whose fault is a pipeline, ``touch STARTED; { sleep H; touch
LANDED; } | cat`` (revert: ``rm -f LANDED``; H = 1.5 s, a value of its own per lane): **pipeline**, the worker
SIGKILLed at a moment uniform over [0, D') (D' the median of uncrashed pipeline drills), and **apply
interrupted**, SIGKILLed the moment STARTED appears (the apply is running). A fault is left over when LANDED
exists once the drill's result is back, or a ``sleep H`` of the lane is still alive then (it would land later).

Side by side: the same fault and rollback as a Chaos Toolkit experiment (method: ``kill -STOP PID`` then a
pause; rollback: ``kill -CONT PID``; ``--rollback-strategy always``), with ``chaos run`` SIGKILLed mid-pause
at a random moment; counted: services left stopped 2 s after the kill.

    .venv/bin/python bench/crash_survival.py [--runs 50] [--pipeline-runs 20] [--interrupted-runs 20] [--lanes 5]
        [--chaos-runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from _drills import (
    Lab,
    Service,
    chaos_run,
    chaos_version,
    machine,
    phase_of,
    proc_state,
    stats_header,
    stats_line,
    wait_state,
)

from gameday.model.records import Phase, Verdict

PAUSE, PIPELINE, INTERRUPTED = "pause", "pipeline", "apply interrupted"

DRILL = """\
version: 1
name: bench-crash-{lane}
max_duration: 2m
revert_grace: 1m
targets:
  svc: {{process: {{pidfile: "{pidfile}"}}}}
hypothesis:
  - name: service answers
    http: {{url: "{url}", timeout: 300ms}}
faults:
  - {{target: svc, action: pause}}
observe: {{duration: 2s, interval: 250ms}}
recovery: {{within: 20s, interval: 100ms}}
"""

PIPE_DRILL = """\
version: 1
name: bench-crash-pipe-{lane}
max_duration: 2m
revert_grace: 1m
targets:
  sh: {{command: {{}}}}
faults:
  - target: sh
    action: run
    run: "touch {started}; {{ sleep {hold}; touch {landed}; }} | cat"
    revert: "rm -f {landed}"
    timeout: 30s
observe: {{duration: 2s}}
"""


@dataclass
class Outcome:
    lane: int
    kind: str
    """``pause``, ``pipeline`` or ``apply interrupted``."""
    phase_at_kill: str
    """The drill's phase by its ``status`` query just before the kill (``no answer`` if the query timed out)."""
    stopped_at_kill: bool
    """The service was SIGSTOPped at the moment of the kill."""
    kill_after: float
    verdict: str
    """The final verdict, or ``none`` when the drill gave none within the timeout."""
    left_applied: bool
    fault_state: str
    seconds: float
    """Drill start → result."""
    kill_to_safe: float | None = None
    summary: str = ""
    """For a kill while the service was stopped: the kill → the service running again (read every 10 ms)."""


@dataclass
class Results:
    expected: float = 0.0
    expected_pipe: float = 0.0
    calibration: list[float] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    ended_before_kill: int = 0
    """Drills that had ended before their kill moment (D is a median): not counted, replaced by another."""
    chaos_left: int = 0
    chaos_runs: int = 0
    chaos_kill_after: list[float] = field(default_factory=list)


@dataclass
class LaneParts:
    lane: int
    service: Service
    queue: str
    database: Path
    logs: Path
    worker: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def drill(self) -> str:
        return DRILL.format(lane=self.lane, pidfile=self.service.pidfile, url=self.service.url)

    @property
    def hold(self) -> str:
        return f"1.5{self.lane:03d}"  # a sleep of this lane's own, so its processes can be found

    def pipe_drill(self) -> str:
        started, landed = self.logs / "started", self.logs / "landed"
        return PIPE_DRILL.format(lane=self.lane, started=started, landed=landed, hold=self.hold)

    def pipe_left(self) -> bool:
        """The pipeline's fault landed, or a process of it is still alive (it would land later)."""
        return (self.logs / "landed").exists() or bool(sleeps(self.hold))

    def pipe_reset(self) -> None:
        for pid in sleeps(self.hold):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for name in ("started", "landed"):
            (self.logs / name).unlink(missing_ok=True)


def sleeps(hold: str) -> list[int]:
    """Live ``sleep HOLD`` processes."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            ours = entry.name.isdigit() and (entry / "cmdline").read_bytes() == f"sleep\0{hold}\0".encode()
            if ours and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


async def resumed_at(pid: int, within: float) -> float | None:
    """The ``time.monotonic()`` at which ``pid`` is first seen not stopped (read every 10 ms), else None."""
    deadline = time.monotonic() + within
    while proc_state(pid) == "T":
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.01)
    return time.monotonic()


async def applying(started: Path, within: float) -> None:
    """Until the pipeline's apply has started (its first command touched ``started``), polled every 10 ms."""
    deadline = time.monotonic() + within
    while not started.exists() and time.monotonic() < deadline:  # noqa: ASYNC110, ASYNC240 (a tiny stat, polled)
        await asyncio.sleep(0.01)


async def calibrate(lab: Lab, lane: LaneParts, kind: str = PAUSE, *, warm: bool = True) -> float:
    started = time.monotonic()
    handle = await lab.start_drill(lane.queue, lane.drill() if kind == PAUSE else lane.pipe_drill(), lane.queue)
    record = await asyncio.wait_for(handle.result(), 120)
    if warm and record.verdict not in (Verdict.DEVIATED, Verdict.RESILIENT):
        raise RuntimeError(f"calibration drill {handle.id} ended {record.verdict}: {record.summary}")
    lane.pipe_reset()
    return time.monotonic() - started


async def crash_one(lab: Lab, lane: LaneParts, expected: float, within: float, kind: str = PAUSE) -> Outcome | None:
    """One drill, its worker SIGKILLed at a random moment (``apply interrupted``: as soon as its apply runs);
    None when the drill had ended before that moment."""
    started = time.monotonic()
    handle = await lab.start_drill(lane.queue, lane.drill() if kind == PAUSE else lane.pipe_drill(), lane.queue)
    if kind == INTERRUPTED:
        await applying(lane.logs / "started", within)
    else:
        kill_after = random.uniform(0, expected)
        await asyncio.sleep(max(0.0, started + kill_after - time.monotonic()))
    phase = await phase_of(handle, within=1.0) if kind != INTERRUPTED else Phase.INJECT
    stopped = kind == PAUSE and proc_state(lane.service.pid) == "T"
    if phase == Phase.DONE:
        await asyncio.wait_for(handle.result(), within)
        lane.pipe_reset()
        return None  # no crash to survive: the lane runs another drill in its place
    assert lane.worker is not None
    lane.worker.kill()
    lane.worker.wait()
    killed_at = time.monotonic()
    # A fault applied at the kill: how long it stays applied with its worker dead (heartbeat timeout, restart…).
    resumed = asyncio.create_task(resumed_at(lane.service.pid, within)) if stopped else None
    lane.restarts += 1
    lane.worker = lab.start_worker(lane.queue, lane.database, lane.logs / f"worker-{lane.restarts}.log")
    try:
        record = await asyncio.wait_for(handle.result(), within)
    except TimeoutError:
        verdict, fault_state, summary = "none", "?", f"no verdict within {within:g} s"
        await handle.cancel()  # so the next drill of the lane is not refused the target's lock
    else:
        verdict = record.verdict.value if record.verdict else "none"
        fault_state = record.faults[0].state.value if record.faults else "no fault"
        summary = record.summary
    seconds = time.monotonic() - started
    left = proc_state(lane.service.pid) == "T" if kind == PAUSE else lane.pipe_left()
    running_again = await resumed if resumed is not None else None
    lane.service.resume()
    lane.pipe_reset()
    return Outcome(
        lane=lane.lane,
        kind=kind,
        phase_at_kill=phase.value if phase else "no answer",
        stopped_at_kill=stopped,
        kill_after=killed_at - started,
        verdict=verdict,
        left_applied=left,
        fault_state=fault_state,
        seconds=seconds,
        kill_to_safe=None if running_again is None else running_again - killed_at,
        summary=summary,
    )


async def measure(workdir: Path, runs: dict[str, int], lanes: int, within: float, results: Results) -> None:
    lab = Lab(workdir)
    parts: list[LaneParts] = []
    try:
        await lab.start()
        for n in range(lanes):
            logs = workdir / f"lane-{n}"
            service = Service.start(logs, "target")
            lane = LaneParts(n, service, f"bench-crash-{n}", logs / "results.db", logs)
            parts.append(lane)
            lane.worker = lab.start_worker(lane.queue, lane.database, logs / "worker-0.log")
        for lane in parts:
            assert lane.worker is not None
            await lab.wait_polling(lane.logs / "worker-0.log", lane.worker, within=180)  # 5 starting at once, loaded
        # cold (imports, sandbox, SQLite schema): any verdict will do, a probe may time out on a worker still loading
        await asyncio.gather(*(calibrate(lab, lane, warm=False) for lane in parts))
        results.calibration = list(await asyncio.gather(*(calibrate(lab, lane) for lane in parts)))
        results.expected = statistics.median(results.calibration)
        spread = ", ".join(f"{c:.2f}" for c in results.calibration)
        print(f"  expected drill duration D = {results.expected:.2f} s (uncrashed, warm: {spread} s)")
        if runs[PIPELINE] or runs[INTERRUPTED]:
            pipes = await asyncio.gather(*(calibrate(lab, lane, PIPELINE) for lane in parts))
            results.expected_pipe = statistics.median(pipes)
            print(f"  expected pipeline drill duration D' = {results.expected_pipe:.2f} s (uncrashed)")

        async def lane_loop(lane: LaneParts, kinds: list[str]) -> None:
            done = 0
            while done < len(kinds):
                kind = kinds[done]
                expected = results.expected if kind == PAUSE else results.expected_pipe
                outcome = await crash_one(lab, lane, expected, within, kind)
                if outcome is None:
                    results.ended_before_kill += 1
                    continue
                done += 1
                results.outcomes.append(outcome)
                safe = "" if outcome.kill_to_safe is None else f", fault reverted {outcome.kill_to_safe:5.2f} s after"
                print(
                    f"  lane {lane.lane} drill {len(results.outcomes):>2} ({kind}):"
                    f" killed at {outcome.kill_after:5.2f} s"
                    f" in {outcome.phase_at_kill:<9} (target {'stopped' if outcome.stopped_at_kill else 'running'})"
                    f" → {outcome.verdict:<8} in {outcome.seconds:5.1f} s"
                    f"{safe}{'  FAULT LEFT APPLIED' if outcome.left_applied else ''}"
                )
                if outcome.verdict not in (Verdict.DEVIATED.value, Verdict.RESILIENT.value):
                    print(f"      {outcome.verdict}: {outcome.summary}")

        every = [kind for kind in (PAUSE, PIPELINE, INTERRUPTED) for _ in range(runs[kind])]
        random.shuffle(every)
        shares = [every[n::lanes] for n in range(lanes)]
        await asyncio.gather(*(lane_loop(lane, share) for lane, share in zip(parts, shares, strict=True)))
    finally:
        lab.close()
        for lane in parts:
            lane.service.stop()


def measure_chaos(workdir: Path, runs: int, results: Results) -> None:
    service = Service.start(workdir, "chaos-target")
    try:
        for n in range(runs):
            run = chaos_run(workdir / f"chaos-{n}", service.pid, hold=10, strategy="always")
            try:
                if wait_state(service.pid, stopped=True, within=60) is None:
                    raise RuntimeError("chaos run never stopped the target")
                after = random.uniform(0.1, 3.0)
                time.sleep(after)
                run.kill()
                run.wait(timeout=10)
                results.chaos_kill_after.append(after)
                time.sleep(2.0)
                results.chaos_runs += 1
                if proc_state(service.pid) == "T":
                    results.chaos_left += 1
            finally:
                if run.poll() is None:
                    run.kill()
                    run.wait()
                service.resume()
    finally:
        service.stop()


def report(results: Results, lanes: int) -> None:
    outcomes = results.outcomes
    print()
    print("== crash survival: the worker SIGKILLed once per drill at a random moment, then restarted ==")
    for line in machine():
        print("  " + line)
    print(f"  {len(outcomes)} drills in {lanes} concurrent lanes; kill moment uniform over [0, D), D = ", end="")
    print(f"{results.expected:.2f} s (median of {len(results.calibration)} uncrashed drills)")
    verdicts = sorted({o.verdict for o in outcomes})
    phases = ["pending", "preflight", "inject", "observe", "rollback", "verify", "record", "done"]
    phases += sorted({o.phase_at_kill for o in outcomes} - set(phases))
    print()
    print(f"  {'phase at kill':<14}{'drills':>7}{'target T':>10}" + "".join(f"{v:>14}" for v in verdicts))
    for phase in phases:
        these = [o for o in outcomes if o.phase_at_kill == phase]
        if not these:
            continue
        row = f"  {phase:<14}{len(these):>7}{sum(o.stopped_at_kill for o in these):>10}"
        row += "".join(f"{sum(o.verdict == v for o in these):>14}" for v in verdicts)
        print(row)
    states = Counter(o.fault_state for o in outcomes)
    print(f"  (target T: the service was SIGSTOPped at the kill)   fault state in the records: {dict(states)}")
    print(f"  ({results.ended_before_kill} more drill(s) had ended before their kill moment: not killed, replaced)")
    final = sum(o.verdict != "none" for o in outcomes)
    left = sum(o.left_applied for o in outcomes)
    seconds = [o.seconds for o in outcomes]
    print()
    for kind in (PAUSE, PIPELINE, INTERRUPTED):
        these = [o for o in outcomes if o.kind == kind]
        if these:
            by_verdict = dict(Counter(o.verdict for o in these))
            print(
                f"  {kind:<18} {len(these):>3} kill(s): faults left over {sum(o.left_applied for o in these)},"
                f" final verdicts {sum(o.verdict != 'none' for o in these)}/{len(these)} {by_verdict}"
            )
    print(f"  gameday: faults left applied {left} (target 0: {'met' if left == 0 else 'NOT met'});", end="")
    print(f" drills with a final verdict {final}/{len(outcomes)} ({'met' if final == len(outcomes) else 'NOT met'})")
    if seconds:
        median, longest = statistics.median(seconds), max(seconds)
        print(f"  drill start → result with the crash: median {median:.1f} s, max {longest:.1f} s")
    lingering = [o.kill_to_safe for o in outcomes if o.kill_to_safe is not None]
    print(stats_header("killed while the service was stopped"))
    print(stats_line("kill → service running again (fault reverted)", lingering))
    if results.chaos_runs:
        print(
            f"  Chaos Toolkit, `chaos run --rollback-strategy always` SIGKILLed mid-method (at 0.1-3 s into a 10 s"
            f" pause): faults left applied {results.chaos_left}/{results.chaos_runs}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="pause drills, each with one worker SIGKILL")
    parser.add_argument("--pipeline-runs", type=int, default=20, help="pipeline drills killed at a random moment")
    parser.add_argument("--interrupted-runs", type=int, default=20, help="pipeline drills killed mid-apply")
    parser.add_argument("--lanes", type=int, default=5, help="drills run concurrently, each lane with its own worker")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds a crashed drill has to give a verdict")
    parser.add_argument("--chaos-runs", type=int, default=10, help="Chaos Toolkit runs SIGKILLed mid-method")
    args = parser.parse_args()
    if args.runs < 1 or args.lanes < 1 or args.pipeline_runs < 0 or args.interrupted_runs < 0:
        parser.error("--runs and --lanes must be ≥ 1, the other counts ≥ 0")
    runs = {PAUSE: args.runs, PIPELINE: args.pipeline_runs, INTERRUPTED: args.interrupted_runs}
    total = sum(runs.values())
    if args.chaos_runs and chaos_version() is None:
        print("crash_survival: chaos is not installed (pip install -e '.[bench]'): no Chaos Toolkit comparison")
        args.chaos_runs = 0
    results = Results()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="gameday-bench-crash-") as tmp:
            workdir = Path(tmp)
            asyncio.run(measure(workdir, runs, min(args.lanes, total), args.timeout, results))
            measure_chaos(workdir, args.chaos_runs, results)
    except Exception:
        traceback.print_exc()
        print("crash_survival: could not run (see above)", file=sys.stderr)
        return 1
    report(results, min(args.lanes, total))
    print(f"  ({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
