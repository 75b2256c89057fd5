"""Windows merge exactly through their encoded histograms; endpoints are chosen in exact proportion."""

from __future__ import annotations

from collections import Counter

import pytest

from gameday.activities.traffic import Outcome, merge
from gameday.activities.traffic.weights import WeightedCycle
from gameday.activities.traffic.windows import Window


def window(name: str, latencies_ms: list[float], outcome: Outcome = Outcome.OK) -> Window:
    w = Window(name, 0.0)
    for latency in latencies_ms:
        w.sent += 1
        w.in_flight += 1
        w.record(outcome, latency / 1000)
    return w


def test_merging_encoded_windows_equals_recording_everything_in_one() -> None:
    fast = window("during fault 1", [1.0] * 90)
    slow = window("during fault 2", [100.0] * 9 + [1000.0], Outcome.STATUS_5XX)
    together = window("all", [1.0] * 90 + [100.0] * 9 + [1000.0])

    merged = merge("during", [fast.stats(), slow.stats()])

    assert (merged.name, merged.sent, merged.ok, merged.status_5xx) == ("during", 100, 90, 10)
    assert merged.latency == together.stats().latency
    assert merged.latency is not None
    assert merged.latency.p50 == pytest.approx(0.001, rel=1e-3)
    assert merged.latency.p95 == pytest.approx(0.1, rel=1e-3)
    assert merged.latency.max == pytest.approx(1.0, rel=1e-3)


def test_an_empty_window_has_no_latency_and_restores() -> None:
    stats = Window("idle", 5.0).stats()

    assert stats.latency is None and stats.histogram == ""
    assert Window.restore(stats).stats() == stats


def test_weights_are_honoured_exactly_and_interleaved() -> None:
    cycle = WeightedCycle([5, 1, 1])

    picks = [cycle.next() for _ in range(70)]

    assert Counter(picks) == {0: 50, 1: 10, 2: 10}
    assert max(len(run) for run in "".join(map(str, picks)).replace("1", " ").replace("2", " ").split()) <= 5
    with pytest.raises(ValueError, match="positive weights"):
        WeightedCycle([1, 0])
