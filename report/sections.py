"""The tables of the HTML report: hypothesis per phase, phases, faults, traffic windows.

Cells are plain text, escaped here, unless built as :class:`Html` (markup made in this module from escaped
parts). Figures are formatted as in the Markdown report.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from gameday.model.records import FaultRecord, FaultState, Phase, ProbeResult, RunRecord
from gameday.model.traffic import TrafficSummary, WindowStats
from gameday.report import words
from gameday.report.expect import expect_lines, held_word
from gameday.report.run import LATE_WARNING, coverage_line
from gameday.report.watch import alert_rows, detect_words, watch_rows

PROBE_PHASES = {
    Phase.PREFLIGHT: "Before the faults (preflight)",
    Phase.OBSERVE: "Under fault (observe)",
    Phase.VERIFY: "After rollback (verify)",
}


class Html(str):
    """Markup already built here (escaped where needed): inserted as is, where any other ``str`` is escaped."""


def probe_section(record: RunRecord) -> str:
    """The hypothesis' probes, one table per phase: before the faults, under fault, after rollback."""
    if not record.probes:
        return ""
    parts = ["<section><h2>Hypothesis: before, under fault, after</h2>"]
    recorded = any(r.recorded is not None for r in record.probes)
    headers: tuple[str, ...] = ("Probe", "Kind", "Held", "Samples", "Failures", "p50 ms", "p95 ms", "max ms")
    headers += ("Recorded", "Problems") if recorded else ("Problems",)
    for phase in [p for p in Phase if any(r.phase is p for r in record.probes)]:
        parts.append(f"<h3>{escape(PROBE_PHASES.get(phase, phase.value))}</h3>")
        parts.append(table(headers, [_probe_row(r, recorded) for r in record.probes if r.phase is phase]))
    return "".join(parts) + "</section>"


def watch_section(record: RunRecord) -> str:
    """``observe.watch``: each watched probe's values and changes, the time to detect; the alerts that fired."""
    parts: list[str] = []
    if record.watch:
        parts.append('<section id="watch"><h2>Watch (observe.watch)</h2>')
        if (detect := detect_words(record)) is not None:
            parts.append(f"<p>Time to detect (from the first fault): <strong>{escape(detect)}</strong></p>")
        rows: list[list[str | Html]] = [[r.probe, r.changes, r.held, r.samples] for r in watch_rows(record)]
        parts.append(table(("Probe", "Values and changes (from the start of the run)", "Held", "Samples"), rows))
        parts.append("</section>")
    if alerts := alert_rows(record):
        rows = [[r.alert, r.expected, r.fired, r.resolved] for r in alerts]
        parts.append('<section id="alerts"><h2>Alerts</h2>')
        parts.append(table(("Alert", "Expected", "Fired", "Resolved"), rows) + "</section>")
    return "".join(parts)


def _probe_row(result: ProbeResult, recorded: bool = False) -> list[str | Html]:
    held = Html("yes") if result.ok else Html('<span class="bad">no</span>')
    latencies = (result.latency_p50, result.latency_p95, result.latency_max)
    return [
        result.probe,
        result.kind,
        held,
        str(result.samples),
        str(result.failures),
        *(words.milliseconds(v) for v in latencies),
        *([result.recorded or "-"] if recorded else []),
        "; ".join(result.problems),
    ]


def expect_section(record: RunRecord) -> str:
    """``observe.expect``: each threshold beside the figure the traffic measured under fault."""
    lines = expect_lines(record)
    if not lines:
        return ""
    rows: list[list[str | Html]] = [
        [
            line.name,
            line.threshold,
            line.measured,
            Html('<span class="bad">no</span>') if line.held is False else held_word(line.held),
        ]
        for line in lines
    ]
    return (
        '<section id="expect"><h2>Expectations under fault (observe.expect)</h2>'
        + table(("Expectation", "Threshold", "Measured under fault", "Held"), rows)
        + "</section>"
    )


def coverage_section(record: RunRecord) -> str:
    """How much of the observation under fault the probes covered, and each gap with its times and cause."""
    coverage = record.coverage
    if coverage is None:
        return ""
    intro = coverage_line(coverage).replace("**", "")
    if not coverage.gaps:
        return f'<section id="coverage"><h2>Evidence under fault</h2><p>{escape(intro)}; no gap.</p></section>'
    rows: list[list[str | Html]] = [
        [
            words.relative(g.start, record.started_at),
            words.relative(g.end, record.started_at),
            words.duration(g.seconds),
            g.cause,
        ]
        for g in coverage.gaps
    ]
    return (
        f'<section id="coverage"><h2>Evidence under fault</h2><p>{escape(intro)}.</p>'
        + table(("From", "To", "Length", "Cause"), rows)
        + "</section>"
    )


def phase_section(record: RunRecord) -> str:
    """Each phase (step) with its status, start and duration."""
    if not record.steps:
        return ""
    rows: list[list[str | Html]] = [
        [
            step.phase.value,
            step.status.value,
            words.relative(step.started_at, record.started_at),
            "running" if step.seconds is None else words.duration(step.seconds),
            step.detail,
        ]
        for step in record.steps
    ]
    return "<section><h2>Phases</h2>" + table(("Phase", "Status", "Started", "Duration", "Detail"), rows) + "</section>"


def fault_section(record: RunRecord) -> str:
    """Each fault with its applied and reverted times, how long it was held, and what it changed."""
    if not record.faults:
        return ""
    headers = ("#", "Fault", "Target", "Action", "State", "Applied", "Reverted", "Held for", "What changed")
    rows = [_fault_row(fault, record) for fault in record.faults]
    notes = [
        f"<li><b>{escape(f.label)}</b> {what}: <code>{escape(text)}</code></li>"
        for f in record.faults
        for what, text in (("error", f.error), ("output", f.output))
        if text
    ]
    extra = f"<ul>{''.join(notes)}</ul>" if notes else ""
    return "<section><h2>Faults</h2>" + table(headers, rows) + extra + "</section>"


def _fault_row(fault: FaultRecord, record: RunRecord) -> list[str | Html]:
    held = "-"
    if fault.applied_at is not None and fault.reverted_at is not None:
        held = words.duration((fault.reverted_at - fault.applied_at).total_seconds())
    state = fault.state.value
    changed = "<br>".join(f"{escape(k)} = {escape(v)}" for k, v in sorted(fault.changed.items()))
    return [
        str(fault.index),
        fault.label,
        fault.target,
        f"{fault.kind} {fault.action}",
        Html(f'<span class="bad">{escape(state)}</span>') if fault.state is FaultState.NOT_REVERTED else state,
        words.relative(fault.applied_at, record.started_at),
        words.relative(fault.reverted_at, record.started_at),
        held,
        Html(changed),
    ]


def traffic_section(traffic: TrafficSummary, record: RunRecord) -> str:
    """Each traffic window and the total, with the errors by class, gaps and late requests below."""
    shift = (traffic.started_at - record.started_at).total_seconds()
    intro = (
        f"{traffic.rate:g} requests/s sent from {words.timestamp(traffic.started_at)} ({words.signed(shift)}) for "
        f"{words.duration(traffic.elapsed)}, on a fixed schedule whatever the answers."
    )
    if not traffic.finished:
        intro += " Measured so far: the traffic was still running when this record was written."
    headers = ["Window", "From", "To", "Requests", "Throughput/s", "Error rate", "Availability"]
    headers += ["p50 ms", "p95 ms", "p99 ms", "max ms", "Late"]
    rows = [_window_row(w, shift) for w in traffic.phases] + [_window_row(traffic.total, shift, "total")]
    total = traffic.total
    classes = [("5xx", total.status_5xx), ("4xx", total.status_4xx), ("timeouts", total.timeouts)]
    classes.append(("connection errors", total.connection_errors))
    errors = ", ".join(f"{what}: {count}" for what, count in classes if count) or "none"
    notes = [f"Errors in total: {errors}."]
    if total.sent - total.completed:
        notes.append(f"{total.sent - total.completed} requests had no outcome yet (in flight).")
    notes += [
        f"Gap: nothing sent from {words.signed(g.start + shift)} to {words.signed(g.end + shift)} "
        "(the sending worker was lost)."
        for g in traffic.gaps
    ]
    if total.sent and total.late / total.sent > LATE_WARNING:
        notes.append(f"{words.percent(total.late / total.sent)} of requests left late: latencies include that waiting.")
    return (
        f"<section><h2>Traffic windows</h2><p>{escape(intro)} Times are from the start of the run.</p>"
        + table(headers, rows)
        + "<ul>"
        + "".join(f"<li>{escape(n)}</li>" for n in notes)
        + "</ul></section>"
    )


def _window_row(window: WindowStats, shift: float, name: str | None = None) -> list[str | Html]:
    latency = window.latency
    return [
        Html(f"<b>{escape(name)}</b>") if name else window.name,
        words.signed(window.start + shift),
        "open" if window.end is None else words.signed(window.end + shift),
        str(window.sent),
        "-" if window.throughput is None else f"{window.throughput:.1f}",
        words.percent(window.error_rate),
        words.percent(window.availability),
        *(words.milliseconds(None if latency is None else getattr(latency, p)) for p in ("p50", "p95", "p99", "max")),
        words.percent(window.late / window.sent if window.sent else None),
    ]


def table(headers: Iterable[str], rows: Iterable[list[str | Html]]) -> str:
    """A ``<table>`` with one header row; numeric cells are right-aligned."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_td(value) for value in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(value: str | Html) -> str:
    numeric = not isinstance(value, Html) and value.replace(".", "", 1).replace("%", "").isdigit()
    return f'<td class="num">{escape(value)}</td>' if numeric else f"<td>{cell(value)}</td>"


def cell(value: str | Html) -> str:
    """``value`` as HTML: escaped, unless it is :class:`Html` already."""
    return value if isinstance(value, Html) else escape(value)
