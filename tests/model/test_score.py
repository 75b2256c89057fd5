"""The resilience score (``model/score.py``) against examples computed by hand (also in ``docs/SCORE.md``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gameday.activities.history import build_history, median, percentile
from gameday.model.records import Phase, ProbeResult, Verdict
from gameday.model.score import (
    drill_score,
    format_score,
    gameday_score,
    rolling_scores,
    score_record,
    score_run,
    score_trend,
)
from tests.activities.test_store import make_record

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def probe(name: str, ok: bool, phase: Phase = Phase.OBSERVE) -> ProbeResult:
    return ProbeResult(probe=name, phase=phase, kind="http", samples=10, failures=0 if ok else 5, ok=ok, at=T0)


def test_resilient_scores_100_and_not_recovered_0_whatever_the_probes() -> None:
    assert score_run(Verdict.RESILIENT, [probe("a", True)]).score == 100
    assert score_run(Verdict.RESILIENT).score == 100
    assert score_run(Verdict.NOT_RECOVERED, [probe("a", True), probe("b", True)]).score == 0


def test_deviated_earns_50_for_recovering_plus_50_times_the_share_of_probes_that_held_under_fault() -> None:
    # 1 of 2 observe probes held: 50 + 50 * 1/2 = 75.
    two = score_run(Verdict.DEVIATED, [probe("a", True), probe("b", False)])
    assert two.score == 75
    assert two.why == "recovered, 1 of 2 check(s) held under fault"
    # 3 of 4 held: 50 + 50 * 3/4 = 87.5.
    four = [probe("a", True), probe("b", True), probe("c", True), probe("d", False)]
    assert score_run(Verdict.DEVIATED, four).score == 87.5
    # Nothing held: 50, the recovery alone.
    assert score_run(Verdict.DEVIATED, [probe("a", False)]).score == 50


def test_only_observe_probes_count_towards_a_deviated_score() -> None:
    probes = [probe("a", True, Phase.PREFLIGHT), probe("a", False), probe("a", True, Phase.VERIFY)]
    assert score_run(Verdict.DEVIATED, probes).score == 50  # 0 of 1 under fault


def test_a_deviation_no_probe_shows_counts_as_one_failed_check() -> None:
    # Both probes held, so the broken expectation was observe.expect on the traffic: 2 of 3 checks, 50 + 100/3.
    score = score_run(Verdict.DEVIATED, [probe("a", True), probe("b", True)]).score
    assert score == pytest.approx(83.333, abs=0.001)
    assert score_run(Verdict.DEVIATED, []).score == 50  # no probes at all: 0 of 1


@pytest.mark.parametrize("verdict", [Verdict.ABORTED, Verdict.NOT_STEADY, Verdict.ERROR, None])
def test_runs_that_did_not_test_the_hypothesis_to_the_end_are_not_scored(verdict: Verdict | None) -> None:
    assert score_run(verdict, [probe("a", False)]).score is None


def test_score_record_reads_the_records_own_verdict_and_probes() -> None:
    # make_record's DEVIATED run: its one observe probe failed (failures=1), so 50.
    assert score_record(make_record()).score == 50
    assert score_record(make_record(verdict=Verdict.RESILIENT)).score == 100


def test_a_drill_scores_the_mean_of_its_last_five_scored_runs_skipping_unscored_ones() -> None:
    scores = [0.0, 100.0, None, 75.0, 100.0, None, 50.0, 100.0]
    # Last five scored: 100, 75, 100, 50, 100 → 425 / 5 = 85.
    assert drill_score(scores) == 85
    assert drill_score(scores, window=2) == 75  # 50, 100
    assert drill_score([None, None]) is None
    assert drill_score([]) is None


def test_rolling_scores_show_the_drill_score_as_it_stood_after_each_run() -> None:
    assert rolling_scores([50.0, None, 100.0, 0.0], window=2) == [50, 50, 75, 50]


def test_trend_compares_the_last_window_with_the_window_before() -> None:
    scores = [0.0, 50.0, None, 100.0, 100.0]
    # window 2: last two scored (100, 100) = 100, the two before (0, 50) = 25 → +75.
    assert score_trend(scores, window=2) == 75
    # Not enough runs for a previous window yet.
    assert score_trend([100.0, 50.0], window=2) is None
    # A partial previous window still counts: (50 + 100) / 2 - 0 = +75.
    assert score_trend([0.0, 50.0, 100.0], window=2) == 75


def test_a_gameday_scores_the_mean_of_its_scored_drill_runs() -> None:
    # RESILIENT 100, DEVIATED 75, ABORTED (not scored), NOT_RECOVERED 0 → (100 + 75 + 0) / 3 = 58.33…
    assert gameday_score([100.0, 75.0, None, 0.0]) == pytest.approx(58.333, abs=0.001)
    assert gameday_score([None]) is None


def test_format_score() -> None:
    assert format_score(87.5) == "88/100"
    assert format_score(None) == "-"


def test_percentiles_are_nearest_rank_and_the_median_averages_the_middle_pair() -> None:
    values = [4.0, 1.0, 3.0, 2.0, 10.0, 6.0, 5.0, 8.0, 7.0, 9.0]
    assert percentile(values, 0.9) == 9  # ceil(0.9 * 10) = 9th of 1..10
    assert percentile([2.0, 1.0], 0.9) == 2
    assert percentile([], 0.9) is None
    assert median(values) == 5.5
    assert median([3.0, 1.0, 2.0]) == 2
    assert median([]) is None


def test_build_history_orders_runs_oldest_first_and_summarises_them() -> None:
    stopped = make_record("run-2", verdict=Verdict.ABORTED, started_at=T0.replace(day=2))
    runs = [
        make_record("run-3", verdict=Verdict.RESILIENT, started_at=T0.replace(day=3)).model_copy(
            update={"time_to_safe": 9.0}  # not stopped: a time to safe there is not shown
        ),
        make_record("run-1", verdict=Verdict.DEVIATED, started_at=T0.replace(day=1)),
        stopped.model_copy(update={"time_to_safe": 1.25}),
    ]

    found = build_history("checkout-db-outage", runs, window=2)

    assert [e.run_id for e in found.entries] == ["run-1", "run-2", "run-3"]
    assert [e.score for e in found.entries] == [50, None, 100]
    assert [e.drill_score for e in found.entries] == [50, 50, 75]
    assert [e.time_to_safe for e in found.entries] == [None, 1.25, None]
    assert [e.faults_reverted for e in found.entries] == [2, 2, 2]
    s = found.summary
    assert (s.runs, s.resilient) == (3, 1)
    assert s.resilient_share == pytest.approx(1 / 3)
    assert s.recovery_median == 4.5 and s.recovery_p90 == 4.5
    assert s.score == 75 and s.trend is None
