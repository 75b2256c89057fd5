"""Judging samples against a probe's tolerance: error rate, p95, max, and the words that explain a verdict."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gameday.activities.probes import Sample, judge
from gameday.model.drill import Probe
from gameday.model.records import Phase

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SLOW = Sample(ok=True, latency=0.412)
FAST = Sample(ok=True, latency=0.1)
DOWN = Sample(ok=False, latency=0.002, problem="status 503 (expected 200)")


def _probe(**tolerance: Any) -> Probe:
    return Probe.model_validate({"name": "api", "http": {"url": "http://127.0.0.1/"}, "tolerance": tolerance})


def test_samples_that_all_succeed_hold() -> None:
    result = judge(_probe(), Phase.PREFLIGHT, [FAST, FAST], AT)

    assert result.ok
    assert result.problems == []
    assert (result.probe, result.phase, result.kind, result.at) == ("api", Phase.PREFLIGHT, "http", AT)
    assert (result.samples, result.failures) == (2, 0)


def test_without_a_tolerance_one_failed_sample_breaks_the_hypothesis() -> None:
    result = judge(_probe(), Phase.PREFLIGHT, [FAST, DOWN], AT)

    assert not result.ok
    assert result.problems == ["error rate 50% > 0%", "status 503 (expected 200)"]


def test_an_error_rate_within_tolerance_holds_and_still_says_why_samples_failed() -> None:
    result = judge(_probe(error_rate="20%"), Phase.OBSERVE, [DOWN, FAST, FAST, FAST, FAST], AT)

    assert result.ok
    assert result.failures == 1
    assert result.error_rate == 0.2
    assert result.problems == ["status 503 (expected 200)"]


def test_an_error_rate_above_tolerance_breaks_the_hypothesis() -> None:
    result = judge(_probe(error_rate="1%"), Phase.OBSERVE, [DOWN, FAST, FAST, FAST, FAST], AT)

    assert not result.ok
    assert result.problems[0] == "error rate 20% > 1%"


def test_a_p95_above_tolerance_breaks_the_hypothesis() -> None:
    samples = [FAST] * 18 + [SLOW] * 2  # nearest rank 19 of 20 is a slow one

    result = judge(_probe(latency_p95="300ms"), Phase.OBSERVE, samples, AT)

    assert not result.ok
    assert result.latency_p95 == 0.412
    assert result.problems == ["p95 412ms > 300ms"]


def test_a_p95_within_tolerance_holds_despite_a_slow_outlier() -> None:
    samples = [FAST] * 19 + [SLOW]

    result = judge(_probe(latency_p95="300ms"), Phase.OBSERVE, samples, AT)

    assert result.ok
    assert result.latency_max == 0.412


def test_a_max_latency_above_tolerance_breaks_the_hypothesis() -> None:
    samples = [FAST] * 19 + [Sample(ok=True, latency=1.5)]

    result = judge(_probe(latency_max="1s"), Phase.OBSERVE, samples, AT)

    assert not result.ok
    assert result.problems == ["max 1.5s > 1s"]


def test_percentiles_are_nearest_rank_over_all_samples_including_failed_ones() -> None:
    samples = [Sample(ok=True, latency=i / 100) for i in range(1, 20)]
    samples.append(Sample(ok=False, latency=0.20, problem="timed out after 200ms"))

    result = judge(_probe(error_rate="10%"), Phase.VERIFY, samples, AT)

    assert (result.latency_p50, result.latency_p95, result.latency_max) == (0.10, 0.19, 0.20)


def test_problems_are_distinct_and_at_most_five() -> None:
    reasons = ["connection refused", "connection refused", *(f"status {500 + i} (expected 200)" for i in range(6))]
    samples = [Sample(ok=False, latency=0.01, problem=reason) for reason in reasons]

    result = judge(_probe(), Phase.PREFLIGHT, samples, AT)

    assert result.problems == [
        "error rate 100% > 0%",
        "connection refused",
        "status 500 (expected 200)",
        "status 501 (expected 200)",
        "status 502 (expected 200)",
    ]


def test_no_samples_do_not_hold() -> None:
    result = judge(_probe(), Phase.OBSERVE, [], AT)

    assert not result.ok
    assert result.problems == ["no samples taken"]
    assert result.latency_p95 is None
