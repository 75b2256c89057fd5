"""The results database: every run, phase, fault and probe measurement as SQL rows (sqlmodel, SQLAlchemy 2).

Saving is an upsert by primary key that never deletes, so the ``record_run`` activity can be retried, or
called again with a more complete record, without duplicating rows. SQLite by default (one laptop),
any SQLAlchemy URL for a team (PostgreSQL). The URL may hold a password: it is never logged, written to the
database or put into an error message.

The schema comes from the Alembic migrations in ``activities/migrations`` (the upgrade policy is written there):
a SQLite file is upgraded on first use, any other database only by ``gameday db upgrade``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, Engine, create_engine, event, func
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import migrations
from activities.migrations import SchemaError
from workflows.records import (
    FaultRecord,
    ProbeResult,
    RunRecord,
    StepRecord,
    StopRequest,
    Verdict,
)

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
"""How long a SQLite writer waits for another (a CLI reading while a worker writes) before giving up."""


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored in UTC and always read back timezone-aware.

    SQLite keeps no offset and returns naive values; PostgreSQL returns the session's zone. Both come back
    as aware UTC, so a record read back equals the record saved. Naive input is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _as_utc(value)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class RunRow(SQLModel, table=True):
    """The header of one run: who, what, when and the verdict."""

    __tablename__ = "runs"

    run_id: str = Field(primary_key=True)
    drill_name: str = Field(index=True)
    team: str = Field(default="", index=True)
    source: str = ""
    started_by: str = ""
    phase: str
    verdict: str | None = Field(default=None, index=True)
    started_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    time_to_recovery: float | None = None
    time_to_safe: float | None = None
    time_to_healthy: float | None = None
    error: str = ""
    summary: str = ""
    stop_reason: str | None = None
    """``None`` when nobody stopped the drill (an empty reason is still a stop)."""
    stop_by: str | None = None
    stop_received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class _RunChild(SQLModel):
    run_id: str = Field(primary_key=True, foreign_key="runs.run_id")


class PhaseRow(_RunChild, table=True):
    __tablename__ = "phases"

    phase: str = Field(primary_key=True)
    status: str
    started_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    detail: str = ""


class FaultRow(_RunChild, table=True):
    __tablename__ = "faults"

    index: int = Field(primary_key=True)
    label: str
    target: str
    kind: str
    action: str
    state: str
    applied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reverted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    changed: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    output: str = ""
    error: str = ""


class ProbeRow(_RunChild, table=True):
    __tablename__ = "probe_results"

    phase: str = Field(primary_key=True)
    probe: str = Field(primary_key=True)
    kind: str
    samples: int
    failures: int
    ok: bool
    latency_p50: float | None = None
    latency_p95: float | None = None
    latency_max: float | None = None
    at: datetime = Field(sa_type=UTCDateTime)
    problems: list[str] = Field(default_factory=list, sa_type=JSON)


_Child = TypeVar("_Child", PhaseRow, FaultRow, ProbeRow)
_TABLES: dict[str, type[RunRow] | type[PhaseRow] | type[FaultRow] | type[ProbeRow]] = {
    "runs": RunRow,
    "phases": PhaseRow,
    "faults": FaultRow,
    "probe_results": ProbeRow,
}


class Store:
    """Reads and writes run records in one SQL database.

    The schema is checked (and for SQLite upgraded) in ``__init__`` when the database answers, else on first
    use: a worker must start, and revert faults, even while the results database is down or behind.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:////var/lib/gameday/gameday.db`` or
            ``postgresql+psycopg://user:secret@db/gameday``.
        auto_upgrade: bring the schema to head on first use. ``None`` (the default) means yes for SQLite and
            no for any other database, which ``gameday db upgrade`` upgrades (see ``activities.migrations``).
    """

    def __init__(self, url: str, *, auto_upgrade: bool | None = None) -> None:
        self._url = url  # kept only to scrub it from driver messages; never logged
        self._engine = make_engine(url)
        self._auto_upgrade = self._engine.dialect.name == "sqlite" if auto_upgrade is None else auto_upgrade
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        self._try_schema()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, schema checked (for the ledger and the target locks).

        Raises:
            SchemaOutOfDate: the database is behind this gameday and is not upgraded automatically.
            SchemaTooNew: a newer gameday migrated the database.
        """
        self._ensure_schema()
        return self._engine

    def ensure_tables(self, *models: type[SQLModel]) -> None:
        """Make sure the schema, which has the tables of ``models`` among gameday's, is ready; retried later if not.

        The tables of every gameday model come from the migrations; a model added without a revision is caught
        by ``tests/activities/test_migrations.py``, which compares the migrated schema with the models.
        """
        self._try_schema()

    def redact(self, text: str) -> str:
        """``text`` with this store's database URL and password replaced by ``***``."""
        return redact_url(text, self._url)

    def save(self, record: RunRecord) -> None:
        """Upserts the run and all its phase, fault and probe rows in one transaction; deletes nothing."""
        self._ensure_schema()
        with Session(self._engine) as session, session.begin():
            run = _run_row(record, updated_at=datetime.now(UTC))
            current = session.get(RunRow, record.run_id)
            if current is not None and current.verdict is not None and record.verdict is None:
                # A progress snapshot whose write was delayed (a cancelled attempt finishing late) must never
                # roll a finished run back to an earlier state.
                return
            if current is None:
                session.add(run)
            else:
                current.sqlmodel_update(run.model_dump())
            # Children reference the run: write it first so a database enforcing foreign keys accepts them.
            session.flush()
            _upsert(session, PhaseRow, record.run_id, record.steps)
            _upsert(session, FaultRow, record.run_id, record.faults)
            _upsert(session, ProbeRow, record.run_id, record.probes)

    def get(self, run_id: str) -> RunRecord | None:
        """The full record of ``run_id`` (steps by start, faults by index, probes by time), or ``None``."""
        self._ensure_schema()
        with Session(self._engine) as session:
            run = session.get(RunRow, run_id)
            if run is None:
                return None
            return _run_record(
                run,
                steps=_children(session, PhaseRow, run_id, col(PhaseRow.started_at), col(PhaseRow.phase)),
                faults=_children(session, FaultRow, run_id, col(FaultRow.index)),
                probes=_children(session, ProbeRow, run_id, col(ProbeRow.at), col(ProbeRow.phase), col(ProbeRow.probe)),
            )

    def list_runs(
        self,
        *,
        team: str | None = None,
        drill: str | None = None,
        verdict: Verdict | str | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        """Run headers, newest first; their steps, faults and probes are left empty.

        Raises:
            ValueError: ``verdict`` names no :class:`Verdict` (a typo must not look like "no runs").
        """
        if verdict is not None and verdict not in set(Verdict):
            raise ValueError(f"unknown verdict {verdict!r}: one of {', '.join(Verdict)}")
        self._ensure_schema()
        query = select(RunRow)
        if team is not None:
            query = query.where(col(RunRow.team) == team)
        if drill is not None:
            query = query.where(col(RunRow.drill_name) == drill)
        if verdict is not None:
            query = query.where(col(RunRow.verdict) == Verdict(verdict).value)
        query = query.order_by(col(RunRow.started_at).desc(), col(RunRow.run_id).desc()).limit(limit)
        with Session(self._engine) as session:
            return [_run_record(run) for run in session.exec(query).all()]

    def counts(self, run_id: str) -> dict[str, int]:
        """Rows per table for ``run_id``: proof that saving again duplicated nothing."""
        self._ensure_schema()
        with Session(self._engine) as session:
            return {
                name: session.exec(select(func.count()).select_from(model).where(col(model.run_id) == run_id)).one()
                for name, model in _TABLES.items()
            }

    def _ensure_schema(self) -> None:
        with self._schema_lock:
            if self._schema_ready:
                return
            # Not cached while behind: a long-lived worker carries on once someone runs `gameday db upgrade`.
            found = migrations.status(self._engine)
            if not found.up_to_date:
                if not (self._auto_upgrade and found.known):
                    raise found.error()
                before, after = migrations.upgrade(self._engine)
                if before.current != after.current:
                    logger.info("results database schema upgraded from %s to %s", before.current, after.current)
            self._schema_ready = True

    def _try_schema(self) -> None:
        try:
            self._ensure_schema()
        except DBAPIError as exc:
            logger.warning("results database not reachable yet (%s); retrying on first use", type(exc).__name__)
        except SchemaError as exc:
            # Logged, not raised: the worker still reverts faults; each use raises it again until fixed.
            logger.error("%s", exc)


def redact_url(text: str, url: str) -> str:
    """``text`` with ``url`` (as given or as SQLAlchemy renders it) and its password replaced by ``***``."""
    parsed = make_url(url)
    secrets = {url, parsed.render_as_string(hide_password=False), parsed.password or ""} - {""}
    # Longest first: scrubbing the password first would leave the rest of the URL unmatched, and readable.
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class StoreActivities:
    """The store's activities, bound to one :class:`Store` (register ``StoreActivities(store).record_run``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @activity.defn(name="record_run")
    async def record_run(self, record: RunRecord) -> None:
        """Saves ``record``; safe to retry.

        Raises:
            ApplicationError: retryable, of type ``StoreUnavailable`` (the database is down or locked; the text is
                scrubbed of the URL and password), ``SchemaOutOfDate`` (run ``gameday db upgrade``) or
                ``SchemaTooNew`` (this worker is older than the schema).
        """
        try:
            await asyncio.to_thread(self.store.save, record)
        except DBAPIError as exc:  # OperationalError (unreachable, locked) is a DBAPIError too
            reason = self.store.redact(str(exc.orig)) if exc.orig is not None else type(exc).__name__
            raise ApplicationError(
                f"results database unavailable: {reason}", type="StoreUnavailable", non_retryable=False
            ) from exc
        except SchemaError as exc:
            # Retryable: the record waits in Temporal until someone runs `gameday db upgrade`.
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=False) from exc


def make_engine(url: str) -> Engine:
    """An engine for ``url``: pre-ping for servers; for SQLite WAL, a busy timeout, foreign keys, and its directory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # pre_ping: a long-lived worker outlives server restarts; a stale pooled connection is replaced.
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
    options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if in_memory:
        # One shared connection: otherwise each thread (asyncio.to_thread) would see its own empty database.
        options["poolclass"] = StaticPool
    elif not database.startswith("file:"):
        # If the directory cannot be made, SQLite's own "unable to open database file" reports it at first
        # use, where the activity turns it into a retryable StoreUnavailable.
        with suppress(OSError):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **options)
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(connection: sqlite3.Connection, _record: object) -> None:
    # WAL lets the CLI read while a worker writes; the busy timeout makes concurrent writers wait, not fail;
    # foreign keys on so SQLite checks what PostgreSQL checks.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _children(session: Session, model: type[_Child], run_id: str, *order: Any) -> Sequence[_Child]:
    return session.exec(select(model).where(col(model.run_id) == run_id).order_by(*order)).all()


def _upsert(
    session: Session, model: type[_Child], run_id: str, items: Sequence[StepRecord | FaultRecord | ProbeResult]
) -> None:
    # One SELECT for the run's existing rows, then update in place or add: no SELECT per row, and a key
    # repeated inside the record updates the row just added (last wins) instead of inserting it twice.
    mapper = sa_inspect(model)
    existing = {tuple(mapper.primary_key_from_instance(row)): row for row in _children(session, model, run_id)}
    for item in items:
        # Validating into the row turns each enum into its plain value, which every driver can bind.
        row = model.model_validate(item.model_dump(), update={"run_id": run_id})
        key = tuple(mapper.primary_key_from_instance(row))
        current = existing.get(key)
        if current is None:
            session.add(row)
            existing[key] = row
        else:
            current.sqlmodel_update(row.model_dump())


def _run_row(record: RunRecord, *, updated_at: datetime) -> RunRow:
    stop = record.stop
    header = record.model_dump(exclude={"steps", "faults", "probes", "stop"})
    return RunRow.model_validate(
        header,
        update={
            "stop_reason": None if stop is None else stop.reason,
            "stop_by": None if stop is None else stop.by,
            "stop_received_at": None if stop is None else stop.received_at,
            "updated_at": updated_at,
        },
    )


def _run_record(
    run: RunRow,
    *,
    steps: Sequence[PhaseRow] = (),
    faults: Sequence[FaultRow] = (),
    probes: Sequence[ProbeRow] = (),
) -> RunRecord:
    stop = None
    if run.stop_reason is not None:
        stop = StopRequest(reason=run.stop_reason, by=run.stop_by or "unknown", received_at=run.stop_received_at)
    header = run.model_dump(exclude={"stop_reason", "stop_by", "stop_received_at", "updated_at"})
    return RunRecord.model_validate(
        {
            **header,
            "stop": stop,
            "steps": [StepRecord.model_validate(row, from_attributes=True) for row in steps],
            "faults": [FaultRecord.model_validate(row, from_attributes=True) for row in faults],
            "probes": [ProbeResult.model_validate(row, from_attributes=True) for row in probes],
        }
    )
