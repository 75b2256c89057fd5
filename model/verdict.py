"""The verdict and time-to-safe rules: pure functions of what a run saw, used by ``DrillWorkflow`` and tested alone.

The order of the verdict rules is the contract (docs/ARCHITECTURE.md, "Verdict"): a fault left in place beats
everything (``ERROR``), then a system that was never steady, one that did not recover, a stop, an orchestration
error, broken expectations, thin evidence, and only then ``RESILIENT``. No Temporal, no clock: the workflow
passes in what it knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gameday.model.records import Coverage, FaultRecord, FaultState, StopRequest, Verdict


@dataclass(frozen=True)
class Outcome:
    """What a run saw, as the workflow knows it once verify is over.

    Attributes:
        faults: every fault's record (states and revert times).
        not_steady: the hypothesis did not hold in preflight (nothing injected).
        not_recovered: the hypothesis did not hold again within ``recovery.within``.
        stop: the stop (person, guardrail, cancel, max_duration), if any.
        errors: orchestration errors, first one first (a fault that did not apply…).
        deviated: a probe (or ``observe.expect``) broke under fault.
        expect_misses: the ``observe.expect`` lines the traffic missed, in words.
        coverage: the observation's coverage under fault, with the drill's ``min_coverage``.
        unjudged: the ``observe.expect`` lines there was nothing to judge on (the watch lost, alerts unreadable,
            no write acknowledged), in words: a declared expectation never judged cannot make a run RESILIENT.
    """

    faults: Sequence[FaultRecord] = ()
    not_steady: bool = False
    not_recovered: bool = False
    stop: StopRequest | None = None
    errors: Sequence[str] = ()
    deviated: bool = False
    expect_misses: Sequence[str] = field(default_factory=tuple)
    coverage: Coverage | None = None
    unjudged: Sequence[str] = field(default_factory=tuple)


def judge(outcome: Outcome) -> tuple[Verdict, str]:
    """The run's verdict and one line on why."""
    if any(f.state == FaultState.NOT_REVERTED for f in outcome.faults):
        return Verdict.ERROR, "a fault could NOT be reverted: act now"
    if outcome.not_steady:
        return Verdict.NOT_STEADY, "the steady state did not hold before any fault: nothing injected"
    if outcome.not_recovered:
        return Verdict.NOT_RECOVERED, "the system did not return to its steady state after rollback"
    if outcome.stop is not None:
        return Verdict.ABORTED, f"stopped by {outcome.stop.by}: {outcome.stop.reason}"
    if outcome.errors:
        applied = any(f.applied_at is not None or f.reverted_at is not None for f in outcome.faults)
        return Verdict.ERROR, outcome.errors[0] + (" (faults reverted)" if applied else " (nothing injected)")
    if outcome.deviated:
        broken = f" ({'; '.join(outcome.expect_misses)})" if outcome.expect_misses else ""
        return Verdict.DEVIATED, f"expectations broke under fault{broken}; the system recovered"
    coverage = outcome.coverage
    if coverage is not None and not coverage.sufficient:
        return (
            Verdict.INCONCLUSIVE,
            f"evidence incomplete: the probes covered {coverage.covered * 100:.0f}% of the observation "
            f"under fault (observe.min_coverage {(coverage.min_coverage or 0) * 100:.0f}%); "
            "the system recovered and expectations held as far as observed",
        )
    if outcome.unjudged:
        return (
            Verdict.INCONCLUSIVE,
            f"evidence incomplete: not judged: {'; '.join(outcome.unjudged)}; "
            "the system recovered and the other expectations held",
        )
    if outcome.faults:
        return Verdict.RESILIENT, "expectations held under fault; the system recovered"
    # no "under fault", no "recovered": a drill without faults only watched
    return Verdict.RESILIENT, "expectations held; no fault declared: nothing was injected"


def time_to_safe(
    stop: StopRequest | None, faults: Sequence[FaultRecord], healthy_at: datetime | None
) -> dict[str, float | None]:
    """Stop sent (or breach) → last revert done → first healthy check, in seconds; empty for runs not stopped.

    Counted from when ``gameday stop`` sent the stop, not when the workflow handled it: a stop that waited for a
    worker is not fast. It covers the reverts that succeeded; the faults say which did not.

    Returns:
        ``{"time_to_safe": …, "time_to_healthy": …}``: ``time_to_safe`` is 0 when nothing was left to revert
        after the stop, ``None`` when nothing was reverted after it and some fault never was.
    """
    stop_at = stop.since if stop is not None else None
    if stop_at is None:
        return {}
    reverted = [f.reverted_at for f in faults if f.reverted_at is not None and f.reverted_at >= stop_at]
    safe: float | None
    if reverted:
        safe = (max(reverted) - stop_at).total_seconds()
    elif any(f.state == FaultState.NOT_REVERTED for f in faults):
        safe = None  # nothing reverted after the stop, and something never was
    else:
        safe = 0.0  # nothing left to revert after the stop: safe the moment it arrived
    healthy = None if healthy_at is None else max(0.0, (healthy_at - stop_at).total_seconds())
    return {"time_to_safe": safe, "time_to_healthy": healthy}
