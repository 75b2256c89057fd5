"""``gameday history DRILL``, ``gameday list --since/--until`` and the scores in ``gameday report``, on runs saved
in a SQLite results database. No Temporal server is needed: these commands read the database only."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gameday.activities.gameday_store import GameDays
from gameday.activities.store import Store
from gameday.cli.dates import parse_moment, parse_range
from gameday.cli.main import app
from gameday.model.gameday import GameDayEntry, GameDayRecord
from gameday.model.records import Verdict
from tests.activities.test_store import make_record

NOW = datetime.now(UTC).replace(microsecond=0)
DRILL = "checkout-db-outage"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A results database holding seven runs of the drill, one of another team, one of another drill."""
    url = f"sqlite:///{tmp_path / 'results.db'}"
    store = Store(url)
    verdicts = [
        Verdict.NOT_RECOVERED,
        Verdict.DEVIATED,
        Verdict.ABORTED,
        Verdict.DEVIATED,
        Verdict.RESILIENT,
        Verdict.RESILIENT,
        Verdict.RESILIENT,
    ]
    for n, verdict in enumerate(verdicts):
        record = make_record(f"run-{n}", verdict=verdict, started_at=NOW - timedelta(days=10 - n))
        store.save(record.model_copy(update={"time_to_recovery": float(n + 1)}))
    store.save(make_record("search-run", team="search", started_at=NOW - timedelta(hours=1)))
    store.save(make_record("other-drill", drill="search-outage", started_at=NOW - timedelta(hours=2)))
    return {"GAMEDAY_DATABASE_URL": url, "COLUMNS": "250"}


def gameday(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def test_history_lists_the_drills_runs_oldest_first_with_scores_and_a_summary(env: dict[str, str]) -> None:
    result = gameday(env, "history", DRILL, "--team", "payments")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    rows = [line for line in lines if line.strip().startswith(str(NOW.year)) or " run-" in line]
    assert [row.split()[2] for row in rows] == [f"run-{n}" for n in range(7)]
    assert rows[0].split()[3:] == ["NOT_RECOVERED", "1.00s", "-", "2/2", "0/100", "0/100"]
    assert rows[2].split()[3:] == ["ABORTED", "3.00s", "-", "2/2", "-", "25/100"]  # not scored: mean stays
    assert rows[6].split()[-2:] == ["100/100", "80/100"]  # last five scored: 50, 50, 100, 100, 100
    summary = lines[-1]
    # Scored: 0, 50, 50, 100, 100, 100 → last 5 = 80, the one before = 0: +80.
    assert summary == (
        "7 run(s), 3 RESILIENT (43% of finished); recovery median 4.00s, p90 7.00s; score 80/100; "
        "trend +80 (last 5 scored runs vs the 5 before)"
    )
    assert "search-run" not in result.stdout and "other-drill" not in result.stdout


def test_history_limit_keeps_the_most_recent_runs(env: dict[str, str]) -> None:
    result = gameday(env, "history", DRILL, "--team", "payments", "--limit", "2")

    assert result.exit_code == 0, result.output
    assert "run-5" in result.stdout and "run-6" in result.stdout and "run-4" not in result.stdout
    assert "no trend yet" in result.stdout.splitlines()[-1]


def test_history_as_json_is_the_whole_trend(env: dict[str, str]) -> None:
    result = gameday(env, "history", DRILL, "--format", "json")

    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["drill"] == DRILL and found["team"] is None
    assert [e["run_id"] for e in found["entries"]] == [*(f"run-{n}" for n in range(7)), "search-run"]
    assert found["entries"][0]["score"] == 0.0 and found["entries"][2]["score"] is None
    assert found["summary"]["runs"] == 8 and found["summary"]["window"] == 5


def test_history_of_an_unknown_drill_or_an_unknown_format_exits_1_with_one_line(env: dict[str, str]) -> None:
    missing = gameday(env, "history", "no-such-drill")
    assert missing.exit_code == 1 and "no recorded runs of drill 'no-such-drill'" in missing.stderr
    wrong = gameday(env, "history", DRILL, "--format", "csv")
    assert wrong.exit_code == 1 and "expected table or json" in wrong.stderr


def test_list_since_a_duration_keeps_the_recent_runs(env: dict[str, str]) -> None:
    result = gameday(env, "list", "--since", "6d")

    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert listed == ["search-run", "other-drill", "run-6", "run-5"]  # run-6 and run-5: 4 and 5 days ago


def test_list_until_a_date_includes_that_whole_day(env: dict[str, str]) -> None:
    day = (NOW - timedelta(days=9)).date().isoformat()  # run-1's day

    result = gameday(env, "list", "--since", day, "--until", day)

    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["run-1"]


def test_list_rejects_a_bad_date_or_a_reversed_range_in_one_line(env: dict[str, str]) -> None:
    bad = gameday(env, "list", "--since", "last tuesday")
    assert bad.exit_code == 1
    assert bad.stderr.strip() == (
        "error: --since: 'last tuesday' is not a date like 2026-11-01, a UTC date-time like 2026-11-01T14:00, "
        "or a duration ago like 7d or 24h"
    )
    reversed_range = gameday(env, "list", "--since", "1d", "--until", "3d")
    assert reversed_range.exit_code == 1 and "is not before --until" in reversed_range.stderr
    impossible = gameday(env, "list", "--until", "2026-02-30")
    assert impossible.exit_code == 1 and "--until: '2026-02-30' is not a date" in impossible.stderr
    temporal = gameday(env, "list", "--temporal", "--since", "7d")
    assert temporal.exit_code == 1 and "drop --temporal" in temporal.stderr


def test_parse_moment_forms() -> None:
    now = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
    assert parse_moment("7d", now=now) == datetime(2026, 10, 29, 12, 0, tzinfo=UTC)
    assert parse_moment("24h", now=now) == datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
    assert parse_moment("1d12h", now=now) == datetime(2026, 11, 4, 0, 0, tzinfo=UTC)
    assert parse_moment("2026-11-01", now=now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_moment("2026-11-01", now=now, end_of_day=True) == datetime(2026, 11, 2, tzinfo=UTC)
    assert parse_moment("2026-11-01T14:30", now=now) == datetime(2026, 11, 1, 14, 30, tzinfo=UTC)
    assert parse_moment("2026-11-01T14:30+01:00", now=now) == datetime(2026, 11, 1, 13, 30, tzinfo=UTC)
    assert parse_range("2026-11-01", "2026-11-01", now=now) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 2, tzinfo=UTC),
    )
    with pytest.raises(ValueError, match="--until: '7x'"):
        parse_range(None, "7x", now=now)


def test_markdown_report_has_one_resilience_score_line(env: dict[str, str]) -> None:
    result = gameday(env, "report", "run-1")

    assert result.exit_code == 0, result.output
    score_lines = [line for line in result.stdout.splitlines() if "Resilience score" in line]
    assert score_lines == [
        "- **Resilience score:** 50/100 (recovered, 0 of 1 check(s) held under fault; formula in docs/SCORE.md)"
    ]


def test_gameday_report_gives_the_mean_score_of_its_drill_runs(env: dict[str, str]) -> None:
    store = Store(env["GAMEDAY_DATABASE_URL"])
    entries = [
        GameDayEntry(stage=0, drill_name=DRILL, run_id="run-4", verdict=Verdict.RESILIENT),  # 100
        GameDayEntry(stage=0, drill_name=DRILL, run_id="run-3", verdict=Verdict.DEVIATED),  # 50
        GameDayEntry(stage=1, drill_name=DRILL, run_id="run-2", verdict=Verdict.ABORTED),  # not scored
        GameDayEntry(stage=2, drill_name="later", skipped="stopped before this step"),
    ]
    GameDays(store).save(
        GameDayRecord(gameday_id="gd-1", name="q4", started_at=NOW, entries=entries, outcome="completed")
    )

    result = gameday(env, "report", "gd-1")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == (
        "  resilience score 75/100 (mean of 2 scored drill run(s) of 4; see docs/SCORE.md)"
    )
