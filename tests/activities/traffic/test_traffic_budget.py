"""The traffic's share of the payload budget: whatever a run's length or its target's latencies, the summary that
travels in heartbeats, results and records stays under a stated size, its counts stay exact, and the report
and chart still render from it.

The measurement code is driven directly with many seconds of requests (their intended send times laid out
over 48 hours): no need to wait 48 hours for what only depends on how many seconds were counted.
"""

from __future__ import annotations

import random
from datetime import timedelta

from gameday.activities.traffic.measurements import Measurements
from gameday.activities.traffic.send import Outcome
from gameday.activities.traffic.windows import Window, encoded, new_histogram
from gameday.model import budget
from gameday.model.traffic import Latency, SecondStats, Timeline, TrafficSummary, downsample
from gameday.report.html import render_html
from gameday.report.run import render_markdown, render_traffic_live
from tests.activities.test_store import make_record

HOURS = 48
PER_SECOND = 2
SUMMARY_BOUND = 160 * budget.KIB
"""Bytes of JSON a long run's summary (a handful of windows) stays under: the timeline is at most 1,200 points
(~110 bytes each at most), each window's histogram at most 4 KiB. docs/ARCHITECTURE.md adds up the worst case."""


def _json_bytes(summary: TrafficSummary) -> int:
    return len(summary.model_dump_json().encode())


def _latency(second: int) -> float:
    """A latency that wanders over the run, with a spike of 2.5 s in hour 30."""
    if 30 * 3600 <= second < 30 * 3600 + 5:
        return 2.5
    return 0.002 + (second % 977) / 100_000


def _drive(measurements: Measurements, first: int, last: int) -> None:
    """Requests intended in seconds ``first``..``last - 1``, each completed at once (one 503 every 1000 s)."""
    for second in range(first, last):
        for n in range(PER_SECOND):
            due = measurements.monotonic_at(measurements.started_at + timedelta(seconds=second + n / PER_SECOND))
            windows = measurements.sending(due)
            outcome = Outcome.STATUS_5XX if n == 0 and second % 1000 == 0 else Outcome.OK
            measurements.completed(windows, outcome, _latency(second), late=False)


def test_a_48_hour_run_keeps_its_summary_under_the_bound_with_exact_counts_and_still_reports() -> None:
    measurements = Measurements(PER_SECOND, "before")
    measurements.mark("during pause db")
    largest_snapshot = 0
    for hour in range(HOURS):
        _drive(measurements, hour * 3600, (hour + 1) * 3600)
        measurements.closed_seconds(final=True)
        largest_snapshot = max(largest_snapshot, _json_bytes(measurements.summary(finished=False)))
    measurements.stopped_sending(measurements.monotonic_at(measurements.started_at + timedelta(hours=HOURS)))
    summary = measurements.summary(finished=True)

    sent = HOURS * 3600 * PER_SECOND
    timeline = summary.timeline
    assert summary.total.sent == sent == sum(timeline.sent)  # counts add exactly, whatever the step
    assert sum(timeline.status_5xx) == summary.total.status_5xx == HOURS * 3600 // 1000 + 1
    assert len(timeline.second) <= budget.MAX_TIMELINE_POINTS
    assert timeline.step == 256  # 172,800 s halved until under 1,200 points: 675 points of 256 s
    assert timeline.second == sorted(timeline.second) and all(s % timeline.step == 0 for s in timeline.second)
    # The spike survives downsampling: a merged point keeps the highest of its percentiles.
    assert max(us for us in timeline.max_us if us is not None) >= 2_500_000
    assert summary.total.latency is not None and summary.total.latency.max >= 2.5
    size = _json_bytes(summary)
    assert size <= SUMMARY_BOUND and largest_snapshot <= SUMMARY_BOUND, (size, largest_snapshot)
    # Unbounded, the same run was 172,800 points of 50-80 bytes: ~11 MB, five times what Temporal accepts.

    record = make_record().model_copy(update={"traffic": summary, "started_at": summary.started_at})
    markdown = render_markdown(record)
    assert f"Figures per {timeline.step} s ({len(timeline.second)} points" in markdown
    assert f"- Slowest {timeline.step} s: +" in markdown and f"- Worst {timeline.step} s for errors: +" in markdown
    page = render_html(record)
    assert page.count('class="series"') == 3 and "Per 256 seconds" in page
    assert any("points of 256 s" in line for line in render_traffic_live(summary))


def test_a_window_whose_latencies_fill_every_bucket_is_encoded_within_its_bound_and_still_merges() -> None:
    random.seed(11)
    histogram = new_histogram()
    value, buckets = 1, 0
    while value < 3_600_000_000:  # every bucket from 1 µs to an hour, each with a different large count
        histogram.record_value(value, random.randint(1, 2**34))
        value = histogram.get_highest_equivalent_value(value) + 1
        buckets += 1
    assert buckets > 20_000 and len(histogram.encode()) > 40 * budget.KIB  # unbounded: ~170 KB a window
    window = Window("during pause db", 0.0, histogram)
    stats = window.stats()
    assert 0 < len(stats.histogram) <= budget.MAX_HISTOGRAM_BYTES
    assert stats.latency == window.latency()  # the percentiles shown come from the full histogram
    restored = Window.restore(stats)
    exact, coarse = window.latency(), restored.latency()
    assert exact is not None and coarse is not None
    for name in ("p50", "p90", "p99", "max"):
        # One significant figure: within a bucket of 1/16 of the value.
        assert abs(getattr(coarse, name) - getattr(exact, name)) <= getattr(exact, name) / 16 + 1e-6
    merged = Window.merged("during", [restored, Window("other", 0.0)])
    assert merged.latency() == coarse
    assert encoded(new_histogram()) == ""


def test_points_merged_after_the_fact_add_their_counts_and_keep_their_highest_percentiles() -> None:
    def point(second: int, p95: float | None, sent: int) -> SecondStats:
        latency = None if p95 is None else Latency(p50=p95 / 2, p90=p95, p95=p95, p99=p95, max=p95)
        return SecondStats(second=second, sent=sent, ok=sent, latency=latency)

    points = [point(s, 0.01 * (s % 7) + 0.01, 3) for s in range(budget.MAX_TIMELINE_POINTS * 3)]
    points[1000] = point(1000, None, 0)
    merged, step = downsample(points)
    assert step == 4 and len(merged) == budget.MAX_TIMELINE_POINTS * 3 // 4
    assert merged[0].second == 0 and merged[1].second == 4 and merged[0].seconds == 4
    assert merged[0].sent == 12 and merged[0].throughput == 3.0
    assert merged[0].latency is not None and merged[0].latency.p95 == 0.04  # seconds 0..3: 0.01..0.04
    assert merged[250].sent == 9  # the empty second adds nothing, its neighbours keep their latency
    short = [point(s, 0.01, 1) for s in range(10)]
    assert downsample(short) == (short, 1)  # a short run keeps its seconds as they are
    timeline = Timeline.of(points)
    assert timeline.step == 4 and Timeline.model_validate(timeline.model_dump()) == Timeline.of(merged, step)


def test_a_snapshot_carries_at_most_its_budget_of_open_seconds_and_resumes_from_it() -> None:
    measurements = Measurements(PER_SECOND, "before")
    # 300 seconds whose requests never answer (a hung target with a long timeout): all still in flight.
    for second in range(300):
        measurements.sending(measurements.monotonic_at(measurements.started_at + timedelta(seconds=second)))
    snapshot = measurements.summary(finished=False)
    assert len(snapshot.open_seconds) == budget.MAX_OPEN_SECONDS
    assert [w.start for w in snapshot.open_seconds] == [float(s) for s in range(300 - budget.MAX_OPEN_SECONDS, 300)]
    assert snapshot.timeline.second == list(range(300 - budget.MAX_OPEN_SECONDS))  # the older ones, as points
    assert sum(snapshot.timeline.sent) + sum(w.sent for w in snapshot.open_seconds) == 300
    resumed = Measurements(PER_SECOND, "before", resume=snapshot)
    resumed.closed_seconds(final=True)
    assert sum(resumed.summary(finished=True).timeline.sent) == 300
