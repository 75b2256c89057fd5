"""The drill log a person reads (Markdown) and the full record for machines (JSON).

Times are shown in UTC, with the offset from the start of the run so the sequence reads at a glance.
Probe and traffic latencies are recorded in seconds and shown in milliseconds. :func:`render_traffic_live`
is the traffic part of ``gameday status`` while a drill runs.
"""

from __future__ import annotations

import json
from datetime import datetime

from gameday.model import budget
from gameday.model.records import Coverage, FaultRecord, FaultState, Phase, ProbeResult, RunRecord, StepRecord
from gameday.model.score import format_score, score_record
from gameday.model.traffic import SecondStats, TrafficSummary, WindowStats
from gameday.report import words
from gameday.report.expect import expect_lines, held_word
from gameday.report.watch import detect_words, watch_markdown

LATE_WARNING = 0.01
"""Share of late requests above which the figures include the generator's own waiting (see ``Outcomes.late``)."""


def render_markdown(record: RunRecord, ui_url: str | None = None) -> str:
    """The drill log as Markdown: what happened, when, how bad, and how fast the system recovered.

    Args:
        record: the run to describe, finished or not.
        ui_url: the run's page in the Temporal Web UI (``GamedayConfig.workflow_url``); no link if ``None``.

    Returns:
        Markdown text ending with a newline.
    """
    verdict = record.verdict.value if record.verdict is not None else f"in progress ({record.phase.value})"
    lines = [f"# Drill `{record.drill_name}`: {verdict}", ""]
    if record.summary:
        lines += [f"> {_one_line(record.summary)}", ""]
    # A fault left in place is the one thing a reader must not miss: say it before anything else.
    left = [fault.label for fault in record.faults if fault.state is FaultState.NOT_REVERTED]
    if left:
        names = ", ".join(f"`{label}`" for label in left)
        lines += [f"> **Warning: not reverted, may still be in place:** {names}. Check the targets by hand.", ""]
    lines += _overview(record, ui_url)
    if expectations := expect_lines(record):
        lines += ["", "## Expectations under fault (observe.expect)", ""]
        lines += ["| Expectation | Threshold | Measured under fault | Held |", "|---|---|---|---|"]
        lines += [
            _row(e.name, e.threshold, e.measured, "**no**" if e.held is False else held_word(e.held))
            for e in expectations
        ]
    if record.steps:
        lines += ["", "## Phases", "", "| Phase | Status | Duration | Detail |", "|---|---|---|---|"]
        lines += [_step_line(step) for step in record.steps]
    if record.faults:
        lines += ["", "## Faults", "", "| # | Fault | Target | Action | State | Applied | Reverted | Changed |"]
        lines += ["|---|---|---|---|---|---|---|---|"]
        lines += [_fault_line(fault, record.started_at) for fault in record.faults]
        lines += _fault_notes(record.faults)
    if record.coverage is not None and record.coverage.gaps:
        lines += ["", "## Gaps in the observation", "", "| From | To | Length | Cause |", "|---|---|---|---|"]
        lines += [
            _row(
                words.relative(gap.start, record.started_at),
                words.relative(gap.end, record.started_at),
                words.duration(gap.seconds),
                gap.cause,
            )
            for gap in record.coverage.gaps
        ]
    if record.traffic is not None:
        lines += _traffic(record.traffic, record.started_at)
    if record.probes:
        lines += ["", "## Probes"]
        # A probe's ``record``: its last value per phase, in a column of its own only when some probe records.
        recorded = any(r.recorded is not None for r in record.probes)
        # Phase order, not time order: preflight, observe and verify read as the drill ran.
        for phase in [p for p in Phase if any(r.phase is p for r in record.probes)]:
            lines += ["", f"### {phase.value}", ""]
            lines += [
                "| Probe | Kind | Held | Samples | Failures | p50 ms | p95 ms | max ms | "
                + ("Recorded | " if recorded else "")
                + "Problems |"
            ]
            lines += ["|---|---|---|---|---|---|---|---|" + ("---|" if recorded else "") + "---|"]
            lines += [_probe_line(result, recorded) for result in record.probes if result.phase is phase]
    lines += watch_markdown(record)
    return "\n".join(lines) + "\n"


REPORT_ONLY_KEYS = ("score", "score_why")
"""Keys the JSON report adds to the record (computed, not stored): :func:`read_json` drops them."""


def render_json(record: RunRecord) -> str:
    """The full record as indented JSON, plus its resilience ``score`` (0-100, ``null`` when not scored) and
    ``score_why``; :func:`read_json` reads it back."""
    score = score_record(record)
    data = json.loads(record.model_dump_json())
    data.update({"score": score.score, "score_why": score.why})
    return json.dumps(data, indent=2, ensure_ascii=False)


def read_json(text: str) -> RunRecord:
    """The record of a JSON report (:func:`render_json`), without the keys the report computed."""
    data = json.loads(text)
    for key in REPORT_ONLY_KEYS:
        data.pop(key, None)
    return RunRecord.model_validate(data)


FORMATS = ("md", "html", "json", "junit")
"""What ``gameday report --format`` accepts."""


def render(record: RunRecord, fmt: str, ui_url: str | None = None) -> str:
    """The report of ``record`` in ``fmt`` (one of :data:`FORMATS`); HTML is :mod:`report.html`, JUnit XML
    :mod:`report.junit`."""
    if fmt == "json":
        return render_json(record)
    if fmt == "html":
        from gameday.report.html import render_html  # it imports this module's formatting

        return render_html(record, ui_url)
    if fmt == "md":
        return render_markdown(record, ui_url)
    if fmt == "junit":
        from gameday.report.junit import render_junit  # it imports the expectations, as this module does

        return render_junit(record)
    raise ValueError(f"unknown report format {fmt!r}: expected one of {', '.join(FORMATS)}")


def _overview(record: RunRecord, ui_url: str | None) -> list[str]:
    facts = [("Run", f"`{record.run_id}`")]
    facts += [(name, value) for name, value in (("Team", record.team), ("Started by", record.started_by)) if value]
    if record.source:
        facts.append(("Drill file", f"`{record.source}`"))
    facts.append(("Started", words.timestamp(record.started_at)))
    if record.ended_at is not None:
        facts.append(("Ended", words.timestamp(record.ended_at)))
        facts.append(("Duration", words.duration((record.ended_at - record.started_at).total_seconds())))
    if record.stop is not None:
        stop = record.stop
        when = f" at {words.timestamp(stop.received_at)}" if stop.received_at is not None else ""
        if stop.sent_at is not None:
            when = f", sent at {words.timestamp(stop.sent_at)}{stop_handled(record)}"
        facts.append(("Stopped", f"{_one_line(stop.reason)} (by {stop.by}{when})"))
    if record.stop is not None:
        facts.append(("Time to safe", " ".join(time_to_safe_words(record))))
        if record.time_to_healthy is not None:
            healthy = words.duration(record.time_to_healthy)
            facts.append(("Time to healthy", f"{healthy} ({stop_basis(record)} → first healthy check)"))
    if record.time_to_recovery is not None:
        facts.append(("Time to recovery", words.duration(record.time_to_recovery)))
    if (detected := detect_words(record)) is not None:
        facts.append(("Time to detect", detected))
    if record.coverage is not None:
        facts.append(("Evidence under fault", coverage_line(record.coverage)))
    if record.verdict is not None:
        score = score_record(record)
        facts.append(("Resilience score", f"{format_score(score.score)} ({score.why}; formula in docs/SCORE.md)"))
    if record.error:
        facts.append(("Error", _one_line(record.error)))
    if ui_url:
        facts.append(("Web UI", f"[{ui_url}]({ui_url})"))
    return [f"- **{name}:** {value}" for name, value in facts]


def coverage_line(coverage: Coverage) -> str:
    """The observation's coverage in one line: ticks, share of the window, gaps, and the drill's threshold."""
    line = coverage.describe()
    if coverage.min_coverage is not None:
        below = "" if coverage.sufficient else ": **below**"
        line += f" (observe.min_coverage {coverage.min_coverage * 100:.0f}%{below})"
    return line


def _step_line(step: StepRecord) -> str:
    seconds = step.seconds
    duration = "running" if seconds is None else words.duration(seconds)
    return _row(step.phase.value, step.status.value, duration, step.detail)


def _fault_line(fault: FaultRecord, start: datetime) -> str:
    changed = ", ".join(f"{key}={value}" for key, value in sorted(fault.changed.items()))
    return _row(
        str(fault.index),
        fault.label,
        fault.target,
        f"{fault.kind} {fault.action}",
        fault.state.value,
        words.relative(fault.applied_at, start),
        words.relative(fault.reverted_at, start),
        changed,
    )


def _fault_notes(faults: list[FaultRecord]) -> list[str]:
    # Output and errors can be long or multi-line: below the table, not inside a cell.
    notes = []
    for fault in faults:
        if fault.error:
            notes.append(f"- **{fault.label}** error: {_one_line(fault.error)}")
        if fault.output:
            notes.append(f"- **{fault.label}** output: {_one_line(fault.output)}")
    return ["", *notes] if notes else []


def _probe_line(result: ProbeResult, recorded: bool = False) -> str:
    return _row(
        result.probe,
        result.kind,
        "yes" if result.ok else "**no**",
        str(result.samples),
        str(result.failures),
        words.milliseconds(result.latency_p50),
        words.milliseconds(result.latency_p95),
        words.milliseconds(result.latency_max),
        *([result.recorded or "-"] if recorded else []),
        "; ".join(result.problems),
    )


def _traffic(traffic: TrafficSummary, run_start: datetime) -> list[str]:
    # Window offsets count from the traffic's start; shown from the run's, like the faults' times above.
    shift = (traffic.started_at - run_start).total_seconds()
    started = f"{words.timestamp(traffic.started_at)} ({words.signed(shift)})"
    lines = ["", "## Traffic", ""]
    lines.append(
        f"{traffic.rate:g} requests/s sent from {started} for {words.duration(traffic.elapsed)}, on a fixed schedule "
        "whatever the answers. Latency counts from each request's intended send time, so a stalled service "
        "shows in the percentiles, not as fewer requests. Times are from the start of the run."
    )
    if not traffic.finished:
        lines += ["", "Measured so far: the traffic was still running when this record was written."]
    lines += [
        "",
        "| Window | From | To | Requests | Throughput/s | Error rate | Availability "
        "| p50 ms | p95 ms | p99 ms | max ms | Late |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_window_line(window, shift) for window in traffic.phases]
    lines.append(_window_line(traffic.total, shift, name="**total**"))
    lines += ["", *_traffic_notes(traffic, shift)]
    return lines


def _window_line(window: WindowStats, shift: float, *, name: str | None = None) -> str:
    latency = window.latency
    return _row(
        name or window.name,
        words.signed(window.start + shift),
        "open" if window.end is None else words.signed(window.end + shift),
        str(window.sent),
        "-" if window.throughput is None else f"{window.throughput:.1f}",
        words.percent(window.error_rate),
        words.percent(window.availability),
        *(words.milliseconds(None if latency is None else getattr(latency, p)) for p in ("p50", "p95", "p99", "max")),
        words.percent(window.late / window.sent if window.sent else None),
    )


def _traffic_notes(traffic: TrafficSummary, shift: float) -> list[str]:
    total = traffic.total
    classes = [
        ("5xx", total.status_5xx),
        ("4xx", total.status_4xx),
        ("timeouts", total.timeouts),
        ("connection errors", total.connection_errors),
    ]
    errors = ", ".join(f"{what}: {count}" for what, count in classes if count)
    notes = [f"- Errors in total: {errors or 'none'}."]
    in_flight = total.sent - total.completed
    if in_flight:
        notes.append(f"- {in_flight} requests had no outcome yet when the figures were taken (in flight).")
    points = traffic.timeline.points()
    step = traffic.timeline.step
    point = "second" if step == 1 else f"{step} s"
    worst_errors = max(points, key=lambda p: p.errors, default=None)
    if worst_errors is not None and worst_errors.errors:
        notes.append(
            f"- Worst {point} for errors: {words.signed(worst_errors.second + shift)}, "
            f"{worst_errors.errors} of {worst_errors.completed} failed."
        )
    slowest = max((p for p in points if p.latency is not None), key=_p95, default=None)
    if slowest is not None and slowest.latency is not None:
        notes.append(
            f"- Slowest {point}: {words.signed(slowest.second + shift)}, "
            f"p95 {words.milliseconds(slowest.latency.p95)} ms."
        )
    for gap in traffic.gaps:
        notes.append(
            f"- **Gap:** nothing was sent from {words.signed(gap.start + shift)} to {words.signed(gap.end + shift)}: "
            "the "
            "worker sending the traffic was lost; those seconds are missing from every figure."
        )
    if total.sent and total.late / total.sent > LATE_WARNING:
        notes.append(
            f"- **{words.percent(total.late / total.sent)} of requests left late** (over 10 ms after their intended "
            "time: the generator or its connections were saturated), so the latencies include that waiting."
        )
    if step == 1:
        notes.append(f"- Per-second figures ({len(points)} seconds) are in the JSON report, `traffic.timeline`.")
    else:
        notes.append(
            f"- Figures per {step} s ({len(points)} points; a long run's timeline is kept to "
            f"{budget.MAX_TIMELINE_POINTS:,} points) are in the JSON report, `traffic.timeline`."
        )
    return notes


def _p95(point: SecondStats) -> float:
    return 0.0 if point.latency is None else point.latency.p95


def render_traffic_live(traffic: TrafficSummary, *, seconds: int = 5) -> list[str]:
    """Running traffic as ``gameday status`` prints it: the last seconds, then the current window's totals.

    Args:
        traffic: the latest snapshot (the heartbeat details of ``hold_traffic``).
        seconds: how many of the last closed seconds of the timeline to show.

    Returns:
        Plain text lines (no markup), the first one a heading; offsets are seconds after the traffic's start.
    """
    state = "finished" if traffic.finished else "running"
    lines = [f"traffic: {traffic.rate:g}/s, {state}, {words.duration(traffic.elapsed)} measured"]
    recent = traffic.timeline.points()[-seconds:] if seconds > 0 else []
    if recent and traffic.timeline.step > 1:
        lines.append(f"  (points of {traffic.timeline.step} s: a long run's timeline is downsampled)")
    if recent:
        lines.append(f"  {'second':>8} {'sent':>7} {'ok':>7} {'errors':>7} {'p95 ms':>9}")
        for point in recent:
            p95 = words.milliseconds(None if point.latency is None else point.latency.p95)
            second = f"+{point.second}s"
            lines.append(f"  {second:>8} {point.sent:>7} {point.ok:>7} {point.errors:>7} {p95:>9}")
    current = traffic.phases[-1] if traffic.phases else None
    if current is not None:
        since = f"since +{current.start:.1f}s"
        if current.end is not None:
            since = f"+{current.start:.1f}s to +{current.end:.1f}s"
        lines.append(f'  window "{current.name}" ({since}): {_live_window(current)}')
    if len(traffic.phases) != 1:
        lines.append(f"  total: {_live_window(traffic.total)}")
    for gap in traffic.gaps:
        lines.append(f"  gap: nothing sent from +{gap.start:.1f}s to +{gap.end:.1f}s (the sending worker was lost)")
    return lines


def _live_window(window: WindowStats) -> str:
    latency = window.latency
    figures = f"{window.sent} sent, {window.ok} ok, {window.errors} errors ({words.percent(window.error_rate)})"
    if latency is not None:
        ms = [words.milliseconds(getattr(latency, p)) for p in ("p50", "p95", "p99", "max")]
        figures += f", p50/p95/p99/max {'/'.join(ms)} ms"
    if window.sent and window.late:
        figures += f", late {words.percent(window.late / window.sent)}"
    return figures


def _row(*cells: str) -> str:
    # A pipe or a newline inside a cell would break the table.
    return "| " + " | ".join(_one_line(cell).replace("|", "\\|") for cell in cells) + " |"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def stop_basis(record: RunRecord) -> str:
    """What time to safe counts from: the stop sent (``gameday stop``), else the stop received (a guardrail)."""
    return "stop sent" if record.stop is not None and record.stop.sent_at is not None else "stop received"


def stop_handled(record: RunRecord) -> str:
    """``", handled by the workflow at … (+73.4 s)"``: how long a sent stop waited for a worker; ``""`` if unknown."""
    stop = record.stop
    if stop is None or stop.sent_at is None or stop.received_at is None:
        return ""
    waited = max(0.0, (stop.received_at - stop.sent_at).total_seconds())
    return f", handled by the workflow at {words.timestamp(stop.received_at)} (+{words.duration(waited)})"


def time_to_safe_words(record: RunRecord) -> tuple[str, str]:
    """Time to safe and what it means: (``"466 ms"``, ``"(stop sent → last revert done; …)"``).

    It covers the reverts that succeeded; faults NOT REVERTED are named, since for them there is no time to safe.
    """
    left = [f.label for f in record.faults if f.state == FaultState.NOT_REVERTED]
    if record.time_to_safe is None:
        value = "never: a fault was NOT REVERTED" if left else "-"
    else:
        value = words.duration(record.time_to_safe)
    notes = [f"{stop_basis(record)} → last revert done"]
    stop = record.stop
    if record.time_to_safe is not None and stop is not None and stop.sent_at and stop.received_at:
        handled = record.time_to_safe - max(0.0, (stop.received_at - stop.sent_at).total_seconds())
        notes.append(f"{words.duration(max(0.0, handled))} after the workflow handled the stop")
    if left and record.time_to_safe is not None:
        notes.append(f"NOT REVERTED: {', '.join(left)}")
    return value, f"({'; '.join(notes)})"
