"""Commands about the results database: ``db upgrade`` and ``db current``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from gameday.cli.command import GamedayTyper
from gameday.cli.context import console, fail, settings_of

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gameday.cli.context import Settings

app = GamedayTyper(
    name="db",
    help=(
        "The results database's schema (Alembic migrations). A SQLite file is upgraded automatically on first "
        "use; a shared database (PostgreSQL) only by [bold]gameday db upgrade[/], run once per gameday upgrade, "
        "before the new workers start."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="db")


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Bring the results database's schema to this gameday's newest revision. Safe to run again.

    Creates the tables in an empty database, adopts a database made before migrations (keeping its rows), and
    applies the revisions it lacks, all in one transaction where the database allows it. Two runs at once
    migrate once: the second waits for the first. The database is GAMEDAY_DATABASE_URL (or --database-url),
    else the SQLite file in the data dir.
    """
    from gameday.activities import migrations

    settings = settings_of(ctx)
    with _reaching(settings) as engine:
        try:
            before, after = migrations.upgrade(engine)
        except migrations.SchemaTooNew as err:
            fail(str(err))
    label = settings.config.database_label
    if before.current == after.current:
        console.print(f"{label}: already at revision {after.current}, the newest", markup=False)
    else:
        console.print(f"{label}: upgraded from {before.current or 'nothing'} to {after.current}", markup=False)


@app.command()
def current(ctx: typer.Context) -> None:
    """Show the results database's schema revision and this gameday's newest; exit 1 unless they match.

    Reads only: a script can run it to decide whether `gameday db upgrade` is due.
    """
    from gameday.activities import migrations

    settings = settings_of(ctx)
    with _reaching(settings) as engine:
        found = migrations.status(engine)
    console.print(f"{settings.config.database_label}: {found.describe()}", markup=False)
    if not found.up_to_date:
        raise typer.Exit(code=1)


@contextmanager
def _reaching(settings: Settings) -> Iterator[Engine]:
    """An engine for the configured database; a driver error becomes one line, scrubbed of the URL and password."""
    from sqlalchemy.exc import DBAPIError

    from gameday.activities.store import make_engine, redact_url

    url = settings.config.resolved_database_url
    engine = make_engine(url)
    try:
        yield engine
    except DBAPIError as err:
        if settings.debug:
            raise
        reason = " ".join(redact_url(str(err.orig) if err.orig is not None else type(err).__name__, url).split())
        fail(f"results database {settings.config.database_label}: {reason}")
    finally:
        engine.dispose()
