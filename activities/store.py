"""The results database: every run, phase, fault, probe measurement and traffic window as SQL rows (sqlmodel).

Saving is an upsert by primary key that never deletes (except a traffic summary, which replaces the run's
earlier one as a whole: see :meth:`Store.save`), so the ``record_run`` activity can be retried, or called again
with a more complete record, without duplicating rows. SQLite by default (one laptop),
any SQLAlchemy URL for a team (PostgreSQL). The URL may hold a password: it is never logged, written to the
database or put into an error message.

The schema comes from the Alembic migrations in ``activities/migrations`` (the upgrade policy is written there):
a SQLite file is upgraded on first use, any other database only by ``gameday db upgrade``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Engine, create_engine, event, func
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from gameday.activities import migrations
from gameday.activities.migrations import SchemaError
from gameday.activities.tables import (
    FaultRow,
    ObservationRow,
    PhaseRow,
    ProbeRow,
    RunRow,
    TrafficRunRow,
    TrafficWindowRow,
    WindowKind,
    as_utc,
)
from gameday.model.data_loss import DataLoss
from gameday.model.records import (
    Coverage,
    CoverageGap,
    FaultRecord,
    ProbeResult,
    RunRecord,
    StepRecord,
    StopRequest,
    Verdict,
)
from gameday.model.traffic import Expect, Gap, Latency, Timeline, TrafficSummary, WindowStats

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
"""How long a SQLite writer waits for another (a CLI reading while a worker writes) before giving up."""


_Child = TypeVar("_Child", PhaseRow, FaultRow, ProbeRow)
_TABLES: dict[
    str,
    type[RunRow]
    | type[PhaseRow]
    | type[FaultRow]
    | type[ProbeRow]
    | type[TrafficRunRow]
    | type[TrafficWindowRow]
    | type[ObservationRow],
] = {
    "runs": RunRow,
    "phases": PhaseRow,
    "faults": FaultRow,
    "probe_results": ProbeRow,
    "traffic_runs": TrafficRunRow,
    "traffic_windows": TrafficWindowRow,
    "observations": ObservationRow,
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

    def unavailable(self, exc: DBAPIError) -> ApplicationError:
        """The retryable ``StoreUnavailable`` an activity raises for ``exc``: the record waits in Temporal."""
        reason = self.redact(str(exc.orig)) if exc.orig is not None else type(exc).__name__
        return ApplicationError(f"results database unavailable: {reason}", type="StoreUnavailable", non_retryable=False)

    def redact(self, text: str) -> str:
        """``text`` with this store's database URL and password replaced by ``***``."""
        return redact_url(text, self._url)

    def save(self, record: RunRecord) -> None:
        """Upserts the run and all its phase, fault, probe and traffic rows in one transaction.

        Deletes nothing of the run, with one exception: a traffic summary replaces the run's stored one as a
        whole (windows it no longer has are removed) when it covers at least as much; an older snapshot saved
        late is ignored, and a record without traffic leaves the stored traffic as it is.
        """
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
            # Steps are keyed by their position: the log only grows, so a later save extends an earlier one.
            _upsert(session, PhaseRow, record.run_id, record.steps, numbered=True)
            _upsert(session, FaultRow, record.run_id, record.faults)
            _upsert(session, ProbeRow, record.run_id, record.probes)
            if record.traffic is not None:
                _save_traffic(session, record.run_id, record.traffic)
            if record.coverage is not None:
                _save_coverage(session, record.run_id, record.coverage)

    def get(self, run_id: str) -> RunRecord | None:
        """The full record of ``run_id`` (steps by start, faults by index, probes by time), or ``None``."""
        self._ensure_schema()
        with Session(self._engine) as session:
            run = session.get(RunRow, run_id)
            if run is None:
                return None
            return _run_record(
                run,
                steps=_children(session, PhaseRow, run_id, col(PhaseRow.seq)),
                faults=_children(session, FaultRow, run_id, col(FaultRow.index)),
                probes=_children(session, ProbeRow, run_id, col(ProbeRow.at), col(ProbeRow.phase), col(ProbeRow.probe)),
                traffic=_load_traffic(session, run_id),
                coverage=_load_coverage(session, run_id),
            )

    def list_runs(
        self,
        *,
        team: str | None = None,
        drill: str | None = None,
        verdict: Verdict | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        """Run headers, newest first; their steps, faults, probes and traffic are left empty.

        Args:
            team: only this team's runs.
            drill: only runs of this drill.
            verdict: only runs with this verdict.
            since: only runs started at or after this moment (naive means UTC).
            until: only runs started before this moment (exclusive, so consecutive ranges never overlap).
            limit: at most this many, the newest.

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
        # Bound through UTCDateTime, so SQLite's naive text and PostgreSQL's timestamptz compare alike.
        if since is not None:
            query = query.where(col(RunRow.started_at) >= as_utc(since))
        if until is not None:
            query = query.where(col(RunRow.started_at) < as_utc(until))
        query = query.order_by(col(RunRow.started_at).desc(), col(RunRow.run_id).desc()).limit(limit)
        with Session(self._engine) as session:
            return [_run_record(run) for run in session.exec(query).all()]

    def with_details(self, runs: Sequence[RunRecord]) -> list[RunRecord]:
        """``runs`` (headers from :meth:`list_runs`) with their steps, faults and probes, in three queries.

        Traffic is left out (``None``): it is the largest part of a record and what a trend reads is not in it.
        Runs no longer in the database come back as they were given.
        """
        self._ensure_schema()
        ids = [run.run_id for run in runs]
        if not ids:
            return []
        with Session(self._engine) as session:
            steps = _children_of(session, PhaseRow, ids, col(PhaseRow.seq))
            faults = _children_of(session, FaultRow, ids, col(FaultRow.index))
            probes = _children_of(session, ProbeRow, ids, col(ProbeRow.at), col(ProbeRow.phase), col(ProbeRow.probe))
        return [
            run.model_copy(
                update={
                    "steps": [
                        StepRecord.model_validate(row, from_attributes=True) for row in steps.get(run.run_id, [])
                    ],
                    "faults": [
                        FaultRecord.model_validate(row, from_attributes=True) for row in faults.get(run.run_id, [])
                    ],
                    "probes": [
                        ProbeResult.model_validate(row, from_attributes=True) for row in probes.get(run.run_id, [])
                    ],
                }
            )
            for run in runs
        ]

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
        # Imported here: the ledger's tables import this module.
        from gameday.activities.ledger import FaultLedger

        self.store = store
        self.ledger = FaultLedger(store)

    @activity.defn(name="record_run")
    async def record_run(self, record: RunRecord) -> None:
        """Saves ``record``; safe to retry. A final record (with a verdict) also brings the fault ledger up to date:
        a revert whose own ledger write failed (the database was down) is marked reverted once the database is
        back, so no sweep mistakes it for an orphan.

        Raises:
            ApplicationError: retryable, of type ``StoreUnavailable`` (the database is down or locked; the text is
                scrubbed of the URL and password), ``SchemaOutOfDate`` (run ``gameday db upgrade``) or
                ``SchemaTooNew`` (this worker is older than the schema).
        """
        try:
            await asyncio.to_thread(self.store.save, record)
            await asyncio.to_thread(self.ledger.reconcile, record)
        except DBAPIError as exc:  # OperationalError (unreachable, locked) is a DBAPIError too
            raise self.store.unavailable(exc) from exc
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
    # foreign keys on so SQLite checks what PostgreSQL checks. The busy timeout first: switching a new file to
    # WAL takes a lock, and without it a process opening the file alongside another failed at once.
    cursor = connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _children(session: Session, model: type[_Child], run_id: str, *order: Any) -> Sequence[_Child]:
    return session.exec(select(model).where(col(model.run_id) == run_id).order_by(*order)).all()


def _children_of(session: Session, model: type[_Child], run_ids: Sequence[str], *order: Any) -> dict[str, list[_Child]]:
    rows = session.exec(select(model).where(col(model.run_id).in_(run_ids)).order_by(*order)).all()
    grouped: dict[str, list[_Child]] = {}
    for row in rows:
        grouped.setdefault(row.run_id, []).append(row)
    return grouped


def _upsert(
    session: Session,
    model: type[_Child],
    run_id: str,
    items: Sequence[StepRecord | FaultRecord | ProbeResult],
    *,
    numbered: bool = False,
) -> None:
    # One SELECT for the run's existing rows, then update in place or add: no SELECT per row, and a key
    # repeated inside the record updates the row just added (last wins) instead of inserting it twice.
    mapper = sa_inspect(model)
    existing = {tuple(mapper.primary_key_from_instance(row)): row for row in _children(session, model, run_id)}
    for seq, item in enumerate(items):
        # Validating into the row turns each enum into its plain value, which every driver can bind.
        update: dict[str, object] = {"run_id": run_id, **({"seq": seq} if numbered else {})}
        row = model.model_validate(item.model_dump(), update=update)
        key = tuple(mapper.primary_key_from_instance(row))
        current = existing.get(key)
        if current is None:
            session.add(row)
            existing[key] = row
        else:
            current.sqlmodel_update(row.model_dump())


def _run_row(record: RunRecord, *, updated_at: datetime) -> RunRow:
    stop = record.stop
    # Steps, faults, probes, traffic and coverage have tables of their own; the stop is four columns of this one.
    header = record.model_dump(
        exclude={
            "steps",
            "faults",
            "probes",
            "stop",
            "traffic",
            "coverage",
            "expect",
            "data_loss",
            "expectations",
            "watch",
            "alerts",
        }
    )
    return RunRow.model_validate(
        header,
        update={
            "expect": None if record.expect is None else record.expect.model_dump_json(),
            "data_loss": None if record.data_loss is None else record.data_loss.model_dump_json(),
            "expectations": _json_list(record.expectations),
            "watch": _watch_json(record),
            "stop_reason": None if stop is None else stop.reason,
            "stop_by": None if stop is None else stop.by,
            "stop_received_at": None if stop is None else stop.received_at,
            "stop_sent_at": None if stop is None else stop.sent_at,
            "updated_at": updated_at,
        },
    )


def _json_list(items: Sequence[BaseModel]) -> str | None:
    return json.dumps([item.model_dump(mode="json") for item in items]) if items else None


def _watch_json(record: RunRecord) -> str | None:
    if not record.watch and not record.alerts:
        return None
    return json.dumps(
        {
            "probes": [probe.model_dump(mode="json") for probe in record.watch],
            "alerts": [alert.model_dump(mode="json") for alert in record.alerts],
        }
    )


def _run_record(
    run: RunRow,
    *,
    steps: Sequence[PhaseRow] = (),
    faults: Sequence[FaultRow] = (),
    probes: Sequence[ProbeRow] = (),
    traffic: TrafficSummary | None = None,
    coverage: Coverage | None = None,
) -> RunRecord:
    stop = None
    if run.stop_reason is not None:
        stop = StopRequest(
            reason=run.stop_reason,
            by=run.stop_by or "unknown",
            received_at=run.stop_received_at,
            sent_at=run.stop_sent_at,
        )
    header = run.model_dump(
        exclude={
            "stop_reason",
            "stop_by",
            "stop_received_at",
            "stop_sent_at",
            "updated_at",
            "expect",
            "data_loss",
            "expectations",
            "watch",
        }
    )
    watched = json.loads(run.watch) if run.watch else {}
    return RunRecord.model_validate(
        {
            **header,
            "expect": None if run.expect is None else Expect.model_validate_json(run.expect),
            "data_loss": None if run.data_loss is None else DataLoss.model_validate_json(run.data_loss),
            "expectations": json.loads(run.expectations) if run.expectations else [],
            "watch": watched.get("probes", []),
            "alerts": watched.get("alerts", []),
            "stop": stop,
            "steps": [StepRecord.model_validate(row, from_attributes=True) for row in steps],
            "faults": [FaultRecord.model_validate(row, from_attributes=True) for row in faults],
            "probes": [ProbeResult.model_validate(row, from_attributes=True) for row in probes],
            "traffic": traffic,
            "coverage": coverage,
        }
    )


# --- coverage ---------------------------------------------------------------------------------------------


def _save_coverage(session: Session, run_id: str, coverage: Coverage) -> None:
    row = ObservationRow.model_validate(
        coverage.model_dump(exclude={"gaps"}),
        update={"run_id": run_id, "gaps": [gap.model_dump(mode="json") for gap in coverage.gaps]},
    )
    current = session.get(ObservationRow, run_id)
    if current is None:
        session.add(row)
    else:
        current.sqlmodel_update(row.model_dump())


def _load_coverage(session: Session, run_id: str) -> Coverage | None:
    row = session.get(ObservationRow, run_id)
    if row is None:
        return None
    return Coverage.model_validate(
        {**row.model_dump(exclude={"run_id", "gaps"}), "gaps": [CoverageGap.model_validate(g) for g in row.gaps]}
    )


# --- traffic ----------------------------------------------------------------------------------------------


def _save_traffic(session: Session, run_id: str, traffic: TrafficSummary) -> None:
    current = session.get(TrafficRunRow, run_id)
    if current is not None and _reach(current.finished, current.started_at, current.elapsed) > _reach(
        traffic.finished, traffic.started_at, traffic.elapsed
    ):
        # A snapshot written late (a cancelled attempt finishing after the final record) must not replace the
        # figures of a later one: the summary that reaches further wins.
        return
    row = TrafficRunRow(
        run_id=run_id,
        started_at=traffic.started_at,
        rate=traffic.rate,
        elapsed=traffic.elapsed,
        finished=traffic.finished,
        timeline=traffic.timeline.model_dump(),
        gaps=[gap.model_dump() for gap in traffic.gaps],
        open_seconds=[second.model_dump(mode="json") for second in traffic.open_seconds],
    )
    if current is None:
        session.add(row)
    else:
        current.sqlmodel_update(row.model_dump())
    windows = [_window_row(run_id, WindowKind.PHASE, i, w) for i, w in enumerate(traffic.phases)]
    windows.append(_window_row(run_id, WindowKind.TOTAL, 0, traffic.total))
    existing = {(row.kind, row.position): row for row in _traffic_windows(session, run_id)}
    for window in windows:
        found = existing.pop((window.kind, window.position), None)
        if found is None:
            session.add(window)
        else:
            found.sqlmodel_update(window.model_dump())
    # What is left belonged to the summary this one replaces and has no counterpart in it (a traffic run
    # restarted from scratch marks fewer windows): keeping it would mix two summaries on reading.
    for stale in existing.values():
        session.delete(stale)


def _reach(finished: bool, started_at: datetime, elapsed: float) -> tuple[bool, datetime]:
    """How far a summary got: a finished one beats any snapshot, else the later wall-clock moment covered."""
    return finished, as_utc(started_at) + timedelta(seconds=elapsed)


def _window_row(run_id: str, kind: WindowKind, position: int, window: WindowStats) -> TrafficWindowRow:
    latency = window.latency
    return TrafficWindowRow(
        run_id=run_id,
        kind=kind.value,
        position=position,
        name=window.name,
        start_offset=window.start,
        end_offset=window.end,
        sent=window.sent,
        ok=window.ok,
        status_4xx=window.status_4xx,
        status_5xx=window.status_5xx,
        timeouts=window.timeouts,
        connection_errors=window.connection_errors,
        late=window.late,
        latency_p50=None if latency is None else latency.p50,
        latency_p90=None if latency is None else latency.p90,
        latency_p95=None if latency is None else latency.p95,
        latency_p99=None if latency is None else latency.p99,
        latency_max=None if latency is None else latency.max,
        histogram=window.histogram,
    )


def _traffic_windows(session: Session, run_id: str) -> Sequence[TrafficWindowRow]:
    query = select(TrafficWindowRow).where(col(TrafficWindowRow.run_id) == run_id)
    return session.exec(query.order_by(col(TrafficWindowRow.kind), col(TrafficWindowRow.position))).all()


def _load_traffic(session: Session, run_id: str) -> TrafficSummary | None:
    run = session.get(TrafficRunRow, run_id)
    if run is None:
        return None
    windows = _traffic_windows(session, run_id)
    total = next((w for w in windows if w.kind == WindowKind.TOTAL), None)
    if total is None:  # both are written in one transaction: only a hand-edited database gets here
        raise ValueError(f"run {run_id!r}: traffic_runs row without its total in traffic_windows")
    return TrafficSummary(
        started_at=run.started_at,
        rate=run.rate,
        elapsed=run.elapsed,
        phases=[_window_stats(w) for w in windows if w.kind == WindowKind.PHASE],
        total=_window_stats(total),
        timeline=Timeline.model_validate(run.timeline),
        open_seconds=[WindowStats.model_validate(second) for second in run.open_seconds],
        gaps=[Gap.model_validate(gap) for gap in run.gaps],
        finished=run.finished,
    )


def _window_stats(row: TrafficWindowRow) -> WindowStats:
    latency = None
    if row.latency_p50 is not None:
        # All five are written together; validating (not defaulting) makes a hand-edited half row an error.
        latency = Latency.model_validate({p: getattr(row, f"latency_{p}") for p in Latency.model_fields})
    return WindowStats(
        name=row.name,
        start=row.start_offset,
        end=row.end_offset,
        sent=row.sent,
        ok=row.ok,
        status_4xx=row.status_4xx,
        status_5xx=row.status_5xx,
        timeouts=row.timeouts,
        connection_errors=row.connection_errors,
        late=row.late,
        latency=latency,
        histogram=row.histogram,
    )
