"""How reports write times, durations and shares: the formatting every report module shares (run, html,
sections, gameday), public so no module reaches into another's private helpers (issue 13)."""

from __future__ import annotations

from datetime import UTC, datetime


def timestamp(at: datetime) -> str:
    """``2026-12-07 14:48:15 UTC``."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def relative(at: datetime | None, start: datetime) -> str:
    """The time of day and the offset from ``start``: ``14:48:15 (+2.6 s)``; ``-`` when ``at`` is unknown."""
    if at is None:
        return "-"
    offset = (at - start).total_seconds()
    # A worker's clock may lag the workflow's: show a negative offset as such, not as "+-".
    sign = "+" if offset >= 0 else "-"
    return f"{at.astimezone(UTC):%H:%M:%S} ({sign}{duration(abs(offset))})"


def duration(seconds: float) -> str:
    """``420 ms``, ``2.6 s``, ``1 min 03 s``, ``2 h 05 min``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def signed(seconds: float) -> str:
    """An offset from the start of the run: ``+2.6 s``, ``+1 min 03 s``, ``-0.4 s`` (a worker's clock behind)."""
    return f"{'+' if seconds >= 0 else '-'}{duration(abs(seconds))}"


def percent(share: float | None) -> str:
    """A share (0..1) as ``12.50%``; ``-`` when unknown."""
    return "-" if share is None else f"{share * 100:.2f}%"


def milliseconds(seconds: float | None) -> str:
    """Seconds as milliseconds with one decimal, no unit; ``-`` when unknown."""
    return "-" if seconds is None else f"{seconds * 1000:.1f}"
