"""Everything a traffic run has measured, shared by the generator's thread and the caller's.

Requests are attributed by their *intended* send time: to one second of the timeline and to the phase
marked at that time. Each method takes the lock, briefly: the generator records every request through it,
while the caller marks phases and takes snapshots for its heartbeats.
"""

from __future__ import annotations

import bisect
import threading
import time
from datetime import UTC, datetime

from gameday.activities.traffic.send import Outcome
from gameday.activities.traffic.windows import Window
from gameday.model import budget
from gameday.model.traffic import Gap, SecondStats, Timeline, TrafficSummary, downsample, merge_points


class Measurements:
    """Phases, seconds and gaps of one run, counted from :attr:`started_at`.

    The timeline is bounded (:data:`~model.budget.MAX_TIMELINE_POINTS`): requests are counted in points of
    ``step`` seconds, one second at first; when the closed points would pass the budget, neighbours merge and
    the step doubles, so the points still to come are counted at the new step (their latencies exact, from
    their histogram) while the ones already closed take an upper bound (:func:`~model.traffic.downsample`).

    Args:
        rate: The traffic's rate (kept in the summary).
        phase: Name of the first phase, when not resuming.
        resume: A summary to continue from: its phases (the last one reopened), timeline (and its step) and
            seconds; the time since it was taken becomes a gap.
    """

    def __init__(self, rate: float, phase: str, resume: TrafficSummary | None = None) -> None:
        self._lock = threading.Lock()
        self._rate = rate
        self._mono0 = time.monotonic()
        wall = time.time()
        self._end: float | None = None
        if resume is None:
            self.started_at = datetime.fromtimestamp(wall, UTC)
            self._offset0 = 0.0
            self._phases = [Window(phase, 0.0)]
            self._timeline: list[SecondStats] = []
            self._step = 1
            self._seconds: dict[int, Window] = {}
            self._gaps: list[Gap] = []
        else:
            self.started_at = resume.started_at
            self._offset0 = wall - resume.started_at.timestamp()
            self._phases = [Window.restore(p) for p in resume.phases]
            self._phases[-1].end = None
            self._timeline = resume.timeline.points()
            self._step = resume.timeline.step
            self._seconds = {int(s.start): Window.restore(s) for s in resume.open_seconds}
            self._gaps = list(resume.gaps)
            if self._offset0 > resume.elapsed:
                self._gaps.append(Gap(start=resume.elapsed, end=self._offset0))
        self._phase_starts = [p.start for p in self._phases]

    def offset(self, monotonic: float) -> float:
        """Seconds after :attr:`started_at` of a ``time.monotonic()`` instant."""
        return self._offset0 + (monotonic - self._mono0)

    def monotonic_at(self, instant: datetime) -> float:
        """The ``time.monotonic()`` reading at wall-clock ``instant`` (aware, or naive UTC)."""
        aware = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
        return self._mono0 + (aware.timestamp() - self.started_at.timestamp()) - self._offset0

    def mark(self, phase: str) -> None:
        """End the current phase now and start ``phase``."""
        with self._lock:
            now = self.offset(time.monotonic())
            self._phases[-1].end = now
            self._phases.append(Window(phase, now))
            self._phase_starts.append(now)

    def sending(self, due: float) -> tuple[Window, Window]:
        """Count a request intended at ``due`` (monotonic) as sent; returns its second's and phase's windows."""
        offset = self.offset(due)
        with self._lock:
            second = int(offset)
            second -= second % self._step
            second_window = self._seconds.get(second)
            if second_window is None:
                second_window = self._seconds[second] = Window(f"second {second}", float(second))
            phase_window = self._phase_at(offset)
            for window in (second_window, phase_window):
                window.sent += 1
                window.in_flight += 1
        return second_window, phase_window

    def completed(self, windows: tuple[Window, Window], outcome: Outcome, latency: float, late: bool) -> None:
        """Record the outcome of a request counted by :meth:`sending`."""
        with self._lock:
            for window in windows:
                window.record(outcome, latency)
                if late:
                    window.late += 1

    def stopped_sending(self, monotonic: float) -> None:
        """Sending ended at ``monotonic``: the last phase ends there."""
        with self._lock:
            # Never before the last phase's start (a run resumed, or marked, after its `until` sent nothing).
            self._end = max(self.offset(monotonic), self._phases[-1].start)
            self._phases[-1].end = self._end

    def closed_seconds(self, *, final: bool = False) -> list[SecondStats]:
        """Move each point that has ended with nothing in flight to the timeline, oldest first; return them.

        Args:
            final: Close every second, in flight or not (the run is over, or abandoned).
        """
        closed: list[SecondStats] = []
        with self._lock:
            now = self.offset(time.monotonic())
            while self._seconds:
                second, window = next(iter(self._seconds.items()))
                if not final and (window.in_flight or second + self._step > now):
                    break
                del self._seconds[second]
                closed.append(window.second_stats(second, self._step))
            for point in closed:
                self._close(point)
        return closed

    def summary(self, *, finished: bool) -> TrafficSummary:
        """A snapshot: windows are copied under the lock, then encoded outside it (so sends are not held up)."""
        with self._lock:
            elapsed = self._end if finished and self._end is not None else self.offset(time.monotonic())
            phases = [p.copy() for p in self._phases]
            # Points still waiting for slow requests: the newest keep their histograms (to resume exactly),
            # the older ones travel as points with what they measured so far (bounded, whatever the timeout).
            waiting = list(self._seconds.items())
            keep = len(waiting) - budget.MAX_OPEN_SECONDS
            provisional = [w.second_stats(second) for second, w in waiting[: max(keep, 0)]]
            seconds = [w.copy() for _, w in waiting[max(keep, 0) :]]
            timeline = [*self._timeline, *provisional]
            step = self._step
            gaps = list(self._gaps)
        summary = TrafficSummary(
            started_at=self.started_at,
            rate=self._rate,
            elapsed=elapsed,
            phases=[p.stats() for p in phases],
            total=Window.merged("total", phases).stats(),
            timeline=Timeline.of(timeline, step),
            open_seconds=[w.stats() for w in seconds],
            gaps=gaps,
            finished=finished,
        )
        with self._lock:
            for phase, twin in zip(self._phases, phases, strict=False):
                phase.keep_encoding(twin)
        return summary

    def _close(self, point: SecondStats) -> None:
        """Add ``point`` to the timeline at the current step; past the budget, merge neighbours (step doubled)."""
        start = point.second - point.second % self._step
        last = self._timeline[-1] if self._timeline else None
        if last is not None and last.second == start:  # a point opened before the step last doubled
            self._timeline[-1] = merge_points(last, point, start, self._step)
            return
        if (point.second, point.seconds) != (start, self._step):
            point = point.model_copy(update={"second": start, "seconds": self._step})
        self._timeline.append(point)
        if len(self._timeline) > budget.MAX_TIMELINE_POINTS:
            self._timeline, self._step = downsample(self._timeline, self._step * 2)

    def phase_at(self, offset: float) -> str:
        """The name of the phase requests intended ``offset`` seconds after the start belong to."""
        with self._lock:
            return self._phase_at(offset).name

    def _phase_at(self, offset: float) -> Window:
        if offset >= self._phase_starts[-1]:
            return self._phases[-1]
        # Due before the latest mark but sent after it (the generator was late): it belongs before the mark.
        return self._phases[max(bisect.bisect_right(self._phase_starts, offset) - 1, 0)]
