"""``gameday run --json`` has one shape for a drill and a game day: ``run_id``, ``verdict``, ``started_at``,
``ended_at``, ``ui_url``; a drill adds ``time_to_detect`` among its figures; a game day adds its own keys
(``gameday_id`` and ``outcome`` kept as aliases, then ``exit_code`` and ``drills``). Real dev server and a
``gameday worker`` process."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.cli.conftest import UI_URL, Gameday
from tests.cli.test_cli_commands import command_drill, last_json_line, unique

pytestmark = pytest.mark.integration

COMMON = ("run_id", "verdict", "started_at", "ended_at", "ui_url")


def _gameday_file(gameday: Gameday, name: str) -> Path:
    def drill(step: str) -> str:
        marker = gameday.workdir / unique(step)
        body = command_drill(unique(step), marker, probe="true", observe="200ms")
        return "\n".join("      " + line for line in body.strip().splitlines())

    path = gameday.workdir / f"{name}.yaml"
    path.write_text(f"gameday: {name}\ndrills:\n  - drill:\n{drill('one')}\n  - drill:\n{drill('two')}\n")
    return path


def test_a_game_day_and_a_drill_answer_run_json_with_the_same_keys(gameday: Gameday) -> None:
    marker = gameday.workdir / unique("m")
    detected = command_drill(unique("json-drill"), marker, probe="true").replace(
        "observe: {duration: 500ms, interval: 100ms}",
        "observe:\n  duration: 500ms\n  interval: 100ms\n"
        f'  watch: [{{name: noticed, command: {{run: "test -f {marker}"}}}}]\n'
        "  expect: {detect: {probe: noticed, within: 5s}}",
    )
    assert "detect:" in detected
    drill = gameday("run", str(gameday.drill(detected)), "--wait", "--json")
    name = unique("json-day")
    day = gameday("run", str(_gameday_file(gameday, name)), "--wait", "--json")

    assert drill.exit_code == 0 == day.exit_code, (drill.output, day.output)
    drill_json, day_json = last_json_line(drill.stdout), last_json_line(day.stdout)
    assert set(COMMON) <= set(drill_json) and set(COMMON) <= set(day_json)
    assert day_json["verdict"] == drill_json["verdict"] == "RESILIENT"
    # A drill with observe.expect.detect adds its time to detect (seconds from the fault; null without detect).
    assert isinstance(drill_json["time_to_detect"], float) and drill_json["time_to_detect"] >= 0
    run_id = str(day_json["run_id"])
    assert (
        run_id.startswith(f"gameday-{name}-")
        and day_json["ui_url"] == f"{UI_URL}/namespaces/default/workflows/{run_id}"
    )
    for stamp in ("started_at", "ended_at"):
        assert datetime.fromisoformat(str(day_json[stamp])) and datetime.fromisoformat(str(drill_json[stamp]))
    # The game day's own keys; gameday_id and outcome are the old shape's, kept so existing scripts still work.
    assert day_json["gameday_id"] == run_id and day_json["outcome"] == "completed" and day_json["exit_code"] == 0
    drills = day_json["drills"]
    assert isinstance(drills, list) and [d["verdict"] for d in drills] == ["RESILIENT", "RESILIENT"]
    assert all(str(d["run_id"]).startswith(run_id) for d in drills)


def test_a_game_day_started_without_wait_answers_with_the_same_keys_and_no_verdict(gameday: Gameday) -> None:
    started = gameday("run", str(_gameday_file(gameday, unique("json-nowait"))), "--json")

    assert started.exit_code == 0, started.output
    payload = last_json_line(started.stdout)
    assert set(COMMON) <= set(payload)
    assert payload["verdict"] is None and payload["ended_at"] is None and payload["outcome"] is None
    assert payload["gameday_id"] == payload["run_id"] and datetime.fromisoformat(str(payload["started_at"]))
