"""What a report must not hide: the resilience score in every format, a failing probe on the HTML chart, the
``observe.expect`` thresholds beside the measured figures, and a game day's own HTML page.

DOM checks read the page back with the stdlib parser; pixel checks open it in headless Chromium (as
``test_report_html.py`` does).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gameday.activities.gameday_store import GameDays
from gameday.activities.store import Store
from gameday.cli.main import app
from gameday.model.gameday import GameDayEntry, GameDayRecord
from gameday.model.records import (
    ExpectationResult,
    Phase,
    ProbeResult,
    RunRecord,
    Verdict,
)
from gameday.model.traffic import Expect
from gameday.report.chart import PROBE_COLOURS
from gameday.report.expect import expect_lines, under_fault
from gameday.report.gameday import anchor, render_gameday_html
from gameday.report.html import render_html
from gameday.report.junit import drill_cases
from gameday.report.run import read_json, render_json, render_markdown
from gameday.report.watch import detect_words
from tests.activities.test_report import T0, at
from tests.activities.test_report_html import Browser, browser, colour, isolate, parse, pixels  # noqa: F401
from tests.activities.test_store_traffic import make_traffic
from tests.harness import reverted_fault, step

RED = PROBE_COLOURS["broke its tolerance"]
GREEN = PROBE_COLOURS["held"]


def _probe(phase: Phase, seconds: float, *, samples: int, failures: int) -> ProbeResult:
    return ProbeResult(
        probe="api up",
        phase=phase,
        kind="http",
        samples=samples,
        failures=failures,
        ok=failures == 0,
        latency_p50=0.01,
        latency_p95=0.02,
        latency_max=0.03,
        at=at(seconds),
        problems=["connection refused"] if failures else [],
    )


def deviated_run(*, traffic: bool = False, run_id: str = "drill-api-pause-1") -> RunRecord:
    """A DEVIATED drill: every phase ended ok, but its probe failed every sample under fault."""
    return RunRecord(
        run_id=run_id,
        drill_name="api-pause",
        team="payments",
        phase=Phase.DONE,
        verdict=Verdict.DEVIATED,
        started_at=T0,
        ended_at=at(30),
        steps=[
            step(T0, Phase.PREFLIGHT, 0, 2),
            step(T0, Phase.INJECT, 2, 3),
            step(T0, Phase.OBSERVE, 3, 23),
            step(T0, Phase.ROLLBACK, 23, 23.5),
            step(T0, Phase.VERIFY, 23.5, 25),
        ],
        faults=[reverted_fault(T0, 0, "pause api", "api", "process", "pause", applied=2.5, reverted=23.2)],
        probes=[
            _probe(Phase.PREFLIGHT, 1.9, samples=5, failures=0),
            _probe(Phase.OBSERVE, 23, samples=20, failures=20),
            _probe(Phase.VERIFY, 24.9, samples=5, failures=0),
        ],
        time_to_recovery=0.4,
        traffic=make_traffic() if traffic else None,
        expect=Expect.model_validate({"availability": "99%", "latency_p95": "3s"}) if traffic else None,
        summary="expectations broke under fault; the system recovered",
    )


# --- the score ------------------------------------------------------------------------------------------------


def test_the_json_report_carries_the_score_and_reads_back_as_the_record() -> None:
    record = deviated_run()

    data = json.loads(render_json(record))

    assert data["score"] == 50.0  # recovered (50) + 0 of 1 check held under fault
    assert data["score_why"] == "recovered, 0 of 1 check(s) held under fault"
    assert read_json(render_json(record)) == record


def test_a_run_not_scored_has_a_null_score_in_json() -> None:
    record = deviated_run().model_copy(update={"verdict": Verdict.ABORTED})

    assert json.loads(render_json(record))["score"] is None


def test_the_html_report_shows_the_score_card() -> None:
    page = parse(render_html(deviated_run()))

    card = page.by_id("resilience-score")
    texts = [e.text for e in page.elements[page.elements.index(card) :][:4]]
    assert "50/100" in texts


def test_report_json_through_the_cli_has_the_score_and_the_expect_kept_by_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'results.db'}"
    record = deviated_run(traffic=True)
    Store(url).save(record)

    result = CliRunner().invoke(app, ["report", record.run_id, "--format", "json"], env={"GAMEDAY_DATABASE_URL": url})

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["score"] == 50.0 and data["verdict"] == "DEVIATED"
    assert data["expect"] == {
        "availability": 0.99,
        "error_rate": None,
        "latency_p50": None,
        "latency_p95": "PT3S",
        "latency_p99": None,
        "data_loss": None,
        "comparisons": {},  # written bare: no operator noted (">= 99%" would note ">=")
        "sequence": None,
        "detect": None,
        "alerts": None,
    }
    assert read_json(result.stdout) == Store(url).get(record.run_id)


# --- a failing probe on the chart -------------------------------------------------------------------------------


@pytest.mark.parametrize("traffic", [False, True], ids=["phase-chart", "traffic-chart"])
def test_the_chart_of_a_deviated_drill_shows_its_probe_failing_under_fault_in_red(traffic: bool) -> None:
    page = parse(render_html(deviated_run(traffic=traffic)))

    lanes = page.all("rect", "probe-lane")
    assert [(r.attrs["data-phase"], r.attrs["data-held"]) for r in lanes] == [
        ("preflight", "yes"),
        ("observe", "no"),
        ("verify", "yes"),
    ]
    observe = lanes[1]
    assert observe.attrs["fill"] == RED and (observe.attrs["data-failures"], observe.attrs["data-samples"]) == (
        "20",
        "20",
    )
    assert lanes[0].attrs["fill"] == GREEN == lanes[2].attrs["fill"]
    assert "20/20 failed" in [t.text for t in page.all("text")]
    # The red segment spans the observation: it is the widest of the three.
    assert float(observe.attrs["width"]) > max(float(lanes[0].attrs["width"]), float(lanes[2].attrs["width"]))


@pytest.mark.integration
def test_chromium_draws_the_failing_probe_in_red_and_a_held_one_without(browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    red = colour(RED)
    counts = {}
    for name, record in (
        ("failing", deviated_run()),
        ("held", deviated_run().model_copy(update={"probes": [_probe(Phase.OBSERVE, 23, samples=20, failures=0)]})),
    ):
        page = tmp_path / f"{name}.html"
        page.write_text(isolate(render_html(record), "chart", "1200px"))
        counts[name] = pixels(browser.screenshot(page)).get(red, 0)
    assert counts["failing"] > 2000, counts  # a lane ~12 px high across the 20 s observation
    assert counts["held"] == 0, counts


# --- observe.expect beside the figures ---------------------------------------------------------------------------


def test_markdown_shows_each_expectation_beside_the_figure_measured_under_fault() -> None:
    markdown = render_markdown(deviated_run(traffic=True))

    section = markdown.split("## Expectations under fault (observe.expect)", 1)[1].split("##", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[:2] for row in rows] == [["| availability", "≥ 99.00%"], ["| latency p95", "≤ 3000.0 ms"]]
    availability, latency = rows
    assert availability.endswith("| **no** |")  # the test traffic failed 3 of 10 under fault
    assert "70.00%" in availability
    assert "2000.9 ms" in latency and latency.endswith("| yes |")


def test_html_shows_each_expectation_beside_the_figure_measured_under_fault() -> None:
    page = parse(render_html(deviated_run(traffic=True)))

    section = page.by_id("expect")
    cells = [e.text for e in page.elements[page.elements.index(section) :] if e.tag in ("td", "span")][:8]
    assert cells[:3] == ["availability", "≥ 99.00%", "70.00%"] and "no" in cells[3:5]


def test_no_expect_no_section() -> None:
    assert "observe.expect" not in render_markdown(deviated_run())
    assert 'id="expect"' not in render_html(deviated_run())


# --- a game day's page ----------------------------------------------------------------------------------------------


def _gameday(first: RunRecord, second: RunRecord) -> GameDayRecord:
    return GameDayRecord(
        gameday_id="gameday-shop-1",
        name="shop",
        team="payments",
        started_at=T0,
        ended_at=T0 + timedelta(minutes=2),
        outcome="halted",
        halted_by="api-stop ended NOT_RECOVERED",
        entries=[
            GameDayEntry(stage=0, drill_name="api-pause", run_id=first.run_id, verdict=first.verdict),
            GameDayEntry(stage=1, drill_name="api-stop", run_id=second.run_id, verdict=second.verdict),
            GameDayEntry(stage=2, drill_name="db-loss", skipped="stop_on NOT_RECOVERED"),
        ],
    )


def test_a_game_day_has_one_html_page_with_its_drills_verdicts_and_a_section_per_drill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'results.db'}"
    store = Store(url)
    first = deviated_run(run_id="drill-api-pause-1")
    second = deviated_run(run_id="drill-api-stop-1").model_copy(
        update={"drill_name": "api-stop", "verdict": Verdict.NOT_RECOVERED}
    )
    store.save(first)
    store.save(second)
    GameDays(store).save(_gameday(first, second))

    result = CliRunner().invoke(
        app,
        ["report", "gameday-shop-1", "-f", "html"],
        env={"GAMEDAY_DATABASE_URL": url, "GAMEDAY_UI_URL": "http://ui.test:8233"},
    )

    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("<!DOCTYPE html>")
    page = parse(text)
    assert page.by_id("outcome").text == "HALTED"
    links = [a.attrs["href"] for a in page.all("a", "drill-link")]
    assert links == [f"#{anchor(first.run_id)}", f"#{anchor(second.run_id)}"]
    sections = [e for e in page.all("section", "drill")]
    assert [s.attrs["id"] for s in sections] == [anchor(first.run_id), anchor(second.run_id)]
    # Each drill's section is its report: its verdict badge and its chart, in order.
    assert [v.text for v in page.all("span", "verdict")] == ["HALTED", "DEVIATED", "NOT_RECOVERED"]
    assert len([e for e in page.elements if e.attrs.get("id") == "chart"]) == 2
    verdict_cells = [s.text for s in page.all("span", "verdict-cell")]
    assert verdict_cells == ["DEVIATED", "NOT_RECOVERED", "skipped"]
    cells = [e.text for e in page.all("td")]
    assert "stop_on NOT_RECOVERED" in cells and "50/100" in cells and "0/100" in cells
    assert "http://ui.test:8233/namespaces/default/workflows/gameday-shop-1" in text


def test_a_game_day_report_in_json_has_its_score_and_each_entry_s(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'results.db'}"
    store = Store(url)
    first = deviated_run(run_id="drill-api-pause-1")
    second = deviated_run(run_id="drill-api-stop-1").model_copy(update={"verdict": Verdict.RESILIENT})
    store.save(first)
    store.save(second)
    GameDays(store).save(_gameday(first, second))

    result = CliRunner().invoke(app, ["report", "gameday-shop-1", "-f", "json"], env={"GAMEDAY_DATABASE_URL": url})

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["score"] == 75.0  # (50 + 100) / 2
    assert [e["score"] for e in data["entries"]] == [50.0, 100.0, None]


def test_the_game_day_page_escapes_names_and_lists_a_drill_without_its_record() -> None:
    first = deviated_run()
    gameday = _gameday(first, first).model_copy(update={"name": "<script>x</script>"})

    page = render_gameday_html(gameday, {})

    assert "<script>x" not in page and "&lt;script&gt;x" in page
    assert 'class="drill"' not in page and "api-pause" in page


def test_latency_percentile_expectations_p50_p95_p99_are_lines_judged_as_written_in_markdown_and_junit() -> None:
    expect = Expect.model_validate({"latency_p50": "< 2s", "latency_p95": "<= 3s", "latency_p99": "2s"})
    record = deviated_run(traffic=True).model_copy(update={"expect": expect})
    window = under_fault(record)
    assert window is not None and window.latency is not None
    assert (window.latency.p50, window.latency.p99) == (0.024015, 2.000895)  # the test traffic under fault

    lines = {line.name: line for line in expect_lines(record)}

    assert [(n, lines[n].threshold, lines[n].measured, lines[n].held) for n in lines if n.startswith("latency")] == [
        ("latency p50", "< 2000.0 ms", "24.0 ms", True),
        ("latency p95", "≤ 3000.0 ms", "2000.9 ms", True),
        ("latency p99", "≤ 2000.0 ms", "2000.9 ms", False),
    ]
    assert expect.misses(window) == ["latency p99 2001ms > 2000ms"]  # what the workflow judges, in the same words
    cases = {case.name: case for case in drill_cases(record)}
    assert cases["expect: latency p50"].outcome == "passed"
    assert cases["expect: latency p99"].outcome == "failed"
    assert "measured 2000.9 ms under fault, threshold ≤ 2000.0 ms" in cases["expect: latency p99"].message
    assert "| latency p50 | < 2000.0 ms | 24.0 ms | yes |" in render_markdown(record)


def test_junit_says_why_a_watch_expectation_was_not_judged() -> None:
    line = ExpectationResult(
        name="detect", held=None, expected="detected within 30s", actual="not judged: the watch took no sample"
    )
    record = deviated_run().model_copy(update={"expectations": [line], "verdict": Verdict.INCONCLUSIVE})
    [case] = [c for c in drill_cases(record) if c.name == "expect: detect"]
    assert case.outcome == "skipped"
    assert case.message == "not judged: the watch took no sample (expected detected within 30s)"


def test_a_detector_that_held_before_the_fault_is_not_reported_as_undetected() -> None:
    miss = "not a detection: 'd' already held before the first fault (at the watch's first sample)"
    line = ExpectationResult(name="detect", held=False, expected="detected within 30s", actual="held", miss=miss)
    record = deviated_run().model_copy(update={"expectations": [line]})
    assert detect_words(record) == "not a detection (it held before the first fault)"
