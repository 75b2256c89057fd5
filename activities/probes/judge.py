"""Samples and the verdict on them: did a probe's samples stay within its tolerance?

A :class:`Sample` is one measurement by any probe kind. :func:`judge` turns a probe's samples over one phase
into a :class:`~model.records.ProbeResult`; :func:`judge_tally` does the same from running counts, which
is what the observation keeps (its latencies are bounded, its counts are not).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gameday.model.budget import MAX_PROBLEM_BYTES, clip
from gameday.model.drill import Probe
from gameday.model.records import Phase, ProbeResult
from gameday.model.units import Comparison, beyond, format_duration

MAX_PROBLEMS = 5
"""A result lists at most this many distinct reasons: enough to act on, short enough to read."""


@dataclass(frozen=True)
class Sample:
    """One measurement taken by a probe."""

    ok: bool
    """Whether this sample met the probe's expectations (status, body, exit code…)."""
    latency: float
    """Seconds the sample took, measured even when it failed (a timeout takes the whole timeout)."""
    problem: str | None = None
    """Why the sample failed, in words (``"status 503 (expected 200)"``); ``None`` when ``ok``."""
    value: str | None = None
    """An http probe's ``record``: the JSON value at its path, as text (``model.watch.value_text``)."""


@dataclass(frozen=True)
class Tally:
    """What a verdict needs from a probe's samples, whether they are all kept or only counted."""

    samples: int
    """How many samples were taken."""
    failures: int
    """How many of them were not ok."""
    latencies: Sequence[float]
    """Latencies (seconds) the percentiles are computed over: all samples, or a uniform subset of them."""
    reasons: Sequence[str]
    """Why samples failed, in the order first seen; duplicates are allowed."""
    recorded: str | None = None
    """The last recorded value (``record``) among the samples."""

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Tally:
        """Count ``samples``; failed samples keep their measured latency in the percentiles."""
        return cls(
            samples=len(samples),
            failures=sum(1 for s in samples if not s.ok),
            latencies=[s.latency for s in samples],
            reasons=[s.problem for s in samples if not s.ok and s.problem],
            recorded=next((s.value for s in reversed(samples) if s.value is not None), None),
        )


def judge(probe: Probe, phase: Phase, samples: Sequence[Sample], at: datetime) -> ProbeResult:
    """Judge a probe's samples over one phase against its tolerance.

    Args:
        probe: The probe whose samples these are; its ``tolerance`` decides.
        phase: The drill phase the samples were taken in.
        samples: Every sample the probe took in that phase.
        at: When the samples were judged (an aware UTC datetime).

    Returns:
        The result; ``ok`` iff the error rate, p95 and max latency are all within tolerance.
    """
    return judge_tally(probe, phase, Tally.of(samples), at)


def _missed(op: Comparison | None) -> str:
    """How a missed ceiling reads: ``>`` for one written bare or ``<=``, ``>=`` for one written ``<``."""
    return ">=" if op == "<" else ">"


def judge_tally(probe: Probe, phase: Phase, tally: Tally, at: datetime) -> ProbeResult:
    """Judge a probe from counts and latencies rather than individual samples (see :func:`judge`).

    A probe with no samples at all is not ok: nothing was shown to hold.
    """
    tolerance = probe.tolerance
    latencies = sorted(tally.latencies)
    p50 = nearest_rank(latencies, 50)
    p95 = nearest_rank(latencies, 95)
    worst = latencies[-1] if latencies else None

    ops = tolerance.comparisons
    verdicts: list[str] = []
    if tally.samples == 0:
        verdicts.append("no samples taken")
    elif beyond(tally.failures / tally.samples, tolerance.error_rate, ops.get("error_rate"), default="<="):
        verdicts.append(
            f"error rate {_percent(tally.failures / tally.samples)} {_missed(ops.get('error_rate'))} "
            f"{_percent(tolerance.error_rate)}"
        )
    bounds = (("p95", p95, tolerance.latency_p95), ("max", worst, tolerance.latency_max))
    for name, value, limit in bounds:
        op = ops.get(f"latency_{name}")
        if limit is not None and value is not None and beyond(value, limit.total_seconds(), op, default="<="):
            verdicts.append(f"{name} {in_words(value)} {_missed(op)} {in_words(limit.total_seconds())}")

    return ProbeResult(
        probe=probe.name,
        phase=phase,
        kind=probe.kind.value,
        samples=tally.samples,
        failures=tally.failures,
        ok=not verdicts,
        latency_p50=p50,
        latency_p95=p95,
        latency_max=worst,
        at=at,
        # The verdict's own reasons come first; then why samples failed, even when the tolerance absorbed them.
        problems=distinct([*verdicts, *tally.reasons]),
        recorded=tally.recorded,
    )


def nearest_rank(ordered: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile of ascending ``ordered`` values; ``None`` when there are none."""
    if not ordered:
        return None
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def distinct(reasons: Iterable[str], limit: int = MAX_PROBLEMS) -> list[str]:
    """The first ``limit`` distinct reasons, in the order first seen, each cut to the payload budget."""
    seen: list[str] = []
    for found in reasons:
        reason = clip(found, MAX_PROBLEM_BYTES)
        if reason not in seen:
            seen.append(reason)
            if len(seen) == limit:
                break
    return seen


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.3g}%"


def in_words(value: float) -> str:
    """Seconds as a person reads them: ``412ms``, ``1.5s``, ``2m5s`` (three significant digits at most)."""
    if value < 1:
        ms = value * 1000
        return f"{ms:.3g}ms" if ms < 100 else f"{ms:.0f}ms"
    if value < 60:
        return f"{value:.3g}s"
    return format_duration(timedelta(seconds=round(value)))
