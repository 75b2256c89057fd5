"""The ``gameday`` command: one typer app joining one sub-module per command group.

Imports of Temporal, SQL and HTTP libraries happen inside the commands, so that ``gameday stop`` starts fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from gameday.cli import (
    console,
    db,
    drills,
    experiments,
    freeze,
    gates,
    history,
    runs,
    schedules,
    servers,
    slack,
    workers,
)
from gameday.cli.command import GamedayTyper
from gameday.cli.context import Settings

app = GamedayTyper(
    name="gameday",
    help="Durable chaos-engineering game days on Temporal: check, break, watch, always put back, record.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
drills.register(app)
runs.register(app)
history.register(app)
servers.register(app)
db.register(app)
schedules.register(app)
gates.register(app)
freeze.register(app)
workers.register(app)
experiments.register(app)
slack.register(app)
console.register(app)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed

        try:
            typer.echo(f"gameday {installed('gameday')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("gameday (not installed)")
        raise typer.Exit()


@app.callback()
def settings(
    ctx: typer.Context,
    address: Annotated[
        str | None,
        typer.Option(envvar="GAMEDAY_TEMPORAL_ADDRESS", help="Temporal frontend host:port (default: 127.0.0.1:7233)."),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option(envvar="GAMEDAY_NAMESPACE", help="Temporal namespace (default: default).")
    ] = None,
    task_queue: Annotated[
        str | None, typer.Option(envvar="GAMEDAY_TASK_QUEUE", help="Task queue of the workers (default: gameday).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(envvar="GAMEDAY_DATA_DIR", help="Where SQLite results and the dev server's database live."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="GAMEDAY_DATABASE_URL",
            help="SQLAlchemy URL of the results database (default: SQLite in the data dir).",
            show_envvar=True,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print gameday's version and exit.", is_eager=True, callback=_print_version),
    ] = False,
) -> None:
    """Configuration comes from GAMEDAY_* environment variables; these options override them."""
    ctx.obj = Settings.build(
        address=address,
        namespace=namespace,
        task_queue=task_queue,
        data_dir=data_dir,
        database_url=database_url,
        debug=debug,
    )


def main() -> None:
    """Run the app, then end the process without interpreter finalization.

    Temporal's Rust core keeps native threads that may still take the GIL while Python finalizes, which aborts the
    process (SIGABRT, "PyGILState_Release: thread state must be current", temporalio/sdk-python#300) after a command
    or a worker ended cleanly, turning its exit code into 134. By now ``asyncio.run`` has returned and the dev server
    is stopped: only the output needs flushing.
    """
    try:
        app()
    except SystemExit as end:
        code = end.code if isinstance(end.code, int) else int(end.code is not None)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    else:
        code = 0
    logging.shutdown()
    with contextlib.suppress(OSError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
