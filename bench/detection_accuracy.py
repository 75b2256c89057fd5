"""Detection accuracy: ``observe.expect.detect``'s time to detect against the known truth (issue 15).

What runs: the embedded dev server (free ports, a temporary database file), one ``gameday worker`` subprocess, and
a loopback HTTP service in this process whose ``/health`` says ``{"degraded": true}`` once a known delay has passed
since the drill's fault. The fault is a ``command`` that writes the time it ran (``date +%s.%N``) to a file and
creates the fault flag; its revert removes the flag. Before each drill the benchmark picks the delay (uniform
0.5-2.5 s) and writes it where the service reads it, so the truth is known: the detector flips at *fault command
time + delay*. The drill watches ``says-degraded`` (``body_json: {path: degraded, equals: true}``) every
``--interval`` (default 500ms) and declares ``detect: {probe: says-degraded, within: 10s}``.

Measured per run: the recorded ``time_to_detect`` (from the fault's ``applied_at``) minus the truth (the flip
instant minus ``applied_at``). The first sample that sees the flip is taken at most one interval after it, so the
error should lie in [0, interval] (plus the probe's own request time). Every drill must end ``RESILIENT``.

    .venv/bin/python bench/detection_accuracy.py [--runs 20] [--interval 500ms]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from _drills import Lab, machine, stats_header, stats_line

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gameday.model.records import Verdict
from gameday.model.units import parse_duration
from tests.loopback import serve_loopback

DRILL = """\
version: 1
name: bench-detect
max_duration: 5m
targets: {{sh: {{command: {{}}}}}}
faults:
  - {{name: degrade, target: sh, action: run, run: {run}, revert: {revert}}}
observe:
  duration: 3500ms
  interval: {interval}
  watch:
    - name: says-degraded
      http: {{url: "{url}", body_json: {{path: degraded, equals: true}}, timeout: 1s}}
  expect:
    detect: {{probe: says-degraded, within: 10s}}
recovery: {{within: 30s, interval: 100ms}}
"""


def health(workdir: Path) -> Callable[[str], tuple[bytes, None]]:
    """``/health``: degraded once ``delay`` seconds have passed since the fault command wrote ``fault_at``."""

    def answer(path: str) -> tuple[bytes, None]:
        degraded = False
        if (workdir / "fault").exists():
            since = float((workdir / "fault_at").read_text())
            degraded = time.time() >= since + float((workdir / "delay").read_text())
        return json.dumps({"degraded": degraded}).encode(), None

    return answer


async def measure(workdir: Path, runs: int, interval: str) -> tuple[list[float], list[float], dict[str, int]]:
    errors: list[float] = []
    detected: list[float] = []
    verdicts: dict[str, int] = {}
    lab = Lab(workdir)
    with serve_loopback(health(workdir), "bench-detect-health") as base:
        try:
            await lab.start()
            queue, database, log = "bench-detect", workdir / "results.db", workdir / "worker.log"
            worker = lab.start_worker(queue, database, log)
            await lab.wait_polling(log, worker)
            run = f"date +%s.%N > {workdir}/fault_at && touch {workdir}/fault"
            drill = DRILL.format(
                run=json.dumps(run),
                revert=json.dumps(f"rm -f {workdir}/fault"),
                interval=interval,
                url=f"{base}/health",
            )
            for n in range(runs + 1):  # drill 0 warms the worker up and is not counted
                delay = random.uniform(0.5, 2.5)
                (workdir / "delay").write_text(f"{delay:.6f}")
                record = await asyncio.wait_for((await lab.start_drill(queue, drill, "bench-detect")).result(), 120)
                verdict = record.verdict.value if record.verdict else "none"
                applied = record.faults[0].applied_at if record.faults else None
                if n == 0:
                    continue
                verdicts[verdict] = verdicts.get(verdict, 0) + 1
                if record.verdict != Verdict.RESILIENT or applied is None or record.time_to_detect is None:
                    print(f"  drill {n:>2}: {verdict}: {record.summary}", file=sys.stderr)
                    continue
                truth = float((workdir / "fault_at").read_text()) + delay - applied.timestamp()
                errors.append(record.time_to_detect - truth)
                detected.append(record.time_to_detect)
                print(
                    f"  drill {n:>2}: delay {delay:5.3f}s  truth {truth:6.3f}s  time_to_detect "
                    f"{record.time_to_detect:6.3f}s  error {(record.time_to_detect - truth) * 1000:+7.1f} ms"
                )
        finally:
            lab.close()
    return errors, detected, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="measured drills")
    parser.add_argument("--interval", default="500ms", help="the watch's observe.interval")
    args = parser.parse_args()
    step = parse_duration(args.interval).total_seconds()
    try:
        with tempfile.TemporaryDirectory(prefix="gameday-bench-detect-") as tmp:
            errors, detected, verdicts = asyncio.run(measure(Path(tmp), args.runs, args.interval))
    except Exception:
        traceback.print_exc()
        print("detection_accuracy: could not run (see above)", file=sys.stderr)
        return 1
    print()
    print(f"== detection accuracy: time_to_detect vs truth (watch interval {args.interval}) ==")
    for line in machine():
        print("  " + line)
    print(stats_header("gameday, embedded dev server, one worker subprocess"))
    print(stats_line("time_to_detect - truth", errors))
    print(stats_line("|time_to_detect - truth|", [abs(e) for e in errors]))
    print(stats_line("time_to_detect", detected))
    within = sum(1 for e in errors if -0.05 <= e <= step)
    print(f"  verdicts: {verdicts}")
    print(f"  within one interval ({args.interval}) of the truth: {within}/{len(errors)}")
    return 0 if errors and within == len(errors) else 1


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"  ({time.monotonic() - started:.0f} s in all)")
    sys.exit(code)
