"""What ``observe.watch`` saw and the alerts that fired, as rows the Markdown and HTML reports both show.

The watched probes: each change of recorded value (or of whether the assertion held), with its offset from the
start of the run; the alerts: each expected one (fired? resolved?) and any that fired unexpected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gameday.model.records import RunRecord
from gameday.model.watch import Change, WatchedProbe
from gameday.report import words

MAX_SHOWN = 30
"""Changes shown per probe in a report (the JSON keeps them all, up to the record's own bound)."""


@dataclass(frozen=True)
class WatchRow:
    probe: str
    changes: str
    held: str
    samples: str


@dataclass(frozen=True)
class AlertRow:
    alert: str
    expected: str
    fired: str
    resolved: str


def watch_rows(record: RunRecord) -> list[WatchRow]:
    return [_row(probe, record.started_at) for probe in record.watch]


def _row(probe: WatchedProbe, start: datetime) -> WatchRow:
    shown = [_change(change, start, probe.record is not None) for change in probe.changes[:MAX_SHOWN]]
    more = len(probe.changes) - MAX_SHOWN + probe.dropped
    text = " → ".join(shown) + (f" (+{more} more)" if more > 0 else "")
    return WatchRow(probe.name, text or "-", f"{probe.held} of {probe.samples}", str(probe.samples))


def _change(change: Change, start: datetime, recorded: bool) -> str:
    said = change.value if recorded and change.value is not None else ("held" if change.held else "not held")
    if recorded and not change.held:
        said += " (not held)"
    return f"{said} at {words.signed((change.at - start).total_seconds())}"


def alert_rows(record: RunRecord) -> list[AlertRow]:
    """Expected alerts first (as the drill names them), then those that fired unexpected."""
    expect = record.expect.alerts if record.expect is not None else None
    wanted = list(expect.fire) if expect is not None else []
    seen = {alert.name: alert for alert in record.alerts}
    origin = min((f.applied_at for f in record.faults if f.applied_at is not None), default=None)
    rows: list[AlertRow] = []
    for name in [*wanted, *sorted(set(seen) - set(wanted))]:
        alert = seen.get(name)
        fired = "never" if alert is None else words.relative(alert.fired_at, record.started_at)
        resolved = "-" if alert is None else words.relative(alert.resolved_at, record.started_at)
        if alert is not None and alert.resolved_at is None:
            resolved = "still firing"
        if alert is not None and alert.before(origin):
            fired += " (before the first fault)"
        expected = "yes" if name in wanted else "no (unexpected)"
        if name not in wanted and alert is not None and alert.before(origin):
            expected = "no (already firing)"
        rows.append(AlertRow(name, expected, fired, resolved))
    return rows


def detect_words(record: RunRecord) -> str | None:
    """``4.5 s`` (time to detect), ``undetected`` for a declared detector that never fired, else ``None``."""
    if record.time_to_detect is not None:
        return words.duration(record.time_to_detect)
    for line in record.expectations:
        if line.name == "detect" and line.held is False:
            if line.miss.startswith("not a detection"):
                return "not a detection (it held before the first fault)"
            return "undetected"
    return None


def watch_markdown(record: RunRecord) -> list[str]:
    """The ``## Watch`` and ``## Alerts`` sections of the Markdown report (empty without a watch)."""
    lines: list[str] = []
    if record.watch:
        lines += ["", "## Watch (observe.watch)", ""]
        if (detect := detect_words(record)) is not None:
            lines += [f"Time to detect (from the first fault): **{detect}**", ""]
        lines += ["| Probe | Values and changes (from the start of the run) | Held | Samples |", "|---|---|---|---|"]
        lines += [f"| {r.probe} | {_md(r.changes)} | {r.held} | {r.samples} |" for r in watch_rows(record)]
    if rows := alert_rows(record):
        lines += ["", "## Alerts", "", "| Alert | Expected | Fired | Resolved |", "|---|---|---|---|"]
        lines += [f"| {_md(r.alert)} | {r.expected} | {r.fired} | {r.resolved} |" for r in rows]
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
