"""A fault's own ``duration`` and ``pause: {faults: revert}`` together: the fault is never applied past its duration,
and its early revert never races a resumed drill's apply of it again (real dev server, real commands)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.ledger import FaultLedger
from gameday.activities.store import Store
from gameday.model.records import Approve, FaultState, Phase, StopRequest, Verdict
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.harness import eventually, finish, running_worker, start_drill, wait_phase, wait_until_async

pytestmark = pytest.mark.integration


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


async def test_a_fault_whose_duration_ends_while_paused_is_not_applied_again_on_resume(
    client: Client, store: Store, tmp_path: Path
) -> None:
    flag, reverts = tmp_path / "flag", tmp_path / "reverts"
    drill = f"""
name: duration-ends-while-paused
targets:
  sh: {{command: {{}}}}
faults:
  - name: short
    target: sh
    action: run
    run: "sleep 2; touch {flag}"
    revert: "echo reverted >> {reverts}; rm -f {flag}"
    duration: 1s
pause: {{faults: revert}}
observe: {{duration: 5m}}
"""
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)
        await wait_phase(handle, Phase.INJECT)  # the apply takes 2 s: the pause holds the drill after it
        await handle.signal(DrillWorkflow.pause, Approve(by="alice"))
        await wait_phase(handle, Phase.PAUSED)
        # Reverted by the pause, then again when its 1 s duration ended, while the drill is still paused.
        await wait_until_async(lambda: _lines(reverts) >= 2, what="the pause's and the duration's reverts")
        await handle.signal(DrillWorkflow.resume, Approve(by="alice"))
        await wait_phase(handle, Phase.OBSERVE)
        status = await handle.query(DrillWorkflow.status)
        assert [f.state for f in status.faults] == [FaultState.REVERTED]  # not applied again past its duration
        assert not flag.exists()
        await handle.signal("emergency_stop", StopRequest(reason="done", by="alice"))
        record = await finish(handle, "duration_ends_while_paused")

    assert record.verdict == Verdict.ABORTED, record.summary
    assert not flag.exists()
    paused = [s for s in record.steps if s.phase == Phase.PAUSED]
    assert "reached the end of its duration" in paused[0].detail


async def test_an_early_revert_waits_for_the_resumed_apply_so_the_fault_and_its_ledger_row_end_reverted(
    client: Client, store: Store, tmp_path: Path
) -> None:
    flag, first, gate, reverts = tmp_path / "flag", tmp_path / "first", tmp_path / "gate", tmp_path / "reverts"
    # First apply: 2 s. The apply again on resume waits for the gate, so the fault's 6 s duration ends during it.
    run = (
        f"if [ -e {first} ]; then while [ ! -e {gate} ]; do sleep 0.1; done; else touch {first}; sleep 2; fi; "
        f"touch {flag}"
    )
    drill = f"""
name: duration-ends-during-reapply
targets:
  sh: {{command: {{}}}}
faults:
  - name: gated
    target: sh
    action: run
    run: "{run}"
    revert: "echo reverted >> {reverts}; rm -f {flag}"
    duration: 6s
    timeout: 2m
pause: {{faults: revert}}
observe: {{duration: 5m}}
"""
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)
        await wait_phase(handle, Phase.INJECT)
        await handle.signal(DrillWorkflow.pause, Approve(by="alice"))
        await wait_phase(handle, Phase.PAUSED)
        await wait_until_async(lambda: _lines(reverts) >= 1, what="the pause's revert")
        await handle.signal(DrillWorkflow.resume, Approve(by="alice"))

        async def scheduled_after_the_duration() -> list[str] | None:
            """Activities the workflow scheduled once the fault's duration ended (``None``: not handled yet)."""
            events = (await handle.fetch_history()).events
            fired = next((i for i, e in enumerate(events) if e.HasField("timer_fired_event_attributes")), None)
            if fired is None or not any(e.HasField("workflow_task_completed_event_attributes") for e in events[fired:]):
                return None
            return [
                e.activity_task_scheduled_event_attributes.activity_type.name
                for e in events[fired:]
                if e.HasField("activity_task_scheduled_event_attributes")
            ]

        async def duration_handled() -> bool:
            return await scheduled_after_the_duration() is not None

        await wait_until_async(lambda: first.exists(), what="the first apply")
        await eventually(duration_handled, what="the fault's duration to end during the apply again", within=60)
        if "revert_fault" in (await scheduled_after_the_duration() or []):
            # A revert started beside the apply (the bug): let it run to its end before the apply goes on.
            await wait_until_async(lambda: _lines(reverts) >= 2, what="the early revert beside the apply")
        gate.touch()

        async def applied_twice_and_reverted() -> bool:
            history = await handle.fetch_history()
            scheduled = {
                e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
                for e in history.events
                if e.HasField("activity_task_scheduled_event_attributes")
            }
            applies = [
                e
                for e in history.events
                if e.HasField("activity_task_completed_event_attributes")
                and scheduled[e.activity_task_completed_event_attributes.scheduled_event_id] == "apply_fault"
            ]
            status = await handle.query(DrillWorkflow.status)
            return len(applies) == 2 and [f.state for f in status.faults] == [FaultState.REVERTED]

        # The early revert runs after the apply again, not beside it: the flag goes, and the ledger agrees.
        await eventually(applied_twice_and_reverted, what="the apply again, then the early revert", within=60)
        assert not flag.exists()
        assert FaultLedger(store).state(handle.id, 0) == FaultState.REVERTED
        await handle.signal("emergency_stop", StopRequest(reason="done", by="alice"))
        record = await finish(handle, "duration_ends_during_reapply")

    assert record.verdict == Verdict.ABORTED, record.summary
    assert not flag.exists()
