"""JUnit XML verdicts for CI (issue 15, section 5): ``gameday report ID -f junit`` on stored records (SQLite, no
Temporal), and ``gameday run FILE --wait --junit FILE`` against the session dev server and a worker.

Every file is read back with ``junitparser`` (a JUnit parser from PyPI, the one CI tools' Python side uses) and
checked against the shape GitHub, GitLab and Jenkins read: a ``<testsuites>`` root, flat ``<testsuite>``s.
``junitparser`` ships no XSD, so the schema's required attributes are asserted here by hand.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped, TestSuite
from typer.testing import CliRunner, Result

from gameday.activities.gameday_store import GameDays
from gameday.activities.store import Store
from gameday.cli.main import app
from gameday.model.data_loss import DataLoss, LossBound
from gameday.model.gameday import GameDayEntry, GameDayRecord
from gameday.model.records import EXIT_CODES, FaultState, Phase, ProbeResult, Verdict, data_loss_expectation
from gameday.model.traffic import Expect
from gameday.report.junit import MESSAGE_MAX, drill_cases
from tests.activities.test_report_html import drill_with_traffic
from tests.cli.conftest import Gameday
from tests.cli.test_cli_commands import last_json_line, unique
from tests.cli.test_exit_codes import DRILLS, drill


def parsed(path: Path) -> list[TestSuite]:
    """The file's suites, after checking the common JUnit schema's shape: root, attributes, one result per case."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    for suite in root:
        assert suite.tag == "testsuite"
        for key in ("name", "tests", "failures", "errors", "skipped", "time", "timestamp"):
            assert suite.get(key) is not None, key
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases)
        assert int(suite.get("failures", "-1")) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("skipped", "-1")) == sum(c.find("skipped") is not None for c in cases)
        for case in cases:
            assert case.get("name") and case.get("classname")
            assert len([child for child in case if child.tag in ("failure", "skipped", "error")]) <= 1
    xml = JUnitXml.fromfile(str(path))
    return list(xml)


def outcome(suite: TestSuite) -> dict[str, str]:
    """Each case's name → ``passed``, ``failed: message`` or ``skipped: message``."""
    found = {}
    for case in suite:
        result = case.result
        if not result:
            found[case.name] = "passed"
        elif isinstance(result[0], Failure):
            found[case.name] = f"failed: {result[0].message}"
        elif isinstance(result[0], Skipped):
            found[case.name] = f"skipped: {result[0].message}"
    return found


@pytest.fixture
def db(tmp_path: Path) -> tuple[dict[str, str], Store]:
    url = f"sqlite:///{tmp_path / 'results.db'}"
    return {"GAMEDAY_DATABASE_URL": url, "COLUMNS": "300"}, Store(url)


def report(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, ["report", *args], env=env)


def probe(name: str, phase: Phase, *, ok: bool) -> ProbeResult:
    record = drill_with_traffic()
    return ProbeResult(
        probe=name, phase=phase, kind="http", samples=10, failures=0 if ok else 4, ok=ok, at=record.started_at
    )


def test_a_stored_run_with_a_missed_expectation_and_a_fault_left_in_place_fails_with_its_figures(
    db: tuple[dict[str, str], Store], tmp_path: Path
) -> None:
    env, store = db
    record = drill_with_traffic().model_copy(
        update={
            "expect": Expect(availability=0.9999),
            "probes": [probe("api", Phase.PREFLIGHT, ok=True), probe("api", Phase.OBSERVE, ok=False)],
        }
    )
    store.save(record)
    out = tmp_path / "results.xml"

    result = report(env, record.run_id, "-f", "junit", "-o", str(out))

    assert result.exit_code == 0, result.output
    (suite,) = parsed(out)
    cases = outcome(suite)
    assert cases["preflight: api"] == "passed"
    assert cases["observe: api"] == "failed: 4 of 10 sample(s) failed"
    assert (
        cases["expect: availability"].startswith("failed: measured ")
        and "threshold ≥ 99.99%" in cases["expect: availability"]
    )
    left = [f for f in record.faults if f.state is FaultState.NOT_REVERTED]
    assert left and any(v.startswith("failed: NOT REVERTED") for k, v in cases.items() if k.startswith("revert:"))
    # The hostile label of the test record is escaped, not markup: the file parses and keeps the text.
    assert any(f.label in k for f in record.faults for k in cases)
    assert cases["verdict"].startswith("failed: ABORTED")
    assert all(len(v) <= MESSAGE_MAX + len("skipped: ") for v in cases.values())


def test_a_not_steady_run_skips_every_check_after_preflight(db: tuple[dict[str, str], Store]) -> None:
    env, store = db
    base = drill_with_traffic()
    record = base.model_copy(
        update={
            "verdict": Verdict.NOT_STEADY,
            "faults": [],
            "traffic": None,
            "stop": None,
            "expect": Expect(availability=0.99),
            "probes": [probe("api", Phase.PREFLIGHT, ok=False)],
        }
    )
    store.save(record)

    result = report(env, record.run_id, "-f", "junit")

    assert result.exit_code == 0, result.output
    path = Path(env["GAMEDAY_DATABASE_URL"].removeprefix("sqlite:///")).with_name("ns.xml")
    path.write_text(result.stdout)
    (suite,) = parsed(path)
    cases = outcome(suite)
    assert cases["preflight: api"] == "failed: 4 of 10 sample(s) failed"
    later = {k: v for k, v in cases.items() if k != "preflight: api"}
    assert later and all(v.startswith("skipped: ") for v in later.values()), cases


def test_a_stored_game_day_is_one_suite_per_drill_and_a_drill_never_run_is_skipped(
    db: tuple[dict[str, str], Store], tmp_path: Path
) -> None:
    env, store = db
    run = drill_with_traffic()
    store.save(run)
    day = GameDayRecord(
        gameday_id="gameday-junit-1",
        name="junit",
        started_at=run.started_at,
        ended_at=run.started_at + timedelta(minutes=1),
        outcome="halted",
        entries=[
            GameDayEntry(stage=1, drill_name=run.drill_name, run_id=run.run_id, verdict=run.verdict),
            GameDayEntry(stage=2, drill_name="second", skipped="stop_on ABORTED"),
        ],
    )
    GameDays(store).save(day)
    out = tmp_path / "day.xml"

    result = report(env, day.gameday_id, "-f", "junit", "-o", str(out))

    assert result.exit_code == 0, result.output
    first, second = parsed(out)
    assert run.run_id in first.name and "verdict" in outcome(first)
    assert outcome(second) == {"drill": "skipped: stop_on ABORTED"}


# Real runs: the session dev server and a worker process.


@pytest.mark.integration
@pytest.mark.parametrize("verdict", [Verdict.RESILIENT, Verdict.DEVIATED, Verdict.NOT_STEADY], ids=lambda v: v.value)
def test_run_wait_junit_writes_the_verdict_and_keeps_the_exit_code(gameday: Gameday, verdict: Verdict) -> None:
    probe_cmd, _, _ = DRILLS[verdict]
    text = drill(unique(f"junit-{verdict.value.lower().replace('_', '-')}"), gameday.workdir, probe=probe_cmd)
    out = gameday.workdir / f"{unique('junit')}.xml"

    result = gameday("run", str(gameday.drill(text)), "--wait", "--json", "--junit", str(out))

    assert last_json_line(result.stdout)["verdict"] == verdict.value, result.output
    assert result.exit_code == EXIT_CODES[verdict], result.output
    (suite,) = parsed(out)
    cases = outcome(suite)
    if verdict is Verdict.RESILIENT:
        assert all(v == "passed" for v in cases.values()), cases
        assert {"preflight: probe", "observe: probe", "verify: probe", "recovery", "guardrails"} <= set(cases)
    elif verdict is Verdict.DEVIATED:
        assert cases["observe: probe"].startswith("failed: ") and "sample(s) failed" in cases["observe: probe"]
        assert cases["recovery"] == "passed" and cases["preflight: probe"] == "passed"
    else:
        assert cases["preflight: probe"].startswith("failed: ")
        assert cases["recovery"].startswith("skipped: ") and cases["guardrails"].startswith("skipped: ")


@pytest.mark.integration
def test_a_game_day_run_wait_junit_has_a_suite_per_drill(gameday: Gameday) -> None:
    held = gameday.drill(drill(unique("junit-day-held"), gameday.workdir))
    probe_cmd, _, _ = DRILLS[Verdict.DEVIATED]
    worst = gameday.drill(drill(unique("junit-day-dev"), gameday.workdir, probe=probe_cmd))
    day = gameday.workdir / f"{unique('junit-day')}.yaml"
    day.write_text(f"gameday: {day.stem}\nteam: exit-codes\ndrills:\n  - file: {held}\n  - file: {worst}\n")
    out = gameday.workdir / f"{day.stem}.xml"

    result = gameday("run", str(day), "--wait", "--junit", str(out))

    assert result.exit_code == EXIT_CODES[Verdict.DEVIATED], result.output
    first, second = parsed(out)
    assert all(v == "passed" for v in outcome(first).values())
    assert outcome(second)["observe: probe"].startswith("failed: ")


def test_junit_without_wait_is_a_usage_error(tmp_path: Path) -> None:
    file = tmp_path / "d.yaml"
    file.write_text(drill("junit-nowait", tmp_path))

    result = CliRunner().invoke(app, ["run", str(file), "--junit", str(tmp_path / "x.xml")])

    assert result.exit_code == 1
    assert "--junit needs --wait" in result.output
    assert not (tmp_path / "x.xml").exists()


def test_long_texts_are_cut_and_control_characters_dropped_so_the_file_stays_bounded_and_parses(
    db: tuple[dict[str, str], Store], tmp_path: Path
) -> None:
    env, store = db
    hostile = ProbeResult(
        probe="api\x07]]><x/>",
        phase=Phase.OBSERVE,
        kind="http",
        samples=3,
        failures=3,
        ok=False,
        at=drill_with_traffic().started_at,
        problems=["\x1b[31m" + "x" * 20_000 + "</failure>"],
    )
    record = drill_with_traffic().model_copy(update={"probes": [hostile]})
    store.save(record)
    out = tmp_path / "bounded.xml"

    assert report(env, record.run_id, "-f", "junit", "-o", str(out)).exit_code == 0

    (suite,) = parsed(out)
    message = outcome(suite)["observe: api]]><x/>"]
    assert message.startswith("failed: 3 of 3 sample(s) failed") and len(message) <= MESSAGE_MAX + len("failed: ")
    assert out.stat().st_size < 20_000


def test_an_expectation_not_judged_is_skipped_with_its_reason_not_nothing_measured() -> None:
    # data_loss against a service that answers any id: figures were measured, the check could not tell; CI shows why.
    loss = DataLoss(acknowledged=50, checked=50, lost=0, duplicated=0, sampled=False, seconds=0.1, ghost_id=1051)
    record = drill_with_traffic().model_copy(
        update={"expectations": [data_loss_expectation(LossBound.model_validate(0), loss)]}
    )
    [case] = [c for c in drill_cases(record) if c.name == "expect: data loss"]
    assert case.outcome == "skipped" and "never written" in case.message and "nothing measured" not in case.message
