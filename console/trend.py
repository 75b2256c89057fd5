"""The resilience trend of one drill (``gameday history``'s figures, ``activities/history.py``) as an inline SVG:
one dot per run, oldest left, at its resilience score (0-100, docs/SCORE.md) and in its verdict's colour; the
line is the drill's score as it stood after each run. No script, nothing loaded."""

from __future__ import annotations

from html import escape

from gameday.activities.history import DrillHistory

COLOURS = {
    "RESILIENT": "#1a7f37",
    "DEVIATED": "#bf8700",
    "NOT_STEADY": "#8250df",
    "ABORTED": "#57606a",
    "NOT_RECOVERED": "#cf222e",
    "ERROR": "#cf222e",
    "INCONCLUSIVE": "#6e7781",
}
WIDTH, HEIGHT, PAD = 640, 170, 30


def trend_svg(found: DrillHistory) -> str:
    from gameday.cli.history import summary_line

    entries = found.entries
    if not entries:
        return '<p class="muted">no runs of this drill recorded yet</p>'
    step = (WIDTH - 2 * PAD) / max(len(entries) - 1, 1)

    def y(score: float) -> float:
        return HEIGHT - PAD - score / 100 * (HEIGHT - 2 * PAD)

    parts = [
        f'<svg class="trend" role="img" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>resilience trend of {escape(found.drill)}: score per run (0-100), coloured by verdict</title>",
        f'<line x1="{PAD}" y1="{y(0)}" x2="{WIDTH - PAD}" y2="{y(0)}" stroke="#d0d7de"/>',
        f'<line x1="{PAD}" y1="{y(100)}" x2="{WIDTH - PAD}" y2="{y(100)}" stroke="#eaeef2"/>',
        f'<text x="2" y="{y(100) + 4}" font-size="10" fill="#57606a">100</text>',
        f'<text x="12" y="{y(0) + 4}" font-size="10" fill="#57606a">0</text>',
    ]
    line = [f"{PAD + n * step:.1f},{y(e.drill_score):.1f}" for n, e in enumerate(entries) if e.drill_score is not None]
    if len(line) > 1:
        parts.append(f'<polyline class="drill-score" points="{" ".join(line)}" fill="none" stroke="#8c959f"/>')
    for n, entry in enumerate(entries):
        verdict = entry.verdict.value if entry.verdict else entry.phase.value
        score = entry.score if entry.score is not None else 0.0
        label = f"{entry.run_id}: {verdict}, score " + (f"{entry.score:.0f}" if entry.score is not None else "-")
        if entry.time_to_recovery is not None:
            label += f", recovered in {entry.time_to_recovery:.2f}s"
        hollow = ' fill-opacity="0.2"' if entry.score is None else ""
        parts.append(
            f'<circle class="run" cx="{PAD + n * step:.1f}" cy="{y(score):.1f}" r="4" '
            f'fill="{COLOURS.get(verdict, "#6e7781")}"{hollow}><title>{escape(label)}</title></circle>'
        )
    parts.append("</svg>")
    parts.append(f'<p class="muted trend-summary">{escape(summary_line(found))}</p>')
    return "".join(parts)
