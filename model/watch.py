"""Probes that only watch (``observe.watch``) and what is judged on them: ``sequence``, ``detect``, ``alerts``.

Plain models and pure functions, safe in the workflow sandbox and tested without Temporal:

* the drill-file parts of ``observe.expect`` (:class:`SequenceExpect`, :class:`DetectExpect`,
  :class:`AlertsExpect`);
* what the watch activity keeps, bounded whatever the drill says (:class:`WatchProgress`: per probe the collapsed
  changes of its recorded value and of whether its assertion held, with times; per alert when it fired and
  resolved), which is also its resumable heartbeat;
* the judgements (:func:`judge_sequence`, :func:`judge_detect`, :func:`judge_alerts`), each an
  :class:`ExpectationResult`-shaped answer.

Recorded values are kept as text: a string as itself, any other JSON value as compact JSON (``true``, ``3``,
``{"a":1}``), clipped to :data:`MAX_VALUE_CHARS`. A ``sequence`` compares the values it names the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field, field_validator, model_validator

from gameday.model.base import Record, Strict, http_url
from gameday.model.budget import payload_bytes
from gameday.model.units import Duration, format_duration

MAX_VALUE_CHARS = 200
"""Characters of a recorded value kept (a longer JSON text is cut, ending with ``…``)."""
MAX_VALUE_BYTES = 256
"""And its bytes in a JSON payload: a control character takes six, so a bound in characters alone is not one."""
MAX_CHANGES = 100
"""Changes kept per watched probe (the first ones; later ones are only counted): enough for any breaker's story."""
CHANGES_BUDGET = 400
"""Changes kept for all watch probes together: each keeps ``min(MAX_CHANGES, CHANGES_BUDGET // probes)``, so the
heartbeat and the record stay under ~200 KB whatever the drill declares."""
MAX_ALERTS = 50
"""Distinct alert names the watch keeps; more are counted, not named."""
MAX_WATCH = 16
"""Watch probes a drill may declare."""

JsonScalar = str | int | float | bool


def value_text(value: Any, scrub: Callable[[str], str] | None = None) -> str:
    """A recorded JSON value as text: a string as itself, anything else as compact JSON; ``scrub``-bed, then
    clipped (in that order: a clip through a secret would leave its head unmasked)."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
    return clipped(text if scrub is None else scrub(text))


def clipped(text: str) -> str:
    """``text`` cut to :data:`MAX_VALUE_CHARS` characters and :data:`MAX_VALUE_BYTES` payload bytes (ending ``…``):
    values, problems and alert names the watch keeps come from the system under test, whatever they hold."""
    if len(text) <= MAX_VALUE_CHARS and payload_bytes(text) <= MAX_VALUE_BYTES:
        return text
    cut = text[: MAX_VALUE_CHARS - 1]
    while cut and payload_bytes(cut) > MAX_VALUE_BYTES - 3:
        cut = cut[: max(0, min(len(cut) - 1, len(cut) * (MAX_VALUE_BYTES - 3) // payload_bytes(cut)))]
    return cut + "…"


# --- the drill file: observe.expect's sequence, detect and alerts ---------------------------------------------


class SequenceExpect(Strict):
    """``{probe: breaker, values: [CLOSED, OPEN, HALF_OPEN, CLOSED], within: 60s}``."""

    probe: str
    """A watch probe with ``record``: the values it recorded are judged."""
    values: list[JsonScalar] = Field(min_length=1, max_length=MAX_CHANGES)
    """Values the recorded ones must go through in this order (other values may come between)."""
    within: Duration | None = None
    """Counted from the first fault applied; without it, until the watch ends (end of verify)."""

    @property
    def texts(self) -> list[str]:
        return [value_text(v) for v in self.values]


class DetectExpect(Strict):
    """``{probe: says-degraded, within: 30s}``: the probe's assertion must hold this soon after the first fault."""

    probe: str
    """A watch probe whose assertion holding means the system noticed (its health says degraded, an alert fires)."""
    within: Duration


class AlertSource(Strict):
    """Where firing alerts are read: ``{alertmanager: URL}`` (API v2) or ``{prometheus: URL}`` (``ALERTS``)."""

    alertmanager: str | None = None
    prometheus: str | None = None

    @field_validator("alertmanager", "prometheus")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @model_validator(mode="after")
    def _one(self) -> AlertSource:
        if (self.alertmanager is None) == (self.prometheus is None):
            raise ValueError("alerts.from needs exactly one of: alertmanager, prometheus")
        return self

    @property
    def url(self) -> str:
        return self.alertmanager or self.prometheus or ""


class AlertsExpect(Strict):
    """``{from: {alertmanager: URL}, fire: [CheckoutDBDown], within: 60s, resolve_within: 2m}``."""

    from_: AlertSource = Field(alias="from")
    fire: list[str] = Field(min_length=1, max_length=MAX_ALERTS)
    """Alert names (``alertname``) that must fire."""
    within: Duration = timedelta(seconds=60)
    """Each must be firing this soon after the first fault applied."""
    resolve_within: Duration | None = None
    """Each must have resolved this soon after the system recovered (verify's first healthy check)."""

    model_config = Strict.model_config | {"populate_by_name": True}


# --- what the watch keeps -------------------------------------------------------------------------------------


class Change(Record):
    """A watched probe's state from ``at`` on: its recorded value (``None`` without one) and whether it held."""

    at: datetime
    value: str | None = None
    held: bool


class WatchedProbe(Record):
    """One watch probe over the whole watch: collapsed changes (bounded) and counts."""

    name: str
    record: str | None = None
    """The JMESPath it recorded (``None``: it only judged)."""
    values: list[str] = Field(default_factory=list)
    """The recorded values in order, consecutive repeats collapsed (what ``sequence`` judges)."""
    changes: list[Change] = Field(default_factory=list)
    """Each change of value or of held, with its time (the first :data:`MAX_CHANGES`)."""
    dropped: int = 0
    """Changes past :data:`MAX_CHANGES`, counted only."""
    latest: Change | None = None
    """The state now (the last change, kept or not)."""
    samples: int = 0
    held: int = 0
    """Samples whose assertion held."""
    problem: str = ""
    """The last reason a sample did not hold."""

    def note(self, at: datetime, value: str | None, held: bool, problem: str | None, keep: int = MAX_CHANGES) -> None:
        self.samples += 1
        self.held += 1 if held else 0
        if problem:
            self.problem = clipped(problem)
        last = self.latest
        if last is not None and last.value == value and last.held == held:
            return
        self.latest = Change(at=at, value=value, held=held)
        if len(self.changes) >= keep:
            self.dropped += 1
            return
        self.changes.append(self.latest)
        if value is not None and (not self.values or self.values[-1] != value):
            self.values.append(value)


class AlertSeen(Record):
    """One alert name seen firing during the watch."""

    name: str
    fired_at: datetime
    """First poll that saw it firing."""
    resolved_at: datetime | None = None
    """First poll after that which no longer saw it (``None``: still firing at the end)."""
    at_first_poll: bool = False
    """Firing at the watch's first read of the alerts: if that was before the first fault, it was already firing."""

    def before(self, origin: datetime | None) -> bool:
        """Whether it was already firing before the first fault (``origin``): it proves nothing about the fault."""
        return self.at_first_poll and origin is not None and self.fired_at < origin


class WatchProgress(Record):
    """The watch's heartbeat and result: enough to resume after a worker crash, bounded whatever the drill."""

    started_at: datetime | None = None
    ticks: int = 0
    probes: list[WatchedProbe] = Field(default_factory=list)
    alerts: list[AlertSeen] = Field(default_factory=list)
    alerts_polled: int = 0
    alerts_more: int = 0
    """Distinct alert names past :data:`MAX_ALERTS`, counted only."""
    alerts_problem: str = ""
    """The last reason the alerts could not be read."""
    last_at: datetime | None = None

    def keep(self, probes: int) -> int:
        """Changes each of ``probes`` watch probes may keep."""
        return min(MAX_CHANGES, CHANGES_BUDGET // max(1, probes))

    def probe(self, name: str, record: str | None) -> WatchedProbe:
        for watched in self.probes:
            if watched.name == name:
                return watched
        watched = WatchedProbe(name=name, record=record)
        self.probes.append(watched)
        return watched

    def note_alerts(self, at: datetime, firing: set[str]) -> None:
        first = self.alerts_polled == 0
        self.alerts_polled += 1
        self.alerts_problem = ""
        for seen in self.alerts:
            if seen.name in firing:
                seen.resolved_at = None  # firing again: resolved only once it stays gone
            elif seen.resolved_at is None:
                seen.resolved_at = at
        known = {seen.name for seen in self.alerts}
        for name in sorted(firing - known):
            if len(self.alerts) >= MAX_ALERTS:
                self.alerts_more += 1
            else:
                self.alerts.append(AlertSeen(name=clipped(name), fired_at=at, at_first_poll=first))

    def resolved(self, names: list[str]) -> bool:
        """Whether every one of ``names`` that fired has resolved (the watch may end)."""
        seen = {s.name: s for s in self.alerts}
        return all(seen[n].resolved_at is not None for n in names if n in seen)


# --- judgements --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """One judged expectation, as :class:`~model.records.ExpectationResult` takes it."""

    name: str
    held: bool | None
    expected: str
    actual: str
    miss: str = ""


def _seconds(delta: timedelta) -> str:
    return format_duration(delta)


def _find(progress: WatchProgress | None, name: str) -> WatchedProbe | None:
    if progress is None:
        return None
    return next((p for p in progress.probes if p.name == name), None)


def seen_values(watched: WatchedProbe, origin: datetime, until: datetime | None) -> list[str]:
    """The recorded values from the watch's first sample to ``until``, repeats collapsed.

    The watch starts just before the first fault: the values before ``origin`` (when that fault's apply ended)
    are the state it found and what changed while the apply ran (a breaker may open before the apply returns).
    """
    values: list[str] = []
    for change in watched.changes:
        if change.value is None:
            continue
        if until is not None and change.at > until:
            break
        if not values or values[-1] != change.value:
            values.append(change.value)
    return values


def is_subsequence(wanted: list[str], seen: list[str]) -> bool:
    """Whether ``wanted`` appears in ``seen`` in order (other values may come between)."""
    it = iter(seen)
    return all(any(value == w for value in it) for w in wanted)


def judge_sequence(expect: SequenceExpect, progress: WatchProgress | None, origin: datetime | None) -> Judged:
    wanted = expect.texts
    expected = " → ".join(wanted) + (f" within {_seconds(expect.within)}" if expect.within else "")
    watched = _find(progress, expect.probe)
    if watched is None or origin is None or not watched.samples:
        why = "no fault applied" if origin is None else "the watch took no sample"
        return Judged("sequence", None, expected, f"not judged: {why}")
    until = None if expect.within is None else origin + expect.within
    seen = seen_values(watched, origin, until)
    actual = " → ".join(seen) or "no value recorded"
    if watched.dropped:
        actual += f" (+{watched.dropped} later change(s) not kept)"
    if is_subsequence(wanted, seen):
        return Judged("sequence", True, expected, actual)
    miss = f"'{expect.probe}' went {actual}, expected {expected}"
    return Judged("sequence", False, expected, actual, miss)


def held_before(watched: WatchedProbe, origin: datetime) -> bool:
    """Whether the probe held at the watch's first sample, taken before the first fault: a detector that holds
    before anything was injected tells nothing about the fault."""
    first = watched.changes[0] if watched.changes else None
    return first is not None and first.held and first.at < origin


def detected_at(watched: WatchedProbe, origin: datetime) -> datetime | None:
    """When the probe's assertion first held at or after ``origin`` (``origin`` itself if it held already).

    A hold that began at the watch's first sample, before the fault, is not a detection: only a hold after the
    probe stopped holding is.
    """
    changes = watched.changes
    if held_before(watched, origin):
        changes = changes[next((i for i, c in enumerate(changes) if not c.held), len(changes)) :]
    before = [change for change in changes if change.at <= origin]
    if before and before[-1].held:
        return origin
    return next((change.at for change in changes if change.at > origin and change.held), None)


def judge_detect(
    expect: DetectExpect, progress: WatchProgress | None, origin: datetime | None, ended: datetime | None
) -> tuple[Judged, float | None]:
    """The ``detect`` line and the time to detect in seconds (``None``: undetected or not judged)."""
    expected = f"detected within {_seconds(expect.within)}"
    watched = _find(progress, expect.probe)
    if watched is None or origin is None or not watched.samples:
        why = "no fault applied" if origin is None else "the watch took no sample"
        return Judged("detect", None, expected, f"not judged: {why}"), None
    at = detected_at(watched, origin)
    if at is None and held_before(watched, origin):
        actual = f"held before the first fault ({watched.samples} sample(s))"
        miss = f"not a detection: '{expect.probe}' already held before the first fault (at the watch's first sample)"
        return Judged("detect", False, expected, actual, miss), None
    if at is None:
        watched_for = max(0.0, ((ended or origin) - origin).total_seconds())
        actual = f"undetected (watched {watched_for:.0f}s, {watched.samples} sample(s))"
        miss = f"silent failure: '{expect.probe}' never detected the fault (watched {watched_for:.0f}s)"
        return Judged("detect", False, expected, actual, miss), None
    seconds = max(0.0, (at - origin).total_seconds())
    actual = f"detected after {seconds:.2f}s"
    if seconds <= expect.within.total_seconds():
        return Judged("detect", True, expected, actual), seconds
    miss = f"slow detection: '{expect.probe}' detected the fault after {seconds:.2f}s, expected within " + _seconds(
        expect.within
    )
    return Judged("detect", False, expected, actual, miss), seconds


def judge_alerts(
    expect: AlertsExpect, progress: WatchProgress | None, origin: datetime | None, healthy_at: datetime | None
) -> Judged:
    """Each expected alert fired within ``within`` of the first fault and (with ``resolve_within``) resolved within
    that long of recovery; alerts that fired but were not expected are named in ``actual``, never a miss."""
    expected = ", ".join(expect.fire) + f" fire within {_seconds(expect.within)}"
    if expect.resolve_within is not None:
        expected += f", resolve within {_seconds(expect.resolve_within)} of recovery"
    if progress is None or origin is None or not progress.alerts_polled:
        why = "no fault applied" if origin is None else (progress.alerts_problem if progress else "") or "not polled"
        return Judged("alerts", None, expected, f"not judged: {why}")
    seen = {s.name: s for s in progress.alerts}
    before = {s.name for s in progress.alerts if s.before(origin)}
    misses: list[str] = []
    said: list[str] = []
    for name in expect.fire:
        alert = seen.get(name)
        if alert is None:
            said.append(f"{name} never fired")
            misses.append(f"alert {name} never fired")
            continue
        if name in before:
            # Firing when the watch began, before anything was injected: it proves nothing about this fault.
            said.append(f"{name} already firing before the first fault")
            misses.append(f"alert {name} was already firing before the first fault")
            continue
        after = max(0.0, (alert.fired_at - origin).total_seconds())
        text = f"{name} fired after {after:.1f}s"
        if after > expect.within.total_seconds():
            misses.append(f"alert {name} fired after {after:.1f}s, expected within {_seconds(expect.within)}")
        if alert.resolved_at is not None:
            base = healthy_at or alert.resolved_at
            text += f", resolved {max(0.0, (alert.resolved_at - base).total_seconds()):.1f}s after recovery"
        else:
            text += ", still firing"
        if expect.resolve_within is not None:
            if alert.resolved_at is None:
                misses.append(f"alert {name} did not resolve within {_seconds(expect.resolve_within)} of recovery")
            elif healthy_at is not None and alert.resolved_at - healthy_at > expect.resolve_within:
                misses.append(f"alert {name} resolved later than {_seconds(expect.resolve_within)} after recovery")
        said.append(text)
    unexpected = sorted(set(seen) - set(expect.fire) - before)
    if before - set(expect.fire):
        said.append("firing before the first fault: " + ", ".join(sorted(before - set(expect.fire))))
    if unexpected:
        said.append("unexpected: " + ", ".join(unexpected))
    if progress.alerts_more:
        said.append(f"+{progress.alerts_more} more alert name(s)")
    actual = "; ".join(said)
    if misses:
        return Judged("alerts", False, expected, actual, "; ".join(misses))
    return Judged("alerts", True, expected, actual)
