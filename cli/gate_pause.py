"""``gameday pause``: never "pause requested" for a pause that cannot hold the drill.

The pause goes through DrillWorkflow's ``request_pause`` update, answered by the workflow itself: when the pause
takes effect (its next pause point), or a refusal once the observation has started (no pause point left). A game
day is not paused as a whole: its running drills are named instead.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from gameday.cli.context import Settings, console, fail

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

GAMEDAY_WORKFLOW = "GameDayWorkflow"
ANSWER_TIMEOUT = timedelta(seconds=15)
"""How long ``pause`` waits for the worker's answer (milliseconds when one is up)."""


async def request_pause(settings: Settings, run_id: str, by: str | None, note: str) -> None:
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.exceptions import ApplicationError
    from temporalio.service import RPCError

    from gameday.cli.launch import current_user
    from gameday.cli.pollers import no_worker
    from gameday.cli.runs import client_for, running_handle

    client = await client_for(settings)
    handle = await running_handle(client, settings, run_id, "pause")
    queue = await refuse_gameday(client, handle, "pause")
    silent = await no_worker(client, queue)
    if silent is not None:
        fail(f"{run_id}: {silent}: only a running worker can say when a pause takes effect; nothing was paused")
    request = {"by": by or current_user(), "note": note}
    try:
        answer: str = await handle.execute_update("request_pause", request, result_type=str, rpc_timeout=ANSWER_TIMEOUT)
    except WorkflowUpdateFailedError as err:
        why = err.cause.message if isinstance(err.cause, ApplicationError) else str(err.cause or err)
        fail(
            f"pause refused: {run_id}: {why}; a pause can no longer take effect. To end it early, rolling back "
            f'every fault: gameday stop {run_id} --reason "…"'
        )
    except RPCError as err:
        fail(f"{run_id}: no worker answered the pause ({err.message}): nothing was paused")
    run = escape(run_id)
    if answer == "already paused":
        console.print(f"[bold]{run}[/] is already paused: [bold]gameday resume {run}[/] continues it")
        return
    console.print(f"pause accepted: [bold]{run}[/] {escape(answer)}; [bold]gameday resume {run}[/] continues it")


async def refuse_gameday(client: Client, handle: WorkflowHandle[Any, Any], command: str) -> str:
    """Fail, naming its running drills, when ``handle`` is a game day; else return the run's task queue."""
    desc = await handle.describe()
    if desc.workflow_type != GAMEDAY_WORKFLOW:
        return desc.task_queue
    from gameday.model.gameday import GameDayStatus

    try:
        status: GameDayStatus | None = await handle.query(
            "status", result_type=GameDayStatus, rpc_timeout=timedelta(seconds=10)
        )
    except Exception:  # no worker to answer: the refusal stands without the list
        status = None
    running = [r.run_id for r in status.running] if status is not None else []
    which = f"its running drill(s): {', '.join(running)}" if running else "no drill of it is running now"
    fail(f"{handle.id} is a game day: {command} acts on one drill (gameday {command} RUN_ID); {which}")
