"""The resilience score: 0-100 per run, per drill (its recent runs) and per game day. Pure functions, no I/O.

The formula, its reasons and worked examples are in ``docs/SCORE.md``; in short:

- a run scores ``RECOVERED_POINTS`` for coming back to steady state by itself within ``recovery.within`` (every
  RESILIENT or DEVIATED run did, else it would be NOT_RECOVERED) plus ``HELD_POINTS`` times the share of its
  checks under fault that held: RESILIENT 100, DEVIATED 50-99, NOT_RECOVERED 0;
- ABORTED, NOT_STEADY, ERROR and INCONCLUSIVE runs, and unfinished ones, are **not scored** (``None``): the
  experiment did not run as designed (INCONCLUSIVE: the probes missed too much of the time under fault), so they
  say nothing sure about the system, and counting them as 0 or 100 would both lie;
- a drill's score is the mean of its last ``DRILL_WINDOW`` scored runs; a game day's, the mean of its drills' runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import fmean

from gameday.model.records import Phase, ProbeResult, RunRecord, Verdict

RECOVERED_POINTS = 50.0
"""What recovering by itself is worth: half the score."""
HELD_POINTS = 50.0
"""What expectations under fault are worth, times the share of checks that held."""
DRILL_WINDOW = 5
"""How many of a drill's most recent scored runs its score averages (and the trend compares with the 5 before)."""
NOT_SCORED = frozenset({Verdict.ABORTED, Verdict.NOT_STEADY, Verdict.ERROR, Verdict.INCONCLUSIVE})
"""Verdicts of runs whose experiment did not run as designed: left out of every mean."""


@dataclass(frozen=True)
class RunScore:
    """One run's score and the reason for it, in words.

    Attributes:
        score: 0-100, or ``None`` when the run is not scored (see :data:`NOT_SCORED`).
        why: how the number was reached, e.g. ``"recovered, 1 of 2 checks held under fault"``.
    """

    score: float | None
    why: str


def score_run(verdict: Verdict | None, probes: Sequence[ProbeResult] = ()) -> RunScore:
    """The score of one run from its verdict and the probe results recorded while the faults were in place.

    Args:
        verdict: the run's verdict; ``None`` while it runs.
        probes: the run's probe results (any phase: only ``observe`` ones count).

    Returns:
        RESILIENT 100; NOT_RECOVERED 0; DEVIATED ``50 + 50 * held / checks``, where the checks are the observe
        probe results, plus one failed check when none of them failed (the expectation that broke was
        ``observe.expect`` on the traffic, which is not a probe result); not scored otherwise.
    """
    if verdict is None:
        return RunScore(None, "not finished")
    if verdict is Verdict.INCONCLUSIVE:
        return RunScore(None, "not scored: INCONCLUSIVE, the evidence under fault is incomplete")
    if verdict in NOT_SCORED:
        return RunScore(None, f"not scored: {verdict.value} runs do not test the hypothesis to the end")
    if verdict is Verdict.NOT_RECOVERED:
        return RunScore(0.0, "did not recover")
    if verdict is Verdict.RESILIENT:
        return RunScore(RECOVERED_POINTS + HELD_POINTS, "recovered, every expectation held under fault")
    under_fault = [result for result in probes if result.phase is Phase.OBSERVE]
    held = sum(1 for result in under_fault if result.ok)
    checks = len(under_fault) + (1 if held == len(under_fault) else 0)
    score = RECOVERED_POINTS + HELD_POINTS * held / checks
    return RunScore(score, f"recovered, {held} of {checks} check(s) held under fault")


def score_record(record: RunRecord) -> RunScore:
    """:func:`score_run` of a whole record (its probes must be loaded: ``Store.get`` or ``Store.with_details``)."""
    return score_run(record.verdict, record.probes)


def mean_score(scores: Iterable[float | None]) -> float | None:
    """The mean of the scored values (``None`` are left out); ``None`` if there are none."""
    scored = [score for score in scores if score is not None]
    return fmean(scored) if scored else None


def drill_score(scores: Sequence[float | None], window: int = DRILL_WINDOW) -> float | None:
    """A drill's score: the mean of its last ``window`` scored runs.

    Args:
        scores: each run's score, oldest first (``None`` for runs not scored, which are skipped, not counted).
        window: how many scored runs to average.
    """
    scored = [score for score in scores if score is not None]
    return fmean(scored[-window:]) if scored and window > 0 else None


def rolling_scores(scores: Sequence[float | None], window: int = DRILL_WINDOW) -> list[float | None]:
    """The drill's score as it stood after each run (oldest first): its trend over time."""
    return [drill_score(scores[: n + 1], window) for n in range(len(scores))]


def score_trend(scores: Sequence[float | None], window: int = DRILL_WINDOW) -> float | None:
    """Mean of the last ``window`` scored runs minus the mean of the ``window`` before them (positive: better).

    ``None`` until there is at least one scored run before the last ``window``.
    """
    scored = [score for score in scores if score is not None]
    if window <= 0 or len(scored) <= window:
        return None
    return fmean(scored[-window:]) - fmean(scored[-2 * window : -window])


def gameday_score(scores: Iterable[float | None]) -> float | None:
    """A game day's score: the mean over its drills' runs that were scored (one run per drill entry)."""
    return mean_score(scores)


def format_score(score: float | None) -> str:
    """``"75/100"``, or ``"-"`` when not scored."""
    return "-" if score is None else f"{score:.0f}/100"
