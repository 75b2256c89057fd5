"""Running counts and an HDR latency histogram for one window: a phase, a second, or the whole run.

Latencies are recorded in whole microseconds from 1µs to an hour with 3 significant digits (HdrHistogram's
classic setting: 0.1% resolution). Every window uses the same layout, so merging two is an in-place add of
their count arrays, and a window restored from its encoded form (after a worker crash) merges exactly.

The encoded form is bounded (:data:`~model.budget.MAX_HISTOGRAM_BYTES`): a window whose latencies are
spread over thousands of buckets is encoded at 2, then 1 significant digit (1%, then ~6% resolution; its
percentiles are still taken from the full histogram, only later merges see the coarser one).
"""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

from gameday.activities.traffic.send import Outcome
from gameday.model import budget
from gameday.model.traffic import Latency, SecondStats, WindowStats

LOWEST_MICROS = 1
HIGHEST_MICROS = 3_600_000_000
SIGNIFICANT_FIGURES = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 100.0)


def new_histogram(figures: int = SIGNIFICANT_FIGURES) -> HdrHistogram:
    return HdrHistogram(LOWEST_MICROS, HIGHEST_MICROS, figures)


def encoded(histogram: HdrHistogram) -> str:
    """``histogram`` encoded (V2, compressed, base64) in at most :data:`~model.budget.MAX_HISTOGRAM_BYTES`.

    At its own precision if that fits, else re-recorded at fewer significant figures; ``""`` if even one figure
    does not fit (never seen: 1 figure is ~460 buckets, ~3.5 KiB with every count at 2**40).
    """
    if histogram.get_total_count() == 0:
        return ""
    text = histogram.encode().decode("ascii")
    figures = histogram.significant_figures
    while len(text) > budget.MAX_HISTOGRAM_BYTES and figures > 1:
        figures -= 1
        coarser = new_histogram(figures)
        coarser.add(histogram)
        text = coarser.encode().decode("ascii")
    return text if len(text) <= budget.MAX_HISTOGRAM_BYTES else ""


class Window:
    """Counts by outcome and the latency histogram of the requests intended within one window."""

    __slots__ = ("_encoded", "_histogram", "counts", "end", "in_flight", "late", "name", "sent", "start")

    def __init__(self, name: str, start: float, histogram: HdrHistogram | None = None) -> None:
        self.name = name
        self.start = start
        """Seconds after the run's start."""
        self.end: float | None = None
        self.sent = 0
        self.late = 0
        self.in_flight = 0
        """Sent and not completed yet. Not saved: requests in flight when a worker is lost are lost too."""
        self.counts = dict.fromkeys(Outcome, 0)
        self._histogram = histogram or new_histogram()
        self._encoded: tuple[int, str] | None = None
        """The last encoding and the count it was taken at (re-encoding at fewer figures takes ~0.2s)."""

    def record(self, outcome: Outcome, latency: float) -> None:
        """Count one completed request; ``latency`` in seconds from its intended send time."""
        self.in_flight -= 1
        self.counts[outcome] += 1
        micros = min(max(round(latency * 1e6), 0), HIGHEST_MICROS)
        self._histogram.record_value(micros)

    def add(self, other: Window) -> None:
        """Merge ``other``'s counts and latencies into this window."""
        self.sent += other.sent
        self.late += other.late
        self.in_flight += other.in_flight
        for outcome, count in other.counts.items():
            self.counts[outcome] += count
        self._histogram.add(other._histogram)

    def latency(self) -> Latency | None:
        """p50/p90/p95/p99/max in seconds (each the upper bound of its histogram bucket); ``None`` if empty."""
        if self._histogram.get_total_count() == 0:
            return None
        values = self._histogram.get_percentile_to_value_dict(list(PERCENTILES))
        p50, p90, p95, p99, top = (values[p] / 1e6 for p in PERCENTILES)
        return Latency(p50=p50, p90=p90, p95=p95, p99=p99, max=top)

    def stats(self) -> WindowStats:
        """This window as a serialisable summary, histogram included (bounded: :func:`encoded`)."""
        recorded = self._histogram.get_total_count()
        if self._encoded is None or self._encoded[0] != recorded:
            self._encoded = (recorded, encoded(self._histogram))
        return WindowStats(
            name=self.name,
            start=self.start,
            end=self.end,
            sent=self.sent,
            late=self.late,
            latency=self.latency(),
            histogram=self._encoded[1],
            **{outcome.value: count for outcome, count in self.counts.items()},
        )

    def copy(self) -> Window:
        """A copy to encode outside a lock; :meth:`keep_encoding` takes its encoding back."""
        twin = Window.merged(self.name, [self])
        twin._encoded = self._encoded
        return twin

    def keep_encoding(self, twin: Window) -> None:
        """Keep ``twin``'s encoding (a :meth:`copy` of this window) if it is still this window's."""
        if twin._encoded is not None and twin._encoded[0] == self._histogram.get_total_count():
            self._encoded = twin._encoded

    def second_stats(self, second: int, seconds: int = 1) -> SecondStats:
        """This window as one point of the timeline (no histogram: a point merged later takes an upper bound)."""
        counts = {outcome.value: count for outcome, count in self.counts.items()}
        latency = self.latency()
        return SecondStats(second=second, seconds=seconds, sent=self.sent, late=self.late, latency=latency, **counts)

    @classmethod
    def restore(cls, stats: WindowStats) -> Window:
        """The window a summary was made from (nothing in flight: those requests were lost with their worker)."""
        histogram = HdrHistogram.decode(stats.histogram) if stats.histogram else None
        window = cls(stats.name, stats.start, histogram)
        window.end = stats.end
        window.sent = stats.sent
        window.late = stats.late
        for outcome in Outcome:
            window.counts[outcome] = getattr(stats, outcome.value)
        return window

    @classmethod
    def merged(cls, name: str, windows: Iterable[Window]) -> Window:
        """One window holding all of ``windows``: from the first one's start to the last one's end."""
        parts = list(windows)
        # At the lowest precision among them: a coarse histogram added into a finer one would move its counts
        # to the low end of their buckets.
        figures = min((p._histogram.significant_figures for p in parts), default=SIGNIFICANT_FIGURES)
        total = cls(name, parts[0].start if parts else 0.0, new_histogram(figures))
        for part in parts:
            total.add(part)
        total.end = parts[-1].end if parts else None
        return total


def merge(name: str, windows: Iterable[WindowStats]) -> WindowStats:
    """Merge summaries exactly (counts added, histograms added), e.g. every ``during`` phase of a run."""
    return Window.merged(name, (Window.restore(w) for w in windows)).stats()
