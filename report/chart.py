"""The timeline chart of the HTML report, as inline SVG drawn here: no script, no library, no request.

With traffic (``observe.traffic``), three panels share one time axis, in seconds after the traffic started:
completed requests per second, error rate and p95 latency, one ``<path>`` per series, broken where a second
has no value. Each fault's window (applied → reverted) is a shaded band across the panels, with a lane on top
naming it; the stop or guardrail moment is a dashed line. Below the fault lanes, one lane per hypothesis probe
shows each phase it ran in (preflight, observe, verify) from the phase's start to its end, green where it held,
amber where it held with some failed samples, red where it broke its tolerance: a DEVIATED run's failing probe
is seen on the chart, not only in the tables. Without traffic, the phases are drawn as one bar (seconds after the
run started) with the same fault and probe lanes and stop line.

Every text that came from a drill file or a person is escaped: the SVG sits inside the HTML page.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from html import escape

from gameday.model.records import FaultState, Phase, ProbeResult, RunRecord, StepStatus
from gameday.model.traffic import SecondStats, TrafficSummary

WIDTH = 960
LEFT, RIGHT = 70, 20
PANEL_HEIGHT, PANEL_GAP, LANE = 110, 30, 16
BACKGROUND = "#ffffff"
FAULT_COLOURS = ("#f0883e", "#2da44e", "#bf8700", "#db61a2", "#0969da", "#6e7781")
"""Shading of the fault windows, in fault order (cycled): overlapping windows mix."""
STOP_COLOUR = "#a40e26"
STEP_COLOURS = {
    StepStatus.OK: "#4ac26b",
    StepStatus.FAILED: "#cf222e",
    StepStatus.INTERRUPTED: "#d4a72c",
    StepStatus.SKIPPED: "#afb8c1",
}
PROBE_COLOURS = {"held": "#1a7f37", "held, some samples failed": "#d4a72c", "broke its tolerance": "#cf222e"}
"""A probe lane's segment, by how the probe's samples in that phase were judged."""
WATCH = "watch"
WATCH_COLOURS = {"held": "#1a7f37", "not held": "#8c959f"}
"""A watch lane's segment (``observe.watch``, never judged): whether its assertion held, from one change to the next."""


@dataclass(frozen=True)
class Series:
    """One panel of the traffic chart: a figure per second of the timeline."""

    key: str
    title: str
    unit: str
    colour: str
    value: Callable[[SecondStats], float | None]


SERIES = (
    Series("throughput", "Throughput (completed requests/s)", "/s", "#0550ae", lambda p: p.throughput),
    Series(
        "error-rate",
        "Error rate",
        "%",
        "#d1242f",
        lambda p: None if p.error_rate is None else p.error_rate * 100,
    ),
    Series(
        "p95",
        "p95 latency",
        " ms",
        "#8250df",
        lambda p: None if p.latency is None else p.latency.p95 * 1000,
    ),
)


@dataclass(frozen=True)
class Span:
    """A stretch of the chart's time axis (seconds after its origin) with a name: a fault, a phase, a gap."""

    start: float
    end: float
    label: str
    colour: str
    note: str = ""
    """Shown on hover, after the label."""


@dataclass(frozen=True)
class Axis:
    """Seconds ``0 … end`` mapped onto the plot's width."""

    end: float

    def x(self, seconds: float) -> float:
        plot = WIDTH - LEFT - RIGHT
        return LEFT + plot * min(max(seconds, 0.0), self.end) / self.end


@dataclass(frozen=True)
class ProbeSpan:
    """One probe's result over one phase, placed on the time axis (seconds after the chart's origin)."""

    lane: int
    probe: str
    phase: str
    start: float
    end: float
    held: bool
    samples: int
    failures: int
    value: str | None = None
    """A watch probe's recorded value over the span (``phase`` is ``watch``)."""

    @property
    def colour(self) -> str:
        if self.phase == WATCH:
            return WATCH_COLOURS["held" if self.held else "not held"]
        return probe_colour(self.held, self.failures)


def probe_colour(held: bool, failures: int) -> str:
    """A probe lane's colour: red where it broke its tolerance, amber where it held with failed samples."""
    if not held:
        return PROBE_COLOURS["broke its tolerance"]
    return PROBE_COLOURS["held, some samples failed" if failures else "held"]


def timeline_svg(record: RunRecord) -> str:
    """The chart for ``record``: the traffic panels when it has traffic, else the phases bar."""
    origin = record.started_at if record.traffic is None else record.traffic.started_at
    faults = _fault_spans(record, origin)
    probes = _probe_spans(record, origin)
    stop = _stop_marker(record, origin)
    if record.traffic is not None and record.traffic.timeline.second:
        return _traffic_chart(record.traffic, faults, probes, stop)
    return _phase_chart(record, faults, probes, stop)


def _probe_spans(record: RunRecord, origin: datetime) -> list[ProbeSpan]:
    names = list(dict.fromkeys(result.probe for result in record.probes))
    return _result_spans(record, origin, names) + _watch_spans(record, origin, len(names))


def _watch_spans(record: RunRecord, origin: datetime, first_lane: int) -> list[ProbeSpan]:
    """One lane per watch probe: a segment per change (value or held) until the next, the last until verify ended."""
    ends = [s.ended_at for s in record.steps if s.phase is Phase.VERIFY and s.ended_at is not None]
    end = max(ends, default=record.ended_at)
    spans = []
    for lane, watched in enumerate(record.watch, start=first_lane):
        for change, following in zip(watched.changes, [*watched.changes[1:], None], strict=True):
            until = following.at if following is not None else max(end or change.at, change.at)
            spans.append(
                ProbeSpan(
                    lane=lane,
                    probe=watched.name,
                    phase=WATCH,
                    start=(change.at - origin).total_seconds(),
                    end=(until - origin).total_seconds(),
                    held=change.held,
                    samples=0,
                    failures=0,
                    value=change.value,
                )
            )
    return spans


def _result_spans(record: RunRecord, origin: datetime, names: list[str]) -> list[ProbeSpan]:
    spans = []
    for result in record.probes:
        start, end = _probe_window(record, result)
        spans.append(
            ProbeSpan(
                lane=names.index(result.probe),
                probe=result.probe,
                phase=result.phase.value,
                start=(start - origin).total_seconds(),
                end=(end - origin).total_seconds(),
                held=result.ok,
                samples=result.samples,
                failures=result.failures,
            )
        )
    return spans


def _probe_window(record: RunRecord, result: ProbeResult) -> tuple[datetime, datetime]:
    """When the probe's samples of that phase were taken: the observation's window, else its phase's step."""
    if result.phase is Phase.OBSERVE and record.coverage is not None:
        return record.coverage.window_start, record.coverage.window_end
    steps = [s for s in record.steps if s.phase is result.phase and s.started_at <= result.at]
    if not steps:
        return result.at, result.at
    step = steps[-1]
    end = step.ended_at if step.ended_at is not None and step.ended_at >= result.at else result.at
    return step.started_at, end


def _fault_spans(record: RunRecord, origin: datetime) -> list[Span]:
    spans = []
    for n, fault in enumerate(record.faults):
        if fault.applied_at is None:
            continue  # never applied: nothing to shade
        note = f"{fault.kind} {fault.action} on {fault.target}: {fault.state.value}"
        # A fault never reverted may still be in place: its window runs to the end of the chart.
        end = math.inf if fault.reverted_at is None else (fault.reverted_at - origin).total_seconds()
        if fault.state is FaultState.NOT_REVERTED or fault.reverted_at is None:
            note += ", never reverted"
        spans.append(
            Span(
                start=(fault.applied_at - origin).total_seconds(),
                end=end,
                label=fault.label,
                colour=FAULT_COLOURS[n % len(FAULT_COLOURS)],
                note=note,
            )
        )
    return spans


def _stop_marker(record: RunRecord, origin: datetime) -> Span | None:
    stop = record.stop
    if stop is None or stop.received_at is None:
        return None
    at = (stop.received_at - origin).total_seconds()
    what = "guardrail" if stop.by == "guardrail" else f"stop by {stop.by}"
    return Span(start=at, end=at, label=f"{what}: {stop.reason}", colour=STOP_COLOUR)


def _traffic_chart(traffic: TrafficSummary, faults: list[Span], probes: list[ProbeSpan], stop: Span | None) -> str:
    points = traffic.timeline.points()
    last = max(p.second + p.seconds for p in points)
    finite = [s.end for s in faults if math.isfinite(s.end)] + [s.start for s in faults]
    axis = Axis(max([traffic.elapsed, float(last), *finite, stop.start if stop else 0.0]) or 1.0)
    probe_top = 8 + LANE * len(faults)
    top = probe_top + LANE * _lane_count(probes) + (LANE if stop else 0)
    bottom = top + len(SERIES) * PANEL_HEIGHT + (len(SERIES) - 1) * PANEL_GAP
    parts = _lanes(faults, axis, 8) + _probe_lanes(probes, axis, probe_top)
    for gap in traffic.gaps:
        x0, x1 = axis.x(gap.start), axis.x(gap.end)
        parts.append(
            f'<rect class="gap" x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{bottom - top}" '
            'fill="url(#gap-hatch)"><title>no traffic sent: the worker sending it was lost</title></rect>'
        )
    for n, series in enumerate(SERIES):
        parts += _panel(series, points, axis, top + n * (PANEL_HEIGHT + PANEL_GAP))
    parts += _shading(faults, axis, top, bottom)
    parts += _x_axis(axis, bottom, "seconds after the traffic started")
    if stop is not None:
        parts += _stop_line(stop, axis, top - LANE, bottom)
    return _svg("traffic-chart", bottom + 40, parts)


def _phase_chart(record: RunRecord, faults: list[Span], probes: list[ProbeSpan], stop: Span | None) -> str:
    origin = record.started_at
    ends = [(s.ended_at or s.started_at) for s in record.steps] + ([record.ended_at] if record.ended_at else [])
    finite = [s.end for s in faults if math.isfinite(s.end)] + [p.end for p in probes]
    axis = Axis(max([(t - origin).total_seconds() for t in ends] + finite + [stop.start if stop else 0.0]) or 1.0)
    probe_top = 8 + LANE * len(faults)
    top = probe_top + LANE * _lane_count(probes) + (LANE if stop else 0)
    height = 34
    parts = _lanes(faults, axis, 8) + _probe_lanes(probes, axis, probe_top)
    for step in record.steps:
        start = (step.started_at - origin).total_seconds()
        end = axis.end if step.ended_at is None else (step.ended_at - origin).total_seconds()
        x0, x1 = axis.x(start), axis.x(end)
        width = max(x1 - x0, 1.0)
        colour = STEP_COLOURS[step.status]
        tip = escape(f"{step.phase.value}: {step.status.value} {step.detail}".strip())
        parts.append(
            f'<rect class="phase-segment" data-phase="{step.phase.value}" x="{x0:.1f}" y="{top}" '
            f'width="{width:.1f}" height="{height}" fill="{colour}" stroke="{BACKGROUND}"><title>{tip}</title></rect>'
        )
        if width > 7.5 * len(step.phase.value):
            parts.append(_text(x0 + width / 2, top + 22, step.phase.value, anchor="middle"))
    parts.append(_text(LEFT - 8, top + 22, "phases", anchor="end"))
    parts += _shading(faults, axis, top, top + height)
    parts += _x_axis(axis, top + height, "seconds after the run started")
    if stop is not None:
        parts += _stop_line(stop, axis, top - LANE, top + height)
    return _svg("phase-chart", top + height + 40, parts)


def _panel(series: Series, points: list[SecondStats], axis: Axis, top: int) -> list[str]:
    values = [(p.second, series.value(p)) for p in points]
    # Headroom above the highest value, so the line never runs along the panel's title.
    peak = _nice_ceiling(1.15 * max((v for _, v in values if v is not None), default=0.0))
    bottom = top + PANEL_HEIGHT
    parts = [
        f'<rect x="{LEFT}" y="{top}" width="{WIDTH - LEFT - RIGHT}" height="{PANEL_HEIGHT}" fill="#f6f8fa"/>',
        _text(LEFT + 6, top + 14, series.title, weight="600"),
    ]
    for share in (0.0, 0.5, 1.0):
        y = bottom - share * PANEL_HEIGHT
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de"/>')
        parts.append(_text(LEFT - 6, y + 4, f"{_number(peak * share)}{series.unit}", anchor="end"))
    # One path per series, each point (a second, or ``step`` seconds of a long run) drawn at its middle. A point
    # without a value (nothing completed) or missing from the timeline (a gap: nothing sent) breaks the line
    # instead of bridging it.
    step = points[0].seconds if points else 1
    commands, previous = [], None
    for second, value in values:
        if value is None:
            previous = None
            continue
        x, y = axis.x(second + step / 2), bottom - PANEL_HEIGHT * value / peak
        commands.append(f"{'L' if previous == second - step else 'M'}{x:.1f},{y:.1f}")
        previous = second
    parts.append(
        f'<path class="series" data-series="{series.key}" d="{" ".join(commands)}" fill="none" '
        f'stroke="{series.colour}" stroke-width="2.5" stroke-linejoin="round" stroke-linecap="round"/>'
    )
    return parts


def _lanes(faults: list[Span], axis: Axis, top: int) -> list[str]:
    parts = []
    for n, fault in enumerate(faults):
        y = top + n * LANE
        x0, x1 = axis.x(fault.start), axis.x(fault.end)
        parts.append(
            f'<rect class="fault-lane" x="{x0:.1f}" y="{y + 2}" width="{max(x1 - x0, 2):.1f}" height="{LANE - 4}" '
            f'fill="{fault.colour}"/>'
        )
        label = fault.label if len(fault.label) <= 60 else fault.label[:59] + "…"
        anchor, x = ("end", x0 - 4) if x0 > WIDTH * 0.6 else ("start", x0 + 4)
        parts.append(_text(x, y + LANE - 4, label, anchor=anchor))
    return parts


def _lane_count(probes: list[ProbeSpan]) -> int:
    """Lanes the probes take, in lane heights (a little more, so the panel below keeps its axis label clear)."""
    lanes = max((p.lane + 1 for p in probes), default=0)
    return lanes + 1 if lanes else 0


def _probe_lanes(probes: list[ProbeSpan], axis: Axis, top: int) -> list[str]:
    parts = []
    named: set[int] = set()
    for span in probes:
        y = top + span.lane * LANE
        if span.lane not in named:
            named.add(span.lane)
            name = span.probe if len(span.probe) <= 9 else span.probe[:8] + "…"
            parts.append(_text(LEFT - 6, y + LANE - 4, name, anchor="end"))
        x0, x1 = axis.x(span.start), axis.x(span.end)
        width = max(x1 - x0, 3.0)
        judged = "held" if span.held else "broke its tolerance"
        tip = escape(f"probe {span.probe}, {span.phase}: {span.failures} of {span.samples} sample(s) failed, {judged}")
        if span.phase == WATCH:
            said = f"{span.value}, " if span.value is not None else ""
            tip = escape(f"watch {span.probe}: {said}{'held' if span.held else 'not held'} from {span.start:+.1f} s")
        parts.append(
            f'<rect class="probe-lane" data-probe="{escape(span.probe)}" data-phase="{span.phase}" '
            f'data-held="{"yes" if span.held else "no"}" data-failures="{span.failures}" '
            f'data-samples="{span.samples}" x="{x0:.1f}" y="{y + 2}" width="{width:.1f}" height="{LANE - 4}" '
            f'fill="{span.colour}"><title>{tip}</title></rect>'
        )
        label = f"{span.failures}/{span.samples} failed" if span.failures else (span.value or "")
        if label and width > 7 * len(label):
            parts.append(_text(x0 + width / 2, y + LANE - 4, label, anchor="middle", fill="#ffffff"))
    return parts


def _shading(faults: list[Span], axis: Axis, top: int, bottom: int) -> list[str]:
    parts = []
    for fault in faults:
        x0, x1 = axis.x(fault.start), axis.x(fault.end)
        tip = escape(f"{fault.label}: {fault.note}")
        parts.append(
            f'<rect class="fault-window" data-fault="{escape(fault.label)}" x="{x0:.1f}" y="{top}" '
            f'width="{max(x1 - x0, 2):.1f}" height="{bottom - top}" fill="{fault.colour}" fill-opacity="0.2">'
            f"<title>{tip}</title></rect>"
        )
    return parts


def _stop_line(stop: Span, axis: Axis, top: int, bottom: int) -> list[str]:
    x = axis.x(stop.start)
    label = stop.label if len(stop.label) <= 70 else stop.label[:69] + "…"
    anchor, text_x = ("end", x - 5) if x > WIDTH * 0.6 else ("start", x + 5)
    return [
        f'<line class="stop-marker" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" stroke="{stop.colour}" '
        f'stroke-width="2.5" stroke-dasharray="6 4"><title>{escape(stop.label)}</title></line>',
        _text(text_x, top + LANE - 4, label, fill=stop.colour, weight="600", anchor=anchor),
    ]


def _x_axis(axis: Axis, y: int, caption: str) -> list[str]:
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600) if axis.end / s <= 10), 7200)
    parts = []
    tick = 0
    while tick <= axis.end + 1e-9:
        x = axis.x(tick)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + 5}" stroke="#57606a"/>')
        parts.append(_text(x, y + 17, _tick_label(tick), anchor="middle"))
        tick += step
    parts.append(_text((LEFT + WIDTH - RIGHT) / 2, y + 34, caption, anchor="middle", fill="#57606a"))
    return parts


def _svg(css_id: str, height: int, parts: list[str]) -> str:
    hatch = (
        '<defs><pattern id="gap-hatch" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="4" height="8" fill="#d0d7de"/></pattern></defs>'
    )
    body = "\n".join(parts)
    return (
        f'<svg id="{css_id}" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" font-family="sans-serif" font-size="12">{hatch}\n{body}\n</svg>'
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", fill: str = "#24292f", weight: str = "") -> str:
    bold = f' font-weight="{weight}"' if weight else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{bold}>{escape(text)}</text>'


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above ``value``: round numbers on the y axis."""
    if value <= 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(value))
    return next(m * base for m in (1, 2, 2.5, 5, 10) if value <= m * base)


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.2g}"


def _tick_label(seconds: float) -> str:
    if seconds < 120:
        return f"+{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"+{minutes}:{secs:02d}"
