"""Coverage of an observation window: how much of it the probes actually watched, and the gaps where they did not.

A probe that is slow, or failing, is evidence; a stretch with no sample at all is not. The observation activity
calls :func:`note_tick` as each tick starts and :func:`finish` when the window ends. A *gap* is a stretch without
any sample longer than one interval plus :data:`GAP_SLACK` (at least two intervals): the worker was killed and a
later attempt resumed from its heartbeat, Temporal was unreachable long enough for the attempt to time out, or the
worker was frozen. Coverage is the share of the window's time outside the gaps.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from gameday.model.records import Coverage, CoverageGap, ObserveProgress

GAP_SLACK = timedelta(seconds=2)
"""How much longer than one interval a stretch without samples may last before it counts as a gap: scheduling
noise on a busy worker is not missing evidence, a lost worker (5 s heartbeat timeout at least) is."""
MAX_GAPS = 20
"""Gaps listed per window (all of them are counted in ``gap_seconds``), so heartbeat details stay small."""

LOST = "observation lost (its worker died or could not reach Temporal); attempt {attempt} resumed it"
LOST_AFTER = "observation lost (its worker died or could not reach Temporal); attempt {attempt} came after the window"
STALLED = "no sample taken: the worker was stalled (frozen or overloaded)"


def gap_threshold(interval: float) -> float:
    """Seconds without a sample beyond which a stretch is a gap."""
    return interval + max(interval, GAP_SLACK.total_seconds())


def note_tick(progress: ObserveProgress, began: datetime, interval: float, *, resumed_by: int | None) -> None:
    """A tick starts at ``began``: record the stretch since the previous tick (or the window's start) if a gap.

    Args:
        progress: the observation's progress (its ``last_tick_at`` is updated by the caller after the tick).
        began: when this tick's samples start.
        interval: seconds between ticks.
        resumed_by: the attempt number, if this is the first tick of an attempt resumed from a heartbeat.
    """
    since = progress.last_tick_at or progress.started_at
    if resumed_by is None and progress.last_started_at is not None:
        # Within an attempt the schedule is the evidence: ticks come due every interval while the worker runs
        # (a slow probe's tick overlaps the next), so a stretch with none is a stall. The end of a tick that
        # straddled the stall proves nothing about it.
        since = progress.last_started_at
    if since is None:
        return
    cause = LOST.format(attempt=resumed_by) if resumed_by is not None else STALLED
    _gap(progress, since, began, interval, cause)


def finish(
    progress: ObserveProgress, end: datetime, interval: float, *, resumed_by: int | None, ticked: bool
) -> Coverage:
    """The window's coverage, the window ending at ``end`` (its planned end, or when it was cut short).

    Args:
        progress: the observation's progress, ``started_at`` set.
        end: when the window ended.
        interval: seconds between ticks.
        resumed_by: the attempt number, if this attempt resumed a lost one.
        ticked: whether this attempt took a tick (a resumed attempt that took none came after the window).
    """
    start = progress.started_at or end
    end = max(end, start)
    since = progress.last_tick_at or start
    if (ticked or resumed_by is None) and progress.last_started_at is not None:
        since = progress.last_started_at  # the schedule ran until its last due tick (see note_tick)
    cause = LOST_AFTER.format(attempt=resumed_by) if resumed_by is not None and not ticked else STALLED
    _gap(progress, since, end, interval, cause)
    window = (end - start).total_seconds()
    expected = max(1, math.ceil(window / interval - 1e-9)) if window > 0 else 0
    covered = max(0.0, 1.0 - progress.gap_seconds / window) if window > 0 else 1.0
    return Coverage(
        window_start=start,
        window_end=end,
        interval=interval,
        ticks_expected=expected,
        ticks_taken=progress.ticks,
        ticks_missed=progress.missed,
        covered=round(covered, 4),
        gap_seconds=round(progress.gap_seconds, 3),
        gaps=list(progress.gaps),
    )


def _gap(progress: ObserveProgress, since: datetime, until: datetime, interval: float, cause: str) -> None:
    seconds = (until - since).total_seconds()
    if seconds <= gap_threshold(interval):
        return
    progress.gap_seconds += seconds
    if len(progress.gaps) < MAX_GAPS:
        progress.gaps.append(CoverageGap(start=since, end=until, cause=cause))
