"""The resilience trend of one drill: an inline SVG, one dot per run (oldest left), its height the time to
recovery, its colour the verdict's (the colours of ``report/html.py``). No script, nothing loaded."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from gameday.model.records import RunRecord

COLOURS = {
    "RESILIENT": "#1a7f37",
    "DEVIATED": "#bf8700",
    "NOT_STEADY": "#8250df",
    "ABORTED": "#57606a",
    "NOT_RECOVERED": "#cf222e",
    "ERROR": "#cf222e",
    "INCONCLUSIVE": "#6e7781",
}
WIDTH, HEIGHT, PAD = 640, 160, 30


def trend_svg(runs: Sequence[RunRecord]) -> str:
    """``runs`` newest first (as the store lists them); at most the last 100 are drawn."""
    runs = list(reversed(runs[:100]))
    if not runs:
        return '<p class="muted">no runs of this drill recorded yet</p>'
    top = max([r.time_to_recovery or 0.0 for r in runs] + [1.0])
    step = (WIDTH - 2 * PAD) / max(len(runs) - 1, 1)
    parts = [
        f'<svg class="trend" role="img" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>resilience trend: time to recovery per run, coloured by verdict ({len(runs)} runs)</title>",
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#d0d7de"/>',
        f'<text x="{PAD}" y="14" font-size="11" fill="#57606a">time to recovery (max {top:.1f}s)</text>',
    ]
    line = []
    for n, run in enumerate(runs):
        x = PAD + n * step
        ttr = run.time_to_recovery
        y = HEIGHT - PAD - (ttr or 0.0) / top * (HEIGHT - 2 * PAD - 10)
        verdict = run.verdict.value if run.verdict else "-"
        if ttr is not None:
            line.append(f"{x:.1f},{y:.1f}")
        label = f"{run.run_id}: {verdict}" + (f", recovered in {ttr:.2f}s" if ttr is not None else "")
        parts.append(
            f'<circle class="run" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{COLOURS.get(verdict, "#6e7781")}">'
            f"<title>{escape(label)}</title></circle>"
        )
    if len(line) > 1:
        parts.insert(4, f'<polyline points="{" ".join(line)}" fill="none" stroke="#8c959f" stroke-width="1"/>')
    parts.append("</svg>")
    return "".join(parts)
