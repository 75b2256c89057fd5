"""Guardrails: abort conditions on the live observation, checked after every tick.

A :class:`GuardrailWatch` keeps, per watched probe, the last ``window`` samples and the current run of
failures; :meth:`GuardrailWatch.breach` names the first guardrail crossed, with the values that crossed it.
Counting rules are chosen so a breach never waits for a window to fill: ``error_rate: 50%`` over a window of
10 breaches at the 6th failure among the last 10 samples, however few samples came before.
"""

from __future__ import annotations

import math
from bisect import insort
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gameday.activities.probes.judge import Sample, in_words
from gameday.model.drill import Guardrail
from gameday.model.units import Comparison, crosses

_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass
class _Trail:
    """What one guardrail remembers of its probe.

    Samples can arrive out of order (overlapping ticks: a slow one ends after later ones), so the run of failures
    follows the samples' start times: it counts the failures that started after the latest success started.
    """

    window: deque[Sample]
    last_ok: datetime | None = None
    """Start of the latest-started successful sample."""
    failed_since: list[datetime] = field(default_factory=list)
    """Starts of the failed samples that started after ``last_ok`` (the latest :data:`KEEP_FAILED` of them)."""
    older_failed: int = 0
    """Failures after ``last_ok`` beyond those kept in ``failed_since`` (all started before them)."""

    @property
    def streak(self) -> int:
        return self.older_failed + len(self.failed_since)


KEEP_FAILED = 256
"""Failure start times kept per guardrail: a late success can only start before the few ticks still in flight."""


@dataclass
class GuardrailWatch:
    """The state of every guardrail of one observation window.

    Args:
        guardrails: the drill's ``observe.guardrails``, checked in order.
    """

    guardrails: list[Guardrail]
    _trails: dict[str, _Trail] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._trails = {g.name: _Trail(window=deque(maxlen=g.window)) for g in self.guardrails}

    def record(self, guard: Guardrail, sample: Sample, began: datetime | None = None) -> None:
        """Add one sample of ``guard``'s probe (or of its ``stop_when`` probe), started at ``began``.

        Without ``began`` the samples are taken to arrive in the order they started.
        """
        trail = self._trails[guard.name]
        trail.window.append(sample)
        if began is None:
            began = max([t for t in (trail.last_ok, *trail.failed_since[-1:]) if t is not None], default=_EPOCH)
        if trail.last_ok is not None and began < trail.last_ok:
            return  # older than the latest success: it neither ends nor extends the current run of failures
        if sample.ok:
            trail.last_ok = began
            after = [t for t in trail.failed_since if t > began]
            if len(after) < len(trail.failed_since) or trail.older_failed == 0:
                trail.older_failed = 0  # the dropped ones started before the kept ones, so before this success
            trail.failed_since = after
            return
        insort(trail.failed_since, began)
        if len(trail.failed_since) > KEEP_FAILED:
            trail.failed_since.pop(0)
            trail.older_failed += 1

    def breach(self) -> tuple[Guardrail, str] | None:
        """The first guardrail crossed, with the measured values in words; ``None`` when all hold."""
        for guard in self.guardrails:
            detail = self._crossed(guard, self._trails[guard.name])
            if detail is not None:
                return guard, detail
        return None

    @staticmethod
    def _crossed(guard: Guardrail, trail: _Trail) -> str | None:
        samples = list(trail.window)
        if not samples:
            return None
        if guard.stop_when is not None:
            return "stop_when probe answered: stop" if samples[-1].ok else None
        if guard.failing is not None and trail.streak >= guard.failing:
            return f"{trail.streak} failed samples in a row (limit {guard.failing})"
        failed = sum(1 for s in samples if not s.ok)
        ops = guard.comparisons
        if guard.error_rate is not None and crosses(
            failed, guard.error_rate * guard.window, ops.get("error_rate"), default=">"
        ):
            return (
                f"{failed} of the last {len(samples)} samples failed "
                f"(error_rate limit {ops.get('error_rate', '>')} {guard.error_rate * 100:.3g}% of {guard.window})"
            )
        for percent, limit in ((95, guard.latency_p95), (99, guard.latency_p99)):
            detail = _slow(samples, percent, limit, guard.window, ops.get(f"latency_p{percent}"))
            if detail is not None:
                return detail
        return None


def _slow(
    samples: list[Sample], percent: int, limit: timedelta | None, window: int, op: Comparison | None = None
) -> str | None:
    """p``percent`` of the window exceeds ``limit`` once more than (100 - percent)% of it is slower.

    A failed sample counts as slow: a stalled target that only times out must trip a latency guardrail.
    """
    if limit is None:
        return None
    bound = limit.total_seconds()
    slow = sum(1 for s in samples if not s.ok or crosses(s.latency, bound, op, default=">"))
    allowed = math.floor((100 - percent) / 100 * window)
    if slow <= allowed:
        return None
    ordered = sorted(math.inf if not s.ok else s.latency for s in samples)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    value = ordered[rank - 1]
    shown = "timeouts/failures" if value == math.inf else in_words(value)
    return f"p{percent} of the last {len(samples)} samples {shown} {op or '>'} {in_words(bound)} ({slow} slow)"
