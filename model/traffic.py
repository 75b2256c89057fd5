"""Traffic during a drill (``observe.traffic``) and what it measured: plain models, safe in the workflow sandbox.

:class:`Traffic` is the drill-file section: a constant arrival ``rate`` spread over weighted ``endpoints`` (or
the one-endpoint shorthand ``{url: ..., rate: 50/s}`` that PRODUCT.md shows). The engine that sends it lives
in ``activities.traffic``; what it reports travels back as a :class:`TrafficSummary`: counts by outcome and
latency percentiles per named phase and in total (each with its HDR histogram, encoded, so windows merge
exactly), a per-second :class:`Timeline`, and the gaps a lost worker left. The same summary is the engine's
resumable state, small enough for heartbeat details.

Latencies are seconds measured from each request's *intended* send time, so a stalled target shows up in
the percentiles instead of slowing the generator down (no coordinated omission).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from gameday.model import base, budget
from gameday.model.base import Record, http_url
from gameday.model.data_loss import ID, AckedIds, LossBound, ReadBack, id_outside_authority
from gameday.model.units import (
    Comparison,
    Duration,
    DurationAbove,
    DurationAtMost,
    PercentAbove,
    PercentAtLeast,
    PercentAtMost,
    PercentBelow,
    Rate,
    beyond,
    crosses,
    written_comparisons,
)
from gameday.model.watch import AlertsExpect, DetectExpect, SequenceExpect

MAX_RATE = 100_000.0
"""Requests per second; far above what one worker can send, low enough that a typo cannot mean a billion."""
MAX_TIMEOUT = timedelta(minutes=10)
"""Longest per-request timeout: latencies are recorded up to an hour, and in-flight requests stay bounded."""
DEFAULT_TIMEOUT = timedelta(seconds=2)

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


class Strict(base.Strict):
    """The shared file base (``model.base.Strict``); traffic keys also accept their field names (``from_``)."""

    model_config = ConfigDict(populate_by_name=True)


def _http_url(value: str | None) -> str | None:
    return None if value is None else id_outside_authority(http_url(value))


def _timeout_in_range(value: timedelta | None) -> timedelta | None:
    if value is not None and not timedelta(0) < value <= MAX_TIMEOUT:
        raise ValueError("expected a timeout above 0s and at most 10m")
    return value


class Endpoint(Strict):
    """One target of the traffic; unset keys take the value given on the ``traffic`` section itself."""

    url: str
    weight: float = Field(default=1.0, gt=0)
    """Share of the requests relative to the other endpoints' weights (``3`` and ``1``: 75% and 25%)."""
    method: Method | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    """Added to the section's headers; these win on a clash."""
    body: str | None = None
    json_body: dict[str, object] | list[object] | None = Field(default=None, alias="json")
    timeout: Duration | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value) or value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: timedelta | None) -> timedelta | None:
        return _timeout_in_range(value)

    @model_validator(mode="after")
    def _one_body(self) -> Endpoint:
        if self.body is not None and self.json_body is not None:
            raise ValueError("give at most one of 'body' and 'json'")
        return self


class TrafficGuardrail(Strict):
    """A guardrail on the traffic's own measurements (``{error_rate: "> 50%", for: 10s}`` in
    ``observe.guardrails``), judged second by second while a fault is in place (the ``during`` windows): when its
    condition has held for ``for`` without a break, the drill is stopped like ``gameday stop``.

    A second in which no request completed is no evidence either way: it neither trips nor breaks a streak.
    """

    name: str
    error_rate: PercentAbove | None = None
    """Trips when the share of failed requests rises above this."""
    availability: PercentBelow | None = None
    """Trips when the share of requests answered below 400 falls under this."""
    latency_p95: DurationAbove | None = None
    latency_p99: DurationAbove | None = None
    for_: Duration = Field(default=timedelta(0), alias="for")
    """How long the condition must hold, second after second, before it trips (0: the first second it holds)."""
    comparisons: dict[str, Comparison] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _note_comparisons(cls, data: Any) -> Any:
        return written_comparisons(data, TRAFFIC_CONDITIONS)

    @model_validator(mode="after")
    def _one_condition(self) -> TrafficGuardrail:
        if all(getattr(self, name) is None for name in TRAFFIC_CONDITIONS):
            raise ValueError(f"a traffic guardrail needs one of: {', '.join(TRAFFIC_CONDITIONS)}")
        return self

    def crossed(self, point: SecondStats) -> str | None:
        """What of this guardrail's condition ``point`` meets, in words; ``None`` when it holds or is empty."""
        if not point.completed:
            return None
        found: list[str] = []
        ops = self.comparisons
        if (
            self.error_rate is not None
            and point.error_rate is not None
            and crosses(point.error_rate, self.error_rate, ops.get("error_rate"), default=">")
        ):
            found.append(f"error rate {_pct(point.error_rate)} {ops.get('error_rate', '>')} {_pct(self.error_rate)}")
        if self.availability is not None and crosses(
            point.availability or 0.0, self.availability, ops.get("availability"), default="<"
        ):
            shown = f"{_pct(point.availability)} {ops.get('availability', '<')} {_pct(self.availability)}"
            found.append(f"availability {shown}")
        for name in ("p95", "p99"):
            limit = getattr(self, f"latency_{name}")
            value = None if point.latency is None else getattr(point.latency, name)
            op = ops.get(f"latency_{name}")
            if limit is not None and value is not None and crosses(value, limit.total_seconds(), op, default=">"):
                found.append(f"latency {name} {value * 1000:.0f}ms {op or '>'} {limit.total_seconds() * 1000:.0f}ms")
        return "; ".join(found) or None


TRAFFIC_CONDITIONS = ("error_rate", "availability", "latency_p95", "latency_p99")
"""The measurements a traffic guardrail may watch."""


class Traffic(Strict):
    """``observe.traffic``: open-model load at a constant arrival ``rate``, whatever the target's latency.

    Either ``url`` (one endpoint) or ``endpoints`` (several, by weight). ``method``, ``headers``, ``body``,
    ``json`` and ``timeout`` apply to ``url``, and are the defaults of every entry of ``endpoints``.
    """

    rate: Rate
    """Requests per second, written ``50/s`` or ``600/m``; sent on a fixed schedule, never slowed by the target."""
    url: str | None = None
    endpoints: list[Endpoint] = Field(default_factory=list)
    method: Method = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: dict[str, object] | list[object] | None = Field(default=None, alias="json")
    timeout: Duration = DEFAULT_TIMEOUT
    """Per request, counted from its intended send time: a slower answer is a timeout."""
    max_in_flight: int = Field(default=1000, ge=1, le=100_000)
    """Connections open at once; beyond it a request waits for one, and the wait counts in its latency."""
    baseline: Duration = timedelta(seconds=5)
    """How long the traffic runs before the first fault, for the ``before`` window (0 for none)."""
    guardrails: list[TrafficGuardrail] = Field(default_factory=list, max_length=budget.MAX_GUARDRAILS)
    """Guardrails on these measurements; those written in ``observe.guardrails`` without a ``probe`` land here."""
    read_back: ReadBack | None = None
    """After recovery, read each acknowledged write (of an endpoint with ``{{id}}``) back: ``expect.data_loss``."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: timedelta) -> timedelta:
        return _timeout_in_range(value) or value

    @field_validator("rate")
    @classmethod
    def _rate_in_range(cls, value: float) -> float:
        if not 0 < value <= MAX_RATE:
            raise ValueError(f"expected a rate above 0/s and at most {MAX_RATE:g}/s")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> Traffic:
        if (self.url is None) == (not self.endpoints):
            raise ValueError("traffic needs exactly one of 'url' or 'endpoints'")
        if self.body is not None and self.json_body is not None:
            raise ValueError("give at most one of 'body' and 'json'")
        return self

    def has_ids(self) -> bool:
        """Whether an endpoint's URL or body holds ``{{id}}``: its requests get ids, its 2xx answers are remembered."""
        return any(ID in e.url or ID in (e.body or "") for e in self.resolved())

    def resolved(self) -> list[ResolvedEndpoint]:
        """Every endpoint with the section's defaults filled in and JSON bodies encoded."""
        given = self.endpoints or [Endpoint(url=self.url or "")]
        return [self._resolve(e) for e in given]

    def _resolve(self, endpoint: Endpoint) -> ResolvedEndpoint:
        import json  # stdlib and deterministic: fine in the sandbox, only needed here

        headers = {**self.headers, **endpoint.headers}
        if endpoint.body is not None or endpoint.json_body is not None:
            body, json_body = endpoint.body, endpoint.json_body
        else:
            body, json_body = self.body, self.json_body
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":"))
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        return ResolvedEndpoint(
            url=endpoint.url,
            weight=endpoint.weight,
            method=endpoint.method or self.method,
            headers=headers,
            body=body,
            timeout=endpoint.timeout or self.timeout,
        )


class ResolvedEndpoint(Strict):
    """An endpoint as the engine sends it: every default applied."""

    url: str
    weight: float
    method: Method
    headers: dict[str, str]
    body: str | None
    timeout: timedelta


# --- what the traffic measured --------------------------------------------------------------------------


class Outcomes(Strict):
    """Requests counted by outcome. Every request sent ends in exactly one of the five outcome counts."""

    sent: int = 0
    """Requests whose intended send time fell in this window."""
    ok: int = 0
    """Answered with a status below 400 (redirects are not followed: a 3xx is an answer)."""
    status_4xx: int = 0
    status_5xx: int = 0
    timeouts: int = 0
    """No complete answer within the timeout, counted from the intended send time."""
    connection_errors: int = 0
    """Refused, reset or closed connections, and malformed answers."""
    late: int = 0
    """Requests that left more than 10ms after their intended time: the generator was overloaded, or all
    ``max_in_flight`` connections were busy. Their latency still counts from the intended time; a share above
    1% means the figures include the client's own waiting (raise ``max_in_flight``, or lower the rate)."""

    @property
    def completed(self) -> int:
        """Requests whose outcome is known (the others were still in flight)."""
        return self.ok + self.errors

    @property
    def errors(self) -> int:
        return self.status_4xx + self.status_5xx + self.timeouts + self.connection_errors

    @property
    def error_rate(self) -> float | None:
        """Share of completed requests that failed; ``None`` when none completed."""
        return self.errors / self.completed if self.completed else None

    @property
    def availability(self) -> float | None:
        """Share of completed requests answered below 400; ``None`` when none completed."""
        return self.ok / self.completed if self.completed else None


class Latency(Strict):
    """Latency percentiles in seconds, from intended send time to outcome (failed requests included)."""

    p50: float
    p90: float
    p95: float
    p99: float
    max: float


class SecondStats(Outcomes):
    """One point of the timeline: requests intended in ``[second, second + seconds)`` after the run's start."""

    second: int
    seconds: int = 1
    """How many seconds the point covers: the timeline's ``step`` (1 until a long run made it coarser)."""
    latency: Latency | None = None
    """``None`` when no request of this point completed. A point merged from others (see :func:`downsample`)
    holds, for each percentile, the highest of theirs: an upper bound, never an average that hides a spike."""

    @property
    def throughput(self) -> float:
        """Completed requests per second."""
        return self.completed / self.seconds


class WindowStats(Outcomes):
    """A named window (a phase such as ``before``, ``during db pause``, ``after``, or the whole run)."""

    name: str
    start: float
    """Seconds after the run's start."""
    end: float | None = None
    """Seconds after the run's start; ``None`` while the window is still open."""
    latency: Latency | None = None
    histogram: str = ""
    """Every latency, in microseconds, as an encoded HDR histogram (V2, compressed, base64): merges exactly."""

    @property
    def throughput(self) -> float | None:
        """Completed requests per second over the window; ``None`` while it is open or empty."""
        if self.end is None or self.end <= self.start:
            return None
        return self.completed / (self.end - self.start)


_TIMELINE_COUNTS = ("sent", "ok", "status_4xx", "status_5xx", "timeouts", "connection_errors", "late")
_TIMELINE_LATENCIES = ("p50", "p90", "p95", "p99", "max")


class Timeline(Strict):
    """Per-second figures in columns (one list per figure, ``second`` first): compact, and what a chart wants.

    Latencies are whole microseconds, ``None`` for a second in which nothing completed. Only seconds in which
    requests were sent appear. At most :data:`~model.budget.MAX_TIMELINE_POINTS` points: a longer run has
    a coarser ``step`` (each point then covers ``step`` seconds from its ``second``), so the timeline stays
    small enough for heartbeats and records whatever the run's length.
    """

    step: int = Field(default=1, ge=1)
    """Seconds each point covers."""
    second: list[int] = Field(default_factory=list)
    sent: list[int] = Field(default_factory=list)
    ok: list[int] = Field(default_factory=list)
    status_4xx: list[int] = Field(default_factory=list)
    status_5xx: list[int] = Field(default_factory=list)
    timeouts: list[int] = Field(default_factory=list)
    connection_errors: list[int] = Field(default_factory=list)
    late: list[int] = Field(default_factory=list)
    p50_us: list[int | None] = Field(default_factory=list)
    p90_us: list[int | None] = Field(default_factory=list)
    p95_us: list[int | None] = Field(default_factory=list)
    p99_us: list[int | None] = Field(default_factory=list)
    max_us: list[int | None] = Field(default_factory=list)

    @model_validator(mode="after")
    def _same_lengths(self) -> Timeline:
        lengths = {len(getattr(self, name)) for name in type(self).model_fields if name != "step"}
        if len(lengths) > 1:
            raise ValueError("every timeline column needs one entry per second")
        return self

    @classmethod
    def of(cls, points: list[SecondStats], step: int = 1) -> Timeline:
        """The columns of ``points`` (ascending seconds), downsampled to ``step`` or coarser (:func:`downsample`)."""
        points, step = downsample(points, step)
        columns: dict[str, object] = {"step": step, "second": [p.second for p in points]}
        for name in _TIMELINE_COUNTS:
            columns[name] = [getattr(p, name) for p in points]
        for name in _TIMELINE_LATENCIES:
            columns[f"{name}_us"] = [_micros(p.latency, name) for p in points]
        return cls.model_validate(columns)

    def points(self) -> list[SecondStats]:
        """The rows again, one :class:`SecondStats` per point (covering ``step`` seconds)."""
        rows: list[SecondStats] = []
        for i, second in enumerate(self.second):
            counts = {name: getattr(self, name)[i] for name in _TIMELINE_COUNTS}
            micros = [getattr(self, f"{name}_us")[i] for name in _TIMELINE_LATENCIES]
            latency = None
            if micros[0] is not None:
                latency = Latency(**{n: v / 1e6 for n, v in zip(_TIMELINE_LATENCIES, micros, strict=True)})
            rows.append(SecondStats(second=second, seconds=self.step, latency=latency, **counts))
        return rows


def downsample(points: list[SecondStats], step: int = 1) -> tuple[list[SecondStats], int]:
    """``points`` (ascending) as points of ``step`` seconds, the step doubled until they fit the budget.

    Points falling in the same ``step`` merge: counts add; each latency percentile is the highest of theirs
    (the exact figure needs the histograms, which points do not keep; the traffic engine merges seconds through
    their histograms while they are open, so only points merged afterwards take this upper bound).

    Returns:
        The points, each starting at a multiple of the step and covering it, and the step.
    """
    step = max([step, *(p.seconds for p in points)])
    result = _bucketed(points, step)
    while len(result) > budget.MAX_TIMELINE_POINTS:
        step *= 2
        result = _bucketed(result, step)
    return result, step


def _bucketed(points: list[SecondStats], step: int) -> list[SecondStats]:
    if step == 1 and all(p.seconds == 1 for p in points):
        return points
    result: list[SecondStats] = []
    for point in points:
        start = point.second - point.second % step
        if result and result[-1].second == start:
            result[-1] = merge_points(result[-1], point, start, step)
        else:
            result.append(point.model_copy(update={"second": start, "seconds": step}))
    return result


def merge_points(a: SecondStats, b: SecondStats, second: int, seconds: int) -> SecondStats:
    """One point for ``a`` and ``b``: counts added, each percentile the higher of the two."""
    counts = {name: getattr(a, name) + getattr(b, name) for name in _TIMELINE_COUNTS}
    latency = a.latency or b.latency
    if a.latency is not None and b.latency is not None:
        latency = Latency(**{n: max(getattr(a.latency, n), getattr(b.latency, n)) for n in _TIMELINE_LATENCIES})
    return SecondStats(second=second, seconds=seconds, latency=latency, **counts)


def _micros(latency: Latency | None, name: str) -> int | None:
    return None if latency is None else round(getattr(latency, name) * 1e6)


class Gap(Strict):
    """Seconds (after the run's start) in which no traffic was sent: the worker running it was lost."""

    start: float
    end: float


class TrafficSummary(Strict):
    """What the traffic measured so far; also the state :class:`~activities.traffic.TrafficRun` resumes from."""

    started_at: datetime
    """Wall-clock start (UTC); every ``second``, ``start`` and ``end`` counts from it."""
    rate: float
    elapsed: float
    """Seconds after ``started_at`` that this summary covers."""
    phases: list[WindowStats]
    """In the order they were marked; the last one is open (``end`` is ``None``) until the run finishes."""
    total: WindowStats
    """All phases merged."""
    timeline: Timeline = Field(default_factory=Timeline)
    """Closed seconds."""
    open_seconds: list[WindowStats] = Field(default_factory=list)
    """Seconds whose requests were still in flight (for resuming; the timeline gets them once closed)."""
    gaps: list[Gap] = Field(default_factory=list)
    finished: bool = False
    ids: AckedIds | None = None
    """The writes' ids (an endpoint with ``{{id}}``): the next one, and the acknowledged ones in compact form."""


# --- what the workflow and the traffic activities exchange ----------------------------------------------


class Expect(Strict):
    """``observe.expect``: service levels the traffic must keep *under fault* (all ``during`` windows together).

    Each is written bare (``99%``, ``800ms``) or as a comparison (``">= 99%"``, ``"< 800ms"``); bare means "at
    least" for availability and "at most" for the others. A miss makes the verdict ``DEVIATED`` (the system
    recovered, but broke an expectation), with the figures.
    """

    availability: PercentAtLeast | None = None
    """Lowest share of completed requests answered below 400 (``">= 99%"``)."""
    error_rate: PercentAtMost | None = None
    """Highest share of completed requests that failed (``"<= 1%"``)."""
    latency_p50: DurationAtMost | None = None
    """Highest median latency (``"< 300ms"``)."""
    latency_p95: DurationAtMost | None = None
    latency_p99: DurationAtMost | None = None
    data_loss: LossBound | None = None
    """Most writes lost, and most duplicated, among those read back: ``0``, ``"<= 5"``, ``"0.1%"`` (needs
    ``traffic.read_back``); judged after recovery into an expectation line."""
    comparisons: dict[str, Comparison] = Field(default_factory=dict)
    """The operator written for each threshold (``{"latency_p95": "<"}``), filled in from the forms above."""
    sequence: SequenceExpect | None = None
    """Values a recording watch probe must go through, in order, from the first fault (``model.watch``)."""
    detect: DetectExpect | None = None
    """A watch probe whose assertion must hold within a bound of the first fault: time to detect."""
    alerts: AlertsExpect | None = None
    """Alerts that must fire during the fault and resolve after recovery (Alertmanager or Prometheus)."""

    @model_validator(mode="before")
    @classmethod
    def _note_comparisons(cls, data: Any) -> Any:
        return written_comparisons(data, ("availability", "error_rate", *EXPECT_LATENCIES))

    @property
    def on_traffic(self) -> list[str]:
        """The keys set here that judge the traffic (they need ``observe.traffic``)."""
        keys = ("availability", "error_rate", "latency_p50", "latency_p95", "latency_p99")
        return [key for key in keys if getattr(self, key) is not None]

    def shown(self, name: str) -> str:
        """The threshold ``name`` as written: ``>= 99%``, ``< 800ms``."""
        return f"{self._op(name)} {self._text(name)}"

    def op(self, name: str) -> Comparison:
        """The operator the threshold ``name`` is judged with: as written, or the bare form's meaning."""
        return self._op(name)

    def _op(self, name: str) -> Comparison:
        return self.comparisons.get(name) or (">=" if name == "availability" else "<=")

    def _text(self, name: str) -> str:
        value = getattr(self, name)
        return f"{value.total_seconds() * 1000:.0f}ms" if isinstance(value, timedelta) else _pct(value)

    def misses(self, window: WindowStats) -> list[str]:
        """What ``window`` broke, in words (``latency p95 912ms > 800ms``); empty when every expectation held."""
        measured: list[tuple[str, str, float | None, float | None]] = [
            ("availability", "availability", window.availability or 0.0, self.availability),
            ("error_rate", "error rate", window.error_rate, self.error_rate),
        ]
        for field in EXPECT_LATENCIES:
            name = field.removeprefix("latency_")
            limit = getattr(self, field)
            value = None if window.latency is None else getattr(window.latency, name)
            measured.append((field, f"latency {name}", value, limit and limit.total_seconds()))
        found: list[str] = []
        for name, words, value, limit in measured:
            if limit is None or value is None or not beyond(value, limit, self._op(name), default="<="):
                continue
            shown = f"{value * 1000:.0f}ms" if name.startswith("latency") else _pct(value)
            found.append(f"{words} {shown} {_NEGATED[self._op(name)]} {self._text(name)}")
        return found


EXPECT_LATENCIES = ("latency_p50", "latency_p95", "latency_p99")
"""The latency percentiles ``observe.expect`` may bound."""

_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}
"""How a miss reads: a floor of ``>= 99%`` missed is ``availability 97% < 99%``."""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.3g}%"


def data_loss_problems(traffic: Traffic | None, expect: Expect | None) -> list[tuple[tuple[str | int, ...], str]]:
    """``expect.data_loss`` needs traffic writing ``{{id}}`` and a ``read_back``; a ``read_back`` needs ids to read."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    has_ids = traffic is not None and traffic.has_ids()
    if expect is not None and expect.data_loss is not None and traffic is not None:
        if not has_ids:
            problems.append(
                (
                    ("observe", "expect", "data_loss"),
                    "data_loss needs a traffic endpoint whose url or body holds {{id}} (the writes to read back)",
                )
            )
        if traffic.read_back is None:
            problems.append(
                (
                    ("observe", "expect", "data_loss"),
                    'data_loss needs observe.traffic.read_back: {url: "http://.../orders/{{id}}", status: 200}',
                )
            )
    if traffic is not None and traffic.read_back is not None and not has_ids:
        problems.append(
            (
                ("observe", "traffic", "read_back"),
                "read_back reads the writes of an endpoint whose url or body holds {{id}}: no endpoint does",
            )
        )
    return problems


class TrafficHoldInput(Record):
    """Argument of ``hold_traffic``: send the drill's traffic until cancelled (or ``until``, a safety cap)."""

    run_id: str
    traffic: Traffic
    until: datetime
    first_phase: str = "before"
    resume: TrafficSummary | None = None
    """What a lost worker's traffic had measured (its last heartbeat): carried on, the time lost as a gap."""


class TrafficMark(Record):
    """Argument of ``mark_traffic``: a new measurement window starts now (``during pause db``, ``after``…)."""

    run_id: str
    phase: str


class TrafficOutcome(Record):
    """Result of ``hold_traffic``: the summary, and every ``during …`` window merged, for ``observe.expect``."""

    summary: TrafficSummary
    during: WindowStats | None = None
