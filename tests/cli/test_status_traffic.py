"""``gameday status`` of a drill sending traffic: the live figures come from the heartbeat details of its running
``hold_traffic`` activity, read through the Temporal dev server's describe, decoded and printed.

A stand-in workflow and activity take the drill's place (the real ones need a whole drill): the activity is
registered under the real name and heartbeats a :class:`TrafficSummary` as its first detail, as the real one does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.worker import Worker
from temporalio.workflow import ActivityCancellationType
from typer.testing import CliRunner, Result

from gameday.cli.main import app
from gameday.cli.runs import TRAFFIC_ACTIVITY, live_traffic, traffic_activity
from gameday.model.records import DrillStatus, Phase
from gameday.model.traffic import TrafficSummary
from tests.activities.test_store_traffic import make_traffic
from tests.harness import eventually


class StandInInput(BaseModel):
    run_id: str
    traffic: bool = True
    """Start the stand-in ``hold_traffic`` at all (a drill without ``observe.traffic`` does not)."""
    figures: TrafficSummary | None = None
    """What the activity heartbeats; ``None``: it heartbeats without details, as before its first snapshot."""


@activity.defn(name=TRAFFIC_ACTIVITY)
async def hold_traffic(inp: StandInInput) -> None:
    """Heartbeats ``inp.figures`` until cancelled."""
    try:
        while True:
            if inp.figures is None:
                activity.heartbeat()
            else:
                # Every heartbeat carries the snapshot: the server keeps only the latest heartbeat's details.
                activity.heartbeat(inp.figures)
            await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        return


@workflow.defn(name="TrafficStatusStandIn", sandboxed=False)
class TrafficStatusStandIn:
    """Holds the traffic activity until ``finish``; answers the ``status`` query as DrillWorkflow does."""

    def __init__(self) -> None:
        self._finished = False
        self._run_id = ""

    @workflow.run
    async def run(self, inp: StandInInput) -> None:
        self._run_id = inp.run_id
        if inp.traffic:
            hold = workflow.start_activity(
                TRAFFIC_ACTIVITY,
                inp,
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=1),
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        await workflow.wait_condition(lambda: self._finished)
        if inp.traffic:
            hold.cancel()
            await asyncio.wait([hold])

    @workflow.signal
    def finish(self) -> None:
        self._finished = True

    @workflow.query
    def status(self) -> DrillStatus:
        return DrillStatus(run_id=self._run_id, phase=Phase.OBSERVE, faults_active=[], last_measurements=[])


@asynccontextmanager
async def stand_in(client: Client, inp: StandInInput) -> AsyncIterator[WorkflowHandle[TrafficStatusStandIn, None]]:
    """The stand-in drill running on a fresh task queue; finished (activity cancelled and done) on the way out."""
    queue = f"test-status-traffic-{uuid.uuid4()}"
    # Heartbeats throttled to 200 ms as the gameday worker does: the finishing cancel arrives at once.
    throttle = timedelta(milliseconds=200)
    async with Worker(
        client,
        task_queue=queue,
        workflows=[TrafficStatusStandIn],
        activities=[hold_traffic],
        max_heartbeat_throttle_interval=throttle,
        default_heartbeat_throttle_interval=throttle,
    ):
        handle = await client.start_workflow(TrafficStatusStandIn.run, inp, id=inp.run_id, task_queue=queue)
        try:
            if inp.traffic:

                async def heartbeating() -> bool:
                    pending = traffic_activity(await handle.describe())
                    return pending is not None and pending.HasField("last_heartbeat_time")

                await eventually(heartbeating, what="the stand-in hold_traffic to heartbeat")
            yield handle
        finally:
            await handle.signal(TrafficStatusStandIn.finish)
            await handle.result()


async def gameday_status(client: Client, run_id: str, tmp_path: Path) -> Result:
    """``gameday status RUN_ID`` against the dev server, in a thread: the command runs its own event loop."""
    env = {
        "GAMEDAY_TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "GAMEDAY_NAMESPACE": client.namespace,
        "GAMEDAY_DATA_DIR": str(tmp_path / "data"),
        "GAMEDAY_DATABASE_URL": f"sqlite:///{tmp_path / 'results.db'}",
        "COLUMNS": "200",
    }
    return await asyncio.to_thread(CliRunner().invoke, app, ["status", run_id], env=env)


async def test_live_traffic_reads_back_the_summary_the_activity_heartbeats(client: Client) -> None:
    figures = make_traffic(until=11)

    async with stand_in(client, StandInInput(run_id=f"drill-{uuid.uuid4()}", figures=figures)) as handle:
        pending = traffic_activity(await handle.describe())
        assert pending is not None
        assert await live_traffic(client, pending) == figures


async def test_status_prints_the_last_seconds_and_the_current_window_of_the_traffic(
    client: Client, tmp_path: Path
) -> None:
    run_id = f"drill-{uuid.uuid4()}"

    async with stand_in(client, StandInInput(run_id=run_id, figures=make_traffic(until=11))):
        result = await gameday_status(client, run_id, tmp_path)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"{run_id}  phase: observe" in lines
    heading = lines.index("traffic: 10/s, running, 11.2 s measured")
    assert lines[heading + 1].split() == ["second", "sent", "ok", "errors", "p95", "ms"]
    assert lines[heading + 2 : heading + 7][-1].split() == ["+7s", "10", "7", "3", "2000.9"]
    assert any(line.startswith('  window "during pause db" (since +5.0s): 40 sent, 28 ok') for line in lines)
    assert "  gap: nothing sent from +8.0s to +10.0s (the sending worker was lost)" in lines


async def test_status_says_the_traffic_has_no_figures_before_its_first_snapshot(client: Client, tmp_path: Path) -> None:
    run_id = f"drill-{uuid.uuid4()}"

    async with stand_in(client, StandInInput(run_id=run_id, figures=None)):
        result = await gameday_status(client, run_id, tmp_path)

    assert result.exit_code == 0, result.output
    assert "traffic: started, no figures yet" in result.output


async def test_status_of_a_drill_without_traffic_prints_no_traffic(client: Client, tmp_path: Path) -> None:
    run_id = f"drill-{uuid.uuid4()}"

    async with stand_in(client, StandInInput(run_id=run_id, traffic=False)):
        result = await gameday_status(client, run_id, tmp_path)

    assert result.exit_code == 0, result.output
    assert f"{run_id}  phase: observe" in result.output
    assert "traffic" not in result.output
