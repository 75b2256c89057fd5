"""Schema migrations of the results database (Alembic): which revision a database is at, and how it gets to head.

Who upgrades, and when:

* **SQLite** (one person's file, made by whatever command ran first): :class:`~activities.store.Store` upgrades it
  on first use. Nobody ran a command to create it, so nobody should have to run one to upgrade it.
* **Any other database** (PostgreSQL shared by a team): only ``gameday db upgrade`` changes the schema. Workers
  of two versions may share it during a rollout, the DDL may need rights the workers do not have, and a schema
  change on a team's database is a step someone decides on. A worker or command that finds the schema behind
  raises :class:`SchemaOutOfDate`, which names that command; the ``record_run`` activity turns it into a
  retryable error, so a run's record waits in Temporal until someone upgrades.

A database made before migrations existed (by ``create_all``: the same tables, no ``alembic_version``) is
adopted by the initial revision, which creates only the tables it lacks (see ``versions/0001_initial.py``).

Upgrades are serialized: PostgreSQL takes a transaction-scoped advisory lock, SQLite a ``BEGIN IMMEDIATE``
write lock, so two workers starting at once, or two people running ``gameday db upgrade``, migrate once.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, func, select
from sqlalchemy.exc import OperationalError

from gameday.activities import tables
from gameday.model.errors import GamedayError

UPGRADE_COMMAND = "gameday db upgrade"
"""What a person runs to bring a shared results database to the code's schema."""

_HERE = Path(__file__).parent
UPGRADE_LOCK_WAIT = 120.0
"""Seconds a SQLite upgrade waits for another process's upgrade to finish."""
_PG_LOCK_KEY = 0x67616D65  # "game": any constant shared by every gameday process; only gameday uses it


class SchemaError(GamedayError):
    """The results database's schema is not the one this gameday was written for."""


class SchemaOutOfDate(SchemaError):
    """The database is behind this gameday's migrations (or has none yet): ``gameday db upgrade`` fixes it."""


class SchemaTooNew(SchemaError):
    """The database was upgraded by a newer gameday: this one must be upgraded, not the database."""


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema is, compared with this gameday's migrations.

    Attributes:
        current: the revision recorded in the database's ``alembic_version``; ``None`` before any migration.
        head: the newest revision this gameday ships.
        known: ``current`` is one of this gameday's revisions (or ``None``); false when a newer gameday wrote it.
    """

    current: str | None
    head: str
    known: bool

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        """One line for a person: where the schema is and, when it is not at head, what to do."""
        at = self.current or "none (no migrations applied)"
        if self.up_to_date:
            return f"schema revision {at}: up to date"
        if not self.known:
            return (
                f"schema revision {at} is newer than this gameday knows (its newest is {self.head}): "
                "upgrade gameday on this machine"
            )
        return f"schema revision {at}, this gameday needs {self.head}: run `{UPGRADE_COMMAND}`"

    def error(self) -> SchemaError:
        """The error to raise when a database in this state is used."""
        kind = SchemaOutOfDate if self.known else SchemaTooNew
        return kind(f"results database {self.describe()}")


def alembic_config() -> Config:
    """An Alembic configuration pointing at this package; no ``alembic.ini`` is needed at run time."""
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision this gameday ships."""
    found = _scripts().get_current_head()
    assert found is not None, "activities/migrations/versions holds no revision"
    return found


def status(engine: Engine) -> SchemaStatus:
    """Read the database's revision (one SELECT; nothing is written)."""
    with engine.connect() as connection:
        return _status(connection)


def check(engine: Engine) -> None:
    """Raise :class:`SchemaOutOfDate` or :class:`SchemaTooNew` unless the database is at head."""
    found = status(engine)
    if not found.up_to_date:
        raise found.error()


def upgrade(engine: Engine) -> tuple[SchemaStatus, SchemaStatus]:
    """Bring the database to head under a lock; returns the status before and after.

    Raises:
        SchemaTooNew: a newer gameday migrated this database; nothing is changed.
        sqlalchemy.exc.DBAPIError: the database is unreachable or refused the DDL.
    """
    with engine.connect() as connection:
        _lock(connection)
        before = _status(connection)  # read under the lock: another process may just have migrated
        if not before.known:
            connection.rollback()
            raise before.error()
        if not before.up_to_date:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        after = _status(connection)
        connection.commit()
    return before, after


def gameday_metadata() -> MetaData:
    """The tables gameday's models define, the target the migrations must match (and autogenerate compares with)."""
    models = (
        tables.RunRow,
        tables.PhaseRow,
        tables.FaultRow,
        tables.ProbeRow,
        tables.TrafficRunRow,
        tables.TrafficWindowRow,
        tables.LedgerRow,
        tables.LockRow,
        tables.GameDayRow,
    )
    metadata = MetaData()
    for model in (*models, tables.ObservationRow):
        table = model.metadata.tables[str(model.__tablename__)]
        table.to_metadata(metadata)
    return metadata


def _status(connection: Connection) -> SchemaStatus:
    heads = MigrationContext.configure(connection).get_current_heads()
    # One line of history so far; a second head would mean two branches, which this package never ships.
    current = heads[0] if heads else None
    known = current is None or current in {script.revision for script in _scripts().walk_revisions()}
    return SchemaStatus(current=current, head=head(), known=known)


def _lock(connection: Connection) -> None:
    # Both locks last until the transaction ends, so they are released by commit or rollback, even on a crash.
    dialect = connection.dialect.name
    if dialect == "sqlite":
        # pysqlite opens no transaction before DDL; this one takes SQLite's write lock at once. The busy
        # timeout makes a second process wait for it; a migration running longer than that (a loaded machine)
        # is waited for here, up to UPGRADE_LOCK_WAIT, instead of failing the second one.
        deadline = time.monotonic() + UPGRADE_LOCK_WAIT
        while True:
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as err:
                if "locked" not in str(err.orig) or time.monotonic() > deadline:
                    raise
                connection.rollback()
    elif dialect == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
    else:
        connection.begin()
