"""Go/no-go gates and pausing, on a real dev server: approve before inject, a gate that times out safely, and a
pause that holds (or reverts and re-applies) the faults until resume."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import Approve, DrillInput, FaultState, Phase, StepStatus, Verdict
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.harness import drill_from_yaml, finish, running_worker, start_drill, wait_phase, wait_until_async

pytestmark = pytest.mark.integration


def _drill(name: str, log: Path, extra: str, *, apply_first: str = "") -> str:
    return f"""
name: {name}
targets:
  sh: {{command: {{}}}}
faults:
  - {{name: flag, target: sh, action: run, run: "{apply_first}echo a >> {log}", revert: "echo r >> {log}"}}
observe: {{duration: 300ms}}
{extra}
"""


async def test_a_drill_waits_at_its_gate_and_injects_only_once_approved(
    client: Client, store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    drill = _drill("gated", log, "approval: {before: inject, timeout: 1m}")
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)
        await wait_phase(handle, Phase.APPROVAL)
        assert not log.exists(), "nothing is injected before the go"
        await handle.signal("approve", Approve(by="alice", note="traffic is low"))
        record = await finish(handle, "approved")
    assert record.verdict == Verdict.RESILIENT, record.summary
    gate = next(s for s in record.steps if s.phase == Phase.APPROVAL)
    assert gate.status == StepStatus.OK and gate.detail == "approved by alice: traffic is low"
    assert log.read_text().split() == ["a", "r"]


async def test_a_gate_without_approval_in_time_ends_aborted_with_nothing_injected(
    client: Client, store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    drill = _drill("unapproved", log, "approval: {timeout: 300ms}")
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "not_approved")
    assert record.verdict == Verdict.ABORTED
    assert record.stop is not None and "no approval within 300ms: nothing injected" in record.stop.reason
    assert record.faults == [] and not log.exists()


@pytest.mark.parametrize("policy", ["hold", "revert"])
async def test_a_paused_drill_waits_between_phases_and_resume_continues_it(
    client: Client, store: Store, tmp_path: Path, policy: str
) -> None:
    log, gate = tmp_path / "log", tmp_path / "gate"
    # The first apply waits for the gate, so the pause lands while injecting and takes hold before observing.
    drill = _drill(
        f"paused-{policy}",
        log,
        f"pause: {{faults: {policy}}}",
        apply_first=f"while [ ! -e {gate} ] && [ ! -e {log} ]; do sleep 0.05; done; ",
    )
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)
        await wait_phase(handle, Phase.INJECT)
        await handle.signal("pause", Approve(by="bob"))
        gate.touch()
        await wait_phase(handle, Phase.PAUSED)
        expected_while_paused = ["a"] if policy == "hold" else ["a", "r"]
        await wait_until_async(lambda: log.read_text().split() == expected_while_paused, what="the pause policy")
        await handle.signal("resume", Approve(by="carol"))
        record = await finish(handle, f"paused_{policy}")
    assert record.verdict == Verdict.RESILIENT, record.summary
    assert log.read_text().split() == (["a", "r"] if policy == "hold" else ["a", "r", "a", "r"])
    paused = next(s for s in record.steps if s.phase == Phase.PAUSED)
    assert "resumed by carol" in paused.detail
    assert record.faults[0].state == FaultState.REVERTED


async def test_a_scheduled_run_inside_a_blackout_records_itself_skipped_and_touches_nothing(
    client: Client, store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    today = datetime.now(UTC).date()
    drill = drill_from_yaml(_drill("blacked-out", log, ""))
    inp = DrillInput(
        run_id=f"blacked-out-{uuid.uuid4().hex[:6]}",
        drill=drill,
        blackouts=["2001-01-01", f"{today - timedelta(days=1)}..{today + timedelta(days=1)}"],
        time_zone="Europe/Paris",
    )
    async with running_worker(client, store) as queue:
        handle = await client.start_workflow(DrillWorkflow.run, inp, id=inp.run_id, task_queue=queue)
        record = await finish(handle, "blackout_skip")
    assert record.verdict == Verdict.ABORTED
    assert record.stop is not None and record.stop.by == "schedule"
    assert record.stop.reason == f"skipped: now is in blackout {today - timedelta(days=1)}..{today + timedelta(days=1)}"
    assert record.faults == [] and not log.exists()
    saved = store.get(record.run_id)
    assert saved is not None and saved.verdict == Verdict.ABORTED  # the skip is on record
