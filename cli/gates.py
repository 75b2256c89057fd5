"""Go/no-go and holding a drill: ``approve``, ``pause`` and ``resume`` (signals to the running drill)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from gameday.cli.context import console, run_async, settings_of


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

    Without an approval within its timeout the drill ends ABORTED with nothing injected.

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
    """Continue a paused drill at the step where it was held."""
    _send(ctx, run_id, "resume", by, note, "resumed")


def _send(ctx: typer.Context, run_id: str, signal: str, by: str | None, note: str, done: str) -> None:
    settings = settings_of(ctx)

    async def go() -> None:
        from gameday.cli.launch import current_user
        from gameday.cli.runs import client_for, running_handle

        client = await client_for(settings)
        handle = await running_handle(client, settings, run_id)
        if signal == "resume":
            from gameday.cli.gate_pause import refuse_gameday

            await refuse_gameday(client, handle, signal)
        await handle.signal(signal, {"by": by or current_user(), "note": note})
        console.print(f"{done} [bold]{escape(run_id)}[/]")

    run_async(settings, go())
