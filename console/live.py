"""What the console reads from Temporal: running drills and game days, their live status, schedules.

The same visibility queries and ``status`` queries as ``gameday status`` / ``list --temporal`` (``cli/runs.py``),
each query bounded so a page never waits on a worker that is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, ScheduleListActionStartWorkflow

from gameday.model.gameday import GameDayStatus
from gameday.model.records import DrillStatus, FaultState, Phase

QUERY_TIMEOUT = timedelta(seconds=3)


@dataclass
class LiveRun:
    run_id: str
    kind: str  # "drill" or "game day"
    drill: str
    team: str
    started_at: datetime
    phase: str = "?"
    faults: list[str] = field(default_factory=list)
    under_fault: float | None = None
    """Seconds since the first fault still in place was applied."""
    figures: list[str] = field(default_factory=list)
    stop: str = ""
    awaiting_approval: bool = False
    problem: str = ""


async def running(client: Client, task_queue: str) -> list[LiveRun]:
    """Every running drill and game day of this task queue, newest first, with its live status."""
    from gameday.workflows import search

    query = (
        'WorkflowType IN ("DrillWorkflow", "GameDayWorkflow") AND ExecutionStatus = "Running" '
        f'AND TaskQueue = "{task_queue}"'
    )
    runs = []
    async for execution in client.list_workflows(query, limit=200):
        attrs = execution.typed_search_attributes
        runs.append(
            LiveRun(
                run_id=execution.id,
                kind="game day" if execution.workflow_type == "GameDayWorkflow" else "drill",
                drill=attrs.get(search.DRILL_NAME) or "-",
                team=attrs.get(search.TEAM) or "-",
                started_at=execution.start_time,
            )
        )
    await asyncio.gather(*(_fill(client, run) for run in runs))
    runs.sort(key=lambda r: r.started_at, reverse=True)
    return runs


async def _fill(client: Client, run: LiveRun) -> None:
    handle = client.get_workflow_handle(run.run_id)
    try:
        if run.kind == "game day":
            gd: GameDayStatus = await handle.query("status", result_type=GameDayStatus, rpc_timeout=QUERY_TIMEOUT)
            run.awaiting_approval = gd.awaiting_approval
            run.phase = "awaiting approval" if gd.awaiting_approval else "running"
            run.figures = [f"drill {r.run_id}" for r in gd.running]
            return
        status: DrillStatus = await handle.query("status", result_type=DrillStatus, rpc_timeout=QUERY_TIMEOUT)
    except Exception as err:  # no worker answering: say so, the row stays
        run.problem = f"no status ({type(err).__name__}): is a worker up?"
        return
    run.phase = status.phase.value
    run.awaiting_approval = status.phase == Phase.APPROVAL
    run.faults = list(status.faults_active)
    applied = [f.applied_at for f in status.faults if f.applied_at is not None and f.state == FaultState.APPLIED]
    if applied:
        run.under_fault = (datetime.now(UTC) - min(applied)).total_seconds()
    for m in status.last_measurements:
        p95 = f", p95 {m.latency_p95 * 1000:.0f}ms" if m.latency_p95 is not None else ""
        run.figures.append(
            f"{m.probe} ({m.phase.value}): {'ok' if m.ok else 'FAILING'}, {m.failures}/{m.samples} failed{p95}"
        )
    if status.stop is not None:
        run.stop = f"stop requested by {status.stop.by}: {status.stop.reason}"
    await _traffic(client, run)


async def _traffic(client: Client, run: LiveRun) -> None:
    from gameday.cli.runs import live_traffic, traffic_activity
    from gameday.report.run import render_traffic_live

    try:
        desc = await client.get_workflow_handle(run.run_id).describe()
        pending = traffic_activity(desc)
        summary = await live_traffic(client, pending) if pending is not None else None
    except Exception:
        return
    if summary is not None:
        run.figures.extend(render_traffic_live(summary))


@dataclass
class ScheduleRow:
    schedule_id: str
    drill: str
    cron: str
    zone: str
    paused: bool
    note: str
    blackouts: list[str]
    next_runs: list[tuple[datetime, bool]]
    """Next firing times, each with whether a blackout window skips it."""


async def schedules(client: Client) -> list[ScheduleRow]:
    """The drill schedules, as ``gameday schedule list`` shows them; next runs include blacked-out ones, marked."""
    from gameday.activities import schedule_times
    from gameday.cli.schedules import DRILL_WORKFLOW

    ids = []
    async for entry in await client.list_schedules():
        sched = entry.schedule
        if sched is None or not isinstance(sched.action, ScheduleListActionStartWorkflow):
            continue
        if sched.action.workflow == DRILL_WORKFLOW:
            ids.append(entry.id)
    # Each described: the listing is visibility, which lags a pause or resume by up to a second or so, and the
    # page shown right after pressing Pause must say paused.
    found = await asyncio.gather(*(client.get_schedule_handle(i).describe() for i in ids), return_exceptions=True)
    rows = []
    for schedule_id, desc in zip(ids, found, strict=True):
        if isinstance(desc, BaseException):  # deleted between the listing and now
            continue
        memo: Mapping[str, Any] = await desc.memo()
        spec, state = desc.schedule.spec, desc.schedule.state
        blackouts = [str(b) for b in memo.get("blackouts", [])]
        upcoming = schedule_times.upcoming(spec, blackouts, datetime.now(UTC), 6)
        rows.append(
            ScheduleRow(
                schedule_id=schedule_id,
                drill=str(memo.get("drill", "?")),
                cron=str(memo.get("cron", "calendar")),
                zone=spec.time_zone_name or "UTC",
                paused=state.paused,
                note=state.note or "",
                blackouts=blackouts,
                next_runs=[(u.at, bool(u.blackout)) for u in upcoming],
            )
        )
    rows.sort(key=lambda r: r.schedule_id)
    return rows
