"""The kill switch's state on the real dev server: FreezeWorkflow keeps its freezes across continue-as-new, and a
drill whose freeze check cannot read the state does not start (fail closed)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.freeze_records import (
    CHANGES_PER_RUN,
    FreezeRequest,
    FreezeState,
    UnfreezeRequest,
    freeze_workflow_id,
)
from gameday.model.records import Verdict
from gameday.workflows.freeze_workflow import FreezeWorkflow
from tests.harness import eventually, finish, running_worker, start_drill

pytestmark = pytest.mark.integration

UNREADABLE_AFTER = timedelta(milliseconds=300)
"""The worker's wait for one read of the freeze state in the fail-closed test."""


async def test_the_freeze_state_outlives_continue_as_new(client: Client, tmp_path: Path) -> None:
    async with running_worker(client, Store(f"sqlite:///{tmp_path / 'r.db'}")) as queue:
        handle = await client.start_workflow(
            FreezeWorkflow.run,
            FreezeState(),
            id=freeze_workflow_id(queue),
            task_queue=queue,
            start_signal="freeze",
            start_signal_args=[FreezeRequest(reason="first", by="pytest", team="kept")],
        )
        first_run = (await handle.describe()).run_id
        for n in range(CHANGES_PER_RUN + 3):
            await handle.signal("freeze", FreezeRequest(reason=f"churn {n}", by="pytest", team="churn"))
        await handle.signal("unfreeze", UnfreezeRequest(by="pytest", team="churn"))

        async def continued() -> bool:
            state = await client.get_workflow_handle(handle.id).query("freezes", result_type=FreezeState)
            desc = await client.get_workflow_handle(handle.id).describe()
            return desc.run_id != first_run and [f.team for f in state.freezes] == ["kept"]

        await eventually(continued, what="the freeze workflow to continue as new, keeping the freeze", within=30)
        state = await client.get_workflow_handle(handle.id).query("freezes", result_type=FreezeState)
        assert state.freezes[0].reason == "first" and state.blocking("kept") is not None
        assert state.blocking("someone-else") is None
        await client.get_workflow_handle(handle.id).terminate("test over")


async def test_a_drill_that_cannot_read_the_freeze_state_does_not_start(client: Client, tmp_path: Path) -> None:
    marker = tmp_path / "applied"
    # Each read of the freeze state gives up after UNREADABLE_AFTER (not 5 s): the drill's 4 attempts, and its
    # fail-closed refusal, come in seconds; what is proven is unchanged.
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    async with running_worker(client, store, freeze_query_timeout=UNREADABLE_AFTER) as queue:
        # A freeze workflow no worker runs: its state cannot be read (every query times out).
        stuck = await client.start_workflow(
            "FreezeWorkflow", FreezeState(), id=freeze_workflow_id(queue), task_queue=f"nobody-{uuid.uuid4()}"
        )
        try:
            handle = await start_drill(
                client,
                queue,
                f"""
name: fail-closed
targets: {{sh: {{command: {{}}}}}}
faults: [{{target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}]
observe: {{duration: 1s}}
""",
            )
            record = await finish(handle, "freeze_fail_closed", within=90)
        finally:
            await stuck.terminate("test over")
    assert record.verdict == Verdict.ABORTED, record.summary
    assert record.stop is not None and record.stop.by == "freeze"
    assert "freeze state unknown" in record.stop.reason and "fail closed" in record.stop.reason
    assert record.faults == [] and not marker.exists()


async def test_a_drill_started_during_a_freeze_injects_nothing_and_records_itself_skipped(
    client: Client, tmp_path: Path
) -> None:
    marker = tmp_path / "applied"
    async with running_worker(client, Store(f"sqlite:///{tmp_path / 'r.db'}")) as queue:
        freeze = await client.start_workflow(
            FreezeWorkflow.run,
            FreezeState(),
            id=freeze_workflow_id(queue),
            task_queue=queue,
            start_signal="freeze",
            start_signal_args=[FreezeRequest(reason="incident", by="pytest", team="payments")],
        )
        try:
            handle = await start_drill(
                client,
                queue,
                f"""
name: refused
team: payments
targets: {{sh: {{command: {{}}}}}}
faults: [{{target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}]
observe: {{duration: 1s}}
""",
            )
            record = await finish(handle, "freeze_refused")
        finally:
            await freeze.terminate("test over")
    assert record.verdict == Verdict.ABORTED, record.summary
    assert record.stop is not None and record.stop.by == "freeze"
    assert record.stop.reason.startswith("frozen: incident (skipped:")
    assert record.faults == [] and not marker.exists()
    assert [s.phase for s in record.steps if s.phase.value == "preflight"] == []  # not even a preflight step
