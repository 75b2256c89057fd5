"""Human units in drill files: durations (``250ms``, ``2m``, ``1h30m``), rates (``50/s``), percents (``1%``).

Each parser accepts the drill-file form and the form pydantic itself writes when a model is serialised
(ISO 8601 durations, plain numbers), so a validated drill survives the round trip through Temporal's
payload converter unchanged.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, cast

from pydantic import BeforeValidator, PlainSerializer

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|s|m|h|d)")
_DURATION_FULL = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|us|s|m|h|d))+")
_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)")
_RATE_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}

DURATION_HINT = "a duration like 250ms, 30s, 2m or 1h30m"
RATE_HINT = "a rate like 50/s or 600/m"
PERCENT_HINT = "a percentage like 1% or 99.9%"


def parse_duration(value: Any) -> Any:
    """Turn ``"250ms"``/``"1h30m"`` into a ``timedelta``; other forms go on to pydantic's own parsing.

    Raises:
        ValueError: for a string that is neither our form nor ISO 8601, or a bare number in a drill file.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool | int | float):
        raise ValueError(f"expected {DURATION_HINT} (a bare number has no unit)")
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if _DURATION_FULL.fullmatch(text):
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
            try:
                return timedelta(seconds=seconds)
            except OverflowError:
                raise ValueError(f"duration {value!r} is too large") from None
        if text.startswith("p"):
            return value  # ISO 8601, as pydantic serialises a (non-negative) timedelta
        raise ValueError(f"expected {DURATION_HINT}, got {value!r}")
    raise ValueError(f"expected {DURATION_HINT}, got {type(value).__name__}")


def parse_rate(value: Any) -> Any:
    """Turn ``"50/s"`` or ``"600/m"`` into requests per second (float)."""
    if isinstance(value, bool):
        raise ValueError(f"expected {RATE_HINT}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _RATE.fullmatch(value.strip().lower())
        if match:
            return float(match.group(1)) / _RATE_SECONDS[match.group(2)]
    raise ValueError(f"expected {RATE_HINT}, got {value!r}")


def parse_percent(value: Any) -> Any:
    """Turn ``"1%"`` into the fraction 0.01; a bare number is already a fraction (how it is serialised)."""
    if isinstance(value, bool):
        raise ValueError(f"expected {PERCENT_HINT}")
    if isinstance(value, int | float):
        fraction = float(value)
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            fraction = float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise ValueError(f"expected {PERCENT_HINT}, got {value!r}") from None
    else:
        raise ValueError(f"expected {PERCENT_HINT}, got {value!r}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"expected {PERCENT_HINT} between 0% and 100%, got {value!r}")
    return fraction


def format_duration(delta: timedelta) -> str:
    """The shortest drill-file form of ``delta``: ``timedelta(seconds=90)`` → ``"1m30s"``."""
    total_ms = round(delta.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    if total_ms < 1000:
        return f"{total_ms}ms"
    out = []
    seconds, ms = divmod(total_ms, 1000)
    for unit, size in (("h", 3600), ("m", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            out.append(f"{count}{unit}")
    if seconds or ms:
        out.append(f"{seconds}.{ms:03d}s".replace(".000s", "s") if ms else f"{seconds}s")
    return "".join(out)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
"""A ``timedelta`` written in drill files as ``250ms``, ``2m``…"""

Rate = Annotated[float, BeforeValidator(parse_rate), PlainSerializer(float)]
"""Events per second, written ``50/s``."""

Percent = Annotated[float, BeforeValidator(parse_percent), PlainSerializer(float)]
"""A fraction in [0, 1], written ``1%``."""


# --- thresholds: the bare form (``99%``, ``800ms``) or a comparison (``">= 99%"``, ``"< 800ms"``) ---------------

_COMPARISON = re.compile(r"\s*(<=|>=|=<|=>|<|>)\s*(\S.*)", re.DOTALL)
_CANONICAL = {"=<": "<=", "=>": ">="}
Comparison = Literal["<", "<=", ">", ">="]
"""How a threshold was written: ``"< 800ms"`` is ``<``."""


def split_comparison(value: Any) -> tuple[Comparison | None, Any]:
    """``"< 800ms"`` → ``("<", "800ms")``; a value without a leading operator → ``(None, value)``."""
    if isinstance(value, str):
        match = _COMPARISON.fullmatch(value)
        if match:
            op = _CANONICAL.get(match.group(1), match.group(1))
            return cast(Comparison, op), match.group(2).strip()
    return None, value


def _bounded(parse: Any, direction: str, meaning: str) -> BeforeValidator:
    """A threshold written bare or with an operator pointing ``direction`` (``<`` or ``>``); the value parsed."""

    def validate(value: Any) -> Any:
        op, rest = split_comparison(value)
        if op is not None and op[0] != direction:
            raise ValueError(
                f"{value!r} points the wrong way: {meaning}; "
                f"write '{direction}= {rest}', '{direction} {rest}' or {rest}"
            )
        try:
            return parse(rest)
        except ValueError as error:
            if op is None or not isinstance(value, str) or "between" in str(error) or "too large" in str(error):
                raise  # the bare form keeps its own words; an out-of-range value is said as such
            example = "250ms" if parse is parse_duration else "1%"
            raise ValueError(
                f"expected {DURATION_HINT if parse is parse_duration else PERCENT_HINT}, bare or after one of "
                f"<, <=, >, >= (e.g. '{direction}= {example}'), got {value!r}"
            ) from None

    return BeforeValidator(validate)


PercentAtMost = Annotated[float, _bounded(parse_percent, "<", "this is a ceiling (at most)"), PlainSerializer(float)]
"""A fraction the measure must stay under: ``1%``, ``"<= 1%"`` or ``"< 1%"``."""
PercentAtLeast = Annotated[float, _bounded(parse_percent, ">", "this is a floor (at least)"), PlainSerializer(float)]
"""A fraction the measure must stay over: ``99%``, ``">= 99%"`` or ``"> 99%"``."""
DurationAtMost = Annotated[timedelta, _bounded(parse_duration, "<", "this is a ceiling (at most)")]
"""A latency the measure must stay under: ``800ms``, ``"< 800ms"`` or ``"<= 800ms"``."""
PercentAbove = Annotated[
    float, _bounded(parse_percent, ">", "a guardrail on it breaches when it rises above"), PlainSerializer(float)
]
"""A guardrail's trip point on a rising measure: ``50%``, ``"> 50%"`` or ``">= 50%"``."""
PercentBelow = Annotated[
    float, _bounded(parse_percent, "<", "a guardrail on it breaches when it falls below"), PlainSerializer(float)
]
"""A guardrail's trip point on a falling measure (availability): ``50%``, ``"< 50%"`` or ``"<= 50%"``."""
DurationAbove = Annotated[timedelta, _bounded(parse_duration, ">", "a guardrail on it breaches when it rises above")]
"""A guardrail's trip point on a latency: ``2s``, ``"> 2s"`` or ``">= 2s"``."""


def written_comparisons(data: Any, fields: tuple[str, ...]) -> Any:
    """For a model's ``mode="before"`` validator: note in ``data["comparisons"]`` the operator written for each of
    ``fields`` (e.g. ``{"latency_p95": "<"}``), so a strict ``<``/``>`` is judged as written. Bare values keep
    their historical meaning and are not noted. Anything that is not a mapping is left to pydantic."""
    if not isinstance(data, dict):
        return data
    noted = dict(data.get("comparisons") or {}) if isinstance(data.get("comparisons") or {}, dict) else None
    if noted is None:
        return data  # pydantic reports the malformed key
    for name in fields:
        op, _ = split_comparison(data.get(name))
        if op is not None:
            noted[name] = op
    if noted:
        data = {**data, "comparisons": noted}
    return data


def beyond(value: float, limit: float, op: Comparison | None, *, default: Comparison) -> bool:
    """Whether ``value`` is on the far side of ``limit`` for a bound written ``op`` (``default`` when bare).

    The bound is what must hold: ``beyond(0.8, 0.8, "<", ...)`` is True (0.8 is not below 0.8), ``beyond(0.8,
    0.8, "<=", ...)`` is False. For a guardrail the operator is the breach itself: use :func:`crosses`.
    """
    held = {"<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit}[op or default]
    return not held


def crosses(value: float, limit: float, op: Comparison | None, *, default: Comparison) -> bool:
    """Whether ``value`` meets a guardrail's breach condition ``op limit`` (``default`` when written bare)."""
    return {"<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit}[op or default]
