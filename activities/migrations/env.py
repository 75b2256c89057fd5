"""Alembic's environment for the results database.

At run time :func:`activities.migrations.upgrade` hands over a connection that is already in a transaction and
holds the migration lock. For a developer writing a revision, the Alembic command line works too::

    GAMEDAY_DATABASE_URL=sqlite:///tmp/dev.db alembic -c activities/migrations/alembic.ini upgrade head
    GAMEDAY_DATABASE_URL=sqlite:///tmp/dev.db alembic -c activities/migrations/alembic.ini \\
        revision --autogenerate -m "what changes"
"""

from __future__ import annotations

import os
from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.types import TypeDecorator

from gameday.activities.migrations import gameday_metadata

config = context.config
target_metadata = gameday_metadata()


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Autogenerate looks at gameday's tables only: a shared database may hold other applications' tables."""
    return type_ != "table" or name in target_metadata.tables


def render_item(type_: str, obj: Any, _context: Any) -> str | Literal[False]:
    """Autogenerate writes gameday's column types (UTCDateTime, sqlmodel's AutoString) as the plain SQLAlchemy
    types they wrap: a revision must not import the models, which will change after it."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters most columns by copying the table
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def url_from_environment() -> str:
    from gameday.config.app import GamedayConfig

    return os.environ.get("GAMEDAY_DATABASE_URL") or GamedayConfig.from_env().resolved_database_url


given = config.attributes.get("connection")
if given is not None:
    run(given)
elif context.is_offline_mode():
    # `alembic ... upgrade head --sql`: the DDL as text, for a DBA to review and apply.
    context.configure(url=url_from_environment(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    from gameday.activities.store import make_engine

    # A developer's own database: no lock needed. make_engine applies gameday's SQLite settings.
    with make_engine(url_from_environment()).connect() as own:
        run(own)
        own.commit()
