"""``gameday schedule ...`` against the session dev server (the time-skipping server has no schedules) and a real
``gameday worker``: schedules created, listed, shown, paused, resumed, triggered and deleted; blackouts; errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gameday.cli.schedules import TRIGGER_SKIPPED
from gameday.model.records import Verdict
from tests.cli.conftest import Gameday
from tests.cli.test_cli_commands import command_drill, unique
from tests.harness import wait_until

pytestmark = pytest.mark.integration

NEVER_SOON = "0 3 1 1 *"  # 03:00 on January 1st: never fires while a test runs


@pytest.fixture
def schedule_ids(gameday: Gameday) -> Iterator[list[str]]:
    """Ids of the schedules a test adds, deleted after it (the dev server is shared by the whole session)."""
    ids: list[str] = []
    yield ids
    for sid in ids:
        gameday("schedule", "delete", sid)


def add(gameday: Gameday, ids: list[str], *args: str, observe: str = "200ms") -> str:
    """``gameday schedule add`` of a harmless command drill; returns the schedule id."""
    sid = unique("sched")
    drill = gameday.drill(
        command_drill(unique("cli-sched"), gameday.workdir / unique("m"), probe="true", observe=observe)
    )
    result = gameday("schedule", "add", str(drill), "--id", sid, *args)
    assert result.exit_code == 0, result.output
    ids.append(sid)
    return sid


def one_line_error(result: object, *needles: str) -> str:
    exit_code, stderr = result.exit_code, result.stderr  # type: ignore[attr-defined]
    assert exit_code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return str(lines[0])


def started_run(output: str) -> str:
    found = re.search(r"started (\S+)", output)
    assert found, output
    return found[1]


def test_add_list_pause_resume_delete_round_trip(gameday: Gameday, schedule_ids: list[str]) -> None:
    sid = add(
        gameday,
        schedule_ids,
        "--cron",
        "0 14 * * TUE",
        "--timezone",
        "Europe/Paris",
        "--jitter",
        "5m",
        "--blackout",
        "2031-12-24..2032-01-02",
    )
    shown = gameday("schedule", "show", sid)
    assert shown.exit_code == 0, shown.output
    assert "cron: 0 14 * * TUE (Europe/Paris), jitter up to 5m; overlap: skip" in shown.stdout
    assert "blackouts: 2031-12-24..2032-01-02" in shown.stdout
    assert shown.stdout.count(" runs\n") >= 1 and "Tue " in shown.stdout

    wait_until(lambda: sid in gameday("schedule", "list").stdout, what="the schedule to be listed", timeout=10)
    row = next(line for line in gameday("schedule", "list").stdout.splitlines() if line.startswith(sid))
    assert "0 14 * * TUE" in row and "Europe/Paris" in row and "active" in row
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", row), row  # next run times

    paused = gameday("schedule", "pause", sid, "--note", "freeze for the migration")
    assert paused.exit_code == 0, paused.output
    shown = gameday("schedule", "show", sid)
    assert "state: paused: freeze for the migration" in shown.stdout
    assert "next runs: none while paused" in shown.stdout
    wait_until(
        lambda: "paused" in next(x for x in gameday("schedule", "list").stdout.splitlines() if x.startswith(sid)),
        what="list to show the pause",
        timeout=10,
    )

    resumed = gameday("schedule", "resume", sid)
    assert resumed.exit_code == 0, resumed.output
    assert "state: active" in gameday("schedule", "show", sid).stdout

    deleted = gameday("schedule", "delete", sid)
    assert deleted.exit_code == 0, deleted.output
    one_line_error(gameday("schedule", "show", sid), sid, "no schedule")


def test_a_triggered_run_completes_and_is_shown_with_its_verdict(gameday: Gameday, schedule_ids: list[str]) -> None:
    sid = add(gameday, schedule_ids, "--cron", NEVER_SOON)
    triggered = gameday("schedule", "trigger", sid)
    assert triggered.exit_code == 0, triggered.output
    run_id = started_run(triggered.stdout)
    assert re.fullmatch(rf"{sid}-\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}:\d{{2}}:\d{{2}}Z", run_id), run_id

    wait_until(
        lambda: f"RESILIENT ({run_id})" in gameday("schedule", "show", sid).stdout,
        what="the scheduled run to complete",
        timeout=20,
    )
    assert "runs started: 1" in gameday("schedule", "show", sid).stdout
    wait_until(lambda: f"RESILIENT ({run_id})" in gameday("schedule", "list").stdout, what="list's last run")

    # The schedule's DrillInput carries an empty run id: the run is recorded under its workflow id, never under "".
    record = gameday.store.get(run_id)
    assert record is not None and record.verdict == Verdict.RESILIENT
    assert record.started_by == f"schedule {sid}"
    assert gameday.store.get("") is None


def test_trigger_while_the_previous_run_still_runs_is_skipped(gameday: Gameday, schedule_ids: list[str]) -> None:
    sid = add(gameday, schedule_ids, "--cron", NEVER_SOON, observe="3s")
    first = gameday("schedule", "trigger", sid)
    assert first.exit_code == 0, first.output
    run_id = started_run(first.stdout)

    second = gameday("schedule", "trigger", sid)
    assert second.exit_code == TRIGGER_SKIPPED, second.output
    assert f"skipped: {run_id} is still running (overlap policy skip): nothing started" in second.stdout
    shown = gameday("schedule", "show", sid).stdout
    assert "runs started: 1, skipped while one was running: 1" in shown
    assert f"running: {run_id}" in shown
    stopped = gameday("stop", run_id, "--reason", "test over", "--wait")
    assert stopped.exit_code == 0, stopped.output


def test_a_blackout_covering_now_is_shown_and_refuses_a_trigger(gameday: Gameday, schedule_ids: list[str]) -> None:
    today = datetime.now(UTC).date()
    window = f"{today}..{today + timedelta(days=1)}"
    sid = add(gameday, schedule_ids, "--cron", "*/5 * * * *", "--blackout", window, "--blackout-cron", "0 0 1 1 *")
    shown = gameday("schedule", "show", sid)
    assert shown.exit_code == 0, shown.output
    assert f"now in blackout {window}" in shown.stdout
    assert f"skipped (blackout {window})" in shown.stdout
    assert f"blackouts: {window}, cron:0 0 1 1 *" in shown.stdout
    nexts = re.search(r"next runs \(UTC, blackouts left out\): (\d{4}-\d{2}-\d{2} \d{2}:\d{2})", shown.stdout)
    assert nexts, shown.stdout
    assert datetime.strptime(nexts[1], "%Y-%m-%d %H:%M").date() > today + timedelta(days=1)

    refused = gameday("schedule", "trigger", sid)
    assert refused.exit_code == TRIGGER_SKIPPED, refused.output
    assert f"skipped: now is in blackout {window} of {sid}: nothing started" in " ".join(refused.stdout.split())
    assert gameday("schedule", "show", sid).stdout.count("runs started: 0") == 1

    anyway = gameday("schedule", "trigger", sid, "--ignore-blackout")
    assert anyway.exit_code == TRIGGER_SKIPPED, anyway.output
    run_id = started_run(anyway.stdout)
    assert f"skipped: now is in blackout {window}: the run records itself skipped" in " ".join(anyway.stdout.split())
    record = gameday.recorded(run_id)
    assert record.verdict == Verdict.ABORTED and record.stop is not None
    assert f"skipped: now is in blackout {window}" in record.stop.reason


def test_a_bad_cron_exits_1_with_one_line_naming_the_field(gameday: Gameday) -> None:
    drill = gameday.drill(command_drill(unique("cli-sched-bad"), gameday.workdir / "never", probe="true"))
    one_line_error(gameday("schedule", "add", str(drill), "--cron", "0 25 * * *"), "hour field '25'", "0-23")
    one_line_error(gameday("schedule", "add", str(drill), "--cron", "0 14 * *"), "expected 5 fields")
    one_line_error(
        gameday("schedule", "add", str(drill), "--cron", "0 14 * * *", "--blackout-cron", "* * * * FUN"),
        "--blackout-cron",
        "day-of-week field 'FUN'",
    )
    one_line_error(
        gameday("schedule", "add", str(drill), "--cron", "0 14 * * *", "--blackout", "2026-12-26..2026-12-24"),
        "end date is before the start date",
    )


def test_adding_an_id_twice_exits_1_saying_it_exists(gameday: Gameday, schedule_ids: list[str]) -> None:
    sid = add(gameday, schedule_ids, "--cron", NEVER_SOON)
    drill = gameday.drill(command_drill(unique("cli-sched-dup"), gameday.workdir / "never", probe="true"))
    one_line_error(gameday("schedule", "add", str(drill), "--cron", NEVER_SOON, "--id", sid), sid, "already exists")


def test_an_unknown_schedule_id_exits_1_with_one_line_naming_it(gameday: Gameday) -> None:
    sid = unique("sched-nobody")
    for command in ("show", "pause", "resume", "trigger", "delete"):
        one_line_error(gameday("schedule", command, sid), sid, "no schedule")


def test_schedule_help_teaches_with_an_example(gameday: Gameday) -> None:
    for args in (("schedule", "--help"), ("schedule", "add", "--help"), ("schedule", "trigger", "--help")):
        result = gameday(*args)
        assert result.exit_code == 0, result.output
        assert "gameday schedule" in result.stdout
    text = " ".join(gameday("schedule", "add", "--help").stdout.split())
    for needle in ("--cron", "--timezone", "--jitter", "--blackout", "--blackout-cron", "Example:", "SKIP"):
        assert needle in text


def test_add_and_show_help_say_a_blacked_out_time_fires_and_records_a_skipped_run(gameday: Gameday) -> None:
    for command in ("add", "show"):
        text = " ".join(gameday("schedule", command, "--help").stdout.split())
        assert "records nothing" not in text and "do not fire" not in text and "does not fire" not in text
        assert "records itself skipped" in text, text


def test_list_shows_why_a_schedule_is_paused(gameday: Gameday, schedule_ids: list[str]) -> None:
    sid = add(gameday, schedule_ids, "--cron", NEVER_SOON)
    assert gameday("schedule", "pause", sid, "--note", "freeze during the migration").exit_code == 0
    wait_until(
        lambda: f"{sid}: paused: freeze during the migration" in gameday("schedule", "list").stdout,
        what="list to show the pause note",
        timeout=10,
    )


def test_a_scheduled_run_carries_the_search_attributes_and_its_verdict(
    gameday: Gameday, schedule_ids: list[str]
) -> None:
    sid = add(gameday, schedule_ids, "--cron", NEVER_SOON)
    run_id = started_run(gameday("schedule", "trigger", sid).stdout)
    drill = gameday.recorded(run_id).drill_name

    def listed() -> str:
        result = gameday("list", "--temporal", "--team", "cli-tests", "--drill", drill)
        return next((line for line in result.stdout.splitlines() if line.startswith(run_id)), "")

    wait_until(lambda: "RESILIENT" in listed(), what="visibility to list the scheduled run with its verdict")
    assert re.search(rf"drill\s+{drill}\s+cli-tests\s+dev\s+COMPLETED\s+RESILIENT", listed()), listed()
