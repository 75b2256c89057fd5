"""The trend of one drill (``gameday history DRILL``): its runs oldest to newest, their scores, and a summary.

:func:`build_history` is pure (records in, :class:`DrillHistory` out, unit-testable); :func:`load_history` reads
the runs from the results database first. Scores follow :mod:`model.score` (``docs/SCORE.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from gameday.activities.store import Store
from gameday.model.base import Record
from gameday.model.records import FaultState, Phase, RunRecord, Verdict
from gameday.model.score import DRILL_WINDOW, drill_score, rolling_scores, score_record, score_trend


class HistoryEntry(Record):
    """One run of the drill as the trend shows it."""

    run_id: str
    started_at: datetime
    verdict: Verdict | None
    phase: Phase
    """Where an unfinished run is (``verdict`` is ``None``)."""
    time_to_recovery: float | None
    time_to_safe: float | None
    """Only for runs that were stopped (by a person, a guardrail, Temporal): stop → last revert done."""
    faults: int
    faults_reverted: int
    score: float | None
    """This run's score (``None``: not scored)."""
    score_why: str
    drill_score: float | None
    """The drill's score as it stood after this run: mean of the last ``window`` scored runs up to here."""


class HistorySummary(Record):
    """The runs shown, in a few figures."""

    runs: int
    resilient: int
    resilient_share: float | None
    """RESILIENT runs over finished runs (``None`` if none finished)."""
    recovery_median: float | None
    """Seconds; over the runs with a time to recovery."""
    recovery_p90: float | None
    """Seconds, nearest-rank 90th percentile."""
    score: float | None
    """The drill's score now: mean of its last ``window`` scored runs."""
    trend: float | None
    """Mean score of the last ``window`` scored runs minus that of the ``window`` before (positive: better)."""
    window: int


class DrillHistory(Record):
    """What ``gameday history`` prints, and exactly what ``--format json`` prints."""

    drill: str
    team: str | None
    entries: list[HistoryEntry]
    """Oldest first."""
    summary: HistorySummary


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` in 0-1): always a value that was measured; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float | None:
    """The middle value (mean of the two middle ones for an even count); ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def build_history(
    drill: str, runs: Sequence[RunRecord], *, team: str | None = None, window: int = DRILL_WINDOW
) -> DrillHistory:
    """The trend of ``drill`` from its runs (any order; their probes and faults loaded).

    Args:
        drill: the drill's name, for the heading.
        runs: the runs to show; sorted here oldest first.
        team: the team filter used, if any, for the heading.
        window: how many scored runs the drill's score averages and the trend compares.
    """
    ordered = sorted(runs, key=lambda run: (run.started_at, run.run_id))
    scored = [score_record(run) for run in ordered]
    values = [s.score for s in scored]
    entries = [
        HistoryEntry(
            run_id=run.run_id,
            started_at=run.started_at,
            verdict=run.verdict,
            phase=run.phase,
            time_to_recovery=run.time_to_recovery,
            time_to_safe=run.time_to_safe if run.stop is not None else None,
            faults=len(run.faults),
            faults_reverted=sum(1 for fault in run.faults if fault.state is FaultState.REVERTED),
            score=score.score,
            score_why=score.why,
            drill_score=rolling,
        )
        for run, score, rolling in zip(ordered, scored, rolling_scores(values, window), strict=True)
    ]
    finished = [run for run in ordered if run.verdict is not None]
    resilient = sum(1 for run in finished if run.verdict is Verdict.RESILIENT)
    recoveries = [run.time_to_recovery for run in ordered if run.time_to_recovery is not None]
    summary = HistorySummary(
        runs=len(ordered),
        resilient=resilient,
        resilient_share=resilient / len(finished) if finished else None,
        recovery_median=median(recoveries),
        recovery_p90=percentile(recoveries, 0.9),
        score=drill_score(values, window),
        trend=score_trend(values, window),
        window=window,
    )
    return DrillHistory(drill=drill, team=team, entries=entries, summary=summary)


def load_history(
    store: Store, drill: str, *, team: str | None = None, limit: int = 20, window: int = DRILL_WINDOW
) -> DrillHistory:
    """The last ``limit`` runs of ``drill`` from ``store``, as :func:`build_history` shows them (four queries)."""
    runs = store.with_details(store.list_runs(drill=drill, team=team, limit=limit))
    return build_history(drill, runs, team=team, window=window)
