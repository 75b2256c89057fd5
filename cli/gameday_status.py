"""``gameday status GAMEDAY_ID``: a game day live from its workflow, else its record from the results database."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from gameday.cli.context import Settings, console, err_console, fail

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle

    from gameday.model.gameday import GameDayRecord, GameDayStatus

GAMEDAY_WORKFLOW = "GameDayWorkflow"
QUERY_TIMEOUT = timedelta(seconds=10)


async def print_gameday(
    settings: Settings, client: Client, handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription
) -> None:
    """A game day as Temporal has it: live while it runs, its record once it has ended."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError

    from gameday.cli.pollers import no_worker
    from gameday.model.gameday import GameDayRecord, GameDayStatus

    gameday_id = handle.id
    if desc.status == WorkflowExecutionStatus.RUNNING:
        silent = await no_worker(client, desc.task_queue)
        if silent is not None:
            fail(f"game day {gameday_id} is running but {silent}: nothing happens to it until a worker polls")
        try:
            status: GameDayStatus | None = await handle.query(
                "status", result_type=GameDayStatus, rpc_timeout=QUERY_TIMEOUT
            )
        except RPCError as err:
            fail(f"game day {gameday_id} is running but no worker answered its status query ({err.message})")
        if status is None:
            console.print(f"game day {gameday_id}: started, not picked up by a worker yet", markup=False)
            return
        await _print_live(client, status)
        return
    record = stored_gameday(settings, gameday_id)
    if record is None and desc.status == WorkflowExecutionStatus.COMPLETED:
        record = GameDayRecord.model_validate(await handle.result(rpc_timeout=QUERY_TIMEOUT))
        err_console.print(f"note: {gameday_id} is not in the results database (yet): from Temporal", markup=False)
    if record is None:
        name = desc.status.name if desc.status else "closed"
        fail(f"game day {gameday_id} ended {name} without a record (see the Web UI: {settings.config.ui_url})")
    print_record(record)


def print_record(record: GameDayRecord) -> None:
    from gameday.cli.gamedays import report_lines
    from gameday.model.gameday import gameday_verdict

    lines = report_lines(record)
    ended = f"; verdict {gameday_verdict(record).value}" if record.outcome else ""  # none invented while it runs
    console.print(f"{lines[0]}{ended}", markup=False)
    for line in lines[1:]:
        console.print(line, markup=False)


async def _print_live(client: Client, status: GameDayStatus) -> None:
    from gameday.cli.gamedays import report_lines
    from gameday.model.records import DrillStatus

    record = status.record
    gameday_id = escape(record.gameday_id)
    if status.awaiting_approval:
        state = f"waiting for approval: [bold]gameday approve {gameday_id}[/]"
    elif record.stop is not None:
        state = "stopping: its running drills roll back, the rest are skipped"
    else:
        state = f"running, {len(record.entries)} drill(s) done"
    console.print(f"[bold]{gameday_id}[/]  game day {escape(record.name)}: {state}")
    for line in report_lines(record)[1:]:
        console.print(line, markup=False)
    for running in status.running:
        try:
            drill: DrillStatus = await client.get_workflow_handle(running.run_id).query(
                "status", result_type=DrillStatus, rpc_timeout=QUERY_TIMEOUT
            )
            phase = f"phase {drill.phase.value}"
        except Exception:  # just started or just ended: its id is what matters here
            phase = "starting"
        console.print(
            f"  {running.stage + 1}. {running.drill_name:<24} running: {phase:<16} {running.run_id}", markup=False
        )
    if status.running:
        console.print(f"  each running drill in detail: gameday status {status.running[0].run_id}", markup=False)


def stored_gameday(settings: Settings, gameday_id: str) -> GameDayRecord | None:
    """The game day's record in the results database (``gamedays``); ``None`` if absent or unreachable."""
    from sqlalchemy.exc import DBAPIError

    from gameday.activities.gameday_store import GameDays
    from gameday.activities.migrations import SchemaError
    from gameday.activities.store import Store

    try:
        return GameDays(Store(settings.config.resolved_database_url)).get(gameday_id)
    except SchemaError as err:
        fail(str(err))
    except DBAPIError:
        return None  # the drill lookup before this one has already said the database cannot be reached
