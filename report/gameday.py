"""A game day's own reports: one HTML page (its drills, their verdicts, then each drill's report) and JSON.

The page is built like a drill's (:mod:`report.html`): self-contained, nothing fetched, every text
escaped. Its table links to each drill's section (``#run-<run id>``), and each section is that drill's report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from html import escape

from gameday.model.gameday import GameDayRecord
from gameday.model.records import RunRecord
from gameday.model.score import format_score, gameday_score, score_record
from gameday.report import words
from gameday.report.html import VERDICT_COLOURS, drill_sections, page
from gameday.report.sections import Html, cell, table

OUTCOME_COLOURS = {"completed": "#1a7f37", "halted": "#bc4c00", "stopped": "#9a6700", "cancelled": "#9a6700"}
"""The game day's badge; any other outcome (``not approved``, still running) is grey."""


def anchor(run_id: str) -> str:
    """The id of a drill's section in the game day's page."""
    return "run-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)


def scores(gameday: GameDayRecord, runs: Mapping[str, RunRecord]) -> dict[str, float | None]:
    """Each drill run's resilience score by run id (``None``: not scored, or its record is missing)."""
    return {e.run_id: score_record(runs[e.run_id]).score if e.run_id in runs else None for e in gameday.entries}


def render_gameday_json(gameday: GameDayRecord, runs: Mapping[str, RunRecord]) -> str:
    """The game day's record as JSON, plus its ``score`` (the mean of its scored drill runs, ``null`` if none)
    and each entry's ``score``."""
    by_run = scores(gameday, runs)
    data = json.loads(gameday.model_dump_json())
    data["score"] = gameday_score(by_run.values())
    for entry in data["entries"]:
        entry["score"] = by_run.get(entry["run_id"]) if entry["run_id"] else None
    return json.dumps(data, indent=2, ensure_ascii=False)


def render_gameday_html(
    gameday: GameDayRecord, runs: Mapping[str, RunRecord], ui_url: Callable[[str], str] | None = None
) -> str:
    """The game day as one self-contained HTML page.

    Args:
        gameday: the game day's record.
        runs: its drills' records by run id (a drill missing here is listed, without its section).
        ui_url: the Temporal Web UI page of a workflow id (links, never loaded); none if ``None``.
    """
    by_run = scores(gameday, runs)
    outcome = gameday.outcome or "running"
    colour = OUTCOME_COLOURS.get(gameday.outcome, VERDICT_COLOURS[None])
    head = [
        f"<header><h1>Game day <code>{escape(gameday.name)}</code></h1>",
        f'<span id="outcome" class="verdict" style="background:{colour}">{escape(outcome.upper())}</span>',
    ]
    if gameday.halted_by:
        head.append(f'<p class="summary">halted: {escape(gameday.halted_by)}</p>')
    if gameday.stop is not None:
        head.append(f'<p class="summary">stopped by {escape(gameday.stop.by)}: {escape(gameday.stop.reason)}</p>')
    head.append("</header>")
    score = gameday_score(by_run.values())
    scored = sum(1 for value in by_run.values() if value is not None)
    facts: list[tuple[str, str | Html]] = [("Game day", gameday.gameday_id)]
    facts += [(k, v) for k, v in (("Team", gameday.team), ("Started by", gameday.started_by)) if v]
    if gameday.source:
        facts.append(("File", gameday.source))
    facts.append(("Started", words.timestamp(gameday.started_at)))
    if gameday.ended_at is not None:
        facts.append(("Ended", words.timestamp(gameday.ended_at)))
        facts.append(("Duration", words.duration((gameday.ended_at - gameday.started_at).total_seconds())))
    facts.append(
        ("Resilience score", f"{format_score(score)} (mean of {scored} scored drill run(s) of {len(gameday.entries)})")
    )
    if ui_url is not None:
        url = ui_url(gameday.gameday_id)
        facts.append(("Web UI", Html(f'<a href="{escape(url)}">{escape(url)}</a>')))
    who = "".join(f"<dt>{escape(name)}</dt><dd>{cell(value)}</dd>" for name, value in facts)
    rows: list[list[str | Html]] = []
    for e in gameday.entries:
        verdict = e.verdict.value if e.verdict is not None else ("skipped" if e.skipped else "no verdict")
        badge = Html(
            f'<span class="verdict-cell" style="color:{VERDICT_COLOURS.get(e.verdict, VERDICT_COLOURS[None])};'
            f'font-weight:700">{escape(verdict)}</span>'
        )
        took = words.duration((e.ended_at - e.started_at).total_seconds()) if e.ended_at and e.started_at else "-"
        name: str | Html = e.drill_name
        if e.run_id in runs:
            name = Html(f'<a class="drill-link" href="#{anchor(e.run_id)}">{escape(e.drill_name)}</a>')
        rows.append(
            [
                str(e.stage + 1),
                name,
                badge,
                took,
                "-" if e.time_to_recovery is None else words.duration(e.time_to_recovery),
                format_score(by_run.get(e.run_id)) if e.run_id else "-",
                e.skipped or e.summary,
            ]
        )
    drills = table(("Step", "Drill", "Verdict", "Duration", "Time to recovery", "Score", "Why"), rows)
    sections = [
        "\n".join(head),
        f"<section><h2>Who, when</h2><dl>{who}</dl></section>",
        f'<section id="drills"><h2>Drills</h2>{drills}</section>',
    ]
    for e in gameday.entries:
        record = runs.get(e.run_id)
        if record is None:
            continue
        body = drill_sections(record, None if ui_url is None else ui_url(record.run_id))
        sections.append(
            f'<section class="drill" id="{anchor(record.run_id)}">{body}'
            '<p class="note"><a href="#drills">back to the drills</a></p></section>'
        )
    return page(f"Game day {gameday.name}: {outcome}", "\n".join(sections))
