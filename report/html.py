"""The drill log as one self-contained HTML page, for people who were not there.

One file: CSS inline, the chart inline SVG (:mod:`report.chart`), no script, no font, no image to
fetch, and a Content-Security-Policy that forbids fetching anything, so the page reads the same from a mail
attachment, a ticket or an air-gapped laptop. The only address in it is the link to the Temporal Web UI,
which a reader may follow but the page never loads. Every text from a drill file, a command or a person goes
through :func:`html.escape`. Figures are formatted as in the Markdown report (:mod:`report.run`).
"""

from __future__ import annotations

from html import escape

from gameday.model.records import FaultState, RunRecord, Verdict
from gameday.model.score import format_score, score_record
from gameday.report import words
from gameday.report.chart import (
    FAULT_COLOURS,
    PROBE_COLOURS,
    SERIES,
    STEP_COLOURS,
    STOP_COLOUR,
    WATCH_COLOURS,
    probe_colour,
    timeline_svg,
)
from gameday.report.run import stop_handled, time_to_safe_words
from gameday.report.sections import (
    Html,
    cell,
    coverage_section,
    expect_section,
    fault_section,
    phase_section,
    probe_section,
    traffic_section,
    watch_section,
)

VERDICT_COLOURS: dict[Verdict | None, str] = {
    Verdict.RESILIENT: "#1a7f37",
    Verdict.DEVIATED: "#bc4c00",
    Verdict.NOT_RECOVERED: "#cf222e",
    Verdict.NOT_STEADY: "#6639ba",
    Verdict.ABORTED: "#9a6700",
    Verdict.ERROR: "#82071e",
    Verdict.INCONCLUSIVE: "#0969da",
    None: "#57606a",
}
"""Background of the verdict badge; ``None`` is a run still in progress."""

VERDICT_MEANINGS: dict[Verdict | None, str] = {
    Verdict.RESILIENT: "Expectations held under fault, and the system recovered.",
    Verdict.DEVIATED: "Expectations broke under fault, and the system recovered: a weakness found.",
    Verdict.NOT_RECOVERED: "The system did not return to steady state after rollback.",
    Verdict.NOT_STEADY: "Unhealthy before any fault: nothing was injected.",
    Verdict.ABORTED: "Stopped (by a person, a guardrail, a cancellation or max_duration) before the end.",
    Verdict.ERROR: "The orchestration failed (a fault could not be applied or reverted).",
    Verdict.INCONCLUSIVE: "Evidence incomplete: the probes covered too little of the time under fault, or an "
    "expectation had nothing to be judged on; the system recovered and the expectations held as far as observed.",
    None: "The drill is still running: this is what was recorded so far.",
}

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""Nothing may be fetched: only the inline styles (and data: images) this page carries."""

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#24292f;background:#fff;margin:0}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:26px;margin:0 0 8px}h1 code{font-size:inherit}
h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #d0d7de}
h3{font-size:16px;margin:18px 0 6px}
.verdict{display:inline-block;color:#fff;font-weight:700;font-size:22px;padding:4px 14px;border-radius:6px}
.meaning{color:#57606a;margin:6px 0}
.summary{font-size:17px;margin:10px 0;border-left:4px solid #d0d7de;padding-left:12px}
.warning{background:#ffebe9;border:2px solid #cf222e;color:#82071e;padding:10px 14px;border-radius:6px;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:170px}
.card b{display:block;font-size:20px}.card small{color:#57606a}
dl{display:grid;grid-template-columns:max-content auto;gap:4px 16px}dt{font-weight:600}dd{margin:0}
table{border-collapse:collapse;margin:6px 0;font-size:14px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#cf222e;font-weight:700}
.legend span{display:inline-block;margin-right:18px}
.swatch{display:inline-block;width:14px;height:10px;margin-right:5px}
figure{margin:8px 0}figcaption,.note{color:#57606a;font-size:13px}code{font-size:13px}
"""


def render_html(record: RunRecord, ui_url: str | None = None) -> str:
    """The drill log as a self-contained HTML page.

    Args:
        record: the run to describe, finished or not.
        ui_url: the run's page in the Temporal Web UI (a link, never loaded); none if ``None``.

    Returns:
        The whole HTML document.
    """
    verdict = record.verdict.value if record.verdict is not None else f"IN PROGRESS ({record.phase.value})"
    return page(f"Drill {record.drill_name}: {verdict}", drill_sections(record, ui_url))


def page(title: str, body: str) -> str:
    """A whole self-contained HTML document around ``body`` (markup), with the report's styles and CSP."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + body
        + '\n<p class="note">Written by gameday. Times are UTC; offsets such as +2.6 s count from the start of '
        "the run unless a chart says otherwise.</p>\n</main>\n</body>\n</html>\n"
    )


def drill_sections(record: RunRecord, ui_url: str | None = None) -> str:
    """The drill report's sections, without the document around them (a game day's page holds several)."""
    verdict = record.verdict.value if record.verdict is not None else f"IN PROGRESS ({record.phase.value})"
    sections = [
        _header(record, verdict),
        _figures(record),
        _who(record, ui_url),
        _timeline(record),
        expect_section(record),
        probe_section(record),
        watch_section(record),
        coverage_section(record),
        phase_section(record),
        fault_section(record),
        traffic_section(record.traffic, record) if record.traffic is not None else "",
    ]
    return "\n".join(s for s in sections if s)


def _header(record: RunRecord, verdict: str) -> str:
    colour = VERDICT_COLOURS[record.verdict]
    parts = [
        f"<header><h1>Drill <code>{escape(record.drill_name)}</code></h1>",
        f'<span id="verdict" class="verdict" style="background:{colour}">{escape(verdict)}</span>',
        f'<p class="meaning">{escape(VERDICT_MEANINGS[record.verdict])}</p>',
    ]
    if record.summary:
        parts.append(f'<p class="summary">{escape(record.summary)}</p>')
    left = [fault.label for fault in record.faults if fault.state is FaultState.NOT_REVERTED]
    if left:
        names = ", ".join(f"<code>{escape(label)}</code>" for label in left)
        parts.append(f'<p class="warning">Not reverted, may still be in place: {names}. Check the targets by hand.</p>')
    return "\n".join(parts) + "</header>"


def _figures(record: RunRecord) -> str:
    cards = []
    if record.ended_at is not None:
        cards.append(("Duration", words.duration((record.ended_at - record.started_at).total_seconds()), "whole run"))
    if record.stop is not None:
        safe, why = time_to_safe_words(record)
        cards.append(("Time to safe", "never" if safe.startswith("never") else safe, why.strip("()")))
        if record.time_to_healthy is not None:
            cards.append(("Time to healthy", words.duration(record.time_to_healthy), "stop → first healthy check"))
    recovery = "-" if record.time_to_recovery is None else words.duration(record.time_to_recovery)
    cards.append(("Time to recovery", recovery, "last revert → hypothesis holds again"))
    if record.verdict is not None:
        score = score_record(record)
        cards.append(("Resilience score", format_score(score.score), f"{score.why} (docs/SCORE.md)"))
    if record.coverage is not None:
        coverage = record.coverage
        cards.append(("Coverage", f"{coverage.covered * 100:.0f}%", f"{coverage.describe()}; observation under fault"))
    body = "".join(
        f'<div class="card" id="{escape(name.lower().replace(" ", "-"))}"><small>{escape(name)}</small>'
        f"<b>{escape(value)}</b><small>{escape(why)}</small></div>"
        for name, value, why in cards
    )
    return f'<section class="cards">{body}</section>'


def _who(record: RunRecord, ui_url: str | None) -> str:
    facts: list[tuple[str, str | Html]] = [("Run", record.run_id)]
    facts += [(name, value) for name, value in (("Team", record.team), ("Started by", record.started_by)) if value]
    if record.source:
        facts.append(("Drill file", record.source))
    facts.append(("Started", words.timestamp(record.started_at)))
    if record.ended_at is not None:
        facts.append(("Ended", words.timestamp(record.ended_at)))
    if record.stop is not None:
        stop = record.stop
        when = f" at {words.relative(stop.received_at, record.started_at)}" if stop.received_at is not None else ""
        if stop.sent_at is not None:
            when = f", sent at {words.relative(stop.sent_at, record.started_at)}{stop_handled(record)}"
        facts.append(("Stopped", f"{stop.reason} (by {stop.by}{when})"))
    if record.error:
        facts.append(("Error", record.error))
    if ui_url:
        facts.append(("Web UI", Html(f'<a href="{escape(ui_url)}">{escape(ui_url)}</a>')))
    rows = "".join(f"<dt>{escape(name)}</dt><dd>{cell(value)}</dd>" for name, value in facts)
    return f"<section><h2>Who, when, why</h2><dl>{rows}</dl></section>"


def _timeline(record: RunRecord) -> str:
    legend = []
    if record.traffic is not None and record.traffic.timeline.second:
        legend += [
            f'<span><i class="swatch" style="background:{s.colour}"></i>{escape(s.title)}</span>' for s in SERIES
        ]
        step = record.traffic.timeline.step
        per = "Per second" if step == 1 else f"Per {step} seconds (the highest p95 of merged points)"
        caption = (
            f"{per} of traffic, at a fixed arrival rate whatever the answers; latency counts from each "
            "request's intended send time. Shaded: each fault from applied to reverted. Hatched: no traffic sent."
        )
    else:
        legend += [
            f'<span><i class="swatch" style="background:{colour}"></i>phase {escape(status.value)}</span>'
            for status, colour in STEP_COLOURS.items()
            if any(step.status is status for step in record.steps)
        ]
        caption = "No traffic was sent during this drill: the bar shows the phases, coloured by how they ended."
    if record.probes:
        shown = {probe_colour(r.ok, r.failures) for r in record.probes}
        legend += [
            f'<span><i class="swatch" style="background:{colour}"></i>probe {escape(what)}</span>'
            for what, colour in PROBE_COLOURS.items()
            if colour in shown
        ]
        caption += " Probe lanes: each probe per phase, red where it broke its tolerance (failed samples counted)."
    if record.watch:
        legend += [
            f'<span><i class="swatch" style="background:{colour}"></i>watch {escape(what)}</span>'
            for what, colour in WATCH_COLOURS.items()
        ]
        caption += " Watch lanes: each observe.watch probe from one change to the next, with its recorded value."
    for n, fault in enumerate(f for f in record.faults if f.applied_at is not None):
        colour = FAULT_COLOURS[n % len(FAULT_COLOURS)]
        legend.append(
            f'<span><i class="swatch" style="background:{colour};opacity:.5"></i>{escape(fault.label)}</span>'
        )
    if record.stop is not None and record.stop.received_at is not None:
        legend.append(f'<span><i class="swatch" style="background:{STOP_COLOUR}"></i>stop</span>')
    return (
        '<section><h2>Timeline</h2><figure id="chart">'
        + timeline_svg(record)
        + f'<div class="legend">{"".join(legend)}</div><figcaption>{escape(caption)}</figcaption></figure></section>'
    )
