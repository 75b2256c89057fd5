"""``observe.expect`` beside what the traffic measured under fault, for the Markdown and HTML reports.

The expectations judge every ``during`` window of the traffic together (merged exactly, as the workflow judged
them); each line says the threshold, the figure and whether it held.
"""

from __future__ import annotations

from dataclasses import dataclass

from gameday.activities.traffic.windows import merge
from gameday.model.records import RunRecord
from gameday.model.traffic import EXPECT_LATENCIES, Expect, WindowStats
from gameday.model.units import beyond


@dataclass(frozen=True)
class ExpectLine:
    """One expectation of ``observe.expect``.

    Attributes:
        name: what is measured (``availability``, ``error rate``, ``latency p95``…).
        threshold: the drill's bound, e.g. ``≥ 99.00%`` or ``≤ 800 ms``.
        measured: the figure under fault, ``-`` when nothing was measured.
        held: whether it held; ``None`` when nothing was measured.
    """

    name: str
    threshold: str
    measured: str
    held: bool | None


def under_fault(record: RunRecord) -> WindowStats | None:
    """Every ``during`` window of the run's traffic merged: what ``observe.expect`` judged."""
    if record.traffic is None:
        return None
    during = [w for w in record.traffic.phases if w.name.startswith("during")]
    return merge("during", during) if during else None


def expect_lines(record: RunRecord) -> list[ExpectLine]:
    """The run's expectations with their figures; empty when its drill had no ``observe.expect``."""
    judged = [ExpectLine(e.name.replace("_", " "), e.expected, e.actual, e.held) for e in record.expectations]
    return _traffic_lines(record.expect, record) + judged


def _traffic_lines(expect: Expect | None, record: RunRecord) -> list[ExpectLine]:
    """The service levels of ``observe.expect`` beside what the traffic measured under fault."""
    if expect is None:
        return []
    window = under_fault(record)
    lines = []
    if expect.availability is not None:
        value = None if window is None else (window.availability or 0.0)
        held = None if value is None else value >= expect.availability
        lines.append(ExpectLine("availability", f"≥ {_pct(expect.availability)}", _pct(value), held))
    if expect.error_rate is not None:
        value = None if window is None else window.error_rate
        held = None if value is None else value <= expect.error_rate
        lines.append(ExpectLine("error rate", f"≤ {_pct(expect.error_rate)}", _pct(value), held))
    for field in EXPECT_LATENCIES:
        limit = getattr(expect, field)
        if limit is None:
            continue
        name = field.removeprefix("latency_")
        seconds = None if window is None or window.latency is None else getattr(window.latency, name)
        bound, op = limit.total_seconds(), expect.op(field)
        held = None if seconds is None else not beyond(seconds, bound, op, default="<=")
        lines.append(ExpectLine(f"latency {name}", f"{_SYMBOL[op]} {_ms(bound)}", _ms(seconds), held))
    return lines


_SYMBOL = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}


def held_word(held: bool | None) -> str:
    return "-" if held is None else "yes" if held else "no"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.2f}%"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"
