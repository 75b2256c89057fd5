"""Gaps in the evidence are never silent: a worker lost for most of the observation makes the run INCONCLUSIVE,
with the gap, its times and its cause recorded (and stored in SQL); a short stall stays RESILIENT, its coverage
shown. Real ``gameday worker`` processes, SIGKILLed or frozen mid-observation."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from gameday.activities.store import Store
from gameday.model.records import EXIT_CODES, FaultState, Phase, Verdict
from gameday.model.score import score_record
from gameday.report.run import render_markdown
from tests.harness import WorkerProcesses, eventually, finish, start_drill, wait_phase

pytestmark = pytest.mark.integration


def _drill(name: str, marker: Path, observe: str) -> str:
    return f"""
name: {name}
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: check
    command: {{run: "true"}}
faults:
  - {{target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}
observe: {{{observe}}}
recovery: {{within: 30s, interval: 100ms}}
"""


async def observing(handle: WorkflowHandle[Any, Any]) -> bool:
    """The observe activity runs and has heartbeated its progress (what a later attempt resumes from)."""
    pending = (await handle.describe()).raw_description.pending_activities
    return any(p.activity_type.name == "observe" and p.heartbeat_details.payloads for p in pending)


def _outage(seconds: float) -> None:
    # The outage itself is the scenario (a worker gone for this long): there is no condition to wait for.
    time.sleep(seconds)


async def test_a_worker_lost_for_most_of_the_observation_makes_the_run_inconclusive_with_the_gap_recorded(
    client: Client, tmp_path: Path
) -> None:
    queue = f"coverage-{uuid.uuid4()}"
    database_url = f"sqlite:///{tmp_path / 'results.db'}"
    marker = tmp_path / "marker"
    workers = WorkerProcesses(client.service_client.config.target_host, queue, database_url, tmp_path)
    first = workers.start()
    try:
        handle = await start_drill(client, queue, _drill("lost-worker", marker, "duration: 22s, interval: 250ms"))
        await wait_phase(handle, Phase.OBSERVE, within=60)
        await eventually(lambda: observing(handle), what="the observation to heartbeat its progress", within=30)
        workers.kill(first)
        _outage(11)
        workers.start()
        record = await finish(handle, "coverage_inconclusive", within=120)
    finally:
        workers.stop_all()

    assert record.verdict == Verdict.INCONCLUSIVE, record.summary
    assert EXIT_CODES[record.verdict] == 7
    assert "evidence incomplete" in record.summary and "observe.min_coverage 80%" in record.summary
    assert [f.state for f in record.faults] == [FaultState.REVERTED] and not marker.exists()
    coverage = record.coverage
    assert coverage is not None and coverage.min_coverage == 0.8
    assert coverage.covered < 0.8 and coverage.ticks_taken < coverage.ticks_expected
    [gap] = coverage.gaps
    assert gap.seconds >= 10 and "observation lost" in gap.cause and "attempt 2" in gap.cause
    assert coverage.window_start <= gap.start < gap.end <= coverage.window_end
    assert score_record(record).score is None  # an incomplete experiment is not scored

    stored = Store(database_url).get(record.run_id)
    assert stored is not None and stored.verdict == Verdict.INCONCLUSIVE and stored.coverage == coverage
    report = render_markdown(stored)
    assert "# Drill `lost-worker`: INCONCLUSIVE" in report
    assert "## Gaps in the observation" in report and "observation lost" in report


async def test_a_short_stall_under_the_threshold_stays_resilient_with_its_coverage_shown(
    client: Client, tmp_path: Path
) -> None:
    queue = f"coverage-{uuid.uuid4()}"
    database_url = f"sqlite:///{tmp_path / 'results.db'}"
    marker = tmp_path / "marker"
    workers = WorkerProcesses(client.service_client.config.target_host, queue, database_url, tmp_path)
    worker = workers.start()
    try:
        handle = await start_drill(client, queue, _drill("short-stall", marker, "duration: 24s, interval: 250ms"))
        await wait_phase(handle, Phase.OBSERVE, within=60)
        await eventually(lambda: observing(handle), what="the observation to heartbeat its progress", within=30)
        os.kill(worker.pid, signal.SIGSTOP)  # frozen, well inside its 5 s heartbeat timeout
        try:
            _outage(3.5)
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        record = await finish(handle, "coverage_short_gap", within=120)
    finally:
        workers.stop_all()

    assert record.verdict == Verdict.RESILIENT, record.summary
    coverage = record.coverage
    assert coverage is not None and coverage.sufficient
    assert 0.8 <= coverage.covered < 1.0
    assert len(coverage.gaps) >= 1 and any("stalled" in gap.cause for gap in coverage.gaps)
    observe = next(step for step in record.steps if step.phase == Phase.OBSERVE)
    assert f"of {coverage.ticks_expected} tick(s)" in observe.detail and "gap(s)" in observe.detail
    stored = Store(database_url).get(record.run_id)
    assert stored is not None and stored.coverage == coverage
    assert "**Evidence under fault:**" in render_markdown(stored)
