"""The drill log a person reads (Markdown) and the full record for machines (JSON).

Times are shown in UTC, with the offset from the start of the run so the sequence reads at a glance.
Probe latencies are recorded in seconds and shown in milliseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime

from workflows.records import FaultRecord, FaultState, Phase, ProbeResult, RunRecord, StepRecord


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
    if record.steps:
        lines += ["", "## Phases", "", "| Phase | Status | Duration | Detail |", "|---|---|---|---|"]
        lines += [_step_line(step) for step in record.steps]
    if record.faults:
        lines += ["", "## Faults", "", "| # | Fault | Target | Action | State | Applied | Reverted | Changed |"]
        lines += ["|---|---|---|---|---|---|---|---|"]
        lines += [_fault_line(fault, record.started_at) for fault in record.faults]
        lines += _fault_notes(record.faults)
    if record.probes:
        lines += ["", "## Probes"]
        # Phase order, not time order: preflight, observe and verify read as the drill ran.
        for phase in [p for p in Phase if any(r.phase is p for r in record.probes)]:
            lines += ["", f"### {phase.value}", ""]
            lines += ["| Probe | Kind | Held | Samples | Failures | p50 ms | p95 ms | max ms | Problems |"]
            lines += ["|---|---|---|---|---|---|---|---|---|"]
            lines += [_probe_line(result) for result in record.probes if result.phase is phase]
    return "\n".join(lines) + "\n"


def render_json(record: RunRecord) -> str:
    """The full record as indented JSON; ``RunRecord.model_validate_json`` reads it back."""
    return record.model_dump_json(indent=2)


def _overview(record: RunRecord, ui_url: str | None) -> list[str]:
    facts = [("Run", f"`{record.run_id}`")]
    facts += [(name, value) for name, value in (("Team", record.team), ("Started by", record.started_by)) if value]
    if record.source:
        facts.append(("Drill file", f"`{record.source}`"))
    facts.append(("Started", _timestamp(record.started_at)))
    if record.ended_at is not None:
        facts.append(("Ended", _timestamp(record.ended_at)))
        facts.append(("Duration", _duration((record.ended_at - record.started_at).total_seconds())))
    if record.stop is not None:
        stop = record.stop
        when = f" at {_timestamp(stop.received_at)}" if stop.received_at is not None else ""
        facts.append(("Stopped", f"{_one_line(stop.reason)} (by {stop.by}{when})"))
    if record.stop is not None:
        safe = "never: a fault was NOT REVERTED" if record.time_to_safe is None else _duration(record.time_to_safe)
        facts.append(("Time to safe", f"{safe} (stop received → last revert done)"))
        if record.time_to_healthy is not None:
            healthy = _duration(record.time_to_healthy)
            facts.append(("Time to healthy", f"{healthy} (stop received → first healthy check)"))
    if record.time_to_recovery is not None:
        facts.append(("Time to recovery", _duration(record.time_to_recovery)))
    if record.error:
        facts.append(("Error", _one_line(record.error)))
    if ui_url:
        facts.append(("Web UI", f"[{ui_url}]({ui_url})"))
    return [f"- **{name}:** {value}" for name, value in facts]


def _step_line(step: StepRecord) -> str:
    seconds = step.seconds
    duration = "running" if seconds is None else _duration(seconds)
    return _row(step.phase.value, step.status.value, duration, step.detail)


def _fault_line(fault: FaultRecord, start: datetime) -> str:
    changed = ", ".join(f"{key}={value}" for key, value in sorted(fault.changed.items()))
    return _row(
        str(fault.index),
        fault.label,
        fault.target,
        f"{fault.kind} {fault.action}",
        fault.state.value,
        _relative(fault.applied_at, start),
        _relative(fault.reverted_at, start),
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


def _probe_line(result: ProbeResult) -> str:
    return _row(
        result.probe,
        result.kind,
        "yes" if result.ok else "**no**",
        str(result.samples),
        str(result.failures),
        _milliseconds(result.latency_p50),
        _milliseconds(result.latency_p95),
        _milliseconds(result.latency_max),
        "; ".join(result.problems),
    )


def _row(*cells: str) -> str:
    # A pipe or a newline inside a cell would break the table.
    return "| " + " | ".join(_one_line(cell).replace("|", "\\|") for cell in cells) + " |"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _timestamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _relative(at: datetime | None, start: datetime) -> str:
    if at is None:
        return "-"
    offset = (at - start).total_seconds()
    # A worker's clock may lag the workflow's: show a negative offset as such, not as "+-".
    sign = "+" if offset >= 0 else "-"
    return f"{at.astimezone(UTC):%H:%M:%S} ({sign}{_duration(abs(offset))})"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _milliseconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"
