"""What flows between the workflow, its activities and the store: one model per activity argument and result.

Each activity takes exactly one of these (fields can be added without breaking callers or histories) and
each is plain data: no I/O, safe to import inside the workflow sandbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field

from gameday.model.base import Record as Record
from gameday.model.budget import MAX_BY_BYTES, MAX_REASON_BYTES, clipper
from gameday.model.data_loss import DataLoss, LossBound
from gameday.model.drill import Drill, Fault, Guardrail, Probe, Target
from gameday.model.traffic import Expect, TrafficSummary
from gameday.model.watch import AlertSeen, AlertSource, WatchedProbe, WatchProgress


class Verdict(StrEnum):
    """How a drill ended. Exit codes of ``gameday run --wait`` follow :data:`EXIT_CODES`."""

    RESILIENT = "RESILIENT"
    """Expectations held under fault, and the system recovered."""
    DEVIATED = "DEVIATED"
    """Expectations broke under fault, and the system recovered: a weakness found."""
    NOT_RECOVERED = "NOT_RECOVERED"
    """The system did not return to steady state after rollback: page someone."""
    NOT_STEADY = "NOT_STEADY"
    """Unhealthy before any fault: nothing was injected."""
    ABORTED = "ABORTED"
    """Emergency stop, cancellation or max_duration before the observation ended."""
    ERROR = "ERROR"
    """The orchestration failed (a fault could not be applied or reverted); faults were still reverted."""
    INCONCLUSIVE = "INCONCLUSIVE"
    """The evidence is incomplete: the probes covered less of the observation under fault than
    ``observe.min_coverage`` (a worker lost, Temporal unreachable); the system recovered and the expectations held
    as far as they were observed."""


EXIT_CODES: dict[Verdict, int] = {
    Verdict.RESILIENT: 0,
    Verdict.DEVIATED: 2,
    Verdict.NOT_STEADY: 3,
    Verdict.ABORTED: 4,
    Verdict.NOT_RECOVERED: 5,
    Verdict.ERROR: 6,
    Verdict.INCONCLUSIVE: 7,
}


class Phase(StrEnum):
    PENDING = "pending"
    PREFLIGHT = "preflight"
    INJECT = "inject"
    OBSERVE = "observe"
    ROLLBACK = "rollback"
    VERIFY = "verify"
    RECORD = "record"
    DONE = "done"
    SWEEP = "sweep"
    """Not a phase of the drill: ``gameday sweep`` reverting faults the drill's workflow left behind."""
    APPROVAL = "approval"
    """Waiting for ``gameday approve`` between preflight and inject."""
    PAUSED = "paused"
    """Held between phases by ``gameday pause`` until ``gameday resume``."""
    NOTIFY = "notify"
    """Not a phase either: notifications that could not be delivered, recorded after the verdict."""


class StepStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"


class StepRecord(Record):
    """One phase of the drill log: when it ran, how it ended, and why."""

    phase: Phase
    status: StepStatus
    started_at: datetime
    ended_at: datetime | None = None
    detail: str = ""

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()


class FaultState(StrEnum):
    REGISTERED = "registered"
    """The revert is registered; the fault may or may not have been applied (a crash mid-apply)."""
    APPLIED = "applied"
    REVERTED = "reverted"
    FAILED = "failed"
    """Applying failed; the revert still ran."""
    NOT_REVERTED = "not_reverted"
    """Every attempt to revert failed: a fault may be left in place. Loud."""


NOT_APPLIED = "not applied: "
"""How a fault's ``error`` starts, after its label, when its apply failed before changing anything."""


PARTIAL_OUTPUT = "partial_output"
"""The key of a fault activity's heartbeat detail carrying its provider's output so far (``{PARTIAL_OUTPUT: TEXT}``,
``activities/faults/progress.py``): what a worker that died mid-apply had done, read back by the workflow."""


def partial_output(details: object) -> str | None:
    """The output so far in an activity's heartbeat details, if they carry one."""
    if not isinstance(details, list | tuple) or not details:
        return None
    last = details[-1]
    if isinstance(last, dict) and isinstance(last.get(PARTIAL_OUTPUT), str):
        return str(last[PARTIAL_OUTPUT])
    return None


class FaultRecord(Record):
    """What exactly a fault changed, so the revert and the report are exact."""

    index: int
    label: str
    target: str
    kind: str
    action: str
    state: FaultState = FaultState.REGISTERED
    applied_at: datetime | None = None
    reverted_at: datetime | None = None
    changed: dict[str, str] = Field(default_factory=dict)
    """Kind-specific facts the revert needs (pid, previous value…), all as strings."""
    output: str = ""
    """What the apply/revert printed or answered (trimmed), for the report."""
    error: str = ""

    @property
    def not_applied(self) -> bool:
        """Its apply failed before it changed anything (the target was not there): there is nothing to revert."""
        error = self.error.removeprefix(f"{self.label}: ")  # the apply's message names the fault first
        return self.state == FaultState.FAILED and self.applied_at is None and error.startswith(NOT_APPLIED)


class ProbeResult(Record):
    """A probe's samples over one phase (or one observation window), judged against its tolerance."""

    probe: str
    phase: Phase
    kind: str
    samples: int
    failures: int
    ok: bool
    latency_p50: float | None = None
    latency_p95: float | None = None
    latency_max: float | None = None
    at: datetime
    problems: list[str] = Field(default_factory=list)
    """Why it did not hold, in words (first few distinct reasons)."""
    recorded: str | None = None
    """An http probe's ``record``: the JSON value at its path in the phase's last sample that had one (a string as
    itself, else compact JSON; clipped to 200 characters)."""

    @property
    def error_rate(self) -> float:
        return self.failures / self.samples if self.samples else 0.0


Who = Annotated[str, AfterValidator(clipper(MAX_BY_BYTES))]
"""Who sent a signal; cut on arrival, so whatever a client sends, the record stays within the payload budget."""
Reason = Annotated[str, AfterValidator(clipper(MAX_REASON_BYTES))]
"""Why, as a person wrote it in a signal; cut on arrival like :data:`Who`."""


class Approve(Record):
    """``gameday approve`` / ``pause`` / ``resume``: who, and why."""

    by: Who = "unknown"
    note: Reason = ""


class StopRequest(Record):
    """Who stopped the drill, why, when the stop was sent and when the workflow received it."""

    reason: Reason
    by: Who = "unknown"
    received_at: datetime | None = None
    """When the workflow handled the stop (a guardrail: when it measured the breach)."""
    sent_at: datetime | None = None
    """When ``gameday stop`` sent it (the CLI's clock): time to safe counts from here, so a stop that waited for a
    worker to come back is not reported as fast. ``None`` for stops raised inside the workflow."""

    @property
    def since(self) -> datetime | None:
        """The moment time to safe counts from: sent, else received (the earlier, should the clocks disagree)."""
        moments = [t for t in (self.sent_at, self.received_at) if t is not None]
        return min(moments) if moments else None


# --- activity arguments and results ---------------------------------------------------------------------


class FaultInput(Record):
    run_id: str
    index: int
    target_name: str
    target: Target
    fault: Fault
    record: FaultRecord
    """The record so far: for a revert, what apply changed (possibly nothing, after a crash mid-apply)."""
    before: dict[str, str] = Field(default_factory=dict)
    """The target's state read by ``capture_target`` before the apply started (empty for drills started before
    it existed): what a revert restores, whatever an interrupted apply did or did not change."""
    lease: timedelta | None = None
    """The drill's ``fault_lease``: the worker that applies the fault reverts it on its own after this long without
    reaching Temporal (capped by its ``GAMEDAY_MAX_FAULT_LEASE``; ``None``, a drill started before leases: the
    worker's default)."""


class TargetState(Record):
    """``capture_target``'s answer: the target's state before a fault, as the provider's facts (strings)."""

    facts: dict[str, str] = Field(default_factory=dict)


class ProbeInput(Record):
    run_id: str
    phase: Phase
    probes: list[Probe]


class ObserveInput(Record):
    run_id: str
    probes: list[Probe]
    interval: timedelta
    ends_at: datetime
    """Wall-clock end of the window, so a retried attempt resumes rather than starting over."""
    guardrails: list[Guardrail] = Field(default_factory=list)
    """Checked after every tick; the first breach ends the window early with ``breach`` set."""
    duration: timedelta | None = None
    """The window's length, counted from when the activity first starts (``ends_at`` is then a floor): a busy
    worker that starts the observation late does not shorten it."""
    recovery_probes: list[str] = Field(default_factory=list)
    """The probes that judge recovery (the hypothesis after the faults), when all of them run here too: the
    window then says since when they have all held (:attr:`ObserveResult.held_since`)."""


class GuardrailBreach(Record):
    """A guardrail crossed during observation: which, the values that crossed it, and when."""

    guardrail: str
    detail: str
    at: datetime


class CoverageGap(Record):
    """A stretch of the observation window in which no probe sampled, and why."""

    start: datetime
    end: datetime
    cause: str

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())


class Coverage(Record):
    """How much of the observation under fault the probes actually watched: the evidence behind the verdict.

    ``covered`` is the share of the window's time outside :attr:`gaps`; a gap is a stretch without any sample
    longer than one interval plus :data:`~activities.probes.coverage.GAP_SLACK` (a worker lost and its attempt
    resumed, Temporal unreachable, a frozen worker).
    """

    window_start: datetime
    window_end: datetime
    """When the window ended: its planned end, or when a stop or a guardrail cut it short."""
    interval: float
    """Seconds between ticks (``observe.interval``)."""
    ticks_expected: int
    ticks_taken: int
    ticks_missed: int = 0
    """Ticks due while too many earlier ones were still running (slow probes): not started, not sampled."""
    covered: float
    """Share of the window, 0-1, in which the probes were sampling."""
    gap_seconds: float = 0.0
    """Total length of the gaps (all of them, even past the ones listed)."""
    gaps: list[CoverageGap] = Field(default_factory=list)
    """The gaps, in order (the first :data:`~activities.probes.coverage.MAX_GAPS`)."""
    min_coverage: float | None = None
    """The drill's ``observe.min_coverage``: below it the run cannot be RESILIENT (set by the workflow)."""

    @property
    def window_seconds(self) -> float:
        return max(0.0, (self.window_end - self.window_start).total_seconds())

    @property
    def sufficient(self) -> bool:
        """Whether the evidence reaches ``min_coverage`` (always, when none is set)."""
        return self.min_coverage is None or self.covered >= self.min_coverage

    def describe(self) -> str:
        """``"38 of 40 tick(s), 95% of the window covered, 1 gap(s) (2.1 s)"``."""
        text = f"{self.ticks_taken} of {self.ticks_expected} tick(s), {self.covered * 100:.0f}% of the window covered"
        if self.ticks_missed:
            text += f", {self.ticks_missed} tick(s) missed (probes slower than the interval)"
        if self.gap_seconds:
            text += f", {len(self.gaps)} gap(s) ({self.gap_seconds:.1f} s)"
        return text


class ObserveProgress(Record):
    """Heartbeat details of the observation: compact, and enough to resume after a worker crash."""

    ticks: int = 0
    ends_at: datetime | None = None
    """When the window ends, fixed at the first attempt's start, so a retried attempt resumes to the same end."""
    samples: dict[str, list[float | None]] = Field(default_factory=dict)
    """Per probe, each sample's latency in seconds, ``None`` for a failed sample (bounded per probe)."""
    failures: dict[str, int] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    problems: dict[str, list[str]] = Field(default_factory=dict)
    started_at: datetime | None = None
    """When the window started (fixed with ``ends_at``): coverage counts from here."""
    last_tick_at: datetime | None = None
    """When the last tick's samples were all in: a resumed attempt's gap starts here."""
    last_started_at: datetime | None = None
    """When the last tick came due (started, or missed behind slow probes): a stall is a stretch with none."""
    missed: int = 0
    """Ticks not started because earlier ticks' probes were still running (the bound on overlapping ticks)."""
    gaps: list[CoverageGap] = Field(default_factory=list)
    gap_seconds: float = 0.0
    held_since: datetime | None = None
    """Start of the first tick of the current run of ticks at which every recovery probe held."""
    held_until: datetime | None = None
    """Start of the last tick of that run."""
    recorded: dict[str, str] = Field(default_factory=dict)
    """Per probe with ``record``, the last value it recorded."""


class ObserveResult(Record):
    results: list[ProbeResult]
    ticks: int
    deviated: bool
    interrupted: bool = False
    """The window was cut short (stop, guardrail, max_duration): the results cover what was observed."""
    breach: GuardrailBreach | None = None
    """Set when a guardrail ended the window."""
    coverage: Coverage | None = None
    """How much of the window the probes watched (``None`` from workers older than coverage)."""
    held_since: datetime | None = None
    """Since when every one of ``ObserveInput.recovery_probes`` held at each tick, to the end of the window
    (the start of that streak's first tick); ``None`` if the last tick failed, or none were asked for. A fault
    reverted early (its own ``duration``) has its recovery seen here, not only once verify begins."""
    held_until: datetime | None = None
    """Start of the last tick of that streak (the window's last tick)."""


class VerifyInput(Record):
    run_id: str
    probes: list[Probe]
    within: timedelta
    interval: timedelta
    consecutive: int = 1
    """Checks in a row that must hold."""
    since: datetime | None = None
    """When the system was last faulted (the latest revert of any fault, early reverts included): time to
    recovery counts from here (else from the start of verify)."""


class VerifyResult(Record):
    recovered: bool
    results: list[ProbeResult]
    attempts: int
    time_to_recovery: float | None = None
    """Seconds from the last revert (``since``) to the start of the first of ``consecutive`` checks that held."""
    healthy_at: datetime | None = None
    """When the first check of that healthy streak ended."""


class AlertInput(Record):
    """Argument of ``alert``: something people must act on now."""

    run_id: str
    drill_name: str
    team: str = ""
    event: str
    """``fault_not_reverted``, ``site_without_worker``…"""
    summary: str
    faults: list[FaultRecord] = Field(default_factory=list)


class ExpectationResult(Record):
    """One judged expectation of ``observe.expect`` beyond the traffic's service levels: ``sequence``, ``detect``,
    ``alerts``, ``data_loss``. The reports, the JUnit file and the verdict's summary show one line for each.
    """

    name: str
    """The expectation's key in the drill file: ``sequence``, ``detect``, ``alerts``, ``data_loss``."""
    held: bool | None
    """Whether it held; ``None`` when there was nothing to judge it on (the watch was lost, no traffic ran)."""
    expected: Annotated[str, AfterValidator(clipper(MAX_REASON_BYTES))]
    """The bound in words: ``CLOSED → OPEN → HALF_OPEN → CLOSED within 60s``, ``detected within 30s``."""
    actual: Annotated[str, AfterValidator(clipper(MAX_REASON_BYTES))]
    """What was seen, in words: ``CLOSED → OPEN → CLOSED``, ``detected after 4.5s``, ``lost 17 of 10000``."""
    miss: Annotated[str, AfterValidator(clipper(MAX_REASON_BYTES))] = ""
    """When it did not hold: the verdict's words for it (``silent failure: 'says-degraded' never detected…``)."""


def service_levels_unjudged(expect: Expect | None) -> ExpectationResult | None:
    """``observe.expect``'s service levels when the traffic they judge was lost (no worker took it over): one line
    not judged, so the run cannot be RESILIENT on levels nobody measured. ``None`` when none was declared."""
    keys = [] if expect is None else expect.on_traffic
    if expect is None or not keys:
        return None
    return ExpectationResult(
        name="service_levels",
        held=None,
        expected=", ".join(f"{key.replace('_', ' ')} {expect.shown(key)}" for key in keys),
        actual="not judged: the traffic was lost (its worker died, and no other took it over)",
    )


def data_loss_expectation(bound: LossBound, loss: DataLoss | None, why_not: str = "") -> ExpectationResult:
    """``observe.expect.data_loss`` judged: lost and duplicated must each be within ``bound`` (a count, or a share of
    the writes checked). Nothing to judge (no write acknowledged, no read-back: ``why_not``) holds ``None``."""
    expected = f"lost and duplicated each {bound.shown()}"
    if loss is None or loss.checked == 0:
        actual = why_not or "no write acknowledged"
        return ExpectationResult(name="data_loss", held=None, expected=expected, actual=actual)
    of = f"of {loss.checked} read back" + (f" (sample of {loss.acknowledged} acknowledged)" if loss.sampled else "")
    unchecked = (
        f"; up to {loss.unaccounted} write(s) of a lost traffic worker not checked (their answers died with it)"
        if loss.unaccounted
        else ""
    )
    actual = f"lost {loss.lost}, duplicated {loss.duplicated} {of}{unchecked}"
    if loss.ghost_id is not None:
        actual = (
            f"not judged: id {loss.ghost_id}, never written, read back as found (the service answers for any id, "
            f"so no write can read back lost); {actual}"
        )
        return ExpectationResult(name="data_loss", held=None, expected=expected, actual=actual)
    broken = [f"{n} {what}" for what, n in (("lost", loss.lost), ("duplicated", loss.duplicated))]
    misses = [b for b, n in zip(broken, (loss.lost, loss.duplicated), strict=True) if not bound.holds(n, loss.checked)]
    if not misses:
        return ExpectationResult(name="data_loss", held=True, expected=expected, actual=actual)
    shown = ", ".join(misses)
    first = f" (first lost ids: {', '.join(map(str, loss.lost_ids[:5]))})" if loss.lost and loss.lost_ids else ""
    miss = f"data loss: {shown} {of}, expected {bound.shown()}{first}{unchecked}"
    return ExpectationResult(name="data_loss", held=False, expected=expected, actual=actual, miss=miss)


class WatchInput(Record):
    """Argument of ``watch``: sample ``probes`` (and poll ``alerts``) every ``interval`` until cancelled or ``until``.

    A retried attempt resumes from ``resume`` or its heartbeat. With ``until_resolved`` the watch ends on its own
    once every one of those alerts that fired has resolved (the recovery's tail, bounded by ``until``).
    """

    run_id: str
    probes: list[Probe] = Field(default_factory=list)
    interval: timedelta
    until: datetime
    """A safety cap: the watch ends here whatever happens (the workflow cancels it long before)."""
    alerts: AlertSource | None = None
    until_resolved: list[str] = Field(default_factory=list)
    resume: WatchProgress | None = None


class DrillInput(Record):
    """The workflow's argument: the validated drill, never secrets."""

    run_id: str
    drill: Drill
    source: str = ""
    """Where the drill came from (a file path), for the record."""
    started_by: str = ""
    blackouts: list[str] = Field(default_factory=list)
    """A scheduled drill's blackout windows (``2026-12-24..2026-12-26``, ``cron:* * * * SAT,SUN``): a run that
    starts inside one records itself skipped and touches nothing."""
    time_zone: str = "UTC"
    """The zone the blackouts are read in (the schedule's)."""


class BlackoutCheck(Record):
    """Argument of ``check_blackout``."""

    blackouts: list[str]
    time_zone: str


class RunRecord(Record):
    """The whole record of one run: what the store writes and what the workflow returns."""

    run_id: str
    drill_name: str
    team: str = ""
    source: str = ""
    started_by: str = ""
    phase: Phase = Phase.PENDING
    verdict: Verdict | None = None
    started_at: datetime
    ended_at: datetime | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    faults: list[FaultRecord] = Field(default_factory=list)
    probes: list[ProbeResult] = Field(default_factory=list)
    stop: StopRequest | None = None
    time_to_recovery: float | None = None
    time_to_safe: float | None = None
    """Stopped or aborted runs: seconds from the stop (or guardrail breach) to the last revert done."""
    time_to_healthy: float | None = None
    """Stopped or aborted runs: seconds from the stop to the first healthy check after the reverts."""
    traffic: TrafficSummary | None = None
    """What ``observe.traffic`` measured: windows ``before``, ``during <faults>``, ``rollback``, ``after`` and the
    total, each with counts, percentiles and its HDR histogram, plus the per-second timeline."""
    error: str = ""
    summary: str = ""
    """One line on why the verdict is what it is."""
    coverage: Coverage | None = None
    """The observation's coverage under fault: ticks expected and taken, the gaps with their times and cause."""
    expect: Expect | None = None
    """The drill's ``observe.expect``: the thresholds the reports show beside what the traffic measured."""
    expectations: list[ExpectationResult] = Field(default_factory=list)
    """``observe.expect``'s ``sequence``, ``detect``, ``alerts`` and ``data_loss``, judged (empty without them)."""
    time_to_detect: float | None = None
    """Seconds from the first fault applied to the first sample where ``detect``'s probe held; ``None`` when the
    drill declares no ``detect`` or its detector never fired (then its expectation says "undetected")."""
    data_loss: DataLoss | None = None
    """What ``read_back`` found (``acknowledged``, ``checked``, ``lost``, ``duplicated``…); ``None`` without one."""
    watch: list[WatchedProbe] = Field(default_factory=list)
    """``observe.watch``: each probe's collapsed values (``values``) and changes with times, bounded."""
    alerts: list[AlertSeen] = Field(default_factory=list)
    """Alerts seen firing during the watch (``observe.expect.alerts``), expected or not, with fire/resolve times."""


class DrillStatus(Record):
    """Answer of the ``status`` query: where the drill is and what it last measured."""

    run_id: str
    phase: Phase
    faults_active: list[str]
    last_measurements: list[ProbeResult]
    steps: list[StepRecord] = Field(default_factory=list)
    """The phases finished so far, for live progress."""
    stop: StopRequest | None = None
    verdict: Verdict | None = None
    faults: list[FaultRecord] = Field(default_factory=list)
    rolled_back: bool = False
    """Every fault has been reverted or given up on (NOT REVERTED)."""
    time_to_safe: float | None = None
    """Once rolled back after a stop: seconds from the stop to the last revert done."""
    time_to_healthy: float | None = None
    started_at: datetime | None = None
    """Set when the status comes from the run's record (the live query leaves the times out)."""
    ended_at: datetime | None = None
    time_to_recovery: float | None = None
    summary: str = ""
    """The record's one line on why the verdict is what it is."""
    recorded: bool = False
    """The answer comes from the results database (or the workflow's result), not from the live workflow."""

    @classmethod
    def from_record(cls, record: RunRecord) -> DrillStatus:
        """The status a run's record (final, or the last progress written) tells, and nothing it does not.

        The phases, faults, verdict and times are the record's own; ``last_measurements`` keeps each probe's latest
        result as recorded; ``faults_active`` names the faults the record does not show reverted or failed.
        """
        latest: dict[str, ProbeResult] = {}
        for probe in record.probes:
            latest[probe.probe] = probe  # written in order: the last one per probe is its latest
        settled = (FaultState.REVERTED, FaultState.FAILED, FaultState.NOT_REVERTED)
        return cls(
            run_id=record.run_id,
            phase=record.phase,
            faults_active=[f.label for f in record.faults if f.state not in settled],
            last_measurements=list(latest.values()),
            steps=list(record.steps),
            stop=record.stop,
            verdict=record.verdict,
            faults=list(record.faults),
            rolled_back=bool(record.faults) and all(f.state in settled for f in record.faults),
            time_to_safe=record.time_to_safe,
            time_to_healthy=record.time_to_healthy,
            started_at=record.started_at,
            ended_at=record.ended_at,
            time_to_recovery=record.time_to_recovery,
            summary=record.summary,
            recorded=True,
        )
