"""Start a drill workflow and follow it live: shared by ``gameday run`` and ``gameday demo``."""

from __future__ import annotations

import asyncio
import getpass
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle
    from temporalio.common import TypedSearchAttributes

    from worker.config import GamedayConfig
    from workflows.drill import Drill
    from workflows.drill_workflow import DrillWorkflow
    from workflows.records import DrillStatus, RunRecord

STATUS_STYLE = {"ok": "green", "failed": "red", "interrupted": "yellow", "skipped": "dim"}
VERDICT_STYLE = {
    "RESILIENT": "bold green",
    "DEVIATED": "bold yellow",
    "NOT_STEADY": "bold yellow",
    "ABORTED": "bold magenta",
    "NOT_RECOVERED": "bold red",
    "ERROR": "bold red",
}


def new_run_id(drill_name: str, now: datetime | None = None) -> str:
    """A run id a person recognises: ``drill-<name>-<UTC timestamp>``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"drill-{drill_name}-{stamp}"


async def start(
    client: Client, config: GamedayConfig, drill: Drill, *, source: str, run_id: str | None
) -> WorkflowHandle[DrillWorkflow, RunRecord]:
    from temporalio.common import WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError
    from temporalio.service import RPCError

    from workflows.drill_workflow import DrillWorkflow
    from workflows.errors import GamedayError
    from workflows.records import DrillInput

    base = run_id or new_run_id(drill.name)
    attributes: TypedSearchAttributes | None = _search_attributes(drill, config)
    for attempt in range(1, 20):
        candidate = base if attempt == 1 else f"{base}-{attempt}"
        try:
            return await client.start_workflow(
                DrillWorkflow.run,
                DrillInput(run_id=candidate, drill=drill, source=source, started_by=current_user()),
                id=candidate,
                task_queue=config.task_queue,
                # The run id is the results database's key: reusing a finished run's id would overwrite its record.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"drill {drill.name}" + (f" ({drill.team})" if drill.team else ""),
                static_details=_details(drill, source),
                memo={"drill": drill.name, "team": drill.team},  # lets `gameday stop --all --team` choose
                search_attributes=attributes,
            )
        except WorkflowAlreadyStartedError as err:
            if run_id:
                raise GamedayError(f"run id {run_id!r} is already used: choose another --id") from err
        except RPCError as err:
            if attributes is None or "search attribute" not in err.message.lower():
                raise
            # A cluster without gameday's attributes registered: run the drill anyway, and say how to add them.
            attributes = None
            _warn_no_attributes(err.message)
    raise RuntimeError(f"could not find a free run id near {base}")


async def warn_if_no_worker(client: Client, queue: str, drill: Drill) -> bool:
    """Say at once when no worker polls the queue the drill was started on; returns whether none does."""
    from cli.pollers import no_worker
    from workflows.units import format_duration

    silent = await no_worker(client, queue)
    if silent is not None:
        Console(stderr=True).print(
            f"[yellow]warning:[/] {escape(silent)}: the drill waits for a worker (start one: gameday worker); if none "
            f"picks it up within {format_duration(drill.start_deadline)} it ends ABORTED, touching nothing",
        )
    return silent is not None


async def picked_up_in_time(
    handle: WorkflowHandle[DrillWorkflow, RunRecord], submitted: float, drill: Drill, out: Console
) -> bool:
    """``run --wait`` with no worker: wait out the start deadline for one, rather than hang with no word.

    Past the deadline with no worker having looked, the verdict is certain (the drill ends ABORTED, touching
    nothing, the moment a worker picks it up), so the command ends with it.
    """
    from cli.pollers import started_within
    from workflows.units import format_duration

    deadline = drill.start_deadline.total_seconds()
    out.print(f"waiting up to {format_duration(drill.start_deadline)} for a worker to pick up {escape(handle.id)}…")
    # A little past the deadline: the drill's own check uses the server's clock, which started first.
    if await started_within(handle, submitted + deadline + 2.0):
        return True
    out.print(
        f"[{VERDICT_STYLE['ABORTED']}]ABORTED[/]: no worker picked it up within "
        f"{format_duration(drill.start_deadline)}: nothing was touched; the run records itself ABORTED when a "
        "worker polls its task queue"
    )
    return False


def _search_attributes(drill: Drill, config: GamedayConfig) -> TypedSearchAttributes:
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    from workflows import search

    return TypedSearchAttributes(
        [
            SearchAttributePair(search.DRILL_NAME, drill.name),
            SearchAttributePair(search.TEAM, drill.team or "-"),
            SearchAttributePair(search.ENVIRONMENT, config.environment),
        ]
    )


def _warn_no_attributes(message: str) -> None:
    Console(stderr=True).print(
        f"[yellow]note:[/] started without search attributes ({escape(message)}); register them for the Web UI "
        "and `gameday list --temporal`: see workflows/search.py",
    )


def _details(drill: Drill, source: str) -> str:
    """The Web UI's details of the run, in Markdown: what it touches and breaks, from where."""
    lines = [drill.description] if drill.description else []
    lines.append(f"**targets:** {', '.join(f'{n} ({t.kind.value})' for n, t in drill.targets.items()) or 'none'}")
    lines.append(f"**faults:** {', '.join(f.label for f in drill.faults) or 'none'}")
    if source:
        lines.append(f"**file:** `{source}`")
    return "\n\n".join(lines)


async def follow(handle: WorkflowHandle[DrillWorkflow, RunRecord], out: Console, poll: float = 0.25) -> RunRecord:
    """Print each phase as it completes, then return the final record."""
    from temporalio.client import WorkflowQueryFailedError

    from workflows.records import DrillStatus

    shown = 0
    result = asyncio.ensure_future(handle.result())
    while not result.done():
        try:
            status: DrillStatus = await handle.query("status", result_type=DrillStatus)
        except WorkflowQueryFailedError:
            status = None  # type: ignore[assignment]
        except Exception:
            status = None  # type: ignore[assignment]
        if status is not None:
            shown = _print_steps(out, status, shown)
        await asyncio.wait([result], timeout=poll)
    record = result.result()
    _print_steps_of(out, record, shown)
    return record


def _print_steps(out: Console, status: DrillStatus, shown: int) -> int:
    for step in status.steps[shown:]:
        style = STATUS_STYLE.get(step.status.value, "")
        seconds = f"{step.seconds:.2f}s" if step.seconds is not None else ""
        out.print(f"  [{style}]{step.phase.value:<9}[/] {step.status.value:<11} {seconds:>8}  {escape(step.detail)}")
    return len(status.steps)


def _print_steps_of(out: Console, record: RunRecord, shown: int) -> None:
    from workflows.records import DrillStatus

    _print_steps(
        out,
        DrillStatus(
            run_id=record.run_id, phase=record.phase, faults_active=[], last_measurements=[], steps=record.steps
        ),
        shown,
    )


def verdict_line(record: RunRecord) -> str:
    verdict = record.verdict.value if record.verdict else "UNKNOWN"
    return f"[{VERDICT_STYLE.get(verdict, 'bold')}]{verdict}[/]: {escape(record.summary)}"


def contract_json(run_id: str, record: RunRecord | None, ui_url: str, started_at: datetime | None = None) -> str:
    """The one-line JSON object CI pipelines read from ``gameday run --json``."""
    payload: dict[str, object] = {
        "run_id": run_id,
        "verdict": record.verdict.value if record and record.verdict else None,
        "started_at": (record.started_at if record else started_at or datetime.now(UTC)).isoformat(),
        "ended_at": record.ended_at.isoformat() if record and record.ended_at else None,
        "ui_url": ui_url,
    }
    if record is not None:
        payload["summary"] = record.summary
        payload["time_to_recovery"] = record.time_to_recovery
        payload["time_to_safe"] = record.time_to_safe
        payload["not_reverted"] = [f.label for f in record.faults if f.state.value == "not_reverted"]
    return json.dumps(payload)


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
