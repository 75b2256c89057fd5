"""Go/no-go and holding a drill: ``approve``, ``pause`` and ``resume`` (signals to the running drill)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from gameday.cli.context import console, fail, run_async, settings_of

if TYPE_CHECKING:
    from temporalio.client import WorkflowHandle


def register(app: typer.Typer) -> None:
    app.command()(approve)
    app.command()(pause)
    app.command()(resume)


_RUN = typer.Argument(help="The running drill's id.")
_BY = typer.Option(help="Who (default: your user name).")
_NOTE = typer.Option("--note", "-n", help="Why: stored in the drill log.")


def approve(
    ctx: typer.Context,
    run_id: Annotated[str, _RUN],
    by: Annotated[str | None, _BY] = None,
    note: Annotated[str, _NOTE] = "",
) -> None:
    """Give a drill waiting at its go/no-go gate (`approval:` in the file) the go: it injects its faults.

    Without an approval within its timeout the drill ends ABORTED with nothing injected. A run not waiting at
    its gate is refused (exit 1), saying what it is doing: nothing is sent.

    Example: gameday approve drill-db-failover-20261124T140000Z --note "on-call agrees, traffic is low"
    """
    _send(ctx, run_id, "approve", by, note, "approved")


def pause(
    ctx: typer.Context,
    run_id: Annotated[str, _RUN],
    by: Annotated[str | None, _BY] = None,
    note: Annotated[str, _NOTE] = "",
) -> None:
    """Hold a drill at its next phase boundary before the observation; `gameday resume` continues it.

    Its faults stay in place, or are reverted and applied again on resume, as the file's `pause: {faults:}`
    says. Rollback is never paused, and max_duration keeps counting: a pause cannot hold a fault longer.
    Says when the pause takes effect; once the observation has started a pause could never hold the drill, so it
    is refused (exit 1): `gameday stop` ends the drill early. Needs a running worker to answer.
    """
    settings = settings_of(ctx)

    async def go() -> None:
        from gameday.cli.gate_pause import request_pause

        await request_pause(settings, run_id, by, note)

    run_async(settings, go())


def resume(
    ctx: typer.Context,
    run_id: Annotated[str, _RUN],
    by: Annotated[str | None, _BY] = None,
    note: Annotated[str, _NOTE] = "",
) -> None:
    """Continue a paused drill at the step where it was held.

    A drill that is not paused is refused (exit 1), saying what it is doing: nothing is sent.
    """
    _send(ctx, run_id, "resume", by, note, "resumed")


def _send(ctx: typer.Context, run_id: str, signal: str, by: str | None, note: str, done: str) -> None:
    settings = settings_of(ctx)

    async def go() -> None:
        from gameday.cli.launch import current_user
        from gameday.cli.runs import client_for, running_handle

        client = await client_for(settings)
        handle = await running_handle(client, settings, run_id, signal)
        if signal == "resume":
            from gameday.cli.gate_pause import refuse_gameday

            await refuse_gameday(client, handle, signal)
        await _refuse_a_no_op(handle, signal)
        await handle.signal(signal, {"by": by or current_user(), "note": note})
        now = await _acted_on(handle, signal)
        console.print(f"{done} [bold]{escape(run_id)}[/]{escape(now)}")

    run_async(settings, go())


ACT_WAIT = 10.0
"""Seconds ``approve``/``resume`` wait for the worker to act on the signal, so the next command sees its effect."""


async def _acted_on(handle: WorkflowHandle[Any, Any], signal: str) -> str:
    """What the run does once the worker has taken the signal (``": now in phase inject"``), waiting at most
    :data:`ACT_WAIT`; says so when it has not yet: the signal is recorded either way."""
    import asyncio

    from gameday.cli.gate_pause import GAMEDAY_WORKFLOW
    from gameday.model.gameday import GameDayStatus
    from gameday.model.records import DrillStatus, Phase

    gameday = (await handle.describe()).workflow_type == GAMEDAY_WORKFLOW
    waiting = Phase.APPROVAL if signal == "approve" else Phase.PAUSED
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ACT_WAIT
    while True:
        try:
            status = await handle.query(
                "status", result_type=GameDayStatus if gameday else DrillStatus, rpc_timeout=timedelta(seconds=5)
            )
        except Exception:  # the run ended meanwhile, or no worker answers: the signal is recorded all the same
            return ""
        if isinstance(status, GameDayStatus) and not status.awaiting_approval:
            return ": its drills start"
        if isinstance(status, DrillStatus) and status.phase != waiting:
            return f": now in phase {status.phase.value}"
        if loop.time() >= deadline:
            return f" (recorded; the worker has not acted on it within {ACT_WAIT:g}s)"
        await asyncio.sleep(0.2)


GATE_WAIT = 60.0
"""Seconds ``approve`` waits for a run still starting (pending, preflight) to reach its gate, or pass it by."""


async def _refuse_a_no_op(handle: WorkflowHandle[Any, Any], signal: str) -> None:
    """Fail (exit 1), saying what the run is doing, unless it waits at its gate (``approve``) or is paused
    (``resume``): an "approved" or "resumed" that changes nothing would be untrue.

    ``approve`` of a run still before its gate (pending, preflight) waits up to :data:`GATE_WAIT` for the gate,
    saying so: the tour approves right after it starts the drill.
    """
    import asyncio

    from temporalio.service import RPCError

    from gameday.cli.gate_pause import GAMEDAY_WORKFLOW
    from gameday.model.gameday import GameDayStatus
    from gameday.model.records import DrillStatus, Phase

    run_id = handle.id
    gameday = (await handle.describe()).workflow_type == GAMEDAY_WORKFLOW
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GATE_WAIT
    said = False
    while True:
        try:
            status = await handle.query(
                "status", result_type=GameDayStatus if gameday else DrillStatus, rpc_timeout=timedelta(seconds=10)
            )
        except RPCError as err:
            fail(
                f"{run_id}: no worker answered its status ({err.message}), so whether it waits for {signal} is "
                f"unknown: nothing was sent; start a worker (gameday worker) and try again"
            )
        if isinstance(status, GameDayStatus):
            starting = not (
                status.awaiting_approval or status.record.entries or status.running or status.record.outcome
            )
        else:
            starting = status is None or (
                status.phase in (Phase.PENDING, Phase.PREFLIGHT) and status.stop is None and signal == "approve"
            )
        if status is None or not starting or loop.time() >= deadline or signal != "approve":
            break
        if not said:
            console.print(f"waiting for {escape(run_id)} to reach its go/no-go gate…")
            said = True
        await asyncio.sleep(0.3)
    if status is None:
        fail(f"{run_id} has not been picked up by a worker yet: nothing was sent")
    if isinstance(status, GameDayStatus):
        if status.awaiting_approval:
            return
        running = [r.run_id for r in status.running]
        doing = f"its drill(s) {', '.join(running)} are running" if running else "it is between drills"
        if starting:
            doing = "it has not reached its gate yet"
        fail(
            f"{run_id} is not waiting for approval: {doing}; nothing was approved "
            "(a drill of it waiting at its own gate: gameday approve RUN_ID)"
        )
    assert isinstance(status, DrillStatus)
    wanted = Phase.APPROVAL if signal == "approve" else Phase.PAUSED
    if status.phase == wanted:
        return
    doing = f"it is in phase {status.phase.value}"
    if starting:
        doing += f" after {GATE_WAIT:g}s"
    if status.stop is not None:
        doing += f", being stopped ({status.stop.reason})"
    if signal == "approve":
        fail(f"{run_id} is not waiting at a go/no-go gate: {doing}; nothing was approved")
    fail(f"{run_id} is not paused: {doing}; nothing was resumed")
