"""Every SQL table of the results database, in one module (issue 13): runs and their phases, faults, probe
results, traffic and observations (written by :mod:`~gameday.activities.store`), the fault ledger
(:mod:`~gameday.activities.ledger`), target locks (:mod:`~gameday.activities.locks`) and game days
(:mod:`~gameday.activities.gameday_store`).

The migrations (:mod:`~gameday.activities.migrations`) compare their schema with these tables, and import only
this module: no store/migrations import cycle.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored in UTC and always read back timezone-aware.

    SQLite keeps no offset and returns naive values; PostgreSQL returns the session's zone. Both come back
    as aware UTC, so a record read back equals the record saved. Naive input is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def as_utc(value: datetime) -> datetime:
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
    stop_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When ``gameday stop`` sent the stop (time to safe counts from here); ``None`` for stops from inside."""
    expect: str | None = None
    """The drill's ``observe.expect`` as JSON (thresholds the report shows); ``None`` without one."""
    data_loss: str | None = None
    """What the read-back of the traffic's writes found, as JSON (``DataLoss``); ``None`` without one."""
    time_to_detect: float | None = None
    """Seconds from the first fault to ``observe.expect.detect``'s probe holding; ``None``: none, or undetected."""
    expectations: str | None = None
    """The judged ``sequence``/``detect``/``alerts`` (and other) expectations, a JSON list; ``None`` without any."""
    watch: str | None = None
    """``observe.watch``'s probes (collapsed values, changes) and the alerts seen, JSON; ``None`` without a watch."""
    updated_at: datetime = Field(sa_type=UTCDateTime)


class _RunChild(SQLModel):
    run_id: str = Field(primary_key=True, foreign_key="runs.run_id")


class PhaseRow(_RunChild, table=True):
    """One step of the drill log. Keyed by its position in the log: a phase may come twice (two pauses)."""

    __tablename__ = "phases"

    seq: int = Field(primary_key=True)
    """Position in the run's steps, from 0: the order they happened in, whatever their timestamps."""
    phase: str
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
    recorded: str | None = None
    """An http probe's ``record``: the last value it recorded in the phase."""


class TrafficRunRow(_RunChild, table=True):
    """What ``observe.traffic`` measured besides its windows: one row per run that sent traffic.

    The per-second timeline is one JSON column in the columnar form of :class:`~model.traffic.Timeline`
    (``{"step": 1, "second": [...], "sent": [...], ..., "p95_us": [...]}``): at most 1,200 entries per figure
    (``model.budget.MAX_TIMELINE_POINTS``: a longer run has a coarser step), one row, and exactly what a
    chart reads. Rows per second would be 3600 rows an hour per drill that nobody queries one by one.
    """

    __tablename__ = "traffic_runs"

    started_at: datetime = Field(sa_type=UTCDateTime)
    """Wall-clock start of the traffic: every offset of the timeline and the windows counts from it."""
    rate: float
    """Requests per second asked for."""
    elapsed: float
    """Seconds after ``started_at`` that the stored figures cover."""
    finished: bool
    """``False`` for a snapshot taken while the traffic was still running."""
    timeline: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    """The columns, and ``step`` (seconds a point covers: 1, or more for a run longer than the budget allows)."""
    gaps: list[dict[str, float]] = Field(default_factory=list, sa_type=JSON)
    """``[{"start": s, "end": s}]``: seconds in which nothing was sent because the worker sending it was lost."""
    open_seconds: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    """Seconds still in flight when a snapshot was taken (resume state; empty once the traffic finished)."""


class ObservationRow(_RunChild, table=True):
    """The observation's coverage under fault: one row per run whose observation ran probes.

    The gaps are one JSON value (``[{"start": iso, "end": iso, "cause": text}]``, at most a few): they are read
    with the run, never queried one by one.
    """

    __tablename__ = "observations"

    window_start: datetime = Field(sa_type=UTCDateTime)
    window_end: datetime = Field(sa_type=UTCDateTime)
    interval: float
    ticks_expected: int
    ticks_taken: int
    covered: float
    """Share of the window, 0-1, in which the probes were sampling."""
    gap_seconds: float
    min_coverage: float | None = None
    gaps: list[dict[str, str]] = Field(default_factory=list, sa_type=JSON)


class WindowKind(StrEnum):
    """What a ``traffic_windows`` row is: one of the phases, or all of them merged."""

    PHASE = "phase"
    TOTAL = "total"


class TrafficWindowRow(_RunChild, table=True):
    """One measurement window of a run's traffic (``before``, ``during pause db``, ``rollback``, ``after``) or
    the total: counts by outcome, latency percentiles, and the HDR histogram they came from.

    Keyed by kind and position, not by name: window names come from the drill (fault labels) and may repeat
    (a window marked twice), and keyed by name two windows would silently become one.
    """

    __tablename__ = "traffic_windows"

    kind: str = Field(primary_key=True)
    """``phase`` or ``total`` (:class:`WindowKind`)."""
    position: int = Field(primary_key=True)
    """Order in which the phases were marked, from 0; 0 for the total."""
    name: str
    start_offset: float
    """Seconds after ``traffic_runs.started_at``."""
    end_offset: float | None = None
    """``None`` while the window is still open (a snapshot of running traffic)."""
    # BIGINT: a long drill at a high rate passes 2**31 requests, and an overflow would make the record unwritable.
    sent: int = Field(sa_type=BigInteger)
    ok: int = Field(sa_type=BigInteger)
    status_4xx: int = Field(sa_type=BigInteger)
    status_5xx: int = Field(sa_type=BigInteger)
    timeouts: int = Field(sa_type=BigInteger)
    connection_errors: int = Field(sa_type=BigInteger)
    late: int = Field(sa_type=BigInteger)
    latency_p50: float | None = None
    """Seconds, from each request's intended send time; the five are ``None`` when nothing completed."""
    latency_p90: float | None = None
    latency_p95: float | None = None
    latency_p99: float | None = None
    latency_max: float | None = None
    histogram: str = ""
    """Every latency in microseconds as an encoded HDR histogram (V2, compressed, base64): windows merge exactly."""


class LedgerRow(SQLModel, table=True):
    """One fault as the worker that touched it last saw it."""

    __tablename__ = "fault_ledger"

    run_id: str = Field(primary_key=True)
    index: int = Field(primary_key=True)
    state: str = Field(index=True)
    """``registered`` (about to be applied, or was: a crash mid-apply), ``applied`` or ``reverted``."""
    spec: dict[str, Any] = Field(sa_type=JSON)
    """The :class:`FaultInput` as JSON: target, fault and record, all a revert needs."""
    registered_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    namespace: str = Field(default="", index=True)
    """The Temporal namespace of the run's workflow; empty on rows written before it was recorded."""
    cluster: str = ""
    """The Temporal cluster of the run (``cluster:<id>`` or ``address:<host:port>``); empty likewise."""
    lock_key: str = ""
    """The target lock the run held for this fault's target when it was registered; empty when it had none."""
    site: str | None = None
    """The site of the worker that applied a host-local fault (only a worker there may revert it); ``None``: a
    fault any worker may revert, or a row written before sites (migration 0008)."""
    revert_reason: str = ""
    """Why a worker reverted it on its own (``lease expired: control plane unreachable``); empty when the revert
    was the drill's own (or the sweep's) or it is not reverted."""


class LockRow(SQLModel, table=True):
    __tablename__ = "target_locks"

    key: str = Field(primary_key=True)
    target: str
    run_id: str = Field(index=True)
    drill_name: str
    acquired_at: datetime = Field(sa_type=UTCDateTime)
    namespace: str = ""
    """The Temporal namespace of the holding run; empty on locks taken before it was recorded."""
    cluster: str = ""
    """The Temporal cluster of the holding run (see ``activities.run_scope``); empty likewise."""


class GameDayRow(SQLModel, table=True):
    __tablename__ = "gamedays"

    gameday_id: str = Field(primary_key=True)
    name: str = Field(index=True)
    team: str = Field(default="", index=True)
    source: str = ""
    started_by: str = ""
    started_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str = ""
    halted_by: str = ""
    record: dict[str, Any] = Field(sa_type=JSON)
    """The whole :class:`GameDayRecord` (entries, stop) as JSON: small, read whole."""
