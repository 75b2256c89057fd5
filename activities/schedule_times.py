"""The times of a drill's schedule: cron and blackout windows as Temporal calendars, and which times they pick.

Temporal turns a schedule's cron strings into calendars and drops every time that matches one of its ``skip``
calendars: a blacked-out time simply does not fire, and nothing about it is recorded. So that a person can still
see what a blackout takes away, :func:`upcoming` walks the same calendars Temporal keeps (as ``describe()``
returns them, in the schedule's time zone) and says which times a skip calendar removes.

Imported only by ``gameday schedule`` commands, so the Temporal client import here costs nothing elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from temporalio.client import ScheduleCalendarSpec, ScheduleRange, ScheduleSpec

from gameday.model.errors import GamedayError

CRON_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_BOUNDS = {"minute": (0, 59), "hour": (0, 23), "day-of-month": (1, 31), "month": (1, 12), "day-of-week": (0, 7)}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NAMES = {
    "month": {m: n for n, m in enumerate(_MONTHS, start=1)},
    "day-of-week": {d: n for n, d in enumerate(_DAYS)},
}
_SHORTHANDS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_DATE_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:\.\.(\d{4}-\d{2}-\d{2}))?")
_WHOLE_DAY = {"hour": (ScheduleRange(0, 23),), "minute": (ScheduleRange(0, 59),), "second": (ScheduleRange(0, 59),)}
_HORIZON_DAYS = 3 * 366
"""How far :func:`upcoming` looks: a schedule whose times are all blacked out for longer shows none."""


class ScheduleSpecError(GamedayError):
    """A cron string, blackout window or time zone that cannot be used; the message names the field."""


@dataclass(frozen=True)
class Blackout:
    """One blackout window, as the person wrote it and as the skip calendars Temporal matches.

    Attributes:
        text: ``2026-12-24..2026-12-26`` (dates, inclusive) or ``cron:* * * * SAT,SUN``; shown by list and show.
        calendars: the skip calendars; a time in the schedule's time zone matching one of them does not fire.
    """

    text: str
    calendars: tuple[ScheduleCalendarSpec, ...]


@dataclass(frozen=True)
class UpcomingTime:
    """One time the schedule's calendars pick, and the blackout that removes it (empty when it fires)."""

    at: datetime
    blackout: str = ""


def time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleSpecError(f"--timezone: unknown time zone {name!r} (an IANA name like Europe/Paris)") from None


def validate_cron(expression: str, option: str = "--cron") -> list[tuple[ScheduleRange, ...]]:
    """The five fields of ``expression`` as ranges, or a :class:`ScheduleSpecError` naming the field at fault."""
    text = _SHORTHANDS.get(expression.strip().lower(), expression)
    parts = text.split()
    if len(parts) != len(CRON_FIELDS):
        raise ScheduleSpecError(
            f"{option} {expression!r}: expected 5 fields (minute hour day-of-month month day-of-week), not {len(parts)}"
        )
    return [_field(option, expression, name, part) for name, part in zip(CRON_FIELDS, parts, strict=True)]


def blackout_dates(text: str) -> Blackout:
    """``2026-12-24..2026-12-26`` (both days included) or one day ``2026-12-25``, whole days in the schedule's zone."""
    found = _DATE_RANGE.fullmatch(text.strip())
    if not found:
        raise ScheduleSpecError(f"--blackout {text!r}: expected dates like 2026-12-24..2026-12-26 or 2026-12-25")
    try:
        first = date.fromisoformat(found[1])
        last = date.fromisoformat(found[2] or found[1])
    except ValueError as err:
        raise ScheduleSpecError(f"--blackout {text!r}: {err}") from None
    if last < first:
        raise ScheduleSpecError(f"--blackout {text!r}: the end date is before the start date")
    calendars = []
    for year, month, first_day, last_day in _month_spans(first, last):
        calendars.append(
            ScheduleCalendarSpec(
                year=(ScheduleRange(year),),
                month=(ScheduleRange(month),),
                day_of_month=(ScheduleRange(first_day, last_day),),
                comment=f"blackout {text.strip()}",
                **_WHOLE_DAY,
            )
        )
    return Blackout(text=text.strip(), calendars=tuple(calendars))


def blackout_cron(expression: str) -> Blackout:
    """A cron-like window: every minute matching all five fields is blacked out (``* * * * SAT,SUN``: weekends)."""
    minute, hour, day_of_month, month, day_of_week = validate_cron(expression, "--blackout-cron")
    calendar = ScheduleCalendarSpec(
        second=(ScheduleRange(0, 59),),
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month=month,
        day_of_week=day_of_week,
        comment=f"blackout cron:{expression.strip()}",
    )
    return Blackout(text=f"cron:{expression.strip()}", calendars=(calendar,))


def blackout_of(text: str) -> Blackout:
    """The window a schedule's memo names (the ``text`` of :func:`blackout_dates` or :func:`blackout_cron`)."""
    return blackout_cron(text.removeprefix("cron:")) if text.startswith("cron:") else blackout_dates(text)


def upcoming(spec: ScheduleSpec, blackouts: Sequence[str], after: datetime, count: int) -> list[UpcomingTime]:
    """The next ``count`` times the spec's calendars pick after ``after``, each with the blackout removing it.

    Jitter is not applied (Temporal adds it when the time comes). A skip calendar not made by gameday is
    labelled ``skip calendar``.
    """
    zone = time_zone(spec.time_zone_name or "UTC")
    named = [(b, blackout_of(b).calendars) for b in blackouts]
    found: list[UpcomingTime] = []
    for moment in _times(spec.calendars, zone, after):
        if len(found) == count:
            break
        local = moment.astimezone(zone)
        skipped = next((text for text, cals in named if any(matches(c, local) for c in cals)), "")
        if not skipped and any(matches(c, local) for c in spec.skip):
            skipped = "skip calendar"
        found.append(UpcomingTime(at=moment, blackout=skipped))
    return found


def blackout_now(spec: ScheduleSpec, blackouts: Sequence[str], now: datetime | None = None) -> str:
    """The blackout covering ``now`` (default: this moment), or empty."""
    return in_blackout(blackouts, spec.time_zone_name or "UTC", now) or ("skip calendar" if _skipped(spec, now) else "")


def in_blackout(blackouts: Sequence[str], zone_name: str, now: datetime | None = None) -> str:
    """The first of ``blackouts`` (as written) covering ``now`` in the zone, or empty: what a scheduled run checks."""
    local = (now or datetime.now(UTC)).astimezone(time_zone(zone_name)).replace(microsecond=0)
    return next((b for b in blackouts if any(matches(c, local) for c in blackout_of(b).calendars)), "")


def _skipped(spec: ScheduleSpec, now: datetime | None) -> bool:
    local = (now or datetime.now(UTC)).astimezone(time_zone(spec.time_zone_name or "UTC")).replace(microsecond=0)
    return any(matches(c, local) for c in spec.skip)


def matches(calendar: ScheduleCalendarSpec, local: datetime) -> bool:
    """Whether a wall-clock time (in the schedule's zone) matches every field of ``calendar``, as Temporal does."""
    return (
        _day_matches(calendar, local.date())
        and _in(calendar.hour, local.hour)
        and _in(calendar.minute, local.minute)
        and _in(calendar.second, local.second)
    )


def _times(calendars: Sequence[ScheduleCalendarSpec], zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    day = after.astimezone(zone).date()
    for offset in range(_HORIZON_DAYS):
        current = day + timedelta(days=offset)
        moments: set[datetime] = set()
        for calendar in calendars:
            if not _day_matches(calendar, current):
                continue
            for h in _values(calendar.hour, 23):
                for m in _values(calendar.minute, 59):
                    for s in _values(calendar.second, 59):
                        moments.add(datetime.combine(current, time(h, m, s), tzinfo=zone).astimezone(UTC))
        yield from sorted(t for t in moments if t > after)


def _day_matches(calendar: ScheduleCalendarSpec, day: date) -> bool:
    weekday = (day.weekday() + 1) % 7  # Temporal and cron count from Sunday = 0 (7 is Sunday too)
    return (
        (not calendar.year or _in(calendar.year, day.year))
        and _in(calendar.month, day.month)
        and _in(calendar.day_of_month, day.day)
        and (_in(calendar.day_of_week, weekday) or (weekday == 0 and _in(calendar.day_of_week, 7)))
    )


def _in(ranges: Sequence[ScheduleRange], value: int) -> bool:
    for r in ranges:
        end = max(r.end, r.start)
        if r.start <= value <= end and (value - r.start) % (r.step or 1) == 0:
            return True
    return False


def _values(ranges: Sequence[ScheduleRange], top: int) -> list[int]:
    return sorted({v for v in range(top + 1) if _in(ranges, v)})


def _month_spans(first: date, last: date) -> Iterator[tuple[int, int, int, int]]:
    """(year, month, first day, last day) for each month the inclusive range ``first..last`` touches."""
    start = first
    while start <= last:
        next_month = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        end = min(last, next_month - timedelta(days=1))
        yield start.year, start.month, start.day, end.day
        start = next_month


def _field(option: str, expression: str, name: str, text: str) -> tuple[ScheduleRange, ...]:
    low, high = _BOUNDS[name]
    ranges = []
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        if (step_text and not step_text.isdigit()) or step_text == "0":
            raise _bad(option, expression, name, text, f"step {step_text!r} is not a positive number")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high if name != "day-of-week" else 6
        else:
            first, _, second = body.partition("-")
            start = _value(option, expression, name, text, first)
            end = _value(option, expression, name, text, second) if second else (high if step_text else start)
            if end < start:
                raise _bad(option, expression, name, text, f"range {body!r} ends before it starts")
        ranges.append(ScheduleRange(start, end, step))
    return tuple(ranges)


def _value(option: str, expression: str, name: str, text: str, token: str) -> int:
    low, high = _BOUNDS[name]
    value = _NAMES.get(name, {}).get(token.upper()) if not token.isdigit() else int(token)
    if value is None:
        names = f" or a name like {next(iter(_NAMES[name]))}" if name in _NAMES else ""
        raise _bad(option, expression, name, text, f"{token!r} is not a number{names}")
    if not low <= value <= high:
        raise _bad(option, expression, name, text, f"{value} is not in {low}-{high}")
    return value


def _bad(option: str, expression: str, name: str, text: str, why: str) -> ScheduleSpecError:
    return ScheduleSpecError(f"{option} {expression!r}: {name} field {text!r}: {why}")
