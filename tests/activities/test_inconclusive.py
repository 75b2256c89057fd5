"""An INCONCLUSIVE run says so everywhere a person looks: Markdown, HTML and JSON reports, the score and Slack; a
RESILIENT run with a short gap shows its coverage too. Pure rendering: no Temporal."""

from __future__ import annotations

from datetime import timedelta

from gameday.activities.notify.messages import Links
from gameday.activities.notify.messages import render as render_message
from gameday.model.notify_records import DrillFinished
from gameday.model.records import EXIT_CODES, Coverage, CoverageGap, RunRecord, Verdict
from gameday.model.score import score_record
from gameday.report.run import read_json
from gameday.report.run import render as render_report
from tests.activities.notify.drill_events import event
from tests.activities.test_store import T0, make_record

CAUSE = "observation lost (its worker died or could not reach Temporal); attempt 2 resumed it"


def inconclusive() -> RunRecord:
    gap = CoverageGap(start=T0 + timedelta(seconds=12), end=T0 + timedelta(seconds=38), cause=CAUSE)
    coverage = Coverage(
        window_start=T0 + timedelta(seconds=10),
        window_end=T0 + timedelta(seconds=50),
        interval=1.0,
        ticks_expected=40,
        ticks_taken=9,
        covered=0.35,
        gap_seconds=26.0,
        gaps=[gap],
        min_coverage=0.8,
    )
    return make_record(verdict=Verdict.INCONCLUSIVE).model_copy(
        update={"coverage": coverage, "summary": "evidence incomplete: the probes covered 35% of the observation"}
    )


def test_an_inconclusive_run_shows_its_coverage_and_gap_in_every_report_format_and_is_not_scored() -> None:
    record = inconclusive()
    assert EXIT_CODES[Verdict.INCONCLUSIVE] == 7

    markdown = render_report(record, "md")
    assert "# Drill `checkout-db-outage`: INCONCLUSIVE" in markdown
    assert "**Evidence under fault:** 9 of 40 tick(s), 35% of the window covered, 1 gap(s) (26.0 s)" in markdown
    assert "(observe.min_coverage 80%: **below**)" in markdown
    assert "## Gaps in the observation" in markdown and CAUSE in markdown
    assert "not scored: INCONCLUSIVE, the evidence under fault is incomplete" in markdown

    html = render_report(record, "html")
    assert "INCONCLUSIVE" in html and "Evidence incomplete" in html
    assert 'id="coverage"' in html and "attempt 2 resumed it" in html and "26.0 s" in html

    assert read_json(render_report(record, "json")) == record
    assert score_record(record).score is None


def test_slack_gives_the_inconclusive_verdict_with_the_evidence_under_fault() -> None:
    record = inconclusive()
    assert record.coverage is not None
    finished = DrillFinished(
        verdict=record.verdict or "", summary=record.summary, coverage=record.coverage.describe(), faults_total=2
    )
    message = render_message(event(finished), Links())
    assert "INCONCLUSIVE" in message.text
    shown = str(message.blocks)
    assert ":large_blue_circle: INCONCLUSIVE" in shown and "Evidence under fault" in shown and "35%" in shown


def test_a_resilient_run_with_a_short_gap_still_shows_its_coverage() -> None:
    record = inconclusive().model_copy(update={"verdict": Verdict.RESILIENT, "summary": "held"})
    assert record.coverage is not None
    record.coverage.covered, record.coverage.gap_seconds = 0.9, 4.0
    markdown = render_report(record, "md")
    assert "35%" not in markdown and "90% of the window covered" in markdown and "**below**" not in markdown
    assert score_record(record).score == 100
