"""``--since`` / ``--until`` values: a UTC date or date-time, or a duration meaning "that long ago".

``2026-11-01`` as ``--since`` is that day's 00:00 UTC; as ``--until`` it is the *end* of that day (the next
midnight, exclusive), so ``--since 2026-11-01 --until 2026-11-01`` is the whole day. ``7d``, ``24h``, ``90m``,
``2w`` or ``1d12h`` count back from now. A date-time (``2026-11-01T14:00``, ``...Z``, ``...+01:00``) is taken as
is, UTC when it has no offset.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_AGO_PART = re.compile(r"(\d+(?:\.\d+)?)(w|d|h|m|s)")
_AGO_FULL = re.compile(r"(?:\d+(?:\.\d+)?(?:w|d|h|m|s))+")
_UNIT_SECONDS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

HINT = "a date like 2026-11-01, a UTC date-time like 2026-11-01T14:00, or a duration ago like 7d or 24h"


def parse_moment(text: str, *, now: datetime, end_of_day: bool = False) -> datetime:
    """The UTC moment ``text`` names.

    Args:
        text: what the person typed.
        now: the present, aware (durations count back from it).
        end_of_day: a bare date means the next midnight rather than its own (for ``--until``).

    Raises:
        ValueError: ``text`` is none of the forms, or not a real date; the message quotes it and says what fits.
    """
    value = text.strip()
    compact = value.lower().replace(" ", "")
    if _AGO_FULL.fullmatch(compact):
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _AGO_PART.findall(compact))
        try:
            return now.astimezone(UTC) - timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError(f"{text!r} is too long ago") from None
    try:
        if _DATE.fullmatch(value):
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end_of_day else start
        moment = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not {HINT}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_range(since: str | None, until: str | None, *, now: datetime) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` as UTC moments (``until`` exclusive), checked to be in order.

    Raises:
        ValueError: one of them does not parse (the message names the option), or ``since`` is not before ``until``.
    """
    start = end = None
    if since is not None:
        try:
            start = parse_moment(since, now=now)
        except ValueError as err:
            raise ValueError(f"--since: {err}") from None
    if until is not None:
        try:
            end = parse_moment(until, now=now, end_of_day=True)
        except ValueError as err:
            raise ValueError(f"--until: {err}") from None
    if start is not None and end is not None and start >= end:
        raise ValueError(f"--since {since} is not before --until {until}: no run can match")
    return start, end
