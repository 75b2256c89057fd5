"""The ``gameday`` command: one typer app joining one sub-module per command group.

Imports of Temporal, SQL and HTTP libraries happen inside the commands, so that ``gameday stop`` starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import drills, runs, servers
from cli.context import Settings

app = typer.Typer(
    name="gameday",
    help="Durable chaos-engineering game days on Temporal: check, break, watch, always put back, record.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
drills.register(app)
runs.register(app)
servers.register(app)


@app.callback()
def settings(
    ctx: typer.Context,
    address: Annotated[
        str | None,
        typer.Option(envvar="GAMEDAY_TEMPORAL_ADDRESS", help="Temporal frontend host:port [default: 127.0.0.1:7233]."),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option(envvar="GAMEDAY_NAMESPACE", help="Temporal namespace [default: default].")
    ] = None,
    task_queue: Annotated[
        str | None, typer.Option(envvar="GAMEDAY_TASK_QUEUE", help="Task queue of the workers [default: gameday].")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(envvar="GAMEDAY_DATA_DIR", help="Where SQLite results and the dev server's database live."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="GAMEDAY_DATABASE_URL",
            help="SQLAlchemy URL of the results database [default: SQLite in the data dir].",
            show_envvar=True,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
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
    app()
